"""The personal link's landing page, ``/r/CODE``, and joining through Discord OAuth2 (issue 11).

``GET /r/CODE`` says who invites (first name only) and what the programme is, with a button that
starts Discord's OAuth2 (``identify guilds.join``) and a "no Discord" call-back form.
``GET /r/CODE/join`` stores a random ``state`` (with the code and an expiry) and binds it to a
cookie; ``GET /oauth/callback`` checks both, exchanges the code for a token, reads the user, and
adds them to the server with the bot token. The referral is recorded through
``Conversation.joined`` *before* the member is added, so the gateway's member-join event, however
fast, finds a known member (a rejoin) and attribution stays exact in a burst of joins.

``GET /i/TOKEN`` is the link of an SMS invitation: the inviting member's landing page, whose
Discord button carries the invitation (``/r/CODE/join?i=TOKEN``, then in the state), so that a
relative who joins through it counts as a joined invitation, as one who replies by SMS does.

No personal data ever goes in a URL: only the opaque code, the invitation's random token, the
state, and Discord's one-time code.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import math
import re
import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import phonenumbers
from aiohttp import web

from bot.clientaddr import RateLimiter, client_bucket
from bot.conversation import Conversation, clean_text
from bot.logging import get_logger
from bot.pages import Pages, install_pages
from bot.ports import Person, Reply, Target
from bot.sms.phone import CALLBACK_KINDS, number_kind
from referrals import landing as domain
from referrals.landing import (
    RETENTION_DAYS,
    STATE_TTL,
    Invite,
)
from referrals.landing import invitation_joined as _invitation_joined
from referrals.landing import invitation_of as _invitation_of
from referrals.landing import new_state as _new_state
from referrals.landing import store_callback as _store_callback
from referrals.landing import take_state as _take_state

log = get_logger(__name__)

RATE = 30  # requests per IP on /r and /oauth ...
PER = 60.0  # ... per this many seconds
HTTP_TIMEOUT = 10.0
NOTIFY_TIMEOUT = 10.0
COOKIE_PREFIX = "relais_oauth_"
SCOPES = "identify guilds.join"
USER_AGENT = "DiscordBot (https://github.com/relais, 0.1)"
MAX_FIRST_NAME = 40
MAX_PHONE_INPUT = 25
_STATE_RE = re.compile(r"[A-Za-z0-9_-]{32,64}")
_OAUTH_CODE_RE = re.compile(r"[A-Za-z0-9._~-]{1,256}")
_SNOWFLAKE_RE = re.compile(r"\d{1,21}")
_NAME_STRIP = " \t.,;:!?'\"()[]{}<>@#*_~|-"

Deliver = Callable[[list[Reply]], Awaitable[None]]
# (request, the Discord user, on the server?, the action's code, language) -> the page.
OnCheckin = Callable[[web.Request, Person, bool, str, "str | None"], Awaitable[web.Response]]


class DiscordUnavailable(Exception):
    """Discord did not answer as expected (network, timeout, 5xx, 429, malformed body)."""


class DiscordRefused(Exception):
    """Discord answered, and refused to add the member (banned, too many servers...)."""


def first_name(display_name: str | None) -> str | None:
    """Only the first word of a display name (the page never shows more)."""
    words = clean_text(display_name or "").split()
    name = words[0].strip(_NAME_STRIP) if words else ""
    return name[:24] or None


def parse_phone(raw: str, regions: tuple[str, ...]) -> str | None:
    """E.164 of a valid number of an allowed region (France by default), else None."""
    text = raw.strip()
    if not text or len(text) > MAX_PHONE_INPUT:
        return None
    for region in ("FR", *regions):
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if (
            phonenumbers.is_valid_number(number)
            and phonenumbers.region_code_for_number(number) in regions
        ):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if text.startswith(("+", "00")):
            break  # an international form does not depend on the default region
    return None


def _named(invite: Invite | None) -> Invite | None:
    """The page shows only the first word of a member's display name."""
    if invite is None or invite.kind != "personal":
        return invite
    return replace(invite, first_name=first_name(invite.staff_label))


