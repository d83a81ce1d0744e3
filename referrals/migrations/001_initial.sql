-- Relais schema, version 1. Times are ISO 8601 text in UTC ('2026-01-05T09:00:00+00:00').

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE campaigns (
    id          INTEGER PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,          -- upper case, e.g. VAN-NANTES
    channel     TEXT,                          -- where it runs: van, tiktok, tournoi...
    created_at  TEXT NOT NULL,
    created_by  TEXT                           -- staff display name
);

CREATE TABLE participants (
    id             INTEGER PRIMARY KEY,
    ref            TEXT NOT NULL UNIQUE,       -- stable pseudonymous identifier (import/export)
    kind           TEXT NOT NULL DEFAULT 'youth' CHECK (kind IN ('youth', 'relative')),
    display_name   TEXT,
    discord_id     TEXT UNIQUE,
    phone          TEXT,                       -- E.164, relatives only, while needed
    phone_hash     TEXT UNIQUE,                -- keyed hash of the phone number
    lang           TEXT,
    code           TEXT UNIQUE,                -- personal code, canonical (no dash)
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
    last_seen_at   TEXT
);
CREATE INDEX participants_referrer ON participants(referrer_id);
CREATE INDEX participants_root ON participants(root_id);
CREATE INDEX participants_joined ON participants(joined_at);
CREATE INDEX participants_campaign ON participants(campaign_id);

-- Append-only log of who did what, when: the source of every time series.
CREATE TABLE events (
    id             INTEGER PRIMARY KEY,
    at             TEXT NOT NULL,
    kind           TEXT NOT NULL,
    participant_id INTEGER,
    other_id       INTEGER,
    data           TEXT                        -- JSON, never a phone number
);
CREATE INDEX events_kind_at ON events(kind, at);
CREATE INDEX events_participant ON events(participant_id);

-- Personal links: a Discord invite per member, or an OAuth landing link.
CREATE TABLE links (
    code           TEXT PRIMARY KEY,           -- Discord invite code or link token
    participant_id INTEGER REFERENCES participants(id),
    campaign_id    INTEGER REFERENCES campaigns(id),
    kind           TEXT NOT NULL,              -- discord_invite | landing
    uses           INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL
);
CREATE INDEX links_participant ON links(participant_id);

-- Joins whose inviter could not be told for certain.
CREATE TABLE join_attributions (
    id             INTEGER PRIMARY KEY,
    participant_id INTEGER NOT NULL REFERENCES participants(id),
    status         TEXT NOT NULL CHECK (status IN ('certain', 'ambiguous', 'unknown', 'resolved')),
    candidates     TEXT,                       -- JSON list of participant ids
    at             TEXT NOT NULL
);

-- SMS invitations to relatives.
CREATE TABLE invitations (
    id             INTEGER PRIMARY KEY,
    member_id      INTEGER NOT NULL REFERENCES participants(id),
    phone          TEXT,                       -- E.164 while the invitation is live; NULL after
    phone_hash     TEXT NOT NULL,
    first_name     TEXT,
    token          TEXT NOT NULL UNIQUE,       -- opaque, for the opt-out link
    status         TEXT NOT NULL,              -- queued|waiting|sent|delivered|failed|unknown|refused
    created_at     TEXT NOT NULL,
    sent_at        TEXT,
    joined_participant_id INTEGER REFERENCES participants(id)
);
CREATE INDEX invitations_phone_hash ON invitations(phone_hash);
CREATE INDEX invitations_member ON invitations(member_id, created_at);

-- Durable outbound SMS queue.
CREATE TABLE outbound_sms (
    id             INTEGER PRIMARY KEY,
    to_phone       TEXT,
    phone_hash     TEXT NOT NULL,
    body           TEXT NOT NULL,
    purpose        TEXT NOT NULL,              -- invitation | reply | test
    invitation_id  INTEGER REFERENCES invitations(id),
    status         TEXT NOT NULL DEFAULT 'queued', -- queued|sending|sent|delivered|failed|undelivered|unknown|cancelled
    attempts       INTEGER NOT NULL DEFAULT 0,
    not_before     TEXT NOT NULL,
    provider_sid   TEXT UNIQUE,
    error_code     TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX outbound_sms_due ON outbound_sms(status, not_before);

CREATE TABLE opt_outs (
    phone_hash     TEXT PRIMARY KEY,
    at             TEXT NOT NULL
);

CREATE TABLE inbound_sms (
    message_sid    TEXT PRIMARY KEY,
    at             TEXT NOT NULL
);

-- Questions the bot could not answer well, and feedback on answers.
CREATE TABLE questions (
    id             INTEGER PRIMARY KEY,
    at             TEXT NOT NULL,
    participant_id INTEGER REFERENCES participants(id),
    lang           TEXT NOT NULL,
    text           TEXT,
    entry_id       TEXT,
    score          REAL NOT NULL,
    answered       INTEGER NOT NULL
);
CREATE INDEX questions_at ON questions(at);

CREATE TABLE faq_feedback (
    entry_id       TEXT NOT NULL,
    useful         INTEGER NOT NULL,
    at             TEXT NOT NULL
);

-- Hand-offs to a person.
CREATE TABLE handoffs (
    id             INTEGER PRIMARY KEY,
    participant_id INTEGER REFERENCES participants(id),
    at             TEXT NOT NULL,
    text           TEXT,
    status         TEXT NOT NULL DEFAULT 'open', -- open | taken | closed
    taken_by       TEXT
);

-- Generic per-key attempt log for rate limits (code tries, invitations, questions...).
CREATE TABLE attempts (
    key            TEXT NOT NULL,
    at             TEXT NOT NULL
);
CREATE INDEX attempts_key_at ON attempts(key, at);
