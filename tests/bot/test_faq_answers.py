"""Issue 16: answers that understand real messages (classifier, SMS and relatives' texts, facts,
language per message, and the dev sets as regression tests)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from bot.faq import REQUIRED_IDS, UNSET, FaqEngine, check_knowledge_base, pending_facts
from bot.faq_eval import evaluate, read_questions
from bot.faq_model import cached, content_hash, sentences
from bot.sms.gsm import is_gsm, septets

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = ROOT / "bot" / "messages"
DEV1 = ROOT.parent / "shared" / "faq" / "dev-questions.jsonl"
DEV2 = ROOT.parent / "shared" / "faq" / "dev-questions-2.jsonl"
DISCORD_COMMAND = re.compile(r"(?:^|[\s(])/[a-z]")


@pytest.fixture(scope="module")
def engine() -> FaqEngine:
    return FaqEngine.load(MESSAGES)


@pytest.mark.parametrize(
    "question",
    [
        "stop",
        "STOP merci",
        "arrêtez",
        "ne me recontactez plus",
        "merci de ne plus écrire à mon fils",
        "Bonjour, je ne suis pas intéressé par vos messages. Ne m'écrivez plus, merci.",
    ],
)
def test_stop_intent_in_any_phrasing(engine: FaqEngine, question: str) -> None:
    ans = engine.answer(question, "fr", channel="sms", audience="relative")
    assert ans.id == "stop" and ans.is_stop
    assert "STOP" in ans.text


@pytest.mark.parametrize(
    "question",
    [
        "il faut un permis de construire pour mon abri de jardin ?",
        "t'as un code promo pour des baskets",
        "comment se forme la grêle",
        "mon conseiller bancaire m'a bloqué ma carte",
        "erreur d'allocation mémoire dans mon programme",
        "tu veux sortir avec moi ce soir",
    ],
)
def test_traps_abstain(engine: FaqEngine, question: str) -> None:
    ans = engine.answer(question, "fr")
    assert ans.kind != "answer", (question, ans.id)


def test_long_message_answers_main_question_and_offers_second(engine: FaqEngine) -> None:
    question = (
        "Bonjour, mon fils a 19 ans et il a arrêté le lycée l'an dernier. Il passe ses journées "
        "à la maison. Est-ce qu'il peut trouver un travail avec vous ? Et est-ce qu'il existe une "
        "aide pour payer son permis de conduire ?"
    )
    ans = engine.answer(question, "fr", audience="relative")
    assert ans.kind == "answer" and ans.id == "emploi"
    assert ans.suggestions and ans.suggestions[0][0] == "permis"
    assert len(sentences(question)) == 4


def test_english_question_gets_english_answer_whatever_the_stored_language(
    engine: FaqEngine,
) -> None:
    ans = engine.answer("how can i get help paying for my driving licence", "fr")
    assert (ans.id, ans.lang) == ("permis", "en")
    assert ans.text == engine.entry("permis", "en").answer_text
    back = engine.answer("comment je peux trouver un appartement", "en")
    assert (back.id, back.lang) == ("logement", "fr")
    # Too short to tell: the stored language stays.
    assert engine.answer("ok", "en").lang == "en"


def test_relatives_are_addressed_as_vous(engine: FaqEngine) -> None:
    for entry in engine.entries("fr"):
        for channel in ("discord", "sms"):
            text = entry.text_for(channel, "relative")
            assert not re.search(r"\b(tu|te|ton|ta|tes|toi|tape|réponds)\b", text), (
                entry.id,
                channel,
                text,
            )


def test_how_did_you_get_my_number_names_the_inviter(engine: FaqEngine) -> None:
    ans = engine.answer(
        "Vous avez eu mon numéro comment ?", "fr", audience="relative", inviter="Inès"
    )
    assert ans.id == "donnees"
    assert "Inès" in ans.text and "STOP" in ans.text
    sms = engine.answer(
        "vous avez eu mon numéro comment ?", "fr", channel="sms", audience="relative"
    )
    assert "STOP" in sms.text and "Inès" not in sms.text


def test_english_relatives_get_texts_written_for_relatives(engine: FaqEngine) -> None:
    """Every English entry has its own relatives' texts, never the young people's."""
    for entry in engine.entries("en"):
        for channel in ("discord", "sms"):
            assert entry.text_for(channel, "relative") != entry.text_for(channel, "youth"), (
                entry.id,
                channel,
            )
    # A relative writing in English, whatever their stored language, is answered as a relative.
    ans = engine.answer("Can I register my son myself?", "fr", channel="sms", audience="relative")
    assert (ans.id, ans.lang) == ("inscription", "en")
    assert ans.text == engine.entry("inscription", "en").text_for("sms", "relative")
    assert "CONSEILLER" in ans.text and "young person" in ans.text
    number = engine.answer(
        "how did you get my number?", "en", channel="sms", audience="relative", inviter="Inès"
    )
    assert number.id == "donnees" and "Inès" in number.text and "STOP" in number.text


@pytest.mark.parametrize(
    ("question", "lang", "words"),
    [
        ("comment je peux aider mon fils ?", "fr", "vous pouvez l'aider"),
        ("how can i help my daughter?", "en", "you can help"),
    ],
)
def test_a_parent_asking_how_to_help_is_told_how(
    engine: FaqEngine, question: str, lang: str, words: str
) -> None:
    ans = engine.answer(question, lang, audience="relative")
    assert ans.id == "inscription", (question, ans.id, ans.score)
    assert words in ans.text


def test_are_you_a_robot_says_so_and_how_to_reach_a_person(engine: FaqEngine) -> None:
    ans = engine.answer("t'es un robot ?", "fr")
    assert (ans.kind, ans.id) == ("smalltalk", "robot")
    assert "robot" in ans.text and "/conseiller" in ans.text
    assert "CONSEILLER" in engine.answer("t'es un robot ?", "fr", channel="sms").text


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("audience", ["youth", "relative"])
def test_sms_texts_fit_name_keywords_and_keep_accents(
    engine: FaqEngine, lang: str, audience: str
) -> None:
    for entry in engine.entries(lang):
        text = entry.text_for("sms", audience)
        assert septets(text) <= 306, entry.id
        assert all(is_gsm(ch) for ch in text), entry.id
        assert not DISCORD_COMMAND.search(text), (entry.id, text)
        if entry.id in REQUIRED_IDS and entry.id not in {"gratuit"}:
            assert re.search(r"\b(CODE|CONSEILLER|STOP)\b", text), (entry.id, text)
    if lang == "fr":
        assert "é" in engine.entry("cej", "fr").text_for("sms")


def test_sms_channel_answer_is_the_sms_text(engine: FaqEngine) -> None:
    ans = engine.answer("je veux plus de sms", "fr", channel="sms")
    assert ans.text == engine.short_answer("stop", "fr")
    assert "/oublier" not in ans.text


def test_facts_are_current() -> None:
    engine = FaqEngine.load(MESSAGES)
    cej = engine.entry("cej", "fr").answer_text
    # The April 2026 amount was not found: a round figure that stays true, revalued every 1 April.
    assert "environ 560 €" in cej and "1er avril" in cej and "France Travail" in cej
    assert "18 mois" in cej
    permis = engine.entry("permis", "fr").answer_text
    # The apprentices' 500 € aid was abolished by the loi de finances pour 2026.
    assert "prêt sans intérêts" in permis and "500 €" in permis and "supprimée en 2026" in permis
    sante = engine.entry("sante", "fr").answer_text
    assert "Complémentaire santé solidaire" in sante and "12 séances" in sante
    assert "mutuelle" not in sante and "souvent gratuit" not in sante


def test_unset_facts_never_reach_a_person(engine: FaqEngine) -> None:
    assert "phone" in pending_facts(MESSAGES)
    for lang in ("fr", "en"):
        for entry in engine.entries(lang):
            for channel in ("discord", "sms"):
                for audience in ("youth", "relative"):
                    text = entry.text_for(channel, audience)
                    assert UNSET not in text
                    assert "compléter" not in text and "to be completed" not in text, entry.id
                    assert text.strip(), entry.id
        unknown = engine.answer("", lang)
        assert "compléter" not in unknown.text and UNSET not in unknown.text


def test_set_facts_are_shown(tmp_path: Path) -> None:
    kb = tmp_path / "messages"
    shutil.copytree(MESSAGES, kb)
    facts = kb / "facts.yaml"
    facts.write_text(
        facts.read_text(encoding="utf-8").replace(
            'phone: "02 00 00 00 00 (numéro à compléter)"', 'phone: "02 40 12 34 56"'
        ),
        encoding="utf-8",
    )
    assert "phone" not in pending_facts(kb)
    engine = FaqEngine.load(kb)
    assert "02 40 12 34 56" in engine.entry("lieux-horaires", "fr").answer_text


def test_staff_add_an_entry_with_examples_and_it_works(tmp_path: Path) -> None:
    kb = tmp_path / "messages"
    shutil.copytree(MESSAGES, kb)
    (kb / "fr" / "faq" / "velo.yaml").write_text(
        "id: velo\ntitle: Atelier vélo\nexamples:\n"
        "  - vous réparez les vélos ?\n  - atelier de réparation de vélo\n"
        "  - mon vélo est cassé vous pouvez m'aider\n  - jai crevé mon velo\n"
        "  - ou faire reparer ma bicyclette\n  - un atelier velo solidaire\n"
        "answer: |\n  L'atelier vélo est ouvert à tous. Tape /conseiller.\n",
        encoding="utf-8",
    )
    assert check_knowledge_base(kb) == []
    engine = FaqEngine.load(kb)
    assert engine.answer("est-ce que vous réparez les vélos cassés", "fr").id == "velo"


def test_sms_text_naming_a_discord_command_is_refused(tmp_path: Path) -> None:
    kb = tmp_path / "messages"
    shutil.copytree(MESSAGES, kb)
    path = kb / "fr" / "faq" / "gratuit.yaml"
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^sms: .*$", 'sms: "Tape /conseiller."', text)
    path.write_text(text, encoding="utf-8")
    problems = "\n".join(check_knowledge_base(kb))
    assert "gratuit" in problems and "/conseiller" in problems


def test_model_cache_by_content_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAIS_CACHE_DIR", str(tmp_path / "cache"))
    calls: list[int] = []

    def build() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    key = content_hash(["a"])
    assert cached(key, build) == {"n": 1}
    assert cached(key, build) == {"n": 1}
    assert cached(content_hash(["b"]), build) == {"n": 2}
    assert (tmp_path / "cache").stat().st_mode & 0o077 == 0


def _rates(engine: FaqEngine, path: Path) -> tuple[float, float, float]:
    report = evaluate(engine, read_questions(path))
    a, b, c = report.overall.rates()
    assert a is not None and b is not None and c is not None
    return a, b, c


@pytest.mark.skipif(not DEV1.exists(), reason="shared dev set not available")
def test_dev_set_1_regression(engine: FaqEngine) -> None:
    in_scope, out_scope, wrong = _rates(engine, DEV1)
    # Measured 96.7% / 100% / 0% with the softmax model (SGD: 100% / 100%; before issue 16:
    # 91.7% / 100%).
    assert in_scope >= 0.94 and out_scope >= 0.95 and wrong <= 0.02


@pytest.mark.skipif(not DEV2.exists(), reason="shared dev set not available")
def test_dev_set_2_regression(engine: FaqEngine) -> None:
    in_scope, out_scope, wrong = _rates(engine, DEV2)
    # Measured 84.7% / 98% / 4.1% with the char 2-4-gram softmax model (2-5-grams: 84.1% / 96% /
    # 5.0%; SGD: 83.5% / 92% / 5.9%; before issue 16: 41.2% / 90% / 5%).
    assert in_scope >= 0.83 and out_scope >= 0.95 and wrong <= 0.05


def test_faq_check_eval_prints_figures_by_style_and_topic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RELAIS_LANG", "en")
    questions = tmp_path / "set.jsonl"
    questions.write_text(
        '{"q": "je cherche du travail", "topic": "emploi"}\n'
        '{"q": "what is the capital of peru", "id": null, "lang": "en", "who": "youth",'
        ' "style": "trap"}\n'
        '{"q": "je voudrais arrêter les sms", "id": "stop", "who": "relative", "style": "sms"}\n',
        encoding="utf-8",
    )
    code = cli.main(["faq", "check", "--eval", str(questions), "--mistakes"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "facts.yaml" in err and "phone" in err  # unset facts are listed
    assert re.search(r"^all\s+3\s+100\.0%\s+100\.0%\s+0\.0%", out, re.M), out
    assert "style=trap" in out and "who=relative" in out and "topic=emploi" in out


def test_faq_check_eval_unreadable_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RELAIS_LANG", "en")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n", encoding="utf-8")
    code = cli.main(["faq", "check", "--eval", str(bad)])
    _out, err = capsys.readouterr()
    assert code == 2 and "Cannot read" in err and "Traceback" not in err
