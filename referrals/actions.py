"""Outreach actions (issue 22): the agenda, presence, RSVPs, evaluations, results per action.

An action is a campaign with a date: its campaign code is the check-in code and the code of its
QR poster, and people who come through it have it as their source, as with any campaign. All the
SQL of the feature lives here; the functions run inside the database thread on a plain
``sqlite3.Connection`` and take ``now`` from the caller (a controllable clock in tests).
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from referrals import codes
from referrals.errors import RelaisError
from referrals.models import Campaign
from referrals.service import (
    by_phone_hash,
    campaign_by_code,
    get_participant,
    insert_participant,
    log_event,
    set_source,
)
from referrals.timeutil import to_iso

TYPES = ("van", "permanence", "atelier", "tournoi", "sortie", "autre")
# Words staff (or young people) use for each type, folded (lower case, no accents).
TYPE_WORDS: dict[str, tuple[str, ...]] = {
    "van": ("van", "vans", "bus", "camion", "camping-car", "itinerant"),
    "permanence": ("permanence", "permanences", "perm", "drop-in"),
    "atelier": ("atelier", "ateliers", "workshop", "workshops", "slam", "stage"),
    "tournoi": ("tournoi", "tournois", "tournament", "tournaments", "tournoie"),
    "sortie": ("sortie", "sorties", "outing", "outings", "cine", "cinema", "soiree"),
    "autre": ("autre", "other"),
}
RECOMMEND = ("oui", "peut-etre", "non")
CHECKIN_BEFORE = timedelta(hours=1)  # presence is recorded from an hour before the start...
CHECKIN_AFTER = timedelta(hours=2)  # ...to two hours after the end
EVAL_REMINDER_AFTER = timedelta(hours=24)
EVAL_WINDOW = timedelta(days=7)  # an action older than this is not evaluated any more
RECRUIT_WINDOW = timedelta(days=30)
MAX_TITLE = 100
MAX_PLACE = 100
MAX_CAPACITY = 10_000
MAX_COMMENT = 500


class ActionError(RelaisError):
    """Bad input for an action: one clear sentence (``actions.*``), nothing changed."""

    key = "actions.invalid"


@dataclass(frozen=True)
class Action:
    """One outreach action of the agenda."""

    id: int
    campaign_id: int
    code: str
    type: str
    title: str
    place: str | None
    starts_at: str
    ends_at: str
    capacity: int | None
    status: str
    discord_event_id: str | None

    @property
    def start(self) -> datetime:
        """The start, aware (UTC)."""
        return datetime.fromisoformat(self.starts_at)

    @property
    def end(self) -> datetime:
        """The end, aware (UTC)."""
        return datetime.fromisoformat(self.ends_at)

    @property
    def cancelled(self) -> bool:
        """True once cancelled."""
        return self.status == "cancelled"


_COLUMNS = (
    "a.id, a.campaign_id, c.code, a.type, a.title, a.place, a.starts_at, a.ends_at, a.capacity,"
    " a.status, a.discord_event_id"
)
_FROM = " FROM actions a JOIN campaigns c ON c.id = a.campaign_id"


def _action(row: sqlite3.Row | tuple[Any, ...]) -> Action:
    return Action(*tuple(row))


def fold(text: str) -> str:
    """Lower case without accents, for matching words."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def parse_type(text: str) -> str:
    """The action type named by ``text`` (French or English); ``actions.bad_type`` otherwise."""
    word = fold(text.strip())
    for kind, words in TYPE_WORDS.items():
        if word == kind or word in words:
            return kind
    raise ActionError("actions.bad_type", value=text.strip()[:40], types=", ".join(TYPES))


_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d/%m/%y", "%d-%m-%Y")
_TIME_RE = re.compile(r"^(\d{1,2})(?:[:hH](\d{2})?)?$")


def _parse_time(text: str) -> time | None:
    match = _TIME_RE.match(text.strip())
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def _parse_date(text: str, today: date) -> date | None:
    text = text.strip()
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    match = re.match(r"^(\d{1,2})/(\d{1,2})$", text)  # 09/12: this year, or next when past
    if match:
        try:
            found = date(today.year, int(match.group(2)), int(match.group(1)))
        except ValueError:
            return None
        return found if found >= today else found.replace(year=today.year + 1)
    return None


