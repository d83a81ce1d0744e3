"""Issue 16 item 7: every euro amount and every age told to young people or relatives is sourced.

A figure in ``facts.yaml`` or in a text field of a knowledge base entry (title, answer,
relative, sms, sms_relative) must be named in a YAML comment block of the same file (for
``facts.yaml``: of the same top-level key) that also gives the source's address and an ISO date
(of publication, of the revaluation, or of the day the page was read). Figures that come from
``facts.yaml`` through ``{{ facts.NAME }}`` are sourced there.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.faq import FaqEngine
from bot.texts import MESSAGES_DIR

TEXT_FIELDS = ("title", "answer", "relative", "sms", "sms_relative")
TEMPLATE_TAG = re.compile(r"\{[{%#].*?[}%#]\}", re.S)
NUMBER = r"\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:,\d+)?|\d+(?:,\d+)?"
EURO = (
    re.compile(rf"(?<![\d,])({NUMBER})\s*(?:€|euros?\b)", re.I),
    re.compile(rf"€\s*({NUMBER})"),
)
AGES = (
    re.compile(r"\b(\d{1,2})(?:\s*(?:-|à)\s*(\d{1,2}))?\s*ans\b"),  # 15-25 ans, 18 ans
    re.compile(r"\b(\d{1,2})\s*-\s*(\d{1,2})\s*year"),  # 16-25 year-olds
    re.compile(r"\b(\d{1,2})\s+years?\s+old\b"),
    re.compile(r"\b(?:under|over|aged|up to)\s+(\d{1,2})\b", re.I),  # under 18, up to 29
    re.compile(r"\b(\d{1,2})\+"),  # 18+
    re.compile(r"\((\d{1,2})-(\d{1,2})\b"),  # (15-25)
)
URL = re.compile(r"https?://\S+")
ISO_DATE = re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b")
TOP_KEY = re.compile(r"^[A-Za-z_][\w-]*\s*:")


@dataclass(frozen=True)
class Figure:
    file: str
    where: str
    kind: str  # "euro" or "age"
    numbers: tuple[str, ...]
    text: str


def _norm(number: str) -> str:
    return re.sub(r"[ \u00a0\u202f]", "", number)


def figures_in(text: str, file: str, where: str) -> list[Figure]:
    """Euro amounts and ages written in ``text`` (template tags left out)."""
    text = TEMPLATE_TAG.sub(" ", text)
    found = []
    for pattern in EURO:
        for m in pattern.finditer(text):
            found.append(Figure(file, where, "euro", (_norm(m.group(1)),), m.group(0)))
    for pattern in AGES:
        for m in pattern.finditer(text):
            numbers = tuple(g for g in m.groups() if g)
            found.append(Figure(file, where, "age", numbers, m.group(0)))
    return found


def comment_blocks(lines: list[str], start: int = 0, end: int | None = None) -> list[str]:
    """The comment blocks (consecutive comment lines) between ``start`` and ``end``."""
    blocks: list[str] = []
    current: list[str] = []
    for line in lines[start:end]:
        if line.lstrip().startswith("#"):
            current.append(line.lstrip()[1:])
        elif current:
            blocks.append("\n".join(current))
            current = []
    if current:
        blocks.append("\n".join(current))
    return blocks


def sourced(figure: Figure, blocks: list[str]) -> bool:
    """A block names every number of the figure (with its € sign for an amount), an address and a
    date."""
    for block in blocks:
        flat = re.sub(r"[ \u00a0\u202f]+", " ", block)
        if not (URL.search(flat) and ISO_DATE.search(flat)):
            continue
        squeezed = re.sub(r"(?<=\d)[ \u00a0\u202f](?=\d{3}\b)", "", flat)
        ok = True
        for n in figure.numbers:
            num = re.escape(n)
            unit = r"\s*(?:€|euros?\b)" if figure.kind == "euro" else ""
            if not re.search(rf"(?<![\d,]){num}(?![\d,]\d){unit}", squeezed, re.I):
                ok = False
        if ok:
            return True
    return False


def _sections(lines: list[str]) -> dict[str, tuple[int, int]]:
    """Line span of each top-level key of facts.yaml, with the comments just above it."""
    starts: list[tuple[str, int]] = []
    joined: dict[str, str] = {}  # a key written right under another one shares its comments
    for i, line in enumerate(lines):
        if TOP_KEY.match(line):
            key = line.split(":", 1)[0].strip()
            above = lines[i - 1] if i > 0 else ""
            if starts and above.strip() and not above.lstrip().startswith("#"):
                joined[key] = joined.get(starts[-1][0], starts[-1][0])
                continue
            j = i
            while j > 0 and (lines[j - 1].lstrip().startswith("#") or not lines[j - 1].strip()):
                j -= 1
            starts.append((line.split(":", 1)[0].strip(), j))
    spans = {}
    for n, (key, start) in enumerate(starts):
        end = starts[n + 1][1] if n + 1 < len(starts) else len(lines)
        spans[key] = (start, end)
    for key, owner in joined.items():
        spans[key] = spans[owner]
    return spans


def _strings(value: Any, path: str) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _strings(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in _strings(v, f"{path}[{i}]")]
    return [(path, value)]


def unsourced(messages_dir: Path) -> list[Figure]:
    """Every euro amount and age in facts.yaml and in the entries' texts without a dated source."""
    missing: list[Figure] = []
    facts_path = messages_dir / "facts.yaml"
    lines = facts_path.read_text(encoding="utf-8").splitlines()
    spans = _sections(lines)
    facts = yaml.safe_load("\n".join(lines)) or {}
    for key, value in facts.items():
        blocks = comment_blocks(lines, *spans[str(key)])
        for path, scalar in _strings(value, str(key)):
            if isinstance(scalar, int) and str(key).startswith("age"):
                figs = [Figure("facts.yaml", path, "age", (str(scalar),), str(scalar))]
            else:
                figs = figures_in(str(scalar), "facts.yaml", path)
            missing += [f for f in figs if not sourced(f, blocks)]
    for path in sorted(messages_dir.glob("*/faq/*.yaml")):
        if path.name.startswith("_"):
            continue
        text = path.read_text(encoding="utf-8")
        blocks = comment_blocks(text.splitlines())
        data = yaml.safe_load(text)
        entries = data if isinstance(data, list) else [data]
        shown = str(path.relative_to(messages_dir))
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            for field in TEXT_FIELDS:
                if isinstance(entry.get(field), str):
                    figs = figures_in(entry[field], shown, f"{entry.get('id')}.{field}")
                    missing += [f for f in figs if not sourced(f, blocks)]
    return missing


