"""A fake Twilio REST API on 127.0.0.1, driven through the real ``twilio`` library.

It checks HTTP Basic auth, records every request's form fields, and answers from a script of
programmable responses (201 by default): an error status with a Twilio error code, 429 or 503
before a success, 21610 (recipient unsubscribed), or a request that hangs until the server closes.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "fake-auth-token-0123456789"


@dataclass
class Scripted:
    """One programmed answer."""

    status: int = 201
    code: int | None = None
    message: str = ""
    hang: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Recorded:
    """One request the fake received."""

    path: str
    form: dict[str, str]
    authorized: bool


class FakeTwilio:
    """The fake API; ``base_url`` is what ``TWILIO_API_URL`` should be set to."""

    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.requests: list[Recorded] = []
        self.script: list[Scripted] = []
        self._sids = itertools.count(1)
        self._release = asyncio.Event()
        app = web.Application()
        self.price: str | None = "-0.07600"  # what a fetched message costs (None: not yet set)
        self.created: dict[str, dict[str, Any]] = {}
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create)
        app.router.add_get("/2010-04-01/Accounts/{sid}/Messages/{message}.json", self._fetch)
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def base_url(self) -> str:
        """Root URL of the fake API."""
        return str(self.server.make_url("")).rstrip("/")

    async def start(self) -> FakeTwilio:
        """Start listening."""
        await self.server.start_server()
        return self

    async def close(self) -> None:
        """Release hanging requests and stop."""
        self._release.set()
        await self.server.close()

    # ---------------------------------------------------------------- programming

    def then(self, status: int = 201, **kwargs: Any) -> FakeTwilio:
        """Append one answer to the script."""
        self.script.append(Scripted(status, **kwargs))
        return self

    def then_rate_limited(self, times: int = 1) -> FakeTwilio:
        """429 Too Many Requests, ``times`` times."""
        for _ in range(times):
            self.then(429, code=20429, message="Too Many Requests", headers={"Retry-After": "0"})
        return self

    def then_unavailable(self, times: int = 1) -> FakeTwilio:
        """503 Service Unavailable, ``times`` times."""
        for _ in range(times):
            self.then(503, code=20503, message="Service Unavailable")
        return self

    def then_unsubscribed(self) -> FakeTwilio:
        """Twilio error 21610: the recipient replied STOP."""
        return self.then(400, code=21610, message="Attempt to send to unsubscribed recipient")

    def then_hang(self) -> FakeTwilio:
        """A request that never gets an answer."""
        return self.then(hang=True)

    @staticmethod
    def segments(body: str) -> int:
        """Segments as Twilio bills a plain GSM-7 text: 160 characters, or 153 per part."""
        return 1 if len(body) <= 160 else -(-len(body) // 153)

    @property
    def messages(self) -> list[dict[str, str]]:
        """Form fields of the authorized requests."""
        return [r.form for r in self.requests if r.authorized and r.path.endswith("/Messages.json")]

    # ---------------------------------------------------------------- the API

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == self.account_sid and password == self.auth_token

    async def _create(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        authorized = self._authorized(request)
        self.requests.append(Recorded(request.path, form, authorized))
        if not authorized or request.match_info["sid"] != self.account_sid:
            return web.json_response(
                {"code": 20003, "message": "Authenticate", "status": 401}, status=401
            )
        if "To" not in form or not ("From" in form or "MessagingServiceSid" in form):
            return web.json_response(
                {"code": 21604, "message": "A 'To' and a sender are required", "status": 400},
                status=400,
            )
        step = self.script.pop(0) if self.script else Scripted()
        if step.hang:
            await self._release.wait()
            return web.json_response({}, status=504)
        if step.status >= 300:
            return web.json_response(
                {"code": step.code, "message": step.message, "status": step.status},
                status=step.status,
                headers=step.headers,
            )
        sid = f"SM{next(self._sids):032x}"
        self.created[sid] = resource = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": form["To"],
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form.get("Body", ""),
            "status": "queued",
            "num_segments": str(self.segments(form.get("Body", ""))),
            "price": None,
            "price_unit": "EUR",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        return web.json_response(resource, status=step.status)

    async def _fetch(self, request: web.Request) -> web.Response:
        authorized = self._authorized(request)
        self.requests.append(Recorded(request.path, {}, authorized))
        if not authorized:
            return web.json_response(
                {"code": 20003, "message": "Authenticate", "status": 401}, status=401
            )
        resource = self.created.get(request.match_info["message"])
        if resource is None:
            return web.json_response(
                {"code": 20404, "message": "Not found", "status": 404}, status=404
            )
        return web.json_response({**resource, "status": "delivered", "price": self.price})
