"""What the conversation stores: questions and feedback, pending confirmations, hand-offs.

The brain (``bot.conversation`` and its commands) calls these functions through
``Database.read``/``write``; it never writes SQL itself.
"""

from __future__ import annotations

import json
import re
import sqlite3
import unicodedata
from typing import Any

from referrals.service import get_participant, log_event

HANDOFFS_PER_DAY = 2  # open hand-offs a person may ask for in 24 hours (each pings the staff)
SHOWN = 15  # questions listed by /questions


# ---------------------------------------------------------------- questions and feedback


def log_question(
    conn: sqlite3.Connection,
    at: str,
    participant_id: int | None,
    lang: str,
    text: str | None,
    entry_id: str | None,
    score: float,
    answered: bool,
) -> None:
    """One question asked (its text only when staff need it to improve the answers)."""
    conn.execute(
        "INSERT INTO questions (at, participant_id, lang, text, entry_id, score, answered)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (at, participant_id, lang, text, entry_id, float(score), int(answered)),
    )


def add_feedback(conn: sqlite3.Connection, entry_id: str, useful: bool, at: str) -> None:
    """A "useful / not useful" press on an answer."""
    conn.execute(
        "INSERT INTO faq_feedback (entry_id, useful, at) VALUES (?, ?, ?)",
        (entry_id, int(useful), at),
    )


def fold_question(text: str) -> str:
    """A question's text for grouping: lower case, no accents, punctuation or extra spaces."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w']+", " ", letters).split())


def learning_report(conn: sqlite3.Connection, since: str) -> dict[str, Any]:
    """Questions to act on since a date (one line per distinct text), and feedback per entry.

    A group counts every time the same question (folded) was asked and not yet handled; the
    groups that have waited longest come first. ``id`` is the latest question of the group.
    """
    groups: dict[str, dict[str, Any]] = {}
    rows = conn.execute(
        "SELECT id, at, text, entry_id, score FROM questions"
        " WHERE at >= ? AND text IS NOT NULL AND handled_at IS NULL ORDER BY at, id",
        (since,),
    )
    for row_id, at, text, entry, score in rows:
        key = fold_question(text)
        if not key:
            continue
        group = groups.get(key)
        if group is None:
            groups[key] = {
                "id": row_id,
                "text": text,
                "count": 1,
                "first_at": at,
                "first_id": row_id,
                "last_at": at,
                "entry": entry,
                "score": score,
            }
        else:
            group.update(id=row_id, text=text, last_at=at, entry=entry, score=score)
            group["count"] += 1
    waiting = sorted(groups.values(), key=lambda g: (g["first_at"], g["first_id"]))
    totals = conn.execute(
        "SELECT COUNT(*), SUM(answered = 0) FROM questions WHERE at >= ?", (since,)
    ).fetchone()
    feedback = [
        {"entry": entry, "useful": useful, "useless": useless}
        for entry, useful, useless in conn.execute(
            "SELECT entry_id, SUM(useful = 1), SUM(useful = 0) FROM faq_feedback"
            " WHERE at >= ? GROUP BY entry_id ORDER BY SUM(useful = 0) DESC, entry_id",
            (since,),
        )
    ]
    return {
        "asked": totals[0] or 0,
        "unanswered_count": totals[1] or 0,
        "distinct": len(waiting),
        "questions": waiting[:SHOWN],
        "feedback": feedback,
    }


def handle_question(
    conn: sqlite3.Connection, question_id: int, at: str, entry_id: str | None = None
) -> dict[str, Any] | None:
    """Mark a question handled, with every unhandled one of the same text; None if unknown.

    With ``entry_id``, the text becomes an example of that entry (learnt at the next start).
    """
    row = conn.execute(
        "SELECT text, lang FROM questions WHERE id = ? AND text IS NOT NULL", (question_id,)
    ).fetchone()
    if row is None:
        return None
    text, lang = row
    key = fold_question(text)
    same = [
        qid
        for qid, other in conn.execute(
            "SELECT id, text FROM questions WHERE handled_at IS NULL AND text IS NOT NULL"
        )
        if fold_question(other) == key
    ]
    conn.executemany("UPDATE questions SET handled_at = ? WHERE id = ?", [(at, q) for q in same])
    if entry_id is not None:
        conn.execute(
            "INSERT INTO faq_examples (entry_id, lang, text, added_at) VALUES (?, ?, ?, ?)",
            (entry_id, lang, text, at),
        )
    return {"text": text, "count": max(len(same), 1), "entry": entry_id}


def learnt_examples(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(entry id, language, text) of every example staff added from real questions."""
    return [
        (entry, lang, text)
        for entry, lang, text in conn.execute(
            "SELECT entry_id, lang, text FROM faq_examples ORDER BY id"
        )
    ]


