"""PNG charts for staff: new participants per week by source, participants per wave, a subtree.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no display, no global figure
state), so charts can be rendered in worker threads: call the ``*_async`` helpers from the event
loop. Sized for a phone screen: about 1000 × 700 px with large type. Every word on a chart comes
from ``messages/<lang>/analytics.yaml`` through the ``labels`` mapping (see ``chart_labels``).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot; we never do, but a dependency might

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 7.0, 100  # 800 × 700 px
# Shown 390 px wide on a phone, a 800 px chart is scaled by 0.49: 17 pt (23.6 px) reads as
# 11.5 px. No text on a chart is smaller than MIN_TEXT_SIZE.
PHONE_WIDTH_PX, MIN_PHONE_PX = 390, 11
TITLE_SIZE, LABEL_SIZE, TICK_SIZE = 22, 18, 17
MIN_TEXT_SIZE = TICK_SIZE
SOURCE_ORDER = ("peer", "sms", "campaign", "organic")
# Colour-blind-safe (Okabe-Ito), peers in the strongest colour: they are the point.
SOURCE_COLOURS = {
    "peer": "#0072B2",
    "sms": "#E69F00",
    "campaign": "#009E73",
    "organic": "#999999",
}
WAVE_COLOUR = "#0072B2"
TREE_MAX_NODES = 120  # beyond this a drawing is a blur on a phone
LABEL_KEYS = (
    "chart_weekly_title",
    "chart_weekly_x",
    "chart_weekly_y",
    "chart_waves_title",
    "chart_waves_x",
    "chart_waves_y",
    "chart_tree_title",
    "chart_empty",
    "chart_timeline_title_day",
    "chart_timeline_title_week",
    "chart_timeline_title_month",
    "chart_timeline_y",
    "chart_cumulative",
    "chart_cohorts_title",
    "chart_cohorts_x",
    "chart_cohorts_y",
    "chart_tree_enrolled",
    "source_peer",
    "source_sms",
    "source_campaign",
    "source_organic",
)


def chart_labels(render: Callable[..., str]) -> dict[str, str]:
    """Every chart label, rendered with ``render(key)`` (``analytics.<name>`` message keys)."""
    return {name: render(f"analytics.{name}") for name in LABEL_KEYS}


# The last charts drawn, by their inputs: the same figures and labels give the same PNG, so a
# /stats on an unchanged database (or after the start-up warm-up) does not draw them again.
MEMO_SIZE = 12
_memo: dict[str, bytes] = {}


def _memoised(kind: str, draw: Callable[[], bytes], *inputs: Any) -> bytes:
    key = repr((kind, inputs))
    png = _memo.get(key)
    if png is None:
        png = draw()
        if len(_memo) >= MEMO_SIZE:
            _memo.clear()
        _memo[key] = png
    return png


def _figure() -> Figure:
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


# Fixed margins, in pixels, for the charts of /stats and the report: ``tight_layout`` measured
# every label to place the axes, a third of a chart's drawing time. The left margin is set by
# the y axis' widest tick label, estimated from the largest value (digits are about 16 px wide
# at TICK_SIZE); tests check every text stays inside the image for small and very large values.
DIGIT_PX, TOP_PX, XLABEL_PX, XTICKS_PX, LEGEND_ROW_PX = 16, 64, 84, 60, 49


def _tick_chars(largest: float, decimals: int = 0) -> int:
    """Characters of the widest y tick label for values up to ``largest`` (the axis may end
    at the next round number, above the data: a quarter is added)."""
    top = max(float(largest), 1.0) * 1.25
    if top >= 1e6:  # matplotlib then writes "0.75" with "1e6" above the axis
        return 4
    return len(f"{top:.{decimals}f}")


def _place(
    fig: Figure,
    *,
    left_chars: int,
    right_chars: int = 0,
    bottom_px: int = XLABEL_PX,
) -> None:
    """The axes' position from fixed margins (see ``DIGIT_PX``)."""
    width, height = fig.get_figwidth() * fig.dpi, fig.get_figheight() * fig.dpi
    left = max(70, 50 + DIGIT_PX * left_chars)
    right = 30 + DIGIT_PX * right_chars if right_chars else 20
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        top=1 - TOP_PX / height,
        bottom=bottom_px / height,
    )


