-- Actions waiting for a person's confirmation (a button), kept across restarts.
CREATE TABLE pending_actions (
    id          INTEGER PRIMARY KEY,
    person_key  TEXT NOT NULL,               -- "discord:<id>" or "sms:<hash>"
    kind        TEXT NOT NULL,               -- invite | forget
    data        TEXT NOT NULL,               -- JSON (an invitation's number lives here until used)
    created_at  TEXT NOT NULL
);
CREATE INDEX pending_actions_person ON pending_actions(person_key);
