"""The numpy pass (issue 19 item 4) gives exactly the figures of the former SQL and Python
loops (``analytics_reference``): on a small hand-computed graph, on random forests with
campaigns, SMS, enrolment, erased people, an implausible date and gaps in the ids, and on both
RDS data sets, for every period and time zone the tests use."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import analytics_reference as reference
import pytest

from referrals import analytics, csvio, relatives, stats
from referrals.store import Database

HEADER = "participant,referrer,joined_at,channel,kind,enrolled_at\n"
NOW = datetime(2026, 6, 1, tzinfo=UTC)
# S1 (1 Jan) brings R1 (4 days) and R2 (45 days); R1 brings R3 (15 days); S2 (campaign VAN)
# brings R4 (9 days); X joins alone on 10 March.
SMALL = HEADER + (
    "S1,,2026-01-01T00:00:00+00:00,,,\n"
    "R1,S1,2026-01-05T00:00:00+00:00,code,,2026-01-07T00:00:00+00:00\n"
    "R2,S1,2026-02-15T00:00:00+00:00,sms,relative,\n"
    "R3,R1,2026-01-20T00:00:00+00:00,code,,\n"
    "S2,,2026-02-01T00:00:00+00:00,campaign:VAN,,\n"
    "R4,S2,2026-02-10T00:00:00+00:00,code,,\n"
    "X,,2026-03-10T00:00:00+00:00,,,\n"
)
PERIODS = [
    (None, None),
    ("2026-01-19T00:00:00+00:00", None),
    (None, "2026-02-10T00:00:00+00:00"),
    ("2026-01-05T00:00:00+00:00", "2026-03-01T00:00:00+00:00"),
]


def forest(rows: int, seed: int) -> str:
    rng = random.Random(seed)
    start = datetime(2025, 3, 20, 8, 0, tzinfo=UTC)
    lines, joined = [], []
    for i in range(rows):
        at = (
            start + timedelta(hours=rng.randrange(0, 24 * 20))
            if i == 0
            else (joined[-1] + timedelta(minutes=rng.randrange(0, 60 * 30)))
        )
        joined.append(at)
        if i == 0 or rng.random() < 0.1:
            referrer, channel = "", rng.choice(["campaign:VAN", "campaign:Bus", "", "sms"])
        else:
            referrer, channel = f"p{rng.randrange(i)}", rng.choice(["code", "sms", "link", ""])
        enrolled = (at + timedelta(days=3)).isoformat() if rng.random() < 0.2 else ""
        lines.append(f"p{i},{referrer},{at.isoformat()},{channel},,{enrolled}\n")
    return HEADER + "".join(lines)


async def same_figures(db: Database, periods: list[tuple[str | None, str | None]]) -> None:
    for since, until in periods:
        for tz in ("UTC", "Europe/Paris"):
            args: tuple[Any, ...] = (since, until, tz)
            assert await db.read(analytics.cohorts, *args) == await db.read(
                reference.cohorts, *args
            )
            assert await db.read(analytics.timeline, *args, NOW) == await db.read(
                reference.timeline, *args, NOW
            )
            assert await db.read(analytics.weekly, *args, NOW) == await db.read(
                reference.weekly, *args, NOW
            )
        assert await db.read(analytics.channel_comparison, since, until) == await db.read(
            reference.channel_comparison, since, until
        )
        # What /stats, the report and the weekly post read: one pass, the same figures.
        figures, extra = await db.read(analytics.staff_figures, since, until, "Europe/Paris", NOW)
        assert figures == await db.read(stats.compute, since, until)
        assert extra == await db.read(reference.compute, since, until, "Europe/Paris", NOW)
    row = await db.fetchone("SELECT COALESCE(MAX(id), 0) + 1 FROM participants")
    assert row is not None
    top = int(row[0])
    assert await db.read(analytics.subtree_sizes) == await db.read(reference.subtree_sizes)
    assert await db.read(analytics.recruits_within_window, top) == await db.read(
        reference.recruits_within_window, top
    )


async def test_small_graph(tmp_db: Database) -> None:
    await tmp_db.call(csvio.import_rows, SMALL, "UTC")
    await same_figures(tmp_db, PERIODS)
    # And by hand: S1's subtree is S1, R1, R2, R3; R1 brought R3 within 30 days.
    sizes = await tmp_db.read(analytics.subtree_sizes)
    assert list(sizes[1:8]) == [4, 2, 1, 1, 2, 1, 1]
    assert list(await tmp_db.read(analytics.recruits_within_window, 8))[1:] == [1, 1, 0, 0, 1, 0, 0]


@pytest.mark.parametrize("seed", [1, 2])
async def test_random_forests(tmp_db: Database, seed: int) -> None:
    await tmp_db.call(csvio.import_rows, forest(400, seed), "UTC")

    def damage(conn: Any) -> None:
        # What a real database holds: erased people, gaps in the ids, a date from 2100.
        conn.execute("UPDATE participants SET erased_at = joined_at WHERE id % 37 = 0")
        conn.execute("DELETE FROM participants WHERE id IN (SELECT MAX(id) FROM participants)")
        conn.execute(
            "UPDATE participants SET joined_at = '2100-03-12T14:25:00+00:00' WHERE id = 50"
        )

    await tmp_db.write(damage)
    await same_figures(tmp_db, [*PERIODS, ("2025-04-01T00:00:00+00:00", None)])


@pytest.mark.parametrize("name", ["rds-fauxtime.csv", "rds-fauxmadrona.csv"])
async def test_rds_sets(tmp_db: Database, data_dir: Path, name: str) -> None:
    await tmp_db.call(csvio.import_rows, (data_dir / name).read_text(encoding="utf-8"), "UTC")
    await same_figures(tmp_db, [(None, None), ("2010-03-25T00:00:00+00:00", None)])


async def test_empty_database(tmp_db: Database) -> None:
    await same_figures(tmp_db, PERIODS[:2])


async def test_kept_figures_follow_every_change(tmp_db: Database) -> None:
    """The snapshot and the figures kept between calls (issue 19) are those of the database as
    it is now: after a new participant, after changes that keep the highest id (enrolment, a
    ban, an erasure) made on the writer, and never shared with a caller that edits them."""
    await tmp_db.call(csvio.import_rows, forest(300, 3), "UTC")

    async def check() -> None:
        figures, extra = await tmp_db.read(analytics.staff_figures, None, None, "UTC", NOW)
        assert figures == await tmp_db.read(stats.compute, None, None)
        assert extra == await tmp_db.read(reference.compute, None, None, "UTC", NOW)
        figures["participants"] = -1  # a caller's edit stays its own
        extra["channel_comparison"].clear()

    await check()
    await check()  # from what was kept
    for change in (
        "UPDATE participants SET enrolled_at = joined_at WHERE id % 5 = 0",
        "UPDATE participants SET banned = 1 WHERE id IN (SELECT referrer_id FROM participants"
        " GROUP BY referrer_id ORDER BY COUNT(*) DESC LIMIT 3)",
        "UPDATE participants SET erased_at = joined_at WHERE id % 7 = 0",
        "UPDATE participants SET channel = 'sms' WHERE id % 3 = 0",
        "DELETE FROM participants WHERE id = (SELECT MAX(id) FROM participants)",
    ):
        await tmp_db.write(lambda conn, sql=change: conn.execute(sql))
        await check()
    await tmp_db.call(csvio.import_rows, HEADER + "late,p1,2025-12-01T00:00:00+00:00,code,,\n")
    await check()


def test_kept_snapshot_follows_its_own_connection(tmp_path: Path) -> None:
    """Writes made on the very connection that reads (``PRAGMA data_version`` does not change
    for them) are seen too."""
    import sqlite3

    from referrals.store import configure_connection, migrate

    conn = sqlite3.connect(tmp_path / "own.db", isolation_level=None)
    try:
        configure_connection(conn)
        migrate(conn)
        csvio.import_rows(conn, forest(120, 4), "UTC")
        first = analytics.staff_figures(conn, None, None, "UTC", NOW)[0]
        conn.execute("UPDATE participants SET enrolled_at = joined_at")
        second = analytics.staff_figures(conn, None, None, "UTC", NOW)[0]
        assert second == stats.compute(conn, None, None)
        assert second["enrolled"] == 120 != first["enrolled"]
    finally:
        conn.close()


@pytest.mark.parametrize("seed", [5, 6])
async def test_relatives_figures_from_the_arrays(tmp_db: Database, seed: int) -> None:
    """/stats's relatives figures from the snapshot equal the SQL join they replace, with
    relatives, erased people (some of them relatives who referred someone) and periods."""
    text = forest(300, seed)
    rng = random.Random(seed)
    lines = text.splitlines(keepends=True)
    cells = [line.rstrip("\n").split(",") for line in lines[1:]]
    for row in cells:
        if rng.random() < 0.3:
            row[4] = "relative"
    text = lines[0] + "".join(",".join(row) + "\n" for row in cells)
    await tmp_db.call(csvio.import_rows, text, "UTC")
    await tmp_db.write(
        lambda conn: conn.execute("UPDATE participants SET erased_at = joined_at WHERE id % 4 = 0")
    )
    rows = await tmp_db.fetchall("SELECT joined_at FROM participants ORDER BY id")
    middle = rows[len(rows) // 2][0]
    seen = []
    for since, until in [(None, None), (middle, None), (None, middle)]:
        fast = await tmp_db.read(relatives.figures, since, until)
        assert fast == await tmp_db.read(relatives.figures, since, until, fast=False)
        seen.append(fast)
    assert seen[0]["relatives"] and seen[0]["via_relative"]  # the case is exercised
