"""The /r/CODE landing page, its call-back form, the opt-out page, headers and rate limits."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from waiting import eventually
from web_support import Recorder, add_member, client_for, make_app, open_services

from bot.app import App
from bot.landing import RateLimiter, first_name, parse_phone
from bot.pages import negotiate_lang
from bot.sms.service import SmsService

PUBLIC = "https://relais.example.fr"
MOBILE = "06 12 34 56 78"
E164 = "+33612345678"
FORM = {"prenom": "Inès", "telephone": MOBILE, "consentement": "oui"}


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def services(tmp_path: Path, recorder: Recorder) -> AsyncIterator[App]:
    services = await open_services(tmp_path, recorder, PUBLIC_BASE_URL=PUBLIC)
    try:
        yield services
    finally:
        await services.close()


@pytest.fixture
async def client(services: App, recorder: Recorder) -> AsyncIterator[TestClient[Any, Any]]:
    async with client_for(make_app(services, recorder)) as test_client:
        yield test_client


def assert_secure_headers(response: Any, *, https: bool = True) -> None:
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp  # no script at all
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert ("Strict-Transport-Security" in headers) is https


async def test_personal_landing_page(services: App, client: TestClient[Any, Any]) -> None:
    _, code = await add_member(services, "Sofiane Benali-Martin", discord_id="42")
    response = await client.get(f"/r/{code}")
    assert response.status == 200
    page = await response.text()
    assert "Sofiane t'invite" in page and "Benali" not in page  # first name only
    assert "Rejoindre sur Discord" not in page  # no OAuth configured, no invite: the code
    assert code in page and "Je n'ai pas Discord" in page
    checkbox = re.search(r'<input type="checkbox"[^>]*>', page)
    assert checkbox is not None and "checked" not in checkbox.group(0)
    assert "<script" not in page and 'style="' not in page
    nonce = re.search(r'<style nonce="([^"]+)">', page)
    assert nonce is not None
    assert f"'nonce-{nonce.group(1)}'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    assert_secure_headers(response)


async def test_forgiving_code_in_the_url(services: App, client: TestClient[Any, Any]) -> None:
    _, code = await add_member(services, "Léa")
    typed = code.replace("-", "").lower().replace("0", "o").replace("1", "l")
    response = await client.get(f"/r/{typed}")
    assert response.status == 200 and "Léa t'invite" in await response.text()


async def test_member_invite_link_shown_when_no_oauth(
    services: App, client: TestClient[Any, Any]
) -> None:
    member, code = await add_member(services, "Yanis")
    await services.referrals.add_link("abcDEF12", "discord_invite", participant_id=member)
    page = await (await client.get(f"/r/{code}")).text()
    assert 'href="https://discord.gg/abcDEF12"' in page and "Rejoindre sur Discord" in page


async def test_campaign_landing_page(services: App, client: TestClient[Any, Any]) -> None:
    await services.referrals.create_campaign("VAN-NANTES")
    response = await client.get("/r/van-nantes")
    assert response.status == 200
    page = await response.text()
    assert "Tu es invité·e" in page and "VAN-NANTES" in page


@pytest.mark.parametrize("path", ["/r/K7PM-4QXB", "/r/NOPE-NOPE-NOPE", "/r/x", "/r/%3Cscript%3E"])
async def test_unknown_code_is_a_friendly_404(client: TestClient[Any, Any], path: str) -> None:
    response = await client.get(path)
    assert response.status == 404
    page = await response.text()
    assert "Ce lien ne marche pas" in page and "<script" not in page
    assert_secure_headers(response)
    for sub in ("/join", "/merci"):
        assert (await client.get(path + sub, allow_redirects=False)).status == 404
    assert (await client.post(path + "/rappel", data=FORM)).status == 404


async def test_english_when_the_browser_prefers_it(
    services: App, client: TestClient[Any, Any]
) -> None:
    _, code = await add_member(services, "Sam")
    english = await client.get(f"/r/{code}", headers={"Accept-Language": "en-GB,en;q=0.9,fr;q=0.4"})
    page = await english.text()
    assert '<html lang="en">' in page and "I don't have Discord" in page
    assert english.headers["Content-Language"] == "en"
    french = await client.get(f"/r/{code}", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.8"})
    assert '<html lang="fr">' in await french.text()
    unknown = await client.get("/r/ZZZZZZZZ", headers={"Accept-Language": "en"})
    assert "This link doesn't work" in await unknown.text()


def test_language_negotiation() -> None:
    assert negotiate_lang(None, "fr") == "fr"
    assert negotiate_lang("de-DE,de;q=0.9", "fr") == "fr"
    assert negotiate_lang("de-DE,en;q=0.5,fr;q=0.4", "fr") == "en"
    assert negotiate_lang("en;q=0.2,fr", "fr") == "fr"
    assert negotiate_lang("en;q=0,fr;q=0.1", "en") == "fr"
    assert negotiate_lang("EN-us", "fr") == "en"
    assert negotiate_lang("garbage;;;,=,", "fr") == "fr"


def test_first_name_only() -> None:
    assert first_name("Sofiane Benali") == "Sofiane"
    assert first_name("  @léa_92  ") == "léa_92"
    assert first_name("") is None and first_name(None) is None
    assert first_name("x" * 80) == "x" * 24


def test_phone_numbers() -> None:
    regions = ("FR", "RE")
    assert parse_phone("06 12 34 56 78", regions) == E164
    assert parse_phone("+33 6 12 34 56 78", regions) == E164
    assert parse_phone("0692 12 34 56", regions) == "+262692123456"
    assert parse_phone("+44 7700 900123", regions) is None  # not an allowed country
    assert parse_phone("12", regions) is None and parse_phone("", regions) is None


async def test_callback_request(
    services: App, recorder: Recorder, client: TestClient[Any, Any]
) -> None:
    member, code = await add_member(services, "Sofiane Benali")
    response = await client.post(f"/r/{code}/rappel", data=FORM, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == f"/r/{code}/merci"  # no personal data in the URL
    rows = await services.db.fetchall(
        "SELECT first_name, phone, phone_hash, referrer_id, status FROM callback_requests"
    )
    assert [tuple(row) for row in rows] == [
        ("Inès", E164, services.sms.hash(E164), member, "open")  # type: ignore[attr-defined]
    ]
    thanks = await client.get(f"/r/{code}/merci")
    assert thanks.status == 200 and "Merci, c'est noté" in await thanks.text()
    await eventually(lambda: recorder.posts)
    assert len(recorder.posts) == 1
    post = recorder.posts[0]
    assert post.to.kind == "channel" and post.to.id == "staff"
    assert "Inès" in post.text and E164 in post.text and "Sofiane Benali" in post.text
    # The same number again: no second request, no second post.
    again = await client.post(f"/r/{code}/rappel", data=FORM, allow_redirects=False)
    assert again.status == 303
    await _settle()
    assert len(recorder.posts) == 1
    count = await services.db.fetchone("SELECT COUNT(*) FROM callback_requests")
    assert count is not None and count[0] == 1
    events = await services.db.fetchone(
        "SELECT COUNT(*) FROM events WHERE kind = 'callback_requested' AND data NOT LIKE '%336%'"
    )
    assert events is not None and events[0] == 1


async def _settle() -> None:
    import asyncio

    for _ in range(5):
        await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"prenom": "Inès", "telephone": MOBILE}, "consentement"),  # consent not ticked
        ({"prenom": "Inès", "telephone": MOBILE, "consentement": "on"}, "consentement"),
        ({"prenom": "", "telephone": MOBILE, "consentement": "oui"}, "prenom"),
        ({"prenom": "x" * 41, "telephone": MOBILE, "consentement": "oui"}, "prenom"),
        ({"prenom": "Inès", "telephone": "123", "consentement": "oui"}, "telephone"),
        ({"prenom": "Inès", "telephone": "+44 7700 900123", "consentement": "oui"}, "telephone"),
    ],
)
async def test_callback_form_errors(
    services: App,
    recorder: Recorder,
    client: TestClient[Any, Any],
    form: dict[str, str],
    field: str,
) -> None:
    _, code = await add_member(services, "Sofiane")
    response = await client.post(f"/r/{code}/rappel", data=form)
    assert response.status == 400
    page = await response.text()
    assert f'id="{field}-error"' in page and '<details id="rappel" open>' in page
    assert (await services.db.fetchone("SELECT COUNT(*) FROM callback_requests"))[0] == 0  # type: ignore[index]
    await _settle()
    assert recorder.posts == []


async def test_callback_form_refuses_another_site(
    services: App, client: TestClient[Any, Any]
) -> None:
    _, code = await add_member(services, "Sofiane")
    evil = await client.post(
        f"/r/{code}/rappel", data=FORM, headers={"Origin": "https://evil.example"}
    )
    assert evil.status == 403
    ours = await client.post(
        f"/r/{code}/rappel", data=FORM, headers={"Origin": PUBLIC}, allow_redirects=False
    )
    assert ours.status == 303
    # A no-referrer page posts with "Origin: null": accepted.
    null = await client.post(
        f"/r/{code}/rappel", data=FORM, headers={"Origin": "null"}, allow_redirects=False
    )
    assert null.status == 303


async def test_join_without_oauth_goes_back_to_the_page(
    services: App, client: TestClient[Any, Any]
) -> None:
    _, code = await add_member(services, "Sofiane")
    response = await client.get(f"/r/{code}/join", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == f"/r/{code}"


async def test_rate_limit_per_ip(services: App, recorder: Recorder) -> None:
    _, code = await add_member(services, "Sofiane")
    async with client_for(make_app(services, recorder, rate=3)) as client:
        for _ in range(3):
            assert (await client.get(f"/r/{code}")).status == 200
        limited = await client.get(f"/r/{code}")
        assert limited.status == 429
        assert int(limited.headers["Retry-After"]) >= 1
        assert "Doucement" in await limited.text()
        assert_secure_headers(limited)
        assert (await client.get("/oauth/callback?state=x")).status == 429
        # Behind the local reverse proxy, each client has its own bucket.
        other = await client.get(f"/r/{code}", headers={"X-Forwarded-For": "203.0.113.7"})
        assert other.status == 200
        # Other routes are not limited.
        assert (await client.get("/healthz")).status == 200


def test_token_bucket_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(2, 60.0, clock=lambda: now[0])
    assert limiter.take("a") == 0 and limiter.take("a") == 0
    assert limiter.take("a") == pytest.approx(30.0)
    assert limiter.take("b") == 0
    now[0] = 30.0
    assert limiter.take("a") == 0


async def test_security_headers_everywhere(client: TestClient[Any, Any]) -> None:
    for path in ("/healthz", "/stop/unknown-token", "/r/ZZZZ-ZZZZ", "/oauth/callback"):
        assert_secure_headers(await client.get(path))


async def test_no_hsts_over_plain_http(tmp_path: Path) -> None:
    recorder = Recorder()
    services = await open_services(tmp_path, recorder, PUBLIC_BASE_URL="http://localhost:8080")
    try:
        async with client_for(make_app(services, recorder)) as client:
            assert_secure_headers(await client.get("/r/ZZZZ-ZZZZ"), https=False)
    finally:
        await services.close()


async def _invitation_token(services: App) -> str:
    member, _ = await add_member(services, "Sofiane")
    sms: SmsService = services.sms  # type: ignore[assignment]
    await sms.invite(member, "+33612345678", None, f"{PUBLIC}/r/X", "fr")
    row = await services.db.fetchone("SELECT token FROM invitations")
    assert row is not None
    return str(row[0])


async def _opted_out(services: App) -> int:
    row = await services.db.fetchone("SELECT COUNT(*) FROM opt_outs")
    assert row is not None
    return int(row[0])


async def test_stop_page_in_the_landing_style(services: App, client: TestClient[Any, Any]) -> None:
    token = await _invitation_token(services)
    # A messaging app's link preview does not opt out; it sees a confirmation button.
    preview = await client.get(f"/stop/{token}", headers={"User-Agent": "WhatsApp/2.23.20.0 A"})
    assert preview.status == 200 and await _opted_out(services) == 0
    page = await preview.text()
    assert 'method="post"' in page and f'action="/stop/{token}"' in page
    assert (await client.head(f"/stop/{token}")).status == 200
    assert await _opted_out(services) == 0
    # A person's click opts out at once (SPEC §8).
    response = await client.get(f"/stop/{token}")
    assert response.status == 200 and await _opted_out(services) == 1
    page = await response.text()
    assert "C'est fait" in page and "plus de SMS" in page and '<style nonce="' in page
    assert_secure_headers(response)
    # The confirmation button works too.
    assert (await client.post(f"/stop/{token}")).status == 200


async def test_never_a_500(
    services: App, client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, code = await add_member(services, "Sofiane")

    async def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk")

    monkeypatch.setattr(services.db, "read", broken)
    monkeypatch.setattr(services.db, "write", broken)
    for response in (
        await client.get(f"/r/{code}"),
        await client.post(f"/r/{code}/rappel", data=FORM),
        await client.get(f"/r/{code}/join"),
        await client.get("/i/AbCd1234"),
    ):
        assert response.status == 503