def parse_when(text: str, tz: str, now: datetime, day: date | None = None) -> datetime:
    """A local date and time (``2026-12-09 14:00``, ``09/12/2026 14h``, ``09/12 14:00``) as an
    aware UTC datetime; a time alone is on ``day``. ``actions.bad_date`` when unreadable."""
    zone = ZoneInfo(tz)
    cleaned = text.strip().replace("T", " ")
    parts = cleaned.split()
    found: datetime | None = None
    if len(parts) == 2:
        on, at = _parse_date(parts[0], now.astimezone(zone).date()), _parse_time(parts[1])
        if on is not None and at is not None:
            found = datetime.combine(on, at, zone)
    elif len(parts) == 1 and day is not None and (at := _parse_time(parts[0])) is not None:
        found = datetime.combine(day, at, zone)
    if found is None:
        raise ActionError("actions.bad_date", value=text.strip()[:40])
    # Through UTC and back: a time skipped by a DST change lands just after it.
    return found.astimezone(UTC)


def _capacity(text: str | None) -> int | None:
    if text is None or not text.strip():
        return None
    value = text.strip()
    if not value.isdigit() or not 0 < int(value) <= MAX_CAPACITY:
        raise ActionError("actions.bad_capacity", value=value[:20])
    return int(value)


def _code_for(conn: sqlite3.Connection, kind: str, start: datetime, tz: str) -> str:
    """A free campaign code such as TOURNOI-0912 (then TOURNOI-0912-2...)."""
    local = start.astimezone(ZoneInfo(tz))
    base = f"{kind.upper()}-{local:%d%m}"
    code, number = base, 1
    while campaign_by_code(conn, code) is not None:
        number += 1
        code = f"{base}-{number}"
    return code


def _check_times(start: datetime, end: datetime, now: datetime) -> None:
    if end <= start:
        raise ActionError("actions.end_before_start")
    if end <= now:
        raise ActionError("actions.in_past")


@dataclass(frozen=True)
class ActionInput:
    """What staff typed for an action (texts as typed; parsed by ``create_action``)."""

    type: str | None = None
    title: str | None = None
    place: str | None = None
    start: str | None = None
    end: str | None = None
    capacity: str | None = None


def _parsed(values: ActionInput, tz: str, now: datetime, current: Action | None) -> dict[str, Any]:
    """Parse and check the given fields; every one is checked before anything is written."""
    out: dict[str, Any] = {}
    if values.type is not None:
        out["type"] = parse_type(values.type)
    if values.title is not None:
        title = values.title.strip()[:MAX_TITLE]
        if not title:
            raise ActionError("actions.missing_title")
        out["title"] = title
    if values.place is not None:
        out["place"] = values.place.strip()[:MAX_PLACE] or None
    start = current.start if current else None
    if values.start is not None:
        start = parse_when(values.start, tz, now)
        out["starts_at"] = to_iso(start)
        if start < now - CHECKIN_BEFORE:
            raise ActionError("actions.in_past")
    end = current.end if current else None
    if values.end is not None:
        day = start.astimezone(ZoneInfo(tz)).date() if start else None
        end = parse_when(values.end, tz, now, day)
        out["ends_at"] = to_iso(end)
    if values.capacity is not None:
        out["capacity"] = _capacity(values.capacity)
    if start is not None and end is not None and ("starts_at" in out or "ends_at" in out):
        _check_times(start, end, now)
    return out


def create_action(
    conn: sqlite3.Connection,
    values: ActionInput,
    *,
    tz: str,
    now: datetime,
    created_by: str | None = None,
    discord_event_id: str | None = None,
) -> Action:
    """A new action and its campaign (code TYPE-DDMM)."""
    if not values.type:
        raise ActionError("actions.missing_type", types=", ".join(TYPES))
    if not values.title:
        raise ActionError("actions.missing_title")
    if not values.start:
        raise ActionError("actions.missing_start")
    if not values.end:
        raise ActionError("actions.missing_end")
    fields = _parsed(values, tz, now, None)
    start = datetime.fromisoformat(fields["starts_at"])
    code = _code_for(conn, fields["type"], start, tz)
    at = to_iso(now.replace(microsecond=0))
    cursor = conn.execute(
        "INSERT INTO campaigns (code, channel, created_at, created_by) VALUES (?, ?, ?, ?)",
        (code, fields["type"], at, created_by),
    )
    campaign_id = cursor.lastrowid
    cursor = conn.execute(
        "INSERT INTO actions (campaign_id, type, title, place, starts_at, ends_at, capacity,"
        " discord_event_id, created_at, created_by, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            campaign_id,
            fields["type"],
            fields["title"],
            fields.get("place"),
            fields["starts_at"],
            fields["ends_at"],
            fields.get("capacity"),
            discord_event_id,
            at,
            created_by,
            at,
        ),
    )
    log_event(conn, "campaign_created", at=at, campaign=code, channel=fields["type"])
    log_event(conn, "action_created", at=at, action=cursor.lastrowid, code=code)
    found = action_by_code(conn, code)
    assert found is not None
    return found


