"""Word-of-mouth figures (SPEC §6), computed with SQL aggregates: the graph never walks in Python.

Waves and tree roots are stored when a source is set, so every figure is a GROUP BY.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Any

from referrals.timeutil import parse_datetime, to_iso

TOP_REFERRERS = 10
WINDOW_DAYS = 30
WINDOW_SECONDS = WINDOW_DAYS * 86400
# A leaderboard shows people staff can still thank: not those who left, were banned or erased.
ACTIVE_SQL = "r.left_at IS NULL AND r.banned = 0 AND r.erased_at IS NULL"


def _where(since: str | None, until: str | None, alias: str = "") -> tuple[str, list[str]]:
    prefix = f"{alias}." if alias else ""
    clauses, params = [], []
    if since:
        clauses.append(f"{prefix}joined_at >= ?")
        params.append(since)
    if until:
        clauses.append(f"{prefix}joined_at < ?")
        params.append(until)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _and(where: str, clause: str) -> str:
    return f"{where} AND {clause}" if where else f" WHERE {clause}"


def channel_counts(conn: sqlite3.Connection, where: str, params: list[Any]) -> dict[str, int]:
    """Participants by channel (None and '' as "unknown"), most first, then by name."""
    counted: dict[str, int] = {}
    # Over the (wave, channel) index, already in order: no sort of a million rows.
    for channel, count in conn.execute(
        f"SELECT channel, COUNT(*) FROM participants{where} GROUP BY wave, channel", params
    ):
        name = channel or "unknown"
        counted[name] = counted.get(name, 0) + count
    return dict(sorted(counted.items(), key=lambda item: (-item[1], item[0])))


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


_UNSET: Any = object()


def compute(
    conn: sqlite3.Connection,
    since: str | None = None,
    until: str | None = None,
    *,
    recruits_30d: float | None = _UNSET,
    top: tuple[list[dict[str, Any]], int] | None = None,
) -> dict[str, Any]:
    """Every figure of SPEC §6 over the participants who joined in [since, until).

    ``recruits_30d``, when given, is that figure already computed (``analytics.staff_figures``
    has it from its pass over every participant)."""
    where, params = _where(since, until)
    # Each figure is one scan of a narrow index (see migration 004), not of the table.
    participants = _count(conn, where, params)
    referred = _count(conn, _and(where, "referrer_id IS NOT NULL"), params)
    enrolled_referred = enrolled_seeds = 0
    for is_referred, count in conn.execute(
        "SELECT referrer_id IS NOT NULL, COUNT(*) FROM participants"
        f"{_and(where, 'enrolled_at IS NOT NULL')} GROUP BY 1",
        params,
    ):
        if is_referred:
            enrolled_referred = count
        else:
            enrolled_seeds = count
    waves_rows = conn.execute(
        f"SELECT wave, COUNT(*) FROM participants{where} GROUP BY wave ORDER BY wave", params
    ).fetchall()
    waves = [0] * ((waves_rows[-1][0] + 1) if waves_rows else 0)
    for wave, count in waves_rows:
        waves[wave] = count
    wave_sum = sum(wave * count for wave, count in waves_rows)
    largest = conn.execute(
        f"SELECT COUNT(*) AS n FROM participants{where} GROUP BY root_id ORDER BY n DESC LIMIT 1",
        params,
    ).fetchone()
    return figures_from_counts(
        conn,
        since,
        until,
        participants=participants,
        referred=referred,
        enrolled_referred=enrolled_referred,
        enrolled_seeds=enrolled_seeds,
        waves=waves,
        wave_sum=wave_sum,
        largest=largest[0] if largest else 0,
        top=top or top_referrers(conn, since, until),
        recruits_30d=(
            windowed_recruits(conn, since, until) if recruits_30d is _UNSET else recruits_30d
        ),
        recruits_by_wave=recruits_by_wave(conn, waves, since, until),
    )


def figures_from_counts(
    conn: sqlite3.Connection,
    since: str | None,
    until: str | None,
    *,
    participants: int,
    referred: int,
    enrolled_referred: int,
    enrolled_seeds: int,
    waves: list[int],
    wave_sum: int,
    largest: int,
    top: tuple[list[dict[str, Any]], int],
    recruits_30d: float | None,
    recruits_by_wave: list[float],
) -> dict[str, Any]:
    """SPEC §6's figures from their counts (however they were counted: SQL here, arrays in
    ``analytics.spec_figures``); channels, the median delay and invitations read over their
    indexes."""
    where, params = _where(since, until)
    seeds = participants - referred
    top_list, more_tied = top
    return {
        "participants": participants,
        "seeds": seeds,
        "referred": referred,
        "k_factor": _rate(referred, participants),
        "amplification": round(participants / seeds, 4) if seeds else None,
        "max_depth": len(waves) - 1 if waves else 0,
        "mean_depth": round(wave_sum / participants, 4) if participants else 0.0,
        "largest_tree": largest,
        "waves": waves,
        "channels": channel_counts(conn, where, params),
        "median_referral_delay_hours": _median_delay(conn, where, params),
        "enrolled": enrolled_referred + enrolled_seeds,
        "enrollment_rate_referred": _rate(enrolled_referred, referred),
        "enrollment_rate_seeds": _rate(enrolled_seeds, seeds),
        "top_referrers": top_list,
        "top_referrers_more_tied": more_tied,
        "invitations": invitations(conn, since, until),
        "recruits_30d": recruits_30d,
        "recruits_by_wave": recruits_by_wave,
    }


def top_referrers(
    conn: sqlite3.Connection, since: str | None = None, until: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    """Up to ten people who brought the most (recruits who joined in the period), ties ranked
    alike (1, 1, 3) and ordered by who joined first; people who left, were banned or erased are
    left out. Also returns how many more people tie with the last one shown."""
    pwhere, pparams = _where(since, until, "p")
    rows = conn.execute(
        "SELECT r.ref, t.n FROM (SELECT referrer_id, COUNT(*) AS n FROM participants p"
        f"{_and(pwhere, 'p.referrer_id IS NOT NULL')} GROUP BY referrer_id) t"
        f" JOIN participants r ON r.id = t.referrer_id WHERE {ACTIVE_SQL}"
        " ORDER BY t.n DESC, r.joined_at, r.id"
        f" LIMIT {TOP_REFERRERS + 1}",
        pparams,
    ).fetchall()
    top: list[dict[str, Any]] = []
    for position, (ref, recruits) in enumerate(rows[:TOP_REFERRERS], start=1):
        rank = top[-1]["rank"] if top and top[-1]["recruits"] == recruits else position
        top.append({"participant": ref, "recruits": recruits, "rank": rank})
    more_tied = 0
    if len(rows) > TOP_REFERRERS:
        last = rows[TOP_REFERRERS - 1][1]
        more_tied = conn.execute(
            "SELECT COUNT(*) FROM (SELECT referrer_id, COUNT(*) AS n FROM participants p"
            f"{_and(pwhere, 'p.referrer_id IS NOT NULL')} GROUP BY referrer_id) t"
            f" JOIN participants r ON r.id = t.referrer_id WHERE {ACTIVE_SQL} AND t.n = ?",
            [*pparams, last],
        ).fetchone()[0] - sum(1 for row in rows[:TOP_REFERRERS] if row[1] == last)
    return top, more_tied


def horizon(conn: sqlite3.Connection, since: str | None, until: str | None) -> str | None:
    """The end of the observed period: ``until``, else the latest join among the counted."""
    if until:
        return until
    where, params = _where(since, until)
    row = conn.execute(f"SELECT MAX(joined_at) FROM participants{where}", params).fetchone()
    return row[0] if row and row[0] else None


def window_cutoff(conn: sqlite3.Connection, since: str | None, until: str | None) -> str | None:
    """Participants who joined at or before this instant had their whole 30-day window
    observed (SPEC §6 ``recruits_30d``); None when nobody joined."""
    end = parse_datetime(horizon(conn, since, until) or "")
    return to_iso(end - timedelta(days=WINDOW_DAYS)) if end else None


def windowed_recruits(
    conn: sqlite3.Connection, since: str | None = None, until: str | None = None
) -> float | None:
    """Mean number of people each counted participant brought in within 30 days of their own
    join, over those who joined at least 30 days before the horizon; None when none did."""
    cutoff = window_cutoff(conn, since, until)
    if cutoff is None:
        return None
    where, params = _where(since, until, "p")
    where = _and(where, "p.joined_at <= ?")
    qualified = _count(conn, where.replace("p.", ""), [*params, cutoff])
    if not qualified:
        return None
    recruits = conn.execute(
        "SELECT COUNT(*) FROM participants r JOIN participants p ON p.id = r.referrer_id"
        f"{where} AND r.referral_delay_s <= ?",
        [*params, cutoff, WINDOW_SECONDS],
    ).fetchone()[0]
    return round(recruits / qualified, 4)


def recruits_by_wave(
    conn: sqlite3.Connection, waves: list[int], since: str | None = None, until: str | None = None
) -> list[float]:
    """Per wave of the counted participants: people they brought in (themselves counted)
    divided by the size of the wave; the last wave is 0."""
    brought = [0] * len(waves)
    if since or until:
        where, params = _where(since, until, "p")
        rwhere, rparams = _where(since, until, "r")
        for wave, count in conn.execute(
            "SELECT p.wave, COUNT(*) FROM participants r JOIN participants p"
            f" ON p.id = r.referrer_id{rwhere}{where.replace(' WHERE ', ' AND ', 1)}"
            " GROUP BY p.wave",
            [*rparams, *params],
        ):
            if wave < len(brought):
                brought[wave] = count
    else:
        # Without a period everyone of wave w + 1 was brought in by someone of wave w.
        brought = [*waves[1:], 0][: len(waves)]
    return [round(b / n, 4) if n else 0.0 for b, n in zip(brought, waves, strict=True)]


def _count(conn: sqlite3.Connection, where: str, params: list[str]) -> int:
    return int(conn.execute(f"SELECT COUNT(*) FROM participants{where}", params).fetchone()[0])


def _median_delay(conn: sqlite3.Connection, where: str, params: list[str]) -> float | None:
    # referral_delay_s is stored (and indexed) for every referred participant: the median is
    # one or two steps along an index, not a join and a sort of the whole table.
    where = _and(where, "referral_delay_s IS NOT NULL")
    count = _count(conn, where, params)
    if not count:
        return None
    middle = conn.execute(
        f"SELECT referral_delay_s FROM participants{where}"
        " ORDER BY referral_delay_s LIMIT ? OFFSET ?",
        [*params, 2 - count % 2, (count - 1) // 2],
    ).fetchall()
    return round(sum(row[0] for row in middle) / len(middle) / 3600, 4)


def invitations(
    conn: sqlite3.Connection, since: str | None = None, until: str | None = None
) -> dict[str, Any]:
    """The SMS invitation funnel: sent, delivered, failed, joined, opted out, conversion."""
    clauses, params = [], []
    if since:
        clauses.append("i.created_at >= ?")
        params.append(since)
    if until:
        clauses.append("i.created_at < ?")
        params.append(until)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    row = conn.execute(
        "SELECT COUNT(i.sent_at), SUM(i.status = 'delivered'),"
        " SUM(i.status IN ('failed', 'undelivered')), COUNT(i.joined_participant_id),"
        " COUNT(o.phone_hash)"
        " FROM invitations i LEFT JOIN opt_outs o ON o.phone_hash = i.phone_hash" + where,
        params,
    ).fetchone()
    sent, delivered, failed, joined, opted_out = (value or 0 for value in row)
    return {
        "sent": sent,
        "delivered": delivered,
        "failed": failed,
        "joined": joined,
        "opted_out": opted_out,
        "conversion": _rate(joined, sent),
    }
