"""Quiet hours (SPEC §2): a daily window (possibly across midnight), Sundays, French holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from bot.settings import QuietHours

_MAX_STEPS = 40  # more than enough: a few holidays in a row, a Sunday, a night window


@lru_cache(maxsize=16)
def _french_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.France(years=year))


def is_holiday(day: date) -> bool:
    """True on a French public holiday (national calendar)."""
    return day in _french_holidays(day.year)


def _in_window(quiet: QuietHours, moment: time) -> bool:
    if quiet.start is None or quiet.end is None or quiet.start == quiet.end:
        return False
    if quiet.start < quiet.end:
        return quiet.start <= moment < quiet.end
    return moment >= quiet.start or moment < quiet.end  # across midnight


def _quiet_day(quiet: QuietHours, day: date) -> bool:
    return (quiet.sundays and day.weekday() == 6) or (quiet.holidays and is_holiday(day))


def is_quiet(quiet: QuietHours, when: datetime, tz: str) -> bool:
    """True when no invitation may leave at ``when`` (aware), read in the local time zone."""
    local = when.astimezone(ZoneInfo(tz))
    return _quiet_day(quiet, local.date()) or _in_window(quiet, local.time())


def _local(day: date, moment: time, zone: ZoneInfo) -> datetime:
    # Through UTC and back so that a time skipped by a DST change lands just after it.
    return datetime.combine(day, moment, zone).astimezone(UTC).astimezone(zone)


def next_allowed(quiet: QuietHours, when: datetime, tz: str) -> datetime:
    """``when`` itself when allowed, else the first allowed moment after it (aware, UTC)."""
    zone = ZoneInfo(tz)
    local = when.astimezone(zone)
    for _ in range(_MAX_STEPS):
        if _quiet_day(quiet, local.date()):
            local = _local(local.date() + timedelta(days=1), time(0, 0), zone)
            continue
        if _in_window(quiet, local.time()):
            assert quiet.start is not None and quiet.end is not None
            day = local.date()
            if quiet.start > quiet.end and local.time() >= quiet.start:
                day += timedelta(days=1)  # evening part of a window across midnight
            local = _local(day, quiet.end, zone)
            continue
        return local.astimezone(UTC)
    return local.astimezone(UTC)
