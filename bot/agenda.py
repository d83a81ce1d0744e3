"""The agenda of outreach actions in the conversation (issue 22).

``Agenda`` belongs to the conversation engine (``conversation.agenda``): it answers questions
about dates and places from the agenda, formats ``/agenda``, handles the action buttons (J'y vais,
the evaluation), and runs the timed messages (the reminder of the day before, the evaluation after
the end) from the maintenance loop. Its ``clock`` is replaceable, so tests control the time.
The domain rules and every SQL statement are in ``referrals.actions``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from bot.logging import get_logger
from bot.ports import Button, Person, Reply, Target
from referrals import actions
from referrals.actions import Action, ActionError, Recipient
from referrals.timeutil import to_iso

if TYPE_CHECKING:
    from bot.conversation import Conversation, SmsTurn

log = get_logger(__name__)

AGENDA_DAYS = 14
NEXT_DAYS = 90  # "le prochain tournoi": looked for this far ahead
ANSWER_MAX = 3  # actions listed in an answer
AGENDA_BUTTONS = 5
AGENDA_ENTRIES = ("lieux-horaires", "activites")
# Words that ask for a date or a place (folded): with an action type, the agenda answers.
_ASKS = re.compile(
    r"\b(quand|prochain|prochaine|when|next|ou est|ou sera|ou se trouve|where|aujourd|today|"
    r"demain|tomorrow|semaine|week|date|heure|horaire|y a|il y a|is there|are there|ce soir|"
    r"tonight|weekend|week-end)"
)
_TODAY = re.compile(r"\b(aujourd|today|ce soir|tonight|ce matin|cet aprem)")
_TOMORROW = re.compile(r"\b(demain|tomorrow)")
_WEEK = re.compile(r"\b(cette semaine|this week|la semaine)")
# An SMS that is an action's code ("TOURNOI-0912", "ici tournoi-0912"), folded: a check-in.
_SMS_CODE = re.compile(
    r"^(?:je suis la|jesuisla|ici|present|presente)?[\s:]*([a-z]+-\d{4}(?:-\d{1,3})?)$"
)
# An SMS evaluation is often answered hours later: its menu stays fresh until the reminder.
SMS_MENU_TTL = actions.EVAL_REMINDER_AFTER
COMMENT_TTL = timedelta(hours=2)  # the free text after the last answer is the comment


class ScheduledEvents(Protocol):
    """The server's scheduled events (Discord); the console and tests may have none."""

    async def create_event(self, action: Action) -> str | None:
        """Create the event of a new action; its id."""
        ...

    async def update_event(self, action: Action) -> None:
        """Change the event after the action changed."""
        ...

    async def cancel_event(self, action: Action) -> None:
        """Cancel the event of a cancelled action."""
        ...


Deliver = Callable[[list[Reply]], Awaitable[None]]


def asked_type(question: str) -> str | None:
    """The action type a question names (``tournoi`` for "le prochain tournoi ?"), if any."""
    words = set(re.findall(r"[a-z0-9-]+", actions.fold(question)))
    for kind, names in actions.TYPE_WORDS.items():
        if kind != "autre" and (kind in words or words & set(names)):
            return kind
    return None


