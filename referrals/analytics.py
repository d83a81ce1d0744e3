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

import copy
import sqlite3
from array import array
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from referrals import stats
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
    snap = snapshot(conn)
    return {
        "sources": sources(conn, since, until, snap=snap),
        "timeline": timeline(conn, since, until, tz, now, snap=snap),
        "campaigns": campaigns(conn, since, until),
        "channel_comparison": channel_comparison(conn, since, until, snap=snap),
        "cohorts": cohorts(conn, since, until, tz, snap=snap),
        "implausible": implausible(conn, since, until, now),
        "covered": covered(conn, since, until, tz, now, snap=snap),
    }


def staff_figures(
    conn: sqlite3.Connection,
    since: str | None = None,
    until: str | None = None,
    tz: str = "UTC",
    now: datetime | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What ``/stats``, ``relais report`` and the weekly post show: SPEC §6 figures
    (``stats.compute``) and the analytics (``compute``), from one pass over the participants."""
    snap = snapshot(conn)
    key = (since, until, tz)
    cached = _steady_figures[0] if _steady_figures else None
    if cached is None or cached[0] is not snap:
        cached = (snap, {})
        _steady_figures[:] = [cached]
    steady = cached[1].get(key)
    if steady is None:
        steady = cached[1][key] = _steady(conn, snap, since, until, tz)
    figures, extra = copy.deepcopy(steady)
    # What depends on the time of day (the plausible range ends a day after ``now``).
    extra["timeline"] = timeline(conn, since, until, tz, now, snap=snap)
    extra["implausible"] = implausible(conn, since, until, now, snap=snap)
    extra["covered"] = covered(conn, since, until, tz, now, snap=snap)
    return figures, {name: extra[name] for name in EXTRA_ORDER}


EXTRA_ORDER = (
    "sources",
    "timeline",
    "campaigns",
    "channel_comparison",
    "cohorts",
    "implausible",
    "covered",
)
# The figures that do not depend on ``now``, for the snapshot they were computed from (one
# snapshot at a time, so at most a few periods): the next /stats, the report and the weekly post
# on an unchanged database reuse them. Guarded by the snapshot's identity, itself kept only while
# ``PRAGMA data_version``, the connection's own changes and the highest id are unchanged.
_steady_figures: list[tuple[Snapshot, dict[tuple[str | None, str | None, str], Any]]] = []


def _steady(
    conn: sqlite3.Connection, snap: Snapshot, since: str | None, until: str | None, tz: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    cutoff = window_cutoff(conn, since, until)
    windowed: float | None = None
    if cutoff is not None:
        observed = snap.period(since, until) & (snap.joined <= _epoch(cutoff))
        if count := int(observed.sum()):
            recruits = int(snap.recruits_within_window()[observed].sum())
            windowed = round(recruits / count, 4)
    figures = spec_figures(conn, snap, since, until, windowed)
    extra = {
        "sources": sources(conn, since, until, snap=snap),
        "campaigns": campaigns(conn, since, until, snap=snap),
        "channel_comparison": channel_comparison(conn, since, until, snap=snap),
        "cohorts": cohorts(conn, since, until, tz, snap=snap),
    }
    return figures, extra


def spec_figures(
    conn: sqlite3.Connection,
    snap: Snapshot,
    since: str | None,
    until: str | None,
    recruits_30d: float | None,
) -> dict[str, Any]:
    """``stats.compute`` (SPEC §6) from the arrays: the counts, waves, largest tree, recruits
    per wave and the leaderboard without a scan; channels, the median delay and the
    invitations stay SQL over their indexes (tests compare the two on every change)."""
    mask = snap.period(since, until) if since or until else snap.present
    chosen = np.flatnonzero(mask)
    referrers = snap.referrer[chosen]
    is_referred = referrers > 0
    participants = len(chosen)
    enrolled = snap.enrolled[chosen]
    waves = np.bincount(snap.wave[chosen]).tolist() if participants else []
    if since or until:
        # Recruits in the period, by the wave of a referrer also in the period.
        brought_by = referrers[is_referred]
        brought_by = brought_by[mask[brought_by]]
        brought = np.bincount(snap.wave[brought_by], minlength=len(waves))[: len(waves)]
        brought_list = brought.tolist()
    else:
        # Without a period everyone of wave w + 1 was brought in by someone of wave w.
        brought_list = [*waves[1:], 0][: len(waves)]
    return stats.figures_from_counts(
        conn,
        since,
        until,
        participants=participants,
        referred=int(is_referred.sum()),
        enrolled_referred=int((enrolled & is_referred).sum()),
        enrolled_seeds=int((enrolled & ~is_referred).sum()),
        waves=waves,
        wave_sum=int(snap.wave[chosen].sum()),
        largest=int(np.bincount(snap.root[chosen]).max()) if participants else 0,
        top=top_referrers(conn, snap, since, until),
        recruits_30d=recruits_30d,
        recruits_by_wave=[
            round(b / n, 4) if n else 0.0 for b, n in zip(brought_list, waves, strict=True)
        ],
    )


def plausible_until(now: datetime | None = None) -> str:
    """The first join instant too far in the future to be true (one day after ``now``)."""
    return to_iso((now or datetime.now(UTC)) + timedelta(days=1))


def _plausible_where(
    since: str | None, until: str | None, now: datetime | None
) -> tuple[str, list[str]]:
    where, params = _where(since, until, "p")
    where = _and(where, "p.joined_at >= ? AND p.joined_at < ?")
    return where, [*params, PLAUSIBLE_FROM, plausible_until(now)]


def top_referrers(
    conn: sqlite3.Connection, snap: Snapshot, since: str | None, until: str | None
) -> tuple[list[dict[str, Any]], int]:
    """``stats.top_referrers`` from the arrays: recruits counted in one bincount, then only the
    people who could be on the board (as many as the tenth, ties included) ordered in SQL's
    own terms (recruits, join text, id)."""
    chosen = snap.period(since, until) & (snap.referrer > 0)
    counts = np.bincount(snap.referrer[chosen], minlength=snap.length)
    counts[~snap.active] = 0
    candidates = np.flatnonzero(counts)
    if not len(candidates):
        return [], 0
    shown = stats.TOP_REFERRERS
    if len(candidates) > shown:
        floor = np.partition(counts[candidates], -shown)[-shown]
        candidates = candidates[counts[candidates] >= floor]
    people: list[tuple[int, str, int, str]] = []
    for start in range(0, len(candidates), 500):
        chunk = [int(pid) for pid in candidates[start : start + 500]]
        marks = ",".join("?" * len(chunk))
        people += [
            (-int(counts[pid]), joined, pid, ref)
            for pid, ref, joined in conn.execute(
                f"SELECT id, ref, joined_at FROM participants WHERE id IN ({marks})", chunk
            )
        ]
    people.sort()
    top: list[dict[str, Any]] = []
    for position, (negative, _joined, _pid, ref) in enumerate(people[:shown], start=1):
        recruits = -negative
        rank = top[-1]["rank"] if top and top[-1]["recruits"] == recruits else position
        top.append({"participant": ref, "recruits": recruits, "rank": rank})
    more_tied = 0
    if len(people) > shown:
        last = people[shown - 1][0]
        more_tied = sum(1 for person in people[shown:] if person[0] == last)
    return top, more_tied


def covered(
    conn: sqlite3.Connection,
    since: str | None = None,
    until: str | None = None,
    tz: str = "UTC",
    now: datetime | None = None,
    *,
    snap: Snapshot | None = None,
) -> dict[str, str] | None:
    """The local days of the first and the last plausible join: the period the data cover."""
    if snap is None:
        where, params = _plausible_where(since, until, now)
        low, high = conn.execute(
            f"SELECT MIN(p.joined_at), MAX(p.joined_at) FROM participants p{where}", params
        ).fetchone()
        first, last = parse_datetime(low or ""), parse_datetime(high or "")
    else:
        mask = snap.period(since, until)
        mask &= snap.joined >= _epoch(PLAUSIBLE_FROM)
        mask &= snap.joined < _epoch(plausible_until(now))
        times = snap.joined[mask]
        first = datetime.fromtimestamp(int(times.min()), UTC) if len(times) else None
        last = datetime.fromtimestamp(int(times.max()), UTC) if len(times) else None
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
    *,
    snap: Snapshot | None = None,
) -> dict[str, Any]:
    """Participants whose join date cannot be true: how many, and the first few (erased people
    are counted, never named)."""
    if snap is not None and not (snap.present & (snap.joined == _NO_TIME)).any():
        # Every date readable: none out of range is the usual answer, found without a scan.
        times = snap.joined[snap.period(since, until)]
        low, high = _epoch(PLAUSIBLE_FROM), _epoch(plausible_until(now))
        if not ((times < low) | (times >= high)).any():
            return {"count": 0, "examples": []}
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
    conn: sqlite3.Connection,
    since: str | None = None,
    until: str | None = None,
    *,
    snap: Snapshot | None = None,
) -> dict[str, int]:
    """Number of participants per source (peer, sms, campaign, organic), all four present."""
    if snap is not None:
        counts = np.bincount(snap.source[snap.period(since, until)], minlength=len(SOURCES))
        return {name: int(counts[i]) for i, name in enumerate(SOURCES)}
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
    snap: Snapshot | None = None,
) -> list[dict[str, Any]]:
    snap = snap or snapshot(conn)
    mask = snap.period(since, until)
    mask &= snap.joined >= _epoch(PLAUSIBLE_FROM)
    mask &= snap.joined < _epoch(plausible_until(now))
    local = snap.local(mask, tz)
    if not len(local):
        return []
    days = local.astype("datetime64[D]")
    if bucket is None:
        bucket = choose_bucket(_day(days.min()), _day(days.max()))
    if bucket == "week":
        # The Monday on or before each day (1 January 1970 was a Thursday).
        numbers = days.astype(np.int64)
        starts = (numbers - (numbers + 3) % 7).astype("datetime64[D]")
    elif bucket == "month":
        starts = local.astype("datetime64[M]").astype("datetime64[D]")
    else:
        starts = days
    # Buckets counted by offset from the first (a bincount, not a sort of every join).
    numbers = starts.astype(np.int64)
    base = int(numbers.min())
    table = np.bincount(
        (numbers - base) * len(SOURCES) + snap.source[mask],
        minlength=(int(numbers.max()) - base + 1) * len(SOURCES),
    ).reshape(-1, len(SOURCES))
    used = np.flatnonzero(table.sum(axis=1))
    keys, table = (used + base).astype("datetime64[D]"), table[used]
    counts = {
        _day(key): dict(zip(SOURCES, map(int, row), strict=True))
        for key, row in zip(keys, table, strict=True)
    }
    rows = []
    current, final = min(counts), max(counts)
    while current <= final:
        row = counts.get(current, dict.fromkeys(SOURCES, 0))
        rows.append({"start": current.isoformat(), **row, "total": sum(row.values())})
        current = _next(current, bucket)
    return rows


def _day(value: np.datetime64) -> date:
    return date.fromisoformat(str(value.astype("datetime64[D]")))


def timeline(
    conn: sqlite3.Connection,
    since: str | None = None,
    until: str | None = None,
    tz: str = "UTC",
    now: datetime | None = None,
    *,
    snap: Snapshot | None = None,
) -> dict[str, Any]:
    """New participants over the data's own period, by day, week or month (chosen from the
    period's length, ``choose_bucket``), split by source; implausible dates left out."""
    rows = _buckets(conn, since, until, tz, now, None, snap)
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
    *,
    snap: Snapshot | None = None,
) -> list[dict[str, Any]]:
    """Monthly cohorts (month of arrival in ``tz``): people who joined that month and had 30
    days observed, and their mean recruits within 30 days of joining (SPEC §6 window)."""
    cutoff = window_cutoff(conn, since, until)
    if cutoff is None:
        return []
    snap = snap or snapshot(conn)
    mask = snap.period(since, until) & (snap.joined <= _epoch(cutoff))
    months = snap.local(mask, tz).astype("datetime64[M]")
    if not len(months):
        return []
    within = snap.recruits_within_window()[mask]
    numbers = months.astype(np.int64)
    base = int(numbers.min())
    counts = np.bincount(numbers - base)
    recruits = np.bincount(numbers - base, weights=within).astype(np.int64)
    used = np.flatnonzero(counts)
    keys, counts, recruits = (used + base).astype("datetime64[M]"), counts[used], recruits[used]
    rows = []
    for month, count, brought in zip(keys, counts, recruits, strict=True):
        count, brought = int(count), int(brought)
        rows.append(
            {
                "month": str(month),
                "participants": count,
                "recruits_30d": brought,
                "mean_recruits_30d": round(brought / count, 4),
            }
        )
    return rows


