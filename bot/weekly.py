"""The optional weekly post to the staff channel: Monday 09:00 local, the week's figures and the
chart over time. Off by default (``RELAIS_WEEKLY_REPORT=1`` turns it on).

``weekly_due`` is a pure function of the clock (tests pass their own ``now``); the maintenance
loop calls ``post_weekly_if_due`` every tick, and the ISO week of the last post is kept in
``meta`` so that a restart never posts twice.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot import charts
from bot.logging import get_logger
from bot.ports import Attachment, Reply, Target
from referrals import analytics, stats
from referrals.store import get_meta, set_meta
from referrals.timeutil import to_iso

if TYPE_CHECKING:
    from bot.app import App
    from referrals.store import Database

log = get_logger(__name__)

LAST_POST_KEY = "weekly_report_last_week"
POST_AT = time(9, 0)  # Monday, local time


def week_key(now: datetime, tz: str) -> str:
    """The local ISO week of ``now``, e.g. ``2026-W02``."""
    year, week, _ = now.astimezone(ZoneInfo(tz)).isocalendar()
    return f"{year}-W{week:02d}"


def weekly_due(now: datetime, tz: str, last_week: str | None) -> bool:
    """True from Monday 09:00 local on, in a week that had no post yet (a bot that was down
    on Monday posts when it comes back, once)."""
    local = now.astimezone(ZoneInfo(tz))
    monday = local.date() - timedelta(days=local.weekday())
    start = datetime.combine(monday, POST_AT, ZoneInfo(tz))
    return local >= start and week_key(now, tz) != last_week


async def weekly_reply(app: App, now: datetime) -> Reply:
    """The post: the last seven days' figures, the overall windowed figures, the chart."""
    settings = app.settings
    lang = settings.lang
    render = functools.partial(app.conversation.t, lang=lang)
    since = to_iso(now - timedelta(days=7))
    until = to_iso(now)
    week: dict[str, Any] = await app.db.read(stats.compute, since, until)
    overall, extra = await app.db.read(analytics.staff_figures, None, None, settings.tz, now)
    labels = charts.chart_labels(lambda key: render(key))
    png = await charts.timeline_chart_async(extra["timeline"], labels)
    text = render("analytics.weekly_post", week=week, s=overall)
    title = labels[f"chart_timeline_title_{extra['timeline']['bucket']}"]
    stamp = now.astimezone(ZoneInfo(settings.tz)).date().isoformat()
    return Reply(
        Target("channel", settings.discord_staff_channel),
        text,
        attachments=[Attachment(f"relais-timeline-{stamp}.png", png, title)],
        ephemeral=False,
    )


async def _last_week(db: Database) -> str | None:
    return await db.read(get_meta, LAST_POST_KEY)


async def post_weekly_if_due(app: App, now: datetime | None = None) -> bool:
    """Post the weekly figures to the staff channel when the setting is on and it is due."""
    if not getattr(app.settings, "weekly_report", False):
        return False
    now = now or datetime.now(UTC)
    if not weekly_due(now, app.settings.tz, await _last_week(app.db)):
        return False
    reply = await weekly_reply(app, now)
    key = week_key(now, app.settings.tz)
    # Recorded first: a failing channel must not make the bot post every minute.
    await app.db.write(set_meta, LAST_POST_KEY, key)
    await app.conversation.notifier.notify_staff(reply)
    log.info("weekly_report_posted", week=key)
    return True
