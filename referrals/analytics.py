"""Staff analytics beyond SPEC §6: sources by week, campaign chains, channel comparison.

SQL over ``participants``: every figure is a GROUP BY, except subtree sizes, which come from
one linear pass over the referral edges, deepest wave first (``subtree_sizes``).

Sources (each participant has exactly one):

- ``sms``: channel ``sms`` (a relative invited by SMS);
- ``peer``: a referrer is recorded (and the channel is not ``sms``);
- ``campaign``: a campaign is recorded, or the channel is ``campaign:NAME`` (imported files);
- ``organic``: everyone else.

``since``/``until`` restrict the counted participants to those who joined in that period, as in
``referrals.stats``; subtree sizes and "brought someone" are measured in the whole graph, as the
waves are.
"""

from __future__ import annotations

import sqlite3
from array import array
from datetime import date, timedelta
from typing import Any

from referrals.stats import _rate, _where
from referrals.timeutil import parse_datetime, to_iso, utc_offsets

SOURCES = ("peer", "sms", "campaign", "organic")

# The source of participant ``p``; keep in step with the module docstring.
SOURCE_SQL = (
    "CASE WHEN p.channel = 'sms' THEN 'sms'"
    " WHEN p.referrer_id IS NOT NULL THEN 'peer'"
    " WHEN p.campaign_id IS NOT NULL OR p.channel LIKE 'campaign:%' THEN 'campaign'"
    " ELSE 'organic' END"
)
# The campaign code of a campaign participant ``p`` (``c`` is its LEFT JOINed campaign).
CAMPAIGN_SQL = "COALESCE(c.code, UPPER(SUBSTR(p.channel, 10)))"


def compute(
    conn: sqlite3.Connection,
    since: str | None = None,
    until: str | None = None,
    tz: str = "UTC",
) -> dict[str, Any]:
    """Every analytics figure: sources, weekly new participants, campaigns, channel comparison.

    Weeks are the programme's (Monday 00:00 in ``tz``)."""
    return {
        "sources": sources(conn, since, until),
        "weekly": weekly(conn, since, until, tz),
        "campaigns": campaigns(conn, since, until),
        "channel_comparison": channel_comparison(conn, since, until),
    }


def sources(
    conn: sqlite3.Connection, since: str | None = None, until: str | None = None
) -> dict[str, int]:
    """Number of participants per source (peer, sms, campaign, organic), all four present."""
    where, params = _where(since, until, "p")
    counted = dict.fromkeys(SOURCES, 0)
    for source, count in conn.execute(
        f"SELECT {SOURCE_SQL} AS source, COUNT(*) FROM participants p{where} GROUP BY source",
        params,
    ):
        counted[source] = count
    return counted


def week_of(day: date) -> date:
    """The Monday that starts the week of ``day``."""
    return day - timedelta(days=day.weekday())


def _local_time_sql(
    conn: sqlite3.Connection, tz: str, where: str, params: list[str]
) -> tuple[str, list[str]]:
    """A date() modifier turning ``p.joined_at`` (UTC) into the time in ``tz``.

    The zone's offsets over the dates present (two a year where clocks change) become a CASE on
    the stored ISO text, so the weeks stay one GROUP BY at a million participants.
    """
    low, high = conn.execute(
        f"SELECT MIN(p.joined_at), MAX(p.joined_at) FROM participants p{where}", params
    ).fetchone()
    first, last = parse_datetime(low or ""), parse_datetime(high or "")
    if first is None or last is None:
        return "'+0 seconds'", []
    spans = utc_offsets(tz, first, last)
    if len(spans) == 1:
        return f"'{spans[0][1]:+d} seconds'", []
    cases = " ".join(
        f"WHEN p.joined_at < ? THEN '{offset:+d} seconds'" for (_start, offset) in spans[:-1]
    )
    bounds = [to_iso(start) for start, _offset in spans[1:]]
    return f"CASE {cases} ELSE '{spans[-1][1]:+d} seconds' END", bounds