def campaigns(
    conn: sqlite3.Connection,
    since: str | None = None,
    until: str | None = None,
    *,
    snap: Snapshot | None = None,
) -> list[dict[str, Any]]:
    """Per campaign, the chains it started: who came directly, and everyone they brought in.

    A campaign participant is a seed, so its chain is the participants with its ``root_id``.
    Every campaign created by staff is listed, with zeros when nobody came yet.
    """
    where, params = _where(since, until, "m")
    rows: dict[str, dict[str, Any]] = {}
    for code, channel in conn.execute("SELECT code, channel FROM campaigns ORDER BY code"):
        rows[code] = _campaign_row(code, channel)
    if snap is not None:
        _campaigns_from(conn, snap, since, until, rows)
        return sorted(rows.values(), key=lambda row: (-row["total"], row["code"]))
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
        _fill_campaign(
            rows.setdefault(code, _campaign_row(code, None)),
            total,
            direct,
            enrolled,
            direct_enrolled,
            deepest,
        )
    return sorted(rows.values(), key=lambda row: (-row["total"], row["code"]))


def _seeds(conn: sqlite3.Connection, snap: Snapshot) -> list[tuple[int, str, bool, bool]]:
    """Every seed (no referrer: a few per hundred, found through the referrer index) with its
    campaign code, whether it came from a campaign and whether its channel is sms; read once
    per snapshot for the campaigns and the channel comparison."""
    if snap._seeds is None:
        snap._seeds = [
            (pid, name, bool(campaign), bool(sms))
            for pid, name, campaign, sms in conn.execute(
                f"SELECT p.id, {CAMPAIGN_SQL},"
                " p.campaign_id IS NOT NULL OR p.channel LIKE 'campaign:%', p.channel = 'sms'"
                " FROM participants p LEFT JOIN campaigns c ON c.id = p.campaign_id"
                " WHERE p.referrer_id IS NULL"
            )
        ]
    return snap._seeds


