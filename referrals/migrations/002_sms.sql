-- Relais schema, version 2: what the SMS gateway needs beyond version 1.

-- The language an invitation was written in: replies to the relative use it.
ALTER TABLE invitations ADD COLUMN lang TEXT;
CREATE INDEX invitations_created ON invitations(created_at);

-- The local day (RELAIS_TZ, YYYY-MM-DD) whose budget a message counts against: the day it leaves.
ALTER TABLE outbound_sms ADD COLUMN budget_day TEXT;
CREATE INDEX outbound_sms_budget_day ON outbound_sms(budget_day);
CREATE INDEX outbound_sms_phone_hash ON outbound_sms(phone_hash);
