"""Abuse resistance: per-person rate limits, banned members, alerts on suspicious bursts.

Every entry point of the conversation asks ``Guard.screen`` first. In one write transaction it
checks the ban flag, counts the person's recent attempts in the ``attempts`` table (a sliding
window of one minute), records this attempt, and notes the person's activity (``last_seen_at``,
which retention reads).

Why the database and not an in-memory window: the count survives a restart or a crash loop (a
flood cannot be reset by crashing the bot), every process that opens the database sees the same
count, erasure and retention already know the table, and the cost is one small transaction on a
path that writes anyway (questions, codes, invitations all write). Keys are ``ACTION:TAG`` where
TAG is a hash of the person key: no Discord id or phone number in clear, and rows older than a
day are removed by retention.

Bursts (many invitations, or many joins tied to one member, in a short window) are found in the
event log, which is indexed by (kind, at): ``watch`` runs after each action and the maintenance
loop runs it every minute too (joins through the web landing page do not pass here). One alert
per burst: a member's burst lasts as long as their actions keep coming within the window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bot.logging import get_logger
from bot.ports import Person, Reply, Target
from referrals.erasure import person_tag
from referrals.limits import (  # noqa: F401  (re-exported for existing callers)
    BURST_THRESHOLD,
    BURST_WINDOW,
    WINDOW,
    Verdict,
    find_bursts,
    screen_in_db,
)

if TYPE_CHECKING:
    from bot.conversation import Conversation

log = get_logger(__name__)

# Per person and per minute. ``message`` caps everything a person sends.
PER_MINUTE: dict[str, int] = {
    "code": 6,  # /code tries: above the lock (5 wrong codes), whose message says more
    "invite": 3,  # /inviter (each one also probes the rules: opt-out list, members)
    "handoff": 2,  # /conseiller and the "talk to a person" button: each pings the staff
    "question": 10,  # free text and /question
    "sms": 6,  # SMS questions (each answer is an SMS we pay for); keywords are never limited
    "message": 30,
}
# What each entry point counts against, besides ``message``.
ENTRY_ACTIONS: dict[str, str] = {
    "command:code": "code",
    "command:inviter": "invite",
    "command:conseiller": "handoff",
    "command:question": "question",
    "choice:handoff": "handoff",
    "text:question": "question",
}


WATCH_EVERY = timedelta(seconds=5)


class Guard:
    """Rate limits, bans and burst alerts for one conversation engine."""

    def __init__(
        self,
        conv: Conversation,
        limits: dict[str, int] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.conv = conv
        self.limits = dict(PER_MINUTE if limits is None else limits)
        self.clock = clock
        self._last_watch: datetime | None = None
        self._recent: dict[int, deque[datetime]] = {}
        self._checked: dict[int, datetime] = {}

    async def saw(self, member_id: int) -> None:
        """An invitation or a join tied to a member: look for a burst once it could be one.

        Counting in memory keeps the common case free; the database check (which also makes
        sure a burst is reported once) runs only when this member reaches the threshold. The
        maintenance loop's periodic ``watch(force=True)`` covers what memory lost in a restart.
        """
        now = self.clock()
        times = self._recent.setdefault(member_id, deque())
        times.append(now)
        while times and now - times[0] > BURST_WINDOW:
            times.popleft()
        last = self._checked.get(member_id)
        if len(times) >= BURST_THRESHOLD and (last is None or now - last >= WATCH_EVERY):
            # An ongoing burst is reported once; re-checking it at every join would only cost.
            self._checked[member_id] = now
            await self.watch(force=True)
        if len(self._recent) > 10_000:  # forget quiet members
            for key in [k for k, v in self._recent.items() if now - v[-1] > BURST_WINDOW]:
                del self._recent[key]
                self._checked.pop(key, None)

    async def screen(
        self, person: Person, entry: str, *, phone_hash: str | None = None
    ) -> list[Reply] | None:
        """None to go on; else the replies that refuse (a polite message, or silence by SMS).

        An SMS sender is identified by the keyed hash of their number (``phone_hash``); SMS
        keywords (STOP, START, AIDE...) are never screened by the caller.
        """
        if person.staff:
            return None
        conv = self.conv
        identity: dict[str, str | None]
        traits = person.traits
        if traits.by_phone:  # known by the number's keyed hash; "sms" is the phone quota
            actions = ["sms", "message"]
            identity = {"phone_hash": phone_hash}
        else:
            action = ENTRY_ACTIONS.get(entry)
            actions = [action, "message"] if action else ["message"]
            identity = {"discord_id": person.id}
        verdict = await conv.db.write(
            screen_in_db, person_tag(person.key), actions, self.clock(), self.limits, **identity
        )
        if verdict.banned:
            log.info("banned_refused", entry=entry)
            return [conv.reply(person, "limits.banned", conv.lang(person))]
        if verdict.limited:
            log.info("rate_limited", entry=entry, action=verdict.limited)
            if traits.paid:
                return []  # an answer would cost an SMS: silence
            return [
                conv.reply(person, f"limits.{verdict.limited}", conv.lang(person)),
            ]
        return None

    async def watch(self, *, force: bool = False) -> None:
        """Alert the staff channel about each new burst; never fails the caller.

        Looked for at most every ``WATCH_EVERY`` after an action (a viral burst brings hundreds
        of joins a minute: scanning the window after each one would cost more than the joins).
        """
        conv = self.conv
        now = self.clock()
        if not force and self._last_watch is not None and now - self._last_watch < WATCH_EVERY:
            return
        self._last_watch = now
        try:
            bursts = await conv.db.write(find_bursts, now)
            for member_id, name, invited, joined in bursts:
                log.warning("burst", member=member_id, invited=invited, joined=joined)
                channel = conv.settings.discord_staff_channel
                text = conv.t(
                    "limits.burst_alert",
                    conv.settings.lang,
                    name=name or "?",
                    invited=invited,
                    joined=joined,
                    minutes=int(BURST_WINDOW.total_seconds() // 60),
                )
                await conv.post_staff(
                    Reply(Target("channel", channel, channel), text, ephemeral=False)
                )
        except Exception:
            log.exception("burst_watch_failed")
