"""/questions lists what staff can act on; /traiter marks it handled or makes it an example."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from console_session import Story

from referrals import dialogue


@pytest.fixture
async def story(tmp_path: Path) -> AsyncIterator[Story]:
    opened = await Story.open(tmp_path)
    try:
        yield opened
    finally:
        await opened.close()


async def test_one_line_per_distinct_question_without_menu_answers(story: Story) -> None:
    await story.say("discord:dan xyzzy plugh frobnicate")
    for who in ("dan", "eve", "sam"):
        await story.say(f"discord:{who} Quelle est la capitale du Pérou ?")
    await story.say("discord:dan 4")
    await story.say("discord:dan oui")
    await story.say("discord:dan stop")
    report = await story.say("staff:marie /questions")
    assert report.count("capitale du") == 1, report
    assert "×3" in report
    assert "« 4 »" not in report and "« oui »" not in report and "« stop »" not in report
    # The oldest question first.
    assert report.index("xyzzy") < report.index("capitale")


async def test_feedback_is_a_block_of_its_own(story: Story) -> None:
    await story.say("discord:dan xyzzy plugh frobnicate")
    await story.say("discord:dan c koi le cej")
    await story.say("discord:dan 2")
    report = await story.say("staff:marie /questions")
    assert re.search(r"sans réponse\n", report), report
    assert re.search(r"\n\s*\n\s*Avis sur les réponses", report), report


async def test_a_handled_question_leaves_the_list(story: Story) -> None:
    await story.say("discord:dan xyzzy plugh frobnicate")
    await story.say("discord:eve XYZZY plugh frobnicate !")
    report = await story.say("staff:marie /questions")
    assert "×2" in report
    done = await story.say("staff:marie 1")  # the first "handled" button
    assert "(2 fois) est traitée" in done
    assert "Aucune question à traiter" in await story.say("staff:marie /questions")


async def test_a_question_becomes_an_example(story: Story) -> None:
    await story.say("discord:dan wesh le truc du bidule la")
    report = await story.say("staff:marie /questions")
    number = report.split("n° ", 1)[1].split(" ", 1)[0]
    done = await story.say(f"staff:marie /traiter {number} logement")
    assert "exemple de l'entrée logement" in done
    learnt = await story.app.db.read(dialogue.learnt_examples)
    assert learnt == [("logement", "fr", "wesh le truc du bidule la")]


async def test_bad_numbers_and_entries_change_nothing(story: Story) -> None:
    await story.say("discord:dan xyzzy plugh frobnicate")
    assert "pas un numéro" in await story.say("staff:marie /traiter abc")
    assert "pas une entrée" in await story.say("staff:marie /traiter 1 nimporte")
    assert "Je ne trouve pas" in await story.say("staff:marie /traiter 999")
    assert "réservée à l'équipe" in await story.say("discord:dan /traiter 1")
    assert "xyzzy" in await story.say("staff:marie /questions")
    assert await story.app.db.read(dialogue.learnt_examples) == []


async def test_an_example_is_learnt_at_the_next_start(tmp_path: Path) -> None:
    question = "wesh le truc du bidule la"
    first = await Story.open(tmp_path)
    try:
        before = await first.app.db.read(dialogue.learnt_examples)
        assert before == []
        await first.say(f"discord:dan {question}")
        report = await first.say("staff:marie /questions")
        number = report.split("n° ", 1)[1].split(" ", 1)[0]
        await first.say(f"staff:marie /traiter {number} logement")
        assert first.app.conversation.faq.answer(question, "fr").id != "logement"
    finally:
        await first.close()
    again = await Story.open(tmp_path)
    try:
        assert again.app.conversation.faq.answer(question, "fr").id == "logement"
    finally:
        await again.close()
