-- Relais schema, version 8: the mostly empty unique columns get partial indexes.
-- relais: rebuilds tables
--
-- discord_id, phone_hash and code were column UNIQUE constraints, so every participant had an
-- entry in their three indexes, NULL or not: a relative has no Discord id, a member has no phone,
-- most have no code yet, imported rows have none of them. As partial unique indexes they hold
-- only the rows with a value: one to three index writes less for each new participant (pages
-- written by every commit), smaller indexes, the same uniqueness. SQLite cannot drop a column
-- constraint, hence the documented copy of the table (same columns, same order).
CREATE TABLE participants_new (
    id             INTEGER PRIMARY KEY,
    ref            TEXT NOT NULL UNIQUE,       -- stable pseudonymous identifier (import/export)
    kind           TEXT NOT NULL DEFAULT 'youth' CHECK (kind IN ('youth', 'relative')),
    display_name   TEXT,
    discord_id     TEXT,                       -- unique when set (index below)
    phone          TEXT,                       -- E.164, relatives only, while needed
    phone_hash     TEXT,                       -- keyed hash of the phone number, unique when set
    lang           TEXT,
    code           TEXT,                       -- personal code, canonical (no dash), unique
    referrer_id    INTEGER REFERENCES participants(id),
    campaign_id    INTEGER REFERENCES campaigns(id),
    channel        TEXT NOT NULL DEFAULT 'unknown',
    source_set_at  TEXT,                       -- when the source was fixed (NULL: organic so far)
    root_id        INTEGER NOT NULL,           -- seed of this participant's tree (self for a seed)
    wave           INTEGER NOT NULL DEFAULT 0, -- 0 for a seed, referrer's wave + 1 otherwise
    joined_at      TEXT NOT NULL,
    enrolled_at    TEXT,
    failed_codes   INTEGER NOT NULL DEFAULT 0,
    code_locked_until TEXT,
    left_at        TEXT,
    banned         INTEGER NOT NULL DEFAULT 0,
    erased_at      TEXT,
    last_seen_at   TEXT,
    referral_delay_s REAL                      -- seconds from the referrer's join (stats)
);

INSERT INTO participants_new (
    id, ref, kind, display_name, discord_id, phone, phone_hash, lang, code, referrer_id,
    campaign_id, channel, source_set_at, root_id, wave, joined_at, enrolled_at, failed_codes,
    code_locked_until, left_at, banned, erased_at, last_seen_at, referral_delay_s
)
SELECT
    id, ref, kind, display_name, discord_id, phone, phone_hash, lang, code, referrer_id,
    campaign_id, channel, source_set_at, root_id, wave, joined_at, enrolled_at, failed_codes,
    code_locked_until, left_at, banned, erased_at, last_seen_at, referral_delay_s
FROM participants;

DROP TABLE participants;
ALTER TABLE participants_new RENAME TO participants;

CREATE UNIQUE INDEX participants_discord_id ON participants(discord_id)
    WHERE discord_id IS NOT NULL;
CREATE UNIQUE INDEX participants_phone_hash ON participants(phone_hash)
    WHERE phone_hash IS NOT NULL;
CREATE UNIQUE INDEX participants_code ON participants(code) WHERE code IS NOT NULL;

-- The indexes and the trigger of versions 1, 4 and 7, as they were.
CREATE INDEX participants_referrer ON participants(referrer_id);
CREATE INDEX participants_root ON participants(root_id);
CREATE INDEX participants_joined ON participants(joined_at);
CREATE INDEX participants_delay ON participants(referral_delay_s)
    WHERE referral_delay_s IS NOT NULL;
CREATE INDEX participants_enrolled ON participants(enrolled_at, referrer_id)
    WHERE enrolled_at IS NOT NULL;
CREATE INDEX participants_campaign ON participants(campaign_id) WHERE campaign_id IS NOT NULL;
CREATE INDEX participants_wave_channel ON participants(wave, channel);

CREATE TRIGGER participants_delay_source AFTER UPDATE OF referrer_id, joined_at ON participants
BEGIN
    UPDATE participants SET referral_delay_s = CASE WHEN NEW.referrer_id IS NULL THEN NULL
        ELSE ROUND(
            (julianday(NEW.joined_at)
             - (SELECT julianday(r.joined_at) FROM participants r WHERE r.id = NEW.referrer_id))
            * 86400.0, 3)
        END
    WHERE id = NEW.id;
    -- Recruits measure their delay from this participant's join.
    UPDATE participants SET referral_delay_s = ROUND(
        (julianday(joined_at) - julianday(NEW.joined_at)) * 86400.0, 3)
    WHERE referrer_id = NEW.id AND NEW.joined_at IS NOT OLD.joined_at;
END;
