"""Inbound SMS in the domain: the provider's message ids (a repeated one is handled once), the
opt-out list, and the one transaction an inbound message is (opt-out, opt-in, a relative joining).

The SMS adapter only parses the webhook and calls ``seen_message``; the brain (``Conversation``)
calls ``record_inbound`` with the keyword command it recognised.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from referrals.models import Participant
from referrals.service import by_phone_hash, insert_participant, log_event


def seen_message(conn: sqlite3.Connection, message_sid: str, at: str) -> bool:
    """Record a provider message id; True when it was already handled (a provider retry)."""
    try:
        conn.execute("INSERT INTO inbound_sms (message_sid, at) VALUES (?, ?)", (message_sid, at))
    except sqlite3.IntegrityError:
        return True
    return False


def refused_sender(conn: sqlite3.Connection, reason: str, at: str) -> None:
    """Count an inbound SMS that gets no reply (not a mobile of an allowed country)."""
    log_event(conn, "sms_sender_refused", at=at, reason=reason)


def known_lang(conn: sqlite3.Connection, phone_hash: str) -> str | None:
    """The language a number is known in: its participant's, else its latest invitation's."""
    row = conn.execute(
        "SELECT lang FROM participants WHERE phone_hash = ? AND lang IS NOT NULL"
        " UNION ALL SELECT * FROM (SELECT lang FROM invitations WHERE phone_hash = ?"
        " AND lang IS NOT NULL ORDER BY id DESC LIMIT 1) LIMIT 1",
        (phone_hash, phone_hash),
    ).fetchone()
    return None if row is None else str(row[0])


def is_opted_out(conn: sqlite3.Connection, phone_hash: str) -> bool:
    """Whether the number (keyed hash) is on the opt-out list."""
    found = conn.execute("SELECT 1 FROM opt_outs WHERE phone_hash = ?", (phone_hash,)).fetchone()
    return found is not None


@dataclass(frozen=True)
class InboundState:
    """What the inbound transaction decided."""

    silent: bool = False  # opted out: say nothing
    stopped: bool = False  # just opted out: confirm once
    started: bool = False  # just opted back in
    lang: str | None = None
    participant_id: int | None = None
    joined: bool = False
    # The sender is addressed as an adult ("vous"): an invited relative, a participant of kind
    # relative, or a stranger who is not (yet) a participant.
    relative: bool = False
    # An invited relative just joined: who invited them, to thank that member.
    member_discord_id: str | None = None
    member_lang: str | None = None
    first_name: str | None = None
    # The member whose invitation reached this number (their display name), so that "how did
    # you get my number?" can name them.
    inviter: str | None = None


def record_inbound(
    conn: sqlite3.Connection,
    phone_hash: str,
    keyword: str | None,
    at: str,
    via: str = "keyword",
) -> InboundState:
    """One inbound message, in one transaction: opt-out or opt-in; an invited relative becomes a
    participant only on a positive signal (``yes`` or ``code``, once their invitation actually
    left); ``code`` from a stranger makes an organic participant. A question or a refusal never
    makes anyone a participant.

    ``keyword`` is the brain's SMS keyword command (``stop``, ``start``, ``code``...) or None.
    """
    opted_out = (
        conn.execute("SELECT 1 FROM opt_outs WHERE phone_hash = ?", (phone_hash,)).fetchone()
        is not None
    )
    invitation = conn.execute(
        "SELECT id, member_id, lang, joined_participant_id, first_name, sent_at, status"
        " FROM invitations"
        " WHERE phone_hash = ? ORDER BY id DESC LIMIT 1",
        (phone_hash,),
    ).fetchone()
    participant = by_phone_hash(conn, phone_hash)
    if participant is None and invitation is not None and invitation["joined_participant_id"]:
        # They joined through the link of this invitation (on Discord) before writing back:
        # the same person, not a second participant. The keyed hash ties the two.
        linked = conn.execute(
            "UPDATE participants SET phone_hash = ? WHERE id = ? AND phone_hash IS NULL"
            " AND erased_at IS NULL RETURNING id",
            (phone_hash, invitation["joined_participant_id"]),
        ).fetchone()
        if linked is not None:
            participant = by_phone_hash(conn, phone_hash)
    lang = participant.lang if participant else None
    if lang is None and invitation is not None:
        lang = invitation["lang"]
    invitation_id = invitation["id"] if invitation else None

    if keyword == "stop":
        if opted_out:
            return InboundState(silent=True)
        opt_out(conn, phone_hash, at)
        log_event(
            conn,
            "sms_opted_out",
            participant.id if participant else None,
            at=at,
            via=via,
            invitation=invitation_id,
        )
        return InboundState(stopped=True, lang=lang, relative=_relative(participant))
    started = False
    if keyword == "start":
        if opted_out:
            conn.execute("DELETE FROM opt_outs WHERE phone_hash = ?", (phone_hash,))
            log_event(conn, "sms_opted_in", participant.id if participant else None, at=at)
        started = True
    elif opted_out:
        return InboundState(silent=True)

    joined = False
    member_discord_id = member_lang = first_name = None
    if participant is None and invitation is not None and _left(invitation) and keyword in POSITIVE:
        # An invited relative says yes (OUI, CODE): they are in. A question is only answered.
        participant = insert_participant(
            conn,
            joined_at=at,
            kind="relative",
            # Staff know them by the first name the member gave when inviting them.
            display_name=invitation["first_name"] or None,
            channel="sms",
            referrer_id=invitation["member_id"],
            phone_hash=phone_hash,
            lang=invitation["lang"],
        )
        conn.execute(
            "UPDATE invitations SET joined_participant_id = ? WHERE id = ?",
            (participant.id, invitation_id),
        )
        log_event(
            conn,
            "sms_relative_joined",
            participant.id,
            invitation["member_id"],
            at=at,
            invitation=invitation_id,
            via=keyword,
        )
        joined = True
        member = conn.execute(
            "SELECT p.discord_id, p.lang, i.first_name FROM participants p"
            " JOIN invitations i ON i.member_id = p.id WHERE i.id = ?",
            (invitation_id,),
        ).fetchone()
        if member is not None:
            member_discord_id, member_lang, first_name = member[0], member[1], member[2]
    elif participant is None and keyword == "code":
        # Someone who was not invited (a poster, a friend passing the number on) asks for a code
        # to bring others: they become an organic participant reached by SMS.
        participant = insert_participant(
            conn, joined_at=at, channel="sms", phone_hash=phone_hash, lang=lang
        )
        joined = True
    inviter = None
    if invitation is not None:
        named = conn.execute(
            "SELECT display_name FROM participants WHERE id = ? AND erased_at IS NULL",
            (invitation["member_id"],),
        ).fetchone()
        inviter = named[0] if named is not None else None
    if participant is not None:
        # Activity (retention reads it), at most once a day: keywords are never screened.
        conn.execute(
            "UPDATE participants SET last_seen_at = ? WHERE id = ?"
            " AND (last_seen_at IS NULL OR substr(last_seen_at, 1, 10) != substr(?, 1, 10))",
            (at, participant.id, at),
        )
    return InboundState(
        started=started,
        relative=_relative(participant),
        lang=lang,
        participant_id=participant.id if participant else None,
        joined=joined,
        member_discord_id=member_discord_id,
        member_lang=member_lang,
        first_name=first_name,
        inviter=inviter,
    )


# The keyword commands that are a positive signal from an invited relative.
POSITIVE = frozenset({"yes", "code"})


def _left(invitation: sqlite3.Row) -> bool:
    """Whether an invitation actually left (the provider accepted or delivered it)."""
    return bool(invitation["sent_at"]) or invitation["status"] in ("sent", "delivered")


def _relative(participant: Participant | None) -> bool:
    """Whether the sender is addressed as an adult: not a young participant."""
    return participant is None or participant.kind == "relative"


def opt_out(conn: sqlite3.Connection, phone_hash: str, at: str) -> None:
    """Keep the number's keyed hash on the opt-out list; cancel what still waits for it."""
    conn.execute("INSERT OR IGNORE INTO opt_outs (phone_hash, at) VALUES (?, ?)", (phone_hash, at))
    conn.execute(
        "UPDATE outbound_sms SET status = 'cancelled', to_phone = NULL, updated_at = ?"
        " WHERE phone_hash = ? AND status = 'queued'",
        (at, phone_hash),
    )
    conn.execute(
        "UPDATE invitations SET status = 'cancelled', phone = NULL"
        " WHERE phone_hash = ? AND status IN ('queued', 'waiting')",
        (phone_hash,),
    )
    conn.execute("UPDATE invitations SET phone = NULL WHERE phone_hash = ?", (phone_hash,))
