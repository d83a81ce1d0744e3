"""The SMS service: rules before anything leaves, the durable outbound queue, statuses.

Inbound SMS are handled by the brain (``Conversation.sms_text``); replies to them are fitted and
counted here (``account_reply``).

Nothing leaves without passing the rules of SPEC §8: a valid mobile number of an allowed country,
the member's confirmation, the per-member daily limit, the per-number re-invite window, the daily
budget, the opt-out list (keyed hashes) and quiet hours (a message then waits in the queue). The
queue lives in SQLite (``outbound_sms``), so an accepted invitation survives a restart; a message
whose fate is unknown (a timeout after the request left) is never sent twice.
"""

from __future__ import annotations

import asyncio
import math
import re
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from bot.logging import get_logger
from bot.ports import Reply, SmsTransport, StaffNotifier, Target
from bot.settings import Settings
from bot.sms import gsm
from bot.sms.errors import SmsRefused, SmsSendError
from bot.sms.phone import normalize_mobile
from bot.sms.quiet import next_allowed
from bot.texts import Texts
from referrals.privacy import load_secret, phone_hash
from referrals.service import by_phone_hash, get_participant, log_event
from referrals.sms_inbound import opt_out
from referrals.store import Database
from referrals.timeutil import to_iso

__all__ = ["InvitationOutcome", "SmsRefused", "SmsSendError", "SmsService"]

log = get_logger(__name__)

