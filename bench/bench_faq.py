"""Answer time and start-up time of the FAQ engine on the default knowledge base (or, with
--synthetic, 20 real + 180 synthetic entries per language)."""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.faq import FaqEngine  # noqa: E402

SYLLABLES = ["ra", "to", "mi", "ne", "lo", "ka", "vu", "pe", "si", "da", "go", "ri", "ta", "bu"]
TEMPLATES = [
    "comment avoir {a} pour {b}",
    "je cherche {a}",
    "c'est quoi {a} et {b}",
    "vous proposez {a} ?",
    "j'ai besoin d'aide pour {a} {c}",
    "où trouver {a}",
    "est-ce que {a} c'est possible",
    "je veux faire {a} avec {b}",
    "y a {a} près de chez moi",
    "combien de temps pour {a}",
]


def _word(rng: random.Random) -> str:
    """A made-up word."""
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))


def _synthetic_entry(rng: random.Random, number: int) -> str:
    """YAML text of one synthetic entry."""
    topic = [_word(rng) for _ in range(4)]
    examples = [
        rng.choice(TEMPLATES).format(a=rng.choice(topic), b=rng.choice(topic), c=_word(rng))
        for _ in range(12)
    ]
    body = {
        "id": f"synth-{number:03d}",
        "title": f"Sujet {topic[0]}",
        "keywords": topic,
        "examples": examples,
        "answer": "Réponse sur " + topic[0] + ". Tape /conseiller pour en parler.",
    }
    return json.dumps(body, ensure_ascii=False)  # JSON is valid YAML


def build_base(target: Path, rng: random.Random) -> Path:
    """Copy the default knowledge base and add 180 synthetic entries per language."""
    messages = target / "messages"
    shutil.copytree(ROOT / "bot" / "messages", messages, ignore=shutil.ignore_patterns("*.j2"))
    for lang in ("fr", "en"):
        folder = messages / lang / "faq"
        for number in range(180):
            (folder / f"synth-{number:03d}.yaml").write_text(
                _synthetic_entry(rng, number), encoding="utf-8"
            )
    return messages


def questions() -> list[str]:
    """Questions to time: the team's held-out set and the shared dev sets when present."""
    paths = [
        ROOT / "tests" / "bot" / "data" / "faq_heldout.jsonl",
        ROOT.parent / "shared" / "faq" / "dev-questions.jsonl",
        ROOT.parent / "shared" / "faq" / "dev-questions-2.jsonl",
    ]
    out: list[str] = []
    for path in paths:
        if path.exists():
            out += [json.loads(line)["q"] for line in path.read_text().splitlines() if line]
    return out


def main() -> None:
    """Train (cold, then from the cache), time every question several times on both channels,
    print median and p99."""
    rng = random.Random(7)
    synthetic = "--synthetic" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RELAIS_CACHE_DIR"] = str(Path(tmp) / "cache")
        messages = build_base(Path(tmp), rng) if synthetic else ROOT / "messages"
        start = time.perf_counter()
        engine = FaqEngine.load(messages)
        train_ms = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        engine = FaqEngine.load(messages)
        load_ms = (time.perf_counter() - start) * 1000
        entries = len(engine.entries("fr"))
        qs = questions()
        rng.shuffle(qs)
        timings: list[float] = []
        long_timings: list[float] = []
        for round_ in range(5):
            for question in qs:
                channel: Literal["discord", "sms"] = "sms" if round_ % 2 else "discord"
                t0 = time.perf_counter()
                engine.answer(question, "fr", channel=channel)
                elapsed = (time.perf_counter() - t0) * 1000
                timings.append(elapsed)
                if len(question.split()) >= 12:
                    long_timings.append(elapsed)
    timings.sort()
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    print(
        f"entries (fr): {entries}, questions timed: {len(timings)}, "
        f"start-up: {train_ms:.0f} ms training (no cache), {load_ms:.0f} ms from the cache"
    )
    median = statistics.median(timings)
    print(f"median: {median:.3f} ms  p99: {p99:.3f} ms  max: {timings[-1]:.3f} ms")
    if long_timings:
        print(f"long messages (>= 12 words): median {statistics.median(long_timings):.3f} ms")


if __name__ == "__main__":
    main()
