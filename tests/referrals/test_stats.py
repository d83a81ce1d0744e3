"""Word-of-mouth figures (SPEC §6): the reference data sets and a hand-computed graph."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot import cli

HEADER = "participant,referrer,joined_at,channel,kind,enrolled_at\n"
# Hand-computed graph: trees A{B{D},C}, E{F}, G. Delays (h): B 10, C 24, D 26, F 2.
GRAPH = HEADER + (
    "A,,2026-01-01T00:00:00+00:00,campaign:VAN,,2026-01-10T00:00:00+00:00\n"
    "B,A,2026-01-01T10:00:00+00:00,code,,2026-01-11T00:00:00+00:00\n"
    "C,A,2026-01-02T00:00:00+00:00,,,\n"
    "D,B,2026-01-02T12:00:00+00:00,code,,\n"
    "E,,2026-01-03T00:00:00+00:00,,,\n"
    "F,E,2026-01-03T02:00:00+00:00,sms,relative,2026-01-12T00:00:00+00:00\n"
    "G,,2026-01-04T00:00:00+00:00,discord_invite,,\n"
)


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RELAIS_DB", raising=False)
    monkeypatch.delenv("RELAIS_LANG", raising=False)
    monkeypatch.setenv("RELAIS_TZ", "UTC")
    return tmp_path / "stats.db"


def load(db: Path, text: str) -> None:
    path = db.with_suffix(f".{abs(hash(text))}.csv")
    path.write_text(text, encoding="utf-8")
    assert cli.main(["import", str(path), "--db", str(db)]) == 0


def figures(db: Path, capsys: pytest.CaptureFixture[str], *options: str) -> dict[str, Any]:
    capsys.readouterr()
    assert cli.main(["stats", "--json", "--db", str(db), *options]) == 0
    return json.loads(capsys.readouterr().out)


def readme_figures(data_dir: Path) -> dict[str, dict[str, Any]]:
    """The 'Known figures' table of tests/data/README.md, by file name."""
    known = {}
    for line in (data_dir / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].endswith(".csv") and cells[1].isdigit():
            name, participants, seeds, depth, largest, waves = cells
            known[name] = {
                "participants": int(participants),
                "seeds": int(seeds),
                "max_depth": int(depth),
                "largest_tree": int(largest),
                "waves": [int(n) for n in waves.split()],
            }
    return known


def test_readme_table_is_read(data_dir: Path) -> None:
    assert set(readme_figures(data_dir)) == {"rds-fauxtime.csv", "rds-fauxmadrona.csv"}


@pytest.mark.parametrize("name", ["rds-fauxtime.csv", "rds-fauxmadrona.csv"])
def test_reference_data_sets(
    name: str, db: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = readme_figures(data_dir)[name]
    assert cli.main(["import", str(data_dir / name), "--db", str(db)]) == 0
    got = figures(db, capsys)
    assert {key: got[key] for key in expected} == expected
    assert got["referred"] == expected["participants"] - expected["seeds"]
    assert sum(got["waves"]) == expected["participants"]
    assert got["channels"] == {"code": got["referred"], "campaign:seed": expected["seeds"]}


def test_every_metric_on_a_hand_computed_graph(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    load(db, GRAPH)
    got = figures(db, capsys)
    assert got == {
        "participants": 7,
        "seeds": 3,
        "referred": 4,
        "k_factor": round(4 / 7, 4),
        "amplification": round(7 / 3, 4),
        "max_depth": 2,
        "mean_depth": round(5 / 7, 4),
        "largest_tree": 4,
        "waves": [3, 3, 1],
        "channels": {"code": 2, "unknown": 2, "campaign:VAN": 1, "discord_invite": 1, "sms": 1},
        "median_referral_delay_hours": 17.0,  # even count: (10 + 24) / 2
        "enrolled": 3,
        "enrollment_rate_referred": 0.5,
        "enrollment_rate_seeds": round(1 / 3, 4),
        "top_referrers": [
            {"participant": "A", "recruits": 2, "rank": 1},
            {"participant": "B", "recruits": 1, "rank": 2},
            {"participant": "E", "recruits": 1, "rank": 2},
        ],
        "top_referrers_more_tied": 0,
        # Nobody joined 30 days before the latest join (4 January).
        "recruits_30d": None,
        # Wave 0 (A, E, G) brought B, C, F; wave 1 (B, C, F) brought D; wave 2 is the last.
        "recruits_by_wave": [1.0, round(1 / 3, 4), 0.0],
        "invitations": {
            "sent": 0,
            "delivered": 0,
            "failed": 0,
            "joined": 0,
            "opted_out": 0,
            "conversion": None,
        },
        "actions": [],  # results per outreach action (issue 22)
    }


def test_median_with_an_odd_count(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load(db, GRAPH + "H,G,2026-01-04T05:30:00+00:00,,,\n")
    assert figures(db, capsys)["median_referral_delay_hours"] == 10.0  # 2 5.5 [10] 24 26


def test_median_of_a_fraction_of_an_hour(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load(db, HEADER + "a,,2026-01-01T00:00:00+00:00,,,\nb,a,2026-01-01T00:20:00+00:00,,,\n")
    assert figures(db, capsys)["median_referral_delay_hours"] == round(20 / 60, 4)


def test_empty_groups_give_null(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load(db, HEADER + "a,,2026-01-01T00:00:00+00:00,,,\nb,,2026-01-02T00:00:00+00:00,,,\n")
    got = figures(db, capsys)
    assert got["referred"] == 0 and got["k_factor"] == 0.0
    assert got["median_referral_delay_hours"] is None
    assert got["enrollment_rate_referred"] is None
    assert got["enrollment_rate_seeds"] == 0.0
    assert got["top_referrers"] == []
    assert got["channels"] == {"unknown": 2}


def test_empty_database(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    got = figures(db, capsys)
    assert got["participants"] == got["seeds"] == got["largest_tree"] == 0
    assert got["waves"] == [] and got["channels"] == {}
    assert got["amplification"] is None and got["k_factor"] is None
    assert got["enrollment_rate_referred"] is None and got["enrollment_rate_seeds"] is None


def test_period_counts_joiners_but_keeps_whole_graph_waves(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    load(db, GRAPH)
    got = figures(db, capsys, "--since", "2026-01-02", "--until", "2026-01-02")
    # Only C (wave 1) and D (wave 2) joined on 2 January.
    assert got["participants"] == 2 and got["seeds"] == 0 and got["referred"] == 2
    assert got["waves"] == [0, 1, 1] and got["max_depth"] == 2
    assert got["mean_depth"] == 1.5
    assert got["amplification"] is None
    assert got["largest_tree"] == 2
    assert got["median_referral_delay_hours"] == 25.0
    assert got["top_referrers"] == [
        {"participant": "A", "recruits": 1, "rank": 1},
        {"participant": "B", "recruits": 1, "rank": 1},
    ]
    assert got["channels"] == {"code": 1, "unknown": 1}
    since = figures(db, capsys, "--since", "2026-01-03")
    assert (since["participants"], since["seeds"], since["waves"]) == (3, 2, [2, 1])
    until = figures(db, capsys, "--until", "2026-01-01")
    assert (until["participants"], until["waves"]) == (2, [1, 1])


def test_period_bounds_are_local_days(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    load(db, GRAPH)
    monkeypatch.setenv("RELAIS_TZ", "Europe/Paris")
    # 2026-01-01 in Paris is [2025-12-31T23:00Z, 2026-01-01T23:00Z): A and B only.
    got = figures(db, capsys, "--until", "2026-01-01")
    assert got["participants"] == 2


def test_text_report_in_french(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load(db, GRAPH)
    capsys.readouterr()
    assert cli.main(["stats", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "7 participants" in out and "Plus grand arbre : 4" in out
    assert "{" not in out  # not JSON
