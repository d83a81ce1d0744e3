"""The staff side of the answering: questions the bot could not answer, and answer feedback."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.commands.registry import Option, command
from bot.ports import Person, Reply
from referrals import dialogue

if TYPE_CHECKING:
    from bot.conversation import Conversation

DEFAULT_DAYS = 30


@command("questions", Option("jours", required=False), staff=True)
async def _questions(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    from datetime import UTC, datetime, timedelta

    lang = conv.lang(person)
    days_text = args.get("jours") or str(DEFAULT_DAYS)
    if not days_text.isdigit() or not 1 <= int(days_text) <= 3650:
        return [conv.reply(person, "learning.bad_days", lang, value=days_text[:20])]
    since = (datetime.now(UTC) - timedelta(days=int(days_text))).replace(microsecond=0)
    report = await conv.db.read(dialogue.learning_report, since.isoformat())
    return [conv.reply(person, "learning.report", lang, r=report, days=int(days_text))]
