"""Builders for the landing page tests: the app, members and campaigns, a fake Discord API."""

from __future__ import annotations

import asyncio
import base64
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import App, build_app
from bot.landing import RateLimiter, setup_landing
from bot.ports import Reply
from bot.settings import load_settings
from bot.web import create_app
from referrals import codes
from referrals.service import insert_participant
from referrals.store import now_iso

GUILD = "900000000000000001"
BOT_TOKEN = "bot-token-for-tests"
CLIENT_ID = "111111111111111111"
CLIENT_SECRET = "client-secret-for-tests"


@dataclass
class Recorder:
    """Records staff posts (the notifier) and delivered join replies."""

    posts: list[Reply] = field(default_factory=list)
    delivered: list[Reply] = field(default_factory=list)

    async def notify_staff(self, reply: Reply) -> None:
        """Record a staff post."""
        self.posts.append(reply)

    async def deliver(self, replies: list[Reply]) -> None:
        """Record the replies of a join."""
        self.delivered.extend(replies)


class NoTransport:
    """No SMS leaves during these tests."""

    async def send(self, to: str, body: str, *, status_callback: str | None = None) -> str:
        """Never called by the landing page."""
        raise AssertionError("no SMS expected")


async def open_services(tmp_path: Path, recorder: Recorder, **env: str) -> App:
    """The services over a fresh database, with ``env`` over a clean environment."""
    base = {"RELAIS_SECRET": "test-secret", "SMS_QUIET_HOURS": ""}
    base.update(env)
    settings = load_settings(base, dotenv=None)
    return await build_app(
        settings, tmp_path / "relais.db", transport=NoTransport(), notifier=recorder
    )


def make_app(
    services: App, recorder: Recorder, *, rate: int = 30, per: float = 60.0
) -> web.Application:
    """The web app of ``relais serve`` with the landing routes."""
    app = create_app(
        settings=services.settings,
        texts=services.texts,
        db=services.db,
        sms=services.sms,
        conversation=services.conversation,
        router=services.router,
    )
    setup_landing(
        app,
        conversation=services.conversation,
        deliver=recorder.deliver,
        limiter=RateLimiter(rate, per),
    )
    return app


async def add_member(services: App, name: str, discord_id: str | None = None) -> tuple[int, str]:
    """A member with a personal code: (participant id, code in display form)."""

    def run(conn: Any) -> tuple[int, str]:
        person = insert_participant(
            conn, joined_at=now_iso(), display_name=name, discord_id=discord_id
        )
        code = codes.new_code()
        conn.execute("UPDATE participants SET code = ? WHERE id = ?", (code, person.id))
        return person.id, codes.format_code(code)

    return await services.db.write(run)


@asynccontextmanager
async def client_for(app: web.Application) -> AsyncIterator[TestClient[Any, Any]]:
    """An aiohttp test client on a real local port."""
    client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


def state_of(location: str) -> str:
    """The ``state`` parameter of an authorize URL."""
    return parse_qs(urlsplit(location).query)["state"][0]


class FakeDiscord:
    """Discord's OAuth2 and guild member endpoints, enough for the landing flow.

    Authorization code ``code-<user id>`` gives token ``tok-<user id>``. ``members`` holds the
    ids already on the server; ``race`` ids answer 404 to the member check but 204 to the add.
    """

    def __init__(self, redirect_uri: str) -> None:
        self.redirect_uri = redirect_uri
        self.members: set[str] = set()
        self.race: set[str] = set()
        self.banned: set[str] = set()
        self.added: list[str] = []
        self.fail_token = False
        self.calls: list[str] = []
        self.app = web.Application()
        self.app.router.add_post("/api/v10/oauth2/token", self.token)
        self.app.router.add_get("/api/v10/users/@me", self.me)
        self.app.router.add_get("/api/v10/guilds/{guild}/members/{user}", self.get_member)
        self.app.router.add_put("/api/v10/guilds/{guild}/members/{user}", self.put_member)
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        """Serve on a free port of 127.0.0.1; returns the API base URL."""
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/api/v10"
        return self.url

    async def stop(self) -> None:
        """Stop serving."""
        if self.runner is not None:
            await self.runner.cleanup()

    def _bot(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bot {BOT_TOKEN}":
            raise web.HTTPUnauthorized()
        if request.match_info["guild"] != GUILD:
            raise web.HTTPNotFound()

    async def token(self, request: web.Request) -> web.Response:
        self.calls.append("token")
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        form = await request.post()
        if self.fail_token:
            return web.json_response({"message": "oops"}, status=503)
        if (
            request.headers.get("Authorization") != expected
            or form.get("grant_type") != "authorization_code"
            or form.get("redirect_uri") != self.redirect_uri
            or not str(form.get("code", "")).startswith("code-")
        ):
            return web.json_response({"error": "invalid_grant"}, status=400)
        user = str(form["code"])[len("code-") :]
        return web.json_response(
            {
                "access_token": f"tok-{user}",
                "token_type": "Bearer",
                "expires_in": 604800,
                "scope": "identify guilds.join",
            }
        )

    async def me(self, request: web.Request) -> web.Response:
        self.calls.append("me")
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer tok-"):
            raise web.HTTPUnauthorized()
        user = auth[len("Bearer tok-") :]
        return web.json_response(
            {"id": user, "username": f"user{user[-4:]}", "global_name": f"Jeune {user[-4:]} X"}
        )

    async def get_member(self, request: web.Request) -> web.Response:
        self._bot(request)
        self.calls.append("get_member")
        user = request.match_info["user"]
        if user in self.members:
            return web.json_response({"user": {"id": user}})
        return web.json_response({"message": "Unknown Member", "code": 10007}, status=404)

    async def put_member(self, request: web.Request) -> web.Response:
        self._bot(request)
        self.calls.append("put_member")
        user = request.match_info["user"]
        body = await request.json()
        if body.get("access_token") != f"tok-{user}":
            return web.json_response({"message": "Invalid OAuth2 access token"}, status=403)
        if user in self.banned:
            return web.json_response({"message": "banned", "code": 40007}, status=403)
        await asyncio.sleep(0.01)  # let concurrent joins interleave
        if user in self.members or user in self.race:
            return web.Response(status=204)
        self.members.add(user)
        self.added.append(user)
        return web.json_response({"user": {"id": user}}, status=201)


def read_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of an 8-bit, non-interlaced RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and color in (2, 6) and interlace == 0, "unsupported PNG"
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    offset = 0
    for _ in range(height):
        kind, line = raw[offset], bytearray(raw[offset + 1 : offset + 1 + stride])
        offset += 1 + stride
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + pred) & 0xFF
        previous = line
        if channels == 4:
            rgb = bytearray()
            for i in range(0, stride, 4):
                rgb += line[i : i + 3]
            rows.append(bytes(rgb))
        else:
            rows.append(bytes(line))
    return width, height, rows
