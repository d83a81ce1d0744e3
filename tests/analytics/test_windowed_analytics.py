"""Monthly cohorts, channel comparison over the 30-day window, the timeline's bucket and the
implausible dates, on hand-computed graphs and on the RDS data sets."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from referrals import analytics, csvio
from referrals.store import Database

HEADER = "participant,referrer,joined_at,channel,kind,enrolled_at\n"
# As tests/referrals/test_windowed_stats.py: S1 (1 Jan) brings R1 (4 days) and R2 (45 days),
# R1 brings R3 (15 days), S2 (1 Feb, campaign VAN) brings R4 (9 days), X joins on 10 March.
WINDOWED = HEADER + (
    "S1,,2026-01-01T00:00:00+00:00,,,\n"
    "R1,S1,2026-01-05T00:00:00+00:00,code,,\n"
    "R2,S1,2026-02-15T00:00:00+00:00,code,,\n"
    "R3,R1,2026-01-20T00:00:00+00:00,code,,\n"
    "S2,,2026-02-01T00:00:00+00:00,campaign:VAN,,\n"
    "R4,S2,2026-02-10T00:00:00+00:00,code,,\n"
    "X,,2026-03-10T00:00:00+00:00,,,\n"
)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


async def test_monthly_cohorts(tmp_db: Database) -> None:
    await tmp_db.call(csvio.import_rows, WINDOWED, "UTC")
    # Cutoff 8 February: January (S1, R1, R3) brought R1 and R3 within 30 days; February
    # (S2 only: R4 joined after the cutoff) brought R4.
    assert await tmp_db.read(analytics.cohorts) == [
        {"month": "2026-01", "participants": 3, "recruits_30d": 2, "mean_recruits_30d": 0.6667},
        {"month": "2026-02", "participants": 1, "recruits_30d": 1, "mean_recruits_30d": 1.0},
    ]


async def test_cohorts_by_local_month(tmp_db: Database) -> None:
    text = WINDOWED.replace("S1,,2026-01-01T00:00:00", "S1,,2025-12-31T23:30:00")
    await tmp_db.call(csvio.import_rows, text, "UTC")
    months = [row["month"] for row in await tmp_db.read(analytics.cohorts, None, None, "UTC")]
    assert months == ["2025-12", "2026-01", "2026-02"]
    paris = await tmp_db.read(analytics.cohorts, None, None, "Europe/Paris")
    assert [row["month"] for row in paris] == ["2026-01", "2026-02"]


async def test_channel_comparison_over_the_30_day_window(tmp_db: Database) -> None:
    await tmp_db.call(csvio.import_rows, WINDOWED, "UTC")
    rows = {(r["group"], r["name"]): r for r in await tmp_db.read(analytics.channel_comparison)}
    # Observed (joined by 8 February): peer R1, R3; campaign S2; organic S1.
    assert (rows["source", "peer"]["observed_30d"], rows["source", "peer"]["recruits_30d"]) == (
        2,
        0.5,
    )
    assert rows["source", "campaign"]["recruits_30d"] == 1.0
    assert rows["campaign", "VAN"]["recruits_30d"] == 1.0
    assert rows["source", "organic"]["recruits_30d"] == 1.0  # S1 brought R1 (R2 too late)
    assert rows["source", "sms"]["recruits_30d"] is None


async def test_timeline_bucket_follows_the_period(tmp_db: Database) -> None:
    one_week = HEADER + "".join(f"p{i},,2026-01-0{i + 1}T10:00:00+00:00,,,\n" for i in range(7))
    await tmp_db.call(csvio.import_rows, one_week, "UTC")
    got = await tmp_db.read(analytics.timeline, None, None, "UTC", NOW)
    assert got["bucket"] == "day" and len(got["rows"]) == 7
    assert analytics.choose_bucket(datetime(2026, 1, 1).date(), datetime(2026, 12, 1).date()) == (
        "week"
    )
    assert analytics.choose_bucket(datetime(2010, 1, 1).date(), datetime(2026, 1, 1).date()) == (
        "month"
    )


async def test_an_implausible_date_is_flagged_not_drawn(tmp_db: Database, data_dir: Path) -> None:
    # The raw fauxtime's 2100 date, as a database filled before imports refused it holds it.
    text = (data_dir / "rds-fauxtime.csv").read_text(encoding="utf-8")
    await tmp_db.call(csvio.import_rows, text, "UTC")
    await tmp_db.write(
        lambda conn: conn.execute(
            "UPDATE participants SET joined_at = '2100-03-12T14:25:00+00:00' WHERE ref = 'r135'"
        )
    )
    got = await tmp_db.read(analytics.compute, None, None, "UTC", NOW)
    assert got["implausible"] == {
        "count": 1,
        "examples": [{"participant": "r135", "joined_at": "2100-03-12T14:25:00+00:00"}],
    }
    rows = got["timeline"]["rows"]
    assert rows[-1]["start"] < "2011"  # the axis ends with the data, not in 2100
    assert sum(row["total"] for row in rows) == 510  # r135 is counted apart, not drawn
    assert got["timeline"]["bucket"] == "day"  # fauxtime spans under two months
    assert len(await tmp_db.read(analytics.weekly, None, None, "UTC", NOW)) < 60


async def test_madrona_timeline(tmp_db: Database, data_dir: Path) -> None:
    text = (data_dir / "rds-fauxmadrona.csv").read_text(encoding="utf-8")
    await tmp_db.call(csvio.import_rows, text, "UTC")
    got = await tmp_db.read(analytics.compute, None, None, "Europe/Paris", NOW)
    assert sum(row["total"] for row in got["timeline"]["rows"]) == 500
    assert got["implausible"]["count"] == 0
    assert sum(row["participants"] for row in got["cohorts"]) <= 500
