"""The web server: Twilio webhooks, the opt-out link, the health check (SPEC §8).

Every response carries the security headers of ``bot.pages``; HTML pages are rendered from
``messages/<lang>/web/`` (the landing page's routes come from ``bot.landing.setup_landing``).

``create_app`` returns a plain ``aiohttp.web.Application``; other routes (the ``/r/CODE`` landing
page) are added by passing ``routes`` or with ``app.router`` before the app starts.

Every Twilio request is checked against ``PUBLIC_BASE_URL`` + path: behind a reverse proxy
``request.url`` is the internal address, not the one Twilio signed. Bodies are size-limited
(413), malformed ones refused (400), and no request ever gets a 500: a middleware turns any
unexpected exception into a logged error and a safe answer.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.twiml.messaging_response import MessagingResponse

from bot.clientaddr import RateLimiter, client_bucket
from bot.conversation import Conversation
from bot.delivery import DeliveryRouter
from bot.logging import get_logger
from bot.pages import PAGES, install_pages
from bot.ports import Person, Target
from bot.settings import Settings
from bot.sms.service import TOKEN_RE, SmsService
from bot.texts import Texts
from bot.weblog import DISCONNECTS, bound, disconnected
from referrals.sms_inbound import seen_message
from referrals.store import Database, answers, now_iso

log = get_logger(__name__)

MAX_BODY = 16 * 1024  # a Twilio webhook is about 1 KB; an SMS body at most 1,600 characters
MAX_SMS_TEXT = 1600
HEALTH_TIMEOUT = 2.0
SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
FORM_TYPE = "application/x-www-form-urlencoded"
EMPTY_TWIML = str(MessagingResponse())
_SID_RE = re.compile(r"[A-Za-z0-9]{2,64}")

SETTINGS = web.AppKey("settings", Settings)
TEXTS = web.AppKey("texts", Texts)
DB = web.AppKey("db", Database)
SMS = web.AppKey("sms", SmsService)
LIMITER = web.AppKey("limiter", RateLimiter)
CONVERSATION = web.AppKey("conversation", Conversation)
ROUTER = web.AppKey("router", DeliveryRouter)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def never_500(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn an unexpected exception into a logged error and a safe answer, never a 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 500:
            log.error("web_http_error", path=request.path, status=exc.status)
            return web.Response(status=503, text="unavailable")
        raise
    except asyncio.CancelledError:
        raise
    except DISCONNECTS as exc:  # the client left mid-body: one warning line, no traceback
        return disconnected(request, exc)
    except Exception:
        log.exception("web_unexpected_error", path=bound(request.path), method=request.method)
        if request.path.startswith("/twilio/"):
            # Twilio would show an error to nobody and retry nothing: answer with empty TwiML.
            return web.Response(text=EMPTY_TWIML, content_type="application/xml")
        return web.Response(status=503, text="unavailable")


async def _signed_form(request: web.Request) -> dict[str, Any]:
    """The form fields of a Twilio request whose signature is valid; 403, 413 or 400 otherwise."""
    settings = request.app[SETTINGS]
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise web.HTTPForbidden(text="forbidden")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    if request.content_type != FORM_TYPE:
        raise web.HTTPBadRequest(text="bad request")
    try:
        form = await request.post()
    except web.HTTPException:
        raise
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text="bad request") from None
    if not settings.public_base_url or not settings.twilio_auth_token:
        log.warning("twilio_webhook_unverifiable", path=request.path)
        raise web.HTTPForbidden(text="forbidden")
    url = settings.public_base_url + request.raw_path
    algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER, ""))
    validator = RequestValidator(settings.twilio_auth_token)
    if not validator.validate(url, form, signature, algorithm):
        log.warning("twilio_signature_invalid", path=request.path)
        raise web.HTTPForbidden(text="forbidden")
    fields: dict[str, Any] = {}
    for key, value in form.items():
        if not isinstance(value, str):  # a file part: never expected from Twilio
            raise web.HTTPBadRequest(text="bad request")
        fields.setdefault(key, value)
    return fields


async def twilio_sms(request: web.Request) -> web.Response:
    """``POST /twilio/sms``: an inbound SMS, answered with TwiML.

    The adapter only parses: a valid signed form, a known ``MessageSid`` handled once, the text to
    the brain (``Conversation.text``), the sender's replies as TwiML and every other reply (the
    member whose relative replied, the staff) to the delivery router.
    """
    form = await _signed_form(request)
    sender = form.get("From", "").strip()
    message_sid = form.get("MessageSid") or form.get("SmsSid")
    # Without a MessageSid a replay could not be recognised: refused (issue 20).
    if not sender or message_sid is None or not _SID_RE.fullmatch(message_sid):
        raise web.HTTPBadRequest(text="bad request")
    text = form.get("Body", "")[:MAX_SMS_TEXT]
    # Twilio's own opt-out handling (default or Advanced Opt-Out) already answered STOP, START or
    # HELP in its words: Relais mirrors STOP and START in its list and never replies a second time.
    provider_opt_out = (form.get("OptOutType") or "").strip().upper()
    if provider_opt_out == "HELP":
        return web.Response(text=EMPTY_TWIML, content_type="application/xml")
    if provider_opt_out in ("STOP", "START"):
        text = provider_opt_out  # "UNSUBSCRIBE", "YES"... are Twilio's keywords, not ours
    conversation = request.app[CONVERSATION]
    if message_sid and await request.app[DB].write(seen_message, message_sid, now_iso()):
        return web.Response(text=EMPTY_TWIML, content_type="application/xml")
    person = Person("sms", sender, "")
    # Twilio answered STOP/START itself: the brain records it and builds no reply (none counted).
    answered = provider_opt_out in ("STOP", "START")
    replies = await conversation.text(person, text, answered=answered)
    response = MessagingResponse()
    others = []
    for reply in replies:
        if reply.to == Target.of(person):
            response.message(reply.text)
        else:
            others.append(reply)
    if others:
        await request.app[ROUTER].deliver(others)
    return web.Response(text=str(response), content_type="application/xml")


async def twilio_status(request: web.Request) -> web.Response:
    """``POST /twilio/status``: a delivery status of a message we sent."""
    form = await _signed_form(request)
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    status = form.get("MessageStatus") or form.get("SmsStatus") or ""
    if not _SID_RE.fullmatch(sid) or not re.fullmatch(r"[a-z_]{2,32}", status.strip().lower()):
        raise web.HTTPBadRequest(text="bad request")
    segments = (form.get("NumSegments") or "").strip()
    price = (form.get("Price") or "").strip()
    unit = (form.get("PriceUnit") or "").strip().upper()
    await request.app[SMS].record_status(
        sid,
        status,
        form.get("ErrorCode"),
        # The recipient lets a message whose fate was unknown (no SID) be found again.
        to=form.get("To") or None,
        num_segments=int(segments) if re.fullmatch(r"[1-9]\d?", segments) else None,
        price=price if re.fullmatch(r"-?\d{1,6}(\.\d{1,8})?", price) else None,
        price_unit=unit if re.fullmatch(r"[A-Z]{3}", unit) else None,
    )
    return web.Response(status=204)


async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: 200 when the database answers, 503 otherwise."""
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT):
            ok = await request.app[DB].read(answers)
    except Exception:
        log.exception("healthz_db_failed")
        ok = False
    body = {"status": "ok" if ok else "error", "db": "ok" if ok else "error"}
    return web.json_response(body, status=200 if ok else 503)


