-- Relais schema, version 7: fewer index writes per new participant (a join in a viral burst).
-- Most participants have no campaign: index only those that do.
DROP INDEX participants_campaign;
CREATE INDEX participants_campaign ON participants(campaign_id) WHERE campaign_id IS NOT NULL;

-- One index serves both the per-wave and the per-channel counts of `relais stats`
-- (the second scans it instead of the table): one write less per participant.
DROP INDEX participants_wave;
DROP INDEX participants_channel;
CREATE INDEX participants_wave_channel ON participants(wave, channel);