def update_action(
    conn: sqlite3.Connection, code: str, values: ActionInput, *, tz: str, now: datetime
) -> tuple[Action, bool]:
    """Change an action; (the action, whether anything changed). Cancelled ones stay so."""
    current = _existing(conn, code)
    if current.cancelled:
        raise ActionError("actions.already_cancelled", code=current.code)
    fields = _parsed(values, tz, now, current)
    if not fields:
        return current, False
    sets = ", ".join(f"{name} = ?" for name in fields)
    conn.execute(
        f"UPDATE actions SET {sets}, updated_at = ? WHERE id = ?",
        (*fields.values(), to_iso(now.replace(microsecond=0)), current.id),
    )
    if "type" in fields:
        conn.execute(
            "UPDATE campaigns SET channel = ? WHERE id = ?", (fields["type"], current.campaign_id)
        )
    log_event(conn, "action_updated", action=current.id, fields=sorted(fields))
    return _existing(conn, current.code), True


def cancel_action(conn: sqlite3.Connection, code: str, now: datetime) -> Action:
    """Cancel an action (kept for the figures; no reminder, no evaluation)."""
    current = _existing(conn, code)
    if current.cancelled:
        raise ActionError("actions.already_cancelled", code=current.code)
    conn.execute(
        "UPDATE actions SET status = 'cancelled', updated_at = ? WHERE id = ?",
        (to_iso(now.replace(microsecond=0)), current.id),
    )
    log_event(conn, "action_cancelled", action=current.id)
    return _existing(conn, current.code)


def set_discord_event(conn: sqlite3.Connection, action_id: int, event_id: str | None) -> None:
    """Remember the server's scheduled event of an action."""
    conn.execute("UPDATE actions SET discord_event_id = ? WHERE id = ?", (event_id, action_id))


def action_by_code(conn: sqlite3.Connection, code: str) -> Action | None:
    """The action with this campaign code (any case, dashes optional at the end), if any."""
    normalized = codes.normalize_campaign(code.strip())
    if normalized is None:
        return None
    row = conn.execute(f"SELECT {_COLUMNS}{_FROM} WHERE c.code = ?", (normalized,)).fetchone()
    return _action(row) if row else None


def action_by_event(conn: sqlite3.Connection, event_id: str) -> Action | None:
    """The action of a Discord scheduled event, if any."""
    row = conn.execute(
        f"SELECT {_COLUMNS}{_FROM} WHERE a.discord_event_id = ?", (event_id,)
    ).fetchone()
    return _action(row) if row else None


def code_of(conn: sqlite3.Connection, action_id: int) -> str | None:
    """The code of an action, by id."""
    row = conn.execute(
        "SELECT c.code FROM actions a JOIN campaigns c ON c.id = a.campaign_id WHERE a.id = ?",
        (action_id,),
    ).fetchone()
    return str(row[0]) if row else None


def _existing(conn: sqlite3.Connection, code: str) -> Action:
    found = action_by_code(conn, code)
    if found is None:
        raise ActionError("actions.unknown_code", code=code.strip()[:30])
    return found


def campaign_of(action: Action) -> Campaign:
    """The campaign behind an action."""
    return Campaign(action.campaign_id, action.code, action.type, action.starts_at)