def weekly(
    conn: sqlite3.Connection,
    since: str | None = None,
    until: str | None = None,
    tz: str = "UTC",
) -> list[dict[str, Any]]:
    """New participants per week (starting Monday 00:00 in ``tz``), split by source; empty
    weeks included."""
    where, params = _where(since, until, "p")
    local, bounds = _local_time_sql(conn, tz, where, params)
    counts: dict[date, dict[str, int]] = {}
    for week, source, count in conn.execute(
        # date(x, offset, '-6 days', 'weekday 1'): the local Monday on or before x.
        f"SELECT date(p.joined_at, {local}, '-6 days', 'weekday 1') AS week,"
        f" {SOURCE_SQL} AS source, COUNT(*) FROM participants p{where}"
        " GROUP BY week, source ORDER BY week",
        [*bounds, *params],
    ):
        if week is None:
            continue  # an unparsable date cannot be placed in a week
        counts.setdefault(date.fromisoformat(week), dict.fromkeys(SOURCES, 0))[source] = count
    if not counts:
        return []
    rows = []
    week, last = min(counts), max(counts)
    while week <= last:
        row = counts.get(week, dict.fromkeys(SOURCES, 0))
        rows.append({"week": week.isoformat(), **row, "total": sum(row.values())})
        week += timedelta(days=7)
    return rows


def campaigns(
    conn: sqlite3.Connection, since: str | None = None, until: str | None = None
) -> list[dict[str, Any]]:
    """Per campaign, the chains it started: who came directly, and everyone they brought in.

    A campaign participant is a seed, so its chain is the participants with its ``root_id``.
    Every campaign created by staff is listed, with zeros when nobody came yet.
    """
    where, params = _where(since, until, "m")
    rows: dict[str, dict[str, Any]] = {}
    for code, channel in conn.execute("SELECT code, channel FROM campaigns ORDER BY code"):
        rows[code] = _campaign_row(code, channel)
    for code, direct, total, enrolled, direct_enrolled, deepest in conn.execute(
        "WITH seeds(id, code) AS ("
        f"  SELECT p.id, {CAMPAIGN_SQL} FROM participants p"
        "   LEFT JOIN campaigns c ON c.id = p.campaign_id"
        "   WHERE p.referrer_id IS NULL"
        "   AND (p.campaign_id IS NOT NULL OR p.channel LIKE 'campaign:%'))"
        " SELECT s.code, SUM(m.id = s.id), COUNT(*), COUNT(m.enrolled_at),"
        "  SUM(m.id = s.id AND m.enrolled_at IS NOT NULL), MAX(m.wave)"
        f" FROM seeds s JOIN participants m ON m.root_id = s.id{where}"
        " GROUP BY s.code",
        params,
    ):
        row = rows.setdefault(code, _campaign_row(code, None))
        row.update(
            direct=direct,
            brought_in=total - direct,
            total=total,
            enrolled=enrolled,
            enrollment_rate=_rate(enrolled, total),
            enrollment_rate_direct=_rate(direct_enrolled, direct),
            amplification=round(total / direct, 4) if direct else None,
            max_depth=deepest,
        )
    return sorted(rows.values(), key=lambda row: (-row["total"], row["code"]))


def _campaign_row(code: str, channel: str | None) -> dict[str, Any]:
    return {
        "code": code,
        "channel": channel,
        "direct": 0,
        "brought_in": 0,
        "total": 0,
        "enrolled": 0,
        "enrollment_rate": None,
        "enrollment_rate_direct": None,
        "amplification": None,
        "max_depth": 0,
    }


