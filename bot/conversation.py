"""One brain for every channel: (who, command | text | button) -> replies and side effects.

Adapters (console, Discord cogs, the SMS webhook) turn their input into calls on
``Conversation`` and deliver the ``Reply`` objects it returns; they never run SQL themselves.
"""

from __future__ import annotations

import json
import re
import sqlite3
import unicodedata
from typing import Any
from urllib.parse import urlparse

from bot.commands.registry import COMMANDS
from bot.limits import Guard
from bot.logging import get_logger
from bot.ports import Button, InviteMaker, Person, Reply, StaffNotifier, Target
from bot.settings import Settings
from bot.texts import Texts
from referrals import codes
from referrals.errors import RelaisError
from referrals.models import Participant
from referrals.service import ReferralService
from referrals.store import now_iso

log = get_logger(__name__)

DISCORD_LIMIT = 2000
SMS_LIMIT = 1600
INPUT_LIMIT = 2000
YES = {"oui", "o", "yes", "y", "ok", "ouais", "yep", "d'accord", "daccord", "dac", "si"}
NO = {"non", "n", "no", "nope", "annuler", "cancel", "stop"}
_INVITE_RE = re.compile(r"(?:https?://)?discord\.gg/([A-Za-z0-9-]+)/?$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str) -> str:
    """Remove control characters and invisible marks; collapse surrounding space."""
    return _CONTROL.sub("", unicodedata.normalize("NFC", text)).strip()


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).strip(" !.?")


def parse_command_line(text: str) -> tuple[str, dict[str, str]] | None:
    """``/code K7PM 4QXB`` -> ("code", {"code": "K7PM 4QXB"}); None for an unknown command."""
    name, _, rest = text.lstrip("/").partition(" ")
    spec = COMMANDS.get(_fold(name))
    if spec is None:
        return None
    rest = rest.strip()
    args: dict[str, str] = {}
    if spec.name == "inviter":
        match = re.match(r"^(\+?[\d][\d .\-()]*\d)\s*(.*)$", rest)
        if match:
            args["numero"] = match.group(1)
            if match.group(2):
                args["prenom"] = match.group(2)
        elif rest:
            args["numero"] = rest
        return spec.name, args
    words = rest.split()
    for index, option in enumerate(spec.options):
        if option.rest:
            value = " ".join(words[index:])
            if value:
                args[option.name] = value
            break
        if index < len(words):
            args[option.name] = words[index]
    return spec.name, args


def split_message(text: str, limit: int) -> list[str]:
    """Split a long message at line breaks (then spaces) into parts of at most ``limit``."""
    parts: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        if cut <= 0:
            cut = text.rfind(" ", 0, limit)
        if cut <= 0:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip("\n ")
    if text:
        parts.append(text)
    return parts


