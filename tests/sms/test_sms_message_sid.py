"""``MessageSid`` is required on ``/twilio/sms`` (issue 20): without it a replay could not be
recognised, so such a request is refused (400) and changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer
from fake_twilio import AUTH_TOKEN
from sms_support import MOBILE, Clock, make_service, paris, web_app_for
from twilio.request_validator import RequestValidator

from bot.sms.service import SmsService
from referrals.store import Database

PUBLIC = "https://relais.example.fr"


@pytest.fixture
async def client(db: Database) -> AsyncIterator[TestClient[Any, Any]]:
    sms: SmsService = await make_service(
        db,
        clock=Clock(paris(2026, 3, 9, 12, 0)),
        PUBLIC_BASE_URL=PUBLIC,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_ACCOUNT_SID="AC" + "1" * 32,
        TWILIO_FROM_NUMBER="+33700000000",
    )
    app = web_app_for(sms)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


async def post(client: TestClient[Any, Any], params: dict[str, str]) -> int:
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + "/twilio/sms", params)
    response = await client.post(
        "/twilio/sms",
        data=urlencode(params),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
    )
    return response.status


async def inbound_count(db: Database) -> int:
    row = await db.fetchone("SELECT COUNT(*) FROM events WHERE kind LIKE '%sms%'")
    return int(row[0]) if row else 0


@pytest.mark.parametrize("sid", [None, "", "SM 123", "x" * 65])
async def test_a_signed_sms_without_a_valid_message_sid_is_refused(
    client: TestClient[Any, Any], db: Database, sid: str | None
) -> None:
    params = {"From": MOBILE, "To": "+33700000000", "Body": "STOP"}
    if sid is not None:
        params["MessageSid"] = sid
    before = await inbound_count(db)
    assert await post(client, params) == 400
    assert await inbound_count(db) == before
    optouts = await db.fetchone("SELECT COUNT(*) FROM opt_outs")
    assert optouts is not None and optouts[0] == 0  # the STOP changed nothing


async def test_the_same_sms_with_its_sid_is_answered(
    client: TestClient[Any, Any], db: Database
) -> None:
    params = {"From": MOBILE, "To": "+33700000000", "Body": "STOP", "MessageSid": "SM" + "b" * 32}
    assert await post(client, params) == 200
    optouts = await db.fetchone("SELECT COUNT(*) FROM opt_outs")
    assert optouts is not None and optouts[0] == 1
