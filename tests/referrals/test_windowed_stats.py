"""Windowed figures of SPEC §6 (``recruits_30d``, ``recruits_by_wave``) and fair leaderboards,
on small hand-computed graphs and on the reference data sets."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot import cli
from tests.referrals.test_stats import HEADER, figures, load

# S1 seed 1 Jan: R1 after 4 days, R2 after 45 days (outside its 30-day window); R1 brings R3
# after 15 days. S2 seed 1 Feb brings R4 after 9 days. X seed on 10 March (the latest join).
WINDOWED = HEADER + (
    "S1,,2026-01-01T00:00:00+00:00,,,\n"
    "R1,S1,2026-01-05T00:00:00+00:00,code,,\n"
    "R2,S1,2026-02-15T00:00:00+00:00,code,,\n"
    "R3,R1,2026-01-20T00:00:00+00:00,code,,\n"
    "S2,,2026-02-01T00:00:00+00:00,,,\n"
    "R4,S2,2026-02-10T00:00:00+00:00,code,,\n"
    "X,,2026-03-10T00:00:00+00:00,,,\n"
)


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RELAIS_DB", raising=False)
    monkeypatch.delenv("RELAIS_LANG", raising=False)
    monkeypatch.setenv("RELAIS_TZ", "UTC")
    return tmp_path / "windowed.db"


def test_recruits_30d_counts_only_observed_windows(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    load(db, WINDOWED)
    got = figures(db, capsys)
    # Horizon 10 March, cutoff 8 February: S1, R1, R3, S2 qualify; within 30 days S1 brought
    # R1 (not R2), R1 brought R3, R3 nobody, S2 brought R4: 3 / 4.
    assert got["recruits_30d"] == 0.75
    # Waves: S1 S2 X | R1 R2 R4 | R3.
    assert got["waves"] == [3, 3, 1]
    assert got["recruits_by_wave"] == [1.0, round(1 / 3, 4), 0.0]


def test_windowed_figures_over_a_period(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load(db, WINDOWED)
    since = figures(db, capsys, "--since", "2026-01-10")
    # Counted: R3, S2, R2, R4, X; horizon 10 March: R3 and S2 qualify, S2 brought R4.
    assert since["recruits_30d"] == 0.5
    assert since["waves"] == [2, 2, 1]
    # Wave 0 counted (S2, X) brought R4; R2 and R4 nobody; R3 nobody.
    assert since["recruits_by_wave"] == [0.5, 0.0, 0.0]
    until = figures(db, capsys, "--until", "2026-02-20")
    # Horizon 21 February 00:00, cutoff 22 January: S1, R1, R3 qualify and brought R1, R3.
    assert until["recruits_30d"] == round(2 / 3, 4)


def test_recruits_30d_is_null_when_nobody_had_30_days(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    load(db, HEADER + "a,,2026-01-01T00:00:00+00:00,,,\nb,a,2026-01-02T00:00:00+00:00,,,\n")
    got = figures(db, capsys)
    assert got["recruits_30d"] is None
    assert got["recruits_by_wave"] == [1.0, 0.0]


def test_recruits_at_exactly_30_days_count(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load(
        db,
        HEADER
        + "a,,2026-01-01T00:00:00+00:00,,,\n"
        + "b,a,2026-01-31T00:00:00+00:00,,,\n"
        + "c,a,2026-01-31T00:00:01+00:00,,,\n",
    )
    got = figures(db, capsys)
    assert got["recruits_30d"] == 1.0  # only a qualifies (cutoff 1 January 00:00:01): b counts


def test_leaderboard_ties_and_absent_people(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load(
        db,
        HEADER
        + "C,,2025-12-31T00:00:00+00:00,,,\n"
        + "B,,2026-01-02T00:00:00+00:00,,,\n"
        + "A,,2026-01-01T00:00:00+00:00,,,\n"
        + "D,,2026-01-03T00:00:00+00:00,,,\n"
        + "E,,2026-01-03T00:00:00+00:00,,,\n"
        + "F,,2026-01-03T00:00:00+00:00,,,\n"
        + "".join(f"a{i},A,2026-01-05T00:00:00+00:00,,,\n" for i in range(2))
        + "".join(f"b{i},B,2026-01-05T00:00:00+00:00,,,\n" for i in range(2))
        + "c0,C,2026-01-05T00:00:00+00:00,,,\n"
        + "".join(
            f"{who}{i},{who.upper()},2026-01-05T00:00:00+00:00,,,\n"
            for who in "def"
            for i in range(3)
        ),
    )
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE participants SET left_at = '2026-01-06T00:00:00+00:00' WHERE ref = 'D'"
        )
        conn.execute("UPDATE participants SET banned = 1 WHERE ref = 'E'")
        conn.execute(
            "UPDATE participants SET erased_at = '2026-01-06T00:00:00+00:00' WHERE ref = 'F'"
        )
    got = figures(db, capsys)
    # A and B tie at 2 (A joined first), C comes third; D left, E was banned, F was erased.
    assert got["top_referrers"] == [
        {"participant": "A", "recruits": 2, "rank": 1},
        {"participant": "B", "recruits": 2, "rank": 1},
        {"participant": "C", "recruits": 1, "rank": 3},
    ]
    assert got["top_referrers_more_tied"] == 0


def test_leaderboard_counts_ties_beyond_the_ten_shown(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seeds = "".join(f"s{i:02d},,2026-01-01T00:{i:02d}:00+00:00,,,\n" for i in range(13))
    recruits = "".join(f"r{i:02d},s{i:02d},2026-01-02T00:00:00+00:00,,,\n" for i in range(13))
    load(db, HEADER + seeds + recruits)
    got = figures(db, capsys)
    assert [t["participant"] for t in got["top_referrers"]] == [f"s{i:02d}" for i in range(10)]
    assert {t["rank"] for t in got["top_referrers"]} == {1}
    assert got["top_referrers_more_tied"] == 3


def test_fauxtime_recruits_by_wave(
    db: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["import", str(data_dir / "rds-fauxtime.csv"), "--db", str(db)]) == 0
    got = figures(db, capsys)
    # The chains die out after wave 7 (issue 19's hand count on fauxtime).
    by_wave = got["recruits_by_wave"]
    assert [round(x, 1) for x in by_wave[:7]] == [3.0, 1.8, 1.0, 1.6, 1.2, 1.2, 1.1]
    assert [round(x, 2) for x in by_wave[7:12]] == [0.73, 0.74, 0.61, 0.21, 0.17]
    assert got["recruits_by_wave"][-1] == 0.0
    waves = got["waves"]
    assert sum(r * n for r, n in zip(got["recruits_by_wave"], waves, strict=True)) == pytest.approx(
        got["referred"], abs=0.01
    )
    since = figures(db, capsys, "--since", "2010-03-25")
    # 142 in the raw file, whose r135 (2100) is counted among them; 141 in the corrected one.
    assert since["participants"] == 141
    # The data end 24 days after 25 March: nobody who joined from then had 30 days observed.
    assert since["recruits_30d"] is None
    brought = sum(r * n for r, n in zip(since["recruits_by_wave"], since["waves"], strict=True))
    assert brought / since["participants"] < 0.3  # not "Facteur k : 1"
