"""The SMS service: rules before anything leaves, the durable outbound queue, statuses.

Inbound SMS are handled by the brain (``Conversation.sms_text``); replies to them are fitted and
counted here (``account_reply``).

Nothing leaves without passing the rules of SPEC §8: a valid mobile number of an allowed country,
the member's confirmation, the per-member daily limit, the per-number re-invite window, the daily
budget (in segments), the opt-out list (keyed hashes), a way to stop that the recipient can use,
and quiet hours in the recipient's own time, checked again when a message leaves (it then waits
in the queue). The queue lives in SQLite (``outbound_sms``, its SQL in ``referrals.sms_queue``), so
an accepted invitation survives a restart; a message whose fate is unknown (a timeout, a gateway
error) is never sent twice, and a status callback can still tell what became of it. Account and
sender errors pause the queue (messages stay queued, staff are told once).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from bot.logging import get_logger
from bot.ports import Reply, SmsTransport, StaffNotifier, Target
from bot.settings import Settings
from bot.sms import gsm
from bot.sms.errors import SmsRefused, SmsSendError
from bot.sms.phone import canonical, normalize_mobile
from bot.sms.quiet import Calendar, next_allowed, recipient_calendar
from bot.texts import Texts
from referrals import sms_queue
from referrals.privacy import load_secret, phone_hash
from referrals.service import get_participant
from referrals.store import Database
from referrals.timeutil import to_iso

__all__ = ["InvitationOutcome", "SmsRefused", "SmsSendError", "SmsService"]

log = get_logger(__name__)

MAX_SEGMENTS = 2
MAX_ATTEMPTS = 5  # retryable provider errors (429, 503) before a message is marked failed
RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(minutes=30)
TOKEN_BYTES = 6  # an invitation's token (its /i/ and /stop/ links): 8 URL-safe characters
# What a token in a URL may look like (checked before any lookup).
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{4,64}")
NAME_LIMIT = 24
FIRST_NAME_LIMIT = 20
PROGRAMME_LIMIT = 40
WORKER_IDLE = 30.0  # seconds between queue checks when nothing is due sooner
WORKER_ERROR_BACKOFF = (1.0, 60.0)
# A status callback for a message whose fate was unknown is matched within this window.
RECONCILE_WINDOW = timedelta(hours=6)
# Twilio prices a message some time after its final status: fetched once, this long after it.
PRICE_DELAY = timedelta(hours=1)
PRICE_BATCH = 20
OPTED_OUT_ERROR = sms_queue.OPTED_OUT_ERROR
# Messages that wait in the queue and respect quiet hours where the recipient lives.
QUEUED_PURPOSES = ("invitation", "evaluation")


@dataclass(frozen=True)
class InvitationOutcome:
    """An accepted invitation: ``queued`` leaves now, ``waiting`` leaves at ``not_before``."""

    invitation_id: int
    status: Literal["queued", "waiting"]
    not_before: datetime


def _iso(moment: datetime) -> str:
    return to_iso(moment.replace(microsecond=0))


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
        self._paused: str | None = None  # the provider error that stopped the queue
        self._rules = sms_queue.Rules(
            settings.sms_invites_per_member_per_day,
            settings.sms_reinvite_days,
            settings.sms_daily_budget,
        )

    # ------------------------------------------------------------ set-up and helpers

    async def start(self) -> None:
        """Load the hashing secret and resume the queue after a restart.

        A queue paused by an account error is tried again (the settings may have been fixed
        before the restart); staff are not alerted a second time if it still fails.
        """
        self._secret = await self.db.call(
            load_secret, self.settings.secret, self.settings.secret_file_for(self.db.path)
        )
        recovered = await self.db.write(sms_queue.recover, self._now_iso())
        if recovered:
            log.warning("sms_unknown_after_restart", count=recovered)
        self._paused = None
        self._wake.set()

    @property
    def paused(self) -> str | None:
        """The provider error code that paused the queue, or None."""
        return self._paused

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

    async def _alert_staff(self, key: str, **params: Any) -> None:
        text = self.texts.render(key, self.settings.lang, **params)
        try:
            await self.notifier.notify_staff(Reply(self._staff_target(), text, ephemeral=False))
        except Exception:
            log.exception("sms_staff_alert_failed", key=key)

    def _lang(self, lang: str | None) -> str:
        return lang if lang in ("fr", "en") else self.settings.lang

    def _sms(self, key: str, lang: str | None, **params: Any) -> str:
        """Render an SMS text: GSM-7 only, at most two segments."""
        return gsm.fit(self.texts.render(key, self._lang(lang), **params), MAX_SEGMENTS)

    def _budget_day(self, moment: datetime) -> str:
        return moment.astimezone(ZoneInfo(self.settings.tz)).date().isoformat()

    def calendar(self, e164: str | None) -> Calendar:
        """The recipient's time zone and public holidays (from the region of the number)."""
        return recipient_calendar(e164, self.settings.tz, self.settings.department)

    def _not_before(self, now: datetime, e164: str | None = None) -> datetime:
        return next_allowed(self.settings.sms_quiet_hours, now, self.calendar(e164))

    def _hold(self, now: datetime) -> sms_queue.Hold:
        """For the claim: when a due invitation must still wait where its recipient lives."""

        def hold(to: str, purpose: str) -> tuple[str, str] | None:
            if purpose not in QUEUED_PURPOSES:
                return None  # replies answer a message the person just sent; tests are on demand
            leaves = self._not_before(now, to)
            if leaves <= now:
                return None
            return _iso(leaves), self._budget_day(leaves)

        return hold

    # ------------------------------------------------------------ texts

    @property
    def one_way_sender(self) -> bool:
        """True when relatives cannot answer the sender (alphanumeric or a Messaging Service)."""
        settings = self.settings
        sender = settings.twilio_from_number or settings.twilio_messaging_service_sid
        return bool(sender) and not settings.two_way_sender

    def has_way_out(self) -> bool:
        """True when an invitation can say how to stop: STOP to a two-way sender, else
        ``SMS_STOP_TEXT`` or the ``/stop/TOKEN`` link (``PUBLIC_BASE_URL``)."""
        settings = self.settings
        return not self.one_way_sender or bool(settings.sms_stop_text or settings.public_base_url)

    def stop_line(self, lang: str, token: str) -> str:
        """How to stop: STOP for a two-way sender, else SMS_STOP_TEXT or the opt-out link."""
        settings = self.settings
        if not self.one_way_sender:
            # A two-way sender, or no provider at all (console, development): replies reach us.
            return self.texts.render("sms.stop_reply", lang)
        if settings.sms_stop_text:
            return gsm.to_gsm(settings.sms_stop_text)
        if settings.public_base_url:
            return self.texts.render("sms.stop_link", lang, url=self.stop_url(token))
        raise SmsRefused("sms.no_way_out")

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
            "member": gsm.clean_name(member_name, NAME_LIMIT),
            "first_name": gsm.clean_name(first_name, FIRST_NAME_LIMIT),
            "programme": gsm.clean_value(self.settings.programme_name, PROGRAMME_LIMIT),
            "link": link.strip(),
            "stop": self.stop_line(lang, token),
        }
        for key in ("sms.invitation", "sms.invitation_short"):
            body = gsm.to_gsm(self.texts.render(key, lang, **params))
            if gsm.count_segments(body).segments <= MAX_SEGMENTS:
                return body
        raise SmsRefused("sms.too_long")

    @staticmethod
    def sender_prefill(display_name: str | None) -> str | None:
        """What "your first name as it will appear" starts with: the display name when it can
        travel by SMS as it is (GSM-7, no link), else nothing (the member types their own)."""
        return gsm.sms_first_name(display_name, NAME_LIMIT)

    # ------------------------------------------------------------ numbers and rules

    def normalize_number(self, raw: str) -> str:
        """E.164 for a valid mobile number of an allowed country; raises SmsRefused."""
        return normalize_mobile(raw, self.settings.sms_allowed_countries)

    async def _require_way_out(self) -> None:
        """Refuse an invitation that could not say how to stop; staff hear of it once a day."""
        if self.has_way_out():
            return
        day = self._budget_day(self.clock())
        if await self.db.write(sms_queue.once_per_day, "sms_no_way_out_alert", day):
            await self._alert_staff("sms.no_way_out_staff")
        log.warning("sms_invitation_without_way_out")
        raise SmsRefused("sms.no_way_out")

    async def check_invitation(self, member_id: int, raw_number: str) -> str:
        """Every rule that can be checked before the member confirms consent; returns E.164."""
        await self._require_way_out()
        number = self.normalize_number(raw_number)
        now = self.clock()
        day = self._budget_day(self._not_before(now, number))
        await self.db.read(
            sms_queue.check_rules,
            self._rules,
            member_id,
            self.hash(number),
            now,
            self.settings.tz,
            day,
        )
        return number

    async def invite(
        self,
        member_id: int,
        number: str,
        first_name: str | None,
        link: str,
        lang: str,
        sender_name: str | None = None,
    ) -> InvitationOutcome:
        """Queue an invitation the member confirmed (the person agreed to be contacted).

        ``sender_name``: the first name the member gave to appear in the SMS (else their
        display name).
        """
        await self._require_way_out()
        number = self.normalize_number(number)
        hashed = self.hash(number)
        lang = self._lang(lang)
        member = await self.db.read(get_participant, member_id)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        if self.settings.public_base_url:
            # The invitation's own landing page (the member's, whose Discord button carries the
            # invitation): a relative who joins through it counts as a joined invitation.
            link = self.invitation_url(token)
        body = self.render_invitation(
            sender_name or member.display_name, first_name, link, lang, token
        )
        segments = gsm.count_segments(body).segments
        now = self.clock()
        not_before = self._not_before(now, number)
        status: Literal["queued", "waiting"] = "queued" if not_before <= now else "waiting"
        day = self._budget_day(not_before)
        created, leaves = _iso(now), _iso(not_before)
        rules, tz, budget = self._rules, self.settings.tz, self.settings.sms_daily_budget

        def run(conn: sqlite3.Connection) -> tuple[int, int | None]:
            sms_queue.check_rules(conn, rules, member_id, hashed, now, tz, day, segments)
            invitation_id = sms_queue.queue_invitation(
                conn,
                member_id=member_id,
                number=number,
                hashed=hashed,
                first_name=first_name,
                token=token,
                status=status,
                lang=lang,
                body=body,
                segments=segments,
                created=created,
                leaves=leaves,
                day=day,
            )
            return invitation_id, sms_queue.budget_alert_due(conn, budget, day)

        invitation_id, alert = await self.db.write(run)
        log.info("sms_invitation_queued", invitation=invitation_id, status=status)
        if alert is not None:
            await self._alert_staff(
                "sms.budget_alert", used=alert, budget=self.settings.sms_daily_budget
            )
        self._wake.set()
        return InvitationOutcome(invitation_id, status, not_before)

    async def notify(self, number: str, text: str, purpose: str) -> bool:
        """Queue a message the programme sends on its own (``evaluation``: an action's
        evaluation): never to an opted-out number, within the daily budget (segments), and
        leaving outside quiet hours where the recipient lives. False when a rule refuses it, or
        when the sender is one-way (the person could not answer); nothing is queued then.
        """
        if self.one_way_sender:
            return False
        try:
            number = self.normalize_number(number)
        except SmsRefused:
            return False
        hashed = self.hash(number)
        body = gsm.fit(text, MAX_SEGMENTS)
        segments = gsm.count_segments(body).segments
        now = self.clock()
        not_before = self._not_before(now, number)
        day = self._budget_day(not_before)
        rules, tz = self._rules, self.settings.tz

        def run(conn: sqlite3.Connection) -> int:
            sms_queue.check_rules(conn, rules, None, hashed, now, tz, day, segments)
            return sms_queue.queue_message(
                conn,
                number=number,
                hashed=hashed,
                body=body,
                purpose=purpose,
                segments=segments,
                created=_iso(now),
                leaves=_iso(not_before),
                day=day,
            )

        try:
            outbound_id = await self.db.write(run)
        except SmsRefused as exc:
            log.info("sms_notice_refused", purpose=purpose, reason=exc.key)
            return False
        log.info("sms_notice_queued", outbound=outbound_id, purpose=purpose)
        self._wake.set()
        return True

    # ------------------------------------------------------------ the outbound queue

    async def dispatch_due(self) -> int:
        """Send every message that is due now; returns how many are still queued.

        Each message is checked again when it is claimed: quiet hours where its recipient lives
        (a backlog after a restart at night waits for the morning). A paused queue sends nothing.
        """
        async with self._lock:
            while self._paused is None:
                now = self.clock()
                claimed = await self.db.write(sms_queue.claim_next, _iso(now), self._hold(now))
                if claimed is None:
                    break
                await self._send(claimed)
            return await self.db.read(sms_queue.queued_count)

    async def _send(self, claimed: sms_queue.Claimed) -> None:
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
            await self.db.write(sms_queue.finish, claimed.id, "unknown", self._now_iso())
        else:
            await self.db.write(self._sent, claimed.id, sid)
            log.info("sms_sent", outbound=claimed.id, purpose=claimed.purpose, sid=sid)

    def _sent(self, conn: sqlite3.Connection, outbound_id: int, sid: str) -> None:
        segments = getattr(sid, "num_segments", None)
        sms_queue.finish(conn, outbound_id, "sent", self._now_iso(), str(sid), None, segments)
        price = getattr(sid, "price", None)
        if price is not None:
            sms_queue.record_status(
                conn,
                str(sid),
                "sent",
                None,
                self._now_iso(),
                price=price,
                price_unit=getattr(sid, "price_unit", None),
            )
        sms_queue.unpause(conn)

    async def _send_failed(self, claimed: sms_queue.Claimed, exc: SmsSendError) -> None:
        now = self.clock()
        if exc.ambiguous:
            log.warning("sms_send_unknown", outbound=claimed.id, reason=exc.reason, code=exc.code)
            await self.db.write(sms_queue.finish, claimed.id, "unknown", _iso(now), None, exc.code)
        elif exc.account:
            await self._pause(claimed, exc, now)
        elif exc.retryable and claimed.attempts < MAX_ATTEMPTS:
            delay = min(RETRY_BASE * 2 ** (claimed.attempts - 1), RETRY_MAX)
            if exc.retry_after:
                delay = max(delay, timedelta(seconds=min(exc.retry_after, RETRY_MAX.seconds)))
            later = now + delay
            if claimed.purpose == "invitation":
                later = self._not_before(later, claimed.to)
            log.warning(
                "sms_send_retry", outbound=claimed.id, code=exc.code, attempts=claimed.attempts
            )
            await self.db.write(sms_queue.requeue, claimed.id, _iso(later), _iso(now), exc.code)
        else:
            log.warning(
                "sms_send_failed",
                outbound=claimed.id,
                code=exc.code,
                opted_out=exc.opted_out,
                invalid_number=exc.invalid_number,
            )
            code = OPTED_OUT_ERROR if exc.opted_out else exc.code
            await self.db.write(
                sms_queue.finish,
                claimed.id,
                "failed",
                _iso(now),
                None,
                code,
                None,
                "invalid" if exc.invalid_number else None,
            )

    async def _pause(self, claimed: sms_queue.Claimed, exc: SmsSendError, now: datetime) -> None:
        """An account or sender error: the message goes back, nothing more leaves, staff know."""
        code = exc.code or str(exc.status or "?")
        self._paused = code

        def run(conn: sqlite3.Connection) -> bool:
            sms_queue.release(conn, claimed.id, code, _iso(now))
            return sms_queue.pause(conn, code, _iso(now))

        first = await self.db.write(run)
        log.error("sms_queue_paused", code=code, status=exc.status)
        if first:
            await self._alert_staff("sms.paused_staff", code=code)

    async def collect_prices(self) -> int:
        """Fetch, once, what Twilio bills for messages that reached a final status a while ago.

        Only with a transport that can fetch a message (Twilio); returns how many were fetched.
        """
        fetch = getattr(self.transport, "fetch", None)
        if fetch is None or self._paused is not None:
            return 0
        due = await self.db.read(
            sms_queue.prices_due, _iso(self.clock() - PRICE_DELAY), PRICE_BATCH
        )
        for outbound_id, sid in due:
            try:
                found = await fetch(sid)
            except SmsSendError as exc:
                log.warning("sms_price_fetch_failed", outbound=outbound_id, code=exc.code)
                if exc.retryable:
                    break  # Twilio is busy: the next round tries again
                found = None
            await self.db.write(
                sms_queue.store_price,
                outbound_id,
                self._now_iso(),
                getattr(found, "num_segments", None),
                getattr(found, "price", None),
                getattr(found, "price_unit", None),
            )
        return len(due)

    async def _next_due_in(self) -> float:
        if self._paused is not None:
            return WORKER_IDLE
        due = await self.db.read(sms_queue.next_due)
        if due is None:
            return WORKER_IDLE
        moment = datetime.fromisoformat(due)
        return max(0.0, min(WORKER_IDLE, (moment - self.clock()).total_seconds()))

    async def run_worker(self, stop: asyncio.Event) -> None:
        """Background loop: dispatch what is due, sleep until the next due message or a wake-up."""
        failures = 0
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.dispatch_due()
                await self.collect_prices()
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
        segments = gsm.count_segments(body).segments
        at, day = _iso(now), self._budget_day(now)
        rules, tz = self._rules, self.settings.tz

        def run(conn: sqlite3.Connection) -> int:
            sms_queue.check_rules(conn, rules, None, hashed, now, tz, day, segments)
            return sms_queue.insert_sending(conn, hashed, body, "test", segments, at, day)

        outbound_id = await self.db.write(run)
        try:
            sid = await self.transport.send(number, body, status_callback=self.status_callback_url)
        except SmsSendError as exc:
            status = "unknown" if exc.ambiguous else "failed"
            code = OPTED_OUT_ERROR if exc.opted_out else exc.code
            await self.db.write(sms_queue.finish, outbound_id, status, self._now_iso(), None, code)
            raise
        except BaseException:
            await self.db.write(sms_queue.finish, outbound_id, "unknown", self._now_iso())
            raise
        await self.db.write(self._sent, outbound_id, sid)
        return str(sid)

    # ------------------------------------------------------------ statuses and opt-out links

    async def record_status(
        self,
        message_sid: str,
        status: str,
        error_code: str | None,
        *,
        to: str | None = None,
        num_segments: int | None = None,
        price: str | None = None,
        price_unit: str | None = None,
    ) -> None:
        """A delivery status from the provider; out-of-order callbacks never move a message back.

        ``to`` (the recipient, E.164) lets a message whose fate was unknown be found again by
        its number's keyed hash within ``RECONCILE_WINDOW``: it then returns to the funnel.
        """
        status = status.strip().lower()
        code = (error_code or "").strip() or None
        now = self.clock()
        to_hash = self.hash(canonical(to)) if to and to.strip() else None
        found = await self.db.write(
            sms_queue.record_status,
            message_sid,
            status,
            code,
            _iso(now),
            to_hash=to_hash,
            window_start=_iso(now - RECONCILE_WINDOW),
            num_segments=num_segments,
            price=price,
            price_unit=price_unit,
        )
        log.info("sms_status", sid=message_sid, status=status, error=code, found=found)

    async def opt_out_token(self, token: str) -> bool:
        """The opt-out link of an invitation (``GET /stop/TOKEN``); False for an unknown token."""
        return await self.db.write(sms_queue.opt_out_token, token, self._now_iso())

    # ------------------------------------------------------------ figures

    async def figures(self, low: str | None, high: str | None) -> dict[str, Any]:
        """Outcomes and segments of the messages that left in [low, high) (``/stats``)."""
        return await self.db.read(sms_queue.figures, low, high, self.settings.tz)

    # ------------------------------------------------------------ replies to inbound SMS

    async def account_reply(self, number: str, text: str) -> str | None:
        """A reply to an inbound SMS (sent in the TwiML response, or printed by the console):
        fitted to GSM-7 and two segments, and counted in the daily budget (in segments) as an
        outbound row (``purpose = 'reply'``, already ``sent``) like every other SMS. None past
        the budget: no reply then, and the staff hear it once that day.
        """
        body = gsm.fit(text, MAX_SEGMENTS)
        segments = gsm.count_segments(body).segments
        hashed = self.hash(number)
        now = self.clock()
        at, day, budget = _iso(now), self._budget_day(now), self.settings.sms_daily_budget
        allowed, first_refusal, alert = await self.db.write(
            sms_queue.record_reply, hashed, body, segments, at, day, budget
        )
        if alert is not None:
            await self._alert_staff("sms.budget_alert", used=alert, budget=budget)
        if not allowed:
            log.warning("sms_reply_over_budget")
            if first_refusal:
                await self._alert_staff("sms.budget_alert", used=budget, budget=budget)
            return None
        return body
