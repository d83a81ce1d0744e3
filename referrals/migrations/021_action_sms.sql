-- Relais schema, version 21: actions without Discord (issue 22).

-- The number (E.164) of someone who checked in at an action by SMS: their evaluation is asked by
-- SMS. Kept only while needed: cleared once they rated, after the one reminder, or when the
-- evaluation window is over (and by erasure).
ALTER TABLE action_people ADD COLUMN phone TEXT;

-- What an OAuth2 state is for: joining the server through a link (``join``), or checking in at
-- an action as a member already on the server (``checkin``, the action's QR code).
ALTER TABLE oauth_states ADD COLUMN purpose TEXT NOT NULL DEFAULT 'join';
