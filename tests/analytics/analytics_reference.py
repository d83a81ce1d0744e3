"""The analytics as they were computed in SQL and Python loops before issue 19 item 4 (one
numpy pass): the reference the array version is compared with. Frozen: do not edit.

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
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from referrals.stats import WINDOW_SECONDS, _and, _rate, _where, window_cutoff
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


# Join dates outside [PLAUSIBLE_FROM, now + 1 day) are data errors (a year 2100, a 1970 from an
# empty cell): they are counted and named in the report, never drawn on an axis.
PLAUSIBLE_FROM = "2000-01-01T00:00:00+00:00"


def compute(
    conn: sqlite3.Connection,
    since: str | None = None,
    until: str | None = None,
    tz: str = "UTC",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Every analytics figure: sources, new participants over time, campaigns, channel
    comparison, monthly cohorts, implausible dates (``weekly`` stays available on its own).

    Weeks are the programme's (Monday 00:00 in ``tz``)."""
    return {
        "sources": sources(conn, since, until),
        "timeline": timeline(conn, since, until, tz, now),
        "campaigns": campaigns(conn, since, until),
        "channel_comparison": channel_comparison(conn, since, until),
        "cohorts": cohorts(conn, since, until, tz),
        "implausible": implausible(conn, since, until, now),
        "covered": covered(conn, since, until, tz, now),
    }


def plausible_until(now: datetime | None = None) -> str:
    """The first join instant too far in the future to be true (one day after ``now``)."""
    return to_iso((now or datetime.now(UTC)) + timedelta(days=1))


def _plausible_where(
    since: str | None, until: str | None, now: datetime | None
) -> tuple[str, list[str]]:
    where, params = _where(since, until, "p")
    where = _and(where, "p.joined_at >= ? AND p.joined_at < ?")
    return where, [*params, PLAUSIBLE_FROM, plausible_until(now)]


def covered(
    conn: sqlite3.Connection,
    since: str | None = None,
    until: str | None = None,
    tz: str = "UTC",
    now: datetime | None = None,
) -> dict[str, str] | None:
    """The local days of the first and the last plausible join: the period the data cover."""
    where, params = _plausible_where(since, until, now)
    low, high = conn.execute(
        f"SELECT MIN(p.joined_at), MAX(p.joined_at) FROM participants p{where}", params
    ).fetchone()
    first, last = parse_datetime(low or ""), parse_datetime(high or "")
    if first is None or last is None:
        return None
    zone = ZoneInfo(tz)
    return {
        "first": first.astimezone(zone).date().isoformat(),
        "last": last.astimezone(zone).date().isoformat(),
    }


def implausible(
    conn: sqlite3.Connection,
    since: str | None = None,
    until: str | None = None,
    now: datetime | None = None,
    limit: int = 10,
) -> dict[str, Any]:
    """Participants whose join date cannot be true: how many, and the first few (erased people
    are counted, never named)."""
    where, params = _where(since, until, "p")
    where = _and(where, "(p.joined_at < ? OR p.joined_at >= ?)")
    params = [*params, PLAUSIBLE_FROM, plausible_until(now)]
    count = conn.execute(f"SELECT COUNT(*) FROM participants p{where}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT p.ref, p.joined_at FROM participants p{_and(where, 'p.erased_at IS NULL')}"
        f" ORDER BY p.joined_at DESC LIMIT {int(limit)}",
        params,
    ).fetchall()
    return {"count": count, "examples": [{"participant": r, "joined_at": j} for r, j in rows]}


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
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """New participants per week (starting Monday 00:00 in ``tz``), split by source; empty
    weeks included; implausible dates left out (see ``implausible``)."""
    return [
        {"week": row["start"], **{k: v for k, v in row.items() if k != "start"}}
        for row in _buckets(conn, since, until, tz, now, "week")
    ]


# SQLite date() modifiers that take a local time to the start of its bucket.
BUCKET_SQL = {
    "day": "",
    # date(x, '-6 days', 'weekday 1'): the Monday on or before x.
    "week": ", '-6 days', 'weekday 1'",
    "month": ", 'start of month'",
}


def choose_bucket(first: date, last: date) -> str:
    """Days for up to two months, weeks for up to two years, months beyond: 8 to 100 bars."""
    span = (last - first).days
    if span <= 62:
        return "day"
    if span <= 731:
        return "week"
    return "month"


