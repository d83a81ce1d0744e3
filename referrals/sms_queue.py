"""The durable outbound SMS queue (``outbound_sms``): every SQL statement of the outbound path.

The SMS service (``bot/sms/service.py``) decides; these functions read and write, each inside the
transaction the caller opened with ``Database.read`` / ``Database.write``. A message is queued with
the time it may leave; it is claimed (``sending``) just before the provider call, and finished
(``sent``, ``failed``, ``unknown``, ``cancelled``) after it, when its number in clear is erased.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from referrals.errors import RelaisError
from referrals.service import by_phone_hash, log_event
from referrals.sms_inbound import is_opted_out, opt_out
from referrals.timeutil import to_iso

BUDGET_ALERT_SHARE = 0.8
OPTED_OUT_ERROR = "21610"
FILTERED_ERROR = "30007"  # carrier filtering: the message was blocked as spam
PAUSE_KEY = "sms_paused"  # meta: the provider error that paused the queue, until a send succeeds
PROVIDER_STATUS_RANK = {
    "unknown": -1,
    "accepted": 0,
    "scheduled": 0,
    "queued": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
    "canceled": 3,
    "read": 4,
}
# An invitation's status follows its message once the provider has it.
_INVITATION_STATUS = {
    "accepted": "sent",
    "scheduled": "sent",
    "queued": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}


class SmsRefused(RelaisError):
    """An SMS cannot leave because of a rule; ``key`` names the message in ``sms.yaml``."""

    key = "sms.refused"


@dataclass(frozen=True)
class Rules:
    """The limits of SPEC §8: per member and day, per number, and the daily budget (segments)."""

    per_member_per_day: int
    reinvite_days: int
    daily_budget: int


@dataclass(frozen=True)
class Claimed:
    """A message taken out of the queue, about to be handed to the provider."""

    id: int
    to: str | None
    body: str
    purpose: str
    invitation_id: int | None
    attempts: int


# A hold for a claimed message: (``not_before``, ``budget_day``) when it must wait, else None.
Hold = Callable[[str, str], "tuple[str, str] | None"]


def _day_bounds(moment: datetime, tz: str) -> tuple[str, str]:
    zone = ZoneInfo(tz)
    day = moment.astimezone(zone).date()
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    return to_iso(start), to_iso(end)


# ------------------------------------------------------------ rules and budget


def budget_used(conn: sqlite3.Connection, day: str) -> int:
    """Segments counted against a local day: Twilio's figure once known, else Relais's own."""
    row = conn.execute(
        "SELECT COALESCE(SUM(COALESCE(num_segments, segments, 1)), 0) FROM outbound_sms"
        " WHERE budget_day = ? AND status != 'cancelled'",
        (day,),
    ).fetchone()
    return int(row[0])


def check_rules(
    conn: sqlite3.Connection,
    rules: Rules,
    member_id: int | None,
    hashed: str,
    now: datetime,
    tz: str,
    budget_day: str,
    segments: int = 0,
) -> None:
    """Every rule that can be checked before sending; raises SmsRefused.

    ``segments``: what the message will cost (0 before its text is known: the budget must
    then merely not be exhausted).
    """
    if is_opted_out(conn, hashed):
        raise SmsRefused("sms.opted_out")
    if member_id is not None:
        if by_phone_hash(conn, hashed) is not None:
            raise SmsRefused("sms.already_member")
        since = to_iso(now - timedelta(days=rules.reinvite_days))
        if (
            rules.reinvite_days > 0
            and conn.execute(
                "SELECT 1 FROM invitations WHERE phone_hash = ? AND created_at >= ?"
                " AND status NOT IN ('refused', 'invalid') LIMIT 1",
                (hashed, since),
            ).fetchone()
        ):
            raise SmsRefused("sms.recently_invited", days=rules.reinvite_days)
        start, end = _day_bounds(now, tz)
        count = conn.execute(
            "SELECT COUNT(*) FROM invitations WHERE member_id = ? AND created_at >= ?"
            " AND created_at < ?",
            (member_id, start, end),
        ).fetchone()[0]
        if count >= rules.per_member_per_day:
            raise SmsRefused("sms.member_limit", limit=rules.per_member_per_day)
    used = budget_used(conn, budget_day)
    if used >= rules.daily_budget or used + segments > rules.daily_budget:
        raise SmsRefused("sms.budget_exhausted", budget=rules.daily_budget)


def once_per_day(conn: sqlite3.Connection, key: str, day: str) -> bool:
    """True the first time ``key`` is asked for ``day`` (a staff alert that goes out once)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    if row is not None and row[0] >= day:
        return False
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, day),
    )
    return True