MAX_SEGMENTS = 2
MAX_ATTEMPTS = 5  # retryable provider errors (429, 503) before a message is marked failed
RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(minutes=30)
BUDGET_ALERT_SHARE = 0.8
TOKEN_BYTES = 6  # an invitation's token (its /i/ and /stop/ links): 8 URL-safe characters
# What a token in a URL may look like (checked before any lookup).
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{4,64}")
NAME_LIMIT = 24
FIRST_NAME_LIMIT = 20
PROGRAMME_LIMIT = 40
WORKER_IDLE = 30.0  # seconds between queue checks when nothing is due sooner
WORKER_ERROR_BACKOFF = (1.0, 60.0)
PROVIDER_STATUS_RANK = {
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
OPTED_OUT_ERROR = "21610"


@dataclass(frozen=True)
class InvitationOutcome:
    """An accepted invitation: ``queued`` leaves now, ``waiting`` leaves at ``not_before``."""

    invitation_id: int
    status: Literal["queued", "waiting"]
    not_before: datetime


@dataclass(frozen=True)
class _Rules:
    per_member_per_day: int
    reinvite_days: int
    daily_budget: int


@dataclass(frozen=True)
class _Claimed:
    id: int
    to: str | None
    body: str
    purpose: str
    invitation_id: int | None
    attempts: int


def _iso(moment: datetime) -> str:
    return to_iso(moment.replace(microsecond=0))


def _day_bounds(moment: datetime, tz: str) -> tuple[str, str]:
    zone = ZoneInfo(tz)
    day = moment.astimezone(zone).date()
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    return to_iso(start), to_iso(end)


def _budget_used(conn: sqlite3.Connection, day: str) -> int:
    return conn.execute(
        "SELECT COUNT(*) FROM outbound_sms WHERE budget_day = ? AND status != 'cancelled'", (day,)
    ).fetchone()[0]


def _check_rules(
    conn: sqlite3.Connection,
    rules: _Rules,
    member_id: int | None,
    hashed: str,
    now: datetime,
    tz: str,
    budget_day: str,
) -> None:
    """Every rule that can be checked before sending; raises SmsRefused."""
    if conn.execute("SELECT 1 FROM opt_outs WHERE phone_hash = ?", (hashed,)).fetchone():
        raise SmsRefused("sms.opted_out")
    if member_id is not None:
        if by_phone_hash(conn, hashed) is not None:
            raise SmsRefused("sms.already_member")
        since = to_iso(now - timedelta(days=rules.reinvite_days))
        if (
            rules.reinvite_days > 0
            and conn.execute(
                "SELECT 1 FROM invitations WHERE phone_hash = ? AND created_at >= ?"
                " AND status != 'refused' LIMIT 1",
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
    if _budget_used(conn, budget_day) >= rules.daily_budget:
        raise SmsRefused("sms.budget_exhausted", budget=rules.daily_budget)


def _budget_alert_due(conn: sqlite3.Connection, budget: int, day: str) -> int | None:
    """The day's usage when it just reached the alert share and no alert went out for that day."""
    used = _budget_used(conn, day)
    if budget <= 0 or used < math.ceil(budget * BUDGET_ALERT_SHARE):
        return None
    row = conn.execute("SELECT value FROM meta WHERE key = 'sms_budget_alert'").fetchone()
    if row is not None and row[0] >= day:
        return None
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('sms_budget_alert', ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (day,),
    )
    return used


def _claim_next(conn: sqlite3.Connection, now: str) -> _Claimed | None:
    """Take the next due message out of the queue (status ``sending``); skip opted-out numbers."""
    while True:
        row = conn.execute(
            "SELECT id, to_phone, phone_hash, body, purpose, invitation_id, attempts"
            " FROM outbound_sms WHERE status = 'queued' AND not_before <= ?"
            " ORDER BY not_before, id LIMIT 1",
            (now,),
        ).fetchone()
        if row is None:
            return None
        blocked = conn.execute(
            "SELECT 1 FROM opt_outs WHERE phone_hash = ?", (row["phone_hash"],)
        ).fetchone()
        if blocked or not row["to_phone"]:
            # Opted out (or erased) while it waited.
            conn.execute(
                "UPDATE outbound_sms SET status = 'cancelled', to_phone = NULL, updated_at = ?"
                " WHERE id = ?",
                (now, row["id"]),
            )
            if row["invitation_id"]:
                conn.execute(
                    "UPDATE invitations SET status = 'cancelled', phone = NULL WHERE id = ?",
                    (row["invitation_id"],),
                )
            continue
        conn.execute(
            "UPDATE outbound_sms SET status = 'sending', attempts = attempts + 1, updated_at = ?"
            " WHERE id = ?",
            (now, row["id"]),
        )
        return _Claimed(
            row["id"],
            row["to_phone"],
            row["body"],
            row["purpose"],
            row["invitation_id"],
            row["attempts"] + 1,
        )


def _finish(
    conn: sqlite3.Connection,
    outbound_id: int,
    status: str,
    now: str,
    sid: str | None = None,
    error_code: str | None = None,
) -> None:
    """A message leaves the queue for good: the number in clear is no longer needed."""
    conn.execute(
        "UPDATE outbound_sms SET status = ?, provider_sid = COALESCE(?, provider_sid),"
        " error_code = ?, to_phone = NULL, updated_at = ? WHERE id = ?",
        (status, sid, error_code, now, outbound_id),
    )
    row = conn.execute(
        "SELECT invitation_id, phone_hash FROM outbound_sms WHERE id = ?", (outbound_id,)
    ).fetchone()
    if row["invitation_id"]:
        conn.execute(
            "UPDATE invitations SET status = ?, phone = NULL,"
            " sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?",
            (status, status, now, row["invitation_id"]),
        )
    if error_code == OPTED_OUT_ERROR:
        opt_out(conn, row["phone_hash"], now)
        log_event(conn, "sms_opted_out", at=now, via="provider", outbound=outbound_id)


def _requeue(
    conn: sqlite3.Connection, outbound_id: int, not_before: str, now: str, code: str | None
) -> None:
    conn.execute(
        "UPDATE outbound_sms SET status = 'queued', not_before = ?, error_code = ?, updated_at = ?"
        " WHERE id = ?",
        (not_before, code, now, outbound_id),
    )


def _recover(conn: sqlite3.Connection, now: str) -> int:
    """At start: a message caught ``sending`` by a crash may have left; never send it again."""
    rows = conn.execute("SELECT id FROM outbound_sms WHERE status = 'sending'").fetchall()
    for row in rows:
        _finish(conn, row["id"], "unknown", now)
    return len(rows)


class SmsService:
    """Invitations to relatives, the outbound queue, inbound SMS and delivery statuses."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        texts: Texts,
        transport: SmsTransport,
        notifier: StaffNotifier,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.settings = settings
        self.texts = texts
        self.transport = transport
        self.notifier = notifier
        self.clock = clock
        self._secret: bytes | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._rules = _Rules(
            settings.sms_invites_per_member_per_day,
            settings.sms_reinvite_days,
            settings.sms_daily_budget,
        )

    # ------------------------------------------------------------ set-up and helpers

    async def start(self) -> None:
        """Load the hashing secret and resume the queue after a restart."""
        self._secret = await self.db.call(load_secret, self.settings.secret)
        recovered = await self.db.write(_recover, self._now_iso())
        if recovered:
            log.warning("sms_unknown_after_restart", count=recovered)
        self._wake.set()

    def hash(self, e164: str) -> str:
        """Keyed hash of an E.164 number."""
        if self._secret is None:
            raise RuntimeError("SmsService.start() was not awaited")
        return phone_hash(self._secret, e164)

    def _now_iso(self) -> str:
        return _iso(self.clock())

    @property
    def status_callback_url(self) -> str | None:
        """Where the provider posts delivery statuses."""
        base = self.settings.public_base_url
        return f"{base}/twilio/status" if base else None

    def _staff_target(self) -> Target:
        name = self.settings.discord_staff_channel
        return Target("channel", name, name)

    def _lang(self, lang: str | None) -> str:
        return lang if lang in ("fr", "en") else self.settings.lang

    def _sms(self, key: str, lang: str | None, **params: Any) -> str:
        """Render an SMS text: GSM-7 only, at most two segments."""
        return gsm.fit(self.texts.render(key, self._lang(lang), **params), MAX_SEGMENTS)

    def _budget_day(self, moment: datetime) -> str:
        return moment.astimezone(ZoneInfo(self.settings.tz)).date().isoformat()

    def _not_before(self, now: datetime) -> datetime:
        return next_allowed(self.settings.sms_quiet_hours, now, self.settings.tz)

    # ------------------------------------------------------------ texts

    def stop_line(self, lang: str, token: str) -> str:
        """How to stop: STOP for a two-way sender, else SMS_STOP_TEXT or the opt-out link."""
        settings = self.settings
        if settings.two_way_sender:
            return self.texts.render("sms.stop_reply", lang)
        if settings.sms_stop_text:
            return gsm.to_gsm(settings.sms_stop_text)
        if settings.public_base_url:
            return self.texts.render("sms.stop_link", lang, url=self.stop_url(token))
        # No provider sender configured (console, development): replies reach the bot.
        return self.texts.render("sms.stop_reply", lang)

    def invitation_url(self, token: str) -> str:
        """The link of an invitation SMS when Relais has a public address (``GET /i/TOKEN``)."""
        return f"{self.settings.public_base_url}/i/{token}"

    def stop_url(self, token: str) -> str:
        """The one-click opt-out page of an invitation."""
        return f"{self.settings.public_base_url}/stop/{token}"

    def render_invitation(
        self, member_name: str | None, first_name: str | None, link: str, lang: str, token: str
    ) -> str:
        """The invitation text; shorter variants when long names would exceed two segments."""
        lang = self._lang(lang)
        params: dict[str, Any] = {
            "member": gsm.clean_value(member_name, NAME_LIMIT),
            "first_name": gsm.clean_value(first_name, FIRST_NAME_LIMIT),
            "programme": gsm.clean_value(self.settings.programme_name, PROGRAMME_LIMIT),
            "link": link.strip(),
            "stop": self.stop_line(lang, token),
        }
        for key in ("sms.invitation", "sms.invitation_short"):
            body = gsm.to_gsm(self.texts.render(key, lang, **params))
            if gsm.count_segments(body).segments <= MAX_SEGMENTS:
                return body
        raise SmsRefused("sms.too_long")

    # ------------------------------------------------------------ numbers and rules

    def normalize_number(self, raw: str) -> str:
        """E.164 for a valid mobile number of an allowed country; raises SmsRefused."""
        return normalize_mobile(raw, self.settings.sms_allowed_countries)

    async def check_invitation(self, member_id: int, raw_number: str) -> str:
        """Every rule that can be checked before the member confirms consent; returns E.164."""
        number = self.normalize_number(raw_number)
        now = self.clock()
        day = self._budget_day(self._not_before(now))
        await self.db.read(
            _check_rules, self._rules, member_id, self.hash(number), now, self.settings.tz, day
        )
        return number

    async def invite(
        self, member_id: int, number: str, first_name: str | None, link: str, lang: str
    ) -> InvitationOutcome:
        """Queue an invitation the member confirmed (the person agreed to be contacted)."""
        number = self.normalize_number(number)
        hashed = self.hash(number)
        lang = self._lang(lang)
        member = await self.db.read(get_participant, member_id)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        if self.settings.public_base_url:
            # The invitation's own landing page (the member's, whose Discord button carries the
            # invitation): a relative who joins through it counts as a joined invitation.
            link = self.invitation_url(token)
        body = self.render_invitation(member.display_name, first_name, link, lang, token)
        now = self.clock()
        not_before = self._not_before(now)
        status: Literal["queued", "waiting"] = "queued" if not_before <= now else "waiting"
        day = self._budget_day(not_before)
        created, leaves = _iso(now), _iso(not_before)
        rules, tz, budget = self._rules, self.settings.tz, self.settings.sms_daily_budget

        def run(conn: sqlite3.Connection) -> tuple[int, int | None]:
            _check_rules(conn, rules, member_id, hashed, now, tz, day)
            cursor = conn.execute(
                "INSERT INTO invitations (member_id, phone_hash, first_name, token, status,"
                " created_at, lang) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (member_id, hashed, first_name, token, status, created, lang),
            )
            invitation_id = cursor.lastrowid
            assert invitation_id is not None
            conn.execute(
                "INSERT INTO outbound_sms (to_phone, phone_hash, body, purpose, invitation_id,"
                " status, not_before, created_at, updated_at, budget_day)"
                " VALUES (?, ?, ?, 'invitation', ?, 'queued', ?, ?, ?, ?)",
                (number, hashed, body, invitation_id, leaves, created, created, day),
            )
            log_event(conn, "sms_invited", member_id, at=created, invitation=invitation_id)
            return invitation_id, _budget_alert_due(conn, budget, day)

        invitation_id, alert = await self.db.write(run)
        log.info("sms_invitation_queued", invitation=invitation_id, status=status)
        if alert is not None:
            await self._alert_budget(alert)
        self._wake.set()
        return InvitationOutcome(invitation_id, status, not_before)

    async def _alert_budget(self, used: int) -> None:
        text = self.texts.render(
            "sms.budget_alert",
            self.settings.lang,
            used=used,
            budget=self.settings.sms_daily_budget,
        )
        try:
            await self.notifier.notify_staff(Reply(self._staff_target(), text, ephemeral=False))
        except Exception:
            log.exception("sms_budget_alert_failed")

    # ------------------------------------------------------------ the outbound queue

    async def dispatch_due(self) -> int:
        """Send every message that is due now; returns how many are still queued."""
        async with self._lock:
            while True:
                claimed = await self.db.write(_claim_next, self._now_iso())
                if claimed is None:
                    break
                await self._send(claimed)
            return await self.db.read(
                lambda conn: conn.execute(
                    "SELECT COUNT(*) FROM outbound_sms WHERE status = 'queued'"
                ).fetchone()[0]
            )

    async def _send(self, claimed: _Claimed) -> None:
        assert claimed.to is not None
        try:
            sid = await self.transport.send(
                claimed.to, claimed.body, status_callback=self.status_callback_url
            )
        except SmsSendError as exc:
            await self._send_failed(claimed, exc)
        except Exception:
            # A bug or an unexpected library error: it may have left, so never resend it.
            log.exception("sms_send_crashed", outbound=claimed.id)
            await self.db.write(_finish, claimed.id, "unknown", self._now_iso())
        else:
            await self.db.write(_finish, claimed.id, "sent", self._now_iso(), sid)
            log.info("sms_sent", outbound=claimed.id, purpose=claimed.purpose, sid=sid)

    async def _send_failed(self, claimed: _Claimed, exc: SmsSendError) -> None:
        now = self.clock()
        if exc.ambiguous:
            log.warning("sms_send_unknown", outbound=claimed.id, reason=exc.reason)
            await self.db.write(_finish, claimed.id, "unknown", _iso(now), None, exc.code)
        elif exc.retryable and claimed.attempts < MAX_ATTEMPTS:
            delay = min(RETRY_BASE * 2 ** (claimed.attempts - 1), RETRY_MAX)
            if exc.retry_after:
                delay = max(delay, timedelta(seconds=min(exc.retry_after, RETRY_MAX.seconds)))
            later = now + delay
            if claimed.purpose == "invitation":
                later = self._not_before(later)
            log.warning(
                "sms_send_retry", outbound=claimed.id, code=exc.code, attempts=claimed.attempts
            )
            await self.db.write(_requeue, claimed.id, _iso(later), _iso(now), exc.code)
        else:
            log.warning(
                "sms_send_failed", outbound=claimed.id, code=exc.code, opted_out=exc.opted_out
            )
            code = OPTED_OUT_ERROR if exc.opted_out else exc.code
            await self.db.write(_finish, claimed.id, "failed", _iso(now), None, code)

    async def _next_due_in(self) -> float:
        row = await self.db.fetchone(
            "SELECT MIN(not_before) FROM outbound_sms WHERE status = 'queued'"
        )
        if row is None or row[0] is None:
            return WORKER_IDLE
        due = datetime.fromisoformat(row[0])
        return max(0.0, min(WORKER_IDLE, (due - self.clock()).total_seconds()))

    async def run_worker(self, stop: asyncio.Event) -> None:
        """Background loop: dispatch what is due, sleep until the next due message or a wake-up."""
        failures = 0
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.dispatch_due()
                delay = await self._next_due_in()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                low, high = WORKER_ERROR_BACKOFF
                delay = min(high, low * 2 ** (failures - 1))
                log.exception("sms_worker_error", retry_in=delay)
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            try:
                await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waits:
                    task.cancel()

    async def send_test(self, raw_number: str, lang: str | None = None) -> str:
        """Send one test SMS now through the transport (``relais sms test``); returns its SID."""
        number = self.normalize_number(raw_number)
        hashed = self.hash(number)
        now = self.clock()
        body = self._sms("sms.test", lang, programme=self.settings.programme_name)
        at, day = _iso(now), self._budget_day(now)
        rules, tz = self._rules, self.settings.tz

        def run(conn: sqlite3.Connection) -> int:
            _check_rules(conn, rules, None, hashed, now, tz, day)
            cursor = conn.execute(
                "INSERT INTO outbound_sms (to_phone, phone_hash, body, purpose, status, attempts,"
                " not_before, created_at, updated_at, budget_day)"
                " VALUES (NULL, ?, ?, 'test', 'sending', 1, ?, ?, ?, ?)",
                (hashed, body, at, at, at, day),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

        outbound_id = await self.db.write(run)
        try:
            sid = await self.transport.send(number, body, status_callback=self.status_callback_url)
        except SmsSendError as exc:
            status = "unknown" if exc.ambiguous else "failed"
            code = OPTED_OUT_ERROR if exc.opted_out else exc.code
            await self.db.write(_finish, outbound_id, status, self._now_iso(), None, code)
            raise
        except BaseException:
            await self.db.write(_finish, outbound_id, "unknown", self._now_iso())
            raise
        await self.db.write(_finish, outbound_id, "sent", self._now_iso(), sid)
        return sid

    # ------------------------------------------------------------ statuses and opt-out links

    async def record_status(self, message_sid: str, status: str, error_code: str | None) -> None:
        """A delivery status from the provider; out-of-order callbacks never move a message back."""
        status = status.strip().lower()
        rank = PROVIDER_STATUS_RANK.get(status)
        code = (error_code or "").strip() or None
        now = self._now_iso()

        def run(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT id, status, phone_hash, invitation_id FROM outbound_sms"
                " WHERE provider_sid = ?",
                (message_sid,),
            ).fetchone()
            if row is None:
                return False
            if rank is not None and rank >= PROVIDER_STATUS_RANK.get(row["status"], 0):
                conn.execute(
                    "UPDATE outbound_sms SET status = ?, error_code = COALESCE(?, error_code),"
                    " updated_at = ? WHERE id = ?",
                    (status, code, now, row["id"]),
                )
                if row["invitation_id"] and rank >= PROVIDER_STATUS_RANK["delivered"]:
                    conn.execute(
                        "UPDATE invitations SET status = ? WHERE id = ?",
                        ("delivered" if status == "read" else status, row["invitation_id"]),
                    )
            if code == OPTED_OUT_ERROR:
                opt_out(conn, row["phone_hash"], now)
                log_event(conn, "sms_opted_out", at=now, via="provider", outbound=row["id"])
            return True

        known = await self.db.write(run)
        log.info("sms_status", sid=message_sid, status=status, error=code, known=known)

    async def opt_out_token(self, token: str) -> bool:
        """The opt-out link of an invitation (``GET /stop/TOKEN``); False for an unknown token."""
        now = self._now_iso()

        def run(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT id, phone_hash FROM invitations WHERE token = ?", (token,)
            ).fetchone()
            if row is None:
                return False
            already = conn.execute(
                "SELECT 1 FROM opt_outs WHERE phone_hash = ?", (row["phone_hash"],)
            ).fetchone()
            if not already:
                opt_out(conn, row["phone_hash"], now)
                log_event(conn, "sms_opted_out", at=now, via="link", invitation=row["id"])
            return True

        return await self.db.write(run)

    # ------------------------------------------------------------ replies to inbound SMS

    async def account_reply(self, number: str, text: str) -> str | None:
        """A reply to an inbound SMS (sent in the TwiML response, or printed by the console):
        fitted to GSM-7 and two segments, and counted in the daily budget as an outbound row
        (``purpose = 'reply'``, already ``sent``) like every other SMS. None past the budget:
        no reply then, and the staff hear it once that day.
        """
        body = gsm.fit(text, MAX_SEGMENTS)
        hashed = self.hash(number)
        now = self.clock()
        at, day, budget = _iso(now), self._budget_day(now), self.settings.sms_daily_budget

        # Temporary outbound SQL (the SMS stream moves the queue's SQL to referrals.sms_queue).
        def run(conn: sqlite3.Connection) -> tuple[bool, bool, int | None]:
            if _budget_used(conn, day) >= budget:
                row = conn.execute(
                    "SELECT value FROM meta WHERE key = 'sms_budget_exhausted'"
                ).fetchone()
                first = row is None or row[0] < day
                if first:
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES ('sms_budget_exhausted', ?)"
                        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (day,),
                    )
                return False, first, None
            conn.execute(
                "INSERT INTO outbound_sms (to_phone, phone_hash, body, purpose, status, attempts,"
                " not_before, created_at, updated_at, budget_day)"
                " VALUES (NULL, ?, ?, 'reply', 'sent', 1, ?, ?, ?, ?)",
                (hashed, body, at, at, at, day),
            )
            return True, False, _budget_alert_due(conn, budget, day)

        allowed, first_refusal, alert = await self.db.write(run)
        if alert is not None:
            await self._alert_budget(alert)
        if not allowed:
            log.warning("sms_reply_over_budget")
            if first_refusal:
                await self._alert_budget(budget)
            return None
        return body
