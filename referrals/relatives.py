"""Relatives in the domain: an invited relative who opens their own link (``/i/TOKEN``) joins
(a positive signal, as OUI or CODE by SMS), gets a personal code to pass the programme on, and
the young people who came through a relative's code are a channel of their own in /stats.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from referrals import analytics, codes
from referrals.landing import _TOKEN_RE
from referrals.service import by_phone_hash, insert_participant, log_event


@dataclass(frozen=True)
class Visit:
    """A relative on their own link: their code, and whom to tell when they just joined."""

    code: str
    stop_token: str
    lang: str | None
    joined: bool  # they just joined (first visit): the member is told
    member_discord_id: str | None
    member_lang: str | None
    first_name: str | None


def visit(conn: sqlite3.Connection, token: str, at: str) -> Visit | None:
    """``GET /i/TOKEN``: the invited relative opened the link of their invitation.

    None when the token is unknown, the invitation never left, the number opted out, or the
    number is already a participant who is not a relative (a young person keeps their page).
    The first visit makes the relative a participant (kind relative, brought by the member) and
    counts the invitation as joined.
    """
    if not _TOKEN_RE.fullmatch(token):
        return None
    invitation = conn.execute(
        "SELECT i.id, i.member_id, i.phone_hash, i.lang, i.first_name, i.sent_at, i.status,"
        " i.joined_participant_id, m.discord_id, m.lang AS member_lang"
        " FROM invitations i JOIN participants m ON m.id = i.member_id"
        " WHERE i.token = ? AND m.erased_at IS NULL AND NOT m.banned",
        (token,),
    ).fetchone()
    if invitation is None:
        return None
    if not (invitation["sent_at"] or invitation["status"] in ("sent", "delivered")):
        return None
    opted_out = conn.execute(
        "SELECT 1 FROM opt_outs WHERE phone_hash = ?", (invitation["phone_hash"],)
    ).fetchone()
    if opted_out is not None:
        return None
    participant = by_phone_hash(conn, invitation["phone_hash"])
    joined = False
    if participant is None and invitation["joined_participant_id"] is None:
        participant = insert_participant(
            conn,
            joined_at=at,
            kind="relative",
            display_name=invitation["first_name"] or None,
            channel="sms",
            referrer_id=invitation["member_id"],
            phone_hash=invitation["phone_hash"],
            lang=invitation["lang"],
        )
        conn.execute(
            "UPDATE invitations SET joined_participant_id = ? WHERE id = ?",
            (participant.id, invitation["id"]),
        )
        log_event(
            conn,
            "sms_relative_joined",
            participant.id,
            invitation["member_id"],
            at=at,
            invitation=invitation["id"],
            via="link",
        )
        joined = True
    if participant is None or participant.kind != "relative":
        return None
    code = participant.code or _new_code(conn, participant.id)
    return Visit(
        code=codes.format_code(code),
        stop_token=token,
        lang=participant.lang,
        joined=joined,
        member_discord_id=invitation["discord_id"],
        member_lang=invitation["member_lang"],
        first_name=invitation["first_name"],
    )


def _new_code(conn: sqlite3.Connection, participant_id: int) -> str:
    while True:
        code = codes.new_code()
        try:
            conn.execute("UPDATE participants SET code = ? WHERE id = ?", (code, participant_id))
        except sqlite3.IntegrityError:
            continue  # astronomically rare collision: draw again
        log_event(conn, "code_created", participant_id)
        return code


def figures(
    conn: sqlite3.Connection,
    since: str | None = None,
    until: str | None = None,
    *,
    fast: bool = True,
) -> dict[str, int]:
    """/stats: relatives who joined, and young people who came through a relative's code."""
    if fast:  # the same counts from the arrays /stats has just read (one SQL join less)
        return analytics.relative_figures(conn, since, until)
    clauses, params = ["p.erased_at IS NULL"], []
    if since:
        clauses.append("p.joined_at >= ?")
        params.append(since)
    if until:
        clauses.append("p.joined_at < ?")
        params.append(until)
    where = " AND ".join(clauses)
    relatives, via_relative = conn.execute(
        "SELECT SUM(p.kind = 'relative'),"
        " SUM(p.kind = 'youth' AND r.kind = 'relative')"
        " FROM participants p LEFT JOIN participants r ON r.id = p.referrer_id WHERE " + where,
        params,
    ).fetchone()
    return {"relatives": relatives or 0, "via_relative": via_relative or 0}
