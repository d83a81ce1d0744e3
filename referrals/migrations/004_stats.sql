-- Relais schema, version 4: what `relais stats` needs to stay a handful of index scans at a
-- million participants (no date parsing, no join, no sort of the whole table).

-- Seconds between a referred participant's join and their referrer's join (NULL for a seed).
-- Written with the row by whoever inserts a referred participant (service, import); the trigger
-- below keeps it right when a source is set later. No INSERT trigger: even one whose WHEN is
-- false made a million-row import 8 s slower.
ALTER TABLE participants ADD COLUMN referral_delay_s REAL;

UPDATE participants SET referral_delay_s = ROUND(
    (julianday(joined_at)
     - (SELECT julianday(r.joined_at) FROM participants r WHERE r.id = participants.referrer_id))
    * 86400.0, 3)
WHERE referrer_id IS NOT NULL;

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

CREATE INDEX participants_delay ON participants(referral_delay_s)
    WHERE referral_delay_s IS NOT NULL;
CREATE INDEX participants_wave ON participants(wave);
CREATE INDEX participants_channel ON participants(channel);
CREATE INDEX participants_enrolled ON participants(enrolled_at, referrer_id)
    WHERE enrolled_at IS NOT NULL;
