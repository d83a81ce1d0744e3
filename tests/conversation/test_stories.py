"""Whole stories through the conversation engine: what each person sees."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from console_session import Story

from referrals import codes


@pytest.fixture
async def story(tmp_path: Path) -> AsyncIterator[Story]:
    opened = await Story.open(tmp_path)
    try:
        yield opened
    finally:
        await opened.close()


def code_in(text: str) -> str:
    match = re.search(r"\*\*([0-9A-Z]{4}-[0-9A-Z]{4})\*\*", text)
    assert match, text
    return match.group(1)


def link_in(text: str) -> str:
    match = re.search(r"https://discord\.gg/\S+", text)
    assert match, text
    return match.group(0)


async def test_referral_through_personal_link(story: Story) -> None:
    card = await story.say("discord:alice /parrainage")
    assert card.startswith("discord:alice <- ")
    code = code_in(card)
    assert codes.normalize_personal(code) is not None
    link = link_in(card)

    joined = await story.say(f"join discord:bob via {link}")
    assert "discord:bob <- Bienvenue bob" in joined
    assert "grâce à alice" in joined
    assert "discord:alice <- 🎉 bob vient d'arriver grâce à toi" in joined

    chain = await story.say("staff:marie /chaine bob")
    assert chain.startswith("staff:marie <- ")
    assert "Amené par : alice" in chain
    assert "Vague 1" in chain

    again = await story.say("discord:alice /parrainage")
    assert code_in(again) == code, "the code is created once"
    assert link_in(again) == link, "one invite per member"
    assert "Déjà 1 personne venue grâce à toi" in again


async def test_code_redeem_and_each_refusal(story: Story) -> None:
    code = code_in(await story.say("discord:alice /parrainage"))
    own = await story.say(f"discord:alice /code {code}")
    assert "ton propre code" in own

    ok = await story.say(f"discord:bob /code {code.lower().replace('-', ' ')}")
    assert "Tu es venu·e grâce à alice" in ok
    assert "discord:alice <- 🎉 bob" in ok

    twice = await story.say(f"discord:bob /code {code}")
    assert "qu'une fois" in twice

    bob_code = code_in(await story.say("discord:bob /parrainage"))
    cycle = await story.say(f"discord:alice /code {bob_code}")
    assert "c'est toi qui as fait venir bob" in cycle

    missing = await story.say("discord:carol /code")
    assert "Il manque le code" in missing


async def test_wrong_codes_lock_after_five(story: Story) -> None:
    await story.say("discord:alice /parrainage")
    answers = [await story.say("discord:mallory /code ZZZZ-ZZZZ") for _ in range(5)]
    assert "encore 4 essais" in answers[0]
    assert "encore 1 essai." in answers[3]
    assert "bloqués" in answers[4]
    still = await story.say("discord:mallory /code ZZZZ-ZZZZ")
    assert "Trop d'essais" in still


async def test_sms_invitation_with_consent(story: Story) -> None:
    ask = await story.say("discord:alice /inviter 06 12 34 56 78 Léa")
    assert "Léa est bien d'accord" in ask
    assert "  1. Oui" in ask and "  2. Annuler" in ask
    assert "sms:" not in ask, "nothing leaves before consent"

    sent = await story.say("discord:alice oui")
    assert "discord:alice <- C'est parti" in sent
    sms = [line for line in sent.splitlines() if line.startswith("sms:+33612345678 <- ")]
    assert len(sms) == 1
    assert "alice" in sms[0] and "Léa" in sms[0]
    assert "STOP" in sent

    question = await story.say("sms:+33612345678 c'est gratuit ?")
    assert question.startswith("sms:+33612345678 <- ")
    assert "discord:alice" not in question, "a question is not joining"
    reply = await story.say("sms:+33612345678 OUI")
    assert "sms:+33612345678 <- Merci ! Votre code" in reply
    assert "discord:alice <- 🎉 Léa a rejoint" in reply
    again = await story.say("sms:+33612345678 CODE")
    assert "discord:alice" not in again, "the member is told once"
    stats = await story.say("staff:marie /stats")
    assert "1 amené par un pair" in stats


async def test_invitation_cancelled_sends_nothing(story: Story) -> None:
    await story.say("discord:alice /inviter 0612345678")
    cancelled = await story.say("discord:alice 2")
    assert "Rien n'a été envoyé" in cancelled
    assert "sms:" not in cancelled
    stale = await story.say("discord:alice oui")
    assert "sms:" not in stale


async def test_invalid_number_refused(story: Story) -> None:
    refused = await story.say("discord:alice /inviter 12345")
    assert refused.startswith("discord:alice <- ")
    assert "1. Oui" not in refused


async def test_staff_commands_refused_to_young_people(story: Story) -> None:
    for line in ("/stats", "/chaine alice", "/campagne VAN", "/inscrit alice", "/export"):
        answer = await story.say(f"discord:bob {line}")
        assert "réservée à l'équipe" in answer, line


async def test_staff_campaign_enrolment_and_export(story: Story, tmp_path: Path) -> None:
    created = await story.say("staff:marie /campagne VAN-NANTES van")
    assert "VAN-NANTES" in created
    came = await story.say("discord:dan /code van-nantes")
    assert "grâce à l'action VAN-NANTES" in came
    enrolled = await story.say("staff:marie /inscrit dan")
    assert "dan est enregistré·e" in enrolled
    again = await story.say("staff:marie /inscrit dan")
    assert "déjà enregistré" in again
    unknown = await story.say("staff:marie /inscrit nobody")
    assert "Je ne trouve personne" in unknown

    exported = await story.say("staff:marie /export")
    path = re.search(r"📎 (\S+\.csv)", exported)
    assert path, exported
    content = Path(path.group(1)).read_bytes().decode("utf-8")
    assert content.startswith("\ufeffparticipant;referrer;joined_at")
    assert "campaign:VAN-NANTES" in content
    assert "dan" not in content, "the export is pseudonymous"


async def test_handoff_reaches_staff_who_take_it(story: Story) -> None:
    asked = await story.say("discord:alice /conseiller je cherche un appart")
    assert "#staff <- 🙋 alice" in asked
    assert "je cherche un appart" in asked
    assert "discord:alice <- C'est transmis" in asked
    taken = await story.say("staff:marie 1")
    assert "staff:marie <- C'est noté : tu t'occupes de alice" in taken
    assert "discord:alice <- marie, de l'équipe" in taken
    twice = await story.say("staff:paul 1")
    assert "discord:alice" not in twice


async def test_questions_answered_or_offered_a_person(story: Story) -> None:
    answer = await story.say("discord:alice c koi le cej")
    assert "CEJ" in answer
    assert "1. 👍 Utile" in answer
    thanks = await story.say("discord:alice 1")
    assert "Merci pour ton retour" in thanks

    unsure = await story.say("discord:alice quelle est la capitale du pérou")
    assert "Parler à quelqu'un" in unsure
    hello = await story.say("discord:alice salut")
    assert "👍" not in hello, "a greeting is not rated as an answer"


async def test_bad_input_gets_a_helpful_reply(story: Story) -> None:
    unknown = await story.say("discord:alice /nimportequoi")
    assert "Je ne connais pas cette commande" in unknown
    assert "/parrainage" in unknown
    empty = await story.say("discord:alice \x00\x07")
    assert "vide" in empty
    long = await story.say("discord:alice " + "a" * 2500)
    assert "trop long" in long


async def test_my_data_then_forget(story: Story) -> None:
    code = code_in(await story.say("discord:alice /parrainage"))
    data = await story.say("discord:alice /mesdonnees")
    path = re.search(r"📎 (\S+\.json)", data)
    assert path, data
    stored = json.loads(Path(path.group(1)).read_text(encoding="utf-8"))
    assert stored["display_name"] == "alice"
    assert stored["code"] == code

    confirm = await story.say("discord:alice /oublier")
    assert "1. Oui, tout effacer" in confirm
    done = await story.say("discord:alice oui")
    assert "tes données sont effacées" in done
    chain = await story.say(f"staff:marie /chaine {code}")
    assert "Je ne trouve personne" in chain


async def test_english_locale_gets_english(tmp_path: Path) -> None:
    from bot.ports import Person

    story = await Story.open(tmp_path)
    try:
        person = Person("discord", "amy", "amy", locale="en-GB")
        replies = await story.app.conversation.command(person, "parrainage", {})
        assert replies[0].text.startswith("🎟️ Your code")
        refused = await story.app.conversation.command(person, "stats", {})
        assert "for the programme's staff" in refused[0].text
    finally:
        await story.close()


async def test_staff_see_unanswered_questions_and_feedback(story: Story) -> None:
    await story.say("discord:alice quelle est la capitale du pérou")
    await story.say("discord:alice c koi le cej")
    await story.say("discord:alice 2")
    report = await story.say("staff:marie /questions")
    assert "2 posées, 1 sans réponse sûre" in report
    assert "« quelle est la capitale du pérou », le " in report
    assert "→ sans réponse" in report
    assert "cej : 0 👍 · 1 👎" in report
    assert "c koi le cej" not in report, "a confident answer keeps no text"
    refused = await story.say("discord:alice /questions")
    assert "réservée à l'équipe" in refused
    bad = await story.say("staff:marie /questions beaucoup")
    assert "pas un nombre de jours" in bad


async def test_rejoin_is_not_a_new_referral(story: Story) -> None:
    link = link_in(await story.say("discord:alice /parrainage"))
    first = await story.say(f"join discord:bob via {link}")
    assert "Bienvenue bob" in first
    # The landing page records a join before Discord announces the member: no second welcome.
    assert await story.say(f"join discord:bob via {link}") == ""
    await story.app.db.write(
        lambda conn: conn.execute(
            "UPDATE participants SET joined_at = '2026-01-01T00:00:00+00:00'"
            " WHERE discord_id = 'bob'"
        )
    )
    back = await story.say(f"join discord:bob via {link}")
    assert "Re-bonjour bob" in back
    assert "discord:alice" not in back, "a rejoin thanks nobody"
    stats = await story.say("staff:marie /stats")
    assert "2 participants, dont 1 amené par un pair" in stats


async def test_leaving_and_coming_back(story: Story) -> None:
    link = link_in(await story.say("discord:alice /parrainage"))
    await story.say(f"join discord:bob via {link}")
    assert await story.app.referrals.member_left("bob")
    assert not await story.app.referrals.member_left("nobody")
    left = await story.app.db.fetchone("SELECT left_at FROM participants WHERE discord_id = 'bob'")
    assert left is not None and left[0]
    await story.app.db.write(
        lambda conn: conn.execute(
            "UPDATE participants SET joined_at = '2026-01-01T00:00:00+00:00'"
            " WHERE discord_id = 'bob'"
        )
    )
    back = await story.say(f"join discord:bob via {link}")
    assert "Re-bonjour" in back
    again = await story.app.db.fetchone("SELECT left_at FROM participants WHERE discord_id = 'bob'")
    assert again is not None and again[0] is None


async def test_question_answered_in_its_own_language_with_second_question_button(
    story: Story,
) -> None:
    english = await story.say("discord:alice how do i get help paying for driving lessons")
    assert "interest-free loan" in english
    assert "👍 Helpful" in english, "the buttons speak the question's language too"
    long = await story.say(
        "discord:alice Salut, je dors chez un pote depuis deux semaines et ça devient compliqué. "
        "Est-ce que vous pouvez m'aider à trouver un logement ? "
        "Et vous aidez aussi pour le permis ?"
    )
    assert "115" in long, long
    assert "Le permis de conduire" in long, "the second question is offered as a button"
