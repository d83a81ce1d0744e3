"""What is stored about a person, and erasure on request (the node stays, anonymous)."""

from __future__ import annotations

import sqlite3
from typing import Any

from referrals import codes
from referrals.service import get_participant, log_event
from referrals.store import now_iso


def personal_data(conn: sqlite3.Connection, participant_id: int) -> dict[str, Any]:
    """Everything stored about one participant, in plain fields (for ``/mesdonnees``)."""
    me = get_participant(conn, participant_id)
    referrer = get_participant(conn, me.referrer_id) if me.referrer_id else None
    campaign = None
    if me.campaign_id:
        campaign = conn.execute(
            "SELECT code FROM campaigns WHERE id = ?", (me.campaign_id,)
        ).fetchone()[0]
    recruits = conn.execute(
        "SELECT COUNT(*) FROM participants WHERE referrer_id = ?", (participant_id,)
    ).fetchone()[0]
    invitations = conn.execute(
        "SELECT first_name, status, created_at FROM invitations WHERE member_id = ?"
        " ORDER BY created_at",
        (participant_id,),
    ).fetchall()
    questions = conn.execute(
        "SELECT at, text FROM questions WHERE participant_id = ? AND text IS NOT NULL ORDER BY at",
        (participant_id,),
    ).fetchall()
    handoffs = conn.execute(
        "SELECT at, text, status FROM handoffs WHERE participant_id = ? ORDER BY at",
        (participant_id,),
    ).fetchall()
    links = conn.execute(
        "SELECT code, kind FROM links WHERE participant_id = ?", (participant_id,)
    ).fetchall()
    return {
        "reference": me.ref,
        "display_name": me.display_name,
        "discord_id": me.discord_id,
        "kind": me.kind,
        "language": me.lang,
        "joined_at": me.joined_at,
        "code": codes.format_code(me.code) if me.code else None,
        "links": [{"code": code, "kind": kind} for code, kind in links],
        "brought_by": referrer.name if referrer else None,
        "campaign": campaign,
        "channel": me.channel,
        "recruits": recruits,
        "enrolled_at": me.enrolled_at,
        "invitations": [
            {"first_name": name, "status": status, "at": at} for name, status, at in invitations
        ],
        "questions": [{"at": at, "text": text} for at, text in questions],
        "handoffs": [{"at": at, "text": text, "status": status} for at, text, status in handoffs],
    }


def erase_participant(conn: sqlite3.Connection, participant_id: int) -> None:
    """Remove a person's identifiers and free text; keep an anonymous node for the figures."""
    conn.execute(
        "UPDATE participants SET display_name = NULL, discord_id = NULL, phone = NULL,"
        " phone_hash = NULL, code = NULL, lang = NULL, last_seen_at = NULL, erased_at = ?"
        " WHERE id = ?",
        (now_iso(), participant_id),
    )
    conn.execute("DELETE FROM links WHERE participant_id = ?", (participant_id,))
    conn.execute("UPDATE questions SET text = NULL WHERE participant_id = ?", (participant_id,))
    conn.execute("UPDATE handoffs SET text = NULL WHERE participant_id = ?", (participant_id,))
    conn.execute(
        "UPDATE invitations SET phone = NULL, first_name = NULL WHERE member_id = ?",
        (participant_id,),
    )
    conn.execute(
        "DELETE FROM outbound_sms WHERE invitation_id IN"
        " (SELECT id FROM invitations WHERE member_id = ?) AND status IN ('queued', 'waiting')",
        (participant_id,),
    )
    log_event(conn, "erased", participant_id)
