"""Rules before an invitation leaves (issue 5, item 2), with an injectable clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sms_support import (
    LINK,
    MOBILE,
    OTHER_MOBILE,
    Clock,
    RecordingNotifier,
    RecordingTransport,
    add_member,
    inbound,
    make_service,
    open_db,
    paris,
)
from waiting import PATIENCE, eventually

from bot.ports import Person
from bot.sms.service import SmsRefused, SmsSendError
from referrals.store import Database


async def refused(coro: object) -> str:
    with pytest.raises(SmsRefused) as info:
        await coro  # type: ignore[misc]
    return info.value.key


async def test_invitation_leaves_at_once_outside_quiet_hours(db: Database) -> None:
    transport = RecordingTransport()
    sms = await make_service(db, transport=transport, PUBLIC_BASE_URL="https://relais.example.fr")
    member = await add_member(db, "Kevin")
    number = await sms.check_invitation(member, "06 12 34 56 78")
    assert number == MOBILE
    outcome = await sms.invite(member, number, "Sarah", LINK, "fr")
    assert outcome.status == "queued"
    assert outcome.not_before == sms.clock()
    assert await sms.dispatch_due() == 0
    [(to, body, callback)] = transport.sent
    assert to == MOBILE
    row = await db.fetchone("SELECT status, sent_at, phone, token FROM invitations")
    # With a public address, the link is the invitation's own (its landing page counts a join).
    assert "Kevin" in body and "Sarah" in body and LINK not in body
    assert f"https://relais.example.fr/i/{row['token']} " in body.replace("\n", " ")
    assert callback == "https://relais.example.fr/twilio/status"
    assert row["status"] == "sent" and row["sent_at"] and row["phone"] is None
    out = await db.fetchone("SELECT status, to_phone, provider_sid FROM outbound_sms")
    assert out["status"] == "sent" and out["to_phone"] is None and out["provider_sid"]


@pytest.mark.parametrize(
    ("now", "leaves"),
    [
        (paris(2026, 3, 9, 21, 30), paris(2026, 3, 10, 8, 0)),  # evening, window across midnight
        (paris(2026, 3, 10, 6, 15), paris(2026, 3, 10, 8, 0)),  # early morning
        (paris(2026, 3, 14, 22, 0), paris(2026, 3, 16, 8, 0)),  # Saturday night, then Sunday
        (paris(2026, 3, 15, 11, 0), paris(2026, 3, 16, 8, 0)),  # Sunday
        (paris(2026, 7, 14, 10, 0), paris(2026, 7, 15, 8, 0)),  # Bastille Day
        (paris(2026, 4, 30, 20, 0), paris(2026, 5, 2, 8, 0)),  # 1 May, a Friday
        (paris(2026, 12, 24, 19, 59), paris(2026, 12, 24, 19, 59)),  # still allowed
    ],
)
async def test_quiet_hours_make_the_invitation_wait(db: Database, now, leaves) -> None:  # type: ignore[no-untyped-def]
    clock = Clock(now)
    transport = RecordingTransport()
    sms = await make_service(db, clock=clock, transport=transport)
    member = await add_member(db)
    outcome = await sms.invite(member, MOBILE, None, LINK, "fr")
    assert outcome.not_before == leaves
    assert outcome.status == ("queued" if leaves == now else "waiting")
    if outcome.status == "waiting":
        assert await sms.dispatch_due() == 1
        assert transport.sent == []
        clock.set(leaves - timedelta(seconds=1))
        await sms.dispatch_due()
        assert transport.sent == []
        clock.set(leaves)
    assert await sms.dispatch_due() == 0
    assert len(transport.sent) == 1


async def test_empty_quiet_hours_never_wait(db: Database) -> None:
    sms = await make_service(db, clock=Clock(paris(2026, 3, 15, 3, 0)), SMS_QUIET_HOURS="")
    outcome = await sms.invite(await add_member(db), MOBILE, None, LINK, "fr")
    assert outcome.status == "queued"


async def test_quiet_hours_use_relais_tz(db: Database) -> None:
    # 21:00 in Paris is 16:00 in Martinique: allowed there.
    clock = Clock(paris(2026, 3, 9, 21, 0))
    sms = await make_service(db, clock=clock, RELAIS_TZ="America/Martinique")
    outcome = await sms.invite(await add_member(db), MOBILE, None, LINK, "fr")
    assert outcome.status == "queued"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("n'importe quoi", "sms.invalid_number"),
        ("0612", "sms.invalid_number"),
        ("", "sms.invalid_number"),
        ("01 23 45 67 89", "sms.not_mobile"),
        ("+41 79 123 45 67", "sms.country_not_allowed"),
        ("+1 415 555 0123", "sms.country_not_allowed"),
        ("9" * 200, "sms.invalid_number"),
    ],
)
async def test_only_valid_mobiles_of_allowed_countries(db: Database, raw: str, key: str) -> None:
    sms = await make_service(db)
    member = await add_member(db)
    assert await refused(sms.check_invitation(member, raw)) == key
    assert await refused(sms.invite(member, raw, None, LINK, "fr")) == key


async def test_overseas_numbers_are_allowed(db: Database) -> None:
    sms = await make_service(db)
    member = await add_member(db)
    assert await sms.check_invitation(member, "0692 12 34 56") == "+262692123456"
    assert await sms.check_invitation(member, "+590 690 12 34 56") == "+590690123456"
    only_fr = await make_service(db, SMS_ALLOWED_COUNTRIES="FR")
    assert await refused(only_fr.check_invitation(member, "+262 692 12 34 56")) == (
        "sms.country_not_allowed"
    )


async def test_per_member_daily_limit(db: Database) -> None:
    clock = Clock()
    sms = await make_service(db, clock=clock, SMS_INVITES_PER_MEMBER_PER_DAY="2")
    member, other = await add_member(db, "A"), await add_member(db, "B")
    await sms.invite(member, "+33600000001", None, LINK, "fr")
    await sms.invite(member, "+33600000002", None, LINK, "fr")
    assert await refused(sms.check_invitation(member, "+33600000003")) == "sms.member_limit"
    assert await refused(sms.invite(member, "+33600000003", None, LINK, "fr")) == (
        "sms.member_limit"
    )
    await sms.check_invitation(other, "+33600000003")  # another member is not limited
    clock.set(paris(2026, 3, 10, 0, 1))  # the next local day
    await sms.invite(member, "+33600000003", None, LINK, "fr")


async def test_reinvite_window_by_number_hash(db: Database) -> None:
    clock = Clock()
    sms = await make_service(db, clock=clock, SMS_REINVITE_DAYS="180")
    first, second = await add_member(db, "A"), await add_member(db, "B")
    await sms.invite(first, MOBILE, None, LINK, "fr")
    clock.advance(days=179)
    assert await refused(sms.check_invitation(second, "06 12 34 56 78")) == ("sms.recently_invited")
    clock.advance(days=2)
    assert await sms.check_invitation(second, MOBILE) == MOBILE
    rows = await db.fetchall("SELECT phone, phone_hash FROM invitations")
    assert all(r["phone"] is None and r["phone_hash"] != MOBILE for r in rows)


async def test_invite_rechecks_rules_in_its_transaction(db: Database) -> None:
    sms = await make_service(db)
    first, second = await add_member(db, "A"), await add_member(db, "B")
    number = await sms.check_invitation(first, MOBILE)
    assert await sms.check_invitation(second, MOBILE) == number
    await sms.invite(second, number, None, LINK, "fr")  # the other member confirmed first
    assert await refused(sms.invite(first, number, None, LINK, "fr")) == "sms.recently_invited"
    assert (await db.fetchone("SELECT COUNT(*) FROM outbound_sms"))[0] == 1


async def test_daily_budget_in_segments_with_one_staff_alert_at_80_percent(db: Database) -> None:
    notifier = RecordingNotifier()
    clock = Clock()
    sms = await make_service(
        db,
        clock=clock,
        notifier=notifier,
        SMS_DAILY_BUDGET="10",
        SMS_INVITES_PER_MEMBER_PER_DAY="9",
    )
    member = await add_member(db)
    for i in range(3):
        await sms.invite(member, f"+3360000000{i}", None, LINK, "fr")
    # A real invitation takes two segments: the budget counts what the bill counts.
    rows = await db.fetchall("SELECT segments FROM outbound_sms")
    assert [r["segments"] for r in rows] == [2, 2, 2]
    assert notifier.posts == []
    await sms.invite(member, "+33600000003", None, LINK, "fr")  # 8 of 10 segments: 80 %
    [post] = notifier.posts
    assert post.to.kind == "channel" and post.to.id == "staff"
    assert "8 segments" in post.text and "10" in post.text
    await sms.invite(member, "+33600000004", None, LINK, "fr")
    assert len(notifier.posts) == 1  # once
    assert await refused(sms.check_invitation(member, "+33600000005")) == "sms.budget_exhausted"
    assert await refused(sms.invite(member, "+33600000005", None, LINK, "fr")) == (
        "sms.budget_exhausted"
    )
    clock.advance(days=1)
    await sms.invite(member, "+33600000005", None, LINK, "fr")


async def test_a_message_that_would_exceed_the_budget_is_refused(db: Database) -> None:
    sms = await make_service(db, SMS_DAILY_BUDGET="3")
    member = await add_member(db)
    await sms.invite(member, "+33600000001", None, LINK, "fr")  # 2 segments, 1 left
    # The budget is not exhausted (check before consent), but a 2-segment text would pass it.
    await sms.check_invitation(member, "+33600000002")
    assert await refused(sms.invite(member, "+33600000002", None, LINK, "fr")) == (
        "sms.budget_exhausted"
    )


async def test_budget_counts_twilio_segments_once_known(db: Database) -> None:
    sms = await make_service(db, SMS_DAILY_BUDGET="4")
    member = await add_member(db)
    await sms.invite(member, "+33600000001", None, LINK, "fr")
    await sms.dispatch_due()
    sid = (await db.fetchone("SELECT provider_sid FROM outbound_sms"))[0]
    # Twilio counted 3 (say a carrier's encoding): its figure is what the budget uses.
    await sms.record_status(
        sid, "delivered", None, num_segments=3, price="-0.2280", price_unit="eur"
    )
    row = await db.fetchone("SELECT num_segments, price, price_unit, status FROM outbound_sms")
    assert (row[0], row[1], row[2], row[3]) == (3, "-0.2280", "eur", "delivered")
    assert await refused(sms.invite(member, "+33600000002", None, LINK, "fr")) == (
        "sms.budget_exhausted"
    )


async def test_budget_counts_the_day_a_waiting_message_leaves(db: Database) -> None:
    clock = Clock(paris(2026, 3, 9, 23, 0))  # quiet: leaves Tuesday 08:00
    sms = await make_service(db, clock=clock, SMS_DAILY_BUDGET="2")
    member = await add_member(db)
    await sms.invite(member, "+33600000001", None, LINK, "fr")
    clock.set(paris(2026, 3, 10, 9, 0))
    assert await refused(sms.check_invitation(member, "+33600000002")) == "sms.budget_exhausted"


async def test_opted_out_number_is_refused(db: Database) -> None:
    sms = await make_service(db)
    member = await add_member(db)
    await inbound(sms, Person("sms", MOBILE, ""), "STOP")
    assert await refused(sms.check_invitation(member, "06.12.34.56.78")) == "sms.opted_out"
    assert await refused(sms.invite(member, MOBILE, None, LINK, "fr")) == "sms.opted_out"
    [row] = await db.fetchall("SELECT phone_hash FROM opt_outs")
    assert row["phone_hash"] == sms.hash(MOBILE) and MOBILE not in row["phone_hash"]


async def test_number_already_a_participant_is_refused(db: Database) -> None:
    sms = await make_service(db, SMS_REINVITE_DAYS="0")
    first, second = await add_member(db, "A"), await add_member(db, "B")
    await sms.invite(first, MOBILE, None, LINK, "fr")
    await inbound(sms, Person("sms", MOBILE, ""), "CODE")  # a question alone would not join
    assert await refused(sms.check_invitation(second, MOBILE)) == "sms.already_member"


async def test_opt_out_while_waiting_cancels_the_message(db: Database) -> None:
    clock = Clock(paris(2026, 3, 9, 22, 0))
    transport = RecordingTransport()
    sms = await make_service(db, clock=clock, transport=transport)
    await sms.invite(await add_member(db), MOBILE, None, LINK, "fr")
    await inbound(sms, Person("sms", MOBILE, ""), "Stop")
    clock.set(paris(2026, 3, 10, 9, 0))
    assert await sms.dispatch_due() == 0
    assert transport.sent == []
    row = await db.fetchone("SELECT status, to_phone FROM outbound_sms")
    assert row["status"] == "cancelled" and row["to_phone"] is None


async def test_queue_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    clock = Clock(paris(2026, 3, 9, 22, 0))
    db = await open_db(path)
    sms = await make_service(db, clock=clock)
    await sms.invite(await add_member(db), MOBILE, "Sarah", LINK, "fr")
    await db.close()

    db = await open_db(path)
    try:
        transport = RecordingTransport()
        clock.set(paris(2026, 3, 10, 8, 0))
        sms = await make_service(db, clock=clock, transport=transport)
        assert await sms.dispatch_due() == 0
        [(to, body, _)] = transport.sent
        assert to == MOBILE and "Sarah" in body
    finally:
        await db.close()


async def test_a_message_caught_sending_by_a_crash_is_never_resent(db: Database) -> None:
    transport = RecordingTransport()
    sms = await make_service(db, transport=transport)
    await sms.invite(await add_member(db), MOBILE, None, LINK, "fr")
    await db.write(lambda c: c.execute("UPDATE outbound_sms SET status = 'sending'"))
    restarted = await make_service(db, transport=transport)
    assert await restarted.dispatch_due() == 0
    assert transport.sent == []
    row = await db.fetchone("SELECT o.status, i.status FROM outbound_sms o JOIN invitations i")
    assert tuple(row) == ("unknown", "unknown")


async def test_retryable_error_requeues_with_backoff_then_fails(db: Database) -> None:
    clock = Clock()
    transport = RecordingTransport(
        fail_with=[SmsSendError("busy", status=503, retryable=True) for _ in range(5)]
    )
    sms = await make_service(db, clock=clock, transport=transport)
    await sms.invite(await add_member(db), MOBILE, None, LINK, "fr")
    assert await sms.dispatch_due() == 1
    first = (await db.fetchone("SELECT not_before FROM outbound_sms"))[0]
    assert first > clock().isoformat()
    for _ in range(4):
        clock.advance(hours=1)
        await sms.dispatch_due()
    row = await db.fetchone("SELECT status, attempts FROM outbound_sms")
    assert tuple(row) == ("failed", 5)
    assert transport.sent == []


async def test_ambiguous_error_is_unknown_and_never_retried(db: Database) -> None:
    clock = Clock()
    transport = RecordingTransport(fail_with=[SmsSendError("timeout", ambiguous=True)])
    sms = await make_service(db, clock=clock, transport=transport)
    await sms.invite(await add_member(db), MOBILE, None, LINK, "fr")
    assert await sms.dispatch_due() == 0
    clock.advance(days=1)
    assert await sms.dispatch_due() == 0
    assert transport.sent == []
    assert (await db.fetchone("SELECT status FROM outbound_sms"))[0] == "unknown"


async def test_other_members_number_not_reused(db: Database) -> None:
    sms = await make_service(db)
    member = await add_member(db)
    await sms.invite(member, OTHER_MOBILE, None, LINK, "en")
    row = await db.fetchone("SELECT lang, token FROM invitations")
    assert row["lang"] == "en" and len(row["token"]) == 8


async def test_background_worker_sends_when_woken_and_stops(db: Database) -> None:
    import asyncio

    transport = RecordingTransport()
    sms = await make_service(db, transport=transport)
    stop = asyncio.Event()
    worker = asyncio.create_task(sms.run_worker(stop))
    await sms.invite(await add_member(db), MOBILE, None, LINK, "fr")
    await eventually(lambda: transport.sent)
    assert len(transport.sent) == 1
    stop.set()
    await asyncio.wait_for(worker, PATIENCE)


async def test_without_a_public_address_the_invitation_carries_the_given_link(
    db: Database,
) -> None:
    transport = RecordingTransport()
    sms = await make_service(db, transport=transport)
    await sms.invite(await add_member(db, "Kevin"), MOBILE, "Sarah", LINK, "fr")
    await sms.dispatch_due()
    [(_to, body, _callback)] = transport.sent
    assert LINK in body and "/i/" not in body