def _campaigns_from(
    conn: sqlite3.Connection,
    snap: Snapshot,
    since: str | None,
    until: str | None,
    rows: dict[str, dict[str, Any]],
) -> None:
    """``campaigns``' chains from the arrays: the seeds (few) named in SQL by id, each
    member counted under the code of its root."""
    seeds = [(pid, name) for pid, name, campaign, _sms in _seeds(conn, snap) if campaign]
    if not seeds:
        return
    codes = sorted({code for _pid, code in seeds})
    index = {code: i for i, code in enumerate(codes)}
    code_of = np.full(snap.length, -1, dtype=np.int64)
    for pid, code in seeds:
        code_of[pid] = index[code]
    mask = snap.period(since, until) if since or until else snap.present
    members = np.flatnonzero(mask & (code_of[snap.root] >= 0))
    keys = code_of[snap.root[members]]
    direct = snap.root[members] == members
    enrolled = snap.enrolled[members]
    length = len(codes)
    total = np.bincount(keys, minlength=length)
    counts = {
        "direct": np.bincount(keys, weights=direct, minlength=length),
        "enrolled": np.bincount(keys, weights=enrolled, minlength=length),
        "direct_enrolled": np.bincount(keys, weights=direct & enrolled, minlength=length),
    }
    deepest = np.full(length, -1, dtype=np.int64)
    np.maximum.at(deepest, keys, snap.wave[members])
    for i, code in enumerate(codes):
        if not total[i]:
            continue
        _fill_campaign(
            rows.setdefault(code, _campaign_row(code, None)),
            int(total[i]),
            int(counts["direct"][i]),
            int(counts["enrolled"][i]),
            int(counts["direct_enrolled"][i]),
            int(deepest[i]),
        )


