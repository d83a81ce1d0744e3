"""Rules that hold when a message leaves (issue 17): quiet hours where the recipient lives, checked
again at the claim; provider failures through the fake Twilio API; reconciliation by a signed
status callback; a way out for one-way senders; segments and figures. Every clock is a test's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from sms_support import (
    LINK,
    MOBILE,
    OTHER_MOBILE,
    Clock,
    RecordingNotifier,
    RecordingTransport,
    add_member,
    make_service,
    make_settings,
    paris,
    web_app_for,
)
from twilio.request_validator import RequestValidator

from bot.sms.errors import SmsRefused, SmsSendError
from bot.sms.quiet import recipient_calendar
from bot.sms.service import SmsService
from bot.sms.twilio_transport import TwilioTransport
from bot.texts import Texts
from referrals import sms_queue
from referrals.store import Database

PUBLIC = "https://relais.example.fr"
GUADELOUPE = ZoneInfo("America/Guadeloupe")
TAHITI = ZoneInfo("Pacific/Tahiti")
GP_MOBILE = "+590690001122"
PF_MOBILE = "+68987712345"
TIMEOUT = 30.0  # never reached: the fake answers every request


def at(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)  # type: ignore[misc]


async def refused(coro: object) -> str:
    with pytest.raises(SmsRefused) as info:
        await coro  # type: ignore[misc]
    return info.value.key


async def statuses(db: Database) -> list[tuple[str, str]]:
    rows = await db.fetchall(
        "SELECT o.status, i.status FROM outbound_sms o JOIN invitations i"
        " ON i.id = o.invitation_id ORDER BY o.id"
    )
    return [(r[0], r[1]) for r in rows]


# ---------------------------------------------------------------- quiet hours where they live


async def test_a_backlog_found_at_a_restart_in_quiet_hours_waits_for_the_morning(
    db: Database,
) -> None:
    clock = Clock(paris(2026, 3, 9, 12, 0))
    first = await make_service(db, clock=clock)
    member = await add_member(db)
    for number in (MOBILE, OTHER_MOBILE):
        outcome = await first.invite(member, number, None, LINK, "fr")
        assert outcome.status == "queued"
    # The bot was down all afternoon; it comes back at 22:30 with the backlog overdue.
    clock.set(paris(2026, 3, 9, 22, 30))
    transport = RecordingTransport()
    restarted = await make_service(db, clock=clock, transport=transport)
    assert await restarted.dispatch_due() == 2
    assert transport.sent == []
    rows = await db.fetchall("SELECT not_before, budget_day FROM outbound_sms")
    leaves = paris(2026, 3, 10, 8, 0)
    assert {(datetime.fromisoformat(r[0]), r[1]) for r in rows} == {(leaves, "2026-03-10")}
    assert await statuses(db) == [("queued", "waiting")] * 2
    clock.set(leaves)
    assert await restarted.dispatch_due() == 0
    assert [to for to, _body, _cb in transport.sent] == [MOBILE, OTHER_MOBILE]


async def test_a_message_dispatched_on_a_sunday_waits_for_monday(db: Database) -> None:
    clock = Clock(paris(2026, 3, 9, 23, 0))
    transport = RecordingTransport()
    sms = await make_service(db, clock=clock, transport=transport)
    outcome = await sms.invite(await add_member(db), MOBILE, None, LINK, "fr")
    assert outcome.not_before == paris(2026, 3, 10, 8, 0)
    clock.set(paris(2026, 3, 15, 10, 0))  # the worker only looks again on Sunday
    assert await sms.dispatch_due() == 1
    assert transport.sent == []
    row = await db.fetchone("SELECT not_before FROM outbound_sms")
    assert datetime.fromisoformat(row[0]) == paris(2026, 3, 16, 8, 0)


async def test_guadeloupe_gets_its_invitation_at_eight_local_time(db: Database) -> None:
    clock = Clock(paris(2026, 3, 9, 8, 0))  # 03:00 in Guadeloupe
    transport = RecordingTransport()
    sms = await make_service(db, clock=clock, transport=transport)
    member = await add_member(db)
    paris_outcome = await sms.invite(member, MOBILE, None, LINK, "fr")
    gp_outcome = await sms.invite(member, GP_MOBILE, None, LINK, "fr")
    assert paris_outcome.status == "queued"
    assert gp_outcome.status == "waiting"
    assert gp_outcome.not_before == at(GUADELOUPE, 2026, 3, 9, 8, 0)
    await sms.dispatch_due()
    assert [to for to, _b, _c in transport.sent] == [MOBILE]
    clock.set(at(GUADELOUPE, 2026, 3, 9, 7, 59))
    await sms.dispatch_due()
    assert len(transport.sent) == 1
    clock.set(at(GUADELOUPE, 2026, 3, 9, 8, 0))
    await sms.dispatch_due()
    assert [to for to, _b, _c in transport.sent] == [MOBILE, GP_MOBILE]


async def test_polynesia_is_not_woken_the_evening_before(db: Database) -> None:
    clock = Clock(paris(2026, 3, 9, 8, 0))  # Sunday 21:00 in Tahiti
    sms = await make_service(db, clock=clock)
    outcome = await sms.invite(await add_member(db), PF_MOBILE, None, LINK, "fr")
    assert outcome.not_before == at(TAHITI, 2026, 3, 9, 8, 0)


@pytest.mark.parametrize(
    ("number", "zone", "now", "leaves"),
    [
        # 14 July everywhere in France, overseas included.
        (MOBILE, None, (2026, 7, 14, 10, 0), (2026, 7, 15, 8, 0)),
        (GP_MOBILE, GUADELOUPE, (2026, 7, 14, 10, 0), (2026, 7, 15, 8, 0)),
        # Guadeloupe's abolition of slavery (27 May): a working day in Paris.
        (GP_MOBILE, GUADELOUPE, (2026, 5, 27, 10, 0), (2026, 5, 28, 8, 0)),
        (MOBILE, GUADELOUPE, (2026, 5, 27, 10, 0), (2026, 5, 27, 10, 0)),
        # Victor Schoelcher Day (21 July) in Guadeloupe, not in Paris.
        (GP_MOBILE, GUADELOUPE, (2026, 7, 21, 9, 0), (2026, 7, 22, 8, 0)),
    ],
)
async def test_holidays_are_those_of_the_recipients_region(
    db: Database,
    number: str,
    zone: ZoneInfo | None,
    now: tuple[int, ...],
    leaves: tuple[int, ...],
) -> None:
    where = zone or ZoneInfo("Europe/Paris")
    clock = Clock(at(where, *now))
    sms = await make_service(db, clock=clock)
    outcome = await sms.invite(await add_member(db), number, None, LINK, "fr")
    expected = at(GUADELOUPE if number == GP_MOBILE else ZoneInfo("Europe/Paris"), *leaves)
    if leaves == now:
        expected = at(where, *now)
    assert outcome.not_before == expected


@pytest.mark.parametrize(
    ("department", "day", "leaves"),
    [
        ("57", (2026, 4, 3), (2026, 4, 4)),  # Good Friday in Moselle
        ("67", (2026, 4, 3), (2026, 4, 4)),  # and in Alsace
        ("44", (2026, 4, 3), None),  # Loire-Atlantique: a working day
        (None, (2026, 4, 3), None),
        ("68", (2027, 12, 27), None),  # an ordinary Monday
        ("68", (2029, 12, 26), (2029, 12, 27)),  # Saint Stephen's Day, a Wednesday
    ],
)
async def test_alsace_moselle_gets_its_two_extra_days(
    db: Database,
    department: str | None,
    day: tuple[int, int, int],
    leaves: tuple[int, int, int] | None,
) -> None:
    clock = Clock(paris(*day, 10, 0))
    env = {"RELAIS_DEPARTMENT": department} if department else {}
    sms = await make_service(db, clock=clock, **env)
    outcome = await sms.invite(await add_member(db), MOBILE, None, LINK, "fr")
    assert outcome.not_before == (paris(*leaves, 8, 0) if leaves else clock())


def test_calendars_of_every_french_region() -> None:
    cases = {
        "+590690001122": "America/Guadeloupe",
        "+596696001122": "America/Martinique",
        "+594694001122": "America/Cayenne",
        "+262692001122": "Indian/Reunion",
        "+262639001122": "Indian/Mayotte",
        "+508551234": "America/Miquelon",
        "+681821234": "Pacific/Wallis",
        "+68987712345": "Pacific/Tahiti",
        "+687751234": "Pacific/Noumea",
        MOBILE: "Europe/Paris",
    }
    for number, zone in cases.items():
        assert recipient_calendar(number, "Europe/Paris").tz == zone, number
    assert recipient_calendar(MOBILE, "Europe/Paris", "57").subdivision == "57"
    # A Belgian number: Belgian holidays (21 July, national day), its own zone.
    belgian = recipient_calendar("+32470123456", "Europe/Paris")
    assert belgian.tz == "Europe/Brussels"
    assert belgian.is_holiday(datetime(2026, 7, 21).date())


def test_a_bad_department_is_a_clear_configuration_error() -> None:
    from referrals.errors import ConfigError

    for bad in ("100", "20", "abc", "6AE"):
        with pytest.raises(ConfigError):
            make_settings(RELAIS_DEPARTMENT=bad)
    assert make_settings(RELAIS_DEPARTMENT="2a").department == "2A"
    assert make_settings(RELAIS_DEPARTMENT="971").department == "971"


# ---------------------------------------------------------------- provider failures


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    server = await FakeTwilio().start()
    try:
        yield server
    finally:
        await server.close()


def twilio_env(fake: FakeTwilio, **extra: str) -> dict[str, str]:
    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": "+33700000000",
        "TWILIO_API_URL": fake.base_url,
        "PUBLIC_BASE_URL": PUBLIC,
        "SMS_INVITES_PER_MEMBER_PER_DAY": "9",
    }
    env.update(extra)
    return env


async def twilio_service(
    db: Database, fake: FakeTwilio, clock: Clock, notifier: RecordingNotifier, **extra: str
) -> tuple[SmsService, TwilioTransport]:
    env = twilio_env(fake, **extra)
    transport = TwilioTransport(make_settings(**env), timeout=TIMEOUT, backoff=0.0)
    sms = await make_service(db, clock=clock, transport=transport, notifier=notifier, **env)
    return sms, transport


async def test_wrong_credentials_pause_the_queue_and_keep_every_message(
    fake: FakeTwilio, db: Database
) -> None:
    clock, notifier = Clock(), RecordingNotifier()
    sms, transport = await twilio_service(
        db, fake, clock, notifier, TWILIO_AUTH_TOKEN="wrong-token"
    )
    try:
        member = await add_member(db)
        await sms.invite(member, MOBILE, None, LINK, "fr")
        await sms.invite(member, OTHER_MOBILE, None, LINK, "fr")
        assert await sms.dispatch_due() == 2
        assert len(fake.requests) == 1  # the first refusal stops the queue
        assert sms.paused == "20003"
        assert await statuses(db) == [("queued", "queued")] * 2
        [alert] = notifier.posts
        assert alert.to.id == "staff" and "20003" in alert.text
        assert "TWILIO_AUTH_TOKEN" in alert.text
        clock.advance(hours=1)
        assert await sms.dispatch_due() == 2
        assert len(fake.requests) == 1
    finally:
        await transport.close()
    # A restart with the same wrong token: one more try, no second alert.
    sms, transport = await twilio_service(
        db, fake, clock, notifier, TWILIO_AUTH_TOKEN="wrong-token"
    )
    try:
        await sms.dispatch_due()
        assert len(fake.requests) == 2 and len(notifier.posts) == 1
    finally:
        await transport.close()
    # Fixed and restarted: everything leaves, nothing was lost.
    sms, transport = await twilio_service(db, fake, clock, notifier)
    try:
        assert await sms.dispatch_due() == 0
        assert [m["To"] for m in fake.messages] == [MOBILE, OTHER_MOBILE]
        assert await statuses(db) == [("sent", "sent")] * 2
        assert sms.paused is None
        assert await db.read(sms_queue.paused_by) is None
        attempts = await db.fetchall("SELECT attempts FROM outbound_sms")
        assert [r[0] for r in attempts] == [1, 1]
    finally:
        await transport.close()


@pytest.mark.parametrize(
    ("status", "code"), [(401, 20005), (400, 21606), (400, 21608), (403, 20003)]
)
async def test_account_and_sender_errors_pause_the_queue(
    fake: FakeTwilio, db: Database, status: int, code: int
) -> None:
    clock, notifier = Clock(), RecordingNotifier()
    sms, transport = await twilio_service(db, fake, clock, notifier)
    try:
        await sms.invite(await add_member(db), MOBILE, None, LINK, "fr")
        fake.then(status, code=code, message="Refused")
        assert await sms.dispatch_due() == 1
        assert sms.paused == str(code)
        assert await statuses(db) == [("queued", "queued")]
        [alert] = notifier.posts
        assert str(code) in alert.text
    finally:
        await transport.close()


@pytest.mark.parametrize("code", [21211, 21614])
async def test_an_invalid_number_is_marked_invalid_and_the_queue_goes_on(
    fake: FakeTwilio, db: Database, code: int
) -> None:
    clock, notifier = Clock(), RecordingNotifier()
    sms, transport = await twilio_service(db, fake, clock, notifier)
    try:
        member = await add_member(db)
        await sms.invite(member, MOBILE, None, LINK, "fr")
        await sms.invite(member, OTHER_MOBILE, None, LINK, "fr")
        fake.then(400, code=code, message="Invalid 'To' Phone Number")
        assert await sms.dispatch_due() == 0
        assert await statuses(db) == [("failed", "invalid"), ("sent", "sent")]
        row = await db.fetchone("SELECT error_code, to_phone FROM outbound_sms WHERE id = 1")
        assert (row[0], row[1]) == (str(code), None)
        assert notifier.posts == [] and sms.paused is None
    finally:
        await transport.close()


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_server_and_gateway_errors_are_unknown_and_never_resent(
    fake: FakeTwilio, db: Database, status: int
) -> None:
    clock, notifier = Clock(), RecordingNotifier()
    sms, transport = await twilio_service(db, fake, clock, notifier)
    try:
        await sms.invite(await add_member(db), MOBILE, None, LINK, "fr")
        fake.then(status, code=20500, message="Gateway")
        assert await sms.dispatch_due() == 0
        assert await statuses(db) == [("unknown", "unknown")]
        clock.advance(days=1)
        await sms.dispatch_due()
        assert len(fake.requests) == 1
    finally:
        await transport.close()


async def test_twilio_segments_are_stored(fake: FakeTwilio, db: Database) -> None:
    clock, notifier = Clock(), RecordingNotifier()
    sms, transport = await twilio_service(db, fake, clock, notifier)
    try:
        await sms.invite(await add_member(db), MOBILE, "Sarah", LINK, "fr")
        await sms.dispatch_due()
        [message] = fake.messages
        row = await db.fetchone("SELECT segments, num_segments FROM outbound_sms")
        assert row[1] == FakeTwilio.segments(message["Body"]) == 2
        assert row[0] == 2
    finally:
        await transport.close()


@pytest.mark.parametrize("price", ["-0.07600", None])
async def test_the_price_is_fetched_once_after_the_final_status(
    fake: FakeTwilio, db: Database, price: str | None
) -> None:
    clock, notifier = Clock(), RecordingNotifier()
    sms, transport = await twilio_service(db, fake, clock, notifier)
    fake.price = price
    try:
        await sms.invite(await add_member(db), MOBILE, None, LINK, "fr")
        await sms.dispatch_due()
        sid = (await db.fetchone("SELECT provider_sid FROM outbound_sms"))[0]
        await sms.record_status(sid, "delivered", None)
        assert await sms.collect_prices() == 0  # Twilio has not priced it yet
        clock.advance(hours=2)
        assert await sms.collect_prices() == 1
        row = await db.fetchone("SELECT price, price_unit, price_checked_at FROM outbound_sms")
        assert (row[0], row[1]) == (price, "EUR") and row[2]
        assert await sms.collect_prices() == 0  # once
        assert [r.path.rsplit("/", 1)[-1] for r in fake.requests] == [
            "Messages.json",
            f"{sid}.json",
        ]
    finally:
        await transport.close()


# ---------------------------------------------------------------- status callbacks


def status_form(sid: str, status: str, to: str = MOBILE, **extra: str) -> dict[str, str]:
    form = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": "+33700000000",
        "To": to,
        "MessageStatus": status,
        "SmsStatus": status,
        "ApiVersion": "2010-04-01",
    }
    form.update(extra)
    return form


async def post_status(client: TestClient[Any, Any], form: dict[str, str]) -> int:
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + "/twilio/status", form)
    response = await client.post(
        "/twilio/status",
        data=urlencode(form),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
    )
    return response.status


async def test_a_status_callback_reconciles_an_unknown_message(
    fake: FakeTwilio, db: Database
) -> None:
    clock, notifier = Clock(), RecordingNotifier()
    sms, transport = await twilio_service(db, fake, clock, notifier)
    try:
        member = await add_member(db)
        await sms.invite(member, MOBILE, None, LINK, "fr")
        await sms.invite(member, OTHER_MOBILE, None, LINK, "fr")
        fake.then(504, code=20504, message="Gateway Timeout")
        fake.then(502, code=20502, message="Bad Gateway")
        await sms.dispatch_due()
        assert await statuses(db) == [("unknown", "unknown")] * 2
        app = web_app_for(sms)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            clock.advance(minutes=2)
            # The gateway had passed the first one on: Twilio's callback names a SID we never saw.
            sid = "SM" + "b" * 32
            form = status_form(sid, "sent", NumSegments="2")
            assert await post_status(client, form) == 204
            assert await statuses(db) == [("sent", "sent"), ("unknown", "unknown")]
            form = status_form(sid, "delivered", Price="-0.07600", PriceUnit="EUR")
            assert await post_status(client, form) == 204
            row = await db.fetchone(
                "SELECT provider_sid, num_segments, price, price_unit FROM outbound_sms"
                " WHERE id = 1"
            )
            assert tuple(row) == (sid, 2, "-0.07600", "EUR")
            assert await statuses(db) == [("delivered", "delivered"), ("unknown", "unknown")]
            sent_at = await db.fetchone("SELECT sent_at FROM invitations WHERE id = 1")
            assert sent_at[0] is not None
            # A callback for another number does not touch the second message...
            other = status_form("SM" + "c" * 32, "delivered", to="+33611111111")
            assert await post_status(client, other) == 204
            # ... nor one that comes after the window.
            clock.advance(hours=7)
            late = status_form("SM" + "d" * 32, "delivered", to=OTHER_MOBILE)
            assert await post_status(client, late) == 204
            assert await statuses(db) == [("delivered", "delivered"), ("unknown", "unknown")]
            # Malformed figures are ignored, never a 500.
            bad = status_form(sid, "delivered", NumSegments="lots", Price="free")
            assert await post_status(client, bad) == 204
        assert len(fake.requests) == 2
    finally:
        await transport.close()


# ---------------------------------------------------------------- a way out for every invitation


@pytest.mark.parametrize(
    "sender",
    [{"TWILIO_FROM_NUMBER": "RELAIS"}, {"TWILIO_MESSAGING_SERVICE_SID": "MG" + "0" * 32}],
)
async def test_a_one_way_sender_without_a_way_out_refuses_and_alerts_staff_once(
    db: Database, sender: dict[str, str]
) -> None:
    notifier, transport = RecordingNotifier(), RecordingTransport()
    env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, **sender}
    sms = await make_service(db, notifier=notifier, transport=transport, **env)
    member = await add_member(db)
    assert await refused(sms.check_invitation(member, MOBILE)) == "sms.no_way_out"
    assert await refused(sms.invite(member, MOBILE, None, LINK, "fr")) == "sms.no_way_out"
    [alert] = notifier.posts
    assert "SMS_STOP_TEXT" in alert.text and "PUBLIC_BASE_URL" in alert.text
    assert (await db.fetchone("SELECT COUNT(*) FROM outbound_sms"))[0] == 0
    assert transport.sent == []
    texts = Texts(default_lang="fr")
    for lang in ("fr", "en"):
        text = texts.render("sms.no_way_out", lang)
        assert text and "STOP" not in text


@pytest.mark.parametrize(
    ("extra", "ending"),
    [
        ({"SMS_STOP_TEXT": "STOP au 36180"}, "STOP au 36180"),
        ({"PUBLIC_BASE_URL": PUBLIC}, f"{PUBLIC}/stop/"),
    ],
)
async def test_a_one_way_sender_with_a_way_out_sends(
    db: Database, extra: dict[str, str], ending: str
) -> None:
    transport = RecordingTransport()
    env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    sms = await make_service(db, transport=transport, TWILIO_FROM_NUMBER="RELAIS", **env, **extra)
    await sms.invite(await add_member(db), MOBILE, None, LINK, "fr")
    await sms.dispatch_due()
    [(_to, body, _cb)] = transport.sent
    assert ending in body.splitlines()[-1]
    assert "STOP pour" not in body


# ---------------------------------------------------------------- figures


async def test_figures_per_campaign_and_week(db: Database) -> None:
    clock = Clock(paris(2026, 3, 9, 12, 0))
    transport = RecordingTransport()
    sms = await make_service(
        db, clock=clock, transport=transport, SMS_INVITES_PER_MEMBER_PER_DAY="9"
    )
    member = await add_member(db)
    await db.write(
        lambda conn: (
            conn.execute(
                "INSERT INTO campaigns (code, channel, created_at) VALUES ('LYCEE', 'lycee', ?)",
                (clock().isoformat(),),
            ),
            conn.execute("UPDATE participants SET campaign_id = 1 WHERE id = ?", (member,)),
        )
    )
    numbers = ["+33600000001", "+33600000002", "+33600000003", "+33600000004"]
    for number in numbers:
        await sms.invite(member, number, None, LINK, "fr")
    await sms.dispatch_due()
    sids = [r[0] for r in await db.fetchall("SELECT provider_sid FROM outbound_sms ORDER BY id")]
    await sms.record_status(sids[0], "delivered", None, num_segments=2)
    await sms.record_status(sids[1], "undelivered", "30007")
    await sms.record_status(sids[2], "failed", "30008")
    clock.advance(days=7)
    await sms.invite(member, "+33600000005", None, LINK, "fr")
    transport.fail_with.append(SmsSendError("timeout", ambiguous=True))
    await sms.dispatch_due()
    figures = await sms.figures(None, None)
    total = figures["total"]
    assert (total["delivered"], total["filtered"], total["failed"], total["unknown"]) == (
        1,
        1,
        1,
        1,
    )
    assert total["pending"] == 1 and total["segments"] == 10
    [campaign] = figures["campaigns"]
    assert campaign["label"] == "LYCEE" and campaign["segments"] == 10
    assert [w["label"] for w in figures["weeks"]] == ["2026-W11", "2026-W12"]
    assert [w["unknown"] for w in figures["weeks"]] == [0, 1]
    texts = Texts(default_lang="fr")
    french = texts.render("sms.stats", "fr", f=figures)
    assert "1 filtré par l'opérateur (30007)" in french and "10 segments" in french
    assert "Campagne LYCEE" in french and "Semaine 2026-W12" in french
    english = texts.render("sms.stats", "en", f=figures)
    assert "1 filtered by carriers (30007)" in english and "Week 2026-W11" in english
    # A period keeps only what left in it.
    low = paris(2026, 3, 16, 0, 0).isoformat()
    assert (await sms.figures(low, None))["count"] == 1


# ---------------------------------------------------------------- Twilio's own opt-out


def inbound_form(body: str, sid: str, opt_out_type: str | None = None) -> dict[str, str]:
    form = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": MOBILE,
        "To": "+33700000000",
        "Body": body,
        "NumMedia": "0",
    }
    if opt_out_type:
        form["OptOutType"] = opt_out_type
    return form


async def post_inbound(client: TestClient[Any, Any], form: dict[str, str]) -> tuple[int, str]:
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + "/twilio/sms", form)
    response = await client.post(
        "/twilio/sms",
        data=urlencode(form),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
    )
    return response.status, await response.text()


async def test_twilio_opt_out_types_are_mirrored_without_a_second_reply(db: Database) -> None:
    sms = await make_service(
        db,
        PUBLIC_BASE_URL=PUBLIC,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_FROM_NUMBER="+33700000000",
    )
    opted = "SELECT COUNT(*) FROM opt_outs WHERE phone_hash = ?"
    async with TestClient(TestServer(web_app_for(sms), host="127.0.0.1")) as client:
        # Twilio answered "UNSUBSCRIBE" itself (in English): Relais records it, says nothing.
        status, twiml = await post_inbound(
            client, inbound_form("UNSUBSCRIBE", "SM" + "1" * 32, "STOP")
        )
        assert status == 200 and "<Message" not in twiml
        assert (await db.fetchone(opted, (sms.hash(MOBILE),)))[0] == 1
        assert await refused(sms.check_invitation(await add_member(db), MOBILE)) == "sms.opted_out"
        # "YES" re-subscribes at Twilio: in Relais too, still without a second reply.
        status, twiml = await post_inbound(client, inbound_form("YES", "SM" + "2" * 32, "START"))
        assert status == 200 and "<Message" not in twiml
        assert (await db.fetchone(opted, (sms.hash(MOBILE),)))[0] == 0
        # HELP was answered by Twilio: nothing more.
        status, twiml = await post_inbound(client, inbound_form("INFO", "SM" + "3" * 32, "HELP"))
        assert status == 200 and "<Message" not in twiml
        # Twilio's answers are Twilio's: none of them counts in SMS_DAILY_BUDGET.
        assert await reply_segments(db) == 0
        # Relais's own French keywords keep their French answer when Twilio did not answer.
        status, twiml = await post_inbound(client, inbound_form("ARRET", "SM" + "4" * 32))
        assert status == 200 and "<Message>" in twiml
        assert (await db.fetchone(opted, (sms.hash(MOBILE),)))[0] == 1
        assert await reply_segments(db) == 1  # our own reply counts


async def reply_segments(db: Database) -> int:
    """Segments of the replies sent in TwiML responses, as counted in the daily budget."""
    row = await db.fetchone(
        "SELECT COALESCE(SUM(segments), 0) FROM outbound_sms WHERE purpose = 'reply'"
    )
    assert row is not None
    return int(row[0])
