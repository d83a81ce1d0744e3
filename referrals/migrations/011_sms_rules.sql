-- Relais schema, version 11: SMS rules that hold when a message leaves, and what it costs.

-- Segments as Relais counts them when the message is queued (the daily budget counts these),
-- then Twilio's own figures once it answers: num_segments, price and its currency.
ALTER TABLE outbound_sms ADD COLUMN segments INTEGER;
ALTER TABLE outbound_sms ADD COLUMN num_segments INTEGER;
ALTER TABLE outbound_sms ADD COLUMN price TEXT;
ALTER TABLE outbound_sms ADD COLUMN price_unit TEXT;
-- Twilio sets the price some time after the final status: it is fetched once, then.
ALTER TABLE outbound_sms ADD COLUMN price_checked_at TEXT;
-- When the request to the provider left: a status callback for a message whose fate was unknown
-- (no SID, after a timeout or a gateway error) is matched by its number's hash near that time.
ALTER TABLE outbound_sms ADD COLUMN attempted_at TEXT;
CREATE INDEX outbound_sms_unknown ON outbound_sms(phone_hash, attempted_at) WHERE status = 'unknown';
