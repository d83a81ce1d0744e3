"""The /a/CODE check-in page behind an action's QR code, and ``relais stats --json``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot import cli
from bot.app import App
from bot.runner import LogNotifier, NoTransport
from bot.settings import load_settings
from referrals import actions
from referrals.actions import ActionInput

PUBLIC = "https://relais.example.org"


async def open_services(tmp_path: Path, **env: str) -> App:
    from bot.app import build_app

    settings = load_settings(
        {"RELAIS_SECRET": "test-secret", "SMS_QUIET_HOURS": "", **env}, dotenv=None
    )
    return await build_app(
        settings, tmp_path / "relais.db", transport=NoTransport(), notifier=LogNotifier()
    )


def make_app(services: App) -> web.Application:
    """The web app of `relais serve` and `relais run`, as the composition root builds it."""
    from bot.bootstrap import web_app

    return web_app(services)  # type: ignore[no-any-return]


async def start(app: web.Application) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


async def _tournament(services: App, start: datetime) -> actions.Action:
    local = start.astimezone(ZoneInfo(services.settings.tz))
    return await services.db.write(
        actions.create_action,
        ActionInput(
            type="tournoi",
            title="Tournoi <FIFA>",
            place="Gymnase Sud",
            start=f"{local:%Y-%m-%d %H:%M}",
            end=f"{local + timedelta(hours=4):%Y-%m-%d %H:%M}",
        ),
        tz=services.settings.tz,
        now=datetime.now(UTC),
    )


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[App]:
    opened = await open_services(tmp_path, PUBLIC_BASE_URL=PUBLIC)
    try:
        yield opened
    finally:
        await opened.close()


async def test_checkin_page(services: App) -> None:
    action = await _tournament(services, datetime.now(UTC) + timedelta(days=3))
    client = await start(make_app(services))
    try:
        page = await client.get(f"/a/{action.code.lower()}")
        body = await page.text()
        assert page.status == 200
        assert "Tournoi &lt;FIFA&gt;" in body and "<FIFA>" not in body  # escaped
        assert f"/jesuisla {action.code}" in body and f'href="/r/{action.code}"' in body
        assert "Content-Security-Policy" in page.headers
        english = await client.get(f"/a/{action.code}", headers={"Accept-Language": "en"})
        assert "You're here? Tell us" in await english.text()
        for wrong in ("/a/NOPE-0000", "/a/%3Cscript%3E", "/a/" + "X" * 300):
            missing = await client.get(wrong)
            assert missing.status == 404
        await services.db.write(actions.cancel_action, action.code, datetime.now(UTC))
        assert (await client.get(f"/a/{action.code}")).status == 404
    finally:
        await client.close()


def test_stats_json_has_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RELAIS_SECRET", "test-secret")
    monkeypatch.delenv("RELAIS_DB", raising=False)

    async def prepare() -> None:
        services = await open_services(tmp_path)
        try:
            action = await _tournament(services, datetime.now(UTC) + timedelta(minutes=30))
            member, _ = await services.referrals.ensure_member("42", "lea", None)
            await services.db.write(
                actions.check_in, action.code, member.id, datetime.now(UTC), False
            )
            await services.db.write(actions.record_rating, action.id, member.id, 5)
            await services.db.write(actions.record_recommend, action.id, member.id, "peut-etre")
        finally:
            await services.close()

    asyncio.run(prepare())
    capsys.readouterr()
    assert cli.main(["stats", "--json", "--db", str(tmp_path / "relais.db")]) == 0
    figures: dict[str, Any] = json.loads(capsys.readouterr().out)
    (row,) = figures["actions"]
    assert set(row) == {
        "code", "type", "title", "start", "interested", "attended", "new", "recruits_30d",
        "enrolled", "rating_mean", "ratings", "would_recommend",
    }  # fmt: skip
    assert row["type"] == "tournoi" and row["attended"] == 1 and row["new"] == 0
    assert row["rating_mean"] == 5 and row["ratings"] == 1 and row["would_recommend"] == 0


def test_report_has_results_per_action(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RELAIS_SECRET", "test-secret")
    monkeypatch.delenv("RELAIS_DB", raising=False)

    async def prepare() -> None:
        services = await open_services(tmp_path)
        try:
            await _tournament(services, datetime.now(UTC) + timedelta(days=1))
        finally:
            await services.close()

    asyncio.run(prepare())
    out = tmp_path / "report.html"
    assert cli.main(["report", "--out", str(out), "--db", str(tmp_path / "relais.db")]) == 0
    html = out.read_text(encoding="utf-8")
    assert "Résultats par action" in html
    assert "Tournoi &lt;FIFA&gt; (Gymnase Sud)" in html and "<FIFA>" not in html
