"""The Twilio transport: the real ``twilio`` library, asynchronously, with a hard timeout.

* ``AsyncTwilioHttpClient`` owns an aiohttp session, so it is built inside the running loop, on
  first use, never at import or construction time.
* ``TWILIO_API_URL`` replaces ``https://api.twilio.com`` (tests, Twilio-compatible providers):
  twilio 9.x builds every URL from a hard-coded domain, so the HTTP client rewrites the prefix.
* twilio 9.13 ignores its own ``timeout``: every call runs inside ``asyncio.timeout``. A timeout is
  ambiguous (the request may have reached Twilio), so it is reported as such and never retried.
* 429 and 503 are retried here a few times with backoff (nothing was sent); after that the queue
  retries later. Error 21610 (the recipient replied STOP to Twilio) is reported as an opt-out.
* 500, 502 and 504 come from a server or a gateway that may have passed the request on: they are
  ambiguous like a timeout (``unknown``, never resent; a status callback may tell later).
* The SID returned carries Twilio's ``num_segments`` and ``price`` (when already known).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from bot.logging import get_logger, redact
from bot.settings import Settings
from bot.sms.errors import SmsSendError

log = get_logger(__name__)

RETRYABLE_STATUSES = frozenset({429, 503})
AMBIGUOUS_STATUSES = frozenset({500, 502, 504})
OPTED_OUT_CODE = 21610
DEFAULT_TIMEOUT = 15.0
DEFAULT_ATTEMPTS = 3
DEFAULT_BACKOFF = 1.0
MAX_RETRY_AFTER = 10.0

# The library logs each request at INFO (URL and headers). Keep it quiet: warnings only.
_http_logger = logging.getLogger("bot.sms.twilio_http")
_http_logger.setLevel(logging.WARNING)


class ProviderSid(str):
    """A message SID, with what Twilio said of the message when it accepted it."""

    num_segments: int | None = None
    price: str | None = None
    price_unit: str | None = None


def _provider_sid(message: Any) -> ProviderSid:
    sid = ProviderSid(str(message.sid))
    try:
        sid.num_segments = int(getattr(message, "num_segments", None) or 0) or None
    except (TypeError, ValueError):
        sid.num_segments = None
    price = getattr(message, "price", None)
    sid.price = str(price) if price not in (None, "") else None
    unit = getattr(message, "price_unit", None)
    sid.price_unit = str(unit) if unit else None
    return sid


class _RebasedHttpClient(AsyncTwilioHttpClient):
    """``AsyncTwilioHttpClient`` that sends ``*.twilio.com`` requests to another base URL."""

    def __init__(self, base_url: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/") if base_url else None

    def rebase(self, url: str) -> str:
        """The request URL with Twilio's scheme and host replaced by the configured base URL."""
        if not self.base_url:
            return url
        parts = urlsplit(url)
        if not (parts.hostname or "").endswith("twilio.com"):
            return url
        base = urlsplit(self.base_url)
        path = base.path.rstrip("/") + parts.path
        return urlunsplit((base.scheme, base.netloc, path, parts.query, parts.fragment))

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the library passes it; we wrap calls)
        allow_redirects: bool = False,
    ) -> Response:
        """Send the request to the rebased URL, with Basic auth as a header.

        (aiohttp deprecates its ``auth=BasicAuth`` parameter, which the library still uses.)
        """
        headers = dict(headers or {})
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        return await super().request(
            method,
            self.rebase(url),
            params=params,
            data=data,
            headers=headers,
            auth=None,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


def missing_settings(settings: Settings) -> list[str]:
    """Names of the Twilio variables that are still needed to send."""
    missing = [
        name
        for name, value in (
            ("TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
            ("TWILIO_AUTH_TOKEN", settings.twilio_auth_token),
        )
        if not value
    ]
    if not (settings.twilio_from_number or settings.twilio_messaging_service_sid):
        missing.append("TWILIO_FROM_NUMBER / TWILIO_MESSAGING_SERVICE_SID")
    return missing


class TwilioTransport:
    """Sends SMS through Twilio (implements ``bot.ports.SmsTransport``)."""

    def __init__(
        self,
        settings: Settings,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff: float = DEFAULT_BACKOFF,
    ) -> None:
        self.account_sid = settings.twilio_account_sid or ""
        self.auth_token = settings.twilio_auth_token or ""
        self.from_number = settings.twilio_from_number
        self.messaging_service_sid = settings.twilio_messaging_service_sid
        self.api_url = settings.twilio_api_url
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self._http: _RebasedHttpClient | None = None
        self._client: Client | None = None

    def _ensure_client(self) -> Client:
        # Built here, inside the running loop: the HTTP client opens an aiohttp session.
        if self._client is None:
            self._http = _RebasedHttpClient(self.api_url, logger=_http_logger)
            self._client = Client(
                self.account_sid,
                self.auth_token,
                http_client=self._http,
                # A non-empty mapping, so the library does not read edge/region from os.environ.
                environment={"RELAIS": "1"},
            )
        return self._client

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._http is not None:
            await self._http.close()
            self._http = None
            self._client = None

    def _retry_after(self) -> float | None:
        response = getattr(self._http, "_test_only_last_response", None)
        headers = getattr(response, "headers", None) or {}
        try:
            return min(float(headers.get("Retry-After", "")), MAX_RETRY_AFTER)
        except (TypeError, ValueError):
            return None

    async def send(self, to: str, body: str, *, status_callback: str | None = None) -> str:
        """Send one SMS; returns Twilio's message SID, or raises ``SmsSendError``."""
        client = self._ensure_client()
        params: dict[str, Any] = {"to": to, "body": body}
        if self.messaging_service_sid:
            params["messaging_service_sid"] = self.messaging_service_sid
        if self.from_number:
            params["from_"] = self.from_number
        if status_callback:
            params["status_callback"] = status_callback
        for attempt in range(1, self.attempts + 1):
            try:
                async with asyncio.timeout(self.timeout):
                    message = await client.messages.create_async(**params)
            except TimeoutError:
                raise SmsSendError("timeout", ambiguous=True) from None
            except (TwilioRestException, TwilioServiceException) as exc:
                error = self._rest_error(exc)
                if not error.retryable or attempt == self.attempts:
                    raise error from None
                delay = max(self.backoff * 2 ** (attempt - 1), error.retry_after or 0.0)
                log.warning("twilio_retry", status=error.status, attempt=attempt, delay=delay)
                await asyncio.sleep(delay)
                continue
            except TwilioException as exc:
                raise SmsSendError(type(exc).__name__) from None
            except aiohttp.ClientConnectorError:
                # The connection was never made: nothing was sent.
                raise SmsSendError("connection_failed", retryable=True) from None
            except (aiohttp.ClientError, ValueError) as exc:
                # The request may have been received (a dropped connection, an unreadable answer).
                raise SmsSendError(type(exc).__name__, ambiguous=True) from None
            sid = getattr(message, "sid", None)
            if not sid:
                raise SmsSendError("no_sid", ambiguous=True)
            return _provider_sid(message)
        raise AssertionError("unreachable")

    async def fetch(self, sid: str) -> ProviderSid:
        """What Twilio now says of a sent message (its price is set after the final status)."""
        client = self._ensure_client()
        try:
            async with asyncio.timeout(self.timeout):
                message = await client.messages(sid).fetch_async()
        except TimeoutError:
            raise SmsSendError("timeout", ambiguous=True) from None
        except (TwilioRestException, TwilioServiceException) as exc:
            raise self._rest_error(exc) from None
        except (TwilioException, aiohttp.ClientError, ValueError) as exc:
            raise SmsSendError(type(exc).__name__, retryable=True) from None
        return _provider_sid(message)

    def _rest_error(self, exc: TwilioRestException | TwilioServiceException) -> SmsSendError:
        status = int(exc.status) if exc.status else None
        code = exc.code
        reason = getattr(exc, "msg", None) or getattr(exc, "title", None) or str(status)
        return SmsSendError(
            redact(str(reason)),  # Twilio's message may quote the number
            code=str(code) if code is not None else None,
            status=status,
            retryable=status in RETRYABLE_STATUSES,
            ambiguous=status in AMBIGUOUS_STATUSES,
            opted_out=str(code) == str(OPTED_OUT_CODE),
            retry_after=self._retry_after() if status in RETRYABLE_STATUSES else None,
        )