def _fill_campaign(
    row: dict[str, Any], total: int, direct: int, enrolled: int, direct_enrolled: int, deepest: int
) -> None:
    """A campaign's chain figures from its counts (``direct``: the seeds themselves)."""
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
    conn: sqlite3.Connection,
    since: str | None = None,
    until: str | None = None,
    *,
    snap: Snapshot | None = None,
) -> list[dict[str, Any]]:
    """For each source and each campaign: participants, share who then brought someone,
    mean subtree size (the person included), enrolment rate, and recruits within 30 days of
    joining over the same window as SPEC §6 ``recruits_30d``.

    Rows are ``{"group": "source"|"campaign", "name": ..., ...}``; sources first, in the order
    of ``SOURCES``, then campaigns by number of participants.
    """
    snap = snap or snapshot(conn)
    size = snap.subtree_sizes()
    within = snap.recruits_within_window()
    cutoff = window_cutoff(conn, since, until)
    mask = snap.period(since, until)
    observed = mask & (snap.joined <= _epoch(cutoff)) if cutoff else np.zeros_like(mask)
    # Figures per participant, in the order of _comparison_row.
    columns = (
        mask,
        mask & (size > 1),
        np.where(mask, size, 0),
        mask & snap.enrolled,
        observed,
        np.where(observed, within, 0),
    )

    def sums(keys: np.ndarray, length: int, chosen: np.ndarray) -> list[list[int]]:
        table = [
            np.bincount(keys, weights=column[chosen], minlength=length).astype(np.int64)
            for column in columns
        ]
        return [[int(col[k]) for col in table] for k in range(length)]

    everyone = np.flatnonzero(mask)
    totals = sums(snap.source[everyone].astype(np.int64), len(SOURCES), everyone)
    rows = [_comparison_row("source", name, *totals[i]) for i, name in enumerate(SOURCES)]
    # Campaign participants are seeds: few rows, named in SQL.
    ids, names = [], []
    for pid, name, campaign, sms in _seeds(conn, snap):
        if campaign and not sms:  # the source 'campaign' (SOURCE_SQL)
            ids.append(pid)
            names.append(name)
    if ids:
        chosen = np.array(ids, dtype=np.int64)
        keep = mask[chosen]
        chosen = chosen[keep]
        kept_names = [name for name, kept in zip(names, keep, strict=True) if kept]
        labels = sorted(set(kept_names), key=lambda n: (n is None, n or ""))
        position = {name: i for i, name in enumerate(labels)}
        keys = np.array([position[name] for name in kept_names], dtype=np.int64)
        per_campaign = dict(zip(labels, sums(keys, len(labels), chosen), strict=True))
        ordered = sorted(per_campaign.items(), key=lambda item: (-item[1][0], item[0]))
        rows += [_comparison_row("campaign", name, *figures) for name, figures in ordered]
    return rows


