"""Quiet hours (SPEC §2), read in the recipient's own time and calendar.

A daily window (possibly across midnight), Sundays and public holidays, as ``SMS_QUIET_HOURS``
says, in the local time of the person who receives the message: the time zone and the public
holidays of the region of their number (overseas departments and collectivities have their own),
and for a metropolitan number the programme's department (``RELAIS_DEPARTMENT``), so that
Alsace-Moselle gets Good Friday and 26 December.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
import phonenumbers
from phonenumbers import timezone as phone_timezone

from bot.settings import QuietHours

_MAX_STEPS = 40  # more than enough: a few holidays in a row, a Sunday, a night window

# Each French region of a number: its time zone and its subdivision in ``holidays.France``.
# French Polynesia spans three zones; Tahiti's is where nearly everyone lives.
FRENCH_REGIONS: dict[str, tuple[str, str | None]] = {
    "GP": ("America/Guadeloupe", "971"),
    "MQ": ("America/Martinique", "972"),
    "GF": ("America/Cayenne", "973"),
    "RE": ("Indian/Reunion", "974"),
    "YT": ("Indian/Mayotte", "976"),
    "PM": ("America/Miquelon", "PM"),
    "BL": ("America/St_Barthelemy", "BL"),
    "MF": ("America/Marigot", "MF"),
    "WF": ("Pacific/Wallis", "WF"),
    "PF": ("Pacific/Tahiti", "PF"),
    "NC": ("Pacific/Noumea", "NC"),
}
# Metropolitan departments with their own public holidays (local law of Alsace-Moselle).
DEPARTMENT_SUBDIVISIONS = {"57": "57", "67": "6AE", "68": "6AE"}


@dataclass(frozen=True)
class Calendar:
    """Where a recipient lives, for quiet hours: a time zone and a public-holiday calendar.

    ``country`` and ``subdivision`` name a calendar of the ``holidays`` library (``None``: no
    public holidays known).
    """

    tz: str
    country: str | None = "FR"
    subdivision: str | None = None

    def is_holiday(self, day: date) -> bool:
        """True on a public holiday of this calendar."""
        if self.country is None:
            return False
        return day in _holidays(self.country, self.subdivision, day.year)


@lru_cache(maxsize=64)
def _holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    try:
        return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year))
    except NotImplementedError:  # a country or subdivision the library does not know
        return frozenset()


def programme_calendar(tz: str, department: str | None = None) -> Calendar:
    """The programme's own calendar: ``RELAIS_TZ`` and the holidays of its department."""
    return Calendar(tz, "FR", DEPARTMENT_SUBDIVISIONS.get(department or ""))


@lru_cache(maxsize=1024)
def recipient_calendar(e164: str | None, tz: str, department: str | None = None) -> Calendar:
    """The calendar of the person behind a number.

    Metropolitan France (and anything unparseable): the programme's time zone and department.
    French overseas: the region's zone and holidays. Another country: its holidays and, when the
    number has a single time zone, that zone.
    """
    default = programme_calendar(tz, department)
    if not e164:
        return default
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return default
    region = phonenumbers.region_code_for_number(number)
    if not region or region == "FR":
        return default
    if region in FRENCH_REGIONS:
        zone, subdivision = FRENCH_REGIONS[region]
        return Calendar(zone, "FR", subdivision)
    zones = [z for z in phone_timezone.time_zones_for_number(number) if z != "Etc/Unknown"]
    return Calendar(zones[0] if len(zones) == 1 else tz, region, None)


def is_holiday(day: date) -> bool:
    """True on a French public holiday (national calendar)."""
    return Calendar("Europe/Paris").is_holiday(day)


def _in_window(quiet: QuietHours, moment: time) -> bool:
    if quiet.start is None or quiet.end is None or quiet.start == quiet.end:
        return False
    if quiet.start < quiet.end:
        return quiet.start <= moment < quiet.end
    return moment >= quiet.start or moment < quiet.end  # across midnight


def _quiet_day(quiet: QuietHours, day: date, calendar: Calendar) -> bool:
    return (quiet.sundays and day.weekday() == 6) or (quiet.holidays and calendar.is_holiday(day))


def _calendar(where: str | Calendar) -> Calendar:
    return where if isinstance(where, Calendar) else programme_calendar(where)


def is_quiet(quiet: QuietHours, when: datetime, where: str | Calendar) -> bool:
    """True when no invitation may leave at ``when`` (aware), read in ``where``'s local time.

    ``where`` is a recipient's calendar, or a time zone name (metropolitan holidays).
    """
    calendar = _calendar(where)
    local = when.astimezone(ZoneInfo(calendar.tz))
    return _quiet_day(quiet, local.date(), calendar) or _in_window(quiet, local.time())


def _local(day: date, moment: time, zone: ZoneInfo) -> datetime:
    # Through UTC and back so that a time skipped by a DST change lands just after it.
    return datetime.combine(day, moment, zone).astimezone(UTC).astimezone(zone)


def next_allowed(quiet: QuietHours, when: datetime, where: str | Calendar) -> datetime:
    """``when`` itself when allowed, else the first allowed moment after it (aware, UTC)."""
    calendar = _calendar(where)
    zone = ZoneInfo(calendar.tz)
    local = when.astimezone(zone)
    for _ in range(_MAX_STEPS):
        if _quiet_day(quiet, local.date(), calendar):
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
