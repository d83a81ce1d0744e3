"""Supervised question classifier over the knowledge base's examples (issue 16).

Each language has its own model: character 2- to 4-grams within words (SMS spelling, typos) and word
uni/bigrams over stems and lexicon concepts (with ``#unk`` marks for words the topics do not
use) feed a multinomial logistic regression (softmax, fitted here by full-batch Adam), whose
probabilities decide when to abstain. Out-of-scope traps (``_outofscope.yaml``) are a class of
their own. A small character model tells French from English for each message.

Training takes a few seconds, so the fitted models are cached by a hash of everything they are
trained on (outside the source tree: see ``cache_dir``). Answering uses only numpy arrays: no
scikit-learn or scipy import.
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
DEFAULT_METHOD = "softmax"
MODEL_VERSION = "8"  # bump when features or training change, to invalidate caches
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


PREFIX = 5  # a word sharing a 5-letter piece with the topics' words is not unknown


def _pieces(token: str) -> list[str]:
    """What makes a word "known": itself, and for longer words the 5-letter pieces at its start
    or after one or two glued letters ("jminscri" shares "inscr" with "inscrire")."""
    if len(token) <= PREFIX:
        return [token]
    return [token, *(f"^{token[k : k + PREFIX]}" for k in range(3) if len(token) - k >= PREFIX)]


def mark_unknown(words: str, known: set[str] | frozenset[str]) -> str:
    """Add one ``#unk`` token per word the topics' examples do not use, so that the model can
    learn how much words from elsewhere ("permis de *chasse*") weigh against a subject."""
    tokens = words.split()
    extra = [UNKNOWN_TOKEN for t in tokens if t != "#n" and not any(p in known for p in _pieces(t))]
    return " ".join([*tokens, *extra])


def with_unknown_marks(
    prepared: Sequence[tuple[str, str]], labels: Sequence[str]
) -> tuple[list[tuple[str, str]], frozenset[str]]:
    """Training texts with unknown-word marks, and the topics' vocabulary.

    A word is "unknown" for a topic example when no other topic example uses it or a word
    sharing a piece with it (as it would be for a new message), and for a trap when no topic
    example does."""
    df: dict[str, int] = {}
    for (_, words), label in zip(prepared, labels, strict=True):
        if label == OUT:
            continue
        for piece in {p for t in words.split() for p in _pieces(t)}:
            df[piece] = df.get(piece, 0) + 1
    known = frozenset(df)
    marked = []
    for (chars, words), label in zip(prepared, labels, strict=True):
        tokens = words.split()
        limit = 0 if label == OUT else 1
        extra = [
            UNKNOWN_TOKEN
            for t in tokens
            if t != "#n" and all(df.get(p, 0) <= limit for p in _pieces(t))
        ]
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


# Lengths of the topic models' character n-grams. 2-4 rather than 2-5, with a stronger L2 penalty
# (SOFTMAX_L2): fewer confident wrong answers at the same share of right ones on all five
# development sets (issue 16; figures in bench/README.md).
CHAR_RANGE = (2, 4)


def topic_char_ngrams(text: str) -> list[str]:
    """The topic models' character n-grams: ``CHAR_RANGE`` within each word."""
    return char_ngrams(text, *CHAR_RANGE)


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
    """The scikit-learn linear models kept for comparison (the default, ``softmax``, is
    ``fit_softmax``). ``sgd``: one-vs-rest logistic regression fitted by averaged stochastic
    gradient descent (the default before); ``logreg``: multinomial logistic regression solved
    by L-BFGS (slow: 25-50 s); ``svm``: a linear SVM calibrated by sigmoid."""
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
    char_vec = _vectorizer(topic_char_ngrams, MIN_DF)
    word_vec = _vectorizer(word_ngrams, MIN_DF)
    chars = char_vec.fit_transform([c for c, _ in marked])
    words = word_vec.fit_transform([w for _, w in marked])
    x = hstack([chars, words]).tocsr()
    if method == "softmax":
        weights, classes, intercept = fit_softmax(x, list(labels))
    else:
        clf = make_classifier(method)
        clf.fit(x, list(labels))
        weights, intercept = _linear_weights(clf)
        classes = [str(c) for c in clf.classes_]
    split = chars.shape[1]
    return TopicModel(
        classes,
        _Features.of(char_vec, topic_char_ngrams),
        _Features.of(word_vec, word_ngrams),
        np.ascontiguousarray(weights[:split]),
        np.ascontiguousarray(weights[split:]),
        intercept,
        known,
    )