class Agenda:
    """Agenda answers, action buttons and timed messages for one conversation engine."""

    def __init__(self, conversation: Conversation) -> None:
        self.conv = conversation
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.events: ScheduledEvents | None = None  # set by the Discord adapter
        self.deliver: Deliver | None = None  # sends timed messages (the Discord adapter's)
        # SMS evaluations answered: the person's next free text (within COMMENT_TTL) is the
        # comment on that action. Keyed like menus ("sms:+336...").
        self._comments: dict[str, tuple[int, datetime]] = {}

    def now(self) -> datetime:
        """The current time (aware)."""
        return self.clock()

    @property
    def tz(self) -> ZoneInfo:
        """The programme's time zone (``RELAIS_TZ``)."""
        return ZoneInfo(self.conv.settings.tz)

    # ------------------------------------------------------------ formatting

    def _weekday(self, moment: datetime, lang: str) -> str:
        names = self.conv.t("actions.weekdays", lang).split(",")
        return names[moment.weekday()].strip()

    def item(self, action: Action, lang: str) -> dict[str, Any]:
        """One action as template values (local day and hours)."""
        start, end = action.start.astimezone(self.tz), action.end.astimezone(self.tz)
        return {
            "code": action.code,
            "kind": self.conv.t(f"actions.type_{action.type}", lang),
            "title": action.title,
            "place": action.place,
            "day": f"{self._weekday(start, lang)} {start:%d/%m}",
            "start": f"{start:%H:%M}",
            "end": f"{end:%H:%M}" if end.date() == start.date() else f"{end:%d/%m %H:%M}",
            "places": action.capacity,
        }

    def lines(self, found: list[Action], lang: str) -> list[str]:
        """One line per action."""
        return [self.conv.t("actions.line", lang, a=self.item(a, lang)) for a in found]

    def by_day(self, found: list[Action], lang: str) -> list[dict[str, Any]]:
        """Actions grouped by local day, in order."""
        days: list[dict[str, Any]] = []
        for action in found:
            item = self.item(action, lang)
            if not days or days[-1]["day"] != item["day"]:
                days.append({"day": item["day"], "lines": []})
            days[-1]["lines"].append(self.conv.t("actions.agenda_item", lang, a=item))
        return days

    # ------------------------------------------------------------ /agenda and answers

    async def agenda_reply(self, person: Person, lang: str) -> Reply:
        """The next 14 days, by day, with a "J'y vais" button per action."""
        now = self.now()
        found = await self.conv.db.read(actions.upcoming, now, now + timedelta(days=AGENDA_DAYS))
        if not found:
            return self.conv.reply(person, "actions.agenda_empty", lang, days=AGENDA_DAYS)
        reply = self.conv.reply(
            person, "actions.agenda", lang, groups=self.by_day(found, lang), n=AGENDA_DAYS
        )
        if not person.staff:
            reply.buttons = [
                Button(
                    f"act:go:{a.code}",
                    self.conv.t("actions.go_button", lang, title=a.title)[:80],
                    "primary",
                )
                for a in found[:AGENDA_BUTTONS]
            ]
        return reply

    async def answer(
        self, question: str, lang: str, faq_answer: Any, channel: str = "discord"
    ) -> Any:
        """The FAQ answer, or (for places and dates of actions) one from the agenda.

        The ``lieux-horaires`` and ``activites`` entries, and any question naming an action type
        with a "when / where" word, are answered from the agenda; the static answer stays when
        the agenda is empty.
        """
        folded = actions.fold(question)
        kind = asked_type(question)
        entry = getattr(faq_answer, "id", None) if faq_answer.kind == "answer" else None
        if entry not in AGENDA_ENTRIES and not (kind and _ASKS.search(folded)):
            return faq_answer
        text = await self.answer_text(folded, kind, lang, sms=channel == "sms")
        if text is None:
            return faq_answer
        return replace(faq_answer, text=text, kind="answer", id=entry or "agenda")

    async def answer_text(
        self, folded: str, kind: str | None, lang: str, sms: bool = False
    ) -> str | None:
        """The agenda's answer; None when the agenda is empty."""
        now = self.now()
        local = now.astimezone(self.tz)
        if not await self.conv.db.read(actions.any_upcoming, now):
            return None
        period = "next"
        low, high = now, now + timedelta(days=NEXT_DAYS)
        if _TODAY.search(folded):
            period = "today"
            high = datetime.combine(local.date() + timedelta(days=1), time(), self.tz)
        elif _TOMORROW.search(folded):
            period = "tomorrow"
            low = datetime.combine(local.date() + timedelta(days=1), time(), self.tz)
            high = low + timedelta(days=1)
        elif _WEEK.search(folded):
            period = "week"
            high = datetime.combine(
                local.date() + timedelta(days=7 - local.weekday()), time(), self.tz
            )
        found = await self.conv.db.read(actions.upcoming, low, high, kind)
        kind_label = self.conv.t(f"actions.type_{kind}", lang) if kind else None
        if found:
            return self.conv.t(
                "actions.answer",
                lang,
                lines=self.lines(found[:ANSWER_MAX], lang),
                kind=kind_label,
                period=period,
                sms=sms,
            )
        soon = await self.conv.db.read(actions.upcoming, now, now + timedelta(days=NEXT_DAYS))
        return self.conv.t(
            "actions.answer_none",
            lang,
            kind=kind_label,
            period=period,
            lines=self.lines(soon[:ANSWER_MAX], lang),
            sms=sms,
        )

    # ------------------------------------------------------------ buttons

    async def choice(self, person: Person, arg: str, lang: str) -> list[Reply]:
        """``act:go:CODE``, ``act:rate:ID:N``, ``act:rec:ID:ANSWER``, ``act:stop``."""
        what, _, rest = arg.partition(":")
        if person.staff or person.channel != "discord":
            return [self.conv.reply(person, "bot.expired", lang)]
        me = await self.conv.member(person)
        now = self.now()
        if what == "go":
            action = await self.conv.db.write(actions.rsvp, rest, me.id, now)
            return [self.conv.reply(person, "actions.rsvp_ok", lang, a=self.item(action, lang))]
        if what == "stop":
            await self.conv.db.write(actions.opt_out, me.id, now)
            return [self.conv.reply(person, "actions.opted_out", lang)]
        action_id, _, value = rest.partition(":")
        if not action_id.isdigit():
            return [self.conv.reply(person, "bot.expired", lang)]
        if what == "rate" and value.isdigit():
            if not await self.conv.db.write(
                actions.record_rating, int(action_id), me.id, int(value)
            ):
                return [self.conv.reply(person, "bot.expired", lang)]
            return [
                Reply(
                    Target.of(person),
                    self.conv.t("actions.eval_recommend", lang),
                    buttons=[
                        Button(
                            f"act:rec:{action_id}:{answer}",
                            self.conv.t(f"actions.recommend_{answer}", lang),
                        )
                        for answer in actions.RECOMMEND
                    ],
                )
            ]
        if what == "rec":
            if not await self.conv.db.write(actions.record_recommend, int(action_id), me.id, value):
                return [self.conv.reply(person, "bot.expired", lang)]
            code = await self.conv.db.read(actions.code_of, int(action_id))
            return [self.conv.reply(person, "actions.eval_thanks", lang, code=code or "")]
        return [self.conv.reply(person, "bot.expired", lang)]

    # ------------------------------------------------------------ timed messages

    async def tick(self) -> int:
        """Send what is due (reminders, evaluations), outside quiet hours; how many left.

        Discord messages go through ``deliver`` (the delivery router); an evaluation by SMS is
        queued by the SMS service, which applies the opt-outs, the budget and the quiet hours
        of the recipient; what it refuses is not marked, and is tried again later.
        """
        await self.conv.db.write(actions.clear_phones, self.now())
        if self.deliver is None:
            return 0  # no Discord: nothing can be delivered, nothing is marked as sent
        replies, marks = await self.due()
        sent = 0
        discord: list[Reply] = []
        discord_marks: list[Callable[[Any], None]] = []
        for reply, mark in zip(replies, marks, strict=True):
            if reply.to.kind != "sms":
                discord.append(reply)
                discord_marks.append(mark)
            elif await self.conv.sms.notify(reply.to.id, reply.text, "evaluation"):
                await self.conv.db.write(mark)
                # Its answer, a digit, is typed hours later: the menu stays fresh that long.
                self.conv.offer(f"sms:{reply.to.id}", reply.buttons, SMS_MENU_TTL)
                sent += 1
        if discord:
            await self.deliver(discord)
            for mark in discord_marks:
                await self.conv.db.write(mark)
        return sent + len(discord)

    async def due(self) -> tuple[list[Reply], list[Callable[[Any], None]]]:
        """The timed messages due now, and how to mark each as sent (after delivery)."""
        from bot.sms.quiet import is_quiet

        settings = self.conv.settings
        now = self.now()
        if is_quiet(settings.sms_quiet_hours, now, settings.tz):
            return [], []
        at = to_iso(now.replace(microsecond=0))
        replies: list[Reply] = []
        marks: list[Callable[[Any], None]] = []
        for person in await self.conv.db.read(actions.due_reminders, now, settings.tz):
            reply = self._reminder(person)
            if reply is not None:
                replies.append(reply)
                marks.append(
                    partial(
                        actions.mark_reminded,
                        action_id=person.action.id,
                        participant_id=person.participant_id,
                        at=at,
                    )
                )
        for person in await self.conv.db.read(actions.due_evaluations, now):
            reply = self._evaluation(person)
            if reply is not None:
                replies.append(reply)
                marks.append(partial(actions.mark_asked, recipient=person, at=at))
        return replies, marks

    def _lang(self, person: Recipient) -> str:
        return person.lang or self.conv.settings.lang

    def _reminder(self, person: Recipient) -> Reply | None:
        if not person.discord_id:
            return None
        lang = self._lang(person)
        text = self.conv.t("actions.reminder", lang, a=self.item(person.action, lang))
        return Reply(Target("discord", person.discord_id, person.name), text, ephemeral=False)

    def _evaluation(self, person: Recipient) -> Reply | None:
        lang = self._lang(person)
        key = "actions.eval_reminder" if person.reminder else "actions.eval_ask"
        values = self.item(person.action, lang)
        buttons = self._rate_buttons(person.action.id)
        if not person.discord_id:
            if not person.phone:
                return None
            # Checked in by SMS (a relative, or anyone without Discord): a digit answers.
            key = "actions.sms_eval_reminder" if person.reminder else "actions.sms_eval_ask"
            return Reply(
                Target("sms", person.phone),
                self.conv.t(_register(key, person.relative), lang, a=values),
                buttons=buttons,
                ephemeral=False,
            )
        buttons.append(Button("act:stop", self.conv.t("actions.stop_button", lang)))
        reply = Reply(
            Target("discord", person.discord_id, person.name),
            self.conv.t(key, lang, a=values),
            buttons=buttons,
            ephemeral=False,
        )
        # Typed answers (a number) are matched against the buttons offered last.
        self.conv.offer(f"discord:{person.discord_id}", buttons)
        return reply

    # ------------------------------------------------------------ by SMS

    @staticmethod
    def _rate_buttons(action_id: int) -> list[Button]:
        return [Button(f"act:rate:{action_id}:{n}", str(n), "primary") for n in range(1, 6)]

    def _recommend_buttons(self, action_id: int, lang: str) -> list[Button]:
        return [
            Button(
                f"act:rec:{action_id}:{answer}", self.conv.t(f"actions.recommend_{answer}", lang)
            )
            for answer in actions.RECOMMEND
        ]

    async def sms_text(
        self, person: Person, turn: SmsTurn, text: str, free: bool
    ) -> list[Reply] | None:
        """An SMS that belongs to the agenda, else None (the brain goes on as usual).

        A digit (or the words) answering the evaluation menu, the comment that follows it, or an
        action's code (presence). ``free`` is False for a keyword (OUI): only a menu answer is
        looked for then, so OUI keeps its meaning everywhere else.
        """
        key = f"sms:{turn.number}"
        me = Target.of(person)
        participant = turn.state.participant_id
        menu = self.conv._menu(Person("sms", turn.number, ""))
        if menu is None and free and participant is not None and text.strip().isdigit():
            menu = await self._restore_menu(key, participant, turn.lang)  # after a restart
        if menu is not None:
            chosen = self.conv._pick(menu, text)
            self.conv._offered.pop(key, None)  # answered, or something else happened
            if chosen is not None and chosen.startswith("act:") and participant is not None:
                self._comments.pop(key, None)
                return await self._sms_choice(me, key, participant, turn, chosen[4:])
        comment = self._comments.pop(key, None)
        if not free or not text.strip():
            return None
        if comment is not None and participant is not None and self.now() <= comment[1]:
            code = await self.conv.db.read(actions.code_of, comment[0])
            if code is not None:
                await self.conv.db.write(
                    actions.record_comment, code, participant, text, self.now()
                )
                key_saved = _register("actions.sms_comment_saved", turn.state.relative)
                return [Reply(me, self.conv.t(key_saved, turn.lang, code=code))]
        match = _SMS_CODE.match(actions.fold(text).strip(" .!"))
        if match is None:
            return None
        return await self._sms_check_in(me, turn, match.group(1))

    async def _restore_menu(self, key: str, participant: int, lang: str) -> list[Button] | None:
        """The evaluation menu of someone asked recently, rebuilt from the database."""
        found = await self.conv.db.read(
            actions.open_evaluation, participant, self.now() - SMS_MENU_TTL
        )
        if found is None:
            return None
        action_id, stage = found
        if stage == "rate":
            buttons = self._rate_buttons(action_id)
        else:
            buttons = self._recommend_buttons(action_id, lang)
        self.conv.offer(key, buttons, SMS_MENU_TTL)
        return buttons

    async def _sms_choice(
        self, me: Target, key: str, participant: int, turn: SmsTurn, arg: str
    ) -> list[Reply]:
        """``rate:ID:N`` then ``rec:ID:ANSWER``, typed by SMS."""
        what, _, rest = arg.partition(":")
        action_id, _, value = rest.partition(":")
        lang, relative = turn.lang, turn.state.relative
        if what == "rate" and action_id.isdigit() and value.isdigit():
            if await self.conv.db.write(
                actions.record_rating, int(action_id), participant, int(value)
            ):
                buttons = self._recommend_buttons(int(action_id), lang)
                self.conv.offer(key, buttons, SMS_MENU_TTL)
                text = self.conv.t(_register("actions.sms_eval_recommend", relative), lang)
                return [Reply(me, text)]
        elif (
            what == "rec"
            and action_id.isdigit()
            and await self.conv.db.write(
                actions.record_recommend, int(action_id), participant, value
            )
        ):
            self._comments[key] = (int(action_id), self.now() + COMMENT_TTL)
            return [Reply(me, self.conv.t(_register("actions.sms_eval_thanks", relative), lang))]
        return [Reply(me, self.conv.t(_register("sms.help", relative), lang))]

    async def _sms_check_in(self, me: Target, turn: SmsTurn, code: str) -> list[Reply] | None:
        """``TOURNOI-0912`` by SMS: presence at the action (its evaluation will come by SMS)."""
        try:
            result, relative = await self.conv.db.write(
                actions.check_in_by_sms,
                code,
                turn.phone_hash,
                turn.number,
                self.now(),
                turn.lang,
            )
        except ActionError as exc:
            if exc.key not in ("actions.checkin_too_early", "actions.checkin_over"):
                return None  # not an action's code after all: read as a question
            key = _register(exc.key.replace("actions.", "actions.sms_"), turn.state.relative)
            return [Reply(me, self.conv.t(key, turn.lang, **exc.params))]
        item = self.item(result.action, turn.lang)
        key = "actions.sms_checked_in_again" if result.already else "actions.sms_checked_in"
        return [Reply(me, self.conv.t(_register(key, relative), turn.lang, a=item))]


def _register(key: str, relative: bool) -> str:
    """The "vous" version of an SMS text for a relative."""
    return f"{key}_vous" if relative else key
