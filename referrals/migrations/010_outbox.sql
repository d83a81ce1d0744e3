-- Relais schema, version 10: the delivery outbox. A message built for a channel that is not
-- connected in this process (a Discord DM or a staff post while only `relais serve` runs) waits
-- here until `relais run` delivers it; the row is deleted once delivered (`relais doctor`
-- lists what waits).
CREATE TABLE outbox (
    id             INTEGER PRIMARY KEY,
    target_kind    TEXT NOT NULL,              -- discord | channel | sms | any future channel
    target_id      TEXT NOT NULL,
    target_name    TEXT NOT NULL DEFAULT '',
    body           TEXT NOT NULL,              -- JSON: text, buttons, attachments, ephemeral
    created_at     TEXT NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_kind ON outbox(target_kind, id);
