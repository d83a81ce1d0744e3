"""Commands for outreach actions: ``/action`` (staff), ``/agenda``, ``/jesuisla``, ``/jyvais``,
``/avis``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.commands.registry import Option, command
from bot.logging import get_logger
from bot.ports import Attachment, Person, Reply
from referrals import actions
from referrals.actions import Action, ActionInput

if TYPE_CHECKING:
    from bot.conversation import Conversation

log = get_logger(__name__)

YES = {"oui", "o", "yes", "y", "1", "true"}


def _input(args: dict[str, str]) -> ActionInput:
    return ActionInput(
        type=args.get("type"),
        title=args.get("titre"),
        place=args.get("lieu"),
        start=args.get("debut"),
        end=args.get("fin"),
        capacity=args.get("places"),
    )


async def _sync(conv: Conversation, action: Action, how: str) -> None:
    """Mirror the change as the server's scheduled event; Discord being down changes nothing."""
    events = conv.agenda.events
    if events is None:
        return
    try:
        if how == "create":
            event_id = await events.create_event(action)
            if event_id:
                await conv.db.write(actions.set_discord_event, action.id, event_id)
        elif how == "update" and action.discord_event_id:
            await events.update_event(action)
        elif how == "cancel" and action.discord_event_id:
            await events.cancel_event(action)
    except Exception:
        log.exception("scheduled_event_sync_failed", action=action.id, how=how)


async def checkin_link(conv: Conversation, action: Action) -> str | None:
    """The QR code's link: the check-in page when public, else a Discord invite of the action."""
    base = conv.settings.public_base_url
    if base:
        return f"{base}/a/{action.code}"
    if conv.invites is None:
        return None
    invite = await conv.invites.create_invite(action.code)
    await conv.referrals.add_link(invite, "discord_invite", campaign_id=action.campaign_id)
    return f"https://discord.gg/{invite}"


@command(
    "action",
    Option("type", required=False),
    Option("titre", required=False),
    Option("lieu", required=False),
    Option("debut", required=False),
    Option("fin", required=False),
    Option("places", required=False),
    Option("code", required=False),
    Option("annuler", required=False),
    staff=True,
)
async def _action(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    from bot import poster  # matplotlib: imported when a poster is made

    lang = conv.lang(person)
    now = conv.agenda.now()
    tz = conv.settings.tz
    values = _input(args)
    if not any(args.values()):
        return [conv.reply(person, "usage.action", lang)]
    code = args.get("code")
    if code and (args.get("annuler") or "").strip().lower() in YES:
        action = await conv.db.write(actions.cancel_action, code, now)
        await _sync(conv, action, "cancel")
        return [conv.reply(person, "actions.cancelled", lang, a=conv.agenda.item(action, lang))]
    if code:
        action, changed = await conv.db.write(actions.update_action, code, values, tz=tz, now=now)
        if changed:
            await _sync(conv, action, "update")
        key = "actions.updated" if changed else "actions.unchanged"
        return [conv.reply(person, key, lang, a=conv.agenda.item(action, lang))]
    action = await conv.db.write(
        actions.create_action, values, tz=tz, now=now, created_by=person.name
    )
    await _sync(conv, action, "create")
    link = await checkin_link(conv, action)
    text = poster.PosterText(
        programme=conv.settings.programme_name,
        line=conv.t("actions.poster_line", lang, title=action.title),
        code_caption=conv.t("analytics.poster_code_caption", lang),
        code_line=conv.t("actions.poster_code_line", lang, code=action.code),
    )
    pdf = await poster.poster_pdf_async(text, action.code, link)
    reply = conv.reply(person, "actions.created", lang, a=conv.agenda.item(action, lang), link=link)
    reply.attachments.append(Attachment(f"relais-poster-{action.code}.pdf", pdf))
    return [reply]


@command("agenda")
async def _agenda(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    return [await conv.agenda.agenda_reply(person, conv.lang(person))]


@command("jesuisla", Option("code"), participant=True)
async def _jesuisla(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    lang = conv.lang(person)
    lang_of = conv.texts.lang_of(person.locale) if person.locale else None
    me, new = await conv.referrals.ensure_member(person.id, person.name, lang_of)
    result = await conv.db.write(actions.check_in, args["code"], me.id, conv.agenda.now(), new)
    item = conv.agenda.item(result.action, lang)
    key = "actions.checked_in_again" if result.already else "actions.checked_in"
    return [conv.reply(person, key, lang, a=item, new=result.new_contact)]


@command("jyvais", Option("code"), participant=True)
async def _jyvais(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    lang = conv.lang(person)
    me = await conv.member(person)
    action = await conv.db.write(actions.rsvp, args["code"], me.id, conv.agenda.now())
    return [conv.reply(person, "actions.rsvp_ok", lang, a=conv.agenda.item(action, lang))]


@command("avis", Option("code"), Option("commentaire", rest=True), participant=True)
async def _avis(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    lang = conv.lang(person)
    me = await conv.member(person)
    action = await conv.db.write(
        actions.record_comment, args["code"], me.id, args["commentaire"], conv.agenda.now()
    )
    return [conv.reply(person, "actions.comment_saved", lang, code=action.code)]
