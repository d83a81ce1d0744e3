"""A member already on the server scans an action's QR code (issue 22): "Je suis déjà sur le
serveur" -> Discord OAuth2 with the ``identify`` scope -> presence recorded, nothing to type.
Through the real aiohttp app of ``relais serve`` and a fake Discord API on 127.0.0.1 speaking
the real protocol (token exchange, ``/users/@me``, the guild member lookup with the bot token)."""

from __future__ import annotations

import base64
import html
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import App
from bot.bootstrap import web_app
from referrals import actions
from referrals.actions import ActionInput

from test_actions_web_and_cli import open_services  # isort: skip

PUBLIC = "http://relais.test"  # http: the test client sends the state cookie back
GUILD = "900000000000000001"
BOT_TOKEN = "bot-token-for-tests"
CLIENT_ID = "111111111111111111"
CLIENT_SECRET = "client-secret-for-tests"
LEA = "500000000000000001"
NEWBIE = "500000000000000002"


class FakeDiscordOAuth:
    """Discord's token endpoint, ``/users/@me`` and the guild member lookup.

    The authorization code ``code-<user id>`` gives the token ``tok-<user id>``; ``members``
    are the ids on the server."""

    def __init__(self) -> None:
        self.members: set[str] = set()
        self.scopes: list[str] = []
        app = web.Application()
        app.router.add_post("/api/v10/oauth2/token", self.token)
        app.router.add_get("/api/v10/users/@me", self.me)
        app.router.add_get("/api/v10/guilds/{guild}/members/{user}", self.member)
        self.server = TestServer(app, host="127.0.0.1")

    async def start(self) -> str:
        await self.server.start_server()
        return str(self.server.make_url("/api/v10"))

    async def token(self, request: web.Request) -> web.Response:
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        form = await request.post()
        if (
            request.headers.get("Authorization") != f"Basic {basic}"
            or form.get("grant_type") != "authorization_code"
            or form.get("redirect_uri") != f"{PUBLIC}/oauth/callback"
            or not str(form.get("code", "")).startswith("code-")
        ):
            return web.json_response({"error": "invalid_grant"}, status=400)
        user = str(form["code"])[len("code-") :]
        return web.json_response(
            {"access_token": f"tok-{user}", "token_type": "Bearer", "scope": "identify"}
        )

    async def me(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer tok-"):
            raise web.HTTPUnauthorized()
        user = auth[len("Bearer tok-") :]
        return web.json_response({"id": user, "username": "lea", "global_name": "Léa"})

    async def member(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bot {BOT_TOKEN}":
            raise web.HTTPUnauthorized()
        if request.match_info["guild"] != GUILD or request.match_info["user"] not in self.members:
            return web.json_response({"message": "Unknown Member", "code": 10007}, status=404)
        return web.json_response({"user": {"id": request.match_info["user"]}, "roles": []})


class World:
    def __init__(self, services: App, client: TestClient[Any, Any], discord: FakeDiscordOAuth):
        self.services = services
        self.client = client
        self.discord = discord

    async def scan(self, code: str, user: str) -> tuple[str, str]:
        """Tap "Je suis déjà sur le serveur", consent at Discord as ``user``: (scope, page)."""
        started = await self.client.get(f"/a/{code}/ici", allow_redirects=False)
        assert started.status == 302, await started.text()
        query = parse_qs(urlsplit(started.headers["Location"]).query)
        assert query["redirect_uri"] == [f"{PUBLIC}/oauth/callback"]
        back = await self.client.get(
            "/oauth/callback", params={"code": f"code-{user}", "state": query["state"][0]}
        )
        assert back.status == 200, await back.text()
        return query["scope"][0], await back.text()

    async def present(self) -> int:
        row = await self.services.db.fetchone(
            "SELECT COUNT(*) FROM action_people WHERE checked_in_at IS NOT NULL"
        )
        return int(row[0])


async def tournament(services: App, start: datetime) -> actions.Action:
    local = start.astimezone(ZoneInfo(services.settings.tz))
    return await services.db.write(
        actions.create_action,
        ActionInput(
            type="tournoi",
            title="Tournoi FIFA",
            start=f"{local:%Y-%m-%d %H:%M}",
            end=f"{local + timedelta(hours=4):%Y-%m-%d %H:%M}",
        ),
        tz=services.settings.tz,
        now=datetime.now(UTC),
    )


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    discord = FakeDiscordOAuth()
    api = await discord.start()
    services = await open_services(
        tmp_path,
        PUBLIC_BASE_URL=PUBLIC,
        DISCORD_TOKEN=BOT_TOKEN,
        DISCORD_GUILD_ID=GUILD,
        DISCORD_CLIENT_ID=CLIENT_ID,
        DISCORD_CLIENT_SECRET=CLIENT_SECRET,
        DISCORD_API_URL=api,
        TWILIO_FROM_NUMBER="+33700000000",
    )
    client: TestClient[Any, Any] = TestClient(TestServer(web_app(services), host="127.0.0.1"))
    await client.start_server()
    try:
        yield World(services, client, discord)
    finally:
        await client.close()
        await services.close()
        await discord.server.close()


async def test_a_member_on_the_server_is_checked_in_by_the_qr_code(world: World) -> None:
    action = await tournament(world.services, datetime.now(UTC) + timedelta(minutes=30))
    lea, _ = await world.services.referrals.ensure_member(LEA, "Léa", None)
    world.discord.members.add(LEA)
    page = await (await world.client.get(f"/a/{action.code}")).text()
    assert f'href="/a/{action.code}/ici"' in page and "Je suis déjà sur le serveur" in page
    assert f'envoie <span class="code">{action.code}</span> par SMS au +33700000000' in page

    scope, done = await world.scan(action.code, LEA)
    assert scope == "identify"  # who they are, nothing more
    assert "Ta présence est enregistrée, Léa" in done
    assert await world.present() == 1
    row = await world.services.db.fetchone(
        "SELECT campaign_id, channel FROM participants WHERE id = ?", (lea.id,)
    )
    assert tuple(row) == (None, "unknown")  # an existing member keeps their source
    _, again = await world.scan(action.code, LEA)
    assert "Ta présence était déjà enregistrée" in again and await world.present() == 1
    result = await world.services.db.read(actions.result_of, action.code)
    assert result is not None and result["attended"] == 1 and result["new"] == 0


async def test_someone_not_on_the_server_is_offered_to_join_and_nothing_is_written(
    world: World,
) -> None:
    action = await tournament(world.services, datetime.now(UTC) + timedelta(minutes=30))
    _, page = await world.scan(action.code, NEWBIE)
    assert "pas encore sur notre serveur" in page and f'href="/r/{action.code}"' in page
    assert await world.present() == 0
    row = await world.services.db.fetchone("SELECT COUNT(*) FROM participants")
    assert row[0] == 0


async def test_too_early_gets_one_sentence_and_changes_nothing(world: World) -> None:
    action = await tournament(world.services, datetime.now(UTC) + timedelta(days=3))
    world.discord.members.add(LEA)
    _, page = await world.scan(action.code, LEA)
    assert f"L'action {action.code} n'a pas encore commencé" in html.unescape(page)
    assert await world.present() == 0
    for wrong in ("/a/NOPE-0000/ici", "/a/%3Cscript%3E/ici"):
        assert (await world.client.get(wrong, allow_redirects=False)).status == 404
    await world.services.db.write(actions.cancel_action, action.code, datetime.now(UTC))
    assert (await world.client.get(f"/a/{action.code}/ici", allow_redirects=False)).status == 404


async def test_without_oauth_the_page_shows_the_command(tmp_path: Path) -> None:
    services = await open_services(tmp_path, PUBLIC_BASE_URL=PUBLIC, DISCORD_GUILD_ID=GUILD)
    client: TestClient[Any, Any] = TestClient(TestServer(web_app(services), host="127.0.0.1"))
    await client.start_server()
    try:
        action = await tournament(services, datetime.now(UTC) + timedelta(minutes=30))
        page = await (await client.get(f"/a/{action.code}")).text()
        assert f"/jesuisla {action.code}" in page and "/ici" not in page
        assert f'href="https://discord.com/channels/{GUILD}"' in page
        assert "par SMS" not in page  # no two-way number: no SMS check-in offered
        here = await client.get(f"/a/{action.code}/ici", allow_redirects=False)
        assert here.status == 303 and here.headers["Location"] == f"/a/{action.code}"
    finally:
        await client.close()
        await services.close()
