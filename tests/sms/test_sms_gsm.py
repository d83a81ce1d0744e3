"""GSM-7 segment counting as Twilio does, and every SMS template within 2 GSM-7 segments."""

from __future__ import annotations

import pytest
from sms_support import add_member, make_service

from bot.sms.gsm import count_segments, fit, is_gsm, to_gsm
from bot.texts import Texts
from referrals.store import Database

LONG_FIRST_NAME = "Marie-Bernadette Abe"  # 20 characters
LONG_MEMBER = "Kevin-Alexandre Dupont"
LONG_PROGRAMME = "Mission Locale Nantes Metropole"
LONG_LINK = "https://relais.mission-locale-nantes-metropole.fr/r/K7PM-4QXB"
LONG_BASE = "https://relais.mission-locale-nantes-metropole.fr"
# Every text sent by SMS, with the longest realistic values of its parameters.
SMS_KEYS = {
    "sms.stop_reply": {},
    "sms.stop_link": {"url": f"{LONG_BASE}/stop/AbCd-fGh"},
    "sms.stop_confirmed": {"programme": LONG_PROGRAMME},
    "sms.start_confirmed": {"programme": LONG_PROGRAMME},
    "sms.help": {"programme": LONG_PROGRAMME},
    "sms.your_code": {"code": "K7PM-4QXB", "link": LONG_LINK},
    "sms.unknown": {},
    "sms.stop_confirmed_vous": {"programme": LONG_PROGRAMME},
    "sms.help_vous": {"programme": LONG_PROGRAMME},
    "sms.your_code_relative": {"code": "K7PM-4QXB", "link": LONG_LINK, "programme": LONG_PROGRAMME},
    "sms.unknown_vous": {},
    "sms.handoff_ok": {},
    "sms.test": {"programme": LONG_PROGRAMME},
}


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("é" * 160, "GSM-7", 160, 1),  # é, è, à, ù are in the basic table
        ("€" * 80, "GSM-7", 160, 1),  # extension: two septets each
        ("€" * 81, "GSM-7", 162, 2),  # 76 pairs per 153-septet segment: 76 + 5
        ("a" * 152 + "€" + "a" * 10, "GSM-7", 164, 2),  # the escape pair moves to segment 2
        ("ê" * 70, "UCS-2", 70, 1),
        ("ê" * 71, "UCS-2", 71, 2),
        ("ê" * 134, "UCS-2", 134, 2),
        ("ê" * 135, "UCS-2", 135, 3),
        ("a" * 159 + "ç", "UCS-2", 160, 3),  # one ç: every segment is 67 characters
        ("😀" * 35, "UCS-2", 70, 1),
        ("😀" * 36, "UCS-2", 72, 2),  # 33 pairs per 67-unit segment, never split
        ("😀" * 67, "UCS-2", 134, 3),
    ],
)
def test_segment_counts(text: str, encoding: str, units: int, segments: int) -> None:
    counted = count_segments(text)
    assert (counted.encoding, counted.units, counted.segments) == (encoding, units, segments)


def test_escape_pairs_are_not_split() -> None:
    # 152 plain septets, then an escape pair that cannot fit in the 153rd position.
    assert count_segments("a" * 152 + "€" + "a" * 152).segments == 3
    assert count_segments("a" * 151 + "€" + "a" * 153).segments == 2


def test_to_gsm_transliterates_french() -> None:
    text = to_gsm("Ça t’intéresse ? « Être » l’été, œuvre… — c’est sûr !  😀")
    assert is_gsm(text)
    assert text == "Ça t'intéresse ? \" Etre \" l'été, oeuvre... - c'est sur !"  # Ç is GSM-7


def test_fit_shortens_at_a_word_with_an_ellipsis() -> None:
    text = fit("Bonjour très cher " + "mot " * 200)
    assert is_gsm(text) and count_segments(text).segments == 2 and text.endswith("...")
    assert fit("court") == "court"
    assert count_segments(fit("x" * 1000)).segments == 2


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("key", sorted(SMS_KEYS))
def test_every_sms_template_is_gsm7_within_two_segments(lang: str, key: str) -> None:
    text = Texts().render(key, lang, **SMS_KEYS[key])
    assert is_gsm(text), [ch for ch in text if not is_gsm(ch)]
    assert count_segments(text).segments <= 2


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("key", ["sms.invitation", "sms.invitation_short"])
@pytest.mark.parametrize("stop", ["sms.stop_reply", "sms.stop_link"])
def test_invitation_templates_are_gsm7(lang: str, key: str, stop: str) -> None:
    texts = Texts()
    stop_line = texts.render(stop, lang, url=f"{LONG_BASE}/stop/AbCd-fGh")
    text = texts.render(
        key,
        lang,
        first_name="Sarah",
        member="Kevin",
        programme="Relais",
        link=LONG_LINK,
        stop=stop_line,
    )
    assert is_gsm(text)
    assert count_segments(text).segments <= 2


def test_no_sms_key_is_forgotten() -> None:
    texts = Texts()
    sent = set(SMS_KEYS) | {"sms.invitation", "sms.invitation_short"}
    for lang in ("fr", "en"):
        keys = {k for k in texts.keys(lang) if k.startswith("sms.")}
        assert sent <= keys


SENDERS = {
    "two-way number": {"TWILIO_FROM_NUMBER": "+33700000000"},
    "one-way with stop text": {
        "TWILIO_FROM_NUMBER": "RELAIS",
        "SMS_STOP_TEXT": "STOP au 36180 (gratuit)",
    },
    "one-way with opt-out link": {"TWILIO_FROM_NUMBER": "RELAIS", "PUBLIC_BASE_URL": LONG_BASE},
}


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("sender", sorted(SENDERS))
async def test_invitation_with_long_values_fits_two_segments(
    db: Database, lang: str, sender: str
) -> None:
    sms = await make_service(db, RELAIS_PROGRAMME_NAME=LONG_PROGRAMME, **SENDERS[sender])
    for member, first in [
        (LONG_MEMBER, LONG_FIRST_NAME),
        ("Zoé 🌸 Françoise-Hélène Bénédicte", "Maëlle-Anaïs Pérégrine Ç"),
        (None, None),
    ]:
        body = sms.render_invitation(member, first, LONG_LINK, lang, "AbCd-fGh")
        assert is_gsm(body), body
        assert count_segments(body).segments <= 2, body
        assert LONG_LINK in body
        last = body.splitlines()[-1]
        if sender == "two-way number":
            assert "STOP" in last
        elif sender == "one-way with stop text":
            assert last == "STOP au 36180 (gratuit)"
        else:
            assert last.endswith(f"{LONG_BASE}/stop/AbCd-fGh")
    body = sms.render_invitation(LONG_MEMBER, LONG_FIRST_NAME, LONG_LINK, lang, "AbCd-fGh")
    assert LONG_MEMBER in body


async def test_realistic_invitation_uses_the_full_template(db: Database) -> None:
    sms = await make_service(db, RELAIS_PROGRAMME_NAME=LONG_PROGRAMME, PUBLIC_BASE_URL=LONG_BASE)
    await add_member(db)
    body = sms.render_invitation("Kevin", "Sarah", LONG_LINK, "fr", "AbCd-fGh")
    assert body.startswith("Sarah, Kevin te recommande Mission Locale Nantes Metropole :")
    assert "16-29 ans" in body
