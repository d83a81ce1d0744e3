"""Join attributions: how a new member's arrival was told apart (certain, ambiguous, unknown).

An ambiguous join (several personal invites used at the same moment) counts no referral until a
staff member settles it; settling it fixes the participant's source once, like ``/code`` does.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from referrals.errors import NotFound, RelaisError
from referrals.service import get_participant, log_event, set_source
from referrals.store import now_iso


@dataclass(frozen=True)
class OpenAttribution:
    """An ambiguous join waiting for staff."""

    id: int
    participant_id: int
    name: str | None
    at: str
    candidates: list[tuple[int, str | None]]  # (participant id, display name)


def record(
    conn: sqlite3.Connection,
    participant_id: int,
    status: str,
    *,
    candidates: list[int] | None = None,
    codes: list[str] | None = None,
    via: str | None = None,
) -> int:
    """Record how a join was attributed; returns the row id."""
    cursor = conn.execute(
        "INSERT INTO join_attributions (participant_id, status, candidates, codes, via, at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            participant_id,
            status,
            json.dumps(candidates or []),
            json.dumps(codes or []),
            via,
            now_iso(),
        ),
    )
    assert cursor.lastrowid is not None
    log_event(conn, f"join_{status}", participant_id, via=via, codes=codes or [])
    return cursor.lastrowid


def owners(conn: sqlite3.Connection, codes: list[str]) -> list[int]:
    """Participants owning these personal invite codes (codes of no one are skipped)."""
    found: list[int] = []
    for code in codes:
        row = conn.execute(
            "SELECT participant_id FROM links WHERE code = ? AND participant_id IS NOT NULL",
            (code,),
        ).fetchone()
        if row is not None and row[0] not in found:
            found.append(row[0])
    return found


def open_ambiguous(conn: sqlite3.Connection, limit: int = 20) -> list[OpenAttribution]:
    """Ambiguous joins not settled yet, oldest first."""
    result: list[OpenAttribution] = []
    rows = conn.execute(
        "SELECT a.id, a.participant_id, p.display_name, a.at, a.candidates"
        " FROM join_attributions a JOIN participants p ON p.id = a.participant_id"
        " WHERE a.status = 'ambiguous' ORDER BY a.id LIMIT ?",
        (limit,),
    ).fetchall()
    for row in rows:
        candidates = []
        for pid in json.loads(row[4] or "[]"):
            name = conn.execute(
                "SELECT display_name FROM participants WHERE id = ? AND erased_at IS NULL", (pid,)
            ).fetchone()
            candidates.append((pid, name[0] if name else None))
        result.append(OpenAttribution(row[0], row[1], row[2], row[3], candidates))
    return result


def resolve(
    conn: sqlite3.Connection, attribution_id: int, referrer_id: int | None, by: str
) -> tuple[str | None, str | None]:
    """Settle an ambiguous join: the referrer (one of the candidates) or none (organic).

    Returns the display names of the member and of the referrer.
    """
    row = conn.execute(
        "SELECT participant_id, status, candidates FROM join_attributions WHERE id = ?",
        (attribution_id,),
    ).fetchone()
    if row is None:
        raise NotFound("attribution.not_found", number=attribution_id)
    if row[1] != "ambiguous":
        raise RelaisError("attribution.not_open", number=attribution_id)
    member = get_participant(conn, row[0])
    referrer = None
    if referrer_id is not None:
        if referrer_id not in json.loads(row[2] or "[]"):
            raise RelaisError("attribution.not_candidate", number=attribution_id)
        referrer = get_participant(conn, referrer_id)
        if not member.has_source:
            set_source(conn, member, referrer=referrer, channel="discord_invite")
    conn.execute(
        "UPDATE join_attributions SET status = 'resolved', resolved_by = ?, resolved_at = ?"
        " WHERE id = ?",
        (by, now_iso(), attribution_id),
    )
    log_event(conn, "join_resolved", member.id, referrer.id if referrer else None)
    return member.name, referrer.name if referrer else None
