-- Relais schema, version 19: staff act on the questions the bot could not answer.

-- When staff marked a question handled (/traiter); handled questions leave /questions.
ALTER TABLE questions ADD COLUMN handled_at TEXT;

-- Examples staff add to an entry from a real question (/traiter N ENTRY); the answering learns
-- them at its next start, beside the examples of messages/<lang>/faq/.
CREATE TABLE faq_examples (
    id        INTEGER PRIMARY KEY,
    entry_id  TEXT NOT NULL,
    lang      TEXT NOT NULL,
    text      TEXT NOT NULL,
    added_at  TEXT NOT NULL
);
