"""Abuse resistance in the database: sliding-window counts, bans, activity marks, bursts.

Called by ``bot.limits.Guard`` (the brain's screening) through ``Database.write``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from referrals.timeutil import to_iso

WINDOW = timedelta(minutes=1)
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
