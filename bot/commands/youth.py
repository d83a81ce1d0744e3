"""Commands for young people: referral, invitations, questions, hand-off, their data."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from bot.commands.registry import Option, command
from bot.ports import Attachment, Person, Reply, Target

if TYPE_CHECKING:
    from bot.conversation import Conversation


@command("parrainage", participant=True)
async def _parrainage(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    lang = conv.lang(person)
    me = await conv.member(person)
    code = me.code or await conv.referrals.personal_code(me.id)
    link = await conv.personal_link(me)
    chain = await conv.referrals.chain(me.id)
    return [
        conv.reply(
            person,
            "referral.card",
            lang,
            code=code,
            link=link,
            recruits=len(chain.recruits),
            total=chain.subtree_size - 1,
        )
    ]


@command("code", Option("code", rest=True), participant=True)
async def _code(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    lang = conv.lang(person)
    me = await conv.member(person)
    result = await conv.referrals.redeem(me.id, args["code"])
    replies = []
    if result.referrer is not None:
        await conv.guard.saw(result.referrer.id)
        replies.append(conv.reply(person, "code.ok_peer", lang, name=result.referrer.name))
        replies.extend(conv.thanks_referrer(result.referrer, person.name))
    else:
        assert result.campaign is not None
        replies.append(conv.reply(person, "code.ok_campaign", lang, campaign=result.campaign.code))
    return replies


@command("inviter", Option("numero"), Option("prenom", required=False, rest=True), participant=True)
async def _inviter(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    lang = conv.lang(person)
    me = await conv.member(person)
    number = await conv.sms.check_invitation(me.id, args["numero"])
    first_name = args.get("prenom") or None
    if first_name:
        first_name = first_name[:40]
    data = {"number": number, "first_name": first_name}
    if args.get("moi"):  # the member's first name as the SMS shows it (the /inviter modal)
        data["sender_name"] = args["moi"][:40]
    pending_id = await conv._pend(person, "invite", data)
    return [
        Reply(
            Target.of(person),
            conv.t("invite.confirm", lang, first_name=first_name),
            buttons=conv.confirm_buttons(pending_id, lang, "invite.confirm_yes"),
        )
    ]


@command("question", Option("texte", rest=True))
async def _question(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    return await conv.ask(person, args["texte"])


@command("conseiller", Option("message", required=False, rest=True), participant=True)
async def _conseiller(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    return await conv.handoff(person, args.get("message"))


@command("mesdonnees")
async def _mesdonnees(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    from referrals.erasure import personal_data

    lang = conv.lang(person)
    participant = await conv.referrals.by_discord_id(person.id)
    if participant is None:
        return [conv.reply(person, "privacy.nothing", lang)]
    data = await conv.db.read(personal_data, participant.id)
    return [
        Reply(
            Target.of(person),
            conv.t("privacy.summary", lang, d=data),
            attachments=[
                Attachment(
                    "mes-donnees.json",
                    json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8"),
                )
            ],
        )
    ]


@command("oublier")
async def _oublier(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    lang = conv.lang(person)
    pending_id = await conv._pend(person, "forget", {})
    return [
        Reply(
            Target.of(person),
            conv.t("privacy.confirm_forget", lang),
            buttons=conv.confirm_buttons(pending_id, lang, "privacy.confirm_forget_yes"),
        )
    ]


@command("aide")
async def _aide(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    return [conv.reply(person, "bot.help", conv.lang(person), staff=person.staff)]
