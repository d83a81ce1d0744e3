"""Logging: phone numbers and tokens never reach a log line; tracebacks carry no local variables."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.logging import configure_logging, get_logger, mask_sensitive, redact

PHONES = [
    "+33612345678",
    "+33 6 12 34 56 78",
    "06 12 34 56 78",
    "06.12.34.56.78",
    "06-12-34-56-78",
    "0612345678",
    "0033612345678",
    "+262692123456",
    "+14155550123",
]
DISCORD_TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"
TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("phone", PHONES)
def test_phone_numbers_are_masked_in_text(phone: str) -> None:
    masked = redact(f"invitation pour {phone}, merci")
    assert masked == "invitation pour <phone>, merci"


def test_digits_that_are_not_phone_numbers_stay() -> None:
    text = "participant 1234, 2026-01-05T09:00:00+00:00, code K7PM-4QXB, 511 participants"
    assert redact(text) == text


@pytest.mark.parametrize("token", [DISCORD_TOKEN, TWILIO_TOKEN, "Bearer abcdefghijkl.mnop"])
def test_tokens_are_masked_in_text(token: str) -> None:
    assert token not in redact(f"connexion avec {token} refusée")


def test_masked_anywhere_in_an_event() -> None:
    event: dict[str, Any] = {
        "event": "sms sent to 06 12 34 56 78",
        "details": {"numbers": ["+33612345678", ("0612345678",)], "deep": {"n": "06.12.34.56.78"}},
        "phone": "whatever",
        "token": "anything",
        "count": 3,
    }
    out = json.dumps(mask_sensitive(None, "info", event))
    for phone in ("06 12 34 56 78", "+33612345678", "0612345678", "06.12.34.56.78"):
        assert phone not in out
    assert event["phone"] == event["token"] == "<masked>"
    assert event["count"] == 3


@pytest.fixture
def json_logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Logging configured for production (JSON); returns a reader of the lines written."""
    configure_logging(json=True)
    buffer = io.StringIO()
    (handler,) = logging.getLogger().handlers
    handler.setStream(buffer)  # type: ignore[attr-defined]

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line]

    yield lines
    logging.getLogger().handlers.clear()


def test_configured_pipeline_masks_event_values(
    json_logs: Callable[[], list[dict[str, Any]]],
) -> None:
    get_logger("t.values").info(
        "invite", to_number="+33 6 12 34 56 78", details={"n": "0612345678"}
    )
    (line,) = json_logs()
    text = json.dumps(line)
    assert "12 34 56 78" not in text and "0612345678" not in text
    assert line["to_number"] == "<phone>"


def test_exception_messages_are_masked_and_have_no_locals(
    json_logs: Callable[[], list[dict[str, Any]]],
) -> None:
    def send(number: str) -> None:
        recipient = number  # noqa: F841 - structlog's dict tracebacks would show it
        unmaskable_local = "VALUE-OF-A-LOCAL-42"  # noqa: F841 - no masking could catch it
        raise ValueError(f"Twilio refused {number}")

    try:
        send("06 12 34 56 78")
    except ValueError:
        get_logger("t.exc").exception("sms_failed")
    (line,) = json_logs()
    text = json.dumps(line)
    assert "ValueError" in line["exception"] and "Twilio refused <phone>" in line["exception"]
    assert "12 34 56 78" not in text
    assert "VALUE-OF-A-LOCAL-42" not in text and "unmaskable_local" not in text


def test_stdlib_logs_are_masked_too(json_logs: Callable[[], list[dict[str, Any]]]) -> None:
    logging.getLogger("discord.gateway").warning("token %s for %s", DISCORD_TOKEN, "+33612345678")
    try:
        raise RuntimeError("number 0612345678")
    except RuntimeError:
        logging.getLogger("discord.client").exception("failed")
    first, second = json_logs()
    assert DISCORD_TOKEN not in json.dumps(first) and "+33612345678" not in json.dumps(first)
    assert "0612345678" not in json.dumps(second)
    assert "RuntimeError" in json.dumps(second)


def test_exception_objects_as_values_are_masked(
    json_logs: Callable[[], list[dict[str, Any]]],
) -> None:
    get_logger("t.obj").warning("failed", error=ValueError("to 0612345678"))
    (line,) = json_logs()
    assert "0612345678" not in json.dumps(line)


def test_readable_output_when_not_json() -> None:
    configure_logging(json=False)
    buffer = io.StringIO()
    (handler,) = logging.getLogger().handlers
    handler.setStream(buffer)  # type: ignore[attr-defined]
    try:
        get_logger("t.console").info("hello", phone_number="0612345678")
        err = buffer.getvalue()
        assert "hello" in err and "0612345678" not in err and not err.startswith("{")
    finally:
        logging.getLogger().handlers.clear()
