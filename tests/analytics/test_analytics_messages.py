"""The analytics messages render in both languages, and read right for one and for many."""

from __future__ import annotations

import pytest
from message_samples import CAMPAIGN, ROW

from bot.texts import LANGS, Texts

TEXTS = Texts()
# Samples for every variable of the analytics texts (also what a shared template test needs).
SAMPLES = {
    "campaigns": [CAMPAIGN] * 9,
    "rows": [ROW, dict(ROW, group="campaign", name="VAN-NANTES"), dict(ROW, participants=0)],
    "source_names": {"peer": "Par un pair"},
    "name": "Léa",
    "n": 3,
    "code": "VAN-NANTES",
    "count": 2,
    "path": "report.html",
    "link": "https://discord.gg/abc",
    "public": False,
    "week": {"participants": 12, "referred": 9, "invitations": {"sent": 3}},
    "s": {"participants": 120, "recruits_30d": 0.42},
}
KEYS = [key for key in TEXTS.keys("fr") if key.startswith("analytics.")] + [
    "staff.campaign_created"
]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("key", KEYS)
def test_renders(lang: str, key: str) -> None:
    text = TEXTS.render(key, lang, programme="Relais", **SAMPLES)
    assert text.strip() and "{{" not in text and "{%" not in text


def test_same_keys_in_both_languages() -> None:
    for lang in LANGS:
        assert [k for k in TEXTS.keys(lang) if k.startswith("analytics.")] == [
            k for k in KEYS if k.startswith("analytics.")
        ]


def test_campaign_list_is_cut_after_eight() -> None:
    text = TEXTS.render("analytics.campaigns", "fr", campaigns=[CAMPAIGN] * 9)
    assert text.count("VAN-NANTES (van) : 12 + 30 = 42") == 8 and "… et 1 autre " in text


def test_comparison_skips_empty_rows_and_indents_campaigns() -> None:
    text = TEXTS.render("analytics.comparison", "en", **SAMPLES)
    lines = text.splitlines()
    assert len(lines) == 3
    assert lines[1].strip() == "• Par un pair: 40 · 30\u00a0% · 1,80 · 20\u00a0% · 0,40"
    assert lines[2].strip().startswith("↳ VAN-NANTES: 40")


@pytest.mark.parametrize(
    ("n", "fr", "en"),
    [(1, "1 autre personne", "1 more person"), (4, "4 autres personnes", "4 more people")],
)
def test_tree_note_agrees_in_number(n: int, fr: str, en: str) -> None:
    assert fr in TEXTS.render("analytics.chart_tree_more", "fr", n=n)
    assert en in TEXTS.render("analytics.chart_tree_more", "en", n=n)


def test_campaign_created_without_a_link_still_gives_the_code() -> None:
    text = TEXTS.render("staff.campaign_created", "fr", code="VAN", link=None, public=False)
    assert "Lien" not in text and "/code VAN" in text
