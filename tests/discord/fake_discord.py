"""A local fake of Discord for driving the real bot through discord.py's gateway and HTTP client.

``FakeDiscord`` is an aiohttp server on 127.0.0.1 that speaks:

* the gateway (``/gateway``, JSON text frames): HELLO, IDENTIFY -> READY + GUILD_CREATE,
  heartbeats and their ACK, RESUME -> RESUMED (or op 9 when ``resume_ok`` is false), member
  chunk requests (op 8), and op 7 RECONNECT on demand; any raw dispatch (``INTERACTION_CREATE``,
  ``GUILD_MEMBER_ADD``, ``MESSAGE_CREATE``...) is sent with :meth:`FakeDiscord.dispatch`;
* REST (``/api/v10/...``): every request is recorded (method, path, query, JSON body, uploaded
  file names) and answered from a small model of one guild (members, roles, channels, invites,
  messages), always with ``Content-Type: application/json`` exactly as Discord does (discord.py
  only decodes that exact value). :meth:`FakeDiscord.respond` queues other answers for matching
  requests: a 429 with ``Retry-After`` (and the ``Via`` header discord.py needs to believe it),
  a 403 with a Discord error code, a network failure...

The ``fake_discord`` fixture points ``discord.http.Route.BASE`` and
``DiscordWebSocket.DEFAULT_GATEWAY`` at the server; ``live_bot`` runs the real ``RelaisBot``
(with the real staff notifier and invite maker) against it until it is ready. Interactions are
sent with :meth:`FakeDiscord.slash` / :meth:`FakeDiscord.click` / :meth:`FakeDiscord.submit_modal`,
which return an :class:`Exchange` whose :meth:`Exchange.wait` waits for the REST calls the
interaction causes. Waits use generous timeouts (``WAIT``); nothing measures durations.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import discord
import pytest
import yarl
from aiohttp import WSMsgType, web
from discord.gateway import DiscordWebSocket
from discord.http import Route

WAIT = 10.0  # seconds any wait may take before a test fails: generous, never a measure

GUILD_ID = 900_000_000_000_000_001
APP_ID = 900_000_000_000_000_002
BOT_ID = APP_ID
STAFF_ROLE_ID = 900_000_000_000_000_003
BOT_ROLE_ID = 900_000_000_000_000_004
GENERAL_ID = 900_000_000_000_000_010
STAFF_CHANNEL_ID = 900_000_000_000_000_011

# Permission bits (https://discord.com/developers/docs/topics/permissions)
P_CREATE_INVITE = 1 << 0
P_MANAGE_CHANNELS = 1 << 4
P_MANAGE_GUILD = 1 << 5
P_VIEW_CHANNEL = 1 << 10
P_SEND_MESSAGES = 1 << 11
P_EMBED_LINKS = 1 << 14
P_ATTACH_FILES = 1 << 15
P_READ_HISTORY = 1 << 16
P_MANAGE_EVENTS = 1 << 33
BOT_PERMISSIONS = (
    P_CREATE_INVITE
    | P_MANAGE_CHANNELS
    | P_MANAGE_GUILD
    | P_VIEW_CHANNEL
    | P_SEND_MESSAGES
    | P_EMBED_LINKS
    | P_ATTACH_FILES
    | P_READ_HISTORY
    | P_MANAGE_EVENTS
)
EVERYONE_PERMISSIONS = P_VIEW_CHANNEL | P_SEND_MESSAGES | P_READ_HISTORY | P_CREATE_INVITE

# Application flags: GATEWAY_GUILD_MEMBERS (1 << 14), limited (1 << 15)
FLAG_MEMBERS = 1 << 14
FLAG_MEMBERS_LIMITED = 1 << 15


def now_iso() -> str:
    """A Discord timestamp."""
    return datetime.now(UTC).isoformat()


@dataclass
class RestCall:
    """One REST request the bot made."""

    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    json: Any = None
    files: list[str] = field(default_factory=list)
    status: int = 200

    def __repr__(self) -> str:
        return f"<{self.method} {self.path} -> {self.status}>"


@dataclass
class Override:
    """A queued answer for requests matching ``method`` and the ``path`` regex."""

    method: str
    path: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]
    times: int
    disconnect: bool = False


@dataclass
class Member:
    """A guild member of the model."""

    id: int
    name: str
    roles: list[int] = field(default_factory=list)
    bot: bool = False
    joined_at: str = field(default_factory=now_iso)

    def user(self) -> dict[str, Any]:
        return user_payload(self.id, self.name, bot=self.bot)

    def payload(self) -> dict[str, Any]:
        return {
            "user": self.user(),
            "nick": None,
            "roles": [str(r) for r in self.roles],
            "joined_at": self.joined_at,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
        }


@dataclass
class Invite:
    """An invite of the model."""

    code: str
    channel_id: int
    inviter_id: int
    uses: int = 0
    max_uses: int = 0
    max_age: int = 0
    created_at: str = field(default_factory=now_iso)


def user_payload(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    """A Discord user object."""
    return {
        "id": str(user_id),
        "username": name,
        "global_name": name,
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
    }


class Exchange:
    """An interaction sent to the bot and the REST calls made with its token."""

    def __init__(self, fake: FakeDiscord, interaction_id: int, token: str) -> None:
        self.fake = fake
        self.id = interaction_id
        self.token = token

    @property
    def calls(self) -> list[RestCall]:
        """The calls so far: the callback (``/interactions/ID/TOKEN/callback``), follow-ups."""
        return [c for c in self.fake.requests if self.token in c.path]

    async def wait(self, count: int = 2) -> list[RestCall]:
        """Wait until the interaction caused at least ``count`` REST calls; return them."""
        await self.fake.wait_until(lambda: len(self.calls) >= count)
        return self.calls

    @property
    def callback(self) -> RestCall:
        """The interaction response (the first call)."""
        return next(c for c in self.calls if c.path.endswith("/callback"))

    @property
    def followups(self) -> list[dict[str, Any]]:
        """The follow-up messages' bodies (``POST /webhooks/APP/TOKEN``)."""
        return [
            c.json for c in self.calls if c.method == "POST" and c.path.startswith("/webhooks/")
        ]

    @property
    def text(self) -> str:
        """Every follow-up's content, joined."""
        return "\n".join((m or {}).get("content") or "" for m in self.followups)


