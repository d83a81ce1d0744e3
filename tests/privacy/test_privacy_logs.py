"""No phone number, first name of a relative or token in the logs of a whole session."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from privacy_support import Session

from bot.logging import configure_logging, get_logger
from bot.ports import Reply, Target
from bot.runner import LogNotifier

FORMS = ("+33612345678", "0612345678", "06 12 34 56 78", "612345678", "33612345678")


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """JSON logs at INFO, as configured in production, written into a buffer."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(logging.INFO, json=True)
    buffer = io.StringIO()
    root.handlers[0].setStream(buffer)  # type: ignore[attr-defined]
    try:
        yield buffer
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()


async def test_a_whole_session_logs_no_phone_number(tmp_path: Path, json_logs: io.StringIO) -> None:
    session = await Session.open(tmp_path)
    try:
        await session.say("discord:kim /inviter 06 12 34 56 78 Lea")
        await session.say("discord:kim oui")
        await session.say("sms:+33612345678 bonjour")
        await session.say("sms:+33612345678 CONSEILLER")
        for _ in range(12):
            await session.say("sms:0612345678 quels horaires ?")  # rate-limited: logged
        await session.say("sms:+33612345678 STOP")
        get_logger("test").warning("probe", number="+33612345678", note="call 06 12 34 56 78")
        await LogNotifier().notify_staff(
            Reply(Target("channel", "staff"), "Numéro à rappeler : +33612345678")
        )
    finally:
        await session.close()
    err = json_logs.getvalue()
    assert "rate_limited" in err and "probe" in err and "staff_notification" in err
    for form in FORMS:
        assert form not in err, form
