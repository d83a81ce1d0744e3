"""Tests for the question-answering engine and the default knowledge base."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from bot.faq import (
    REQUIRED_IDS,
    FaqEngine,
    KnowledgeBaseError,
    check_knowledge_base,
    faq_ask_command,
    fit_sms,
    gsm_length,
    is_gsm,
)

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = ROOT / "bot" / "messages"
HELDOUT = Path(__file__).parent / "data" / "faq_heldout.jsonl"
DEV = ROOT.parent / "shared" / "faq" / "dev-questions.jsonl"


@pytest.fixture(scope="module")
def engine() -> FaqEngine:
    """The engine over the default knowledge base."""
    return FaqEngine.load(MESSAGES)


@pytest.fixture
def kb(tmp_path: Path) -> Path:
    """A writable copy of the default knowledge base."""
    target = tmp_path / "messages"
    shutil.copytree(MESSAGES, target, ignore=shutil.ignore_patterns("*.j2"))
    return target


def test_default_knowledge_base_is_valid() -> None:
    assert check_knowledge_base(MESSAGES) == []


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_every_required_entry_exists_with_rendered_texts(engine: FaqEngine, lang: str) -> None:
    for entry_id in REQUIRED_IDS:
        entry = engine.entry(entry_id, lang)
        assert entry.title and entry.answer_text
        assert "{{" not in entry.answer_text and "{%" not in entry.answer_text
        assert (
            "/conseiller" in entry.answer_text
            or "/parrainage" in entry.answer_text
            or ("STOP" in entry.answer_text)
        )


TYPICAL_FR = {
    "dispositif": ["c koi relais en fait", "vous servez a quoi"],
    "eligibilite": ["g 26 ans c bon pour moi ?", "y a une limite d age"],
    "gratuit": ["c gratuit ?", "faut payer combien"],
    "cej": ["c quoi le CEJ", "le contrat d'engagement jeune jy ai droit ?"],
    "allocation": ["on est rémunéré ?", "jai besoin de thunes"],
    "inscription": ["comment jm inscris", "je veux prendre un rdv"],
    "documents": ["je dois ramener quels papiers", "faut la carte vitale ?"],
    "sans-diplome": ["jai pas de diplome", "j'ai lâché le lycée"],
    "formation": ["je veux faire une formation", "vous avez des formations en cuisine ?"],
    "emploi": ["je cherche du taf", "tu peux m'aider pour mon cv"],
    "permis": ["aide pour le permis", "je veux passer le code de la route"],
    "logement": ["je cherche un appart", "je suis a la rue"],
    "sante": ["je vais pas bien", "je peux voir un psy ?"],
    "mobilite": ["j'ai pas de voiture pour venir", "vous payez le ticket de bus ?"],
    "lieux-horaires": ["vous etes ou", "c ouvert le samedi ?"],
    "activites": ["y a des tournois de foot", "vous faites des ateliers ?"],
    "parrainage": ["c koi mon code de parrainage", "jveux inviter un pote"],
    "donnees": ["vous faites quoi de mes données", "je veux effacer mes infos"],
    "stop": ["je veux plus de sms", "arretez les messages"],
    "conseiller": ["je veux parler a un humain", "je voudrais parler a un conseiller"],
}


@pytest.mark.parametrize(
    ("expected", "question"),
    [(k, q) for k, qs in TYPICAL_FR.items() for q in qs],
)
def test_typical_french_phrasings(engine: FaqEngine, expected: str, question: str) -> None:
    ans = engine.answer(question, "fr")
    assert (ans.id, ans.kind) == (expected, "answer"), ans
    assert 0 < ans.score <= 1


def test_typos_and_sms_spelling(engine: FaqEngine) -> None:
    assert engine.answer("jcherche un logement", "fr").id == "logement"
    assert engine.answer("kesako le parrainage", "fr").id == "parrainage"
    assert engine.answer("LE PERMIS C FINANCÉ ???", "fr").id == "permis"


@pytest.mark.parametrize(
    "question",
    [
        "quelle est la capitale du Pérou",
        "il pleut demain ?",
        "tu peux faire mes devoirs de maths",
        "raconte une blague",
        "qui a gagné le match du psg",
        "",
        "???",
    ],
)
def test_out_of_scope_abstains(engine: FaqEngine, question: str) -> None:
    ans = engine.answer(question, "fr")
    assert ans.id is None and ans.kind == "unknown"
    assert "/conseiller" in ans.text
    assert len(ans.suggestions) <= 3


def test_unknown_offers_suggestions_from_yaml(engine: FaqEngine) -> None:
    ans = engine.answer("ateliers pour la confiance en soi et des trucs", "fr")
    if ans.kind == "unknown":
        assert all(isinstance(i, str) and isinstance(t, str) for i, t in ans.suggestions)
    weak = engine.answer("argent clé", "fr")
    assert weak.kind in {"answer", "unknown"}


@pytest.mark.parametrize(
    ("question", "expected"),
    [("salut", "bonjour"), ("wesh ça va", "bonjour"), ("merci !", "merci"), ("ok cimer", "merci")],
)
def test_smalltalk(engine: FaqEngine, question: str, expected: str) -> None:
    ans = engine.answer(question, "fr")
    assert (ans.kind, ans.id) == ("smalltalk", expected)
    assert ans.id not in REQUIRED_IDS


def test_greeting_with_a_question_answers_the_question(engine: FaqEngine) -> None:
    assert engine.answer("salut, comment je m'inscris ?", "fr").id == "inscription"


def test_english(engine: FaqEngine) -> None:
    assert engine.answer("how do i get my driving licence", "en").id == "permis"
    assert engine.answer("i'm looking for a job", "en").id == "emploi"
    assert engine.answer("hi", "en").kind == "smalltalk"
    assert engine.answer("what is the capital of peru", "en").id is None
    assert engine.entry("conseiller", "en").answer_text != engine.entry("conseiller").answer_text


def _accuracy(engine: FaqEngine, path: Path) -> tuple[float, float]:
    """Share of in-scope questions answered right, and of out-of-scope ones given none of the 20."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    ins = outs = ok_in = ok_out = 0
    for row in rows:
        ans = engine.answer(row["q"], row.get("lang", "fr"))
        got = ans.id if ans.kind == "answer" else None
        if row["topic"]:
            ins += 1
            ok_in += got == row["topic"]
        else:
            outs += 1
            ok_out += got is None
    return ok_in / ins, ok_out / outs


