-- Relais schema, version 23: which participants changed since the figures were last read
-- (issue 19). The figures keep every participant as arrays; after a write they re-read only the
-- rows whose id is above the highest they hold (new participants: ids only grow) and the rows
-- listed here, instead of the whole table.
--
-- One row per participant ever changed (bounded by the number of participants): the latest
-- change's sequence number, strictly increasing. Only the columns the figures read fire the
-- trigger (not last_seen_at, the personal code or the failed code count); inserts fire nothing
-- (an insert trigger, even with a false WHEN, made a million-row import 8 s slower).
CREATE TABLE participant_changes (
    participant_id INTEGER PRIMARY KEY,
    seq            INTEGER NOT NULL
);
CREATE INDEX participant_changes_seq ON participant_changes(seq);

CREATE TRIGGER participants_figures_update AFTER UPDATE OF
    id, kind, referrer_id, campaign_id, channel, root_id, wave, joined_at, enrolled_at, left_at,
    banned, erased_at, referral_delay_s
ON participants
BEGIN
    INSERT OR REPLACE INTO participant_changes (participant_id, seq)
    VALUES (NEW.id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM participant_changes));
    INSERT OR REPLACE INTO participant_changes (participant_id, seq)
    SELECT OLD.id, (SELECT MAX(seq) + 1 FROM participant_changes) WHERE OLD.id <> NEW.id;
END;

CREATE TRIGGER participants_figures_delete AFTER DELETE ON participants
BEGIN
    INSERT OR REPLACE INTO participant_changes (participant_id, seq)
    VALUES (OLD.id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM participant_changes));
END;

-- The figures' arrays as last read by the bot (or a report that had to read them whole), so
-- that a `relais report` process starts from them and reads again only what changed since
-- (``seq`` and ``top`` as above). Kept in the database itself, so that a copy or a restored
-- backup carries the arrays that match its own history. Integers only (ids, referrer, root,
-- wave, join time, flags), never a name or a number; one row.
CREATE TABLE figures_snapshot (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    schema_version INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    top            INTEGER NOT NULL,
    count          INTEGER NOT NULL,
    rows           BLOB NOT NULL
);
