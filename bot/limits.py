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

import sqlite3
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bot.logging import get_logger
from bot.ports import Person, Reply, Target
from bot.sms.inbound import classify
from bot.sms.phone import canonical
from referrals.erasure import person_tag
from referrals.timeutil import to_iso

if TYPE_CHECKING:
    from bot.conversation import Conversation

log = get_logger(__name__)

WINDOW = timedelta(minutes=1)
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
BURST_THRESHOLD = 5
BURST_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class Verdict:
    """What ``screen`` decided: pass, banned, or limited (with the action)."""

    banned: bool = False
    limited: str | None = None


def _iso(moment: datetime) -> str:
    return to_iso(moment.replace(microsecond=0))


def screen_in_db(
    conn: sqlite3.Connection,
    tag: str,
    actions: list[str],
    now: datetime,
    limits: dict[str, int],
    *,
    discord_id: str | None = None,
    phone_hash: str | None = None,
) -> Verdict:
    """Ban check, sliding-window count and record, activity mark; one transaction."""
    at = _iso(now)
    where, value = ("discord_id = ?", discord_id) if discord_id else ("phone_hash = ?", phone_hash)
    row = None
    if value is not None:
        row = conn.execute(
            f"SELECT id, banned, last_seen_at FROM participants WHERE {where}", (value,)
        ).fetchone()
    if row is not None and row["banned"]:
        return Verdict(banned=True)
    since = _iso(now - WINDOW)
    for action in actions:
        limit = limits.get(action)
        if limit is None:
            continue
        count = conn.execute(
            "SELECT COUNT(*) FROM attempts WHERE key = ? AND at > ?", (f"{action}:{tag}", since)
        ).fetchone()[0]
        if count >= limit:
            return Verdict(limited=action)
    conn.executemany(
        "INSERT INTO attempts (key, at) VALUES (?, ?)",
        [(f"{action}:{tag}", at) for action in actions],
    )
    # Activity, at most once a day per person: enough for a retention counted in years.
    if row is not None and (row["last_seen_at"] or "")[:10] != at[:10]:
        conn.execute("UPDATE participants SET last_seen_at = ? WHERE id = ?", (at, row["id"]))
    return Verdict()


WATCH_EVERY = timedelta(seconds=5)


def find_bursts(
    conn: sqlite3.Connection, now: datetime, threshold: int = BURST_THRESHOLD
) -> list[tuple[int, str | None, int, int]]:
    """Members with a new burst: (id, display name, invitations, joins) in the last window.

    Marks each member's burst in ``meta`` (``burst:<id>`` = time of the latest check that saw
    it), so that an ongoing burst is reported once.
    """
    since = _iso(now - BURST_WINDOW)
    rows = conn.execute(
        "SELECT member, SUM(invited), SUM(joined) FROM ("
        "  SELECT participant_id AS member, 1 AS invited, 0 AS joined FROM events"
        "  WHERE kind = 'sms_invited' AND at > ?"
        "  UNION ALL SELECT other_id, 0, 1 FROM events"
        "  WHERE kind IN ('joined', 'source_set') AND at > ? AND other_id IS NOT NULL)"
        " WHERE member IS NOT NULL GROUP BY member HAVING COUNT(*) >= ?",
        (since, since, threshold),
    ).fetchall()
    found = []
    at = _iso(now)
    for member, invited, joined in rows:
        key = f"burst:{member}"
        seen = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, at),
        )
        if seen is not None and seen[0] > since:
            continue  # the same burst, already reported
        name = conn.execute(
            "SELECT COALESCE(display_name, ref) FROM participants WHERE id = ?", (member,)
        ).fetchone()
        found.append((int(member), name[0] if name else None, int(invited), int(joined)))
    # Bursts that ended long ago: forget them.
    conn.execute(
        "DELETE FROM meta WHERE key LIKE 'burst:%' AND value < ?", (_iso(now - 2 * BURST_WINDOW),)
    )
    return found


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

    async def screen(self, person: Person, entry: str, text: str = "") -> list[Reply] | None:
        """None to go on; else the replies that refuse (a polite message, or silence by SMS)."""
        if person.staff:
            return None
        conv = self.conv
        identity: dict[str, str]
        if person.channel == "sms":
            if classify(text) is not None:
                return None  # STOP, START, AIDE... always work
            actions = ["sms", "message"]
            identity = {"phone_hash": conv.sms.hash(canonical(person.id))}
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
            log.warning("rate_limited", entry=entry, action=verdict.limited)
            if person.channel == "sms":
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
