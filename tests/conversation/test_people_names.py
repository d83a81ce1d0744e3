"""People are shown by names people use: relatives by the first name the member gave (issue 23)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from console_session import Story


@pytest.fixture
async def story(tmp_path: Path) -> AsyncIterator[Story]:
    opened = await Story.open(tmp_path)
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_relative_is_known_by_the_first_name_given(story: Story) -> None:
    await story.say("discord:amina /inviter 06 12 34 56 78 Sam")
    await story.say("discord:amina oui")
    joined = await story.say("sms:+33612345678 OUI")
    assert "discord:amina <- 🎉 Sam a rejoint" in joined
    chain = await story.say("staff:marie /chaine amina")
    assert "Chaîne d'amina" in chain
    assert "1 filleul direct : Sam" in chain
    assert "p-" not in chain
    found = await story.say("staff:marie /chaine sam")
    assert "Chaîne de Sam" in found and "Amené par : amina" in found


async def test_console_names_are_one_person_whatever_the_case(story: Story) -> None:
    first = await story.say("discord:Bob /parrainage")
    again = await story.say("discord:bob /parrainage")
    code = first.split("**", 2)[1]
    assert code in again
    assert again.startswith("discord:Bob <- "), "shown as first typed"


async def test_staff_stats_refuse_a_reversed_period(story: Story) -> None:
    reply = await story.say("staff:marie /stats 2026-05-01 2026-04-01")
    assert "finit (2026-04-01) avant de commencer (2026-05-01)" in reply


async def test_an_sms_sender_must_be_a_number(
    story: Story, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await story.say("sms:abc bonjour") == ""
    assert "« abc » n'est pas un numéro de téléphone" in capsys.readouterr().err