def recruits_within_window(conn: sqlite3.Connection, length: int) -> array[int]:
    """How many people each participant brought in within 30 days of their own join, indexed
    by participant id (``length`` entries)."""
    counts = snapshot(conn).recruits_within_window()
    out = array("q", [0]) * length
    upto = min(length, len(counts))
    out[:upto] = array("q", counts[:upto].tolist())
    return out


def subtree_sizes(conn: sqlite3.Connection) -> array[int]:
    """Size of every participant's subtree (itself included), indexed by participant id.

    Each wave's sizes are added to their referrers', deepest wave first: linear in the number
    of participants (a recursive CTE costs the sum of all depths)."""
    size = snapshot(conn).subtree_sizes().copy()  # the snapshot's own array is shared
    size[size == 0] = 1  # unused ids count as themselves, as before
    return array("q", size.tolist())


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


# ---------------------------------------------------------------- one pass over arrays
#
# The windowed, cohort, timeline and comparison figures read every participant. Each used to be
# its own SQL pass (with a join or a date function per row) or a Python loop over a million
# rows; now one query fills a few numpy arrays (``Snapshot``), and every figure is a handful of
# vectorised operations over them. Definitions are unchanged (see each function's docstring).

_NO_TIME = -(2**62)  # a join date SQLite cannot read: never in a period, never drawn
_SOURCE_CODE_SQL = (
    "CASE WHEN channel = 'sms' THEN 1 WHEN referrer_id IS NOT NULL THEN 0"
    " WHEN campaign_id IS NOT NULL OR channel LIKE 'campaign:%' THEN 2 ELSE 3 END"
)


@dataclass
class Snapshot:
    """Every participant as arrays indexed by participant id (0 and gaps unused)."""

    present: np.ndarray  # bool: an id in use
    referrer: np.ndarray  # int64, 0 for none
    root: np.ndarray  # int64: the seed of the participant's tree
    wave: np.ndarray  # int64
    within: np.ndarray  # bool: brought in within 30 days of their referrer's join
    joined: np.ndarray  # int64 Unix time (UTC), _NO_TIME when unreadable
    enrolled: np.ndarray  # bool
    source: np.ndarray  # int8 index into SOURCES
    active: np.ndarray  # bool: not left, banned or erased (leaderboards)
    erased: np.ndarray  # bool
    relative: np.ndarray  # bool: kind 'relative' (else 'youth')
    # Computed once per snapshot, on first use.
    _sizes: np.ndarray | None = field(default=None, init=False, repr=False)
    _within: np.ndarray | None = field(default=None, init=False, repr=False)
    _seeds: list[tuple[int, str, bool, bool]] | None = field(default=None, init=False, repr=False)

    @property
    def length(self) -> int:
        return len(self.present)

    def subtree_sizes(self) -> np.ndarray:
        """Size of every participant's subtree (itself included): each wave's sizes added to
        their referrers', deepest wave first. Computed once per snapshot."""
        if self._sizes is None:
            self._sizes = self._subtree_sizes()
        return self._sizes

    def _subtree_sizes(self) -> np.ndarray:
        size = self.present.astype(np.int64)
        referred = np.flatnonzero(self.present & (self.referrer > 0))
        if not len(referred):
            return size
        waves = self.wave[referred]
        # Deepest first; a stable sort of 16-bit keys is a radix sort (linear).
        keys = -waves.astype(np.int16) if int(waves.max()) < 2**15 else -waves
        order = referred[np.argsort(keys, kind="stable")]
        ordered_waves = self.wave[order]
        bounds = np.flatnonzero(np.diff(ordered_waves)) + 1
        for group in np.split(order, bounds):
            np.add.at(size, self.referrer[group], size[group])
        return size

    def recruits_within_window(self) -> np.ndarray:
        """How many people each participant brought in within 30 days of their own join
        (computed once per snapshot)."""
        if self._within is not None:
            return self._within
        recruits = self.present & (self.referrer > 0) & self.within
        self._within = np.bincount(self.referrer[recruits], minlength=self.length)
        return self._within

    def period(self, since: str | None, until: str | None) -> np.ndarray:
        """The participants who joined in [since, until)."""
        mask = self.present & (self.joined != _NO_TIME)
        if since:
            mask &= self.joined >= _epoch(since)
        if until:
            mask &= self.joined < _epoch(until)
        return mask

    def local(self, mask: np.ndarray, tz: str) -> np.ndarray:
        """The local time in ``tz`` (as datetime64[s]) of the participants in ``mask``."""
        times = self.joined[mask]
        if not len(times):
            return times.astype("datetime64[s]")
        first = datetime.fromtimestamp(int(times.min()), UTC)
        last = datetime.fromtimestamp(int(times.max()), UTC)
        spans = utc_offsets(tz, first, last)
        bounds = np.array([int(start.timestamp()) for start, _ in spans[1:]], dtype=np.int64)
        offsets = np.array([offset for _, offset in spans], dtype=np.int64)
        return (times + offsets[np.searchsorted(bounds, times, side="right")]).astype(
            "datetime64[s]"
        )


