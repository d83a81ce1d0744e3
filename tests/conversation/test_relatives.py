"""Relatives and refusals through the console (issue 17 items 2-4, issue 16 item 5 on Discord):
a refusal opts out and is confirmed once with "vous"; a question alone is answered, never a
join; OUI makes the relative a participant with their own code; on Discord a refusal explains
how to stop the bot's messages and offers /oublier. "How did you get my number?" by SMS names
the member who invited them (issue 16 item 6), in French and in English.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from console_session import Story

RELATIVE = "sms:+33612345678"


@pytest.fixture
async def story(tmp_path: Path) -> AsyncIterator[Story]:
    opened = await Story.open(tmp_path)
    try:
        yield opened
    finally:
        await opened.close()


async def invite(story: Story) -> None:
    await story.say("discord:alice /inviter 06 12 34 56 78 Léa")
    sent = await story.say("discord:alice oui")
    assert f"{RELATIVE} <- " in sent


async def test_a_refusal_in_words_is_confirmed_once_with_vous(story: Story) -> None:
    await invite(story)
    stopped = await story.say(f"{RELATIVE} Merci de ne plus écrire à mon fils")
    assert f"{RELATIVE} <- C'est noté : vous ne recevrez plus de SMS" in stopped
    assert "discord:alice" not in stopped, "a refusal is not joining"
    assert await story.say(f"{RELATIVE} STOP svp") == ""
    figures = await story.say("staff:marie /stats")
    assert "0 venus" in figures and "1 désinscrits" in figures


async def test_a_question_is_answered_then_oui_joins(story: Story) -> None:
    await invite(story)
    asked = await story.say(f"{RELATIVE} Bonjour, c'est payant pour mon fils ?")
    assert asked.startswith(f"{RELATIVE} <- ") and "discord:alice" not in asked
    figures = await story.say("staff:marie /stats")
    assert "0 venus" in figures
    yes = await story.say(f"{RELATIVE} Oui")
    assert f"{RELATIVE} <- Merci ! Votre code" in yes
    assert "discord:alice <- 🎉 Léa a rejoint" in yes
    figures = await story.say("staff:marie /stats")
    assert "1 venus" in figures and "1 proche devenu relais" in figures


async def test_a_refusal_on_discord_offers_oublier(story: Story) -> None:
    await story.say("discord:bob /parrainage")
    answer = await story.say("discord:bob arrêtez de m'écrire")
    assert "Ignorer" in answer and "/oublier" in answer
    assert "1. Tout effacer (/oublier)" in answer
    confirm = await story.say("discord:bob 1")
    assert "Oui, tout effacer" in confirm  # erasing still asks to confirm


async def test_how_did_you_get_my_number_by_sms_names_the_member_who_invited(
    story: Story,
) -> None:
    await invite(story)
    number = await story.say(f"{RELATIVE} Vous avez eu mon numéro comment ?")
    assert number.startswith(f"{RELATIVE} <- Votre numéro nous a été donné par alice"), number
    assert "répondez STOP" in number
    stranger = await story.say("sms:+33698765432 vous avez eu mon numéro comment ?")
    assert "par la personne qui vous a invité" in stranger and "alice" not in stranger


async def test_an_english_speaking_relative_gets_the_relatives_texts_in_english(
    story: Story,
) -> None:
    await invite(story)
    number = await story.say(f"{RELATIVE} How did you get my number?")
    assert number.startswith(f"{RELATIVE} <- Your number was given to us by "), number
    assert "by alice" in number and "STOP" in number and "/" not in number
    register = await story.say(f"{RELATIVE} Can I sign my son up myself?")
    assert f"{RELATIVE} <- Signing up is done with the young person" in register, register
    assert "CONSEILLER" in register and "discord:alice" not in register