def _integer_ticks(ax: Any) -> None:
    """Whole numbers only on the y axis (the default locator is a MaxNLocator)."""
    locator = ax.yaxis.get_major_locator()
    if isinstance(locator, MaxNLocator):
        locator.set_params(integer=True)


def _style(ax: Any) -> None:
    ax.tick_params(labelsize=TICK_SIZE)
    ax.yaxis.get_offset_text().set_fontsize(TICK_SIZE)  # "1e6" as legible as the ticks
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _empty_on(fig: Figure, title: str, text: str) -> None:
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(title, fontsize=TITLE_SIZE, pad=16)
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=LABEL_SIZE, wrap=True)


def _empty(fig: Figure, title: str, text: str) -> bytes:
    _empty_on(fig, title, text)
    return _png(fig)


def _stacked_bars(
    ax: Any,
    positions: list[int],
    rows: Sequence[Mapping[str, Any]],
    labels: Mapping[str, str],
    *,
    only_present: bool,
) -> list[int]:
    """One bar per row, stacked by source; with ``only_present``, a source that never appears is
    neither drawn nor in the legend. Returns each row's total.

    Each source's bars are one collection of rectangles, not one artist per bar: a year of
    weeks drawn as ``ax.bar`` made some 300 artists, half of a chart's drawing time."""
    bottom = np.zeros(len(rows), dtype=np.float64)
    left = np.asarray(positions, dtype=np.float64) - 0.4
    right = left + 0.8
    for source in SOURCE_ORDER:
        values = np.array([int(row.get(source, 0)) for row in rows], dtype=np.float64)
        if only_present and not values.any():
            continue
        top = bottom + values
        corners = np.stack(
            [
                np.column_stack([left, bottom]),
                np.column_stack([left, top]),
                np.column_stack([right, top]),
                np.column_stack([right, bottom]),
            ],
            axis=1,
        )
        ax.add_collection(
            PolyCollection(
                list(corners),
                facecolors=SOURCE_COLOURS[source],
                edgecolors="none",
                label=labels[f"source_{source}"],
            )
        )
        bottom = top
    totals = [int(total) for total in bottom]
    # What ax.bar does: bars stand on the axis, the highest with a little room above it.
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_ylim(0, max(totals, default=0) * 1.05 or 1)
    return totals


