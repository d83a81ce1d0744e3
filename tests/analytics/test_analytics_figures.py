"""Every analytics figure against the hand-computed graph of ``analytics_support``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from analytics_support import GRAPH, HEADER

from referrals import analytics, csvio
from referrals.service import ReferralService
from referrals.store import Database

SINCE_19 = "2026-01-19T00:00:00+00:00"


@pytest.fixture
async def graph_db(tmp_db: Database) -> Database:
    await tmp_db.call(csvio.import_rows, GRAPH, "UTC")
    # A campaign created by staff that nobody came through yet.
    await ReferralService(tmp_db).create_campaign("CINE", "cinéma", "marie")
    return tmp_db


async def test_sources(graph_db: Database) -> None:
    assert await graph_db.read(analytics.sources) == {
        "peer": 4,  # B, C, D, H
        "sms": 1,  # F
        "campaign": 2,  # A, G
        "organic": 1,  # E
    }
    assert await graph_db.read(analytics.sources, SINCE_19) == {
        "peer": 2,
        "sms": 1,
        "campaign": 1,
        "organic": 0,
    }


async def test_weekly_by_source_with_the_empty_week(graph_db: Database) -> None:
    zero = {"peer": 0, "sms": 0, "campaign": 0, "organic": 0}
    assert await graph_db.read(analytics.weekly) == [
        {"week": "2026-01-05", **zero, "peer": 2, "campaign": 1, "organic": 1, "total": 4},
        {"week": "2026-01-12", **zero, "total": 0},
        {"week": "2026-01-19", **zero, "peer": 2, "sms": 1, "campaign": 1, "total": 4},
    ]
    assert [w["week"] for w in await graph_db.read(analytics.weekly, SINCE_19)] == ["2026-01-19"]


async def test_weeks_start_on_the_programmes_monday(tmp_db: Database) -> None:
    # Late on Sunday night in UTC is already Monday in Paris, in winter (+1) and summer (+2).
    csv = (
        "participant,referrer,joined_at,channel\n"
        "w1,,2026-03-01T23:30:00+00:00,code\n"  # Monday 2 March 00:30 in Paris
        "w2,,2026-06-14T21:30:00+00:00,code\n"  # Sunday 14 June 23:30 in Paris
        "w3,,2026-06-14T22:30:00+00:00,code\n"  # Monday 15 June 00:30 in Paris
        "w4,,2026-10-25T00:30:00.250000+00:00,code\n"  # Sunday 25 October 02:30 in Paris (+2)
    )
    await tmp_db.call(csvio.import_rows, csv, "UTC")

    def weeks(rows: list[dict[str, object]]) -> dict[object, object]:
        return {row["week"]: row["total"] for row in rows if row["total"]}

    assert weeks(await tmp_db.read(analytics.weekly, None, None, "Europe/Paris")) == {
        "2026-03-02": 1,
        "2026-06-08": 1,
        "2026-06-15": 1,
        "2026-10-19": 1,
    }
    assert weeks(await tmp_db.read(analytics.weekly)) == {  # UTC, the default
        "2026-02-23": 1,
        "2026-06-08": 2,
        "2026-10-19": 1,
    }


def test_utc_offsets_follow_the_clock_changes() -> None:
    from datetime import UTC, datetime

    from referrals.timeutil import utc_offsets

    spans = utc_offsets(
        "Europe/Paris", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC)
    )
    assert [(start.isoformat(), offset) for start, offset in spans] == [
        ("2026-01-01T00:00:00+00:00", 3600),
        ("2026-03-29T01:00:00+00:00", 7200),
        ("2026-10-25T01:00:00+00:00", 3600),
    ]
    assert len(utc_offsets("UTC", datetime(2020, 1, 1, tzinfo=UTC), datetime.now(UTC))) == 1


async def test_weekly_of_an_empty_database(tmp_db: Database) -> None:
    assert await tmp_db.read(analytics.weekly) == []
    assert await tmp_db.read(analytics.channel_comparison) == [
        {
            "group": "source",
            "name": name,
            "participants": 0,
            "brought_someone": 0,
            "share_brought_someone": None,
            "mean_subtree_size": None,
            "enrolled": 0,
            "enrollment_rate": None,
            "observed_30d": 0,
            "recruits_30d": None,
        }
        for name in analytics.SOURCES
    ]


async def test_campaign_chains(graph_db: Database) -> None:
    rows = await graph_db.read(analytics.campaigns)
    assert [row["code"] for row in rows] == ["VAN", "TIKTOK", "CINE"]
    van, tiktok, cine = rows
    assert van == {
        "code": "VAN",
        "channel": "import",
        "direct": 1,
        "brought_in": 3,
        "total": 4,
        "enrolled": 2,
        "enrollment_rate": 0.5,
        "enrollment_rate_direct": 1.0,
        "amplification": 4.0,
        "max_depth": 2,
    }
    assert (tiktok["direct"], tiktok["brought_in"], tiktok["total"]) == (1, 1, 2)
    assert (tiktok["enrollment_rate"], tiktok["max_depth"]) == (0.0, 1)
    assert cine["channel"] == "cinéma"
    assert (cine["direct"], cine["total"], cine["enrollment_rate"]) == (0, 0, None)


async def test_campaign_chains_in_a_period(graph_db: Database) -> None:
    rows = {row["code"]: row for row in await graph_db.read(analytics.campaigns, SINCE_19)}
    # Only D of A's tree joined from the 19th: brought in by the campaign's chain, not direct.
    assert (rows["VAN"]["direct"], rows["VAN"]["brought_in"], rows["VAN"]["total"]) == (0, 1, 1)
    assert rows["VAN"]["amplification"] is None
    assert (rows["TIKTOK"]["direct"], rows["TIKTOK"]["total"]) == (1, 2)


async def test_campaign_chains_of_a_participant_who_redeemed_a_campaign_code(
    tmp_db: Database,
) -> None:
    service = ReferralService(tmp_db)
    await service.create_campaign("VAN-NANTES", "van")
    member = await service.join("1", "alice")
    await service.redeem(member.participant.id, "van-nantes")
    friend = await service.join("2", "bob", referrer_id=member.participant.id, channel="code")
    assert friend.referrer is not None
    (row,) = await tmp_db.read(analytics.campaigns)
    assert (row["code"], row["direct"], row["brought_in"], row["total"]) == ("VAN-NANTES", 1, 1, 2)


async def test_channel_comparison(graph_db: Database) -> None:
    rows = await graph_db.read(analytics.channel_comparison)
    table = {
        (r["group"], r["name"]): (
            r["participants"],
            r["brought_someone"],
            r["share_brought_someone"],
            r["mean_subtree_size"],
            r["enrolled"],
            r["enrollment_rate"],
        )
        for r in rows
    }
    assert [(r["group"], r["name"]) for r in rows] == [
        ("source", "peer"),
        ("source", "sms"),
        ("source", "campaign"),
        ("source", "organic"),
        ("campaign", "TIKTOK"),  # one participant each: by name
        ("campaign", "VAN"),
    ]
    # peer: B (subtree B, D), C, D, H -> sizes 2, 1, 1, 1; B brought someone; B enrolled.
    assert table["source", "peer"] == (4, 1, 0.25, 1.25, 1, 0.25)
    assert table["source", "sms"] == (1, 0, 0.0, 1.0, 1, 1.0)
    # campaign: A (4 people), G (2 people).
    assert table["source", "campaign"] == (2, 2, 1.0, 3.0, 1, 0.5)
    assert table["source", "organic"] == (1, 1, 1.0, 2.0, 0, 0.0)
    assert table["campaign", "VAN"] == (1, 1, 1.0, 4.0, 1, 1.0)
    assert table["campaign", "TIKTOK"] == (1, 1, 1.0, 2.0, 0, 0.0)


async def test_channel_comparison_in_a_period_measures_subtrees_in_the_whole_graph(
    graph_db: Database,
) -> None:
    rows = {(r["group"], r["name"]): r for r in await graph_db.read(analytics.channel_comparison)}
    later = {
        (r["group"], r["name"]): r
        for r in await graph_db.read(analytics.channel_comparison, SINCE_19)
    }
    assert later["source", "peer"]["participants"] == 2  # D, H
    assert later["source", "peer"]["mean_subtree_size"] == 1.0
    assert later["source", "organic"]["participants"] == 0
    assert later["campaign", "TIKTOK"] == rows["campaign", "TIKTOK"]
    assert ("campaign", "VAN") not in later


async def test_compute_holds_every_part(graph_db: Database) -> None:
    figures = await graph_db.read(analytics.compute)
    assert set(figures) == {
        "sources",
        "timeline",
        "campaigns",
        "channel_comparison",
        "cohorts",
        "implausible",
        "covered",
    }
    assert (
        sum(figures["sources"].values())
        == sum(w["total"] for w in figures["timeline"]["rows"])
        == 8
    )


async def test_subtree_is_breadth_first_and_limited(graph_db: Database) -> None:
    a = await graph_db.read(
        lambda conn: conn.execute("SELECT id FROM participants WHERE ref='A'").fetchone()[0]
    )
    nodes = await graph_db.read(analytics.subtree, a)
    assert [(n["name"], n["depth"]) for n in nodes] == [("A", 0), ("B", 1), ("C", 1), ("D", 2)]
    names = {n["id"]: n["name"] for n in nodes}
    assert [names.get(n["parent"]) for n in nodes] == [None, "A", "A", "B"]
    assert [n["name"] for n in await graph_db.read(analytics.subtree, a, 2)] == ["A", "B"]


async def test_a_5000_long_chain(tmp_path: Path) -> None:
    rows = ["n0,,2026-01-01T00:00:00+00:00,,,\n"]
    # One second apart, each after its referrer (5,000 s: under two hours).
    rows += [
        f"n{i},n{i - 1},2026-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}+00:00,code,,\n"
        for i in range(1, 5000)
    ]
    db = await Database.open(tmp_path / "chain.db")
    try:
        await db.call(csvio.import_rows, HEADER + "".join(rows), "UTC")
        comparison = await db.read(analytics.channel_comparison)
        peer = comparison[0]
        # Subtree sizes 4999, 4998, ..., 1: mean 2500.
        assert (peer["participants"], peer["mean_subtree_size"]) == (4999, 2500.0)
        assert peer["brought_someone"] == 4998
        nodes = await db.read(analytics.subtree, 1, 120)
        assert len(nodes) == 120 and nodes[-1]["depth"] == 119
    finally:
        await db.close()


def test_source_of_every_kind_of_row() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE participants (referrer_id INTEGER, campaign_id INTEGER, channel TEXT)"
    )
    conn.executemany(
        "INSERT INTO participants VALUES (?, ?, ?)",
        [
            (1, None, "sms"),  # an invited relative
            (None, None, "sms"),  # sms even without a recorded referrer
            (1, None, "discord_invite"),
            (1, None, "campaign:VAN"),  # a referrer wins over a campaign channel
            (None, 3, "link"),
            (None, None, "campaign:VAN"),
            (None, None, "unknown"),
            (None, None, ""),
        ],
    )
    got = [row[0] for row in conn.execute(f"SELECT {analytics.SOURCE_SQL} FROM participants p")]
    assert got == ["sms", "sms", "peer", "peer", "campaign", "campaign", "organic", "organic"]
