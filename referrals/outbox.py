"""The delivery outbox: messages for a channel that this process cannot reach right now.

``relais serve`` has no Discord connection: a notice for the member whose relative replied, or a
staff post, waits here until ``relais run`` (which has the gateway) delivers it. Rows hold the
message as JSON and are deleted once delivered; ``relais doctor`` counts what waits.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class OutboxRow:
    """One waiting message."""

    id: int
    target_kind: str
    target_id: str
    target_name: str
    body: str
    created_at: str
    attempts: int


def put(
    conn: sqlite3.Connection,
    kind: str,
    target_id: str,
    name: str,
    body: str,
    at: str,
    attempts: int = 0,
) -> int:
    """Keep one message until its channel is connected (``attempts``: already tried once)."""
    cursor = conn.execute(
        "INSERT INTO outbox (target_kind, target_id, target_name, body, created_at, attempts)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (kind, target_id, name, body, at, attempts),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def waiting(
    conn: sqlite3.Connection, kinds: list[str], limit: int = 100, max_attempts: int | None = None
) -> list[OutboxRow]:
    """The oldest waiting messages for these channels; with ``max_attempts``, only those tried
    fewer times (the others stay, listed by ``relais doctor``, but are not tried again)."""
    marks = ", ".join("?" for _ in kinds)
    cap = " AND attempts < ?" if max_attempts is not None else ""
    extra = (max_attempts,) if max_attempts is not None else ()
    rows = conn.execute(
        "SELECT id, target_kind, target_id, target_name, body, created_at, attempts FROM outbox"
        f" WHERE target_kind IN ({marks}){cap} ORDER BY id LIMIT ?",
        (*kinds, *extra, limit),
    ).fetchall()
    return [OutboxRow(*tuple(row)) for row in rows]


def done(conn: sqlite3.Connection, outbox_id: int) -> None:
    """Delivered: forget it."""
    conn.execute("DELETE FROM outbox WHERE id = ?", (outbox_id,))


def failed(conn: sqlite3.Connection, outbox_id: int) -> None:
    """Not delivered this time: count the attempt, keep it."""
    conn.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", (outbox_id,))


def summary(conn: sqlite3.Connection) -> list[tuple[str, int, str | None]]:
    """(channel, waiting count, oldest time) per channel, for ``relais doctor``."""
    rows = conn.execute(
        "SELECT target_kind, COUNT(*), MIN(created_at) FROM outbox GROUP BY target_kind"
        " ORDER BY target_kind"
    ).fetchall()
    return [(str(r[0]), int(r[1]), r[2]) for r in rows]