def weekly_chart(weeks: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> bytes:
    """New participants per week, stacked by source (rows of ``analytics.weekly``)."""
    fig = _figure()
    title = labels["chart_weekly_title"]
    if not weeks:
        return _empty(fig, title, labels["chart_empty"])
    ax = fig.add_subplot()
    positions = list(range(len(weeks)))
    _stacked_bars(ax, positions, weeks, labels, only_present=False)
    # At most ~8 week labels, so they stay legible on a phone.
    step = max(1, -(-len(weeks) // 8))
    shown = positions[::step]
    ax.set_xticks(shown, [_day_month(weeks[i]["week"]) for i in shown])
    ax.set_title(title, fontsize=TITLE_SIZE, pad=16)
    ax.set_xlabel(labels["chart_weekly_x"], fontsize=LABEL_SIZE)
    ax.set_ylabel(labels["chart_weekly_y"], fontsize=LABEL_SIZE)
    _integer_ticks(ax)
    _style(ax)
    ax.legend(fontsize=TICK_SIZE, frameon=False, loc="upper left")
    fig.tight_layout()
    return _png(fig)


def _day_month(iso_day: str) -> str:
    # Numeric day/month reads the same in French and English and needs no translated month.
    return f"{iso_day[8:10]}/{iso_day[5:7]}"


def waves_figure(waves: Sequence[int], labels: Mapping[str, str]) -> Figure:
    """Participants per wave (0 = seeds), with the count above each bar."""
    fig = _figure()
    title = labels["chart_waves_title"]
    if not waves or not any(waves):
        _empty_on(fig, title, labels["chart_empty"])
        return fig
    ax = fig.add_subplot()
    positions = list(range(len(waves)))
    bars = ax.bar(positions, list(waves), color=WAVE_COLOUR, width=0.7)
    if len(waves) <= 15:
        ax.bar_label(bars, fontsize=TICK_SIZE, padding=3)
    step = max(1, -(-len(waves) // 16))
    ax.set_xticks(positions[::step])
    ax.set_title(title, fontsize=TITLE_SIZE, pad=16)
    ax.set_xlabel(labels["chart_waves_x"], fontsize=LABEL_SIZE)
    ax.set_ylabel(labels["chart_waves_y"], fontsize=LABEL_SIZE)
    _integer_ticks(ax)
    ax.margins(y=0.12)
    _style(ax)
    _place(fig, left_chars=_tick_chars(max(waves) * 1.12))
    return fig


def waves_chart(waves: Sequence[int], labels: Mapping[str, str]) -> bytes:
    """``waves_figure`` as a PNG."""
    return _png(waves_figure(waves, labels))


def timeline_figure(timeline: Mapping[str, Any], labels: Mapping[str, str]) -> Figure:
    """New participants over the data's own period (``analytics.timeline``): bars stacked by
    source (only the sources present in the legend), the running total as a line, dates with
    their year."""
    fig = _figure()
    bucket = str(timeline.get("bucket", "week"))
    rows = list(timeline.get("rows", []))
    title = labels[f"chart_timeline_title_{bucket}"]
    if not rows:
        _empty_on(fig, title, labels["chart_empty"])
        return fig
    ax = fig.add_subplot()
    positions = list(range(len(rows)))
    totals = _stacked_bars(ax, positions, rows, labels, only_present=True)
    running, total = [], 0
    for value in totals:
        total += value
        running.append(total)
    line_ax = ax.twinx()
    line_ax.plot(positions, running, color="#D55E00", linewidth=3, label=labels["chart_cumulative"])
    line_ax.set_ylim(0, max(running) * 1.08 or 1)
    line_ax.tick_params(labelsize=TICK_SIZE, colors="#D55E00")
    line_ax.yaxis.get_offset_text().set_fontsize(TICK_SIZE)
    line_ax.spines["top"].set_visible(False)
    line_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    # At most five dates, each with its year, so they stay legible on a phone.
    step = max(1, -(-len(rows) // 5))
    shown = positions[::step]
    ax.set_xticks(shown, [_date_label(rows[i]["start"], bucket) for i in shown])
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_title(title, fontsize=TITLE_SIZE, pad=12)
    ax.set_ylabel(labels["chart_timeline_y"], fontsize=LABEL_SIZE)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _style(ax)
    handles, names = ax.get_legend_handles_labels()
    line_handles, line_names = line_ax.get_legend_handles_labels()
    # Below the axes: never over a bar, even when there is only one.
    fig.legend(
        handles + line_handles,
        names + line_names,
        fontsize=TICK_SIZE,
        frameon=False,
        loc="lower center",
        ncol=2,
    )
    rows_of_legend = -(-(len(handles) + 1) // 2)
    _place(
        fig,
        left_chars=_tick_chars(max(totals)),
        right_chars=_tick_chars(max(running) * 1.08),
        bottom_px=XTICKS_PX + LEGEND_ROW_PX * rows_of_legend,
    )
    return fig


def timeline_chart(timeline: Mapping[str, Any], labels: Mapping[str, str]) -> bytes:
    """``timeline_figure`` as a PNG."""
    return _png(timeline_figure(timeline, labels))


def _date_label(iso_day: str, bucket: str) -> str:
    # Numbers read the same in French and English; the year is always there.
    if bucket == "month":
        return f"{iso_day[5:7]}/{iso_day[:4]}"
    return f"{iso_day[8:10]}/{iso_day[5:7]}/{iso_day[2:4]}"


def cohorts_figure(cohorts: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> Figure:
    """Mean recruits within 30 days of joining, by month of arrival (``analytics.cohorts``)."""
    fig = _figure()
    title = labels["chart_cohorts_title"]
    if not cohorts:
        _empty_on(fig, title, labels["chart_empty"])
        return fig
    ax = fig.add_subplot()
    positions = list(range(len(cohorts)))
    values = [float(row["mean_recruits_30d"]) for row in cohorts]
    bars = ax.bar(positions, values, color=WAVE_COLOUR, width=0.7)
    if len(cohorts) <= 12:
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=TICK_SIZE, padding=3)
    step = max(1, -(-len(cohorts) // 5))
    shown = positions[::step]
    ax.set_xticks(shown, [_date_label(str(cohorts[i]["month"]) + "-01", "month") for i in shown])
    ax.set_title(title, fontsize=TITLE_SIZE, pad=12)
    ax.set_xlabel(labels["chart_cohorts_x"], fontsize=LABEL_SIZE)
    ax.set_ylabel(labels["chart_cohorts_y"], fontsize=LABEL_SIZE)
    # Room for the labels above the bars; a few hundredths at least, so that ticks keep two
    # decimals at most.
    top = max(max(values) * 1.15, 0.1)
    ax.set_ylim(0, top)
    _style(ax)
    _place(fig, left_chars=_tick_chars(top, decimals=2))
    return fig


def cohorts_chart(cohorts: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> bytes:
    """``cohorts_figure`` as a PNG."""
    return _png(cohorts_figure(cohorts, labels))


async def timeline_chart_async(timeline: Mapping[str, Any], labels: Mapping[str, str]) -> bytes:
    """``timeline_chart`` in a worker thread (the last few drawn are kept, ``_memoised``)."""
    return await asyncio.to_thread(
        _memoised, "timeline", lambda: timeline_chart(timeline, labels), timeline, labels
    )


async def cohorts_chart_async(
    cohorts: Sequence[Mapping[str, Any]], labels: Mapping[str, str]
) -> bytes:
    """``cohorts_chart`` in a worker thread (the last few drawn are kept, ``_memoised``)."""
    return await asyncio.to_thread(
        _memoised, "cohorts", lambda: cohorts_chart(cohorts, labels), cohorts, labels
    )


def tree_layout(nodes: Sequence[Mapping[str, Any]]) -> dict[int, tuple[float, int]]:
    """Layered tree layout: depth is the row, leaves get consecutive columns, and a parent
    sits above the middle of its children. ``nodes`` are ``analytics.subtree`` rows (root
    first, every parent before its children); returns ``{id: (x, depth)}``.
    """
    if not nodes:
        return {}
    children: dict[int, list[int]] = {}
    depth = {node["id"]: int(node["depth"]) for node in nodes}
    root = nodes[0]["id"]
    for node in nodes[1:]:
        if node["parent"] in depth:
            children.setdefault(node["parent"], []).append(node["id"])
    x: dict[int, float] = {}
    next_leaf = 0.0
    # Iterative post-order (a 5,000-long chain would overflow recursion).
    stack: list[tuple[int, bool]] = [(root, False)]
    while stack:
        current, expanded = stack.pop()
        kids = children.get(current, [])
        if not kids:
            x[current] = next_leaf
            next_leaf += 1
        elif expanded:
            x[current] = (x[kids[0]] + x[kids[-1]]) / 2
        else:
            stack.append((current, True))
            stack.extend((kid, False) for kid in reversed(kids))
    return {node: (x[node], depth[node]) for node in x}


def tree_chart(
    nodes: Sequence[Mapping[str, Any]],
    labels: Mapping[str, str],
    *,
    title: str | None = None,
    note: str | None = None,
) -> bytes:
    """A drawing of a subtree (``analytics.subtree``): the person on top, each wave one row
    below, names on nodes; colour by source, a dark ring for people who entered the programme.

    ``note`` is printed under the drawing (e.g. how many people were left out of it).
    """
    fig = _figure()
    heading = title or labels["chart_tree_title"]
    shown = list(nodes[:TREE_MAX_NODES])
    if not shown:
        return _empty(fig, heading, labels["chart_empty"])
    layout = tree_layout(shown)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(heading, fontsize=TITLE_SIZE, pad=16)
    for node in shown[1:]:
        parent = node["parent"]
        if parent in layout and node["id"] in layout:
            (x0, y0), (x1, y1) = layout[parent], layout[node["id"]]
            ax.plot([x0, x1], [-y0, -y1], color="#7a7a7a", linewidth=1.5, zorder=1)
    width = max(x for x, _ in layout.values()) + 1
    depth = max(d for _, d in layout.values()) + 1
    crowded = width > 10 or len(shown) > 30
    sources_drawn: set[str] = set()
    any_enrolled = False
    for node in shown:
        if node["id"] not in layout:
            continue
        x, d = layout[node["id"]]
        source = str(node.get("source") or "peer")
        colour = SOURCE_COLOURS.get(source, SOURCE_COLOURS["organic"])
        sources_drawn.add(source)
        enrolled = bool(node.get("enrolled"))
        any_enrolled = any_enrolled or enrolled
        ax.scatter(
            [x],
            [-d],
            s=160 if crowded else 320,
            color=colour,
            edgecolors="#1d1d1f" if enrolled else "none",
            linewidths=3 if enrolled else 0,
            zorder=2,
        )
        if node.get("name") is None or (crowded and d > 1):
            continue  # erased people have no name; a crowded drawing names only two rows
        name = str(node["name"])
        name = name if len(name) <= 12 else name[:11] + "…"
        ax.annotate(
            name,
            (x, -d),
            xytext=(0, -14 if crowded else -20),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=MIN_TEXT_SIZE,
            zorder=3,
        )
    ax.set_xlim(-0.8, width - 0.2)
    ax.set_ylim(-depth + 0.3, 0.5)
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], marker="o", linestyle="", markersize=12, color=SOURCE_COLOURS[source])
        for source in SOURCE_ORDER
        if source in sources_drawn
    ]
    names = [labels[f"source_{source}"] for source in SOURCE_ORDER if source in sources_drawn]
    if any_enrolled:
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                linestyle="",
                markersize=12,
                color="white",
                markeredgecolor="#1d1d1f",
                markeredgewidth=3,
            )
        )
        names.append(labels["chart_tree_enrolled"])
    bottom = 0.02
    if note:
        fig.text(0.5, bottom, note, ha="center", va="bottom", fontsize=MIN_TEXT_SIZE, wrap=True)
        bottom += 0.06
    fig.legend(
        handles,
        names,
        fontsize=MIN_TEXT_SIZE,
        frameon=False,
        loc="lower center",
        ncol=2,
        bbox_to_anchor=(0.5, bottom),
    )
    rows_of_legend = -(-len(handles) // 2)
    fig.tight_layout(rect=(0, bottom + 0.065 * rows_of_legend, 1, 1))
    return _png(fig)


async def weekly_chart_async(
    weeks: Sequence[Mapping[str, Any]], labels: Mapping[str, str]
) -> bytes:
    """``weekly_chart`` in a worker thread."""
    return await asyncio.to_thread(weekly_chart, weeks, labels)


async def waves_chart_async(waves: Sequence[int], labels: Mapping[str, str]) -> bytes:
    """``waves_chart`` in a worker thread (the last few drawn are kept, ``_memoised``)."""
    return await asyncio.to_thread(
        _memoised, "waves", lambda: waves_chart(waves, labels), waves, labels
    )


async def tree_chart_async(
    nodes: Sequence[Mapping[str, Any]],
    labels: Mapping[str, str],
    *,
    title: str | None = None,
    note: str | None = None,
) -> bytes:
    """``tree_chart`` in a worker thread."""
    return await asyncio.to_thread(tree_chart, nodes, labels, title=title, note=note)
