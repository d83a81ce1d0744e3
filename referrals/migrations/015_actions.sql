-- Relais schema, version 15: outreach actions as first-class (issue 22).

-- An action of the agenda; its campaign carries the code, the QR poster and the sources.
CREATE TABLE actions (
    id               INTEGER PRIMARY KEY,
    campaign_id      INTEGER NOT NULL UNIQUE REFERENCES campaigns(id),
    type             TEXT NOT NULL
                     CHECK (type IN ('van', 'permanence', 'atelier', 'tournoi', 'sortie', 'autre')),
    title            TEXT NOT NULL,
    place            TEXT,
    starts_at        TEXT NOT NULL,              -- UTC ISO 8601
    ends_at          TEXT NOT NULL,
    capacity         INTEGER,
    status           TEXT NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'cancelled')),
    discord_event_id TEXT,                       -- the server's scheduled event, when there is one
    created_at       TEXT NOT NULL,
    created_by       TEXT,
    updated_at       TEXT NOT NULL,
    evaluated_at     TEXT                        -- when the evaluation messages left
);
CREATE INDEX actions_starts ON actions(starts_at);
CREATE UNIQUE INDEX actions_discord_event ON actions(discord_event_id)
    WHERE discord_event_id IS NOT NULL;

-- One row per person and action: "J'y vais" / "Intéressé", presence, the evaluation.
CREATE TABLE action_people (
    action_id        INTEGER NOT NULL REFERENCES actions(id),
    participant_id   INTEGER NOT NULL REFERENCES participants(id),
    rsvp_at          TEXT,                       -- "J'y vais" (asks for the reminder)
    interested_at    TEXT,                       -- Discord's "Intéressé"
    checked_in_at    TEXT,
    reminded_at      TEXT,                       -- the reminder of the day before
    eval_asked_at    TEXT,
    eval_reminded_at TEXT,
    rating           INTEGER CHECK (rating BETWEEN 1 AND 5),
    recommend        TEXT CHECK (recommend IN ('oui', 'peut-etre', 'non')),
    comment          TEXT,                       -- cleared after RETENTION_QUESTIONS_DAYS
    comment_at       TEXT,
    PRIMARY KEY (action_id, participant_id)
);
CREATE INDEX action_people_participant ON action_people(participant_id);

-- People who asked not to receive messages about actions (reminders, evaluations).
CREATE TABLE action_opt_outs (
    participant_id   INTEGER PRIMARY KEY REFERENCES participants(id),
    at               TEXT NOT NULL
);