def upcoming(
    conn: sqlite3.Connection, now: datetime, until: datetime, kind: str | None = None
) -> list[Action]:
    """Scheduled actions not yet over that start before ``until``, soonest first."""
    sql = (
        f"SELECT {_COLUMNS}{_FROM} WHERE a.status = 'scheduled' AND a.ends_at > ?"
        " AND a.starts_at < ?"
    )
    params: list[Any] = [to_iso(now), to_iso(until)]
    if kind is not None:
        sql += " AND a.type = ?"
        params.append(kind)
    rows = conn.execute(sql + " ORDER BY a.starts_at, a.id", params).fetchall()
    return [_action(row) for row in rows]


def any_upcoming(conn: sqlite3.Connection, now: datetime) -> bool:
    """True when the agenda has a scheduled action not yet over."""
    return (
        conn.execute(
            "SELECT 1 FROM actions WHERE status = 'scheduled' AND ends_at > ? LIMIT 1",
            (to_iso(now),),
        ).fetchone()
        is not None
    )


# ---------------------------------------------------------------- presence, RSVP, interest


def _touch(conn: sqlite3.Connection, action_id: int, participant_id: int) -> None:
    conn.execute(
        "INSERT INTO action_people (action_id, participant_id) VALUES (?, ?)"
        " ON CONFLICT DO NOTHING",
        (action_id, participant_id),
    )


@dataclass(frozen=True)
class CheckIn:
    """Outcome of a check-in."""

    action: Action
    already: bool  # was already counted present
    new_contact: bool  # the action is now this person's source


def check_in(
    conn: sqlite3.Connection, code: str, participant_id: int, now: datetime, newcomer: bool = False
) -> CheckIn:
    """Record presence at an action (its code), from an hour before to two hours after it.

    A ``newcomer`` (first contact is this check-in) without a source gets the action as source,
    as with a campaign code; an existing member is counted present only.
    """
    action = action_by_code(conn, code)
    if action is None or action.cancelled:
        raise ActionError("actions.unknown_code", code=code.strip()[:30])
    if now < action.start - CHECKIN_BEFORE:
        raise ActionError("actions.checkin_too_early", code=action.code)
    if now > action.end + CHECKIN_AFTER:
        raise ActionError("actions.checkin_over", code=action.code)
    me = get_participant(conn, participant_id)
    _touch(conn, action.id, participant_id)
    at = to_iso(now.replace(microsecond=0))
    updated = conn.execute(
        "UPDATE action_people SET checked_in_at = ? WHERE action_id = ? AND participant_id = ?"
        " AND checked_in_at IS NULL",
        (at, action.id, participant_id),
    ).rowcount
    new_contact = False
    if newcomer and not me.has_source:
        set_source(conn, me, campaign=campaign_of(action), channel=f"campaign:{action.code}")
        new_contact = True
    if updated:
        log_event(conn, "action_checked_in", participant_id, at=at, action=action.id)
    return CheckIn(action, not updated, new_contact)


def check_in_by_sms(
    conn: sqlite3.Connection, code: str, phone_hash: str, phone: str, now: datetime, lang: str
) -> tuple[CheckIn, bool]:
    """Presence of someone who texts the action's code (no Discord): (the check-in, whether
    they are a relative, addressed as "vous").

    A number Relais does not know becomes a participant whose source is the action; the number
    is kept on the presence row until their evaluation (by SMS) is over. Nothing is written when
    the check-in is refused.
    """
    participant = by_phone_hash(conn, phone_hash)
    newcomer = participant is None
    if participant is None:
        participant = insert_participant(
            conn,
            joined_at=to_iso(now.replace(microsecond=0)),
            channel="sms",
            phone_hash=phone_hash,
            lang=lang,
        )
    result = check_in(conn, code, participant.id, now, newcomer)
    conn.execute(
        "UPDATE action_people SET phone = ? WHERE action_id = ? AND participant_id = ?"
        " AND rating IS NULL",
        (phone, result.action.id, participant.id),
    )
    return result, participant.kind == "relative"


