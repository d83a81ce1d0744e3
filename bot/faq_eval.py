"""Honest figures for the question answering (``relais faq check --eval FILE.jsonl``).

A question is right when the engine answers the expected entry; an out-of-scope question
(``topic``/``id`` null) is right when the engine gives none of the topic entries; an answer with
the wrong entry is "confidently wrong". The cross-validation holds whole styles of the knowledge
base's examples out of training (train without the long messages, test on them), so its figures
predict how the engine does on messages of a kind it has not seen.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bot.faq import EXAMPLE_STYLES, FaqEngine
from bot.faq_model import DEFAULT_METHOD


@dataclass
class Tally:
    """Counts for one slice of an evaluation set."""

    in_scope: int = 0
    in_right: int = 0
    out_scope: int = 0
    out_right: int = 0
    wrong: int = 0

    def add(self, expected: str | None, got: str | None) -> None:
        """Count one question."""
        if expected is None:
            self.out_scope += 1
            self.out_right += got is None
        else:
            self.in_scope += 1
            self.in_right += got == expected
        self.wrong += got is not None and got != expected

    @property
    def total(self) -> int:
        """Questions counted."""
        return self.in_scope + self.out_scope

    def rates(self) -> tuple[float | None, float | None, float | None]:
        """In scope right, out of scope abstained, confidently wrong (None for no questions)."""
        return (
            self.in_right / self.in_scope if self.in_scope else None,
            self.out_right / self.out_scope if self.out_scope else None,
            self.wrong / self.total if self.total else None,
        )


@dataclass
class Report:
    """An evaluation's results: overall and by style, by who, by language and by topic."""

    overall: Tally = field(default_factory=Tally)
    slices: dict[str, dict[str, Tally]] = field(default_factory=dict)
    mistakes: list[tuple[str, str | None, str | None]] = field(default_factory=list)

    def slice(self, name: str, key: str) -> Tally:
        """The tally for one value of one dimension (e.g. style=long)."""
        return self.slices.setdefault(name, {}).setdefault(key, Tally())


def read_questions(path: Path) -> list[dict[str, Any]]:
    """Questions from a JSONL file; the expected entry is in ``topic`` or ``id``."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        expected = row.get("topic", row.get("id"))
        rows.append(
            {
                "q": str(row["q"]),
                "expected": expected or None,
                "lang": row.get("lang") or "fr",
                "who": row.get("who") or "-",
                "style": row.get("style") or "-",
            }
        )
    return rows


def evaluate(engine: FaqEngine, rows: Iterable[dict[str, Any]], stored_lang: str = "fr") -> Report:
    """Answer every question as a person whose stored language is ``stored_lang`` (the engine
    detects the message's language) and count the results."""
    report = Report()
    for row in rows:
        audience: Literal["youth", "relative"] = (
            "relative" if row.get("who") == "relative" else "youth"
        )
        ans = engine.answer(row["q"], stored_lang, audience=audience)
        got = ans.id if ans.kind == "answer" else None
        expected = row["expected"]
        report.overall.add(expected, got)
        for name in ("style", "who", "lang"):
            report.slice(name, str(row.get(name, "-"))).add(expected, got)
        report.slice("topic", expected or "-").add(expected, got)
        if got != expected:
            report.mistakes.append((row["q"], expected, got))
    return report


def cross_validate(engine: FaqEngine, method: str = DEFAULT_METHOD, folds: int = 4) -> Report:
    """Hold each style of examples out of training in turn and test on it; the out-of-scope
    traps are split into ``folds`` parts, each tested with a model trained on the others."""
    report = Report()
    for style in ("short", *EXAMPLE_STYLES):
        held = engine.trained_without([style], method=method)
        for lang in engine.languages:
            for entry in engine.entries(lang):
                if entry.kind != "answer":
                    continue
                for ex_style, example in entry.styled_examples:
                    if ex_style != style:
                        continue
                    ans = held.answer(example, lang, detect=False)
                    got = ans.id if ans.kind == "answer" else None
                    report.overall.add(entry.id, got)
                    report.slice("style", f"{lang}/{style}").add(entry.id, got)
                    if got != entry.id:
                        report.mistakes.append((example, entry.id, got))
    for fold in range(folds):

        def keep(i: int, fold: int = fold) -> bool:
            return i % folds != fold

        held = engine.trained_without([], out_keep=keep, method=method)
        for lang in engine.languages:
            for i, example in enumerate(engine.out_of_scope_examples(lang)):
                if i % folds != fold:
                    continue
                ans = held.answer(example, lang, detect=False)
                got = ans.id if ans.kind == "answer" else None
                report.overall.add(None, got)
                report.slice("style", f"{lang}/trap").add(None, got)
                if got is not None:
                    report.mistakes.append((example, None, got))
    return report


def _pct(value: float | None) -> str:
    return "   -  " if value is None else f"{100 * value:5.1f}%"


def format_report(report: Report, t: Callable[..., str]) -> str:
    """A readable table; ``t`` renders the column and row labels (cli.faq_eval_*)."""
    head = t("cli.faq_eval_header")
    lines = [head]

    def row(label: str, tally: Tally) -> str:
        a, b, c = tally.rates()
        return f"{label:<24} {tally.total:>5}  {_pct(a)}  {_pct(b)}  {_pct(c)}"

    lines.append(row(t("cli.faq_eval_all"), report.overall))
    for name in ("style", "who", "lang", "topic"):
        if name not in report.slices:
            continue
        lines.append("")
        for key, tally in sorted(report.slices[name].items()):
            lines.append(row(f"{name}={key}", tally))
    return "\n".join(lines)
