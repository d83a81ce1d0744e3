"""Quiet, useful web logs: a masking access log, bounded fields, one line per client disconnect.

The access log never shows what would let a reader act in someone's name: the token of a
one-click opt-out (``/stop/TOKEN``), of an SMS invitation (``/i/TOKEN``), or Discord's OAuth2
``code`` and ``state``. Every field that comes from the client (path, user agent, referer) is cut to
``MAX_FIELD`` characters. A client that goes away mid-request (an aborted body, a reset) is worth
one warning line, not a traceback.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import ClientPayloadError, web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import PayloadEncodingError

MAX_FIELD = 100
MASK = "…"

# What a request handler sees when the client leaves before its body has arrived.
DISCONNECTS: tuple[type[BaseException], ...] = (
    ConnectionError,  # ConnectionResetError("Connection lost") from aiohttp's payload stream
    asyncio.IncompleteReadError,
    ClientPayloadError,
    PayloadEncodingError,  # a truncated chunked or length-delimited body
)

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PATH_TOKEN_RE = re.compile(r"(/(?:stop|i)/)[^/?#\s]+")
_QUERY_SECRET_RE = re.compile(r"([?&;](?:code|state|token)=)[^&;#\s]*", re.IGNORECASE)


def bound(value: object, limit: int = MAX_FIELD) -> str:
    """A value from outside, as text of at most ``limit`` characters (control characters shown)."""
    text = value if isinstance(value, str) else str(value)
    text = _CONTROL_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text if len(text) <= limit else text[: limit - 1] + MASK


def mask_url(target: str) -> str:
    """A request target with its tokens and OAuth2 code and state masked."""
    return _QUERY_SECRET_RE.sub(r"\1" + MASK, _PATH_TOKEN_RE.sub(r"\1" + MASK, target))


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access log, masked and bounded (``web.AppRunner(access_log_class=...)``)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        """One line per request: peer, method, masked target, status, size, duration."""
        if not self.logger.isEnabledFor(20):  # logging.INFO
            return
        headers = request.headers
        fields: dict[str, Any] = {
            "remote": bound(request.remote or "-", 45),
            "method": bound(request.method, 16),
            "target": bound(mask_url(request.raw_path)),
            "status": response.status,
            "size": response.body_length,
            "ms": round(time * 1000, 1),
            "agent": bound(headers.get("User-Agent", "-")),
            "referer": bound(mask_url(headers.get("Referer", "-"))),
        }
        self.logger.info(
            '%s "%s %s" %s %s',
            *(fields[k] for k in ("remote", "method", "target", "status", "size")),
            extra=fields,
        )


def disconnected(request: web.Request, exc: BaseException) -> web.Response:
    """Log a client that went away as one warning line, and answer (nobody will read it)."""
    from bot.logging import get_logger

    get_logger(__name__).warning(
        "client_disconnected",
        method=bound(request.method, 16),
        path=bound(mask_url(request.path)),
        error=type(exc).__name__,
    )
    return web.Response(status=400, text="bad request")