def rsvp(conn: sqlite3.Connection, code: str, participant_id: int, now: datetime) -> Action:
    """ "J'y vais": recorded, with a reminder the day before."""
    action = action_by_code(conn, code)
    if action is None or action.cancelled:
        raise ActionError("actions.unknown_code", code=code.strip()[:30])
    if action.end <= now:
        raise ActionError("actions.checkin_over", code=action.code)
    if action.capacity is not None:
        taken = conn.execute(
            "SELECT COUNT(*) FROM action_people WHERE action_id = ? AND rsvp_at IS NOT NULL"
            " AND participant_id != ?",
            (action.id, participant_id),
        ).fetchone()[0]
        if taken >= action.capacity:
            raise ActionError("actions.full", code=action.code, places=action.capacity)
    _touch(conn, action.id, participant_id)
    conn.execute(
        "UPDATE action_people SET rsvp_at = COALESCE(rsvp_at, ?)"
        " WHERE action_id = ? AND participant_id = ?",
        (to_iso(now.replace(microsecond=0)), action.id, participant_id),
    )
    log_event(conn, "action_rsvp", participant_id, action=action.id)
    return action


def interested(
    conn: sqlite3.Connection, action_id: int, participant_id: int, now: datetime, on: bool = True
) -> None:
    """Discord's "Intéressé" added (``on``) or removed."""
    _touch(conn, action_id, participant_id)
    conn.execute(
        "UPDATE action_people SET interested_at = ? WHERE action_id = ? AND participant_id = ?",
        (to_iso(now.replace(microsecond=0)) if on else None, action_id, participant_id),
    )
    log_event(
        conn, "action_interested" if on else "action_uninterested", participant_id, action=action_id
    )


def opt_out(conn: sqlite3.Connection, participant_id: int, now: datetime) -> None:
    """No more reminders or evaluation requests for this person."""
    conn.execute(
        "INSERT INTO action_opt_outs (participant_id, at) VALUES (?, ?) ON CONFLICT DO NOTHING",
        (participant_id, to_iso(now.replace(microsecond=0))),
    )


# ---------------------------------------------------------------- reminders and evaluations


@dataclass(frozen=True)
class Recipient:
    """Someone to write to about an action: Discord id, or phone (relatives) and lang."""

    action: Action
    participant_id: int
    name: str
    discord_id: str | None
    phone: str | None
    lang: str | None
    relative: bool = False  # addressed as "vous"
    reminder: bool = False  # an evaluation's one reminder


_REACHABLE = (
    " JOIN participants p ON p.id = ap.participant_id"
    " WHERE p.erased_at IS NULL AND p.banned = 0 AND p.left_at IS NULL"
    " AND (p.discord_id IS NOT NULL OR p.phone IS NOT NULL OR ap.phone IS NOT NULL)"
    " AND NOT EXISTS (SELECT 1 FROM action_opt_outs o WHERE o.participant_id = p.id)"
    " AND NOT (p.phone_hash IS NOT NULL AND EXISTS"
    "   (SELECT 1 FROM opt_outs s WHERE s.phone_hash = p.phone_hash))"
)
# The number is the one kept at an SMS check-in (participants hold only its keyed hash).
_PERSON = (
    "ap.participant_id, COALESCE(p.display_name, p.ref), p.discord_id,"
    " COALESCE(ap.phone, p.phone), p.lang, p.kind = 'relative'"
)


def due_reminders(conn: sqlite3.Connection, now: datetime, tz: str) -> list[Recipient]:
    """People who said "J'y vais" (or "Intéressé" on Discord) to actions that start tomorrow
    (local day), not yet reminded."""
    zone = ZoneInfo(tz)
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    low = datetime.combine(tomorrow, time(), zone)
    high = datetime.combine(tomorrow + timedelta(days=1), time(), zone)
    found: list[Recipient] = []
    for action in upcoming(conn, now, high):
        if action.start < low:
            continue
        rows = conn.execute(
            f"SELECT {_PERSON} FROM action_people ap{_REACHABLE}"
            " AND ap.action_id = ? AND (ap.rsvp_at IS NOT NULL OR ap.interested_at IS NOT NULL)"
            " AND ap.reminded_at IS NULL",
            (action.id,),
        ).fetchall()
        found.extend(Recipient(action, *tuple(row)) for row in rows)
    return found


def mark_reminded(conn: sqlite3.Connection, action_id: int, participant_id: int, at: str) -> None:
    """The reminder of the day before left."""
    conn.execute(
        "UPDATE action_people SET reminded_at = ? WHERE action_id = ? AND participant_id = ?",
        (at, action_id, participant_id),
    )