def test_heldout_quality(engine: FaqEngine) -> None:
    in_scope, out_of_scope = _accuracy(engine, HELDOUT)
    assert in_scope >= 0.9
    assert out_of_scope >= 0.85


@pytest.mark.skipif(not DEV.exists(), reason="shared dev set not available")
def test_dev_quality(engine: FaqEngine) -> None:
    in_scope, out_of_scope = _accuracy(engine, DEV)
    assert in_scope >= 0.9
    assert out_of_scope >= 0.9


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_short_answers_fit_two_gsm_segments(engine: FaqEngine, lang: str) -> None:
    for entry in engine.entries(lang):
        text = engine.short_answer(entry.id, lang)
        assert is_gsm(text), (entry.id, text)
        assert 0 < gsm_length(text) <= 306
    assert is_gsm(engine.unknown_short_answer(lang))


def test_fit_sms_cuts_at_sentence_boundary() -> None:
    text = "Première phrase très longue à couper. " * 20
    out = fit_sms(text)
    assert gsm_length(out) <= 306 and out.endswith(".") and is_gsm(out)
    assert "ê" not in fit_sms("Une fenêtre « ouverte » ’ œuvre ç")


def test_faq_ask_command_json(engine: FaqEngine) -> None:
    out = io.StringIO()
    faq_ask_command(engine, ["c gratuit ?", "capitale du Pérou", ""], "fr", True, out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [set(line) for line in lines] == [{"question", "id", "score", "answer"}] * 2
    assert lines[0]["id"] == "gratuit" and lines[1]["id"] is None
    assert "é" in out.getvalue()  # ensure_ascii=False


def test_faq_ask_command_readable(engine: FaqEngine) -> None:
    out = io.StringIO()
    faq_ask_command(engine, ["vous êtes où"], "fr", False, out)
    assert "vous êtes où" in out.getvalue() and "lieux-horaires" in out.getvalue()


# --------------------------------------------------------------------------- validation


def _problems_for(kb: Path) -> str:
    problems = check_knowledge_base(kb)
    assert problems
    return "\n".join(problems)


def test_duplicate_id(kb: Path) -> None:
    (kb / "fr" / "faq" / "copie.yaml").write_text(
        (kb / "fr" / "faq" / "permis.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    text = _problems_for(kb)
    assert "copie.yaml" in text and "'permis'" in text and "duplicate" in text


def test_missing_answer(kb: Path) -> None:
    (kb / "fr" / "faq" / "extra.yaml").write_text(
        "id: extra\ntitle: Extra\nexamples: [bla]\n", encoding="utf-8"
    )
    text = _problems_for(kb)
    assert "extra.yaml" in text and "'extra'" in text and "missing answer" in text


def test_unknown_variable(kb: Path) -> None:
    (kb / "en" / "faq" / "extra.yaml").write_text(
        "id: extra\ntitle: Extra\nexamples: [bla]\nanswer: 'Call {{ facts.fax_number }}'\n",
        encoding="utf-8",
    )
    text = _problems_for(kb)
    assert "en/faq/extra.yaml" in text and "'extra'" in text and "facts.fax_number" in text


def test_bad_yaml(kb: Path) -> None:
    (kb / "fr" / "faq" / "casse.yaml").write_text("id: casse\nanswer: [oops\n", encoding="utf-8")
    text = _problems_for(kb)
    assert "casse.yaml" in text and "invalid YAML" in text


def test_missing_required_entry(kb: Path) -> None:
    (kb / "en" / "faq" / "permis.yaml").unlink()
    text = _problems_for(kb)
    assert "'permis'" in text and "en/faq" in text


def test_non_gsm_sms_field(kb: Path) -> None:
    (kb / "fr" / "faq" / "extra.yaml").write_text(
        'id: extra\ntitle: X\nexamples: [bla]\nanswer: Oui.\nsms: "Réponds « STOP », ça va"\n',
        encoding="utf-8",
    )
    text = _problems_for(kb)
    assert "extra.yaml" in text and "'extra'" in text and "GSM-7" in text


def test_load_raises_with_file_and_entry(kb: Path) -> None:
    (kb / "fr" / "faq" / "extra.yaml").write_text("id: extra\ntitle: X\n", encoding="utf-8")
    with pytest.raises(KnowledgeBaseError) as err:
        FaqEngine.load(kb)
    assert "extra.yaml" in str(err.value) and "'extra'" in str(err.value)


def test_single_file_per_language_is_accepted(kb: Path) -> None:
    folder = kb / "fr" / "faq"
    merged = "entries:\n"
    for path in sorted(folder.glob("[!_]*.yaml")):
        body = path.read_text(encoding="utf-8")
        merged += "  - " + body.replace("\n", "\n    ").rstrip() + "\n"
        path.unlink()
    (folder / "base.yaml").write_text(merged, encoding="utf-8")
    assert check_knowledge_base(kb) == []


def test_staff_can_extend_lexicon(kb: Path) -> None:
    lexicon = kb / "fr" / "faq" / "_lexicon.yaml"
    text = lexicon.read_text(encoding="utf-8")
    text = text.replace("  travail: [taf,", "  travail: [zbeul,")
    lexicon.write_text(text, encoding="utf-8")
    engine = FaqEngine.load(kb)
    assert engine.answer("je cherche un zbeul", "fr").id == "emploi"


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # "proche" is a relative (parrainage) or "near" (a place), depending on the words around it.
        ("c'est ou l'antenne la plus proche", "lieux-horaires"),
        ("y a un endroit pres de chez moi ?", "lieux-horaires"),
        ("je peux inviter un proche ?", "parrainage"),
        # Questions about the bot itself are small talk, not a subject: "dormir" is housing only
        # when the person speaks of themselves.
        ("tu dors jamais toi", None),
        ("quel age tu as", None),
        ("je dors dehors depuis une semaine", "logement"),
        # "sans" is a word, not an elided "s" before "ans" (an age).
        ("je suis sans abri", "logement"),
        # A job's name says which training, not which subject; nor does how long it has lasted.
        ("je veux faire une formation de soudeur", "formation"),
        ("jai 26 ans c trop tard ?", "eligibilite"),
        # A relative who got the link asks what it is.
        ("mon pere voudrait savoir ce que c'est", "dispositif"),
        ("comment je supprime mon compte", "donnees"),
        # The driving test's theory ("le code"), not a referral code.
        ("jai raté mon code 2 fois", "permis"),
        ("faut avoir quel age minimum", "eligibilite"),
        ("je vis chez mes parents et je cherche un taf", "emploi"),
    ],
)
def test_words_read_in_their_context(
    engine: FaqEngine, question: str, expected: str | None
) -> None:
    answer = engine.answer(question)
    assert (answer.id if answer.kind == "answer" else None) == expected


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("my mum wants to know what this is", "dispositif"),
        ("is it too late, im 28", "eligibilite"),
        ("where is the closest office", "lieux-horaires"),
        ("i sleep in my car", "logement"),
        ("how do i delete my account", "donnees"),
        ("im pregnant", "sante"),
        ("how old is the earth", None),
        ("how old are you", None),
    ],
)
def test_english_words_read_in_their_context(
    engine: FaqEngine, question: str, expected: str | None
) -> None:
    answer = engine.answer(question, "en")
    assert (answer.id if answer.kind == "answer" else None) == expected