def _epoch(iso: str) -> int:
    value = parse_datetime(iso)
    return int(value.timestamp()) if value is not None else _NO_TIME


# unixepoch() (SQLite 3.38) reads a date in half the time strftime('%s') takes.
_EPOCH_SQL = (
    "unixepoch(joined_at)"
    if sqlite3.sqlite_version_info >= (3, 38)
    else "CAST(strftime('%s', joined_at) AS INTEGER)"
)


# The last snapshot read, with its connection and the state of the database it reflects (one
# slot: the bot reads figures on its one reader connection; sqlite3 connections cannot be weakly
# referenced, and ``PRAGMA data_version`` means something only on its own connection).
@dataclass(frozen=True)
class _State:
    data_version: int  # PRAGMA data_version: commits by other connections
    total_changes: int  # this connection's own changes
    top: int  # the highest participant id
    seq: int  # the latest row of participant_changes (migration 023); -1 without the table
    count: int  # participants


_last_snapshot: list[tuple[sqlite3.Connection, _State, Snapshot]] = []
# How many rows the last snapshot() read from the participants table (all of them, or those
# new and changed since the snapshot it started from): worth storing for the next process?
_rows_read: list[int] = [0]

# Re-reading more changed rows than this costs about as much as reading them all.
REFRESH_LIMIT = 200_000


def _state(conn: sqlite3.Connection) -> _State:
    data_version = conn.execute("PRAGMA data_version").fetchone()[0]
    top, count = conn.execute("SELECT COALESCE(MAX(id), 0), COUNT(*) FROM participants").fetchone()
    try:
        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM participant_changes").fetchone()[0]
    except sqlite3.OperationalError:  # a database before migration 023
        seq = -1
    return _State(data_version, conn.total_changes, top, seq, count)


def snapshot(conn: sqlite3.Connection) -> Snapshot:
    """Every participant's referrer, root, wave, join time, enrolment and source.

    Kept per connection: while the database is unchanged it is returned as it is, so that
    ``/stats`` after start-up (warmed by ``warm``), the weekly post and the next ``/stats``
    reuse it; after a write only the new participants (ids above the highest kept) and the
    changed ones (``participant_changes``, migration 023) are read again. Its arrays are
    shared: callers never write into them."""
    cached = _last_snapshot[0] if _last_snapshot else None
    if cached is not None and cached[0] is conn:
        kept = cached[1]
        data_version = conn.execute("PRAGMA data_version").fetchone()[0]
        if (data_version, conn.total_changes) == (kept.data_version, kept.total_changes):
            return cached[2]
    # Read before the rows: rows read afterwards are at least as new as this state says, so a
    # change committed in between is read again next time, never missed.
    state = _state(conn)
    snap = None
    if cached is not None and cached[0] is conn:
        snap = _refreshed(conn, cached[1], cached[2], state)
    else:
        snap = _from_store(conn, state)
    if snap is None:
        snap = _read_snapshot(conn, state.top)
        _rows_read[0] = state.count
    _last_snapshot[:] = [(conn, state, snap)]
    return snap