class Conversation:
    """The conversation engine, shared by every channel."""

    def __init__(
        self,
        *,
        settings: Settings,
        texts: Texts,
        referrals: ReferralService,
        faq: Any,
        sms: Any,
        notifier: StaffNotifier,
        invites: InviteMaker | None = None,
    ) -> None:
        self.settings = settings
        self.texts = texts
        self.referrals = referrals
        self.db = referrals.db
        self.faq = faq
        self.sms = sms
        self.notifier = notifier
        self.invites = invites
        self._offered: dict[str, list[Button]] = {}
        self._offered_staff: list[Button] = []
        self.guard = Guard(self)

    # ------------------------------------------------------------ helpers

    def lang(self, person: Person, participant: Participant | None = None) -> str:
        """The person's language: their Discord locale, else stored, else the default."""
        if person.locale:
            return self.texts.lang_of(person.locale)
        if participant is not None and participant.lang:
            return participant.lang
        return self.settings.lang

    def t(self, key: str, lang: str, **params: Any) -> str:
        """Render a message."""
        return self.texts.render(key, lang, programme=self.settings.programme_name, **params)

    def reply(self, person: Person, key: str, lang: str, **params: Any) -> Reply:
        """A templated reply to the person."""
        return Reply(Target.of(person), self.t(key, lang, **params))

    def _remember_buttons(self, person: Person, replies: list[Reply]) -> list[Reply]:
        for item in replies:
            if item.to == Target.of(person) and item.buttons:
                self._offered[person.key] = item.buttons
        return replies

    async def member(self, person: Person) -> Participant:
        """The participant behind a Discord person, created (organic) on first contact."""
        lang = self.texts.lang_of(person.locale) if person.locale else None
        participant, _new = await self.referrals.ensure_member(person.id, person.name, lang)
        return participant

    async def personal_link(self, participant: Participant) -> str:
        """The member's personal link: the landing page when public, else a Discord invite."""
        code = participant.code or await self.referrals.personal_code(participant.id)
        if self.settings.public_base_url:
            return f"{self.settings.public_base_url}/r/{codes.format_code(code)}"
        existing = await self.referrals.link_for(participant.id, "discord_invite")
        if existing is None and self.invites is not None:
            existing = await self.invites.create_invite(participant.name)
            await self.referrals.add_link(existing, "discord_invite", participant_id=participant.id)
        return f"https://discord.gg/{existing}" if existing else codes.format_code(code)

    # ------------------------------------------------------------ entry points

    async def command(self, person: Person, name: str, args: dict[str, str]) -> list[Reply]:
        """A slash command with its arguments."""
        lang = self.lang(person)
        spec = COMMANDS.get(name)
        if spec is None:
            return [
                self.reply(person, "bot.unknown_command", lang, commands=self.public_commands())
            ]
        if spec.staff and not person.staff:
            return [self.reply(person, "staff.refused", lang)]
        if (refused := await self.guard.screen(person, f"command:{spec.name}")) is not None:
            return refused
        cleaned = {k: clean_text(v)[:INPUT_LIMIT] for k, v in args.items() if v is not None}
        for option in spec.options:
            if option.required and not cleaned.get(option.name):
                return [self.reply(person, f"usage.{spec.name}", lang)]
        if spec.participant and person.staff:
            return [self.reply(person, "staff.not_participant", lang)]
        try:
            replies = await spec.handler(self, person, cleaned)
        except RelaisError as exc:
            replies = [self.reply(person, exc.key, lang, **exc.params)]
        return self._remember_buttons(person, replies)

    async def text(self, person: Person, text: str) -> list[Reply]:
        """Free text (a DM, an SMS, a console line)."""
        text = clean_text(text)
        lang = self.lang(person)
        if person.channel == "sms":
            if (refused := await self.guard.screen(person, "sms", text)) is not None:
                return refused
            return await self.sms.inbound(person, text[:SMS_LIMIT])
        if not text:
            return [self.reply(person, "bot.empty", lang)]
        if len(text) > DISCORD_LIMIT:
            return [self.reply(person, "bot.too_long", lang, limit=DISCORD_LIMIT)]
        if text.startswith("/"):
            parsed = parse_command_line(text)
            if parsed is None:
                return [
                    self.reply(person, "bot.unknown_command", lang, commands=self.public_commands())
                ]
            return await self.command(person, *parsed)
        offered = self._offered.get(person.key) or (self._offered_staff if person.staff else None)
        if offered:
            chosen = self._pick(offered, text)
            if chosen is not None:
                return await self.choice(person, chosen)
        if (refused := await self.guard.screen(person, "text:question")) is not None:
            return refused
        return self._remember_buttons(person, await self.ask(person, text))

    @staticmethod
    def _pick(offered: list[Button], text: str) -> str | None:
        folded = _fold(text)
        if folded.isdigit() and 1 <= int(folded) <= len(offered):
            return offered[int(folded) - 1].id
        if folded in YES:
            return next((b.id for b in offered if b.id.endswith(":yes")), None)
        if folded in NO:
            return next((b.id for b in offered if b.id.endswith(":no")), None)
        return None

    async def choice(self, person: Person, button_id: str) -> list[Reply]:
        """A button pressed (Discord) or a numbered choice (console)."""
        action, _, arg = button_id.partition(":")
        if (refused := await self.guard.screen(person, f"choice:{action}")) is not None:
            return refused
        if self._offered.pop(person.key, None) is None and person.staff:
            self._offered_staff = []
        lang = self.lang(person)
        try:
            if action == "confirm":
                replies = await self._confirm(person, arg, lang)
            elif action == "faq":
                replies = await self._faq_button(person, arg, lang)
            elif action == "handoff":
                replies = await self._handoff_button(person, arg, lang)
            else:
                replies = [self.reply(person, "bot.expired", lang)]
        except RelaisError as exc:
            replies = [self.reply(person, exc.key, lang, **exc.params)]
        return self._remember_buttons(person, replies)

    async def joined(self, person: Person, link: str | None) -> list[Reply]:
        """A member joined the server, through a link or not."""
        lang = self.lang(person)
        link_code, referrer_id, campaign_id = self._resolve_link(link)
        if referrer_id is None and campaign_id is None and link_code is None and link:
            resolved = await self._resolve_code_link(link)
            referrer_id, campaign_id = resolved
        result = await self.referrals.join(
            person.id,
            person.name,
            link_code=link_code,
            referrer_id=referrer_id,
            campaign_id=campaign_id,
            channel="link" if (referrer_id or campaign_id) else "unknown",
            lang=self.texts.lang_of(person.locale) if person.locale else None,
        )
        if not result.new:
            if _recent(result.participant.joined_at):
                # Recorded moments ago (the landing page records before Discord adds the
                # member): the welcome was already sent.
                return []
            return [self.reply(person, "join.welcome_back", lang, name=person.name)]
        replies = [
            Reply(
                Target.of(person),
                self.t(
                    "join.welcome",
                    lang,
                    name=person.name,
                    referrer=result.referrer.name if result.referrer else None,
                    campaign=result.campaign.code if result.campaign else None,
                ),
                ephemeral=False,
            )
        ]
        if result.referrer is not None:
            replies.extend(self.thanks_referrer(result.referrer, person.name))
            await self.guard.saw(result.referrer.id)
        return replies

    def thanks_referrer(self, referrer: Participant, newcomer: str) -> list[Reply]:
        """The thank-you to the member who brought ``newcomer`` (none without Discord)."""
        if not referrer.discord_id:
            return []
        text = self.t("join.thanks_referrer", referrer.lang or self.settings.lang, name=newcomer)
        return [Reply(Target("discord", referrer.discord_id, referrer.name), text, ephemeral=False)]

    def _resolve_link(self, link: str | None) -> tuple[str | None, int | None, int | None]:
        """A Discord invite URL gives its invite code; other links are resolved by code."""
        if not link:
            return None, None, None
        fast = _INVITE_RE.match(link.strip())
        if fast:  # the usual form, without a full URL parse (a viral burst is mostly these)
            return fast.group(1), None, None
        try:
            parsed = urlparse(link.strip() if "://" in link else "https://" + link.strip())
            host = (parsed.hostname or "").lower()
        except ValueError:  # "[" and other malformed URLs: not a Discord invite
            return None, None, None
        if host in {"discord.gg", "discord.com", "www.discord.com", "discordapp.com"}:
            code = parsed.path.rstrip("/").rsplit("/", 1)[-1]
            return (code or None), None, None
        return None, None, None

    async def _resolve_code_link(self, link: str) -> tuple[int | None, int | None]:
        try:
            path = urlparse(link.strip()).path if "://" in link else link.strip()
        except ValueError:
            return None, None
        token = path.rstrip("/").rsplit("/", 1)[-1]
        owner = await self.referrals.find(token) if codes.normalize_personal(token) else None
        if owner is not None:
            return owner.id, None
        campaign = await self.referrals.campaign(token)
        return None, campaign.id if campaign else None

    def public_commands(self) -> list[str]:
        """Names of the commands for young people."""
        return [name for name, spec in COMMANDS.items() if not spec.staff]

    # ------------------------------------------------------------ questions

    async def ask(self, person: Person, question: str) -> list[Reply]:
        """Answer a question from the knowledge base, or offer suggestions and a person.

        The answer is in the message's own language, written for the channel (SMS: short, SMS
        keywords) and for the audience (a relative, or anyone writing by SMS without being a
        member, is addressed as "vous"). A second question in a long message is a button."""
        stored = self.lang(person)
        participant = None
        if not person.staff and person.channel != "sms":
            participant = await self.member(person)
        relative = person.channel == "sms" or (
            participant is not None and participant.kind == "relative"
        )
        inviter = None
        if participant is not None and participant.referrer_id is not None and relative:
            try:
                referrer = await self.referrals.participant(participant.referrer_id)
                inviter = referrer.display_name
            except Exception:  # the name is a courtesy: answer without it
                inviter = None
        answer = self.faq.answer(
            question,
            stored,
            channel="sms" if person.channel == "sms" else "discord",
            audience="relative" if relative else "youth",
            inviter=inviter,
        )
        lang = getattr(answer, "lang", stored) or stored
        await self._log_question(participant, lang, question, answer)
        buttons: list[Button]
        if answer.kind == "answer" and answer.id:
            buttons = [
                Button(f"faq:useful:{answer.id}", self.t("faq.useful", lang), "success"),
                Button(f"faq:useless:{answer.id}", self.t("faq.useless", lang)),
            ]
            buttons += [
                Button(f"faq:show:{entry_id}", title[:80]) for entry_id, title in answer.suggestions
            ]
        elif answer.kind == "unknown":
            buttons = [
                Button(f"faq:show:{entry_id}", title[:80]) for entry_id, title in answer.suggestions
            ]
            buttons.append(Button("handoff:open", self.t("faq.talk_to_person", lang), "primary"))
        else:
            buttons = []
        return [Reply(Target.of(person), answer.text, buttons=buttons)]

    async def _log_question(
        self, participant: Participant | None, lang: str, question: str, answer: Any
    ) -> None:
        answered = answer.kind != "unknown"
        # Minimal data: the text is kept only when staff need it to improve the answers.
        keep_text = answer.kind == "unknown" or (answer.id and answer.score < 0.5)

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO questions (at, participant_id, lang, text, entry_id, score, answered)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    now_iso(),
                    participant.id if participant else None,
                    lang,
                    question if keep_text else None,
                    answer.id,
                    float(answer.score),
                    int(answered),
                ),
            )

        await self.db.write(run)

    async def _faq_button(self, person: Person, arg: str, lang: str) -> list[Reply]:
        action, _, entry_id = arg.partition(":")
        if action in {"useful", "useless"}:

            def run(conn: sqlite3.Connection) -> None:
                conn.execute(
                    "INSERT INTO faq_feedback (entry_id, useful, at) VALUES (?, ?, ?)",
                    (entry_id, int(action == "useful"), now_iso()),
                )

            await self.db.write(run)
            return [self.reply(person, f"faq.thanks_{action}", lang)]
        if action == "show":
            try:
                entry = self.faq.entry(entry_id, lang)
            except KeyError:
                return [self.reply(person, "bot.expired", lang)]
            return [
                Reply(
                    Target.of(person),
                    entry.answer_text,
                    buttons=[
                        Button(f"faq:useful:{entry_id}", self.t("faq.useful", lang), "success"),
                        Button(f"faq:useless:{entry_id}", self.t("faq.useless", lang)),
                    ],
                )
            ]
        return [self.reply(person, "bot.expired", lang)]

    # ------------------------------------------------------------ confirmations

    async def _pend(self, person: Person, kind: str, data: dict[str, Any]) -> int:
        def run(conn: sqlite3.Connection) -> int:
            conn.execute(
                "DELETE FROM pending_actions WHERE person_key = ? AND kind = ?", (person.key, kind)
            )
            cursor = conn.execute(
                "INSERT INTO pending_actions (person_key, kind, data, created_at)"
                " VALUES (?, ?, ?, ?)",
                (person.key, kind, json.dumps(data), now_iso()),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

        return await self.db.write(run)

    async def _take_pending(
        self, person: Person, pending_id: int
    ) -> tuple[str, dict[str, Any]] | None:
        def run(conn: sqlite3.Connection) -> tuple[str, dict[str, Any]] | None:
            row = conn.execute(
                "DELETE FROM pending_actions WHERE id = ? AND person_key = ? RETURNING kind, data",
                (pending_id, person.key),
            ).fetchone()
            return (row[0], json.loads(row[1])) if row else None

        return await self.db.write(run)

    def confirm_buttons(self, pending_id: int, lang: str, yes_key: str) -> list[Button]:
        """The yes / no buttons of a confirmation."""
        return [
            Button(f"confirm:{pending_id}:yes", self.t(yes_key, lang), "success"),
            Button(f"confirm:{pending_id}:no", self.t("bot.cancel", lang), "secondary"),
        ]

    async def _confirm(self, person: Person, arg: str, lang: str) -> list[Reply]:
        pending_id, _, answer = arg.partition(":")
        if not pending_id.isdigit():
            return [self.reply(person, "bot.expired", lang)]
        pending = await self._take_pending(person, int(pending_id))
        if pending is None:
            return [self.reply(person, "bot.expired", lang)]
        kind, data = pending
        if answer != "yes":
            return [self.reply(person, "bot.cancelled", lang)]
        if kind == "invite":
            return await self._send_invitation(person, data, lang)
        if kind == "forget":
            return await self._forget(person, lang)
        return [self.reply(person, "bot.expired", lang)]

    # ------------------------------------------------------------ hand-off

    async def handoff(self, person: Person, message: str | None) -> list[Reply]:
        """A young person asks for a person: a post in the staff channel, an acknowledgement."""
        lang = self.lang(person)
        participant = await self.member(person)

        def run(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "INSERT INTO handoffs (participant_id, at, text) VALUES (?, ?, ?)",
                (participant.id, now_iso(), message),
            )
            assert cursor.lastrowid is not None
            conn.execute(
                "INSERT INTO events (at, kind, participant_id) VALUES (?, 'handoff', ?)",
                (now_iso(), participant.id),
            )
            return cursor.lastrowid

        handoff_id = await self.db.write(run)
        staff_lang = self.settings.lang
        await self.post_staff(
            Reply(
                Target("channel", self.settings.discord_staff_channel),
                self.t(
                    "handoff.staff_post",
                    staff_lang,
                    name=person.name,
                    mention=person.id,
                    message=message,
                    number=handoff_id,
                ),
                buttons=[
                    Button(
                        f"handoff:take:{handoff_id}", self.t("handoff.take", staff_lang), "primary"
                    )
                ],
                ephemeral=False,
            )
        )
        return [self.reply(person, "handoff.ack", lang)]

    async def post_staff(self, reply: Reply) -> None:
        """Post in the staff channel; its buttons can be answered by any staff member."""
        if reply.buttons:
            self._offered_staff = reply.buttons
        await self.notifier.notify_staff(reply)

    async def _handoff_button(self, person: Person, arg: str, lang: str) -> list[Reply]:
        action, _, number = arg.partition(":")
        if action == "open":
            return await self.handoff(person, None)
        if action == "take" and person.staff and number.isdigit():

            def run(conn: sqlite3.Connection) -> tuple[str | None, str | None, str] | None:
                row = conn.execute(
                    "SELECT h.status, p.discord_id, p.display_name, p.lang FROM handoffs h"
                    " JOIN participants p ON p.id = h.participant_id WHERE h.id = ?",
                    (int(number),),
                ).fetchone()
                if row is None:
                    return None
                if row[0] != "open":
                    return ("taken", None, "")
                conn.execute(
                    "UPDATE handoffs SET status = 'taken', taken_by = ? WHERE id = ?",
                    (person.name, int(number)),
                )
                return (row[1], row[2], row[3] or self.settings.lang)

            result = await self.db.write(run)
            if result is None:
                return [self.reply(person, "bot.expired", lang)]
            if result[0] == "taken":
                return [self.reply(person, "handoff.already_taken", lang)]
            discord_id, name, their_lang = result
            replies = [self.reply(person, "handoff.taken_staff", lang, name=name or "?")]
            if discord_id:
                replies.append(
                    Reply(
                        Target("discord", discord_id, name or ""),
                        self.t("handoff.taken_youth", their_lang, staff=person.name),
                    )
                )
            return replies
        return [self.reply(person, "staff.refused", lang)]

    # ------------------------------------------------------------ invitations

    async def _send_invitation(
        self, person: Person, data: dict[str, Any], lang: str
    ) -> list[Reply]:
        participant = await self.member(person)
        link = await self.personal_link(participant)
        outcome = await self.sms.invite(
            participant.id, data["number"], data.get("first_name"), link, lang
        )
        await self.guard.saw(participant.id)
        replies: list[Reply] = []
        if outcome.status == "waiting":
            local = outcome.not_before.astimezone(_zone(self.settings.tz))
            replies.append(
                self.reply(
                    person,
                    "invite.waiting",
                    lang,
                    first_name=data.get("first_name"),
                    when=local.strftime("%d/%m %H:%M"),
                )
            )
        else:
            replies.append(
                self.reply(person, "invite.queued", lang, first_name=data.get("first_name"))
            )
        return replies

    async def _forget(self, person: Person, lang: str) -> list[Reply]:
        from referrals.erasure import forget

        participant = await self.referrals.by_discord_id(person.id)
        if participant is not None:
            await forget(self.db, participant.id)  # erasure, then a WAL checkpoint
        await self.db.write(
            lambda conn: conn.execute(
                "DELETE FROM pending_actions WHERE person_key = ?", (person.key,)
            )
        )
        self._offered.pop(person.key, None)
        return [self.reply(person, "privacy.forgotten", lang)]


def _recent(iso: str, minutes: int = 10) -> bool:
    """True when an ISO time is less than ``minutes`` old."""
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - datetime.fromisoformat(iso) < timedelta(minutes=minutes)


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


# Registering the commands (import for side effects, after Conversation is defined).
from bot.commands import attribution as _attribution  # noqa: E402, F401
from bot.commands import learning as _learning  # noqa: E402, F401
from bot.commands import staff as _staff  # noqa: E402, F401
from bot.commands import youth as _youth  # noqa: E402, F401
