"""Parsing and formatting of dates: everything stored as ISO 8601 in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from referrals.errors import RelaisError


def parse_datetime(text: str, tz: str = "UTC") -> datetime | None:
    """An aware datetime from ISO 8601 text (a naive one is read in ``tz``); None if unparsable."""
    text = text.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace(" ", "T", 1) if len(text) > 10 else text)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz))
    return value


def to_iso(value: datetime) -> str:
    """Canonical storage form: UTC, ISO 8601, seconds (microseconds only when present)."""
    return value.astimezone(UTC).isoformat()


def day_bounds(since: date | None, until: date | None, tz: str) -> tuple[str | None, str | None]:
    """UTC ISO bounds [since 00:00, until+1 00:00) of local days, for filtering.

    A period that ends before it starts is refused (an empty report would look like no activity).
    """
    if since is not None and until is not None and since > until:
        raise RelaisError("stats.period_reversed", since=since.isoformat(), until=until.isoformat())
    zone = ZoneInfo(tz)
    low = to_iso(datetime.combine(since, time(), zone)) if since else None
    high = to_iso(datetime.combine(until + timedelta(days=1), time(), zone)) if until else None
    return low, high


def utc_offsets(tz: str, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """The time zone's UTC offset (seconds) from ``start`` to ``end``: (UTC instant it begins,
    offset) pairs, the first at ``start``. Changes are found to the hour (as zones change)."""
    zone = ZoneInfo(tz)

    def offset(at: datetime) -> int:
        delta = at.astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    start = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    end = end.astimezone(UTC)
    spans = [(start, offset(start))]
    day = start
    while day < end:
        following = day + timedelta(days=1)
        if offset(following) != spans[-1][1]:
            hour = day
            while hour < following:  # the hour it changed, within that day
                hour += timedelta(hours=1)
                if offset(hour) != spans[-1][1]:
                    spans.append((hour, offset(hour)))
        day = following
    return spans
