"""One brain for every channel: (who, command | text | button) -> replies and side effects.

Adapters (console, Discord cogs, the SMS webhook) turn their input into calls on
``Conversation`` and deliver the ``Reply`` objects it returns; they never run SQL themselves.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from bot.agenda import Agenda
from bot.commands.registry import COMMANDS
from bot.keywords import Keyword, classify, is_refusal
from bot.limits import Guard
from bot.logging import get_logger
from bot.ports import (
    Button,
    FaqAnswer,
    FaqPort,
    InviteMaker,
    Person,
    Reply,
    SmsPort,
    StaffNotifier,
    Target,
)
from bot.settings import Settings
from bot.texts import Texts
from referrals import codes, dialogue, relatives, sms_inbound
from referrals.erasure import forget, person_tag
from referrals.errors import RelaisError
from referrals.models import Participant
from referrals.service import ReferralService
from referrals.sms_inbound import InboundState
from referrals.store import now_iso

log = get_logger(__name__)

INPUT_LIMIT = 2000
MENU_TTL = timedelta(minutes=5)  # a typed number answers the last menu for this long at most
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


def _keyword_args(spec: Any, rest: str) -> dict[str, str] | None:
    """``key=value`` options (quotes for spaces), positional words filling the others in order;
    None when the line names no option (then the plain positional syntax applies)."""
    names = {option.name for option in spec.options}
    if not any(f"{name}=" in rest for name in names):
        return None
    try:
        words = shlex.split(rest)
    except ValueError:  # an unclosed quote: read as typed
        words = rest.split()
    args: dict[str, str] = {}
    positional: list[str] = []
    for word in words:
        key, sep, value = word.partition("=")
        if sep and _fold(key) in names and _fold(key) not in args:
            args[_fold(key)] = value
        else:
            positional.append(word)
    free = [option for option in spec.options if option.name not in args]
    for index, option in enumerate(free):
        if index >= len(positional):
            break
        if option.rest:
            args[option.name] = " ".join(positional[index:])
            break
        args[option.name] = positional[index]
    return args


def parse_command_line(text: str) -> tuple[str, dict[str, str]] | None:
    """``/code K7PM 4QXB`` -> ("code", {"code": "K7PM 4QXB"}); None for an unknown command.

    Every command also takes ``key=value`` options, quoted when they hold spaces:
    ``/action type=tournoi titre="Tournoi FIFA"``; positional words fill the other options.
    """
    name, _, rest = text.lstrip("/").partition(" ")
    spec = COMMANDS.get(_fold(name))
    if spec is None:
        return None
    rest = rest.strip()
    keyword = _keyword_args(spec, rest)
    if keyword is not None:
        return spec.name, keyword
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


class Conversation:
    """The conversation engine, shared by every channel."""

    def __init__(
        self,
        *,
        settings: Settings,
        texts: Texts,
        referrals: ReferralService,
        faq: FaqPort,
        sms: SmsPort,
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
        # The last menu shown to each person and until when: a typed choice answers it only
        # while nothing else happened since and for MENU_TTL (a stale "1" must not act later).
        self._offered: dict[str, tuple[list[Button], datetime]] = {}
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._offered_staff: list[Button] = []
        self.guard = Guard(self)
        self.agenda = Agenda(self)  # outreach actions: answers, buttons, timed messages

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
        """The last menu in these replies becomes the person's menu; none clears the old one."""
        self._offered.pop(person.key, None)
        for item in replies:
            if item.to == Target.of(person) and item.buttons:
                self._offered[person.key] = (item.buttons, self.clock() + MENU_TTL)
        return replies

    def offer(self, person_key: str, buttons: list[Button], ttl: timedelta = MENU_TTL) -> None:
        """A menu sent outside a reply (a timed message): a typed number answers it for ``ttl``
        (an SMS evaluation is often answered hours later)."""
        self._offered[person_key] = (buttons, self.clock() + ttl)

    def _menu(self, person: Person) -> list[Button] | None:
        """The person's current menu, if it is still fresh."""
        offered = self._offered.get(person.key)
        if offered is None:
            return None
        buttons, until = offered
        if self.clock() > until:
            del self._offered[person.key]
            return None
        return buttons

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
        self._offered.pop(person.key, None)  # something else happened: the old menu is stale
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

    async def text(self, person: Person, text: str, *, answered: bool = False) -> list[Reply]:
        """Free text (a DM, an SMS, a console line).

        ``answered``: the channel's provider already answered the sender (Twilio's own STOP,
        START or HELP): the message and its effects are recorded, but the sender gets nothing
        from Relais, and nothing is counted in the SMS budget.
        """
        text = clean_text(text)
        lang = self.lang(person)
        traits = person.traits
        if traits.by_phone:
            return await self.sms_text(person, text, answered=answered)
        if not text:
            return [self.reply(person, "bot.empty", lang)]
        if len(text) > traits.max_text:
            return [self.reply(person, "bot.too_long", lang, limit=traits.max_text)]
        if text.startswith("/"):
            parsed = parse_command_line(text)
            if parsed is None:
                return [
                    self.reply(person, "bot.unknown_command", lang, commands=self.public_commands())
                ]
            return await self.command(person, *parsed)
        offered = self._menu(person) or (self._offered_staff if person.staff else None)
        if offered:
            chosen = self._pick(offered, text)
            if chosen is not None:
                return await self.choice(person, chosen)
        self._offered.pop(person.key, None)  # free text: an unmatched "1" is just text
        if (refused := await self.guard.screen(person, "text:question")) is not None:
            return refused
        return self._remember_buttons(person, await self.ask(person, text))

    @staticmethod
    def _pick(offered: list[Button], text: str) -> str | None:
        folded = _fold(text)
        if folded.isdigit() and 1 <= int(folded) <= len(offered):
            return offered[int(folded) - 1].id
        chosen = None
        if folded in YES:
            chosen = next((b.id for b in offered if b.id.endswith(":yes")), None)
        elif folded in NO:
            chosen = next((b.id for b in offered if b.id.endswith(":no")), None)
        # An action's evaluation answered in words ("peut-être" for the button "Peut-être").
        words = folded.replace("-", " ")
        return chosen or next(
            (
                b.id
                for b in offered
                if b.id.startswith("act:") and _fold(b.label).replace("-", " ") == words
            ),
            None,
        )

    async def choice(self, person: Person, button_id: str) -> list[Reply]:
        """A button pressed (Discord) or a numbered choice (console)."""
        action, _, arg = button_id.partition(":")
        current = self._menu(person)
        was_offered = current is not None and any(b.id == button_id for b in current)
        if (refused := await self.guard.screen(person, f"choice:{action}")) is not None:
            self._offered.pop(person.key, None)
            return refused
        if self._offered.pop(person.key, None) is None and person.staff:
            self._offered_staff = []
        lang = self.lang(person)
        try:
            if button_id == "handoff:open" and not was_offered:
                # An old button (or a menu that was not the last thing offered): a staff
                # request is never opened without the person saying so now.
                replies = await self._confirm_handoff(person, lang)
            elif action == "confirm":
                replies = await self._confirm(person, arg, lang)
            elif action == "faq":
                replies = await self._faq_button(person, arg, lang)
            elif action == "handoff":
                replies = await self._handoff_button(person, arg, lang)
            elif action == "forget" and not person.staff:
                return await self.command(person, "oublier", {})  # asks to confirm
            elif action == "questions" and arg.startswith("done:"):
                replies = await self.command(person, "traiter", {"numero": arg[5:]})
            elif action == "act":
                replies = await self.agenda.choice(person, arg, lang)
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

    # ------------------------------------------------------------ relatives

    async def relative_visit(self, token: str) -> tuple[relatives.Visit | None, list[Reply]]:
        """An invited relative opened their own link (``/i/TOKEN``): a positive signal.

        The first visit makes them a participant; the member who invited them is told.
        """
        found = await self.db.write(relatives.visit, token, now_iso())
        replies: list[Reply] = []
        if found is not None and found.joined and found.member_discord_id:
            replies.append(
                Reply(
                    Target("discord", found.member_discord_id, ""),
                    self.t(
                        "sms.relative_joined",
                        self.texts.lang_of(found.member_lang or self.settings.lang),
                        first_name=found.first_name,
                    ),
                    ephemeral=False,
                )
            )
        return found, replies

    # ------------------------------------------------------------ SMS

    async def sms_text(self, person: Person, text: str, *, answered: bool = False) -> list[Reply]:
        """A message from a phone-addressed ``person`` (an SMS: the adapter parsed the webhook
        and dropped provider retries).

        Screening happens here once: who may get a reply (a mobile of an allowed country), bans
        and rate limits (keywords are never limited), then the inbound transaction (opt-out,
        opt-in, an invited relative joining), then the keyword command or the question. Each
        reply to the sender goes through the SMS budget (``SmsPort.account_reply``).
        """
        at = now_iso()
        try:
            number = self.sms.normalize_number(person.id)
        except RelaisError as exc:
            # Premium, foreign, fixed-line or alphanumeric senders get no reply (SMS pumping).
            log.info("sms_sender_refused", reason=exc.key)
            await self.db.write(sms_inbound.refused_sender, exc.key, at)
            return []
        traits = person.traits
        text = text[: traits.max_text]
        hashed = self.sms.hash(number)
        keyword = classify(text) if traits.keywords else None
        answer: FaqAnswer | None = None
        via = "keyword"
        if keyword is None and traits.keywords and is_refusal(text):
            # "stop merci", "arrêtez", "ne me recontactez plus": an opt-out, never rate limited.
            keyword, via = Keyword.STOP, "words"
        if keyword is None:
            refused = await self.guard.screen(person, "sms", phone_hash=hashed)
            if refused is not None:
                return await self._sms_out(person, number, refused, answered)
            if text.strip():
                hint = await self.db.read(sms_inbound.known_lang, hashed)
                answer = self._faq_answer(text, self.texts.lang_of(hint or self.settings.lang))
                stop = answer is not None and answer.kind == "answer" and answer.id == "stop"
                if stop and traits.keywords:
                    # A refusal in the person's own words is an opt-out, exactly like STOP.
                    keyword, via = Keyword.STOP, "words"
        state = await self.db.write(
            sms_inbound.record_inbound, hashed, keyword.value if keyword else None, at, via
        )
        if state.silent:
            return []
        turn = SmsTurn(number, hashed, state, self.texts.lang_of(state.lang or self.settings.lang))
        if state.joined:
            log.info("sms_participant_joined", participant=state.participant_id)
        # An action's evaluation menu, its comment, or an action's code (check-in). OUI keeps
        # its meaning for a relative it just made a participant.
        agenda = None
        if keyword is None or (keyword is Keyword.YES and not state.joined):
            agenda = await self.agenda.sms_text(person, turn, text, keyword is None)
        if agenda is not None:
            replies = agenda
        elif keyword is not None:
            replies = await SMS_KEYWORDS[keyword](self, person, turn, text)
        elif not text.strip():
            replies = [self.reply(person, self._register(turn, "sms.help"), turn.lang)]
        else:
            replies = await self._sms_question(person, turn, text, answer)
        replies = await self._sms_out(person, number, replies, answered)
        if state.joined and state.member_discord_id:
            # The member who invited them hears that it worked (first name only).
            replies.append(
                Reply(
                    Target("discord", state.member_discord_id, ""),
                    self.t(
                        "sms.relative_joined",
                        self.texts.lang_of(state.member_lang or self.settings.lang),
                        first_name=state.first_name,
                    ),
                    ephemeral=False,
                )
            )
        return replies

    async def _sms_out(
        self, person: Person, number: str, replies: list[Reply], answered: bool = False
    ) -> list[Reply]:
        """Replies to a phone-addressed sender: none when the provider already answered; on a
        paid channel each passes the SMS side (GSM-7, segments, daily budget)."""
        kept: list[Reply] = []
        me = Target.of(person)
        traits = person.traits
        for reply in replies:
            if reply.to == me:
                if answered:
                    continue  # the provider answered in its words: no second (paid) reply
                body = reply.text
                if traits.paid:
                    fitted = await self.sms.account_reply(number, reply.text)
                    if fitted is None:  # past the daily budget: no reply (staff told once)
                        continue
                    body = fitted
                reply = Reply(
                    me,
                    body,
                    buttons=reply.buttons if traits.buttons else [],
                    ephemeral=reply.ephemeral,
                )
            kept.append(reply)
        return kept

    def _faq_answer(self, text: str, lang: str) -> FaqAnswer | None:
        try:
            return self.faq.answer(text, lang)
        except Exception:
            log.exception("sms_faq_failed")
            return None

    async def _sms_question(
        self, person: Person, turn: SmsTurn, text: str, answer: FaqAnswer | None
    ) -> list[Reply]:
        try:
            if answer is None:
                answer = self.faq.answer(text, turn.lang)
            await self._store_question(turn.state.participant_id, turn.lang, text, answer)
            register = person.traits.register
            dated = await self.agenda.answer(text, turn.lang, answer, register)  # actions' dates
            if dated is not answer:
                return [Reply(Target.of(person), dated.text)]
            if answer.id:
                # The message's own language; a sender who is not a member is addressed as "vous".
                lang = getattr(answer, "lang", turn.lang) or turn.lang
                audience = "relative" if turn.state.relative else "youth"  # relatives: vous
                # An invited relative's text may name the member who invited them ("how did you
                # get my number?").
                inviter = turn.state.inviter if turn.state.relative else None
                reply = self.faq.short_answer(answer.id, lang, audience, inviter)
                return [Reply(Target.of(person), reply)]
        except Exception:
            log.exception("sms_faq_failed")
        return [self.reply(person, self._register(turn, "sms.unknown"), turn.lang)]

    async def _handoff_allowed(self, key: str) -> bool:
        now = self.guard.clock()
        since = (now - timedelta(days=1)).isoformat(timespec="seconds")
        return await self.db.write(
            dialogue.handoff_allowed, person_tag(key), now.isoformat(timespec="seconds"), since
        )

    @staticmethod
    def _register(turn: SmsTurn, key: str) -> str:
        """The "vous" version of an SMS text for a relative (or a stranger), else ``key``."""
        return f"{key}_vous" if turn.state.relative else key

    async def sms_stop(self, person: Person, turn: SmsTurn, text: str) -> list[Reply]:
        """STOP (ARRET..., or a refusal in words): opted out by the inbound transaction; confirm
        once, in the sender's register."""
        return [self.reply(person, self._register(turn, "sms.stop_confirmed"), turn.lang)]

    async def sms_yes(self, person: Person, turn: SmsTurn, text: str) -> list[Reply]:
        """OUI: an invited relative says yes and joins; they get their code to pass it on."""
        if turn.state.joined and turn.state.participant_id is not None:
            return await self.sms_code(person, turn, text)
        return [self.reply(person, self._register(turn, "sms.help"), turn.lang)]

    async def sms_start(self, person: Person, turn: SmsTurn, text: str) -> list[Reply]:
        """START: opted back in."""
        return [self.reply(person, "sms.start_confirmed", turn.lang)]

    async def sms_help(self, person: Person, turn: SmsTurn, text: str) -> list[Reply]:
        """AIDE / HELP: the keywords."""
        return [self.reply(person, self._register(turn, "sms.help"), turn.lang)]

    async def sms_code(self, person: Person, turn: SmsTurn, text: str) -> list[Reply]:
        """CODE: the sender's personal code (a stranger becomes an organic participant)."""
        if turn.state.participant_id is None:
            return [self.reply(person, self._register(turn, "sms.help"), turn.lang)]
        code = await self.referrals.personal_code(turn.state.participant_id)
        formatted = codes.format_code(code)
        base = self.settings.public_base_url
        link = f"{base}/r/{formatted}" if base else None
        key = "sms.your_code_relative" if turn.state.relative else "sms.your_code"
        return [self.reply(person, key, turn.lang, code=formatted, link=link)]

    async def sms_person(self, person: Person, turn: SmsTurn, text: str) -> list[Reply]:
        """CONSEILLER: a hand-off (at most two a day); staff get the number to call back."""
        if not await self._handoff_allowed(f"{person.channel}:{turn.number}"):
            return [self.reply(person, "limits.handoff", turn.lang)]
        _handoff_id, ref = await self.db.write(
            dialogue.open_handoff, turn.state.participant_id, text[:500], now_iso(), "sms_handoff"
        )
        # The person asked to be contacted: staff get the number to call back (never logged).
        post = self.t(
            "sms.staff_handoff",
            self.settings.lang,
            number=turn.number,
            ref=ref,
            their_lang=turn.lang,
        )
        channel = self.settings.discord_staff_channel
        try:
            await self.post_staff(Reply(Target("channel", channel, channel), post, ephemeral=False))
        except Exception:
            log.exception("sms_handoff_notify_failed")
        return [self.reply(person, "sms.handoff_ok", turn.lang)]

    # ------------------------------------------------------------ questions

    async def ask(self, person: Person, question: str) -> list[Reply]:
        """Answer a question from the knowledge base, or offer suggestions and a person.

        The answer is in the message's own language, written for the channel (SMS: short, SMS
        keywords) and for the audience (a relative, or anyone writing by SMS without being a
        member, is addressed as "vous"). A second question in a long message is a button."""
        stored = self.lang(person)
        traits = person.traits
        participant = None
        if not person.staff and not traits.by_phone:
            participant = await self.member(person)
        relative = traits.by_phone or (participant is not None and participant.kind == "relative")
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
            channel=traits.register,
            audience="relative" if relative else "youth",
            inviter=inviter,
        )
        lang = getattr(answer, "lang", stored) or stored
        answer = await self.agenda.answer(  # dates and places of outreach actions
            question, lang, answer, traits.register
        )
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
        if answer.id == "stop":
            return [self._stop_on_discord(person, answer.text, lang)]
        return [Reply(Target.of(person), answer.text, buttons=buttons)]

    def _stop_on_discord(self, person: Person, text: str, lang: str) -> Reply:
        """A refusal on Discord (issue 16 item 5): how to stop the bot's DMs, and /oublier."""
        return Reply(
            Target.of(person),
            f"{text}\n\n{self.t('privacy.stop_discord', lang)}",
            buttons=[Button("forget:ask", self.t("privacy.stop_discord_forget", lang), "danger")],
        )

    async def _log_question(
        self, participant: Participant | None, lang: str, question: str, answer: FaqAnswer
    ) -> None:
        await self._store_question(participant.id if participant else None, lang, question, answer)

    async def _store_question(
        self, participant_id: int | None, lang: str, question: str, answer: FaqAnswer
    ) -> None:
        answered = answer.kind != "unknown"
        # Minimal data: the text is kept only when staff need it to improve the answers.
        keep_text = answer.kind == "unknown" or bool(answer.id and answer.score < 0.5)
        if _menu_word(question):  # "1", "oui", "STOP": answers to menus, nothing to learn from
            keep_text = False
        await self.db.write(
            dialogue.log_question,
            now_iso(),
            participant_id,
            lang,
            question if keep_text else None,
            answer.id,
            float(answer.score),
            answered,
        )

    async def _faq_button(self, person: Person, arg: str, lang: str) -> list[Reply]:
        action, _, entry_id = arg.partition(":")
        if action in {"useful", "useless"}:
            await self.db.write(dialogue.add_feedback, entry_id, action == "useful", now_iso())
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
        return await self.db.write(dialogue.pend, person.key, kind, data, now_iso())

    async def _take_pending(
        self, person: Person, pending_id: int
    ) -> tuple[str, dict[str, Any]] | None:
        return await self.db.write(dialogue.take_pending, person.key, pending_id)

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
        if kind == "handoff":
            return await self.handoff(person, None)
        return [self.reply(person, "bot.expired", lang)]

    async def _confirm_handoff(self, person: Person, lang: str) -> list[Reply]:
        pending_id = await self._pend(person, "handoff", {})
        return [
            Reply(
                Target.of(person),
                self.t("handoff.confirm", lang),
                buttons=self.confirm_buttons(pending_id, lang, "handoff.confirm_yes"),
            )
        ]

    # ------------------------------------------------------------ hand-off

    async def handoff(self, person: Person, message: str | None) -> list[Reply]:
        """A young person asks for a person: a post in the staff channel, an acknowledgement."""
        lang = self.lang(person)
        if not await self._handoff_allowed(f"{person.channel}:{person.id}"):
            return [self.reply(person, "limits.handoff", lang)]
        participant = await self.member(person)
        handoff_id, _ref = await self.db.write(
            dialogue.open_handoff, participant.id, message, now_iso()
        )
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
            result = await self.db.write(dialogue.take_handoff, int(number), person.name)
            if result is None:
                return [self.reply(person, "bot.expired", lang)]
            if result[0] == "taken":
                return [self.reply(person, "handoff.already_taken", lang)]
            _status, discord_id, name, stored_lang = result
            their_lang = stored_lang or self.settings.lang
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
            participant.id,
            data["number"],
            data.get("first_name"),
            link,
            lang,
            sender_name=data.get("sender_name"),
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
        participant = await self.referrals.by_discord_id(person.id)
        if participant is not None:
            invite = await self.referrals.link_for(participant.id, "discord_invite")
            delete_invite = getattr(self.invites, "delete_invite", None)
            if invite and delete_invite is not None:
                await delete_invite(invite)  # the member's server invite goes with their data
            await forget(self.db, participant.id)  # erasure, then a WAL checkpoint
        await self.db.write(dialogue.drop_pending, person.key)
        self._offered.pop(person.key, None)
        return [self.reply(person, "privacy.forgotten", lang)]


