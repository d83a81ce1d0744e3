"""Numbered menus belong to the last message that showed them, and expire (issue 23)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from console_session import Story

from bot.ports import Person

FALLBACK = "discord:dan xyzzy plugh frobnicate"


@pytest.fixture
async def story(tmp_path: Path) -> AsyncIterator[Story]:
    opened = await Story.open(tmp_path)
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_fresh_menu_choice_opens_the_request(story: Story) -> None:
    shown = await story.say(FALLBACK)
    assert "1. " in shown
    printed = await story.say("discord:dan 1")
    assert "#staff <-" in printed


async def test_a_choice_after_a_command_is_plain_text(story: Story) -> None:
    await story.say(FALLBACK)
    await story.say("discord:dan /parrainage")
    printed = await story.say("discord:dan 1")
    assert "#staff" not in printed


async def test_a_choice_after_a_refused_command_is_plain_text(story: Story) -> None:
    await story.say(FALLBACK)
    await story.say("discord:dan /inviter 12")  # refused: not a number
    printed = await story.say("discord:dan 1")
    assert "#staff" not in printed


async def test_a_choice_after_another_question_is_plain_text(story: Story) -> None:
    await story.say(FALLBACK)
    await story.say("discord:dan c'est gratuit ?")
    printed = await story.say("discord:dan 1")
    assert "#staff" not in printed


async def test_a_menu_expires(story: Story) -> None:
    start = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    story.app.conversation.clock = lambda: start
    await story.say(FALLBACK)
    story.app.conversation.clock = lambda: start + timedelta(minutes=6)
    printed = await story.say("discord:dan 1")
    assert "#staff" not in printed


async def test_a_menu_belongs_to_its_person(story: Story) -> None:
    await story.say(FALLBACK)
    printed = await story.say("discord:eve 1")
    assert "#staff" not in printed


async def test_an_old_button_asks_before_opening_a_request(story: Story) -> None:
    conversation = story.app.conversation
    dan = Person("discord", "dan", "dan")
    await story.say(FALLBACK)
    await story.say("discord:dan /parrainage")
    replies = await conversation.choice(dan, "handoff:open")
    assert len(replies) == 1 and replies[0].buttons, replies
    assert "#staff" not in story.buffer.getvalue()
    yes = next(b for b in replies[0].buttons if b.id.endswith(":yes"))
    confirmed = await conversation.choice(dan, yes.id)
    for reply in confirmed:
        await story.output.print_reply(reply)
    assert "#staff <-" in story.buffer.getvalue()
