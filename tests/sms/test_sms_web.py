"""The web server: signed Twilio webhooks, status callbacks, health check, opt-out page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer
from fake_twilio import AUTH_TOKEN
from sms_support import (
    LINK,
    MOBILE,
    Clock,
    add_member,
    conversation_for,
    make_service,
    paris,
    web_app_for,
)
from twilio.request_validator import RequestValidator

from bot.sms.service import SmsService
from bot.web import MAX_BODY
from referrals.store import Database

PUBLIC = "https://relais.example.fr"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def sms(db: Database) -> SmsService:
    return await make_service(
        db,
        clock=Clock(paris(2026, 3, 9, 12, 0)),
        PUBLIC_BASE_URL=PUBLIC,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_ACCOUNT_SID="AC" + "1" * 32,
        TWILIO_FROM_NUMBER="+33700000000",
    )


@pytest.fixture
async def client(db: Database, sms: SmsService) -> AsyncIterator[TestClient[Any, Any]]:
    app = web_app_for(sms)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


def sign(path: str, params: dict[str, str], base: str = PUBLIC, token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(base + path, params)


def inbound(body: str = "Bonjour", sid: str = "SM" + "a" * 32) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "1" * 32,
        "From": MOBILE,
        "To": "+33700000000",
        "Body": body,
        "NumMedia": "0",
    }


async def post(
    client: TestClient[Any, Any], path: str, params: dict[str, str], signature: str | None
) -> tuple[int, str]:
    headers = dict(FORM)
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    response = await client.post(path, data=urlencode(params), headers=headers)
    return response.status, await response.text()


async def test_signed_inbound_sms_is_answered_with_twiml(client: TestClient[Any, Any]) -> None:
    params = inbound("AIDE")
    status, body = await post(client, "/twilio/sms", params, sign("/twilio/sms", params))
    assert status == 200
    assert body.startswith("<?xml") and "<Response><Message>" in body and "STOP" in body


async def test_sha256_signature_settings_are_honoured(client: TestClient[Any, Any]) -> None:
    params = inbound("AIDE")
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        PUBLIC + "/twilio/sms", params, "HMAC_SHA256"
    )
    response = await client.post(
        "/twilio/sms",
        data=urlencode(params),
        headers={
            **FORM,
            "X-Twilio-Signature": signature,
            "X-Twilio-Webhooks-Signature-Settings": "algorithm=HMAC_SHA256",
        },
    )
    assert response.status == 200


@pytest.mark.parametrize(
    "signature",
    [
        None,  # missing
        "",  # empty
        "bm90IGEgc2lnbmF0dXJl",  # forged
        "http",  # signed for http:// instead of https://
        "internal",  # signed for the address the server sees behind the proxy
        "token",  # signed with another auth token
        "tampered",  # valid signature, body changed afterwards
    ],
)
async def test_unsigned_or_badly_signed_requests_get_403(
    client: TestClient[Any, Any], db: Database, signature: str | None
) -> None:
    params = inbound("Bonjour")
    if signature == "http":
        signature = sign("/twilio/sms", params, base=PUBLIC.replace("https", "http"))
    elif signature == "internal":
        signature = sign("/twilio/sms", params, base=str(client.make_url("")).rstrip("/"))
    elif signature == "token":
        signature = sign("/twilio/sms", params, token="another-token")
    elif signature == "tampered":
        signature = sign("/twilio/sms", params)
        params = {**params, "Body": "STOP"}
    status, _ = await post(client, "/twilio/sms", params, signature)
    assert status == 403
    assert (await db.fetchone("SELECT COUNT(*) FROM inbound_sms"))[0] == 0


async def test_status_callback_must_be_signed_too(client: TestClient[Any, Any]) -> None:
    params = {"MessageSid": "SM" + "b" * 32, "MessageStatus": "delivered"}
    assert (await post(client, "/twilio/status", params, "forged"))[0] == 403
    assert (await post(client, "/twilio/status", params, None))[0] == 403


async def test_oversized_body_gets_413(client: TestClient[Any, Any]) -> None:
    params = inbound("x" * (MAX_BODY + 10))
    status, _ = await post(client, "/twilio/sms", params, sign("/twilio/sms", params))
    assert status == 413


async def test_oversized_chunked_body_gets_413(client: TestClient[Any, Any]) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"Body=" + b"x" * 1024 + b"&"

    response = await client.post(
        "/twilio/sms", data=chunks(), headers={**FORM, "X-Twilio-Signature": "x"}
    )
    assert response.status == 413


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("application/json", '{"From": "+33612345678"}'),
        ("text/plain", "hello"),
        ("multipart/form-data; boundary=xyz", "--xyz\r\ngarbage"),
        ("", "From=x"),
    ],
)
async def test_malformed_body_gets_400(
    client: TestClient[Any, Any], content_type: str, data: str
) -> None:
    response = await client.post(
        "/twilio/sms",
        data=data,
        headers={"Content-Type": content_type, "X-Twilio-Signature": "x"},
    )
    assert response.status == 400


async def test_missing_sender_gets_400(client: TestClient[Any, Any]) -> None:
    params = {"MessageSid": "SM" + "c" * 32, "Body": "hi"}
    status, _ = await post(client, "/twilio/sms", params, sign("/twilio/sms", params))
    assert status == 400


async def test_repeated_message_sid_is_answered_once(client: TestClient[Any, Any]) -> None:
    params = inbound("Bonjour")
    first = await post(client, "/twilio/sms", params, sign("/twilio/sms", params))
    again = await post(client, "/twilio/sms", params, sign("/twilio/sms", params))
    assert first[0] == again[0] == 200
    assert "<Message>" in first[1] and "<Message>" not in again[1]


async def test_stop_keyword_through_the_webhook(
    client: TestClient[Any, Any], db: Database, sms: SmsService
) -> None:
    params = inbound("Arrêt", sid="SM" + "d" * 32)
    status, body = await post(client, "/twilio/sms", params, sign("/twilio/sms", params))
    assert status == 200 and "START" in body
    assert (await db.fetchone("SELECT phone_hash FROM opt_outs"))[0] == sms.hash(MOBILE)


async def test_status_callback_records_delivery(
    client: TestClient[Any, Any], db: Database, sms: SmsService
) -> None:
    await sms.invite(await add_member(db), MOBILE, None, LINK, "fr")
    await sms.dispatch_due()
    sid = (await db.fetchone("SELECT provider_sid FROM outbound_sms"))[0]
    params = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": "AC" + "1" * 32}
    status, _ = await post(client, "/twilio/status", params, sign("/twilio/status", params))
    assert status == 204
    assert (await db.fetchone("SELECT status FROM invitations"))[0] == "delivered"
    params = {"MessageSid": sid, "MessageStatus": "failed", "ErrorCode": "21610"}
    await post(client, "/twilio/status", params, sign("/twilio/status", params))
    assert (await db.fetchone("SELECT COUNT(*) FROM opt_outs"))[0] == 1


async def test_healthz(client: TestClient[Any, Any]) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "db": "ok"}


async def test_opt_out_page(client: TestClient[Any, Any], db: Database, sms: SmsService) -> None:
    await sms.invite(await add_member(db), MOBILE, None, LINK, "fr")
    token = (await db.fetchone("SELECT token FROM invitations"))[0]
    response = await client.get(f"/stop/{token}")
    assert response.status == 200
    page = await response.text()
    assert "<html" in page and "plus de SMS" in page
    assert (await db.fetchone("SELECT COUNT(*) FROM opt_outs"))[0] == 1
    missing = await client.get("/stop/unknown-token", headers={"Accept-Language": "en-GB"})
    assert missing.status == 404 and "Unknown link" in await missing.text()


async def test_unexpected_errors_never_give_a_500(
    client: TestClient[Any, Any], sms: SmsService, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(conversation_for(sms), "text", boom)
    monkeypatch.setattr(sms, "opt_out_token", boom)
    params = inbound("Bonjour")
    status, body = await post(client, "/twilio/sms", params, sign("/twilio/sms", params))
    assert status == 200 and "<Response" in body
    assert (await client.get("/stop/abcdefgh")).status == 503


async def test_unhealthy_database_is_503(
    client: TestClient[Any, Any], db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> None:
        raise OSError("disk")

    monkeypatch.setattr(db, "read", broken)
    response = await client.get("/healthz")
    assert response.status == 503 and (await response.json())["db"] == "error"


async def test_extra_routes_can_be_added(db: Database, sms: SmsService) -> None:
    from aiohttp import web

    async def landing(request: web.Request) -> web.Response:
        return web.Response(text=request.match_info["code"])

    app = web_app_for(sms, routes=[web.get("/r/{code}", landing)])
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        assert await (await test_client.get("/r/K7PM-4QXB")).text() == "K7PM-4QXB"
