"""Charts on real data and on a phone: the data's own period, legible text at 390 px, legends
for what is drawn, and a tree drawing that keeps the longest chain."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.text import Text

from bot import charts
from bot.texts import Texts
from referrals import analytics, csvio
from referrals.store import Database

NOW = datetime(2026, 12, 1, tzinfo=UTC)
HEADER = "participant,referrer,joined_at,channel,kind,enrolled_at\n"


def labels() -> dict[str, str]:
    texts = Texts()
    return charts.chart_labels(lambda key: texts.render(key, "fr"))


def smallest_phone_px(fig: Figure) -> float:
    """The smallest text on the figure, in CSS px once the PNG is shown 390 px wide."""
    fig.canvas.draw()
    width_px = fig.get_figwidth() * fig.dpi
    sizes = [
        text.get_fontsize() * fig.dpi / 72 * charts.PHONE_WIDTH_PX / width_px
        for text in fig.findobj(Text)
        if text.get_visible() and text.get_text().strip()
    ]
    assert sizes
    return min(sizes)


def legend_texts(fig: Figure) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def tick_texts(fig: Figure) -> list[str]:
    fig.canvas.draw()
    return [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_text()]


async def test_rds_timelines_read_on_a_phone(tmp_db: Database, data_dir: Path) -> None:
    for name in ("rds-fauxtime.csv", "rds-fauxmadrona.csv"):
        await tmp_db.write(lambda conn: conn.execute("DELETE FROM participants"))
        text = (data_dir / name).read_text(encoding="utf-8")
        await tmp_db.call(csvio.import_rows, text, "UTC")
        timeline = await tmp_db.read(analytics.timeline, None, None, "Europe/Paris", NOW)
        fig = charts.timeline_figure(timeline, labels())
        assert smallest_phone_px(fig) >= charts.MIN_PHONE_PX
        # Only the sources present (a peer or a campaign) are in the legend, with the total.
        assert legend_texts(fig) == ["Par un pair", "Campagne", "Total cumulé (axe de droite)"]
        ticks = tick_texts(fig)
        assert 2 <= len(ticks) <= 5
        year = "10" if "fauxtime" in name else "26"
        assert all(tick.endswith("/" + year) for tick in ticks), ticks  # the year is there


async def test_an_outlier_does_not_stretch_the_axis(tmp_db: Database, data_dir: Path) -> None:
    text = (data_dir / "rds-fauxtime.csv").read_text(encoding="utf-8")
    await tmp_db.call(csvio.import_rows, text, "UTC")
    await tmp_db.write(
        lambda conn: conn.execute(
            "UPDATE participants SET joined_at = '2100-03-12T14:25:00+00:00' WHERE ref = 'r135'"
        )
    )
    timeline = await tmp_db.read(analytics.timeline, None, None, "UTC", NOW)
    assert len(timeline["rows"]) < 60  # not 4,698 weeks
    ticks = tick_texts(charts.timeline_figure(timeline, labels()))
    assert all(tick.endswith("/10") for tick in ticks)


def test_one_week_of_data_is_seven_days_with_the_legend_apart() -> None:
    rows = [
        {
            "start": f"2026-01-0{i + 5}",
            "peer": i,
            "sms": 0,
            "campaign": 0,
            "organic": 1,
            "total": i + 1,
        }
        for i in range(7)
    ]
    fig = charts.timeline_figure({"bucket": "day", "rows": rows}, labels())
    assert legend_texts(fig) == ["Par un pair", "Sans source", "Total cumulé (axe de droite)"]
    # The legend sits below the axes, never over a bar.
    fig.canvas.draw()
    legend_top = fig.legends[0].get_window_extent().y1
    axes_bottom = fig.axes[0].get_window_extent().y0
    assert legend_top <= axes_bottom
    assert fig.axes[0].get_title() == "Nouveaux participants par jour"


def test_cohorts_and_waves_read_on_a_phone() -> None:
    cohorts = [
        {"month": "2026-01", "participants": 3, "recruits_30d": 2, "mean_recruits_30d": 0.6667},
        {"month": "2026-02", "participants": 1, "recruits_30d": 1, "mean_recruits_30d": 1.0},
    ]
    assert smallest_phone_px(charts.cohorts_figure(cohorts, labels())) >= charts.MIN_PHONE_PX


async def test_tree_drawing_keeps_the_longest_chain(tmp_db: Database) -> None:
    # A seed with 150 direct recruits, one of whom starts a chain 30 people long.
    rows = ["s,,2026-01-01T00:00:00+00:00,,,\n"]
    rows += [f"d{i},s,2026-01-02T00:{i // 60:02d}:{i % 60:02d}+00:00,code,,\n" for i in range(150)]
    rows += ["c1,d149,2026-01-03T00:00:00+00:00,code,,\n"]
    rows += [f"c{i},c{i - 1},2026-01-03T00:00:{i:02d}+00:00,code,,\n" for i in range(2, 31)]
    await tmp_db.call(csvio.import_rows, HEADER + "".join(rows), "UTC")
    nodes = await tmp_db.read(analytics.subtree, 1, charts.TREE_MAX_NODES)
    assert len(nodes) == charts.TREE_MAX_NODES
    assert max(node["depth"] for node in nodes) == 31  # the whole chain is drawn
    ids = {node["id"] for node in nodes}
    assert all(node["parent"] in ids for node in nodes[1:])
    assert {node["source"] for node in nodes} == {"organic", "peer"}
    png = charts.tree_chart(nodes, labels(), note="… et 61 autres personnes, non dessinées")
    assert png.startswith(b"\x89PNG")


async def test_erased_people_have_no_name_in_a_drawing(tmp_db: Database) -> None:
    text = HEADER + "a,,2026-01-01T00:00:00+00:00,,,\nb,a,2026-01-02T00:00:00+00:00,code,,\n"
    await tmp_db.call(csvio.import_rows, text, "UTC")
    await tmp_db.write(
        lambda conn: conn.execute(
            "UPDATE participants SET erased_at = '2026-02-01T00:00:00+00:00', ref = 'p-2fc3'"
            " WHERE ref = 'b'"
        )
    )
    nodes = await tmp_db.read(analytics.subtree, 1)
    assert [node["name"] for node in nodes] == ["a", None]


def _outside(fig: Figure) -> list[str]:
    """What is drawn outside the image (matplotlib places a y label beside its tick labels, so
    a margin too narrow shows as a label cut at the edge)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    box = fig.get_tightbbox(renderer)  # inches, only what is drawn
    width, height = fig.get_figwidth(), fig.get_figheight()
    edges = {"left": box.x0, "bottom": box.y0, "right": width - box.x1, "top": height - box.y1}
    return [side for side, room in edges.items() if room < 0]


