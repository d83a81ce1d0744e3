"""The whole path of an outreach action through the console, with a controllable clock:
create, agenda, a question answered from it, RSVP and reminder, check-in, evaluation after the
end (one reminder at most, never in quiet hours, never after an opt-out), results."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from actions_support import AgendaStory

from bot.settings import parse_quiet_hours
from referrals import actions

CREATE = (
    'staff:marie /action type=tournoi titre="Tournoi FIFA" lieu="Gymnase Sud"'
    ' debut="2026-12-09 14:00" fin="2026-12-09 18:00"'
)


@pytest.fixture
async def agenda(tmp_path: Path) -> AsyncIterator[AgendaStory]:
    opened = await AgendaStory.open(tmp_path, "2026-12-01 10:00")
    try:
        yield opened
    finally:
        await opened.close()


async def test_the_whole_path_of_an_action(agenda: AgendaStory, tmp_path: Path) -> None:
    created = await agenda.say(CREATE)
    assert "Tournoi FIFA" in created and "TOURNOI-0912" in created
    assert "mercredi 09/12 de 14:00 à 18:00" in created
    # One file per person and request: its path is on the 📎 line.
    poster = Path(next(line for line in created.splitlines() if "📎" in line).split("📎 ", 1)[1])
    assert poster.exists() and "TOURNOI-0912" in poster.name and poster.suffix == ".pdf"
    await agenda.say(
        'staff:marie /action type=van titre="Le van" lieu="Place du Marché"'
        ' debut="2026-12-02 14:00" fin=17:00'
    )

    # The agenda, by day, for everyone; a question answered from it.
    listing = await agenda.say("discord:lea /agenda")
    assert listing.index("Mercredi 02/12") < listing.index("Mercredi 09/12")
    assert "14:00–18:00 : Tournoi FIFA — Gymnase Sud" in listing
    answer = await agenda.say("discord:lea c'est quand le prochain tournoi ?")
    assert "mercredi 09/12, 14:00–18:00 : Tournoi FIFA — Gymnase Sud" in answer
    assert "Le van" not in answer
    van = await agenda.say("discord:lea il est où le van demain ?")
    assert "Demain (van)" in van and "Place du Marché" in van
    by_sms = await agenda.say("sms:+33612345678 c'est quand le prochain tournoi ?")
    assert by_sms.startswith("sms:+33612345678 <- Les prochaines dates (tournoi) :")
    assert "Tournoi FIFA" in by_sms and "/agenda" not in by_sms

    # "J'y vais" from /agenda (button 2: the tournament), reminder the day before only.
    await agenda.say("discord:lea /agenda")
    going = await agenda.say("discord:lea 2")
    assert "tu vas à Tournoi FIFA" in going
    agenda.clock.set("2026-12-07 10:00")
    assert await agenda.tick() == ""
    agenda.clock.set("2026-12-08 10:00")
    reminder = await agenda.tick()
    assert reminder.startswith("discord:lea <- ⏰ Rappel : demain, Tournoi FIFA")
    assert await agenda.tick() == ""  # once

    # Check-in: a member, a newcomer (the action becomes their source), a wrong code.
    agenda.clock.set("2026-12-09 14:20")
    here = await agenda.say("discord:lea /jesuisla TOURNOI-0912")
    assert "tu es là : Tournoi FIFA" in here
    again = await agenda.say("discord:lea /jesuisla tournoi-0912")
    assert "déjà noté·e présent·e" in again
    new = await agenda.say("discord:sam /jesuisla TOURNOI-0912")
    assert "Bienvenue" in new
    wrong = await agenda.say("discord:sam /jesuisla TOURNOI-0913")
    assert wrong == (
        "discord:sam <- Je ne trouve aucune action avec le code « TOURNOI-0913 » :"
        " vérifie le code affiché sur place.\n"
    )
    assert (
        await agenda.count("SELECT COUNT(*) FROM action_people WHERE checked_in_at IS NOT NULL")
        == 2
    )
    assert (
        await agenda.count(
            "SELECT COUNT(*) FROM participants WHERE channel = 'campaign:TOURNOI-0912'"
        )
        == 1
    )

    # Nothing before the end; after it, one message each with 1-5 buttons.
    agenda.clock.set("2026-12-09 17:59")
    assert await agenda.tick() == ""
    agenda.clock.set("2026-12-09 18:05")
    asked = await agenda.tick()
    assert asked.count("Tu mets combien, de 1 (bof) à 5 (top) ?") == 2
    assert "  5. 5\n  6. Ne plus me demander" in asked
    rated = await agenda.say("discord:lea 4")
    assert "tu en parlerais à un pote ?" in rated and "1. Oui" in rated
    thanks = await agenda.say("discord:lea 1")
    assert "/avis TOURNOI-0912" in thanks
    comment = await agenda.say("discord:lea /avis TOURNOI-0912 trop bien, refaites-en")
    assert "commentaire sur l'action TOURNOI-0912 est noté" in comment

    # One reminder a day later, to the one who did not answer; never a second.
    agenda.clock.set("2026-12-10 12:00")
    assert await agenda.tick() == ""
    agenda.clock.set("2026-12-10 18:10")
    second = await agenda.tick()
    assert second.startswith("discord:sam <- Petit rappel : ton avis sur Tournoi FIFA")
    assert "discord:lea" not in second
    agenda.clock.set("2026-12-12 18:10")
    assert await agenda.tick() == ""

    # Results per action: /stats, /campagne CODE, the JSON of `relais stats`.
    stats = await agenda.say("staff:marie /stats")
    assert "TOURNOI-0912 — Tournoi FIFA (2026-12-09" in stats
    assert ": 1 → 2 → 1 → 0 → 0 · 4/5 (1 avis) · 100" in stats
    one = await agenda.say("staff:marie /campagne TOURNOI-0912")
    assert "Intéressés : 1 · venus : 2 · nouveaux contacts : 1" in one
    assert "Note moyenne : 4/5 (1 avis)" in one
    rows = await agenda.story.app.db.read(actions.results)
    tournament = next(r for r in rows if r["code"] == "TOURNOI-0912")
    assert tournament["would_recommend"] == 1.0 and tournament["ratings"] == 1
    json.dumps(rows)


async def test_staff_change_and_cancel_an_action(agenda: AgendaStory) -> None:
    await agenda.say(CREATE)
    moved = await agenda.say('staff:marie /action code=TOURNOI-0912 lieu="Gymnase Nord"')
    assert "modifiée" in moved and "Gymnase Nord" in moved
    cancelled = await agenda.say("staff:marie /action code=TOURNOI-0912 annuler=oui")
    assert "annulée" in cancelled
    assert "Aucune action prévue" in await agenda.say("discord:lea /agenda")
    # Agenda empty: the static answer of the knowledge base comes back.
    answer = await agenda.say("discord:lea c'est quand le prochain tournoi ?")
    assert "Tournoi FIFA" not in answer
    again = await agenda.say("staff:marie /action code=TOURNOI-0912 annuler=oui")
    assert "déjà annulée" in again


async def test_youth_cannot_create_actions(agenda: AgendaStory) -> None:
    refused = await agenda.say(CREATE.replace("staff:marie", "discord:lea"))
    assert "Tournoi FIFA" not in refused
    assert await agenda.count("SELECT COUNT(*) FROM actions") == 0


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            'type=tournoi titre="X" debut="2026-12-09 14:00" fin="2026-12-09 13:00"',
            "La fin doit venir après le début : rien n'a été enregistré.",
        ),
        (
            'type=tournoi titre="X" debut="2026-11-20 14:00" fin="2026-11-20 18:00"',
            "Cette date est déjà passée : rien n'a été enregistré.",
        ),
        (
            'type=karaoke titre="X" debut="2026-12-09 14:00" fin=18:00',
            "Type d'action inconnu « karaoke » : choisis parmi"
            " van, permanence, atelier, tournoi, sortie, autre.",
        ),
        (
            'type=tournoi titre="X" debut="le 9" fin=18:00',
            "Date illisible « le 9 » : écris-la comme 2026-12-09 14:00 ou 09/12/2026 14h.",
        ),
        (
            'type=tournoi titre="X" debut="2026-12-09 14:00" fin=18:00 places=beaucoup',
            "Nombre de places invalide « beaucoup » : mets un nombre entier, par ex. places=20.",
        ),
        (
            'code=TOURNOI-0913 lieu="Ailleurs"',
            "Je ne trouve aucune action avec le code « TOURNOI-0913 » :"
            " vérifie le code affiché sur place.",
        ),
    ],
)
async def test_bad_input_gets_one_sentence_and_changes_nothing(
    agenda: AgendaStory, line: str, expected: str
) -> None:
    await agenda.say(CREATE)
    before = await agenda.story.app.db.fetchall("SELECT * FROM actions")
    events = await agenda.count("SELECT COUNT(*) FROM events")
    printed = await agenda.say(f"staff:marie /action {line}")
    assert printed == f"staff:marie <- {expected}\n"
    after = await agenda.story.app.db.fetchall("SELECT * FROM actions")
    assert [tuple(r) for r in after] == [tuple(r) for r in before]
    assert await agenda.count("SELECT COUNT(*) FROM events") == events


async def test_check_in_outside_the_action_is_refused(agenda: AgendaStory) -> None:
    await agenda.say(CREATE)
    early = await agenda.say("discord:lea /jesuisla TOURNOI-0912")
    assert "n'a pas encore commencé" in early
    agenda.clock.set("2026-12-09 20:30")
    late = await agenda.say("discord:lea /jesuisla TOURNOI-0912")
    assert "est terminée" in late
    assert await agenda.count("SELECT COUNT(*) FROM action_people") == 0


async def test_no_evaluation_in_quiet_hours_nor_after_an_opt_out(tmp_path: Path) -> None:
    agenda = await AgendaStory.open(
        tmp_path, "2026-12-01 10:00", sms_quiet_hours=parse_quiet_hours("20:00-08:00")
    )
    try:
        await agenda.say(
            'staff:marie /action type=sortie titre="Ciné" debut="2026-12-09 18:00" fin=20:30'
        )
        agenda.clock.set("2026-12-09 19:00")
        await agenda.say("discord:lea /jesuisla SORTIE-0912")
        await agenda.say("discord:sam /jesuisla SORTIE-0912")
        agenda.clock.set("2026-12-09 20:45")
        assert await agenda.tick() == ""  # quiet hours
        agenda.clock.set("2026-12-10 07:59")
        assert await agenda.tick() == ""
        agenda.clock.set("2026-12-10 08:00")
        asked = await agenda.tick()
        assert "discord:lea <- " in asked and "discord:sam <- " in asked
        stopped = await agenda.say("discord:sam 6")
        assert "je ne t'enverrai plus" in stopped
        agenda.clock.set("2026-12-11 09:00")
        reminder = await agenda.tick()
        assert "discord:lea <- Petit rappel" in reminder and "discord:sam" not in reminder
    finally:
        await agenda.close()


async def test_without_a_sender_nothing_is_marked_sent(agenda: AgendaStory) -> None:
    await agenda.say(CREATE)
    agenda.clock.set("2026-12-09 15:00")
    await agenda.say("discord:lea /jesuisla TOURNOI-0912")
    agenda.agenda.deliver = None  # `relais serve` without Discord
    agenda.clock.set("2026-12-09 19:00")
    assert await agenda.agenda.tick() == 0
    assert (
        await agenda.count("SELECT COUNT(*) FROM action_people WHERE eval_asked_at IS NOT NULL")
        == 0
    )


async def test_mesdonnees_shows_actions_and_oublier_removes_the_comment(
    agenda: AgendaStory, tmp_path: Path
) -> None:
    await agenda.say(CREATE)
    agenda.clock.set("2026-12-09 15:00")
    await agenda.say("discord:lea /jesuisla TOURNOI-0912")
    await agenda.say("discord:lea /avis TOURNOI-0912 mon avis perso")
    shown = await agenda.say("discord:lea /mesdonnees")
    saved = Path(next(line for line in shown.splitlines() if "📎" in line).split("📎 ", 1)[1])
    data = json.loads(saved.read_text(encoding="utf-8"))
    (mine,) = data["actions"]
    assert mine["code"] == "TOURNOI-0912" and mine["comment"] == "mon avis perso"
    await agenda.say("discord:lea /oublier")
    await agenda.say("discord:lea 1")
    assert await agenda.count("SELECT COUNT(*) FROM action_people WHERE comment IS NOT NULL") == 0
    assert await agenda.count("SELECT COUNT(*) FROM action_people") == 1  # presence kept


async def test_comments_are_purged_after_the_questions_retention(agenda: AgendaStory) -> None:
    from datetime import timedelta

    await agenda.say(CREATE)
    agenda.clock.set("2026-12-09 15:00")
    await agenda.say("discord:lea /jesuisla TOURNOI-0912")
    await agenda.say("discord:lea /avis TOURNOI-0912 bien")
    db = agenda.story.app.db
    days = agenda.story.app.settings.retention_questions_days
    # The daily job clears what is older than the retention period, seen from its own day.
    for later, purged in ((days - 1, 0), (days + 1, 1)):
        today = agenda.clock.at + timedelta(days=later)
        assert await db.write(actions.purge_comments, today - timedelta(days=days)) == purged


async def test_rsvp_stops_at_capacity(agenda: AgendaStory) -> None:
    await agenda.say(CREATE + " places=1")
    assert "tu vas à Tournoi FIFA" in await agenda.say("discord:lea /jyvais TOURNOI-0912")
    assert "tu vas à Tournoi FIFA" in await agenda.say("discord:lea /jyvais TOURNOI-0912")
    full = await agenda.say("discord:sam /jyvais TOURNOI-0912")
    assert full == (
        "discord:sam <- L'action TOURNOI-0912 est complète (places : 1) :"
        " regarde /agenda pour les prochaines.\n"
    )
    assert await agenda.count("SELECT COUNT(*) FROM action_people WHERE rsvp_at IS NOT NULL") == 1
