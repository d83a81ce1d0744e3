"""Actions without Discord (issue 22): check-in by texting the action's code, and the evaluation
by SMS after the end (a digit answers the menu, then the words or 1/2/3, then a free comment),
through the console (the engine Discord and SMS share) with a controllable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from actions_support import AgendaStory

from bot.settings import parse_quiet_hours

CREATE = (
    'staff:marie /action type=tournoi titre="Tournoi FIFA" lieu="Gymnase Sud"'
    ' debut="2026-12-09 14:00" fin="2026-12-09 18:00"'
)
SAM = "+33611111111"  # a relative invited by alice
YOUNG = "+33622222222"  # a young person without Discord
GONE = "+33633333333"  # checks in, then STOP


@pytest.fixture
async def agenda(tmp_path: Path) -> AsyncIterator[AgendaStory]:
    opened = await AgendaStory.open(tmp_path, "2026-12-01 10:00")
    try:
        yield opened
    finally:
        await opened.close()


async def relative(agenda: AgendaStory, number: str = SAM) -> None:
    """alice invites ``number``, who says OUI: a relative participant."""
    await agenda.say(f"discord:alice /inviter {number} Sam")
    await agenda.say("discord:alice 1")
    joined = await agenda.say(f"sms:{number} OUI")
    assert "Votre code" in joined


async def rating(agenda: AgendaStory, number: str) -> tuple[object, ...]:
    row = await agenda.story.app.db.fetchone(
        "SELECT ap.rating, ap.recommend, ap.comment, ap.phone IS NOT NULL FROM action_people ap"
        " JOIN participants p ON p.id = ap.participant_id WHERE p.phone_hash = ?",
        (agenda.story.app.sms.hash(number),),
    )
    assert row is not None
    return tuple(row)


async def test_a_relative_checks_in_and_evaluates_by_sms(agenda: AgendaStory) -> None:
    await agenda.say(CREATE)
    await relative(agenda)
    agenda.clock.set("2026-12-09 14:30")
    here = await agenda.say(f"sms:{SAM} TOURNOI-0912")
    assert here == (
        f"sms:{SAM} <- C'est noté, votre présence à Tournoi FIFA est enregistrée !"
        " Après l'action, on vous demandera votre avis par SMS.\n"
    )
    again = await agenda.say(f"sms:{SAM} ici tournoi-0912")
    assert "Votre présence à Tournoi FIFA est déjà notée." in again
    young = await agenda.say(f"sms:{YOUNG} TOURNOI-0912")
    assert "ta présence à Tournoi FIFA est enregistrée" in young  # a new participant, young: "tu"
    assert (
        await agenda.count(
            "SELECT COUNT(*) FROM participants WHERE channel = 'campaign:TOURNOI-0912'"
        )
        == 1
    )  # the action is the newcomer's source; the relative keeps theirs
    await agenda.say(f"sms:{GONE} TOURNOI-0912")
    await agenda.say(f"sms:{GONE} STOP")

    # After the end: one SMS each, in their register; never to the number that said STOP.
    agenda.clock.set("2026-12-09 17:59")
    assert await agenda.tick() == ""
    agenda.clock.set("2026-12-09 18:05")
    asked = await agenda.tick()
    assert (
        f"sms:{SAM} <- Merci pour votre venue à Tournoi FIFA (mercredi 09/12) ! Votre note ?"
        in asked
    )
    assert (
        f"sms:{YOUNG} <- Merci pour ta venue à Tournoi FIFA (mercredi 09/12) ! Ta note ?" in asked
    )
    assert GONE not in asked
    assert await agenda.tick() == ""  # once

    # OUI keeps its meaning for a relative (it is not a rating); a digit rates.
    yes = await agenda.say(f"sms:{SAM} OUI")
    assert "note" not in yes.lower() and (await rating(agenda, SAM))[0] is None
    rated = await agenda.say(f"sms:{SAM} 4")
    assert "En parleriez-vous à quelqu'un ? Répondez 1 (oui), 2 (peut-etre) ou 3 (non)." in rated
    # ... and OUI, typed now, answers that question.
    recommended = await agenda.say(f"sms:{SAM} oui")
    assert "Merci pour votre avis ! Un commentaire ?" in recommended
    comment = await agenda.say(f"sms:{SAM} Super ambiance, merci à l'équipe")
    assert "votre commentaire sur l'action TOURNOI-0912 est noté" in comment
    assert await rating(agenda, SAM) == (4, "oui", "Super ambiance, merci à l'équipe", 0)
    # The next text is a question again, not a second comment.
    question = await agenda.say(f"sms:{SAM} c'est quand le prochain tournoi ?")
    assert "commentaire" not in question

    # The young one answers in words after a bad digit: "9" is not a rating.
    bad = await agenda.say(f"sms:{YOUNG} 9")
    assert (await rating(agenda, YOUNG))[0] is None and "note" not in bad.lower()
    await agenda.say(f"sms:{YOUNG} 5")
    await agenda.say(f"sms:{YOUNG} peut-être")
    assert (await rating(agenda, YOUNG))[:2] == (5, "peut-etre")

    # Results per action count the SMS evaluations.
    one = await agenda.say("staff:marie /campagne TOURNOI-0912")
    assert "Note moyenne : 4,5/5 (2 avis)" in one or "Note moyenne : 4.5/5 (2 avis)" in one


async def test_one_reminder_at_most_and_the_number_is_then_forgotten(
    agenda: AgendaStory,
) -> None:
    await agenda.say(CREATE)
    agenda.clock.set("2026-12-09 14:30")
    await agenda.say(f"sms:{YOUNG} TOURNOI-0912")
    agenda.clock.set("2026-12-09 18:05")
    assert "Ta note ?" in await agenda.tick()
    agenda.clock.set("2026-12-10 12:00")
    assert await agenda.tick() == ""
    agenda.clock.set("2026-12-10 18:10")
    reminder = await agenda.tick()
    assert reminder.startswith(f"sms:{YOUNG} <- Petit rappel : ton avis sur Tournoi FIFA")
    assert (await rating(agenda, YOUNG))[3] == 0  # no SMS will follow: the number is gone
    agenda.clock.set("2026-12-12 18:10")
    assert await agenda.tick() == ""
    # A late answer still counts (the menu is rebuilt from the database)...
    agenda.clock.set("2026-12-11 09:00")
    assert "tu en parlerais à un pote ?" in await agenda.say(f"sms:{YOUNG} 3")
    assert (await rating(agenda, YOUNG))[0] == 3


async def test_the_sms_waits_for_the_end_of_quiet_hours_where_the_recipient_lives(
    tmp_path: Path,
) -> None:
    agenda = await AgendaStory.open(
        tmp_path, "2026-12-01 10:00", sms_quiet_hours=parse_quiet_hours("20:00-08:00")
    )
    reunion = "+262692123456"  # 19:05 in Paris is 22:05 in La Réunion
    try:
        await agenda.say(CREATE.replace("18:00", "19:00"))
        agenda.clock.set("2026-12-09 15:00")
        assert "ta présence" in await agenda.say(f"sms:{reunion} TOURNOI-0912")
        await agenda.say(f"sms:{YOUNG} TOURNOI-0912")
        agenda.clock.set("2026-12-09 19:05")
        asked = await agenda.tick()
        assert f"sms:{YOUNG} <- " in asked and reunion not in asked
        agenda.clock.set("2026-12-10 04:59")  # 07:59 in La Réunion
        assert reunion not in await agenda.tick()
        agenda.clock.set("2026-12-10 05:00")  # 08:00 there
        assert f"sms:{reunion} <- Merci pour ta venue" in await agenda.tick()
    finally:
        await agenda.close()


async def test_past_the_daily_budget_nothing_leaves_and_it_is_tried_again(
    tmp_path: Path,
) -> None:
    agenda = await AgendaStory.open(tmp_path, "2026-12-01 10:00", sms_daily_budget=3)
    try:
        await agenda.say(CREATE)
        agenda.clock.set("2026-12-09 14:30")
        for number in (SAM, YOUNG):  # each check-in reply costs 1 segment: 2 of 3 used
            await agenda.say(f"sms:{number} TOURNOI-0912")
        agenda.clock.set("2026-12-09 18:05")
        asked = await agenda.tick()  # an evaluation is 1 segment: only one fits today
        assert asked.count("Ta note ?") == 1
        asked_sql = "SELECT COUNT(*) FROM action_people WHERE eval_asked_at IS NOT NULL"
        assert await agenda.count(asked_sql) == 1  # the other is not marked: tried again
        assert await agenda.tick() == ""
        agenda.clock.set("2026-12-10 09:00")  # a new day, a new budget
        assert (await agenda.tick()).count("Ta note ?") == 1
        assert await agenda.count(asked_sql) == 2
    finally:
        await agenda.close()


async def test_a_code_that_is_not_an_action_is_a_question(agenda: AgendaStory) -> None:
    await agenda.say(CREATE)
    early = await agenda.say(f"sms:{YOUNG} TOURNOI-0912")
    assert "n'a pas encore commencé" in early
    other = await agenda.say(f"sms:{YOUNG} TOURNOI-0913")
    assert "TOURNOI-0913" not in other
    assert await agenda.count("SELECT COUNT(*) FROM action_people") == 0
    assert await agenda.count("SELECT COUNT(*) FROM participants WHERE phone_hash IS NOT NULL") == 0
