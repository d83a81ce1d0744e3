"""Supervised question classifier over the knowledge base's examples (issue 16).

Each language has its own model: character n-grams within words (SMS spelling, typos) and word
uni/bigrams over stems and lexicon concepts feed a multinomial logistic regression, whose
probabilities decide when to abstain. Out-of-scope traps (``_outofscope.yaml``) are a class of
their own. A small character model tells French from English for each message.

Training takes about a second on a busy machine, so the fitted models are cached by a hash of
everything they are trained on (outside the source tree: see ``cache_dir``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import pickle
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

OUT = "__out__"  # the out-of-scope class
DEFAULT_METHOD = "sgd"
MODEL_VERSION = "4"  # bump when features or training change, to invalidate caches
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+|\n+")
_LONG_WORDS = 12


def cache_dir() -> Path:
    """Where fitted models are cached: $RELAIS_CACHE_DIR, else $XDG_CACHE_HOME/relais, else
    ~/.cache/relais, else a per-user temporary directory."""
    explicit = os.environ.get("RELAIS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "relais"
    home = Path.home()
    if home.is_dir() and os.access(home, os.W_OK):
        return home / ".cache" / "relais"
    return Path(tempfile.gettempdir()) / f"relais-cache-{os.getuid()}"


UNKNOWN_TOKEN = "#unk"


def mark_unknown(words: str, known: set[str] | frozenset[str]) -> str:
    """Add one ``#unk`` token per word the topics' examples do not use, so that the model can
    learn how much words from elsewhere ("permis de *chasse*") weigh against a subject."""
    tokens = words.split()
    extra = [UNKNOWN_TOKEN for t in tokens if t not in known and t != "#n"]
    return " ".join([*tokens, *extra])


def with_unknown_marks(
    prepared: Sequence[tuple[str, str]], labels: Sequence[str]
) -> tuple[list[tuple[str, str]], frozenset[str]]:
    """Training texts with unknown-word marks, and the topics' vocabulary.

    A word is "unknown" for a topic example when no other topic example uses it (as it would be
    for a new message), and for a trap when no topic example uses it."""
    df: dict[str, int] = {}
    for (_, words), label in zip(prepared, labels, strict=True):
        if label == OUT:
            continue
        for token in set(words.split()):
            df[token] = df.get(token, 0) + 1
    known = frozenset(df)
    marked = []
    for (chars, words), label in zip(prepared, labels, strict=True):
        tokens = words.split()
        limit = 0 if label == OUT else 1
        extra = [UNKNOWN_TOKEN for t in tokens if df.get(t, 0) <= limit and t != "#n"]
        marked.append((chars, " ".join([*tokens, *extra])))
    return marked, known


def char_ngrams(text: str, low: int = 2, high: int = 5) -> list[str]:
    """Character n-grams inside each word, padded with a space at both ends (SMS spelling and
    typos share most of them with the right spelling)."""
    grams: list[str] = []
    for word in text.split():
        padded = f" {word} "
        size = len(padded)
        for n in range(low, min(high, size) + 1):
            grams.extend(padded[i : i + n] for i in range(size - n + 1))
    return grams


def char_ngrams_short(text: str) -> list[str]:
    """Character 1- to 3-grams (for telling languages apart)."""
    return char_ngrams(text, 1, 3)


def word_ngrams(text: str) -> list[str]:
    """Words and pairs of neighbouring words."""
    words = text.split()
    return [*words, *(f"{a} {b}" for a, b in pairwise(words))]


@dataclass
class _Features:
    """One fitted TF-IDF view (sublinear tf, l2 norm), applied without scikit-learn."""

    analyzer: Callable[[str], list[str]]
    vocabulary: dict[str, int]
    idf: np.ndarray

    @classmethod
    def of(cls, vectorizer: Any, analyzer: Callable[[str], list[str]]) -> _Features:
        vocabulary = {str(k): int(v) for k, v in vectorizer.vocabulary_.items()}
        return cls(analyzer, vocabulary, np.asarray(vectorizer.idf_, dtype=np.float64))

    def vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Feature indexes and weights of one text."""
        counts: dict[int, int] = {}
        vocabulary = self.vocabulary
        for gram in self.analyzer(text):
            index = vocabulary.get(gram)
            if index is not None:
                counts[index] = counts.get(index, 0) + 1
        if not counts:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        idx = np.fromiter(counts, dtype=np.intp, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        values = (1.0 + np.log(tf)) * self.idf[idx]
        return idx, values / np.sqrt(values @ values)


MIN_DF = 1  # features seen in fewer training texts are dropped


def _vectorizer(analyzer: Callable[[str], list[str]], min_df: int = 1) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer=analyzer, sublinear_tf=True, lowercase=False, min_df=min_df)


@dataclass
class TopicModel:
    """A fitted classifier for one language: plain arrays, so that loading it from the cache
    and answering need neither scikit-learn nor its per-call overhead."""

    classes: list[str]
    chars: _Features
    words: _Features
    char_weights: np.ndarray  # (char features, classes)
    word_weights: np.ndarray  # (word features, classes)
    intercept: np.ndarray
    known: frozenset[str] = frozenset()

    def proba(self, prepared: Sequence[tuple[str, str]]) -> np.ndarray:
        """Class probabilities for prepared (char text, word text) pairs, one row each."""
        rows = []
        for chars, words in prepared:
            z = self.intercept.copy()
            idx, values = self.chars.vector(chars)
            if len(idx):
                z += values @ self.char_weights[idx]
            idx, values = self.words.vector(mark_unknown(words, self.known))
            if len(idx):
                z += values @ self.word_weights[idx]
            z = np.exp(z - z.max())
            rows.append(z / z.sum())
        return np.vstack(rows)


