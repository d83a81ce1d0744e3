"""``relais report``: one self-contained HTML file with the figures and the charts embedded."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from analytics_support import GRAPH
from PIL import Image

from bot import cli


class Page(HTMLParser):
    """Collects image sources, link targets, table cells and the text of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.external: list[str] = []
        self.cells: list[str] = []
        self.text: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.images.append(values.get("src") or "")
        if tag in {"link", "script"} or (values.get("src") or "").startswith("http"):
            self.external.append(tag)
        self._in_cell = tag == "td"

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_cell and data.strip():
            self.cells.append(data.strip())


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("RELAIS_DB", "RELAIS_LANG", "PUBLIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RELAIS_TZ", "UTC")
    monkeypatch.setenv("RELAIS_PROGRAMME_NAME", "Relais <Nantes> & Co")
    db = tmp_path / "report.db"
    csv = tmp_path / "graph.csv"
    csv.write_text(GRAPH, encoding="utf-8")
    assert cli.main(["import", str(csv), "--db", str(db)]) == 0
    return db


def parse(path: Path) -> tuple[str, Page]:
    html = path.read_text(encoding="utf-8")
    page = Page()
    page.feed(html)
    page.close()
    return html, page


def test_report_is_self_contained_with_both_charts(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    assert cli.main(["report", "--out", str(out), "--db", str(env)]) == 0
    assert str(out) in capsys.readouterr().err
    html, page = parse(out)
    assert html.startswith("<!DOCTYPE html>") and "@media print" in html
    assert page.external == []
    assert len(page.images) == 3
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert image.size == (800, 700)
    # Programme name autoescaped, figures present.
    assert "Relais &lt;Nantes&gt; &amp; Co" in html
    text = " ".join(page.text)
    assert "bilan du bouche-à-oreille" in text
    cells = page.cells
    assert cells[cells.index("VAN (import)") + 1 : cells.index("VAN (import)") + 6] == [
        "1",
        "3",
        "4",
        "4",
        "50\u00a0%",
    ]
    # The last "Par un pair" row is the channel comparison (the first, the sources table).
    peer = len(cells) - 1 - cells[::-1].index("Par un pair")
    assert cells[cells.index("Par un pair") + 1] == "4"
    # Participants, brought someone, subtree, recruits within 30 days (none observed), enrolled.
    assert cells[peer + 1 : peer + 6] == ["4", "25\u00a0%", "1,25", "–", "25\u00a0%"]
    # No personal data: the imported refs appear nowhere as names, no phone numbers.
    # (Outside the embedded images, whose base64 may hold any three characters.)
    assert "+33" not in re.sub(r"data:image/png;base64,[^\"]+", "", html)


def test_report_in_english_for_a_period(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAIS_LANG", "en")
    out = tmp_path / "report-en.html"
    assert cli.main(["report", "--out", str(out), "--db", str(env), "--since", "2026-01-19"]) == 0
    html, page = parse(out)
    assert '<html lang="en">' in html and "word-of-mouth report" in html
    assert "since 2026-01-19" in html
    assert len(page.images) == 3
    peer = page.cells.index("By a peer")
    assert page.cells[peer + 1] == "2"


def test_report_of_an_empty_database(tmp_path: Path, env: Path) -> None:
    out = tmp_path / "empty.html"
    assert cli.main(["report", "--out", str(out), "--db", str(tmp_path / "empty.db")]) == 0
    _, page = parse(out)
    assert len(page.images) == 3


def test_report_errors_are_one_sentence(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert cli.main(["report", "--out", str(tmp_path / "x.html"), "--since", "hier"]) == 2
    assert "Traceback" not in capsys.readouterr().err
    bad = tmp_path / "missing" / "r.html"
    assert cli.main(["report", "--out", str(bad), "--db", str(env)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err
    assert not list(tmp_path.glob("**/*.part"))


def test_report_reads_for_people_on_the_rds_data(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("RELAIS_DB", "RELAIS_LANG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RELAIS_TZ", "America/Cayenne")
    db = tmp_path / "rds.db"
    assert cli.main(["import", str(data_dir / "rds-fauxtime.csv"), "--db", str(db)]) == 0
    # A date no import accepts any more, as an older database may hold it.
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE participants SET joined_at = '2100-03-12T14:25:00+00:00' WHERE ref = 'r135'"
        )
    out = tmp_path / "rds.html"
    assert cli.main(["report", "--out", str(out), "--db", str(db)]) == 0
    html, page = parse(out)
    text = " ".join(" ".join(page.text).split())
    assert "Période couverte : du 2010-03-03 au" in text
    assert "1 date d'arrivée impossible" in text and "r135 : 2100-03-12" in text
    assert "heure de America/Cayenne" in text and "UTC)" not in text
    assert "Non renseigné : aucune entrée" in text and "0\u00a0%" not in page.cells
    for word in ("Vague", "Délai médian", "Amenés par un pair", "Recrues en 30 jours"):
        assert f"{word}" in text
    assert "Glossaire" in text
    # Channels in words, never the stored names.
    assert "campagne SEED" in page.cells and "code tapé" in page.cells
    assert "campaign:seed" not in html and ">code<" not in html
    assert "Vague 7" in page.cells


def test_report_leaves_the_figures_arrays_and_never_fails_on_them(
    tmp_path: Path, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report that read the participants whole leaves their arrays in the database for the
    next one (issue 19 item 4); when they cannot be stored, the report is written all the
    same."""
    import sqlite3

    from referrals import analytics

    analytics._last_snapshot.clear()
    monkeypatch.setattr(analytics, "STORE_FROM_ROWS", 0)
    monkeypatch.setattr(analytics.snapshot_to_store, "__defaults__", (0,))
    out = tmp_path / "r.html"
    assert cli.main(["report", "--out", str(out), "--db", str(env)]) == 0
    with sqlite3.connect(env) as conn:
        assert conn.execute("SELECT top, count FROM figures_snapshot").fetchall() == [(8, 8)]

    def refuse(*args: object) -> None:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(analytics, "store_snapshot", refuse)
    analytics._last_snapshot.clear()
    out.unlink()
    assert cli.main(["report", "--out", str(out), "--db", str(env)]) == 0
    assert "<html" in out.read_text(encoding="utf-8")