def _next(start: date, bucket: str) -> date:
    if bucket == "day":
        return start + timedelta(days=1)
    if bucket == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def _buckets(
    conn: sqlite3.Connection,
    since: str | None,
    until: str | None,
    tz: str,
    now: datetime | None,
    bucket: str | None,
) -> list[dict[str, Any]]:
    where, params = _plausible_where(since, until, now)
    local, bounds = _local_time_sql(conn, tz, where, params)
    if bucket is None:
        low, high = conn.execute(
            f"SELECT MIN(p.joined_at), MAX(p.joined_at) FROM participants p{where}", params
        ).fetchone()
        first, last = parse_datetime(low or ""), parse_datetime(high or "")
        if first is None or last is None:
            return []
        zone = ZoneInfo(tz)
        bucket = choose_bucket(first.astimezone(zone).date(), last.astimezone(zone).date())
    counts: dict[date, dict[str, int]] = {}
    for start, source, count in conn.execute(
        f"SELECT date(p.joined_at, {local}{BUCKET_SQL[bucket]}) AS bucket,"
        f" {SOURCE_SQL} AS source, COUNT(*) FROM participants p{where}"
        " GROUP BY bucket, source ORDER BY bucket",
        [*bounds, *params],
    ):
        if start is None:
            continue  # an unparsable date cannot be placed
        counts.setdefault(date.fromisoformat(start), dict.fromkeys(SOURCES, 0))[source] = count
    if not counts:
        return []
    rows = []
    current, final = min(counts), max(counts)
    while current <= final:
        row = counts.get(current, dict.fromkeys(SOURCES, 0))
        rows.append({"start": current.isoformat(), **row, "total": sum(row.values())})
        current = _next(current, bucket)
    return rows


def timeline(
    conn: sqlite3.Connection,
    since: str | None = None,
    until: str | None = None,
    tz: str = "UTC",
    now: datetime | None = None,
) -> dict[str, Any]:
    """New participants over the data's own period, by day, week or month (chosen from the
    period's length, ``choose_bucket``), split by source; implausible dates left out."""
    rows = _buckets(conn, since, until, tz, now, None)
    bucket = "day"
    if len(rows) > 1:
        gap = (date.fromisoformat(rows[1]["start"]) - date.fromisoformat(rows[0]["start"])).days
        bucket = "day" if gap == 1 else ("week" if gap == 7 else "month")
    return {"bucket": bucket, "rows": rows}