def test_fixed_margins_hold_small_and_huge_figures() -> None:
    """The charts of /stats place their axes by fixed margins (no ``tight_layout``): every
    text stays inside the image and legible on a phone, from a handful of people to tens of
    millions, in both languages."""
    texts = Texts()
    for lang in ("fr", "en"):
        names = charts.chart_labels(lambda key, lang=lang: texts.render(key, lang))
        for scale in (1, 37, 28_000, 3_000_000):
            rows = [
                {
                    "start": f"2026-{1 + i // 4:02d}-{1 + 7 * (i % 4):02d}",
                    "peer": scale * (i % 3),
                    "sms": scale,
                    "campaign": 1,
                    "organic": scale // 3,
                    "total": scale * (i % 3) + scale + 1 + scale // 3,
                }
                for i in range(35)
            ]
            waves = [scale * (w + 1) // 4 for w in range(31)]
            cohorts = [
                {
                    "month": f"2026-{m:02d}",
                    "participants": scale,
                    "recruits_30d": 0,
                    "mean_recruits_30d": round(1.37 * min(scale, 9) / m**3, 4),
                }
                for m in range(1, 13)
            ]
            for fig in (
                charts.timeline_figure({"bucket": "week", "rows": rows}, names),
                charts.waves_figure(waves, names),
                charts.cohorts_figure(cohorts, names),
            ):
                assert _outside(fig) == [], (lang, scale, fig.axes[0].get_title())
                assert smallest_phone_px(fig) >= charts.MIN_PHONE_PX
