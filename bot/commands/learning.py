"""The staff side of the answering: questions to act on, answer feedback, marking them handled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bot.commands.registry import Option, command
from bot.ports import Button, Person, Reply, Target
from referrals import dialogue
from referrals.store import now_iso

if TYPE_CHECKING:
    from bot.conversation import Conversation

DEFAULT_DAYS = 30
BUTTONS = 5  # "handled" buttons under the list (Discord shows at most 25; five stay readable)


@command("questions", Option("jours", required=False), staff=True)
async def _questions(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    lang = conv.lang(person)
    days_text = args.get("jours") or str(DEFAULT_DAYS)
    if not days_text.isdigit() or not 1 <= int(days_text) <= 3650:
        return [conv.reply(person, "learning.bad_days", lang, value=days_text[:20])]
    since = (datetime.now(UTC) - timedelta(days=int(days_text))).replace(microsecond=0)
    report = await conv.db.read(dialogue.learning_report, since.isoformat())
    buttons = [
        Button(f"questions:done:{q['id']}", conv.t("learning.done_button", lang, id=q["id"]))
        for q in report["questions"][:BUTTONS]
    ]
    text = conv.t("learning.report", lang, r=report, days=int(days_text))
    return [Reply(Target.of(person), text, buttons=buttons)]


@command("traiter", Option("numero"), Option("entree", required=False), staff=True)
async def _handled(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    lang = conv.lang(person)
    number = args["numero"].lstrip("#n°º ")
    if not number.isdigit():
        return [conv.reply(person, "learning.bad_number", lang, value=args["numero"][:20])]
    entry_id = (args.get("entree") or "").strip().lower() or None
    if entry_id is not None:
        try:
            conv.faq.entry(entry_id, lang)
        except KeyError:
            return [conv.reply(person, "learning.unknown_entry", lang, value=entry_id[:40])]
    done = await conv.db.write(dialogue.handle_question, int(number), now_iso(), entry_id)
    if done is None:
        return [conv.reply(person, "learning.unknown_question", lang, value=number)]
    return [conv.reply(person, "learning.handled", lang, **done)]