def channel_comparison(
    conn: sqlite3.Connection, since: str | None = None, until: str | None = None
) -> list[dict[str, Any]]:
    """For each source and each campaign: participants, share who then brought someone,
    mean subtree size (the person included), enrolment rate.

    Rows are ``{"group": "source"|"campaign", "name": ..., ...}``; sources first, in the order
    of ``SOURCES``, then campaigns by number of participants.
    """
    where, params = _where(since, until, "p")
    size = subtree_sizes(conn)
    sql = (
        f"SELECT p.id, {SOURCE_SQL} AS source,"
        f"  CASE WHEN {SOURCE_SQL} = 'campaign' THEN {CAMPAIGN_SQL} END AS campaign,"
        "  p.enrolled_at IS NOT NULL"
        " FROM participants p LEFT JOIN campaigns c ON c.id = p.campaign_id"
        f"{where}"
    )
    groups: dict[tuple[str, str | None], list[int]] = {}
    for pid, source, campaign, enrolled in conn.execute(sql, params):
        figures = groups.setdefault((source, campaign), [0, 0, 0, 0])
        figures[0] += 1
        figures[1] += size[pid] > 1
        figures[2] += size[pid]
        figures[3] += enrolled
    totals = {source: [0, 0, 0, 0] for source in SOURCES}
    per_campaign: dict[str, list[int]] = {}
    for (source, campaign), counts in groups.items():
        totals[source] = [a + b for a, b in zip(totals[source], counts, strict=True)]
        if campaign is not None:
            per_campaign[campaign] = list(counts)
    rows = [_comparison_row("source", name, *totals[name]) for name in SOURCES]
    ordered = sorted(per_campaign.items(), key=lambda item: (-item[1][0], item[0]))
    rows += [_comparison_row("campaign", name, *figures) for name, figures in ordered]
    return rows


def subtree_sizes(conn: sqlite3.Connection) -> array[int]:
    """Size of every participant's subtree (itself included), indexed by participant id.

    One pass from the deepest wave up, each size added to the referrer's: linear in the
    number of participants (a recursive CTE costs the sum of all depths), 8 bytes an id.
    """
    top = conn.execute("SELECT COALESCE(MAX(id), 0) FROM participants").fetchone()[0]
    size = array("q", [1]) * (top + 1)
    cursor = conn.execute(
        "SELECT id, referrer_id FROM participants WHERE referrer_id IS NOT NULL ORDER BY wave DESC"
    )
    while batch := cursor.fetchmany(10_000):
        for pid, referrer in batch:
            size[referrer] += size[pid]
    return size


def _comparison_row(
    group: str, name: str, count: int, brought: int, size_sum: int, enrolled: int
) -> dict[str, Any]:
    return {
        "group": group,
        "name": name,
        "participants": count,
        "brought_someone": brought,
        "share_brought_someone": _rate(brought, count),
        "mean_subtree_size": round(size_sum / count, 4) if count else None,
        "enrolled": enrolled,
        "enrollment_rate": _rate(enrolled, count),
    }


def subtree(
    conn: sqlite3.Connection, participant_id: int, limit: int = 200
) -> list[dict[str, Any]]:
    """The participant's subtree, breadth first, for a drawing: id, parent, depth, name.

    At most ``limit`` people (nearest waves first), so a huge tree stays drawable.
    """
    rows = conn.execute(
        # ORDER BY depth makes the recursion breadth first; its LIMIT stops the walk early.
        "WITH RECURSIVE sub(id, parent, depth) AS ("
        "  SELECT ?, NULL, 0"
        "  UNION ALL SELECT p.id, p.referrer_id, sub.depth + 1"
        "  FROM participants p JOIN sub ON p.referrer_id = sub.id"
        "  ORDER BY 3 LIMIT ?)"
        " SELECT sub.id, sub.parent, sub.depth,"
        "  CASE WHEN p.erased_at IS NULL THEN COALESCE(p.display_name, p.ref) ELSE p.ref END"
        " FROM sub JOIN participants p ON p.id = sub.id ORDER BY sub.depth, p.joined_at, p.id",
        (participant_id, limit),
    ).fetchall()
    return [{"id": r[0], "parent": r[1], "depth": r[2], "name": r[3]} for r in rows]