def test_every_euro_amount_and_age_has_a_dated_source() -> None:
    assert unsourced(MESSAGES_DIR) == []


def test_the_check_finds_the_figures_it_must_source() -> None:
    found = figures_in(
        "jusqu'à 561,68 € par mois, 1 200 €, €30, pour les 15-25 ans, 29 ans, 16-25 year-olds, "
        "under 18, (15-25), 18+ et {{ facts.cej.allowance_max }} ; 12 séances par an, 24h/24",
        "x",
        "y",
    )
    assert {(f.kind, f.numbers) for f in found} == {
        ("euro", ("561,68",)),
        ("euro", ("1200",)),
        ("euro", ("30",)),
        ("age", ("15", "25")),
        ("age", ("29",)),
        ("age", ("16", "25")),
        ("age", ("18",)),
    }


@pytest.fixture
def kb(tmp_path: Path) -> Path:
    target = tmp_path / "messages"
    shutil.copytree(MESSAGES_DIR, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_an_unsourced_amount_in_an_answer_fails(kb: Path) -> None:
    _edit(
        kb / "fr" / "faq" / "logement.yaml",
        "answer: |\n",
        "answer: |\n  Une aide de 300 € existe pour les 17-31 ans.\n",
    )
    missing = {(f.file, f.kind, f.numbers) for f in unsourced(kb)}
    assert missing == {
        ("fr/faq/logement.yaml", "euro", ("300",)),
        ("fr/faq/logement.yaml", "age", ("17", "31")),
    }


def test_a_comment_without_address_or_date_is_not_a_source(kb: Path) -> None:
    path = kb / "en" / "faq" / "gratuit.yaml"
    _edit(path, "sms: ", "# 40 €: the programme's fee (no address, no date)\nsms: ")
    _edit(path, "answer: |\n", "answer: |\n  A 40 € deposit is asked.\n")
    assert [f.numbers for f in unsourced(kb)] == [("40",)]
    _edit(path, "(no address, no date)", "https://exemple.fr/tarifs read 2026-12-03")
    assert unsourced(kb) == []


def test_an_unsourced_figure_in_facts_fails(kb: Path) -> None:
    facts = kb / "facts.yaml"
    facts.write_text(
        facts.read_text(encoding="utf-8") + 'bonus:\n  fr: "une prime de 150 €"\n',
        encoding="utf-8",
    )
    _edit(facts, "age_max: 29", "age_max: 30")
    missing = {(f.where, f.numbers) for f in unsourced(kb)}
    assert missing == {("bonus.fr", ("150",)), ("age_max", ("30",))}


def test_the_figures_that_change_stay_true() -> None:
    """The CEJ amount as a round figure with its yearly revaluation (the April 2026 amounts were not
    found); the apprentices' driving licence aid named as abolished, never offered."""
    engine = FaqEngine.load(MESSAGES_DIR)
    cases = (("fr", "environ 560 €", "1er avril"), ("en", "about 560 €", "1 April"))
    for lang, about, april in cases:
        cej = engine.entry("cej", lang).answer_text
        assert about in cej and april in cej
        assert "561,68" not in cej and "500 €" not in cej
    permis = engine.entry("permis", "fr")
    for channel in ("discord", "sms"):
        for audience in ("youth", "relative"):
            text = permis.text_for(channel, audience)
            assert "1 € par jour" in text and "15-25 ans" in text
            if "500 €" in text:
                assert "supprimée" in text
    assert "supprimée en 2026" in permis.answer_text
    assert "abolished in 2026" in engine.entry("permis", "en").answer_text
