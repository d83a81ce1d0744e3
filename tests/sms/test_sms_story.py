"""The SMS rules seen from the conversation (console adapter): the member's own first name in
the SMS, names cleaned of links, and the SMS figures in ``/stats``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from console_session import Story

from bot.ports import Person
from bot.sms.gsm import clean_name, sms_first_name


@pytest.fixture
async def story(tmp_path: Path) -> AsyncIterator[Story]:
    opened = await Story.open(tmp_path)
    try:
        yield opened
    finally:
        await opened.close()


def sms_lines(text: str, number: str = "+33612345678") -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"sms:{number} <- ")]


async def test_the_sms_names_the_member_by_the_first_name_they_give(story: Story) -> None:
    # A display name that is a link: the member gives the first name the relative knows.
    spammer = "bit.ly/gagne1000€"
    await story.say(f"discord:{spammer} /code")  # joins the programme
    person = Person("discord", spammer, spammer)
    ask = await story.app.conversation.command(
        person, "inviter", {"numero": "06 12 34 56 78", "prenom": "Léa", "moi": "Kévin"}
    )
    [yes] = [b.id for r in ask for b in r.buttons if b.id.endswith(":yes")]
    for reply in await story.app.conversation.choice(person, yes):
        await story.output.print_reply(reply)
    await story.app.sms.dispatch_due()
    [sms] = sms_lines(story.buffer.getvalue())
    assert "Kévin te recommande" in sms and "Léa" in sms
    assert "bit.ly" not in sms and "1000" not in sms


async def test_stats_show_the_sms_figures(story: Story) -> None:
    await story.say("discord:alice /inviter 06 12 34 56 78 Léa")
    await story.say("discord:alice oui")
    stats = await story.say("staff:marie /stats")
    assert "**SMS** (1 envoyé)" in stats
    assert "2 segments facturés" in stats


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("bit.ly/gagne1000€ Kevin", "Kevin"),
        ("@everyone Léa", "Léa"),
        ("Sarah 06 12 34 56 78", "Sarah"),
        ("Kévin", "Kévin"),  # é stays (GSM-7)
        ("Zoë", "Zoe"),  # ë does not
        ("https://x.example.com/a", ""),
        ("www.gains.fr", ""),
        ("🔥🔥", ""),
        ("Anne-Sophie", "Anne-Sophie"),
        ("kevin.dupont", "kevin.dupont"),
    ],
)
def test_names_lose_links_mentions_and_digits(raw: str, clean: str) -> None:
    assert clean_name(raw, 24) == clean


def test_the_modal_is_prefilled_only_with_a_gsm_name() -> None:
    assert sms_first_name("Kévin") == "Kévin"
    assert sms_first_name("🔥 Kev 🔥") is None  # the member types their own
    assert sms_first_name("Ζήνων") is None
    assert sms_first_name(None) is None