def budget_alert_due(conn: sqlite3.Connection, budget: int, day: str) -> int | None:
    """The day's usage when it just reached the alert share and no alert went out for that day."""
    used = budget_used(conn, day)
    if budget <= 0 or used < math.ceil(budget * BUDGET_ALERT_SHARE):
        return None
    return used if once_per_day(conn, "sms_budget_alert", day) else None


# ------------------------------------------------------------ queueing


def queue_invitation(
    conn: sqlite3.Connection,
    *,
    member_id: int,
    number: str,
    hashed: str,
    first_name: str | None,
    token: str,
    status: str,
    lang: str,
    body: str,
    segments: int,
    created: str,
    leaves: str,
    day: str,
) -> int:
    """An invitation and its message in the queue; returns the invitation's id."""
    cursor = conn.execute(
        "INSERT INTO invitations (member_id, phone_hash, first_name, token, status,"
        " created_at, lang) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (member_id, hashed, first_name, token, status, created, lang),
    )
    invitation_id = cursor.lastrowid
    assert invitation_id is not None
    conn.execute(
        "INSERT INTO outbound_sms (to_phone, phone_hash, body, purpose, invitation_id,"
        " status, not_before, created_at, updated_at, budget_day, segments)"
        " VALUES (?, ?, ?, 'invitation', ?, 'queued', ?, ?, ?, ?, ?)",
        (number, hashed, body, invitation_id, leaves, created, created, day, segments),
    )
    log_event(conn, "sms_invited", member_id, at=created, invitation=invitation_id)
    return invitation_id


