"""The Twilio transport through the real ``twilio`` library against a fake Twilio API."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from sms_support import LINK, MOBILE, Clock, add_member, make_service, make_settings
from waiting import PATIENCE

from bot.cli import CliError, Context
from bot.sms.cli import cmd_sms_test
from bot.sms.errors import SmsSendError
from bot.sms.twilio_transport import TwilioTransport
from referrals.store import Database

PUBLIC = "https://relais.example.fr"


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
    }
    env.update(extra)
    return env


@pytest.fixture
async def transport(fake: FakeTwilio) -> AsyncIterator[TwilioTransport]:
    sender = TwilioTransport(make_settings(**twilio_env(fake)), timeout=PATIENCE, backoff=0.01)
    try:
        yield sender
    finally:
        await sender.close()


async def test_send_uses_basic_auth_and_form_fields(
    fake: FakeTwilio, transport: TwilioTransport
) -> None:
    sid = await transport.send(MOBILE, "Bonjour", status_callback=f"{PUBLIC}/twilio/status")
    assert sid.startswith("SM")
    [request] = fake.requests
    assert request.authorized
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.form == {
        "To": MOBILE,
        "From": "+33700000000",
        "Body": "Bonjour",
        "StatusCallback": f"{PUBLIC}/twilio/status",
    }


async def test_messaging_service_sender(fake: FakeTwilio) -> None:
    settings = make_settings(
        **twilio_env(fake, TWILIO_FROM_NUMBER="", TWILIO_MESSAGING_SERVICE_SID="MG" + "2" * 32)
    )
    sender = TwilioTransport(settings, timeout=PATIENCE)
    try:
        await sender.send(MOBILE, "Hi")
    finally:
        await sender.close()
    assert fake.messages[0]["MessagingServiceSid"] == "MG" + "2" * 32
    assert "From" not in fake.messages[0]


async def test_wrong_credentials_fail_without_retry(fake: FakeTwilio) -> None:
    settings = make_settings(**twilio_env(fake, TWILIO_AUTH_TOKEN="wrong"))
    sender = TwilioTransport(settings, timeout=PATIENCE, backoff=0.01)
    try:
        with pytest.raises(SmsSendError) as info:
            await sender.send(MOBILE, "Hi")
    finally:
        await sender.close()
    assert info.value.status == 401 and not info.value.retryable and not info.value.ambiguous
    assert len(fake.requests) == 1 and not fake.requests[0].authorized


@pytest.mark.parametrize("status", [429, 503])
async def test_retries_on_429_and_503_then_succeeds(
    fake: FakeTwilio, transport: TwilioTransport, status: int
) -> None:
    fake.then(status, code=20000 + status, message="busy").then(status, code=1, message="x")
    sid = await transport.send(MOBILE, "Hi")
    assert sid.startswith("SM")
    assert len(fake.requests) == 3


async def test_no_retry_on_other_errors(fake: FakeTwilio, transport: TwilioTransport) -> None:
    fake.then(400, code=21211, message="Invalid 'To' Phone Number: +33612345678")
    with pytest.raises(SmsSendError) as info:
        await transport.send(MOBILE, "Hi")
    assert info.value.code == "21211" and not info.value.retryable
    assert MOBILE not in info.value.reason  # the provider's message is redacted
    assert len(fake.requests) == 1


async def test_still_busy_after_the_attempts_is_retryable(
    fake: FakeTwilio, transport: TwilioTransport
) -> None:
    fake.then_unavailable(3)
    with pytest.raises(SmsSendError) as info:
        await transport.send(MOBILE, "Hi")
    assert info.value.retryable and info.value.status == 503
    assert len(fake.requests) == 3


async def test_hanging_request_is_ambiguous_after_the_timeout(
    fake: FakeTwilio, transport: TwilioTransport
) -> None:
    fake.then_hang()
    # A short timeout only for a request that is never answered: it cannot fire early.
    transport.timeout = 0.5
    started = time.monotonic()
    with pytest.raises(SmsSendError) as info:
        async with asyncio.timeout(PATIENCE):  # the transport's own timeout fires first
            await transport.send(MOBILE, "Hi")
    assert time.monotonic() - started >= 0.5
    assert info.value.ambiguous and not info.value.retryable
    assert len(fake.requests) == 1


async def test_unreachable_api_is_retryable(tmp_path: Path) -> None:
    settings = make_settings(
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM_NUMBER="+33700000000",
        TWILIO_API_URL="http://127.0.0.1:9",
    )
    sender = TwilioTransport(settings, timeout=PATIENCE)
    try:
        with pytest.raises(SmsSendError) as info:
            await sender.send(MOBILE, "Hi")
    finally:
        await sender.close()
    assert info.value.retryable


# ---------------------------------------------------------------- through the queue


async def test_queue_with_twilio_sends_and_records_the_sid(
    fake: FakeTwilio, db: Database, transport: TwilioTransport
) -> None:
    sms = await make_service(db, transport=transport, **twilio_env(fake))
    await sms.invite(await add_member(db, "Kevin"), MOBILE, "Sarah", LINK, "fr")
    assert await sms.dispatch_due() == 0
    [message] = fake.messages
    token = (await db.fetchone("SELECT token FROM invitations"))[0]
    assert message["To"] == MOBILE and "Kevin" in message["Body"]
    assert f"{PUBLIC}/i/{token}" in message["Body"]
    assert message["Body"].rstrip().endswith("STOP pour ne plus recevoir de SMS")
    assert message["StatusCallback"] == f"{PUBLIC}/twilio/status"
    row = await db.fetchone("SELECT status, provider_sid FROM outbound_sms")
    assert row["status"] == "sent" and row["provider_sid"].startswith("SM")


async def test_queue_retries_later_when_twilio_stays_busy(
    fake: FakeTwilio, db: Database, transport: TwilioTransport
) -> None:
    clock = Clock()
    sms = await make_service(db, clock=clock, transport=transport, **twilio_env(fake))
    await sms.invite(await add_member(db), MOBILE, None, LINK, "fr")
    fake.then_rate_limited(3)
    assert await sms.dispatch_due() == 1  # still queued, for later
    assert len(fake.requests) == 3
    clock.advance(minutes=5)
    assert await sms.dispatch_due() == 0
    assert len(fake.requests) == 4
    assert (await db.fetchone("SELECT status FROM outbound_sms"))[0] == "sent"


async def test_hanging_twilio_marks_unknown_and_never_resends(
    fake: FakeTwilio, db: Database, transport: TwilioTransport
) -> None:
    clock = Clock()
    sms = await make_service(db, clock=clock, transport=transport, **twilio_env(fake))
    await sms.invite(await add_member(db), MOBILE, None, LINK, "fr")
    fake.then_hang()
    transport.timeout = 0.5  # only for the request that is never answered
    assert await sms.dispatch_due() == 0
    clock.advance(days=1)
    await sms.dispatch_due()
    assert len(fake.requests) == 1
    row = await db.fetchone(
        "SELECT o.status, i.status, o.to_phone FROM outbound_sms o, invitations i"
    )
    assert tuple(row) == ("unknown", "unknown", None)


async def test_error_21610_opts_the_number_out(
    fake: FakeTwilio, db: Database, transport: TwilioTransport
) -> None:
    sms = await make_service(db, transport=transport, **twilio_env(fake))
    member = await add_member(db)
    await sms.invite(member, MOBILE, None, LINK, "fr")
    fake.then_unsubscribed()
    await sms.dispatch_due()
    row = await db.fetchone("SELECT status, error_code FROM outbound_sms")
    assert tuple(row) == ("failed", "21610")
    [opt] = await db.fetchall("SELECT phone_hash FROM opt_outs")
    assert opt["phone_hash"] == sms.hash(MOBILE)
    other = await add_member(db, "Other")
    with pytest.raises(Exception) as info:
        await sms.check_invitation(other, MOBILE)
    assert getattr(info.value, "key", None) == "sms.opted_out"
    assert len(fake.requests) == 1


# ---------------------------------------------------------------- relais sms test


def context(tmp_path: Path, number: str, **env: str) -> Context:
    args = argparse.Namespace(number=number, db=str(tmp_path / "cli.db"))
    return Context(make_settings(**env), args)


async def test_sms_test_prints_the_sid(
    fake: FakeTwilio, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cmd_sms_test(context(tmp_path, "06 12 34 56 78", **twilio_env(fake))) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("SM") and len(out) == 34
    assert fake.messages[0]["To"] == MOBILE


async def test_sms_test_names_missing_settings(tmp_path: Path) -> None:
    with pytest.raises(CliError) as info:
        await cmd_sms_test(context(tmp_path, MOBILE, TWILIO_ACCOUNT_SID=ACCOUNT_SID))
    assert "TWILIO_AUTH_TOKEN" in info.value.message
    assert "TWILIO_FROM_NUMBER" in info.value.message
    assert "TWILIO_ACCOUNT_SID" not in info.value.message


async def test_sms_test_refuses_a_landline(fake: FakeTwilio, tmp_path: Path) -> None:
    with pytest.raises(CliError) as info:
        await cmd_sms_test(context(tmp_path, "01 23 45 67 89", **twilio_env(fake)))
    assert "portable" in info.value.message
    assert fake.requests == []


async def test_sms_test_reports_a_provider_error(fake: FakeTwilio, tmp_path: Path) -> None:
    fake.then(400, code=21408, message="Permission to send an SMS has not been enabled")
    with pytest.raises(CliError) as info:
        await cmd_sms_test(context(tmp_path, MOBILE, **twilio_env(fake)))
    assert "21408" in info.value.message and "Permission" in info.value.message
