"""Charts render as PNGs of the announced size; the tree layout puts parents over children."""

from __future__ import annotations

import asyncio
import io
import threading

from PIL import Image

from bot import charts
from bot.texts import Texts

WEEKS = [
    {"week": "2026-01-05", "peer": 2, "sms": 0, "campaign": 1, "organic": 1, "total": 4},
    {"week": "2026-01-12", "peer": 0, "sms": 0, "campaign": 0, "organic": 0, "total": 0},
    {"week": "2026-01-19", "peer": 2, "sms": 1, "campaign": 1, "organic": 0, "total": 4},
]


def labels(lang: str = "fr") -> dict[str, str]:
    texts = Texts()
    return charts.chart_labels(lambda key: texts.render(key, lang))


def decoded(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG"
    return image


def test_labels_come_from_messages_in_both_languages() -> None:
    fr, en = labels("fr"), labels("en")
    assert set(fr) == set(en) == set(charts.LABEL_KEYS)
    assert fr["chart_weekly_title"] == "Nouveaux participants par semaine"
    assert en["chart_weekly_title"] == "New participants per week"


def test_weekly_chart_is_phone_sized() -> None:
    image = decoded(charts.weekly_chart(WEEKS, labels()))
    assert image.size == (800, 700)
    # Not a blank page: the source colours are drawn.
    colours = {colour for _, colour in image.convert("RGB").getcolors(1_000_000)}
    assert (0x00, 0x72, 0xB2) in colours  # peers
    assert (0xE6, 0x9F, 0x00) in colours  # SMS


def test_weekly_chart_of_a_long_period_and_of_nothing() -> None:
    many = [dict(WEEKS[0], week=f"2026-{1 + i // 4:02d}-{1 + (i % 4) * 7:02d}") for i in range(40)]
    assert decoded(charts.weekly_chart(many, labels())).size == (800, 700)
    assert decoded(charts.weekly_chart([], labels("en"))).size == (800, 700)


def test_waves_chart() -> None:
    assert decoded(charts.waves_chart([3, 3, 1], labels())).size == (800, 700)
    assert decoded(charts.waves_chart(list(range(40, 0, -1)), labels())).size == (800, 700)
    assert decoded(charts.waves_chart([], labels())).size == (800, 700)


def test_tree_layout_centres_parents_over_their_children() -> None:
    nodes = [
        {"id": 1, "parent": None, "depth": 0, "name": "A"},
        {"id": 2, "parent": 1, "depth": 1, "name": "B"},
        {"id": 3, "parent": 1, "depth": 1, "name": "C"},
        {"id": 4, "parent": 2, "depth": 2, "name": "D"},
        {"id": 5, "parent": 2, "depth": 2, "name": "E"},
    ]
    layout = charts.tree_layout(nodes)
    # Leaves D, E, C take columns 0, 1, 2; B sits over D and E, A over B and C.
    assert layout == {4: (0.0, 2), 5: (1.0, 2), 2: (0.5, 1), 3: (2.0, 1), 1: (1.25, 0)}


def test_tree_layout_of_a_very_long_chain_does_not_recurse() -> None:
    nodes = [
        {"id": i, "parent": i - 1 if i else None, "depth": i, "name": str(i)} for i in range(5000)
    ]
    layout = charts.tree_layout(nodes)
    assert len(layout) == 5000 and {x for x, _ in layout.values()} == {0.0}


def test_tree_chart() -> None:
    nodes = [{"id": 1, "parent": None, "depth": 0, "name": "Inès"}]
    nodes += [{"id": i, "parent": 1, "depth": 1, "name": f"ami·e {i}"} for i in range(2, 6)]
    png = charts.tree_chart(nodes, labels(), title="Ce que Inès a déclenché", note="… et 3 autres")
    assert decoded(png).size == (800, 700)
    crowded = [{"id": 1, "parent": None, "depth": 0, "name": "root"}]
    crowded += [
        {"id": i, "parent": i // 2, "depth": i.bit_length() - 1, "name": f"p{i}"}
        for i in range(2, 300)
    ]
    assert decoded(charts.tree_chart(crowded, labels())).size == (800, 700)
    assert decoded(charts.tree_chart([], labels())).size == (800, 700)


async def test_async_helpers_render_in_a_worker_thread(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    loop_thread = threading.get_ident()
    seen: list[int] = []
    original = charts.waves_chart

    def spy(*args: object) -> bytes:
        seen.append(threading.get_ident())
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(charts, "waves_chart", spy)
    weekly, waves = await asyncio.gather(
        charts.weekly_chart_async(WEEKS, labels()), charts.waves_chart_async([2, 1], labels())
    )
    assert seen and seen[0] != loop_thread
    assert decoded(weekly).size == decoded(waves).size == (800, 700)