def resolve_invite(conn: sqlite3.Connection, raw: str) -> Invite | None:
    """The invite behind a code of a URL, or None when unknown."""
    return _named(domain.resolve_invite(conn, raw))


def resolve_invitation(conn: sqlite3.Connection, token: str) -> Invite | None:
    """The inviting member's invite behind the link of an invitation SMS (``/i/TOKEN``)."""
    return _named(domain.resolve_invitation(conn, token))


class Landing:
    """The landing routes and the Discord OAuth2 flow."""

    def __init__(
        self,
        *,
        conversation: Conversation,
        pages: Pages,
        deliver: Deliver | None = None,
        http: aiohttp.ClientSession | None = None,
        limiter: RateLimiter | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.conversation = conversation
        self.settings = conversation.settings
        self.db = conversation.db
        self.pages = pages
        self.deliver = deliver
        self.limiter = limiter or RateLimiter()
        self.clock = clock
        self._http = http
        self._own_http = http is None
        self._tasks: set[asyncio.Task[None]] = set()
        # An action's check-in page (``bot.checkin``) records presence after OAuth2.
        self.on_checkin: OnCheckin | None = None
        base = self.settings.public_base_url or ""
        self.https = base.startswith("https://")
        self.redirect_uri = f"{base}/oauth/callback"
        api = self.settings.discord_api_url.rstrip("/")
        self.api = api
        parts = urlsplit(api)
        # Discord's consent screen lives at the site root, not under /api/v10.
        self.authorize_url = f"{parts.scheme}://{parts.netloc}/oauth2/authorize"

    # ------------------------------------------------------------ plumbing

    def routes(self) -> list[web.RouteDef]:
        """The routes, each behind the per-IP rate limit."""
        limited = self._limited
        return [
            web.get("/r/{code}", limited(self.landing), allow_head=True),
            web.get("/i/{token}", limited(self.invitation), allow_head=True),
            web.get("/r/{code}/join", limited(self.join), allow_head=False),
            web.post("/r/{code}/rappel", limited(self.callback_request)),
            web.get("/r/{code}/merci", limited(self.thanks), allow_head=False),
            web.get("/oauth/callback", limited(self.oauth_callback), allow_head=False),
        ]

    def _limited(
        self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            wait = self.limiter.take(client_bucket(request, self.settings.trusted_proxies))
            if wait > 0:
                return self.pages.response(
                    request,
                    "ratelimited",
                    status=429,
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
            return await handler(request)

        return wrapped

    async def http(self) -> aiohttp.ClientSession:
        """The HTTP client towards Discord (created on first use)."""
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT),
                headers={"User-Agent": USER_AGENT},
            )
        return self._http

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, app: web.Application | None = None) -> None:
        """Let background posts finish (briefly), close our HTTP client."""
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=NOTIFY_TIMEOUT)
            for task in pending:
                task.cancel()
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None

    async def _invite(self, request: web.Request) -> Invite | None:
        return await self.db.read(resolve_invite, request.match_info["code"])

    def _not_found(self, request: web.Request) -> web.Response:
        return self.pages.response(request, "notfound", status=404)

    def _problem(
        self,
        request: web.Request,
        kind: str,
        status: int,
        *,
        retry: str | None = None,
        lang: str | None = None,
    ) -> web.Response:
        return self.pages.response(
            request, "problem", status=status, lang=lang, kind=kind, retry_url=retry
        )

    # ------------------------------------------------------------ pages

    def _landing_page(
        self,
        request: web.Request,
        invite: Invite,
        *,
        status: int = 200,
        values: dict[str, str] | None = None,
        errors: dict[str, bool | str] | None = None,
        join_url: str | None = None,
    ) -> web.Response:
        return self.pages.response(
            request,
            "landing",
            status=status,
            first_name=invite.first_name,
            code=invite.code,
            oauth=self.settings.discord_oauth_configured,
            join_url=join_url or f"/r/{invite.code}/join",
            invite_url=invite.invite_url,
            form_url=f"/r/{invite.code}/rappel",
            form_open=bool(errors),
            values=values or {"prenom": "", "telephone": ""},
            errors=errors or {},
            retention_days=RETENTION_DAYS,
        )

    async def landing(self, request: web.Request) -> web.StreamResponse:
        """``GET /r/CODE``: the landing page."""
        invite = await self._invite(request)
        if invite is None:
            return self._not_found(request)
        return self._landing_page(request, invite)

    async def invitation(self, request: web.Request) -> web.StreamResponse:
        """``GET /i/TOKEN``: the link of an invitation SMS, the member's landing page.

        Its Discord button carries the invitation, so that joining through it counts the
        invitation as joined (as a reply by SMS does).
        """
        token = request.match_info["token"]
        invite = await self.db.read(resolve_invitation, token)
        if invite is None:
            return self._not_found(request)
        join_url = f"/r/{invite.code}/join?{urlencode({'i': token})}"
        if request.method == "GET":
            # Opening their own link is a relative's "yes" (issue 17): they join, get a code.
            visit, replies = await self.conversation.relative_visit(token)
            if visit is not None:
                if replies and self.deliver is not None:
                    self._spawn(self._deliver(replies))
                base = self.settings.public_base_url or ""
                return self.pages.response(
                    request,
                    "relative",
                    lang=visit.lang,
                    member=invite.first_name,
                    code=visit.code,
                    share_url=f"{base}/r/{visit.code}",
                    stop_url=f"/stop/{token}",
                    join_url=join_url if self.settings.discord_oauth_configured else None,
                    invite_url=invite.invite_url,
                )
        return self._landing_page(request, invite, join_url=join_url)

    async def thanks(self, request: web.Request) -> web.StreamResponse:
        """``GET /r/CODE/merci``: after a call-back request."""
        if await self._invite(request) is None:
            return self._not_found(request)
        return self.pages.response(request, "thanks")

    # ------------------------------------------------------------ "I don't have Discord"

    def _foreign_origin(self, request: web.Request) -> bool:
        """True when a browser says the form was posted from another site."""
        origin = request.headers.get("Origin")
        if origin is None or origin == "null":  # no-referrer pages post with Origin: null
            return False
        allowed = {f"{request.scheme}://{request.host}"}
        if self.settings.public_base_url:
            parts = urlsplit(self.settings.public_base_url)
            allowed.add(f"{parts.scheme}://{parts.netloc}")
        return origin.rstrip("/") not in allowed

    def _hash(self, e164: str) -> str:
        sms = self.conversation.sms
        with contextlib.suppress(AttributeError, RuntimeError):
            return str(sms.hash(e164))
        key = (self.settings.secret or "relais").encode("utf-8")
        return hmac.new(key, e164.encode("ascii"), hashlib.sha256).hexdigest()

    async def callback_request(self, request: web.Request) -> web.StreamResponse:
        """``POST /r/CODE/rappel``: leave a first name and a number to be called back."""
        invite = await self._invite(request)
        if invite is None:
            return self._not_found(request)
        if self._foreign_origin(request):
            return self._problem(request, "forbidden", 403, retry=f"/r/{invite.code}")
        try:
            form = await request.post()
        except web.HTTPException:
            raise
        except (ValueError, UnicodeDecodeError):
            form = None
        if form is None:
            return self._landing_page(request, invite, status=400, errors={"prenom": True})
        raw_name = form.get("prenom")
        raw_phone = form.get("telephone")
        name = clean_text(raw_name)[: MAX_FIRST_NAME + 1] if isinstance(raw_name, str) else ""
        phone_text = clean_text(raw_phone)[:MAX_PHONE_INPUT] if isinstance(raw_phone, str) else ""
        errors: dict[str, bool | str] = {}
        if not name or len(name) > MAX_FIRST_NAME or not any(c.isalpha() for c in name):
            errors["prenom"] = True
        e164 = parse_phone(phone_text, self.settings.sms_allowed_countries)
        if e164 is None:
            errors["telephone"] = True
        elif number_kind(e164) not in CALLBACK_KINDS:  # premium-rate, shared-cost...: refused
            errors["telephone"] = "special"
        if form.get("consentement") != "oui":
            errors["consentement"] = True
        if errors:
            values = {"prenom": name[:MAX_FIRST_NAME], "telephone": phone_text}
            return self._landing_page(request, invite, status=400, values=values, errors=errors)
        assert e164 is not None
        lang = self.pages.lang(request)
        number, created = await self.db.write(
            _store_callback,
            first_name=name,
            phone=e164,
            phone_hash=self._hash(e164),
            invite=invite,
            lang=lang,
            now=self.clock(),
        )
        if created:
            self._spawn(self._notify_callback(number, name, e164, invite))
        raise web.HTTPSeeOther(f"/r/{invite.code}/merci")

    async def _notify_callback(self, number: int, name: str, e164: str, invite: Invite) -> None:
        settings = self.settings
        text = self.conversation.texts.render(
            "landing.staff_callback",
            settings.lang,
            number=number,
            first_name=name,
            phone=e164,
            referrer=invite.staff_label if invite.kind == "personal" else None,
            campaign=invite.staff_label if invite.kind == "campaign" else None,
            retention_days=RETENTION_DAYS,
        )
        reply = Reply(Target("channel", settings.discord_staff_channel), text, ephemeral=False)
        try:
            async with asyncio.timeout(NOTIFY_TIMEOUT):
                await self.conversation.notifier.notify_staff(reply)
        except Exception:
            log.exception("callback_staff_post_failed", request=number)

    # ------------------------------------------------------------ Discord OAuth2

    async def join(self, request: web.Request) -> web.StreamResponse:
        """``GET /r/CODE/join``: start Discord's OAuth2 with a fresh state bound to a cookie."""
        invite = await self._invite(request)
        if invite is None:
            return self._not_found(request)
        if not self.settings.discord_oauth_configured:
            raise web.HTTPSeeOther(f"/r/{invite.code}")
        state = secrets.token_urlsafe(32)
        lang = self.pages.lang(request)
        invitation_id = await self.db.read(
            _invitation_of, request.query.get("i", ""), invite.referrer_id
        )
        await self.db.write(_new_state, state, invite.code, lang, self.clock(), invitation_id)
        return self.authorize_redirect(state, SCOPES)

    def authorize_redirect(self, state: str, scopes: str) -> web.Response:
        """The redirect to Discord's consent page for ``state``, with the cookie that binds it."""
        query = urlencode(
            {
                "client_id": self.settings.discord_client_id,
                "response_type": "code",
                "redirect_uri": self.redirect_uri,
                "scope": scopes,
                "state": state,
            }
        )
        response = web.Response(
            status=302,
            headers={"Location": f"{self.authorize_url}?{query}", "Cache-Control": "no-store"},
        )
        response.set_cookie(
            cookie_name(state),
            state,
            max_age=int(STATE_TTL.total_seconds()),
            path="/oauth",
            httponly=True,
            samesite="Lax",
            secure=self.https,
        )
        return response

    async def oauth_callback(self, request: web.Request) -> web.StreamResponse:
        """``GET /oauth/callback``: check the state, add the user to the server, record the join."""
        state = request.query.get("state", "")
        if not _STATE_RE.fullmatch(state):
            return self._problem(request, "bad_state", 400)
        cookie = request.cookies.get(cookie_name(state), "")
        if not hmac.compare_digest(cookie.encode(), state.encode()):
            log.warning("oauth_state_cookie_mismatch")
            return self._problem(request, "bad_state", 400)
        taken = await self.db.write(_take_state, state)
        if taken is None:
            return self._problem(request, "bad_state", 400)
        code, lang, expires_at, invitation_id, purpose = taken
        checkin = purpose == "checkin" and self.on_checkin is not None
        retry = f"/a/{code}" if checkin else f"/r/{code}"
        if datetime.fromisoformat(expires_at) < self.clock():
            response = self._problem(request, "expired", 400, retry=retry, lang=lang)
        elif request.query.get("error"):
            response = self._problem(request, "cancelled", 200, retry=retry, lang=lang)
        elif not _OAUTH_CODE_RE.fullmatch(request.query.get("code", "")):
            response = self._problem(request, "bad_state", 400, retry=retry, lang=lang)
        elif not self.settings.discord_oauth_configured:
            response = self._problem(request, "discord", 503, retry=retry, lang=lang)
        elif checkin:
            response = await self._identify(request, request.query["code"], code, lang)
        else:
            response = await self._complete(
                request, request.query["code"], code, lang, invitation_id
            )
        response.del_cookie(cookie_name(state), path="/oauth")
        return response

    async def _complete(
        self,
        request: web.Request,
        oauth_code: str,
        code: str,
        lang: str | None,
        invitation_id: int | None = None,
    ) -> web.Response:
        retry = f"/r/{code}"
        try:
            access_token = await self._exchange(oauth_code)
            user = await self._me(access_token)
            person = Person(
                "discord",
                user["id"],
                user["name"],
                locale=user.get("locale") or lang,
            )
            already = await self._is_member(person.id)
            replies: list[Reply] = []
            if already:
                # Counted once: a known member stays as they are; an unknown one is organic.
                await self.conversation.member(person)
            else:
                # Recorded before the add, so the gateway's member-join finds a known member.
                replies = await self.conversation.joined(
                    person, f"{self.settings.public_base_url}/r/{code}"
                )
                if invitation_id is not None:
                    await self.db.write(_invitation_joined, invitation_id, person.id)
                await self._add_member(person.id, access_token)
        except DiscordRefused:
            return self._problem(request, "refused", 403, retry=retry, lang=lang)
        except DiscordUnavailable:
            return self._problem(request, "discord", 502, retry=retry, lang=lang)
        log.info("oauth_join", already=already)
        if replies and self.deliver is not None:
            self._spawn(self._deliver(replies))
        return self.pages.response(
            request,
            "joined",
            lang=lang,
            already=already,
            name=first_name(person.name),
            server_url=f"https://discord.com/channels/{self.settings.discord_guild_id}",
        )

    async def _identify(
        self, request: web.Request, oauth_code: str, code: str, lang: str | None
    ) -> web.Response:
        """A member scanned an action's QR code (``identify`` only): who they are, whether they
        are on the server; the check-in page records their presence (``on_checkin``)."""
        assert self.on_checkin is not None
        try:
            user = await self._me(await self._exchange(oauth_code))
            on_server = await self._is_member(user["id"])
        except DiscordUnavailable:
            return self._problem(request, "discord", 502, retry=f"/a/{code}", lang=lang)
        person = Person("discord", user["id"], user["name"], locale=user.get("locale") or lang)
        log.info("oauth_checkin", on_server=on_server)
        return await self.on_checkin(request, person, on_server, code, lang)

    async def _deliver(self, replies: list[Reply]) -> None:
        assert self.deliver is not None
        try:
            async with asyncio.timeout(NOTIFY_TIMEOUT):
                await self.deliver(replies)
        except Exception:
            log.exception("oauth_join_delivery_failed")

    async def _call(
        self, method: str, path: str, *, ok: tuple[int, ...], **kwargs: Any
    ) -> tuple[int, Any]:
        """One Discord API call: (status, JSON body or None); DiscordUnavailable on trouble."""
        http = await self.http()
        try:
            async with http.request(method, f"{self.api}{path}", **kwargs) as response:
                status = response.status
                body = None
                if status in ok and status != 204:
                    body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning(
                "discord_api_unreachable", path=path.split("?")[0], error=type(exc).__name__
            )
            raise DiscordUnavailable from None
        if status not in ok and (status >= 500 or status == 429):
            log.warning("discord_api_unavailable", status=status)
            raise DiscordUnavailable
        return status, body

    def _client_credentials(self) -> str:
        pair = f"{self.settings.discord_client_id}:{self.settings.discord_client_secret}"
        return base64.b64encode(pair.encode("utf-8")).decode("ascii")

    def _bot_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bot {self.settings.discord_token}", "User-Agent": USER_AGENT}

    async def _exchange(self, oauth_code: str) -> str:
        status, body = await self._call(
            "POST",
            "/oauth2/token",
            ok=(200,),
            data={
                "grant_type": "authorization_code",
                "code": oauth_code,
                "redirect_uri": self.redirect_uri,
            },
            headers={
                "Authorization": f"Basic {self._client_credentials()}",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
        )
        token = body.get("access_token") if isinstance(body, dict) else None
        if status != 200 or not isinstance(token, str) or not token:
            log.warning("discord_token_exchange_failed", status=status)
            raise DiscordUnavailable
        return token

    async def _me(self, access_token: str) -> dict[str, str]:
        status, body = await self._call(
            "GET",
            "/users/@me",
            ok=(200,),
            headers={"Authorization": f"Bearer {access_token}", "User-Agent": USER_AGENT},
        )
        if status != 200 or not isinstance(body, dict):
            raise DiscordUnavailable
        user_id = body.get("id")
        if not isinstance(user_id, str) or not _SNOWFLAKE_RE.fullmatch(user_id):
            raise DiscordUnavailable
        raw = body.get("global_name") or body.get("username") or ""
        name = clean_text(raw if isinstance(raw, str) else "")[:80] or user_id
        locale = body.get("locale")
        user = {"id": user_id, "name": name}
        if isinstance(locale, str) and re.fullmatch(r"[A-Za-z]{2}(-[A-Za-z]{2})?", locale):
            user["locale"] = locale
        return user

    async def _is_member(self, user_id: str) -> bool:
        guild = self.settings.discord_guild_id
        status, _ = await self._call(
            "GET", f"/guilds/{guild}/members/{user_id}", ok=(200, 404), headers=self._bot_headers()
        )
        if status not in (200, 404):
            log.warning("discord_member_check_failed", status=status)
            raise DiscordUnavailable
        return status == 200

    async def _add_member(self, user_id: str, access_token: str) -> bool:
        """Add the user to the server; True when added, False when already a member."""
        guild = self.settings.discord_guild_id
        status, _ = await self._call(
            "PUT",
            f"/guilds/{guild}/members/{user_id}",
            ok=(201, 204),
            json={"access_token": access_token},
            headers=self._bot_headers(),
        )
        if status not in (201, 204):
            log.warning("discord_add_member_refused", status=status)
            raise DiscordRefused
        return status == 201


def cookie_name(state: str) -> str:
    """The cookie that binds a state to the browser that started the flow (one per flow)."""
    return COOKIE_PREFIX + state[:12]


LANDING = web.AppKey("landing", Landing)


def setup_landing(
    app: web.Application,
    *,
    conversation: Conversation,
    deliver: Deliver | None = None,
    http: aiohttp.ClientSession | None = None,
    limiter: RateLimiter | None = None,
) -> Landing:
    """Add ``/r/CODE``, its OAuth2 flow and call-back form to ``app`` (before it starts).

    ``deliver`` sends the welcome and thank-you replies of a join (the Discord adapter's sender);
    without it they are dropped. ``http`` is the client towards Discord (one is created if None).
    """
    pages = install_pages(app, conversation.settings, conversation.texts.messages_dir)
    landing = Landing(
        conversation=conversation, pages=pages, deliver=deliver, http=http, limiter=limiter
    )
    app.router.add_routes(landing.routes())
    app.on_cleanup.append(landing.close)
    app[LANDING] = landing
    return landing