def _refreshed(
    conn: sqlite3.Connection, kept: _State, snap: Snapshot, state: _State
) -> Snapshot | None:
    """``snap`` (read in state ``kept``) brought to ``state`` by reading again only the new
    and the changed participants; None when that cannot be done exactly (no change log, the
    log or the ids went backwards, too many changes): the caller reads everything."""
    if kept.seq < 0 or state.seq < kept.seq or state.top < kept.top:
        return None
    changed = [
        pid
        for (pid,) in conn.execute(
            "SELECT participant_id FROM participant_changes WHERE seq > ?"
            " AND participant_id <= ? LIMIT ?",
            (kept.seq, kept.top, REFRESH_LIMIT + 1),
        )
    ]
    if len(changed) > REFRESH_LIMIT:
        return None
    parts = [_read_rows(conn, " WHERE id > ?", [kept.top])]  # a range of the primary key
    for start in range(0, len(changed), 500):
        chunk = changed[start : start + 500]
        marks = ",".join("?" * len(chunk))
        parts.append(_read_rows(conn, f" WHERE id IN ({marks})", chunk))
    rows = np.concatenate(parts)
    length = max(state.top, snap.length - 1, int(rows["ids"].max() >> 32) if len(rows) else 0) + 1
    gone = np.array(changed, dtype=np.int64)
    new_ids = rows["ids"] >> 32
    patched = {}
    for name, (values, fill) in _fields(rows).items():
        old = getattr(snap, name)
        out = np.full(length, fill, dtype=old.dtype)
        out[: len(old)] = old
        out[gone] = fill  # a changed row as it is now: read again below, unless deleted
        out[new_ids] = values
        patched[name] = out
    refreshed = Snapshot(**patched)
    # The count guards what no log records (a row inserted below the highest id).
    if int(refreshed.present.sum()) != state.count:
        return None
    _rows_read[0] = len(rows)
    return refreshed


