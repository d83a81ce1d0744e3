"""No phone number ever reaches the logs, whatever happens on the SMS paths."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer
from fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from sms_support import (
    LINK,
    MOBILE,
    MOBILE_FORMS,
    Clock,
    add_member,
    inbound,
    make_service,
    make_settings,
    open_db,
    web_app_for,
)
from twilio.request_validator import RequestValidator
from waiting import PATIENCE

import bot.conversation
import bot.runner
import bot.sms.service
import bot.sms.twilio_transport
import bot.web
from bot.ports import Person
from bot.sms.errors import SmsRefused
from bot.sms.twilio_transport import TwilioTransport

PUBLIC = "https://relais.example.fr"
LOGGING_MODULES = (
    bot.sms.service,
    bot.sms.twilio_transport,
    bot.web,
    bot.runner,
    bot.conversation,
)


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Every structlog event as emitted by our code, before any masking processor."""
    with structlog.testing.capture_logs() as captured:
        # Fresh loggers: a module logger cached by an earlier test would bypass the capture.
        for module in LOGGING_MODULES:
            monkeypatch.setattr(module, "log", structlog.get_logger(module.__name__))
        yield captured


def assert_no_number(text: str) -> None:
    for form in MOBILE_FORMS:
        assert form not in text, form


async def run_everything(tmp_path: Path) -> None:
    """Invitations, provider errors, webhooks (valid and forged), opt-out, status callbacks."""
    fake = await FakeTwilio().start()
    db = await open_db(tmp_path / "t.db")
    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": "+33700000000",
        "TWILIO_API_URL": fake.base_url,
        "PUBLIC_BASE_URL": PUBLIC,
        "SMS_REINVITE_DAYS": "0",
        "SMS_INVITES_PER_MEMBER_PER_DAY": "20",
        "SMS_DAILY_BUDGET": "10",  # segments: 4 invitations of 2 segments are 80 %
    }
    # Generous, so that no real request times out on a loaded machine; only the request the fake
    # never answers gets a short timeout, set below (it can only fire late, never early).
    transport = TwilioTransport(make_settings(**env), timeout=PATIENCE, backoff=0.01)
    clock = Clock()
    try:
        sms = await make_service(db, clock=clock, transport=transport, **env)
        member = await add_member(db, "Kevin")
        with pytest.raises(SmsRefused):
            await sms.check_invitation(member, "01 23 45 67 89")
        fake.then_rate_limited(1)
        fake.then(400, code=21211, message=f"Invalid 'To' Phone Number: {MOBILE}")
        fake.then_hang()
        for _ in range(3):
            await sms.invite(member, "06 12 34 56 78", "Sarah", LINK, "fr")
            hangs = bool(fake.script) and fake.script[0].hang
            transport.timeout = 0.3 if hangs else PATIENCE
            await sms.dispatch_due()
        assert not any(step.hang for step in fake.script)  # the timeout path did run
        transport.timeout = PATIENCE
        await sms.invite(member, MOBILE, "Sarah", LINK, "fr")  # 80 % of the budget: staff alert
        fake.then_unsubscribed()
        await sms.dispatch_due()
        app = web_app_for(sms)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            validator = RequestValidator(AUTH_TOKEN)
            for i, body in enumerate(["Bonjour", "CODE", "conseiller", "STOP", "STOP"]):
                params = {"MessageSid": f"SM{i:032d}", "From": MOBILE, "Body": body}
                signature = validator.compute_signature(PUBLIC + "/twilio/sms", params)
                await client.post(
                    "/twilio/sms",
                    data=urlencode(params),
                    headers={
                        "Content-Type": "application/x-www-form-urlencoded",
                        "X-Twilio-Signature": signature,
                    },
                )
            params = {"MessageSid": "SM" + "f" * 32, "From": MOBILE, "Body": "forged"}
            await client.post(
                "/twilio/sms",
                data=urlencode(params),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": "forged",
                },
            )
        await inbound(sms, Person("sms", "0612345678", ""), "START")
    finally:
        await transport.close()
        await db.close()
        await fake.close()


async def test_our_log_events_never_carry_a_number(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    await run_everything(tmp_path)
    names = {event["event"] for event in events}
    assert {"sms_sent", "sms_send_unknown", "sms_send_failed", "twilio_signature_invalid"} <= names
    assert_no_number(repr(events))


async def test_library_logs_never_carry_a_number(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await run_everything(tmp_path)
    assert caplog.records  # aiohttp's access log at least
    for record in caplog.records:
        assert_no_number(record.getMessage())
        assert_no_number(repr(record.args))