def cohorts(
    conn: sqlite3.Connection,
    since: str | None = None,
    until: str | None = None,
    tz: str = "UTC",
) -> list[dict[str, Any]]:
    """Monthly cohorts (month of arrival in ``tz``): people who joined that month and had 30
    days observed, and their mean recruits within 30 days of joining (SPEC §6 window)."""
    cutoff = window_cutoff(conn, since, until)
    if cutoff is None:
        return []
    where, params = _where(since, until, "p")
    where = _and(where, "p.joined_at <= ?")
    params = [*params, cutoff]
    local, bounds = _local_time_sql(conn, tz, where, params)
    rows = []
    for month, count, recruits in conn.execute(
        f"SELECT strftime('%Y-%m', p.joined_at, {local}) AS month, COUNT(*),"
        " COALESCE(SUM(r.n), 0) FROM participants p LEFT JOIN"
        " (SELECT referrer_id, COUNT(*) AS n FROM participants"
        f"  WHERE referrer_id IS NOT NULL AND referral_delay_s <= {WINDOW_SECONDS}"
        f"  GROUP BY referrer_id) r ON r.referrer_id = p.id{where}"
        " GROUP BY month ORDER BY month",
        [*bounds, *params],
    ):
        if month is None:
            continue
        rows.append(
            {
                "month": month,
                "participants": count,
                "recruits_30d": recruits,
                "mean_recruits_30d": round(recruits / count, 4),
            }
        )
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
    mean subtree size (the person included), enrolment rate, and recruits within 30 days of
    joining over the same window as SPEC §6 ``recruits_30d``.

    Rows are ``{"group": "source"|"campaign", "name": ..., ...}``; sources first, in the order
    of ``SOURCES``, then campaigns by number of participants.
    """
    where, params = _where(since, until, "p")
    size = subtree_sizes(conn)
    within = recruits_within_window(conn, len(size))
    cutoff = window_cutoff(conn, since, until) or ""
    sql = (
        f"SELECT p.id, {SOURCE_SQL} AS source,"
        f"  CASE WHEN {SOURCE_SQL} = 'campaign' THEN {CAMPAIGN_SQL} END AS campaign,"
        "  p.enrolled_at IS NOT NULL, p.joined_at <= ?"
        " FROM participants p LEFT JOIN campaigns c ON c.id = p.campaign_id"
        f"{where}"
    )
    groups: dict[tuple[str, str | None], list[int]] = {}
    for pid, source, campaign, enrolled, observed in conn.execute(sql, [cutoff, *params]):
        figures = groups.setdefault((source, campaign), [0, 0, 0, 0, 0, 0])
        figures[0] += 1
        figures[1] += size[pid] > 1
        figures[2] += size[pid]
        figures[3] += enrolled
        if observed:
            figures[4] += 1
            figures[5] += within[pid]
    totals = {source: [0] * 6 for source in SOURCES}
    per_campaign: dict[str, list[int]] = {}
    for (source, campaign), counts in groups.items():
        totals[source] = [a + b for a, b in zip(totals[source], counts, strict=True)]
        if campaign is not None:
            per_campaign[campaign] = list(counts)
    rows = [_comparison_row("source", name, *totals[name]) for name in SOURCES]
    ordered = sorted(per_campaign.items(), key=lambda item: (-item[1][0], item[0]))
    rows += [_comparison_row("campaign", name, *figures) for name, figures in ordered]
    return rows


def recruits_within_window(conn: sqlite3.Connection, length: int) -> array[int]:
    """How many people each participant brought in within 30 days of their own join, indexed
    by participant id (``length`` entries)."""
    counts = array("q", [0]) * length
    cursor = conn.execute(
        "SELECT referrer_id FROM participants"
        f" WHERE referrer_id IS NOT NULL AND referral_delay_s <= {WINDOW_SECONDS}"
    )
    while batch := cursor.fetchmany(10_000):
        for (referrer,) in batch:
            if referrer < length:
                counts[referrer] += 1
    return counts


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
    group: str,
    name: str,
    count: int,
    brought: int,
    size_sum: int,
    enrolled: int,
    observed: int = 0,
    recruits: int = 0,
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
        "observed_30d": observed,
        "recruits_30d": round(recruits / observed, 4) if observed else None,
    }


SUBTREE_SCAN = 20_000  # people read to choose a drawing's nodes (the deepest chain among them)


def subtree(
    conn: sqlite3.Connection, participant_id: int, limit: int = 200
) -> list[dict[str, Any]]:
    """The participant's subtree for a drawing: id, parent, depth, name, source, enrolled.

    At most ``limit`` people: the longest chain first (what word of mouth achieved is what a
    cut must not hide), then the nearest waves, breadth first. Erased people keep their place
    in the drawing, without a name (``None``).
    """
    rows = conn.execute(
        # ORDER BY depth makes the recursion breadth first; its LIMIT stops the walk early.
        "WITH RECURSIVE sub(id, parent, depth) AS ("
        "  SELECT ?, NULL, 0"
        "  UNION ALL SELECT p.id, p.referrer_id, sub.depth + 1"
        "  FROM participants p JOIN sub ON p.referrer_id = sub.id"
        "  ORDER BY 3 LIMIT ?)"
        " SELECT sub.id, sub.parent, sub.depth,"
        "  CASE WHEN p.erased_at IS NULL THEN COALESCE(p.display_name, p.ref) END,"
        f"  {SOURCE_SQL}, p.enrolled_at IS NOT NULL"
        " FROM sub JOIN participants p ON p.id = sub.id ORDER BY sub.depth, p.joined_at, p.id",
        (participant_id, max(limit, SUBTREE_SCAN)),
    ).fetchall()
    if len(rows) > limit:
        parent = {row[0]: row[1] for row in rows}
        chain: list[int] = []
        node: int | None = rows[-1][0]  # the deepest (breadth-first order)
        while node is not None:
            chain.append(node)
            node = parent.get(node)
        keep = set(chain[::-1][:limit])
        for row in rows:
            if len(keep) >= limit:
                break
            keep.add(row[0])
        rows = [row for row in rows if row[0] in keep]
    return [
        {
            "id": r[0],
            "parent": r[1],
            "depth": r[2],
            "name": r[3],
            "source": r[4],
            "enrolled": bool(r[5]),
        }
        for r in rows
    ]