def display_names(conn: sqlite3.Connection, refs: list[str]) -> dict[str, str]:
    """Display names of participants by reference (erased ones have none)."""
    names: dict[str, str] = {}
    for ref in refs:
        row = conn.execute(
            "SELECT display_name FROM participants WHERE ref = ? AND erased_at IS NULL", (ref,)
        ).fetchone()
        if row and row[0]:
            names[ref] = row[0]
    return names


# ---------------------------------------------------------------- pending confirmations


def pend(
    conn: sqlite3.Connection, person_key: str, kind: str, data: dict[str, Any], at: str
) -> int:
    """Keep an action that waits for the person's yes (one per kind and person)."""
    conn.execute(
        "DELETE FROM pending_actions WHERE person_key = ? AND kind = ?", (person_key, kind)
    )
    cursor = conn.execute(
        "INSERT INTO pending_actions (person_key, kind, data, created_at) VALUES (?, ?, ?, ?)",
        (person_key, kind, json.dumps(data), at),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def take_pending(
    conn: sqlite3.Connection, person_key: str, pending_id: int
) -> tuple[str, dict[str, Any]] | None:
    """The pending action (kind, data), removed; None when it is gone or not theirs."""
    row = conn.execute(
        "DELETE FROM pending_actions WHERE id = ? AND person_key = ? RETURNING kind, data",
        (pending_id, person_key),
    ).fetchone()
    return (row[0], json.loads(row[1])) if row else None


def drop_pending(conn: sqlite3.Connection, person_key: str) -> None:
    """Forget every pending action of a person."""
    conn.execute("DELETE FROM pending_actions WHERE person_key = ?", (person_key,))


# ---------------------------------------------------------------- hand-offs


def handoff_allowed(
    conn: sqlite3.Connection, tag: str, at: str, since: str, limit: int = HANDOFFS_PER_DAY
) -> bool:
    """Whether a person (pseudonymous ``tag``) may open another hand-off; records it if so.

    Counted in ``attempts`` under ``handoff_day:TAG`` (no identifier in clear; retention removes
    rows older than a day), so that it works for people without a participant row too.
    """
    key = f"handoff_day:{tag}"
    count = conn.execute(
        "SELECT COUNT(*) FROM attempts WHERE key = ? AND at > ?", (key, since)
    ).fetchone()[0]
    if count >= limit:
        return False
    conn.execute("INSERT INTO attempts (key, at) VALUES (?, ?)", (key, at))
    return True


def open_handoff(
    conn: sqlite3.Connection,
    participant_id: int | None,
    text: str | None,
    at: str,
    event: str = "handoff",
) -> tuple[int, str | None]:
    """A request to talk to a person: its number and the participant's reference."""
    cursor = conn.execute(
        "INSERT INTO handoffs (participant_id, at, text) VALUES (?, ?, ?)",
        (participant_id, at, text),
    )
    assert cursor.lastrowid is not None
    log_event(conn, event, participant_id, at=at)
    ref = get_participant(conn, participant_id).ref if participant_id else None
    return cursor.lastrowid, ref


def take_handoff(
    conn: sqlite3.Connection, handoff_id: int, staff_name: str
) -> tuple[str, str | None, str | None, str | None] | None:
    """A staff member takes a hand-off: ("taken", ...) when someone already did; else
    ("ok", the person's Discord id, display name, language); None when unknown."""
    row = conn.execute(
        "SELECT h.status, p.discord_id, p.display_name, p.lang FROM handoffs h"
        " LEFT JOIN participants p ON p.id = h.participant_id WHERE h.id = ?",
        (handoff_id,),
    ).fetchone()
    if row is None:
        return None
    if row[0] != "open":
        return ("taken", None, None, None)
    conn.execute(
        "UPDATE handoffs SET status = 'taken', taken_by = ? WHERE id = ?", (staff_name, handoff_id)
    )
    return ("ok", row[1], row[2], row[3])
