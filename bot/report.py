"""``relais report --out report.html``: one self-contained HTML file for a steering committee.

Every figure of ``/stats`` (SPEC §6 and ``referrals.analytics``) and the charts, embedded as
base64 PNG, with inline CSS that prints well. The page is a jinja2 template kept with the other
texts: ``messages/<lang>/report/report.html.j2`` (autoescaped).
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import sys
from collections.abc import Awaitable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import jinja2

from bot import labels as labels_module
from bot.logging import get_logger
from bot.texts import LANGS, MESSAGES_DIR
from referrals import actions, analytics
from referrals.timeutil import day_bounds

if TYPE_CHECKING:
    from types import ModuleType

    from bot.context import Context

TEMPLATE = "report.html.j2"
log = get_logger(__name__)


def report_environment(lang: str, messages_dir: Path = MESSAGES_DIR) -> jinja2.Environment:
    """The jinja2 environment of the report template in ``lang`` (autoescape on)."""
    from bot.texts import _number, _percent

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(messages_dir / lang / "report"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["number"] = _number
    env.filters["percent"] = _percent
    return env


def png_data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI, for an ``<img>`` that needs no other file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def charts_soon() -> Awaitable[ModuleType]:
    """``bot.charts`` imported in a worker thread (matplotlib: about 0.7 s of a report's
    start-up), while the caller reads the figures: SQLite lets go of the interpreter while it
    scans, so on two cores the two overlap."""
    return asyncio.ensure_future(asyncio.to_thread(importlib.import_module, "bot.charts"))


async def build_report(
    db: Any,
    *,
    lang: str,
    programme: str,
    render: Any,
    since: str | None = None,
    until: str | None = None,
    period: str = "",
    generated: str = "",
    tz: str = "UTC",
    messages_dir: Path = MESSAGES_DIR,
    charts_module: Awaitable[ModuleType] | None = None,
) -> str:
    """The report's HTML. ``render(key, **params)`` renders a message key in ``lang``.

    ``charts_module`` is ``bot.charts`` being imported (``charts_soon``), else it is imported
    here."""
    if charts_module is None:
        charts_module = charts_soon()
    figures, extra = await db.read(analytics.staff_figures, since, until, tz)
    per_action = await db.read(actions.results, since, until)
    charts = await charts_module
    labels = charts.chart_labels(render)
    timeline_png, cohorts_png, waves_png = await asyncio.gather(
        charts.timeline_chart_async(extra["timeline"], labels),
        charts.cohorts_chart_async(extra["cohorts"], labels),
        charts.waves_chart_async(figures["waves"], labels),
    )
    template = report_environment(lang, messages_dir).get_template(TEMPLATE)
    html = await asyncio.to_thread(
        template.render,
        programme=programme,
        period=period,
        covered=extra["covered"],
        generated=generated,
        tz=tz,
        s=figures,
        a=extra,
        source_names=labels_module.source_names(render),
        channel_names=labels_module.channel_names(figures["channels"], render),
        actions=per_action,
        charts={
            "timeline": png_data_uri(timeline_png),
            "cohorts": png_data_uri(cohorts_png),
            "waves": png_data_uri(waves_png),
        },
        chart_titles={
            "timeline": labels[f"chart_timeline_title_{extra['timeline']['bucket']}"],
            "cohorts": labels["chart_cohorts_title"],
            "waves": labels["chart_waves_title"],
        },
    )
    return html


async def keep_snapshot(db: Any) -> None:
    """Leave the figures' arrays in the database when they had to be read whole (or nearly):
    the next report starts from them. A database that cannot take them (read-only, full disk)
    costs the next report (or the bot's warm-up) that time, never this report."""
    try:
        if packed := await db.read(analytics.snapshot_to_store):
            await db.write(analytics.store_snapshot, *packed)
    except Exception:
        log.warning("figures_snapshot_not_stored", exc_info=True)


async def cmd_report(ctx: Context) -> int:
    """``relais report --out FILE [--since D] [--until D]``."""
    from bot.context import parse_day, period_text, write_atomically

    since = parse_day(ctx, "--since", ctx.args.since)
    until = parse_day(ctx, "--until", ctx.args.until)
    low, high = day_bounds(since, until, ctx.settings.tz)
    lang = ctx.lang if ctx.lang in LANGS else "fr"
    generated = datetime.now(ZoneInfo(ctx.settings.tz)).strftime("%Y-%m-%d %H:%M")
    charts_module = charts_soon()
    db = await ctx.open_db()
    try:
        html = await build_report(
            db,
            lang=lang,
            programme=ctx.settings.programme_name,
            render=ctx.t,
            since=low,
            until=high,
            period=period_text(ctx, since, until),
            generated=generated,
            tz=ctx.settings.tz,
            messages_dir=ctx.texts.messages_dir,
            charts_module=charts_module,
        )
        await keep_snapshot(db)
    finally:
        await db.close()
    out = Path(ctx.args.out)
    await write_atomically(
        ctx, out, lambda tmp: asyncio.to_thread(tmp.write_text, html, encoding="utf-8")
    )
    print(ctx.t("analytics.report_written", path=str(out)), file=sys.stderr)
    return 0