@dataclass
class LangModel:
    """Tells French from English: probability that a text is English."""

    features: _Features
    weights: np.ndarray
    intercept: float

    def english(self, text: str) -> float:
        """Probability that ``text`` (already folded) is English."""
        idx, values = self.features.vector(text)
        z = self.intercept + (float(values @ self.weights[idx]) if len(idx) else 0.0)
        return float(1.0 / (1.0 + np.exp(-z)))


def make_classifier(method: str = DEFAULT_METHOD) -> Any:
    """The linear model. ``sgd`` (default): logistic regression fitted by averaged stochastic
    gradient descent, as good as ``logreg`` (the same loss solved exactly by L-BFGS) on the dev
    sets and seven times faster to train; ``svm``: a linear SVM calibrated by sigmoid."""
    if method == "sgd":
        from sklearn.linear_model import SGDClassifier

        return SGDClassifier(
            loss="log_loss",
            alpha=3e-5,
            max_iter=50,
            tol=None,
            class_weight="balanced",
            average=True,
            random_state=0,
        )
    if method == "svm":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import LinearSVC

        return CalibratedClassifierCV(LinearSVC(C=0.5), cv=3, method="sigmoid")
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=20.0, max_iter=2000, class_weight="balanced")


def _linear_weights(clf: Any) -> tuple[np.ndarray, np.ndarray]:
    """(features x classes) weights and intercepts of a fitted multinomial linear model."""
    if hasattr(clf, "coef_"):
        return np.asarray(clf.coef_.T), np.asarray(clf.intercept_, dtype=np.float64)
    # A calibrated SVM: average the underlying models' decision functions (the softmax then
    # stands in for the sigmoid calibration).
    coefs = [c.estimator.coef_ for c in clf.calibrated_classifiers_]
    intercepts = [c.estimator.intercept_ for c in clf.calibrated_classifiers_]
    return np.mean(coefs, axis=0).T, np.mean(intercepts, axis=0)


def fit_topics(
    prepared: Sequence[tuple[str, str]], labels: Sequence[str], method: str = DEFAULT_METHOD
) -> TopicModel:
    """Fit one language's topic model."""
    from scipy.sparse import hstack

    marked, known = with_unknown_marks(prepared, labels)
    char_vec, word_vec = _vectorizer(char_ngrams, MIN_DF), _vectorizer(word_ngrams, MIN_DF)
    chars = char_vec.fit_transform([c for c, _ in marked])
    words = word_vec.fit_transform([w for _, w in marked])
    clf = make_classifier(method)
    clf.fit(hstack([chars, words]).tocsr(), list(labels))
    weights, intercept = _linear_weights(clf)
    split = chars.shape[1]
    return TopicModel(
        [str(c) for c in clf.classes_],
        _Features.of(char_vec, char_ngrams),
        _Features.of(word_vec, word_ngrams),
        np.ascontiguousarray(weights[:split]),
        np.ascontiguousarray(weights[split:]),
        intercept,
        known,
    )


def fit_lang(french: Sequence[str], english: Sequence[str]) -> LangModel:
    """Fit the French/English detector on folded texts."""
    from sklearn.linear_model import LogisticRegression

    vec = _vectorizer(char_ngrams_short)
    x = vec.fit_transform([*french, *english])
    y = [0] * len(french) + [1] * len(english)
    clf = LogisticRegression(C=10.0, max_iter=2000, class_weight="balanced")
    clf.fit(x, y)
    return LangModel(
        _Features.of(vec, char_ngrams_short),
        np.asarray(clf.coef_[0], dtype=np.float64),
        float(clf.intercept_[0]),
    )


def content_hash(payload: Any) -> str:
    """Stable hash of the training material (and of the library and model versions)."""
    try:
        library = importlib.metadata.version("scikit-learn")
    except importlib.metadata.PackageNotFoundError:
        library = "-"
    blob = json.dumps([MODEL_VERSION, library, payload], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def cached(key: str, build: Callable[[], Any]) -> Any:
    """The object stored under ``key`` in the cache, or build, store and return it.

    The cache directory is created private to the user (0700); a cache that cannot be read or
    written is ignored (the model is then trained at each start)."""
    folder = cache_dir()
    path = folder / f"faq-{key[:32]}.pickle"
    try:
        if path.is_file() and path.stat().st_uid == os.getuid():
            with path.open("rb") as fh:
                return pickle.load(fh)  # our own file in a private directory
    except (OSError, pickle.PickleError, EOFError, AttributeError, ImportError, ValueError):
        pass
    value = build()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".faq-", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass
    return value


def sentences(text: str) -> list[str]:
    """The sentences of a long message (a short one is one sentence)."""
    if len(text.split()) < _LONG_WORDS:
        return [text]
    parts = [p.strip() for p in _SENTENCE_RE.split(text) if len(p.strip().split()) >= 2]
    return parts or [text]


_ASKING_RE = re.compile(
    r"^\W*(?:et\s+|and\s+|alors\s+|so\s+)?"
    r"(?:comment|est[- ]ce|pourquoi|quand|combien|quel(?:le)?s?|ou |où|"
    r"puis[- ]je|pouvez|peut[- ]on|peux|je voudrais|j'aimerais|how|what|where|when|why|"
    r"which|can|could|is|are|do|does|will|would|should|i would like|i'd like)\b",
    re.IGNORECASE,
)


def is_question(sentence: str) -> bool:
    """Whether a sentence reads as a question or a request (not context)."""
    return "?" in sentence or bool(_ASKING_RE.search(sentence))