def due_evaluations(conn: sqlite3.Connection, now: datetime) -> list[Recipient]:
    """Present participants of ended actions to ask (once), or remind (once, a day later)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS}{_FROM} WHERE a.status = 'scheduled' AND a.ends_at <= ?"
        " AND a.ends_at > ? ORDER BY a.ends_at",
        (to_iso(now), to_iso(now - EVAL_WINDOW)),
    ).fetchall()
    found: list[Recipient] = []
    late = to_iso(now - EVAL_REMINDER_AFTER)
    for action in (_action(row) for row in rows):
        people = conn.execute(
            f"SELECT {_PERSON}, ap.eval_asked_at IS NOT NULL FROM action_people ap{_REACHABLE}"
            " AND ap.action_id = ? AND ap.checked_in_at IS NOT NULL AND ap.rating IS NULL"
            " AND (ap.eval_asked_at IS NULL"
            "      OR (ap.eval_reminded_at IS NULL AND ap.eval_asked_at <= ?))",
            (action.id, late),
        ).fetchall()
        found.extend(Recipient(action, *tuple(row)) for row in people)
    return found


def mark_asked(conn: sqlite3.Connection, recipient: Recipient, at: str) -> None:
    """The evaluation request (or its reminder) left."""
    column = "eval_reminded_at" if recipient.reminder else "eval_asked_at"
    # After the one reminder, no message will leave for this evaluation: the number goes.
    phone = ", phone = NULL" if recipient.reminder else ""
    conn.execute(
        f"UPDATE action_people SET {column} = ?{phone} WHERE action_id = ? AND participant_id = ?",
        (at, recipient.action.id, recipient.participant_id),
    )


def clear_phones(conn: sqlite3.Connection, now: datetime) -> int:
    """Forget the numbers kept for evaluations once the evaluation window is over, the action
    cancelled, or the number opted out."""
    return conn.execute(
        "UPDATE action_people SET phone = NULL WHERE phone IS NOT NULL AND (action_id IN"
        " (SELECT id FROM actions WHERE ends_at <= ? OR status = 'cancelled')"
        " OR participant_id IN (SELECT p.id FROM participants p"
        "   JOIN opt_outs o ON o.phone_hash = p.phone_hash))",
        (to_iso(now - EVAL_WINDOW),),
    ).rowcount


def open_evaluation(
    conn: sqlite3.Connection, participant_id: int, since: datetime
) -> tuple[int, str] | None:
    """The evaluation this person was asked (or reminded) since ``since`` and has not finished:
    (action id, ``rate`` or ``recommend``), the latest one."""
    row = conn.execute(
        "SELECT action_id, rating IS NULL FROM action_people WHERE participant_id = ?"
        " AND checked_in_at IS NOT NULL AND recommend IS NULL"
        " AND MAX(COALESCE(eval_asked_at, ''), COALESCE(eval_reminded_at, '')) >= ?"
        " ORDER BY MAX(COALESCE(eval_asked_at, ''), COALESCE(eval_reminded_at, '')) DESC"
        " LIMIT 1",
        (participant_id, to_iso(since)),
    ).fetchone()
    if row is None:
        return None
    return int(row[0]), "rate" if row[1] else "recommend"


def _evaluable(conn: sqlite3.Connection, action_id: int, participant_id: int) -> bool:
    row = conn.execute(
        "SELECT checked_in_at FROM action_people WHERE action_id = ? AND participant_id = ?",
        (action_id, participant_id),
    ).fetchone()
    return bool(row and row[0])


def record_rating(
    conn: sqlite3.Connection, action_id: int, participant_id: int, rating: int
) -> bool:
    """A 1-5 rating from someone present; False when they were not."""
    if not 1 <= rating <= 5 or not _evaluable(conn, action_id, participant_id):
        return False
    conn.execute(
        "UPDATE action_people SET rating = ?, phone = NULL"  # rated: no SMS will follow
        " WHERE action_id = ? AND participant_id = ?",
        (rating, action_id, participant_id),
    )
    log_event(conn, "action_rated", participant_id, action=action_id)
    return True


def record_recommend(
    conn: sqlite3.Connection, action_id: int, participant_id: int, answer: str
) -> bool:
    """ "Tu en parlerais à un pote ?": oui / peut-etre / non."""
    if answer not in RECOMMEND or not _evaluable(conn, action_id, participant_id):
        return False
    conn.execute(
        "UPDATE action_people SET recommend = ? WHERE action_id = ? AND participant_id = ?",
        (answer, action_id, participant_id),
    )
    return True


def record_comment(
    conn: sqlite3.Connection, code: str, participant_id: int, text: str, now: datetime
) -> Action:
    """An optional comment on an action the person attended."""
    action = _existing(conn, code)
    if not _evaluable(conn, action.id, participant_id):
        raise ActionError("actions.not_present", code=action.code)
    conn.execute(
        "UPDATE action_people SET comment = ?, comment_at = ?"
        " WHERE action_id = ? AND participant_id = ?",
        (text.strip()[:MAX_COMMENT], to_iso(now.replace(microsecond=0)), action.id, participant_id),
    )
    return action


def purge_comments(conn: sqlite3.Connection, before: datetime) -> int:
    """Clear comments older than the questions' retention period."""
    return conn.execute(
        "UPDATE action_people SET comment = NULL WHERE comment IS NOT NULL AND comment_at < ?",
        (to_iso(before),),
    ).rowcount


