-- Relais schema, version 6: the /r/CODE landing page (issue 11).

-- Discord OAuth2 states against CSRF: random, single use, short-lived, also bound to a cookie.
CREATE TABLE oauth_states (
    state       TEXT PRIMARY KEY,
    code        TEXT NOT NULL,                 -- the personal or campaign code of the link
    lang        TEXT,
    expires_at  TEXT NOT NULL
);
CREATE INDEX oauth_states_expires ON oauth_states(expires_at);

-- "Je n'ai pas Discord": someone asks to be called back by staff. Minimal data: a first name and
-- the E.164 number, cleared (NULL) once the request is older than its retention period.
CREATE TABLE callback_requests (
    id           INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    first_name   TEXT NOT NULL,
    phone        TEXT,                         -- E.164 while needed; NULL after retention
    phone_hash   TEXT NOT NULL,                -- keyed hash: one open request per number
    referrer_id  INTEGER REFERENCES participants(id),
    campaign_id  INTEGER REFERENCES campaigns(id),
    lang         TEXT,
    status       TEXT NOT NULL DEFAULT 'open'  -- open | done
);
CREATE INDEX callback_requests_hash ON callback_requests(phone_hash);
CREATE INDEX callback_requests_at ON callback_requests(at);
