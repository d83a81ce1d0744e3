"""Rate limits per person and minute, banned members, burst alerts to the staff channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from privacy_support import Session

from bot.limits import PER_MINUTE
from bot.ports import Person
from bot.texts import Texts

TEXTS = Texts()


def said(key: str) -> str:
    """The French text of a message (its first line)."""
    return TEXTS.render(key, "fr").splitlines()[0]


class Clock:
    """The guard's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def session(tmp_path: Path):  # type: ignore[no-untyped-def]
    opened = await Session.open(tmp_path, sms_invites_per_member_per_day=100)
    opened.clock = Clock()  # type: ignore[attr-defined]
    opened.app.conversation.guard.clock = opened.clock  # type: ignore[attr-defined]
    try:
        yield opened
    finally:
        await opened.close()


@pytest.mark.parametrize(
    ("line", "action"),
    [
        ("/code AAAA-AAAA", "code"),
        ("/inviter 0612345678 Lea", "invite"),
        ("/conseiller bonjour", "handoff"),
        ("/question comment s'inscrire", "question"),
        ("comment on s'inscrit ?", "question"),
    ],
)
async def test_each_limit_refuses_then_the_window_slides(
    session: Session, line: str, action: str
) -> None:
    limit = PER_MINUTE[action]
    for _ in range(limit):
        assert said(f"limits.{action}") not in await session.say(f"discord:kim {line}")
    assert said(f"limits.{action}") in await session.say(f"discord:kim {line}")
    # Someone else is not limited by Kim.
    assert said(f"limits.{action}") not in await session.say(f"discord:noa {line}")
    session.clock.now += timedelta(seconds=61)  # type: ignore[attr-defined]
    if action == "handoff":
        # Two hand-offs a day per person (issue 15): the minute window sliding is not enough.
        assert said("limits.handoff") in await session.say(f"discord:kim {line}")
        session.clock.now += timedelta(days=1)  # type: ignore[attr-defined]
    assert said(f"limits.{action}") not in await session.say(f"discord:kim {line}")


async def test_the_handoff_button_counts_too(session: Session) -> None:
    for _ in range(PER_MINUTE["handoff"]):
        await session.app.conversation.choice(Person("discord", "kim", "kim"), "handoff:open")
    assert said("limits.handoff") in await session.say("discord:kim /conseiller encore")


async def test_every_message_counts_against_the_overall_limit(session: Session) -> None:
    for _ in range(PER_MINUTE["message"]):
        await session.say("discord:kim /aide")
    assert said("limits.message") in await session.say("discord:kim /aide")


async def test_sms_questions_are_limited_silently_but_stop_always_works(
    session: Session,
) -> None:
    for _ in range(PER_MINUTE["sms"]):
        assert await session.say("sms:+33611223344 horaires ?")
    assert await session.say("sms:+33611223344 horaires ?") == ""
    assert "sms:+33611223344 <-" in await session.say("sms:+33611223344 STOP")


async def test_staff_are_not_limited(session: Session) -> None:
    for _ in range(PER_MINUTE["message"] + 5):
        out = await session.say("staff:ana /aide")
        assert said("limits.message") not in out


async def test_a_banned_member_is_refused_everywhere(session: Session) -> None:
    await session.say("discord:kim /parrainage")
    assert await session.app.referrals.set_banned("kim", True) is True
    for line in ("/parrainage", "/code AAAA-AAAA", "/aide", "bonjour", "/mesdonnees", "1"):
        assert said("limits.banned") in await session.say(f"discord:kim {line}"), line
    assert await session.app.referrals.set_banned("kim", False) is True
    assert said("limits.banned") not in await session.say("discord:kim /parrainage")
    assert await session.app.referrals.set_banned("nobody", True) is False


async def test_last_seen_is_set_when_a_person_interacts(session: Session) -> None:
    # The first contact creates the participant (joined_at is its first activity).
    await session.say("discord:kim /parrainage")
    await session.say("discord:kim /aide")
    row = await session.app.db.fetchone(
        "SELECT last_seen_at FROM participants WHERE discord_id = 'kim'"
    )
    assert row is not None and row[0]


async def test_a_burst_of_joins_alerts_the_staff_once(session: Session) -> None:
    card = await session.say("discord:kim /parrainage")
    link = next(word for word in card.split() if "discord.gg/" in word)
    alerts = []
    for index in range(8):
        out = await session.say(f"join discord:friend{index} via {link}")
        alerts += [line for line in out.splitlines() if line.startswith("#staff <-")]
    assert len(alerts) == 1, alerts
    assert "kim" in alerts[0]


async def test_a_burst_of_invitations_alerts_the_staff(session: Session) -> None:
    alerts = []
    for index in range(6):
        session.clock.now += timedelta(seconds=30)  # type: ignore[attr-defined]
        await session.say(f"discord:kim /inviter 06 12 34 56 {10 + index}")
        out = await session.say("discord:kim oui")
        alerts += [line for line in out.splitlines() if line.startswith("#staff <-")]
    assert len(alerts) == 1, alerts
    assert "5" in alerts[0] or "6" in alerts[0]
