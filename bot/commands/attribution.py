"""Staff command ``attribution``: list and settle ambiguous joins (Discord invite attribution)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.commands.registry import Option, command
from bot.ports import Person, Reply
from referrals import attributions

if TYPE_CHECKING:
    from bot.conversation import Conversation

# Ways to say "nobody brought them" (settled as organic).
NOBODY = {"0", "-", "aucun", "aucune", "personne", "none", "nobody"}


@command(
    "attribution", Option("numero", required=False), Option("parrain", required=False), staff=True
)
async def _attribution(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    lang = conv.lang(person)
    number = args.get("numero", "").lstrip("#")
    if not number:
        pending = await conv.db.read(attributions.open_ambiguous)
        return [conv.reply(person, "attribution.list", lang, items=pending)]
    if not number.isdigit():
        return [conv.reply(person, "attribution.usage", lang)]
    who = args.get("parrain", "").strip()
    if not who:
        return [conv.reply(person, "attribution.usage", lang)]
    referrer_id = None
    if who.lower() not in NOBODY:
        found = await conv.referrals.find(who)
        if found is None:
            return [conv.reply(person, "staff.not_found", lang, who=who)]
        referrer_id = found.id
    member, referrer = await conv.db.write(
        attributions.resolve, int(number), referrer_id, person.name
    )
    return [
        conv.reply(
            person, "attribution.resolved", lang, number=number, name=member, referrer=referrer
        )
    ]