_PREVIEW_AGENTS = re.compile(
    r"bot|crawler|spider|preview|facebookexternalhit|whatsapp|telegram|slack|discord|skype"
    r"|embedly|iframely|pinterest|vkshare|bingpreview",
    re.IGNORECASE,
)


async def stop_link(request: web.Request) -> web.Response:
    """``GET /stop/TOKEN``: the one-click opt-out of a one-way invitation.

    A person's click opts out at once (SPEC §8). A link preview (a messaging app or a crawler
    fetching the page) and a HEAD request do not: they get the page with a confirmation button
    that POSTs, so that nobody is opted out by their phone alone.
    """
    wait = request.app[LIMITER].take(client_bucket(request, request.app[SETTINGS].trusted_proxies))
    if wait > 0:  # limited like /r/CODE: a token cannot be guessed at speed
        retry = {"Retry-After": str(max(1, math.ceil(wait)))}
        return request.app[PAGES].response(request, "ratelimited", status=429, headers=retry)
    token = request.match_info["token"]
    valid = bool(TOKEN_RE.fullmatch(token))
    agent = request.headers.get("User-Agent", "")
    if request.method == "HEAD" or (request.method == "GET" and _PREVIEW_AGENTS.search(agent)):
        state = "confirm" if valid else "unknown"
        return request.app[PAGES].response(
            request, "stop", status=200 if valid else 404, state=state, action=request.path
        )
    done = valid and await request.app[SMS].opt_out_token(token)
    return request.app[PAGES].response(
        request, "stop", status=200 if done else 404, state="done" if done else "unknown", action=""
    )


def create_app(
    *,
    settings: Settings,
    texts: Texts,
    db: Database,
    sms: SmsService,
    conversation: Conversation,
    router: DeliveryRouter,
    routes: Iterable[web.AbstractRouteDef] = (),
    max_body: int = MAX_BODY,
    limiter: RateLimiter | None = None,
) -> web.Application:
    """The aiohttp application with the SMS routes (and any extra ``routes``)."""
    app = web.Application(client_max_size=max_body, middlewares=[never_500])
    app[SETTINGS] = settings
    app[TEXTS] = texts
    app[DB] = db
    app[SMS] = sms
    app[LIMITER] = limiter or RateLimiter()
    app[CONVERSATION] = conversation
    app[ROUTER] = router
    install_pages(app, settings, texts.messages_dir)
    app.router.add_post("/twilio/sms", twilio_sms)
    app.router.add_post("/twilio/status", twilio_status)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/stop/{token}", stop_link)
    app.router.add_post("/stop/{token}", stop_link)
    app.router.add_routes(list(routes))
    return app