class FakeDiscord:
    """One fake Discord (gateway + REST) with one guild."""

    def __init__(self) -> None:
        self.requests: list[RestCall] = []
        self.overrides: list[Override] = []
        self.changed = asyncio.Condition()
        self.ids = itertools.count(910_000_000_000_000_000)
        self.guild_name = "Relais test"
        self.features: list[str] = []
        self.vanity: tuple[str, int] | None = None
        self.app_flags = FLAG_MEMBERS
        self.interactions_endpoint_url: str | None = None
        self.members_intent = True  # False: member list endpoints answer 403 (50001)
        self.resume_ok = True  # False: RESUME is refused (op 9), the bot identifies again
        self.guild_available = True
        self.everyone_permissions = EVERYONE_PERMISSIONS
        self.bot_permissions = BOT_PERMISSIONS
        self.roles: dict[int, dict[str, Any]] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.members: dict[int, Member] = {}
        self.invites: dict[str, Invite] = {}
        self.messages: dict[int, list[dict[str, Any]]] = {}
        self.dm_channels: dict[int, int] = {}  # channel id -> user id
        self.identifies = 0
        self.resumes = 0
        self.sessions: list[web.WebSocketResponse] = []
        self.ready_sent = asyncio.Event()
        self.sequence = 0
        self.command_ids: dict[str, int] = {}
        # Joins to deliver right after the next GUILD_CREATE (before the bot is ready).
        self.joins_on_connect: list[tuple[int, str, str | None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._seed()

    # ------------------------------------------------------------ the model

    def _seed(self) -> None:
        self.add_role(GUILD_ID, "@everyone", self.everyone_permissions, position=0)
        self.add_role(STAFF_ROLE_ID, "Staff", 0, position=1)
        self.add_role(BOT_ROLE_ID, "Relais", self.bot_permissions, position=2, managed=True)
        self.add_channel(GENERAL_ID, "general")
        self.add_channel(STAFF_CHANNEL_ID, "staff")
        self.members[BOT_ID] = Member(BOT_ID, "Relais", [BOT_ROLE_ID], bot=True)

    def add_role(
        self, role_id: int, name: str, permissions: int, *, position: int, managed: bool = False
    ) -> None:
        self.roles[role_id] = {
            "id": str(role_id),
            "name": name,
            "permissions": str(permissions),
            "position": position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": managed,
            "mentionable": False,
            "flags": 0,
        }

    def add_channel(self, channel_id: int, name: str) -> None:
        self.channels[channel_id] = {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(GUILD_ID),
            "name": name,
            "position": len(self.channels),
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
        }

    def add_member(self, user_id: int, name: str, *, staff: bool = False) -> Member:
        member = Member(user_id, name, [STAFF_ROLE_ID] if staff else [])
        self.members[user_id] = member
        return member

    def add_invite(
        self, code: str, inviter_id: int, *, uses: int = 0, max_uses: int = 0, max_age: int = 0
    ) -> Invite:
        invite = Invite(code, GENERAL_ID, inviter_id, uses, max_uses, max_age)
        self.invites[code] = invite
        return invite

    def set_bot_permissions(self, permissions: int) -> None:
        self.bot_permissions = permissions
        self.roles[BOT_ROLE_ID]["permissions"] = str(permissions)

    def guild_payload(self) -> dict[str, Any]:
        """The guild as in GUILD_CREATE (members included)."""
        return {
            "id": str(GUILD_ID),
            "name": self.guild_name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": "1",  # someone else: the bot has only its role's permissions
            "region": "europe",
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": list(self.roles.values()),
            "emojis": [],
            "stickers": [],
            "features": self.features,
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": str(GENERAL_ID),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "vanity_url_code": self.vanity[0] if self.vanity else None,
            "premium_tier": 0,
            "preferred_locale": "fr",
            "public_updates_channel_id": None,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "joined_at": now_iso(),
            "large": False,
            "unavailable": False,
            "member_count": len(self.members),
            "voice_states": [],
            "members": [m.payload() for m in self.members.values()],
            "channels": list(self.channels.values()),
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def partial_guild(self) -> dict[str, Any]:
        return {
            "id": str(GUILD_ID),
            "name": self.guild_name,
            "icon": None,
            "splash": None,
            "banner": None,
            "description": None,
            "features": self.features,
            "verification_level": 0,
            "vanity_url_code": None,
            "nsfw_level": 0,
            "premium_subscription_count": 0,
        }

    def invite_payload(self, invite: Invite) -> dict[str, Any]:
        channel = self.channels[invite.channel_id]
        inviter = self.members.get(invite.inviter_id)
        return {
            "type": 0,
            "code": invite.code,
            "guild": self.partial_guild(),
            "channel": {"id": channel["id"], "name": channel["name"], "type": 0},
            "inviter": inviter.user() if inviter else user_payload(invite.inviter_id, "someone"),
            "uses": invite.uses,
            "max_uses": invite.max_uses,
            "max_age": invite.max_age,
            "temporary": False,
            "created_at": invite.created_at,
        }

    def invite_event(self, invite: Invite) -> dict[str, Any]:
        """INVITE_CREATE / INVITE_DELETE data."""
        inviter = self.members.get(invite.inviter_id)
        return {
            "channel_id": str(invite.channel_id),
            "guild_id": str(GUILD_ID),
            "code": invite.code,
            "created_at": invite.created_at,
            "inviter": inviter.user() if inviter else user_payload(invite.inviter_id, "someone"),
            "max_age": invite.max_age,
            "max_uses": invite.max_uses,
            "temporary": False,
            "uses": invite.uses,
        }

    def _event_later(self, event: str, data: dict[str, Any]) -> None:
        """Gateway events that follow a REST call, as on Discord (sent after the answer)."""
        if self.sessions:
            task = asyncio.get_running_loop().create_task(
                self._send(self.sessions[-1], event, data)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def message_payload(self, channel_id: int, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(next(self.ids)),
            "channel_id": str(channel_id),
            "author": self.members[BOT_ID].user(),
            "content": body.get("content") or "",
            "timestamp": now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": body.get("embeds") or [],
            "pinned": False,
            "type": 0,
            "flags": body.get("flags") or 0,
            "components": body.get("components") or [],
        }

    # ------------------------------------------------------------ server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        for ws in list(self.sessions):
            with contextlib.suppress(Exception):
                await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_until(self, predicate: Callable[[], bool], within: float = WAIT) -> None:
        """Wait until ``predicate()`` holds (checked on every request and gateway frame)."""
        async with asyncio.timeout(within):
            async with self.changed:
                await self.changed.wait_for(predicate)

    async def next_change(self) -> None:
        """Wait for the next request or gateway frame (poll-free loops over other state)."""
        async with self.changed:
            await self.changed.wait()

    def calls(self, method: str | None = None, path: str = "") -> list[RestCall]:
        """Recorded calls, by method and a path regex (``re.search``)."""
        return [
            c
            for c in self.requests
            if (method is None or c.method == method) and re.search(path, c.path)
        ]

    async def wait_for_calls(
        self, method: str, path: str, count: int = 1, within: float = WAIT
    ) -> list[RestCall]:
        """Wait until ``count`` calls match; return the matching calls."""
        await self.wait_until(lambda: len(self.calls(method, path)) >= count, within)
        return self.calls(method, path)

    def respond(
        self,
        method: str,
        path: str,
        status: int,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
        disconnect: bool = False,
    ) -> None:
        """Answer the next ``times`` matching requests with this status and JSON body.

        ``disconnect=True`` drops the connection instead (a network error)."""
        self.overrides.append(
            Override(method, re.compile(path), status, body, headers or {}, times, disconnect)
        )

    def rate_limit(self, method: str, path: str, retry_after: float = 0.01) -> None:
        """The next matching request gets a 429 with ``Retry-After``."""
        self.respond(
            method,
            path,
            429,
            {"message": "You are being rate limited.", "retry_after": retry_after, "global": False},
            headers={
                "Retry-After": str(retry_after),
                "X-RateLimit-Scope": "user",
                "Via": "1.1 google",
            },
        )

    def forbid(self, method: str, path: str, code: int = 50013, times: int = 1) -> None:
        """The next matching requests get a 403 with a Discord error code."""
        self.respond(
            method, path, 403, {"message": "Missing Permissions", "code": code}, times=times
        )

    # ------------------------------------------------------------ REST

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body: Any = None
        files: list[str] = []
        if request.content_type == "application/json":
            body = await request.json()
        elif request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":  # type: ignore[union-attr]
                    body = json.loads(await part.text())  # type: ignore[union-attr]
                else:
                    files.append(part.filename or "")  # type: ignore[union-attr]
                    await part.read()  # type: ignore[union-attr]
        call = RestCall(request.method, path, dict(request.query), body, files)
        override = self._override(request.method, path)
        if override is not None and override.disconnect:
            call.status = 0
            self.requests.append(call)
            await self._notify()
            assert request.transport is not None
            request.transport.close()
            raise ConnectionResetError("fake network failure")
        if override is not None:
            status, payload, headers = override.status, override.body, override.headers
        else:
            try:
                status, payload = await self._route(request.method, path, call)
            except KeyError:
                status, payload = 404, {"message": "Unknown", "code": 10000}
            headers = {}
        call.status = status
        self.requests.append(call)
        await self._notify()
        if status == 204 or payload is None:
            return web.Response(status=204 if status < 300 else status, headers=headers)
        return web.Response(
            status=status,
            body=json.dumps(payload).encode(),
            headers={**headers, "Content-Type": "application/json"},
        )

    def _override(self, method: str, path: str) -> Override | None:
        for override in self.overrides:
            if override.method == method and override.path.search(path):
                override.times -= 1
                if override.times <= 0:
                    self.overrides.remove(override)
                return override
        return None

    async def _route(self, method: str, path: str, call: RestCall) -> tuple[int, Any]:
        g = str(GUILD_ID)
        body = call.json or {}
        if method == "GET" and path == "/users/@me":
            return 200, self.members[BOT_ID].user()
        if method == "GET" and path == "/oauth2/applications/@me":
            return 200, self.application()
        if method == "GET" and path == "/users/@me/guilds":
            return 200, [{**self.partial_guild(), "owner": False, "permissions": "0"}]
        if method == "GET" and path == f"/guilds/{g}":
            payload = self.guild_payload()
            payload.pop("members")
            payload.pop("channels")
            payload["approximate_member_count"] = len(self.members)
            return 200, payload
        if method == "GET" and path == f"/guilds/{g}/channels":
            return 200, list(self.channels.values())
        if method == "GET" and path == f"/guilds/{g}/roles":
            return 200, list(self.roles.values())
        if method == "GET" and path == f"/guilds/{g}/members":
            if not self.members_intent:
                return 403, {"message": "Missing Access", "code": 50001}
            after = int(call.query.get("after", "0"))
            limit = int(call.query.get("limit", "1000"))
            chosen = sorted((m for m in self.members.values() if m.id > after), key=lambda m: m.id)
            return 200, [m.payload() for m in chosen[:limit]]
        if method == "GET" and (match := re.fullmatch(rf"/guilds/{g}/members/(\d+)", path)):
            return 200, self.members[int(match[1])].payload()
        if method == "GET" and path == f"/guilds/{g}/invites":
            return 200, [self.invite_payload(i) for i in self.invites.values()]
        if method == "GET" and path == f"/guilds/{g}/vanity-url":
            code, uses = self.vanity or (None, 0)
            return 200, {"code": code, "uses": uses}
        if method == "POST" and (match := re.fullmatch(r"/channels/(\d+)/invites", path)):
            invite = self.add_invite(
                f"c{next(self.ids) % 10**8:08d}",
                BOT_ID,
                max_uses=int(body.get("max_uses") or 0),
                max_age=int(body.get("max_age") or 0),
            )
            invite.channel_id = int(match[1])
            self._event_later("INVITE_CREATE", self.invite_event(invite))
            return 200, self.invite_payload(invite)
        if method == "DELETE" and (match := re.fullmatch(r"/invites/([\w-]+)", path)):
            invite = self.invites.pop(match[1])
            self._event_later("INVITE_DELETE", self.invite_event(invite))
            return 200, self.invite_payload(invite)
        if method == "GET" and (match := re.fullmatch(r"/users/(\d+)", path)):
            member = self.members.get(int(match[1]))
            return 200, member.user() if member else user_payload(int(match[1]), "someone")
        if method == "POST" and path == "/users/@me/channels":
            user_id = int(body["recipient_id"])
            channel_id = next(
                (c for c, u in self.dm_channels.items() if u == user_id), next(self.ids)
            )
            self.dm_channels[channel_id] = user_id
            member = self.members.get(user_id)
            recipient = member.user() if member else user_payload(user_id, "someone")
            return 200, {
                "id": str(channel_id),
                "type": 1,
                "recipients": [recipient],
                "last_message_id": None,
            }
        if method == "POST" and (match := re.fullmatch(r"/channels/(\d+)/messages", path)):
            channel_id = int(match[1])
            message = self.message_payload(channel_id, body)
            self.messages.setdefault(channel_id, []).append(message)
            return 200, message
        if method == "POST" and (match := re.fullmatch(r"/channels/(\d+)/typing", path)):
            return 204, None
        if method == "POST" and (
            match := re.fullmatch(r"/interactions/(\d+)/([\w.-]+)/callback", path)
        ):
            kind = int(body.get("type", 0))
            return 200, {
                "interaction": {
                    "id": match[1],
                    "type": 2,
                    "response_message_loading": kind == 5,
                    "response_message_ephemeral": bool(
                        (body.get("data") or {}).get("flags", 0) & 64
                    ),
                },
                "resource": {"type": kind},
            }
        if method == "POST" and (match := re.fullmatch(r"/webhooks/(\d+)/([\w.-]+)", path)):
            return 200, self.message_payload(GENERAL_ID, body)
        if method in {"PATCH", "GET"} and re.fullmatch(r"/webhooks/\d+/[\w.-]+/messages/\S+", path):
            return 200, self.message_payload(GENERAL_ID, body)
        if method == "DELETE" and re.fullmatch(r"/webhooks/\d+/[\w.-]+/messages/\S+", path):
            return 204, None
        if method == "PUT" and re.fullmatch(
            rf"/applications/{APP_ID}(/guilds/\d+)?/commands", path
        ):
            return 200, [self._command_payload(c) for c in body]
        if method == "GET" and re.fullmatch(
            rf"/applications/{APP_ID}(/guilds/\d+)?/commands", path
        ):
            return 200, []
        raise KeyError(path)

    def _command_payload(self, command: dict[str, Any]) -> dict[str, Any]:
        command_id = self.command_ids.setdefault(command["name"], next(self.ids))
        return {
            "id": str(command_id),
            "application_id": str(APP_ID),
            "version": "1",
            "default_member_permissions": None,
            "type": 1,
            "nsfw": False,
            "description": "",
            "dm_permission": True,
            "contexts": None,
            "integration_types": [0],
            **command,
        }

    def application(self) -> dict[str, Any]:
        return {
            "id": str(APP_ID),
            "name": "Relais",
            "icon": None,
            "description": "",
            "rpc_origins": [],
            "bot_public": False,
            "bot_require_code_grant": False,
            "owner": user_payload(1, "owner"),
            "summary": "",
            "verify_key": "0" * 64,
            "team": None,
            "flags": self.app_flags,
            "interactions_endpoint_url": self.interactions_endpoint_url,
            "approximate_guild_count": 1,
        }

    # ------------------------------------------------------------ gateway

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sessions.append(ws)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                payload = json.loads(msg.data)
                await self._on_frame(ws, payload)
                await self._notify()
        finally:
            if ws in self.sessions:
                self.sessions.remove(ws)
            await self._notify()
        return ws

    async def _on_frame(self, ws: web.WebSocketResponse, payload: dict[str, Any]) -> None:
        op = payload.get("op")
        if op == 1:  # heartbeat
            await ws.send_json({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:  # identify
            self.identifies += 1
            self.intents = payload["d"].get("intents")
            await self._send(ws, "READY", self.ready_payload())
            if self.guild_available:
                await self._send(ws, "GUILD_CREATE", self.guild_payload())
            self.ready_sent.set()
            pending, self.joins_on_connect = self.joins_on_connect, []
            for user_id, name, via in pending:
                await self._join(ws, user_id, name, via)
        elif op == 6:  # resume
            self.resumes += 1
            if self.resume_ok:
                await self._send(ws, "RESUMED", {})
            else:
                await ws.send_json({"op": 9, "d": False, "s": None, "t": None})
        elif op == 8:  # request guild members
            data = payload["d"]
            await self._send(
                ws,
                "GUILD_MEMBERS_CHUNK",
                {
                    "guild_id": str(GUILD_ID),
                    "members": [m.payload() for m in self.members.values()],
                    "chunk_index": 0,
                    "chunk_count": 1,
                    "nonce": data.get("nonce"),
                },
            )

    def ready_payload(self) -> dict[str, Any]:
        return {
            "v": 10,
            "user": self.members[BOT_ID].user(),
            "guilds": [{"id": str(GUILD_ID), "unavailable": True}],
            "session_id": f"session{self.identifies}",
            "resume_gateway_url": f"ws://127.0.0.1:{self.port}/gateway",
            "application": {"id": str(APP_ID), "flags": self.app_flags},
            "private_channels": [],
        }

    async def _send(self, ws: web.WebSocketResponse, event: str, data: dict[str, Any]) -> None:
        self.sequence += 1
        await ws.send_json({"op": 0, "t": event, "s": self.sequence, "d": data})

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a raw dispatch on the current gateway session."""
        await self.wait_until(lambda: bool(self.sessions))
        await self._send(self.sessions[-1], event, data)

    async def reconnect(self) -> None:
        """Op 7: ask the bot to reconnect (it resumes, or identifies again if refused)."""
        await self.wait_until(lambda: bool(self.sessions))
        await self.sessions[-1].send_json({"op": 7, "d": None, "s": None, "t": None})

    # ------------------------------------------------------------ events

    async def join(self, user_id: int, name: str, *, via: str | None = None) -> Member:
        """A member joins (through the invite ``via``, whose use count goes up)."""
        await self.wait_until(lambda: bool(self.sessions))
        return await self._join(self.sessions[-1], user_id, name, via)

    def joined_while_away(self, user_id: int, name: str, *, via: str | None = None) -> Member:
        """A member joins while the bot is not connected: no event, only counts and the list."""
        member = self.add_member(user_id, name)
        self._use(via)
        return member

    def _use(self, via: str | None) -> None:
        if via is not None:
            if via in self.invites:
                invite = self.invites[via]
                invite.uses += 1
                if invite.max_uses and invite.uses >= invite.max_uses:
                    del self.invites[via]
            elif self.vanity is not None and via == self.vanity[0]:
                self.vanity = (via, self.vanity[1] + 1)

    async def _join(
        self, ws: web.WebSocketResponse, user_id: int, name: str, via: str | None
    ) -> Member:
        member = self.add_member(user_id, name)
        self._use(via)
        await self._send(ws, "GUILD_MEMBER_ADD", {**member.payload(), "guild_id": str(GUILD_ID)})
        return member

    def _member_or_user(self, user_id: int, guild: bool) -> dict[str, Any]:
        member = self.members.get(user_id) or Member(user_id, f"user{user_id}")
        if not guild:
            return {"user": member.user()}
        permissions = self.everyone_permissions
        for role in member.roles:
            permissions |= int(self.roles[role]["permissions"])
        return {"member": {**member.payload(), "permissions": str(permissions)}}

    async def interact(
        self,
        kind: int,
        data: dict[str, Any],
        user_id: int,
        *,
        guild: bool = True,
        locale: str = "fr",
        extra: dict[str, Any] | None = None,
    ) -> Exchange:
        """Send a raw INTERACTION_CREATE; the returned exchange sees the calls it causes."""
        interaction_id = next(self.ids)
        token = f"tok{interaction_id}"
        channel: dict[str, Any]
        if guild:
            channel = self.channels[GENERAL_ID]
        else:
            dm_id = next((c for c, u in self.dm_channels.items() if u == user_id), next(self.ids))
            self.dm_channels[dm_id] = user_id
            channel = {"id": str(dm_id), "type": 1, "recipients": []}
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(APP_ID),
            "type": kind,
            "data": data,
            "channel_id": channel["id"],
            "channel": channel,
            "token": token,
            "version": 1,
            "locale": locale,
            "app_permissions": str(self.bot_permissions),
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(GUILD_ID)}
            if guild
            else {"1": str(user_id)},
            "context": 0 if guild else 1,
            "attachment_size_limit": 10 * 1024 * 1024,
            **self._member_or_user(user_id, guild),
            **(extra or {}),
        }
        if guild:
            payload["guild_id"] = str(GUILD_ID)
            payload["guild_locale"] = "fr"
            payload["guild"] = {"id": str(GUILD_ID), "locale": "fr", "features": self.features}
        exchange = Exchange(self, interaction_id, token)
        await self.dispatch("INTERACTION_CREATE", payload)
        return exchange

    async def slash(
        self,
        name: str,
        user_id: int,
        options: dict[str, str] | None = None,
        *,
        guild: bool = True,
        locale: str = "fr",
    ) -> Exchange:
        """A slash command with string options, as a client sends it."""
        data = {
            "id": str(self.command_ids.setdefault(name, next(self.ids))),
            "name": name,
            "type": 1,
            "options": [{"name": k, "type": 3, "value": v} for k, v in (options or {}).items()],
        }
        if guild:
            data["guild_id"] = str(GUILD_ID)
        return await self.interact(2, data, user_id, guild=guild, locale=locale)

    async def click(
        self, custom_id: str, user_id: int, *, guild: bool = True, locale: str = "fr"
    ) -> Exchange:
        """A button click on a message the bot sent (maybe before a restart)."""
        message = self.message_payload(GENERAL_ID, {"content": "…"})
        message["components"] = [
            {
                "type": 1,
                "id": 1,
                "components": [
                    {"type": 2, "id": 2, "style": 2, "label": "…", "custom_id": custom_id}
                ],
            }
        ]
        return await self.interact(
            3,
            {"custom_id": custom_id, "component_type": 2},
            user_id,
            guild=guild,
            locale=locale,
            extra={"message": message},
        )

    async def submit_modal(
        self, modal: dict[str, Any], user_id: int, values: Iterable[Any], *, locale: str = "fr"
    ) -> Exchange:
        """Submit a modal the bot opened (``modal``: the callback's ``data``): ``values`` fill
        its inputs in order (text inputs: strings; checkboxes: booleans)."""
        queue = list(values)

        def answer(component: dict[str, Any]) -> dict[str, Any] | None:
            kind = component["type"]
            if kind == 1:
                inner = [answer(c) for c in component["components"]]
                return {"type": 1, "components": [c for c in inner if c]}
            if kind == 18:
                inner_answer = answer(component["component"])
                return {"type": 18, "id": component.get("id"), "component": inner_answer}
            if kind == 4:
                return {"type": 4, "custom_id": component["custom_id"], "value": queue.pop(0)}
            if kind == 23:
                return {"type": 23, "custom_id": component["custom_id"], "value": queue.pop(0)}
            if kind == 10:
                return {"type": 10, "id": component.get("id")}
            return None

        components = [c for c in (answer(c) for c in modal["components"]) if c]
        return await self.interact(
            5,
            {"custom_id": modal["custom_id"], "components": components},
            user_id,
            locale=locale,
        )

    async def direct_message(self, user_id: int, content: str) -> None:
        """A DM from a user to the bot (MESSAGE_CREATE without a guild)."""
        dm_id = next((c for c, u in self.dm_channels.items() if u == user_id), next(self.ids))
        self.dm_channels[dm_id] = user_id
        member = self.members.get(user_id) or Member(user_id, f"user{user_id}")
        await self.dispatch(
            "MESSAGE_CREATE",
            {
                "id": str(next(self.ids)),
                "channel_id": str(dm_id),
                "author": member.user(),
                "content": content,
                "timestamp": now_iso(),
                "edited_timestamp": None,
                "tts": False,
                "mention_everyone": False,
                "mentions": [],
                "mention_roles": [],
                "attachments": [],
                "embeds": [],
                "pinned": False,
                "type": 0,
                "flags": 0,
                "components": [],
            },
        )

    def sent_to(self, channel_id: int) -> list[dict[str, Any]]:
        """Message bodies the bot posted in a channel (a DM channel included)."""
        return [
            c.json or {}
            for c in self.requests
            if c.method == "POST"
            and c.path == f"/channels/{channel_id}/messages"
            and c.status < 300
        ]

    def dms_to(self, user_id: int) -> list[dict[str, Any]]:
        """Message bodies the bot sent to a user in DM."""
        return [
            m
            for channel_id, owner in self.dm_channels.items()
            if owner == user_id
            for m in self.sent_to(channel_id)
        ]

    async def wait_for_dm(self, user_id: int, count: int = 1) -> list[dict[str, Any]]:
        await self.wait_until(lambda: len(self.dms_to(user_id)) >= count)
        return self.dms_to(user_id)

    async def wait_for_staff_post(self, count: int = 1) -> list[dict[str, Any]]:
        await self.wait_until(lambda: len(self.sent_to(STAFF_CHANNEL_ID)) >= count)
        return self.sent_to(STAFF_CHANNEL_ID)


# ---------------------------------------------------------------- fixtures


@pytest.fixture
async def fake_discord(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    """A running fake Discord; discord.py's REST base and gateway point at it."""
    fake = FakeDiscord()
    await fake.start()
    monkeypatch.setattr(Route, "BASE", f"{fake.url}/api/v10")
    monkeypatch.setattr(
        DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(f"ws://127.0.0.1:{fake.port}/gateway")
    )
    try:
        yield fake
    finally:
        await fake.close()


class LiveBot:
    """A real RelaisBot connected to a FakeDiscord, with its app; restartable.

    It is started by ``bot.bootstrap.DiscordRun``, the Discord side of ``relais run`` itself:
    the same channels attached to the delivery router, the outbox flushed at READY and by the
    minute loop. Only the web server is left out (``serve_web`` adds it on the same app).
    """

    def __init__(self, fake: FakeDiscord, settings: Any, db_path: Path) -> None:
        self.fake = fake
        self.settings = settings
        self.db_path = db_path
        self.run: Any = None
        self.bot: Any = None
        self.app: Any = None
        self.task: asyncio.Task[None] | None = None
        self.sms: list[tuple[str, str]] = []
        self.tick = 60.0  # the minute loop's period (``relais run``: a minute)

    async def start(self, *, wait_ready: bool = True) -> Any:
        from bot.bootstrap import DiscordRun

        outer = self

        class Transport:
            async def send(self, to: str, body: str, *, status_callback: str | None = None) -> str:
                outer.sms.append((to, body))
                return f"SM{len(outer.sms)}"

        self.run = await DiscordRun.open(
            self.settings, self.db_path, transport=Transport(), guild_ready_timeout=0.05
        )
        self.app, self.bot = self.run.app, self.run.bot

        async def no_identify_pause(shard_id: int | None, *, initial: bool = False) -> None:
            """discord.py waits 5 s before re-identifying (Discord's limit); not here."""

        self.bot.before_identify_hook = no_identify_pause
        self.task = self.run.start("fake-token", tick=self.tick)
        if wait_ready:
            await self.ready()
        return self.bot

    async def ready(self) -> None:
        """Wait until the bot is ready (or fail with the gateway task's error)."""
        assert self.task is not None and self.bot is not None
        waiter = asyncio.create_task(self.bot.wait_until_ready())
        done, _ = await asyncio.wait(
            {waiter, self.task}, timeout=WAIT, return_when="FIRST_COMPLETED"
        )
        if waiter not in done:
            waiter.cancel()
            if self.task in done:
                self.task.result()
            raise AssertionError("the bot did not become ready")

    async def stop(self) -> None:
        if self.run is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(WAIT):
                    await self.run.close()
        if self.app is not None:
            await self.app.close()
        self.run = self.bot = self.app = self.task = None

    async def restart(self) -> Any:
        await self.stop()
        return await self.start()


def live_settings(**overrides: Any) -> Any:
    from bot.settings import Settings, parse_quiet_hours

    values: dict[str, Any] = {
        "discord_token": "fake-token",
        "discord_guild_id": GUILD_ID,
        "discord_staff_role": "Staff",
        "discord_staff_channel": "staff",
        "sms_quiet_hours": parse_quiet_hours(""),
        "secret": "test-secret",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def live_bot_settings() -> Any:
    """Settings of the live bot (override this fixture to change them)."""
    return live_settings()


@pytest.fixture
def live_tick() -> float:
    """The period of the live bot's minute loop (parametrize it to see the loop at work)."""
    return 60.0


@pytest.fixture
async def live(
    fake_discord: FakeDiscord, live_bot_settings: Any, live_tick: float, tmp_path: Path
) -> AsyncIterator[LiveBot]:
    """The real RelaisBot, ready, against the fake Discord."""
    runner = LiveBot(fake_discord, live_bot_settings, tmp_path / "relais.db")
    runner.tick = live_tick
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


# so that `discord` stays imported for type checkers reading fixtures' annotations
__all__ = [
    "FakeDiscord",
    "LiveBot",
    "discord",
    "fake_discord",
    "live",
    "live_bot_settings",
    "live_tick",
]