@dataclass(frozen=True)
class SmsTurn:
    """One inbound SMS once screened: the sender's number, its keyed hash, what was recorded."""

    number: str  # E.164
    phone_hash: str
    state: InboundState
    lang: str


SmsKeywordHandler = Callable[[Conversation, Person, SmsTurn, str], Awaitable[list[Reply]]]
# SMS keywords are commands of the brain, as slash commands are on Discord.
SMS_KEYWORDS: dict[Keyword, SmsKeywordHandler] = {
    Keyword.STOP: Conversation.sms_stop,
    Keyword.START: Conversation.sms_start,
    Keyword.HELP: Conversation.sms_help,
    Keyword.CODE: Conversation.sms_code,
    Keyword.PERSON: Conversation.sms_person,
    Keyword.YES: Conversation.sms_yes,
}


def _menu_word(text: str) -> bool:
    """True for a menu answer or a keyword ("2", "oui", "stop"), never a question to review."""
    folded = _fold(text)
    return folded.isdigit() or folded in YES or folded in NO or classify(text) is not None


def _recent(iso: str, minutes: int = 10) -> bool:
    """True when an ISO time is less than ``minutes`` old."""
    return datetime.now(UTC) - datetime.fromisoformat(iso) < timedelta(minutes=minutes)


def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


# Registering the commands (import for side effects, after Conversation is defined).
from bot.commands import actions as _actions  # noqa: E402, F401
from bot.commands import attribution as _attribution  # noqa: E402, F401
from bot.commands import learning as _learning  # noqa: E402, F401
from bot.commands import staff as _staff  # noqa: E402, F401
from bot.commands import youth as _youth  # noqa: E402, F401
