"""The staff side of the answering: questions the bot could not answer, and answer feedback."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from bot.commands.registry import Option, command
from bot.ports import Person, Reply

if TYPE_CHECKING:
    from bot.conversation import Conversation

DEFAULT_DAYS = 30
SHOWN = 15


def learning_report(conn: sqlite3.Connection, since: str) -> dict[str, Any]:
    """Unanswered and low-confidence questions since a date, and feedback counts per entry."""
    unanswered = [
        {"at": at, "text": text, "entry": entry, "score": score}
        for at, text, entry, score in conn.execute(
            "SELECT at, text, entry_id, score FROM questions"
            " WHERE at >= ? AND text IS NOT NULL ORDER BY answered, score, at DESC LIMIT ?",
            (since, SHOWN),
        )
    ]
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
        "questions": unanswered,
        "feedback": feedback,
    }


@command("questions", Option("jours", required=False), staff=True)
async def _questions(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    from datetime import UTC, datetime, timedelta

    lang = conv.lang(person)
    days_text = args.get("jours") or str(DEFAULT_DAYS)
    if not days_text.isdigit() or not 1 <= int(days_text) <= 3650:
        return [conv.reply(person, "learning.bad_days", lang, value=days_text[:20])]
    since = (datetime.now(UTC) - timedelta(days=int(days_text))).replace(microsecond=0)
    report = await conv.db.read(learning_report, since.isoformat())
    return [conv.reply(person, "learning.report", lang, r=report, days=int(days_text))]