def _schema(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _from_store(conn: sqlite3.Connection, state: _State) -> Snapshot | None:
    """The arrays stored in the database (``store_snapshot``), brought up to date by reading
    the participants new or changed since; None when there are none or they cannot serve."""
    if state.seq < 0:
        return None
    try:
        row = conn.execute(
            "SELECT schema_version, seq, top, count, rows FROM figures_snapshot WHERE id = 1"
        ).fetchone()
    except sqlite3.OperationalError:  # a database before migration 023
        return None
    if row is None or row[0] != _schema(conn):
        return None
    _schema_version, seq, top, count, blob = row
    rows = np.frombuffer(blob, dtype=_ROW)
    if len(rows) != count:
        return None
    # Rows read after its state was taken may have ids above ``top``.
    length = max(top, int(rows["ids"].max() >> 32) if len(rows) else 0) + 1
    return _refreshed(conn, _State(-1, -1, top, seq, count), _spread(rows, length), state)


STORE_FROM_ROWS = 20_000  # a snapshot is stored again once this many rows had to be read


def snapshot_to_store(
    conn: sqlite3.Connection, minimum: int = STORE_FROM_ROWS
) -> tuple[int, int, int, int, bytes] | None:
    """The last snapshot read on this connection, packed for ``store_snapshot``, when reading
    it took at least ``minimum`` rows (else the stored one still serves well)."""
    cached = _last_snapshot[0] if _last_snapshot else None
    if cached is None or cached[0] is not conn or _rows_read[0] < minimum:
        return None
    state, snap = cached[1], cached[2]
    if state.seq < 0:
        return None
    ids = np.flatnonzero(snap.present)
    rows = np.empty(len(ids), dtype=_ROW)
    rows["ids"] = (ids << 32) | snap.referrer[ids]
    rows["joined"] = snap.joined[ids]
    bits = (
        (snap.relative[ids].astype(np.int64) << 7)
        | (snap.erased[ids].astype(np.int64) << 6)
        | (snap.active[ids].astype(np.int64) << 5)
        | (snap.within[ids].astype(np.int64) << 3)
        | (snap.source[ids].astype(np.int64) << 1)
        | snap.enrolled[ids].astype(np.int64)
    )
    rows["small"] = (snap.root[ids] << 24) | (snap.wave[ids] << 8) | bits
    return _schema(conn), state.seq, state.top, state.count, rows.tobytes()


def store_snapshot(
    conn: sqlite3.Connection, schema: int, seq: int, top: int, count: int, blob: bytes
) -> None:
    """Keep packed arrays (``snapshot_to_store``) in the database for the next process (on the
    writer; they describe the participants as of ``seq`` and ``top``, and are brought up to
    date from there by whoever reads them)."""
    conn.execute(
        "INSERT OR REPLACE INTO figures_snapshot (id, schema_version, seq, top, count, rows)"
        " VALUES (1, ?, ?, ?, ?, ?)",
        (schema, seq, top, count, blob),
    )


def relative_figures(
    conn: sqlite3.Connection, since: str | None = None, until: str | None = None
) -> dict[str, int]:
    """``relatives.figures`` from the snapshot: relatives who joined in the period, and young
    people who came through a relative's code (erased people left out, not their referrer)."""
    snap = snapshot(conn)
    mask = snap.period(since, until) if since or until else snap.present.copy()
    mask &= ~snap.erased
    relatives = int((mask & snap.relative).sum())
    youth = np.flatnonzero(mask & ~snap.relative & (snap.referrer > 0))
    via_relative = int(snap.relative[snap.referrer[youth]].sum())
    return {"relatives": relatives, "via_relative": via_relative}


def warm(conn: sqlite3.Connection, tz: str = "UTC") -> None:
    """Compute the figures ahead of the first ``/stats`` (at start-up, on the reader): the
    snapshot and the figures over the whole period stay for the calls that follow."""
    staff_figures(conn, None, None, tz)


_ROW = np.dtype([("ids", np.int64), ("joined", np.int64), ("small", np.int64)])
# Per participant: the id and the referrer; the join time; the root, the wave and seven bits.
_COLUMNS = (
    "id * 4294967296 + COALESCE(referrer_id, 0)",
    f"COALESCE({_EPOCH_SQL}, {_NO_TIME})",
    "root_id * 16777216 + wave * 256 + (kind = 'relative') * 128 + (erased_at IS NOT NULL) * 64"
    f" + ({stats.ACTIVE_SQL.replace('r.', '')}) * 32"
    f" + COALESCE(referral_delay_s <= {WINDOW_SECONDS}, 0) * 8"
    f" + ({_SOURCE_CODE_SQL}) * 2 + (enrolled_at IS NOT NULL)",
)
_ARRAYS = (
    "present",
    "referrer",
    "root",
    "wave",
    "within",
    "joined",
    "enrolled",
    "source",
    "active",
    "erased",
    "relative",
)


def _read_rows(conn: sqlite3.Connection, where: str, params: list[Any]) -> np.ndarray:
    """The participants ``where`` selects, three integers each (see ``_COLUMNS``).

    SQLite writes each column as one comma-separated text (``group_concat``, none of them
    NULL) that numpy parses: a million rows in about 0.6 s of CPU, where turning each value
    into a Python integer took 1.7 s."""
    texts = conn.execute(
        "SELECT COUNT(*), "
        + ", ".join(f"group_concat({c})" for c in _COLUMNS)
        + f" FROM participants{where}",
        params,
    ).fetchone()
    count = texts[0]
    rows = np.zeros(count, dtype=_ROW)
    if count:
        for name, text in zip(("ids", "joined", "small"), texts[1:], strict=True):
            values = np.fromstring(text, dtype=np.int64, sep=",")
            if len(values) != count:  # never expected: a value numpy could not read
                raise ValueError(f"snapshot column {name}: {len(values)} values of {count}")
            rows[name] = values
    return rows


def _fields(rows: np.ndarray) -> dict[str, tuple[np.ndarray, Any]]:
    """Each array of a ``Snapshot`` for ``rows`` (in their order), with its value for an id
    not in use."""
    small = rows["small"]
    return {
        "present": (np.ones(len(rows), dtype=np.bool_), False),
        "referrer": (rows["ids"] & 0xFFFFFFFF, 0),
        "root": (small >> 24, 0),
        "wave": ((small >> 8) & 0xFFFF, 0),
        "within": (((small >> 3) & 1).astype(np.bool_), False),
        "joined": (rows["joined"], _NO_TIME),
        "enrolled": ((small & 1).astype(np.bool_), False),
        "source": (((small >> 1) & 3).astype(np.int8), 3),
        "active": (((small >> 5) & 1).astype(np.bool_), False),
        "erased": (((small >> 6) & 1).astype(np.bool_), False),
        "relative": (((small >> 7) & 1).astype(np.bool_), False),
    }


def _spread(rows: np.ndarray, length: int) -> Snapshot:
    ids = rows["ids"] >> 32
    arrays = {}
    for name, (values, fill) in _fields(rows).items():
        out = np.full(length, fill, dtype=values.dtype)
        out[ids] = values
        arrays[name] = out
    return Snapshot(**arrays)


def _read_snapshot(conn: sqlite3.Connection, top: int) -> Snapshot:
    """Every participant, in one scan."""
    rows = _read_rows(conn, "", [])
    length = max(top, int(rows["ids"].max() >> 32) if len(rows) else 0) + 1
    return _spread(rows, length)


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
