-- Relais schema, version 5: join attribution through Discord invite use counts.

-- How the join was told: the invite code (certain), 'vanity' (the server's vanity URL), or NULL.
ALTER TABLE join_attributions ADD COLUMN via TEXT;
-- The invite codes in play for an ambiguous join (JSON list), and who settled it, when.
ALTER TABLE join_attributions ADD COLUMN codes TEXT;
ALTER TABLE join_attributions ADD COLUMN resolved_by TEXT;
ALTER TABLE join_attributions ADD COLUMN resolved_at TEXT;
CREATE INDEX join_attributions_status ON join_attributions(status);
CREATE INDEX join_attributions_participant ON join_attributions(participant_id);
