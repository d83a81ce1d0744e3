"""Logging with structlog, configured once: JSON when stderr is not a terminal, readable when it is.

A processor masks phone numbers and tokens anywhere in an event; exceptions are rendered without
local variables (they could hold phone numbers).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any, TextIO

import structlog

# E.164 (+33612345678), French national forms (06 12 34 56 78, 06.12.34.56.78, 0612345678),
# and 0033 prefixes.
_PHONE_RE = re.compile(
    r"(?<![\w+])(?:\+|00)\d(?:[ .\-]?\d){6,14}(?!\w)"
    r"|(?<![\w+])0[1-9](?:[ .\-]?\d{2}){4}(?!\w)"
)
# Discord bot tokens, Twilio auth tokens / SIDs secrets, Bearer values.
_TOKEN_RE = re.compile(
    r"[MN][A-Za-z\d_-]{23,25}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,40}"
    r"|(?i:bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|\b[0-9a-f]{32}\b"
)
_SECRET_KEYS = {
    "token",
    "auth_token",
    "password",
    "secret",
    "authorization",
    "phone",
    "to",
    "from_",
}
_configured = False


def redact(text: str) -> str:
    """Mask phone numbers and tokens in a string."""
    text = _PHONE_RE.sub("<phone>", text)
    return _TOKEN_RE.sub("<secret>", text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(v) for v in value)
    # Any other object (an exception, a set, a model) would be rendered with repr() later,
    # unmasked: render it here instead.
    return redact(repr(value))


def mask_sensitive(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: mask phone numbers and tokens in every value of the event."""
    for key, value in list(event.items()):
        if key.startswith("_"):
            continue  # structlog's own entries (_record, _from_structlog), never rendered
        if key.lower() in _SECRET_KEYS and value:
            event[key] = "<masked>"
        else:
            event[key] = _redact_value(value)
    return event


# Every field is cut to this many characters: most come from outside (paths, provider error
# codes, user agents) and a log line must stay a line. The event name, a traceback and a staff
# post (``text``, already bounded by the message that made it) keep their length.
MAX_FIELD = 100
_UNBOUNDED = {"event", "exception", "text"}


def _bound(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_FIELD else value[: MAX_FIELD - 1] + "…"
    if isinstance(value, list | tuple):
        return type(value)(_bound(v) for v in value)
    if isinstance(value, dict):
        return {k: _bound(v) for k, v in value.items()}
    return value


def bound_fields(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: cut every field but the event, a traceback and ``text``."""
    for key, value in list(event.items()):
        if not key.startswith("_") and key not in _UNBOUNDED:
            event[key] = _bound(value)
    return event


def _format_exception_without_locals(
    _logger: Any, _method: str, event: dict[str, Any]
) -> dict[str, Any]:
    exc_info = event.pop("exc_info", None)
    if exc_info:
        if exc_info is True:
            exc_info = sys.exc_info()
        elif isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        if exc_info and exc_info[0] is not None:
            import traceback

            event["exception"] = "".join(traceback.format_exception(*exc_info))
    return event


def configure_logging(
    level: int = logging.INFO, *, json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Configure structlog and route the standard library's logs (discord.py) through it.

    Logs go to ``stream`` (default stderr): JSON lines unless it is a terminal.
    """
    global _configured
    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _format_exception_without_locals,
        mask_sensitive,
        bound_fields,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    _configured = True


def get_logger(name: str) -> Any:
    """A module logger."""
    return structlog.stdlib.get_logger(name)


def open_log(path: str) -> TextIO:
    """A log file opened for appending, private to its owner (0600), line-buffered."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    return os.fdopen(fd, "a", buffering=1, encoding="utf-8")