SOFTMAX_L2 = 1e-5  # L2 penalty (on the five dev sets: 1e-6 and 3e-6 over-fit, 2e-5 under-fits)
SOFTMAX_STEPS = 100  # 150 was no better on the dev sets, and half again as slow
SOFTMAX_RATE = 0.2


def fit_softmax(x: Any, labels: list[str]) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Multinomial logistic regression (softmax, L2, balanced class weights) fitted by full-batch
    gradient descent with Adam: deterministic, and fast on sparse features."""
    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[c] for c in labels])
    n, d = x.shape
    k = len(classes)
    counts = np.bincount(y, minlength=k)
    sample = (n / (k * counts))[y]
    sample /= sample.sum()
    onehot = np.zeros((n, k))
    onehot[np.arange(n), y] = 1.0
    w = np.zeros((d, k))
    b = np.zeros(k)
    lam, lr, steps = SOFTMAX_L2, SOFTMAX_RATE, SOFTMAX_STEPS
    mw, vw, mb, vb = np.zeros_like(w), np.zeros_like(w), np.zeros(k), np.zeros(k)
    xt = x.T.tocsr()
    scratch = np.empty_like(w)
    for t in range(1, steps + 1):
        z = x @ w
        z += b
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        z -= onehot
        z *= sample[:, None]
        gw = xt @ z
        gw += lam * w
        gb = z.sum(axis=0)
        # Adam, in place (the weights are the large arrays).
        mw *= 0.9
        mw += 0.1 * gw
        np.multiply(gw, gw, out=gw)
        vw *= 0.999
        vw += 0.001 * gw
        mb = 0.9 * mb + 0.1 * gb
        vb = 0.999 * vb + 0.001 * gb * gb
        step = lr * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        np.sqrt(vw, out=scratch)
        scratch += 1e-8 * np.sqrt(1 - 0.999**t)
        np.divide(mw, scratch, out=scratch)
        scratch *= step
        w -= scratch
        b -= step * mb / (np.sqrt(vb) + 1e-8 * np.sqrt(1 - 0.999**t))
    return w, classes, b


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


# --------------------------------------------------------------------------- augmentation

# Rewrites that turn written French into the way young people type it (applied to folded text).
_SMS_FR: tuple[tuple[str, str], ...] = (
    (r"\bc'est\b", "c"),
    (r"\bqu'est-ce que\b", "keske"),
    (r"\bqu'est ce que\b", "keske"),
    (r"\bje suis\b", "jsui"),
    (r"\bje (?=[bcdfghjklmnpqrstvwxz])", "j"),
    (r"\bj'", "j"),
    (r"\bt'", "t"),
    (r"\bl'", "l"),
    (r"\bd'", "d"),
    (r"\bm'", "m"),
    (r"\bn'", ""),
    (r"\bne ", ""),
    (r"\bqu'", "k"),
    (r"\bque\b", "ke"),
    (r"\bquoi\b", "koi"),
    (r"\bpourquoi\b", "pk"),
    (r"\bcomment\b", "cmt"),
    (r"\bquand\b", "qd"),
    (r"\bmeme\b", "mm"),
    (r"\bpour\b", "pr"),
    (r"\bvous\b", "vs"),
    (r"\btout\b", "tt"),
    (r"\bbeaucoup\b", "bcp"),
    (r"\bpas\b", "pa"),
    (r"\bplus\b", "plu"),
    (r"\bil y a\b", "ya"),
    (r"\by a\b", "ya"),
    (r"\bs'il vous plait\b", "svp"),
    (r"\bs'il te plait\b", "stp"),
    (r"\baujourd'hui\b", "ajd"),
    (r"\bbonjour\b", "slt"),
    (r"\bsalut\b", "slt"),
    (r"\best-ce que\b", "est ce ke"),
    (r"(?<=\w)er\b", "é"),
    (r"(?<=\w)ez\b", "é"),
)
_SMS_EN: tuple[tuple[str, str], ...] = (
    (r"\byou\b", "u"),
    (r"\byour\b", "ur"),
    (r"\bare\b", "r"),
    (r"\bplease\b", "pls"),
    (r"\bfor\b", "4"),
    (r"\bto\b", "2"),
    (r"\bwhat\b", "wat"),
    (r"\bbecause\b", "cuz"),
    (r"\bi'm\b", "im"),
    (r"\bdon't\b", "dont"),
    (r"\bcan't\b", "cant"),
    (r"\bthe\b", "da"),
    (r"\bknow\b", "kno"),
)
# Neutral context around a question, so that long messages are read for their question.
_CONTEXT: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "fr": (
        (
            "Bonjour,",
            "Bonjour, je me permets de vous écrire.",
            "Salut, j'ai 19 ans et je sais pas trop quoi faire en ce moment.",
            "Bonjour, je vous écris pour mon fils de 20 ans.",
            "Bonsoir, ma fille a reçu votre message et elle m'en a parlé.",
            "Wesh, un pote m'a envoyé le lien hier.",
            "Bonjour Madame, Monsieur, je suis la mère d'un jeune de 18 ans.",
            "Slt, jsuis pas trop à l'aise avec les démarches.",
            "Bonjour, j'ai arrêté mes études l'année dernière et je cherche ma voie.",
            "Hello, mon cousin m'a parlé de vous.",
            "Bonjour, je suis le père de Kevin, il m'a montré votre SMS.",
            "Excusez-moi de vous déranger.",
        ),
        (
            "Merci d'avance.",
            "Merci pour votre réponse.",
            "Bonne journée.",
            "Merci beaucoup, cordialement.",
            "Merci !",
            "Dites-moi svp.",
            "Je compte sur vous.",
        ),
        (
            "Bonjour, mon fils voudrait savoir :",
            "Ma fille se demande",
            "Mon neveu me demande",
            "Je pose la question pour mon fils :",
        ),
    ),
    "en": (
        (
            "Hi,",
            "Hello, I hope you can help me.",
            "Hey, I'm 19 and I don't really know what to do right now.",
            "Hello, I'm writing on behalf of my son, who is 20.",
            "Good evening, my daughter got your message and told me about it.",
            "Hi, a friend sent me the link yesterday.",
            "Dear Sir or Madam, I am the mother of an 18-year-old.",
            "Hey, I'm not great with paperwork.",
            "Hi, I dropped out of school last year and I'm looking for something.",
            "Sorry to bother you.",
        ),
        (
            "Thanks in advance.",
            "Thank you for your answer.",
            "Have a nice day.",
            "Kind regards.",
            "Thanks!",
            "Let me know please.",
        ),
        (
            "Hello, my son would like to know:",
            "My daughter is asking",
            "My nephew wants to know:",
            "Asking for my son:",
        ),
    ),
}
AUGMENT_SEED = 16
AUGMENT_KINDS = {"sms", "wrap"}  # the kinds of copies ``augment`` makes


def _rewrite(text: str, rules: Sequence[tuple[str, str]], keep: float, rng: Any) -> str:
    for pattern, replacement in rules:
        if rng.random() < keep:
            text = re.sub(pattern, replacement, text)
    return text


def _typo(text: str, rng: Any) -> str:
    """One dropped or doubled letter in a longer word."""
    words = text.split()
    long_words = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not long_words:
        return text
    i = long_words[int(rng.integers(len(long_words)))]
    word = words[i]
    j = int(rng.integers(1, len(word) - 1))
    words[i] = word[:j] + word[j + 1 :] if rng.random() < 0.6 else word[:j] + word[j] + word[j:]
    return " ".join(words)


def augment(
    texts: Sequence[str], labels: Sequence[str], lang: str, fold: Callable[[str], str]
) -> tuple[list[str], list[str]]:
    """Extra training texts made from the examples: SMS spelling with a typo, and each
    question inside neutral context (a greeting before, thanks after, "my son asks").

    Deterministic (seeded), so that the content hash of the examples still names the model."""
    rng = np.random.default_rng(AUGMENT_SEED)
    sms_rules = _SMS_FR if lang == "fr" else _SMS_EN
    before, after, relay = _CONTEXT.get(lang, _CONTEXT["en"])
    out_texts: list[str] = []
    out_labels: list[str] = []
    for text, label in zip(texts, labels, strict=True):
        if len(text.split()) < 2:
            continue
        folded = fold(text)
        sms = _typo(_rewrite(folded, sms_rules, 0.8, rng), rng).replace("?", "")
        if "sms" in AUGMENT_KINDS and sms != folded:
            out_texts.append(sms)
            out_labels.append(label)
        if len(text.split()) > 14 or "wrap" not in AUGMENT_KINDS:
            continue
        roll = rng.random()
        if roll < 0.5:
            wrapped = f"{before[int(rng.integers(len(before)))]} {text}"
        elif roll < 0.75:
            wrapped = f"{text} {after[int(rng.integers(len(after)))]}"
        else:
            wrapped = f"{relay[int(rng.integers(len(relay)))]} {text}"
        out_texts.append(wrapped)
        out_labels.append(label)
    return out_texts, out_labels