def queue_message(
    conn: sqlite3.Connection,
    *,
    number: str,
    hashed: str,
    body: str,
    purpose: str,
    segments: int,
    created: str,
    leaves: str,
    day: str,
) -> int:
    """A message that is not an invitation (an action's evaluation) in the queue; its id."""
    cursor = conn.execute(
        "INSERT INTO outbound_sms (to_phone, phone_hash, body, purpose, status, not_before,"
        " created_at, updated_at, budget_day, segments)"
        " VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
        (number, hashed, body, purpose, leaves, created, created, day, segments),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def record_reply(
    conn: sqlite3.Connection,
    hashed: str,
    body: str,
    segments: int,
    at: str,
    day: str,
    budget: int,
) -> tuple[bool, bool, int | None]:
    """A reply to an inbound SMS, counted in the day's budget (it leaves in the TwiML answer).

    Returns (allowed, first refusal of the day, usage when the 80 % alert is due).
    """
    if budget_used(conn, day) + segments > budget:
        return False, once_per_day(conn, "sms_budget_exhausted", day), None
    _insert_attempted(conn, hashed, body, "reply", "sent", segments, at, day)
    return True, False, budget_alert_due(conn, budget, day)


def insert_sending(
    conn: sqlite3.Connection, hashed: str, body: str, purpose: str, segments: int, at: str, day: str
) -> int:
    """A message sent at once, outside the queue (``relais sms test``), already ``sending``."""
    return _insert_attempted(conn, hashed, body, purpose, "sending", segments, at, day)


def _insert_attempted(
    conn: sqlite3.Connection,
    hashed: str,
    body: str,
    purpose: str,
    status: str,
    segments: int,
    at: str,
    day: str,
) -> int:
    """A message that left (or is leaving) outside the queue: no number kept, one attempt."""
    cursor = conn.execute(
        "INSERT INTO outbound_sms (to_phone, phone_hash, body, purpose, status, attempts,"
        " not_before, created_at, updated_at, budget_day, segments, attempted_at)"
        " VALUES (NULL, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
        (hashed, body, purpose, status, at, at, at, day, segments, at),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _cancel(
    conn: sqlite3.Connection, outbound_id: int, invitation_id: int | None, now: str
) -> None:
    conn.execute(
        "UPDATE outbound_sms SET status = 'cancelled', to_phone = NULL, updated_at = ?"
        " WHERE id = ?",
        (now, outbound_id),
    )
    if invitation_id:
        conn.execute(
            "UPDATE invitations SET status = 'cancelled', phone = NULL WHERE id = ?",
            (invitation_id,),
        )


def claim_next(conn: sqlite3.Connection, now: str, hold: Hold | None = None) -> Claimed | None:
    """Take the next due message out of the queue (status ``sending``).

    Opted-out (or erased) numbers are cancelled. ``hold(to, purpose)`` is asked for each due
    message: when it answers a later time (quiet hours where the recipient lives), the message
    goes back to the queue with that time and the next one is considered.
    """
    while True:
        row = conn.execute(
            "SELECT id, to_phone, phone_hash, body, purpose, invitation_id, attempts"
            " FROM outbound_sms WHERE status = 'queued' AND not_before <= ?"
            " ORDER BY not_before, id LIMIT 1",
            (now,),
        ).fetchone()
        if row is None:
            return None
        if not row["to_phone"] or is_opted_out(conn, row["phone_hash"]):
            _cancel(conn, row["id"], row["invitation_id"], now)
            continue
        later = hold(row["to_phone"], row["purpose"]) if hold is not None else None
        if later is not None:
            not_before, day = later
            conn.execute(
                "UPDATE outbound_sms SET not_before = ?, budget_day = ?, updated_at = ?"
                " WHERE id = ?",
                (not_before, day, now, row["id"]),
            )
            if row["invitation_id"]:
                conn.execute(
                    "UPDATE invitations SET status = 'waiting' WHERE id = ? AND status = 'queued'",
                    (row["invitation_id"],),
                )
            continue
        conn.execute(
            "UPDATE outbound_sms SET status = 'sending', attempts = attempts + 1,"
            " attempted_at = ?, updated_at = ? WHERE id = ?",
            (now, now, row["id"]),
        )
        return Claimed(
            row["id"],
            row["to_phone"],
            row["body"],
            row["purpose"],
            row["invitation_id"],
            row["attempts"] + 1,
        )


def finish(
    conn: sqlite3.Connection,
    outbound_id: int,
    status: str,
    now: str,
    sid: str | None = None,
    error_code: str | None = None,
    num_segments: int | None = None,
    invitation_status: str | None = None,
) -> None:
    """A message leaves the queue for good: the number in clear is no longer needed."""
    conn.execute(
        "UPDATE outbound_sms SET status = ?, provider_sid = COALESCE(?, provider_sid),"
        " error_code = ?, num_segments = COALESCE(?, num_segments), to_phone = NULL,"
        " updated_at = ? WHERE id = ?",
        (status, sid, error_code, num_segments, now, outbound_id),
    )
    row = conn.execute(
        "SELECT invitation_id, phone_hash FROM outbound_sms WHERE id = ?", (outbound_id,)
    ).fetchone()
    if row["invitation_id"]:
        conn.execute(
            "UPDATE invitations SET status = ?, phone = NULL,"
            " sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?",
            (invitation_status or status, status, now, row["invitation_id"]),
        )
    if error_code == OPTED_OUT_ERROR:
        opt_out(conn, row["phone_hash"], now)
        log_event(conn, "sms_opted_out", at=now, via="provider", outbound=outbound_id)


def requeue(
    conn: sqlite3.Connection, outbound_id: int, not_before: str, now: str, code: str | None
) -> None:
    """Back to the queue, to leave at ``not_before``."""
    conn.execute(
        "UPDATE outbound_sms SET status = 'queued', not_before = ?, error_code = ?, updated_at = ?"
        " WHERE id = ?",
        (not_before, code, now, outbound_id),
    )


def release(conn: sqlite3.Connection, outbound_id: int, code: str, now: str) -> None:
    """Back to the queue as it was, the attempt not counted: the provider account was at fault
    (the queue is paused), not the message, which keeps its place."""
    conn.execute(
        "UPDATE outbound_sms SET status = 'queued', error_code = ?, updated_at = ?,"
        " attempts = MAX(attempts - 1, 0) WHERE id = ?",
        (code, now, outbound_id),
    )


def recover(conn: sqlite3.Connection, now: str) -> int:
    """At start: a message caught ``sending`` by a crash may have left; never send it again."""
    rows = conn.execute("SELECT id FROM outbound_sms WHERE status = 'sending'").fetchall()
    for row in rows:
        finish(conn, row["id"], "unknown", now)
    return len(rows)


def queued_count(conn: sqlite3.Connection) -> int:
    """Messages still waiting in the queue."""
    return int(
        conn.execute("SELECT COUNT(*) FROM outbound_sms WHERE status = 'queued'").fetchone()[0]
    )


def next_due(conn: sqlite3.Connection) -> str | None:
    """When the next queued message may leave (ISO), or None."""
    row = conn.execute(
        "SELECT MIN(not_before) FROM outbound_sms WHERE status = 'queued'"
    ).fetchone()
    return row[0] if row is not None else None


# ------------------------------------------------------------ the queue paused by the provider


def paused_by(conn: sqlite3.Connection) -> str | None:
    """The provider error that paused the queue (until a message leaves again), or None."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (PAUSE_KEY,)).fetchone()
    return row[0] if row is not None else None


def pause(conn: sqlite3.Connection, code: str, now: str) -> bool:
    """Record the pause; True when it is new (staff are then alerted, once)."""
    if paused_by(conn) is not None:
        return False
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (PAUSE_KEY, code))
    log_event(conn, "sms_paused", at=now, code=code)
    return True


def unpause(conn: sqlite3.Connection) -> None:
    """A message left: the provider account works again."""
    conn.execute("DELETE FROM meta WHERE key = ?", (PAUSE_KEY,))


# ------------------------------------------------------------ statuses from the provider


def record_status(
    conn: sqlite3.Connection,
    sid: str,
    status: str,
    code: str | None,
    now: str,
    *,
    to_hash: str | None = None,
    window_start: str | None = None,
    num_segments: int | None = None,
    price: str | None = None,
    price_unit: str | None = None,
) -> str | None:
    """A delivery status; returns how the message was found (``sid``, ``reconciled``) or None.

    Out-of-order callbacks never move a message back. A SID we never learnt (the request timed
    out, or a gateway error hid the answer) is matched to the latest ``unknown`` message to the
    same number (``to_hash``) that left after ``window_start``: its fate is then known.
    """
    rank = PROVIDER_STATUS_RANK.get(status)
    found = "sid"
    row = conn.execute(
        "SELECT id, status, phone_hash, invitation_id FROM outbound_sms WHERE provider_sid = ?",
        (sid,),
    ).fetchone()
    if row is None and to_hash is not None and window_start is not None:
        row = conn.execute(
            "SELECT id, status, phone_hash, invitation_id FROM outbound_sms"
            " WHERE status = 'unknown' AND provider_sid IS NULL AND phone_hash = ?"
            " AND attempted_at >= ? ORDER BY attempted_at DESC, id DESC LIMIT 1",
            (to_hash, window_start),
        ).fetchone()
        found = "reconciled"
        if row is not None:
            conn.execute("UPDATE outbound_sms SET provider_sid = ? WHERE id = ?", (sid, row["id"]))
            log_event(conn, "sms_reconciled", at=now, outbound=row["id"], status=status)
    if row is None:
        return None
    conn.execute(
        "UPDATE outbound_sms SET num_segments = COALESCE(?, num_segments),"
        " price = COALESCE(?, price), price_unit = COALESCE(?, price_unit) WHERE id = ?",
        (num_segments, price, price_unit, row["id"]),
    )
    if rank is not None and rank >= PROVIDER_STATUS_RANK.get(row["status"], 0):
        conn.execute(
            "UPDATE outbound_sms SET status = ?, error_code = COALESCE(?, error_code),"
            " updated_at = ? WHERE id = ?",
            (status, code, now, row["id"]),
        )
        if row["invitation_id"] and (
            rank >= PROVIDER_STATUS_RANK["delivered"] or row["status"] == "unknown"
        ):
            conn.execute(
                "UPDATE invitations SET status = ?,"
                " sent_at = CASE WHEN sent_at IS NULL AND ? = 'sent' THEN ? ELSE sent_at END"
                " WHERE id = ?",
                (
                    _INVITATION_STATUS.get(status, status),
                    _INVITATION_STATUS.get(status),
                    now,
                    row["invitation_id"],
                ),
            )
    if code == OPTED_OUT_ERROR:
        opt_out(conn, row["phone_hash"], now)
        log_event(conn, "sms_opted_out", at=now, via="provider", outbound=row["id"])
    return found


def opt_out_token(conn: sqlite3.Connection, token: str, now: str) -> bool:
    """The opt-out link of an invitation; False for an unknown token."""
    row = conn.execute(
        "SELECT id, phone_hash FROM invitations WHERE token = ?", (token,)
    ).fetchone()
    if row is None:
        return False
    if not is_opted_out(conn, row["phone_hash"]):
        opt_out(conn, row["phone_hash"], now)
        log_event(conn, "sms_opted_out", at=now, via="link", invitation=row["id"])
    return True


def prices_due(conn: sqlite3.Connection, before: str, limit: int) -> list[tuple[int, str]]:
    """Messages with a final status older than ``before`` whose price was never fetched."""
    rows = conn.execute(
        "SELECT id, provider_sid FROM outbound_sms WHERE provider_sid IS NOT NULL"
        " AND price IS NULL AND price_checked_at IS NULL"
        " AND status IN ('delivered', 'undelivered', 'failed', 'read') AND updated_at <= ?"
        " ORDER BY id LIMIT ?",
        (before, limit),
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


def store_price(
    conn: sqlite3.Connection,
    outbound_id: int,
    now: str,
    num_segments: int | None,
    price: str | None,
    price_unit: str | None,
) -> None:
    """What Twilio bills for a message (fetched once; ``None`` when it still does not say)."""
    conn.execute(
        "UPDATE outbound_sms SET price_checked_at = ?, num_segments = COALESCE(?, num_segments),"
        " price = COALESCE(?, price), price_unit = COALESCE(?, price_unit) WHERE id = ?",
        (now, num_segments, price, price_unit, outbound_id),
    )


# ------------------------------------------------------------ figures for /stats


def _outcome(status: str, code: str | None) -> str | None:
    if code == FILTERED_ERROR:
        return "filtered"
    if status in ("delivered", "read"):
        return "delivered"
    if status in ("failed", "undelivered"):
        return "failed"
    if status == "unknown":
        return "unknown"
    if status in ("sent", "sending", "queued", "accepted", "scheduled"):
        return "pending"  # with the provider, no final status yet
    return None


def _blank(label: str | None) -> dict[str, Any]:
    return {
        "label": label,
        "delivered": 0,
        "failed": 0,
        "filtered": 0,
        "unknown": 0,
        "pending": 0,
        "segments": 0,
    }


def figures(conn: sqlite3.Connection, low: str | None, high: str | None, tz: str) -> dict[str, Any]:
    """SMS outcomes and segments, in total, per campaign (of the inviting member) and per week.

    Messages that left (queued and cancelled ones cost nothing) in [low, high) by their attempt
    time; weeks are ISO weeks of ``tz``; segments are Twilio's count when known, else Relais's.
    """
    rows = conn.execute(
        "SELECT o.status, o.error_code, o.purpose, COALESCE(o.num_segments, o.segments, 1) AS segs,"
        " COALESCE(o.attempted_at, o.updated_at) AS at, c.code AS campaign"
        " FROM outbound_sms o"
        " LEFT JOIN invitations i ON i.id = o.invitation_id"
        " LEFT JOIN participants p ON p.id = i.member_id"
        " LEFT JOIN campaigns c ON c.id = p.campaign_id"
        " WHERE o.status NOT IN ('queued', 'cancelled')"
        " AND (? IS NULL OR COALESCE(o.attempted_at, o.updated_at) >= ?)"
        " AND (? IS NULL OR COALESCE(o.attempted_at, o.updated_at) < ?)"
        " ORDER BY at",
        (low, low, high, high),
    ).fetchall()
    zone = ZoneInfo(tz)
    total = _blank(None)
    campaigns: dict[str, dict[str, Any]] = {}
    weeks: dict[str, dict[str, Any]] = {}
    for row in rows:
        # Replies leave inside the TwiML answer: they cost segments but have no delivery status.
        outcome = None if row["purpose"] == "reply" else _outcome(row["status"], row["error_code"])
        year, week, _ = datetime.fromisoformat(row["at"]).astimezone(zone).isocalendar()
        week_label = f"{year}-W{week:02d}"
        buckets = [total, weeks.setdefault(week_label, _blank(week_label))]
        if row["campaign"]:
            buckets.append(campaigns.setdefault(row["campaign"], _blank(row["campaign"])))
        for bucket in buckets:
            if outcome is not None:
                bucket[outcome] += 1
            bucket["segments"] += int(row["segs"])
    return {
        "total": total,
        "campaigns": sorted(campaigns.values(), key=lambda b: str(b["label"])),
        "weeks": [weeks[k] for k in sorted(weeks)],
        "count": len(rows),
    }
