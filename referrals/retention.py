"""Retention: what is removed, and when (run once a day by ``bot.maintenance``).

- an invitation nobody answered: only its keyed hash after ``SMS_REINVITE_DAYS``;
- a participant without activity for ``RETENTION_INACTIVE_DAYS`` (3 years): erased like
  ``/oublier``;
- free text of questions and hand-offs: removed after ``RETENTION_QUESTIONS_DAYS`` (90);
- pending confirmations and rate-limit attempts: deleted after a day;
- provider message ids of inbound SMS (only used to drop duplicates): deleted after 30 days;
- call-back requests from the landing page: number and first name removed after 30 days;
  expired OAuth states of the landing page: deleted.

Every step is one ``UPDATE`` or ``DELETE`` over an indexed date, in one transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from referrals.erasure import erase_participant, scrub_invitations
from referrals.timeutil import to_iso

PENDING_DAYS = 1
ATTEMPTS_DAYS = 1
INBOUND_IDS_DAYS = 30
CALLBACK_DAYS = 30


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each kind of data is kept, in days."""

    invitation_days: int = 180
    inactive_days: int = 1095
    questions_days: int = 90
    pending_days: int = PENDING_DAYS
    attempts_days: int = ATTEMPTS_DAYS
    inbound_ids_days: int = INBOUND_IDS_DAYS
    callback_days: int = CALLBACK_DAYS


@dataclass(frozen=True)
class RetentionReport:
    """How many rows each step touched."""

    invitations: int = 0
    participants: int = 0
    questions: int = 0
    handoffs: int = 0
    pending: int = 0
    attempts: int = 0
    inbound_ids: int = 0
    callbacks: int = 0

    def as_dict(self) -> dict[str, int]:
        """Plain dict, for the log."""
        return asdict(self)


def _before(now: datetime, days: int) -> str:
    return to_iso((now - timedelta(days=days)).replace(microsecond=0))


def expire_invitations(conn: sqlite3.Connection, cutoff: str) -> int:
    """Invitations older than ``cutoff`` that nobody answered: keep only the hash."""
    ids = [
        row[0]
        for row in conn.execute(
            "SELECT id FROM invitations WHERE created_at < ? AND joined_participant_id IS NULL"
            " AND (phone IS NOT NULL OR first_name IS NOT NULL"
            "  OR id IN (SELECT invitation_id FROM outbound_sms"
            "   WHERE invitation_id IS NOT NULL AND (body != '' OR to_phone IS NOT NULL)))",
            (cutoff,),
        )
    ]
    return scrub_invitations(conn, ids)


def inactive_participants(conn: sqlite3.Connection, cutoff: str) -> list[int]:
    """Participants not seen since ``cutoff`` who still carry an identifier.

    Activity is ``last_seen_at`` (set on every interaction), else the join date. Rows without
    any identifier (already erased, or imported with a staff reference only) are left alone.
    """
    return [
        row[0]
        for row in conn.execute(
            "SELECT id FROM participants WHERE COALESCE(last_seen_at, joined_at) < ?"
            " AND (erased_at IS NULL) AND (discord_id IS NOT NULL OR display_name IS NOT NULL"
            "  OR phone IS NOT NULL OR phone_hash IS NOT NULL OR code IS NOT NULL)",
            (cutoff,),
        )
    ]


def apply_retention(
    conn: sqlite3.Connection, now: datetime, policy: RetentionPolicy
) -> RetentionReport:
    """Remove everything past its time, in one transaction (the caller's)."""
    invitations = expire_invitations(conn, _before(now, policy.invitation_days))
    inactive = inactive_participants(conn, _before(now, policy.inactive_days))
    for participant_id in inactive:
        erase_participant(conn, participant_id)
    text_cutoff = _before(now, policy.questions_days)
    questions = conn.execute(
        "UPDATE questions SET text = NULL WHERE at < ? AND text IS NOT NULL", (text_cutoff,)
    ).rowcount
    handoffs = conn.execute(
        "UPDATE handoffs SET text = NULL WHERE at < ? AND text IS NOT NULL", (text_cutoff,)
    ).rowcount
    pending = conn.execute(
        "DELETE FROM pending_actions WHERE created_at < ?", (_before(now, policy.pending_days),)
    ).rowcount
    attempts = conn.execute(
        "DELETE FROM attempts WHERE at < ?", (_before(now, policy.attempts_days),)
    ).rowcount
    inbound_ids = conn.execute(
        "DELETE FROM inbound_sms WHERE at < ?", (_before(now, policy.inbound_ids_days),)
    ).rowcount
    callbacks = 0
    if _has_table(conn, "callback_requests"):
        callbacks = conn.execute(
            "UPDATE callback_requests SET phone = NULL, first_name = ''"
            " WHERE at < ? AND (phone IS NOT NULL OR first_name != '')",
            (_before(now, policy.callback_days),),
        ).rowcount
    if _has_table(conn, "oauth_states"):
        conn.execute("DELETE FROM oauth_states WHERE expires_at < ?", (_before(now, 0),))
    # Messages that never left (a DM refused until the router gave up): kept like texts.
    conn.execute("DELETE FROM outbox WHERE created_at < ?", (text_cutoff,))
    return RetentionReport(
        invitations, len(inactive), questions, handoffs, pending, attempts, inbound_ids, callbacks
    )


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        is not None
    )
