"""What is stored about a person (``/mesdonnees``), and erasure (``/oublier``, retention).

Erasure keeps an anonymous node (the row, its place in the referral graph, its dates and channel)
so that the statistics stay right, and removes every identifier and every piece of free text tied
to the person. With ``secure_delete`` on, SQLite overwrites the old bytes in the pages it rewrites;
``checkpoint`` then copies those pages back into the main file and truncates the WAL, so that the
old versions of the pages are gone from the files on disk too.

``TABLES`` says, for every table of the schema, what it holds about a person and how it is shown
and erased; a test fails when a migration adds a table that is not listed here.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

from referrals import codes
from referrals.service import get_participant, log_event, new_ref
from referrals.store import Database, now_iso

# Every table, and how it relates to a person. Keep in step with the migrations.
TABLES: dict[str, str] = {
    "meta": "no personal data (the hashing secret, alert bookkeeping)",
    "campaigns": "no personal data (staff-chosen codes; created_by is a staff name)",
    "participants": "shown; identifiers set to NULL, reference replaced, node kept",
    "events": "shown (kind and date); kept: ids and dates only, never text or numbers",
    "links": "shown; deleted",
    "join_attributions": "shown (status); kept: ids only",
    "invitations": "shown; number and first name set to NULL, hash kept for the rules",
    "outbound_sms": "not shown (the invitation is); waiting ones cancelled, text and number wiped",
    "opt_outs": "no personal data in clear (keyed hashes); kept so that STOP is respected",
    "inbound_sms": "no personal data (provider message ids); pruned by retention",
    "questions": "shown; text set to NULL",
    "faq_feedback": "no personal data (not tied to a person)",
    "faq_examples": "not tied to a person (a question's text that staff chose as an example)",
    "handoffs": "shown; text set to NULL",
    "attempts": "shown (count); deleted (keys are hashed person keys)",
    "pending_actions": "shown (kind and date); deleted",
    "oauth_states": "no personal data (random single-use states of the landing page)",
    "callback_requests": "not a participant's data (a caller's first name and number); number"
    " cleared by retention",
    "outbox": "not shown (messages waiting for Discord, deleted once delivered); the person's"
    " waiting messages deleted",
    "actions": "no personal data (the agenda; created_by is a staff name or Discord id)",
    "action_people": "shown; comment and number (SMS check-in) set to NULL (presence, RSVP and"
    " rating kept, anonymous)",
    "action_opt_outs": "shown; kept (an id only: no message about actions)",
    "participant_changes": "no personal data (ids and a change counter: which rows the figures"
    " read again)",
    "figures_snapshot": "the figures' arrays (ids, referrers, waves, join times, flags) as the"
    " participants table holds them; no name or number; rewritten, never erased per person",
}


def person_tag(person_key: str) -> str:
    """The pseudonymous key of a person in ``attempts`` (never a Discord id or number in clear)."""
    return hashlib.sha256(person_key.encode("utf-8")).hexdigest()[:20]


def person_keys(conn: sqlite3.Connection, participant_id: int) -> list[str]:
    """The conversation keys (``discord:<id>``) under which a participant may have state."""
    row = conn.execute(
        "SELECT discord_id FROM participants WHERE id = ?", (participant_id,)
    ).fetchone()
    return [f"discord:{row[0]}"] if row and row[0] else []


def _rows(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    return [dict(row) for row in conn.execute(sql, params).fetchall()]


def personal_data(conn: sqlite3.Connection, participant_id: int) -> dict[str, Any]:
    """Everything stored about one participant, in plain fields (for ``/mesdonnees``)."""
    me = get_participant(conn, participant_id)
    raw = conn.execute("SELECT * FROM participants WHERE id = ?", (participant_id,)).fetchone()
    referrer = get_participant(conn, me.referrer_id) if me.referrer_id else None
    campaign = None
    if me.campaign_id:
        campaign = conn.execute(
            "SELECT code FROM campaigns WHERE id = ?", (me.campaign_id,)
        ).fetchone()[0]
    recruits = conn.execute(
        "SELECT COUNT(*) FROM participants WHERE referrer_id = ?", (participant_id,)
    ).fetchone()[0]
    invitations = _rows(
        conn,
        "SELECT first_name, status, created_at AS at, sent_at, phone IS NOT NULL AS number_kept,"
        " joined_participant_id IS NOT NULL AS joined FROM invitations WHERE member_id = ?"
        " ORDER BY created_at, id",
        (participant_id,),
    )
    for item in invitations:
        item["number_kept"] = bool(item["number_kept"])
        item["joined"] = bool(item["joined"])
    questions = _rows(
        conn,
        "SELECT at, text, entry_id FROM questions WHERE participant_id = ? ORDER BY at, id",
        (participant_id,),
    )
    handoffs = _rows(
        conn,
        "SELECT at, text, status FROM handoffs WHERE participant_id = ? ORDER BY at, id",
        (participant_id,),
    )
    links = _rows(
        conn,
        "SELECT code, kind, uses, created_at FROM links WHERE participant_id = ?",
        (participant_id,),
    )
    events = _rows(
        conn,
        "SELECT at, kind FROM events WHERE participant_id = ? ORDER BY at, id",
        (participant_id,),
    )
    attributions = _rows(
        conn,
        "SELECT at, status FROM join_attributions WHERE participant_id = ? ORDER BY at, id",
        (participant_id,),
    )
    actions = _rows(
        conn,
        "SELECT c.code, a.title, ap.rsvp_at, ap.interested_at, ap.checked_in_at, ap.rating,"
        " ap.recommend, ap.comment FROM action_people ap JOIN actions a ON a.id = ap.action_id"
        " JOIN campaigns c ON c.id = a.campaign_id WHERE ap.participant_id = ?"
        " ORDER BY a.starts_at",
        (participant_id,),
    )
    keys = person_keys(conn, participant_id)
    pending: list[dict[str, Any]] = []
    attempts = 0
    for key in keys:
        pending += _rows(
            conn,
            "SELECT kind, created_at AS at FROM pending_actions WHERE person_key = ?",
            (key,),
        )
        attempts += conn.execute(
            "SELECT COUNT(*) FROM attempts WHERE key LIKE ?", (f"%:{person_tag(key)}",)
        ).fetchone()[0]
    return {
        "reference": me.ref,
        "display_name": me.display_name,
        "discord_id": me.discord_id,
        "phone_number_kept": raw["phone"] is not None,
        "phone_hash_kept": raw["phone_hash"] is not None,
        "kind": me.kind,
        "language": me.lang,
        "joined_at": me.joined_at,
        "last_seen_at": raw["last_seen_at"],
        "left_at": raw["left_at"],
        "banned": bool(raw["banned"]),
        "code": codes.format_code(me.code) if me.code else None,
        "wrong_codes": raw["failed_codes"],
        "code_locked_until": raw["code_locked_until"],
        "links": links,
        "brought_by": referrer.name if referrer else None,
        "campaign": campaign,
        "channel": me.channel,
        "wave": me.wave,
        "recruits": recruits,
        "enrolled_at": me.enrolled_at,
        "invitations": invitations,
        "questions": questions,
        "handoffs": handoffs,
        "actions": actions,
        "no_action_messages": conn.execute(
            "SELECT 1 FROM action_opt_outs WHERE participant_id = ?", (participant_id,)
        ).fetchone()
        is not None,
        "join_attributions": attributions,
        "pending_confirmations": pending,
        "recent_attempts": attempts,
        "events": events,
    }


def personal_data_json(data: dict[str, Any]) -> bytes:
    """The JSON file attached to ``/mesdonnees``."""
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")


# An outbound SMS keeps no number and no text (the text names the member and the relative).
# Cancelled rather than deleted: the day's SMS budget still counts what was accepted.
_SCRUB_OUTBOUND = (
    "UPDATE outbound_sms SET status = CASE WHEN status = 'queued' THEN 'cancelled'"
    " ELSE status END, to_phone = NULL, body = '' WHERE "
)


def scrub_invitations(conn: sqlite3.Connection, invitation_ids: list[int]) -> int:
    """Remove the number, first name and SMS text of these invitations (the keyed hash stays);
    those not sent yet are cancelled. Returns how many."""
    for invitation_id in invitation_ids:
        conn.execute(
            "UPDATE invitations SET phone = NULL, first_name = NULL,"
            " status = CASE WHEN status IN ('queued', 'waiting') THEN 'cancelled' ELSE status END"
            " WHERE id = ?",
            (invitation_id,),
        )
        conn.execute(_SCRUB_OUTBOUND + "invitation_id = ?", (invitation_id,))
    return len(invitation_ids)


def erase_participant(conn: sqlite3.Connection, participant_id: int) -> None:
    """Remove a person's identifiers and free text; keep an anonymous node for the figures."""
    row = conn.execute(
        "SELECT phone_hash, erased_at FROM participants WHERE id = ?", (participant_id,)
    ).fetchone()
    if row is None:
        return
    phone_hash = row["phone_hash"]
    # State kept under the person's conversation key: pending confirmations (an invitation's
    # number waits there) and rate-limit attempts.
    for key in person_keys(conn, participant_id):
        # Messages still waiting for Discord (the outbox of ``relais serve``) for this person.
        conn.execute("DELETE FROM outbox WHERE target_kind || ':' || target_id = ?", (key,))
        conn.execute("DELETE FROM pending_actions WHERE person_key = ?", (key,))
        conn.execute("DELETE FROM attempts WHERE key LIKE ?", (f"%:{person_tag(key)}",))
    # A fresh meaningless reference: the old one may appear in exports or staff posts.
    conn.execute(
        "UPDATE participants SET ref = ?, display_name = NULL, discord_id = NULL, phone = NULL,"
        " phone_hash = NULL, code = NULL, lang = NULL, last_seen_at = NULL,"
        " code_locked_until = NULL, failed_codes = 0, erased_at = COALESCE(erased_at, ?)"
        " WHERE id = ?",
        (new_ref(), now_iso(), participant_id),
    )
    conn.execute("DELETE FROM links WHERE participant_id = ?", (participant_id,))
    conn.execute("UPDATE questions SET text = NULL WHERE participant_id = ?", (participant_id,))
    conn.execute("UPDATE handoffs SET text = NULL WHERE participant_id = ?", (participant_id,))
    conn.execute(
        "UPDATE action_people SET comment = NULL, phone = NULL WHERE participant_id = ?",
        (participant_id,),
    )
    # Invitations this person sent (their name and link are in the SMS text), and the one that
    # brought them in when they are a relative (their first name is there).
    scrub_invitations(
        conn,
        [
            r[0]
            for r in conn.execute(
                "SELECT id FROM invitations WHERE member_id = ? OR joined_participant_id = ?",
                (participant_id, participant_id),
            )
        ],
    )
    if phone_hash:
        conn.execute(_SCRUB_OUTBOUND + "phone_hash = ?", (phone_hash,))
    if row["erased_at"] is None:
        log_event(conn, "erased", participant_id)


def checkpoint(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """Copy the WAL into the main file and truncate it: old page versions leave the disk.

    Returns SQLite's (busy, log pages, checkpointed pages); busy is 1 when a reader in another
    process held an old snapshot, in which case the next checkpoint finishes the job.
    """
    row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return int(row[0]), int(row[1]), int(row[2])


async def forget(db: Database, participant_id: int) -> None:
    """Erase a participant (``/oublier``) and push the erasure out of the WAL."""
    await db.write(erase_participant, participant_id)
    await db.call(checkpoint)
