"""Issue 16, the matcher itself: the softmax model and its unknown-word marks, the stop intent in
any phrasing (its own threshold, and as a sentence of a long message), the other language's model
when this one abstains, the examples file beside the entries, and answering without
scikit-learn or scipy."""

from __future__ import annotations

import pickle
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.faq import FaqEngine, check_knowledge_base
from bot.faq_model import (
    OUT,
    TopicModel,
    augment,
    fit_topics,
    mark_unknown,
    topic_char_ngrams,
    with_unknown_marks,
)

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = ROOT / "bot" / "messages"


@pytest.fixture(scope="module")
def engine() -> FaqEngine:
    return FaqEngine.load(MESSAGES)


@pytest.mark.parametrize(
    "question",
    [
        "laissez-moi tranquille",
        "je veux plus de vos messages",
        "ne contactez plus mon fils",
        "jveux plu de vos msg svp",
        "oubliez mon numéro s'il vous plaît",
        # Not a question: a refusal counts as the main request of a long message.
        "Bonjour. Votre programme ne m'intéresse pas du tout. Retirez mon numéro de votre liste.",
    ],
)
def test_stop_intent_in_the_brief_phrasings(engine: FaqEngine, question: str) -> None:
    ans = engine.answer(question, "fr", channel="sms", audience="relative")
    assert ans.id == "stop" and ans.is_stop, (question, ans.id, ans.score)


def test_context_that_merely_sounds_like_a_refusal_does_not_opt_out(engine: FaqEngine) -> None:
    # "ne ... plus" in an opening sentence of context read as a refusal (p 0.4-0.7) used to win
    # over the parent's real question, and by SMS a refusal opts the number out.
    worried = (
        "Je ne sais plus quoi faire avec mon fils. Il a 20 ans et il ne fait rien. "
        "Vous pouvez l'aider ?"
    )
    ans = engine.answer(worried, "fr", channel="sms", audience="relative")
    assert not ans.is_stop, (ans.id, ans.score)
    # A refusal the model is sure of still counts before a closing courtesy.
    polite = "Bonjour. Arrêtez de m'écrire s'il vous plaît, ça ne m'intéresse pas. Bonne journée."
    assert engine.answer(polite, "fr", channel="sms", audience="relative").is_stop


def test_an_english_word_in_a_french_conversation_reaches_the_english_model(
    engine: FaqEngine,
) -> None:
    # One word: too short to detect its language, so the French model reads it first, abstains,
    # and the English model, sure of it, answers in English.
    ans = engine.answer("Unsubscribe", "fr", channel="sms")
    assert ans.id == "stop" and ans.lang == "en"


def test_cross_language_fallback_keeps_abstaining_on_traps(engine: FaqEngine) -> None:
    for question in ("what's the weather tomorrow", "quel temps il fait demain"):
        assert engine.answer(question, "fr").kind != "answer", question


def test_unknown_marks_see_glued_letters_and_known_pieces() -> None:
    known = frozenset(["inscrire", "^inscr", "permis"])
    # "jminscri" shares "inscr" with a topic word: not unknown.
    assert mark_unknown("jminscri", known) == "jminscri"
    assert mark_unknown("chasse permis", known) == "chasse permis #unk"
    marked, vocabulary = with_unknown_marks(
        [("", "inscrire"), ("", "inscrit demain"), ("", "chasse")], ["a", "a", OUT]
    )
    assert "^inscr" in vocabulary and "chasse" not in vocabulary
    # "demain" is used by one topic example only: unknown for it, as in a new message.
    assert marked[1][1] == "inscrit demain #unk" and marked[2][1] == "chasse #unk"


def test_topic_character_ngrams_stay_within_words_and_up_to_four_letters() -> None:
    grams = topic_char_ngrams("velo casse")
    assert " v" in grams and "velo" in grams and " velo" not in grams  # 4 letters at most
    assert all(" " not in g.strip() for g in grams)  # never across two words
    assert "sse " in grams and "asse " not in grams and "cass" in grams


def _toy() -> tuple[list[tuple[str, str]], list[str]]:
    texts = {
        "velo": ["mon velo est casse", "reparer un velo", "atelier velo", "velo creve"],
        "cuisine": ["atelier cuisine", "apprendre a cuisiner", "recette cuisine", "cuisine"],
        OUT: ["meteo demain", "resultat du match", "blague"],
    }
    prepared = [(t, t) for values in texts.values() for t in values]
    labels = [label for label, values in texts.items() for _ in values]
    return prepared, labels


def test_softmax_model_learns_and_is_deterministic() -> None:
    prepared, labels = _toy()
    first = fit_topics(prepared, labels, "softmax")
    second = fit_topics(prepared, labels, "softmax")
    assert np.array_equal(first.char_weights, second.char_weights)
    probs = first.proba([("velo casse", "velo casse"), ("cuisine", "cuisine")])
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert first.classes[int(probs[0].argmax())] == "velo"
    assert first.classes[int(probs[1].argmax())] == "cuisine"


def test_answering_needs_neither_scikit_learn_nor_scipy(
    engine: FaqEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepared, labels = _toy()
    blob = pickle.dumps(fit_topics(prepared, labels, "softmax"))
    for name in list(sys.modules):
        if name.split(".")[0] in ("sklearn", "scipy"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sklearn", None)  # importing it now raises ImportError
    monkeypatch.setitem(sys.modules, "scipy", None)
    model: TopicModel = pickle.loads(blob)  # as read back from the cache
    assert model.classes[int(model.proba([("velo", "velo")])[0].argmax())] == "velo"
    assert engine.answer("je cherche du travail", "fr").id == "emploi"


def test_augment_makes_sms_and_context_copies() -> None:
    texts, labels = augment(["comment je m'inscris pour commencer"], ["inscription"], "fr", str)
    assert labels == ["inscription"] * len(texts) and len(texts) == 2
    assert any("cmt" in t or "j" in t.split()[0] for t in texts)
    assert any(len(t.split()) > 6 for t in texts)


def test_examples_file_adds_examples_to_existing_entries(tmp_path: Path) -> None:
    kb = tmp_path / "messages"
    shutil.copytree(MESSAGES, kb)
    question = "zorglub krapouille"  # words nothing else in the base uses
    before = FaqEngine.load(kb)
    assert before.answer(question, "fr").id != "activites"
    path = kb / "fr" / "faq" / "_examples.yaml"
    path.write_text(
        path.read_text(encoding="utf-8")
        + "\nactivites:\n  short:\n"
        + "".join(f"    - le {w} zorglub krapouille\n" for w in ("tournoi", "match", "jeu"))
        + "  sms:\n    - zorglub krapouille ce soir ?\n    - cest kan le zorglub krapouille\n",
        encoding="utf-8",
    )
    assert check_knowledge_base(kb) == []
    after = FaqEngine.load(kb)
    assert after.answer(question, "fr").id == "activites"
    styles = {s for s, e in after.entry("activites", "fr").styled_examples if "zorglub" in e}
    assert styles == {"short", "sms"}


def test_examples_file_naming_no_entry_or_a_bad_style_is_refused(tmp_path: Path) -> None:
    kb = tmp_path / "messages"
    shutil.copytree(MESSAGES, kb)
    path = kb / "fr" / "faq" / "_examples.yaml"
    path.write_text(
        "velo:\n  short:\n    - vous réparez les vélos\npermis:\n  poems:\n    - un permis\n",
        encoding="utf-8",
    )
    problems = "\n".join(check_knowledge_base(kb, lang="en"))
    assert "_examples.yaml" in problems and "velo" in problems and "no entry" in problems
    assert "poems" in problems
