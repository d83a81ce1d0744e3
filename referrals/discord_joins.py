"""What the Discord adapter remembers about joins between runs: the last join it saw."""

from __future__ import annotations

import sqlite3

LAST_JOIN_KEY = "discord_last_join"


def last_join(conn: sqlite3.Connection) -> str | None:
    """The time (ISO 8601, UTC) of the last member join the bot handled, if any."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (LAST_JOIN_KEY,)).fetchone()
    return str(row[0]) if row else None


def saw_join(conn: sqlite3.Connection, joined_at: str) -> None:
    """Remember a join time; only ever moves forward."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value WHERE excluded.value > value",
        (LAST_JOIN_KEY, joined_at),
    )


def drop_invite_link(conn: sqlite3.Connection, code: str) -> None:
    """A personal Discord invite was deleted to make room: its owner gets a new one next time.

    Joins already recorded keep their referrer; the code stays in their attribution rows."""
    conn.execute("DELETE FROM links WHERE code = ? AND kind = 'discord_invite'", (code,))