# ---------------------------------------------------------------- results


def results(
    conn: sqlite3.Connection, since: str | None = None, until: str | None = None
) -> list[dict[str, Any]]:
    """Per action (not cancelled, started in [since, until)): the funnel and the evaluation."""
    sql = f"SELECT {_COLUMNS}{_FROM} WHERE a.status = 'scheduled'"
    params: list[Any] = []
    if since:
        sql += " AND a.starts_at >= ?"
        params.append(since)
    if until:
        sql += " AND a.starts_at < ?"
        params.append(until)
    out: list[dict[str, Any]] = []
    for action in (_action(r) for r in conn.execute(sql + " ORDER BY a.starts_at", params)):
        out.append(_result(conn, action))
    return out


def result_of(conn: sqlite3.Connection, code: str) -> dict[str, Any] | None:
    """The results of one action, by code."""
    action = action_by_code(conn, code)
    return _result(conn, action) if action else None


def _result(conn: sqlite3.Connection, action: Action) -> dict[str, Any]:
    # Present: checked in, or joined through the action's code (its QR poster) that day.
    present = (
        "SELECT participant_id AS id FROM action_people WHERE action_id = :action"
        " AND checked_in_at IS NOT NULL"
        " UNION SELECT id FROM participants WHERE campaign_id = :campaign"
    )
    keys = {
        "action": action.id,
        "campaign": action.campaign_id,
        "start": action.starts_at,
        "until": to_iso(action.start + RECRUIT_WINDOW),
    }
    row = conn.execute(
        "SELECT"
        " (SELECT COUNT(*) FROM action_people WHERE action_id = :action"
        "   AND (rsvp_at IS NOT NULL OR interested_at IS NOT NULL)),"
        f" (SELECT COUNT(*) FROM ({present})),"
        " (SELECT COUNT(*) FROM participants WHERE campaign_id = :campaign),"
        " (SELECT COUNT(*) FROM participants r WHERE r.referrer_id IN"
        f"   (SELECT id FROM ({present})) AND r.joined_at >= :start AND r.joined_at < :until),"
        " (SELECT COUNT(*) FROM participants p WHERE p.enrolled_at IS NOT NULL AND p.id IN"
        f"   (SELECT id FROM ({present}))),"
        " (SELECT AVG(rating) FROM action_people WHERE action_id = :action AND rating IS NOT NULL),"
        " (SELECT COUNT(rating) FROM action_people WHERE action_id = :action),"
        " (SELECT AVG(recommend = 'oui') FROM action_people WHERE action_id = :action"
        "   AND recommend IS NOT NULL)",
        keys,
    ).fetchone()
    interested_n, attended, new, recruits, enrolled, mean, ratings, recommend = tuple(row)
    return {
        "code": action.code,
        "type": action.type,
        "title": action.title,
        "place": action.place,
        "start": action.starts_at,
        "interested": interested_n,
        "attended": attended,
        "new": new,
        "recruits_30d": recruits,
        "enrolled": enrolled,
        "rating_mean": round(mean, 2) if mean is not None else None,
        "ratings": ratings,
        "would_recommend": round(recommend, 3) if recommend is not None else None,
    }


def comparison(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The results grouped by type (two actions or more), oldest first: the same kind of action
    over time and place."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["type"], []).append(row)
    return {kind: items for kind, items in groups.items() if len(items) >= 2}
