-- Relais schema, version 9: an invited relative who joins through the link of their SMS
-- (/i/TOKEN, then Discord) counts as a joined invitation, as one who replies by SMS does.
-- The OAuth2 state carries the invitation from the landing page to the join.
ALTER TABLE oauth_states ADD COLUMN invitation_id INTEGER;
