"""/stats, /chaine, /campagne and /export through the conversation engine, as staff."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import zxingcpp
from analytics_support import GRAPH
from PIL import Image

from bot import poster
from bot.app import App, build_app
from bot.console import ConsoleOutput
from bot.ports import Person, Reply
from bot.settings import Settings, parse_quiet_hours
from referrals import csvio

MARIE = Person("discord", "marie", "marie", staff=True)


async def open_app(tmp_path: Path, **overrides: object) -> App:
    settings = replace(
        Settings(), sms_quiet_hours=parse_quiet_hours(""), tz="UTC", lang="fr", **overrides
    )
    output = ConsoleOutput(io.StringIO(), tmp_path, "staff")
    return await build_app(
        settings, tmp_path / "t.db", transport=output, notifier=output, invites=output
    )


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    app = await open_app(tmp_path, programme_name="Relais Nantes")
    await app.db.call(csvio.import_rows, GRAPH, "UTC")
    try:
        yield app
    finally:
        await app.close()


async def say(app: App, text: str, person: Person = MARIE) -> list[Reply]:
    return await app.conversation.text(person, text)


def png_size(data: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.size


async def test_stats_gives_the_figures_and_two_charts(app: App) -> None:
    report, comparison = await say(app, "/stats")
    text = report.text
    assert "👥 8 participants, dont 5 amenés par un pair (62\u00a0%)" in text
    assert "Facteur k" not in text and "amplification : 2,67" in text
    assert "Recrues en 30 jours : non mesurable" in text
    assert "Chaîne la plus longue : 2 vagues" in text
    assert "SMS : 0 envoyés → 0 reçus → 0 venus" in text
    assert "taux chez les parrainés : 40\u00a0%" in text  # B, F of B C D F H
    assert "VAN (import) : 1 + 3 = 4" in text and "TIKTOK (import) : 1 + 1 = 2" in text
    assert [a.filename.split("-")[1] for a in report.attachments] == [
        "timeline",
        "cohorts",
        "waves",
    ]
    assert all(png_size(a.data) == (800, 700) for a in report.attachments)
    assert "Par un pair : 4 · 25\u00a0% · 1,25 · 25\u00a0%" in comparison.text
    assert "↳ VAN : 1 · 100\u00a0% · 4 · 100\u00a0%" in comparison.text
    assert "Par SMS : 1" in comparison.text


async def test_stats_for_a_period_and_a_bad_date(app: App) -> None:
    report, _ = await say(app, "/stats 2026-01-19")
    assert "depuis le 2026-01-19" in report.text and "👥 4 participants" in report.text
    (refused,) = await say(app, "/stats demain")
    assert "Date illisible" in refused.text and not refused.attachments


async def test_stats_in_english(app: App) -> None:
    report, comparison = await say(app, "/stats", replace(MARIE, locale="en-GB"))
    assert "Charts attached" in report.text and "Channel comparison" in comparison.text
    assert "By a peer: 4" in comparison.text


async def test_stats_is_for_staff_only(app: App) -> None:
    (reply,) = await say(app, "/stats", Person("discord", "zoe", "zoe"))
    assert "réservée à l'équipe" in reply.text and not reply.attachments


async def test_chaine_draws_a_subtree_of_more_than_three(app: App) -> None:
    (reply,) = await say(app, "/chaine A")
    assert "Venu par la campagne VAN" in reply.text
    assert (
        "4 personnes dans sa chaîne (A inclus·e), dont 3 amenées directement ou non" in reply.text
    )
    assert "Dessin de la chaîne joint (4 personnes)" in reply.text
    (drawing,) = reply.attachments
    assert drawing.filename == "relais-chain-A.png" and png_size(drawing.data) == (800, 700)
    (small,) = await say(app, "/chaine B")
    assert "Amené par : A ← campagne VAN" in small.text and not small.attachments


async def test_campagne_with_a_public_server(tmp_path: Path) -> None:
    app = await open_app(tmp_path, public_base_url="https://relais.example.org")
    try:
        (reply,) = await say(app, "/campagne van-nantes van")
    finally:
        await app.close()
    link = "https://relais.example.org/r/VAN-NANTES"
    assert "code **VAN-NANTES**" in reply.text and f"Lien : {link}" in reply.text
    assert "/code VAN-NANTES" in reply.text
    (pdf,) = reply.attachments
    assert pdf.filename == "relais-poster-VAN-NANTES.pdf" and pdf.data.startswith(b"%PDF-")
    # The attached page and this PNG are drawn by the same figure code.
    text = poster.PosterText("Relais", "x", "Code de la campagne", "/code VAN-NANTES")
    image = Image.open(io.BytesIO(poster.poster_png(text, "VAN-NANTES", link)))
    assert [r.text for r in zxingcpp.read_barcodes(image.convert("L"))] == [link]


async def test_campagne_without_public_server_makes_a_campaign_invite(tmp_path: Path) -> None:
    app = await open_app(tmp_path)
    try:
        (reply,) = await say(app, "/campagne TOURNOI-FIFA tournoi")
        link = next(word for word in reply.text.split() if word.startswith("https://discord.gg/"))
        assert "invitation Discord réservée à la campagne" in reply.text
        assert "QR code" in reply.text and reply.attachments[0].data.startswith(b"%PDF-")
        # Whoever follows that link is counted for the campaign.
        (welcome, *_) = await app.conversation.joined(Person("discord", "lea", "lea"), link)
        assert "TOURNOI-FIFA" in welcome.text
        (row,) = [r for r in await app.db.read(_campaigns) if r["code"] == "TOURNOI-FIFA"]
        assert (row["direct"], row["total"], row["channel"]) == (1, 1, "tournoi")
        (again,) = await say(app, "/campagne tournoi-fifa")
        assert "existe déjà" in again.text and not again.attachments
    finally:
        await app.close()


def _campaigns(conn: object) -> list[dict[str, object]]:
    from referrals import analytics

    return analytics.campaigns(conn)  # type: ignore[arg-type]


async def test_export_two_excel_csvs_without_personal_data(app: App) -> None:
    alice = Person("discord", "4242", "Alice Martin")
    await say(app, "bonjour", alice)
    await say(app, "/code VAN", alice)
    (reply,) = await say(app, "/export")
    assert "Export de 9 participants" in reply.text and "journal des événements" in reply.text
    people, events = reply.attachments
    assert people.filename.startswith("relais-export-") and events.filename.startswith(
        "relais-events-"
    )
    for attachment in (people, events):
        assert attachment.data.startswith("\ufeff".encode())
        text = attachment.data.decode("utf-8-sig")
        assert "Alice" not in text and "4242" not in text
        assert text.splitlines()[0].count(";") >= 4
    rows = list(csv.DictReader(io.StringIO(people.data.decode("utf-8-sig")), delimiter=";"))
    assert list(rows[0]) == list(csvio.COLUMNS)
    alice_ref = rows[-1]["participant"]
    assert alice_ref.startswith("p-") and rows[-1]["channel"] == "campaign:VAN"
    log = list(csv.DictReader(io.StringIO(events.data.decode("utf-8-sig")), delimiter=";"))
    assert list(log[0]) == ["at", "kind", "participant", "other", "data"]
    kinds = [(e["kind"], e["participant"]) for e in log]
    assert ("source_set", alice_ref) in kinds and ("joined", alice_ref) in kinds
    assert ("imported", "") in kinds
    safe = {"channel", "campaign", "via", "invitation", "outbound", "count"}
    assert all(set(json.loads(e["data"])) <= safe for e in log if e["data"])
    # The CSV of participants is the SPEC §5 format: it imports back.
    again = app.db.path.parent / "again"
    again.mkdir()
    fresh = await open_app(again)
    try:
        count = await fresh.db.call(csvio.import_rows, csvio.decode(people.data), "UTC")
        assert count == 9
    finally:
        await fresh.close()


async def test_event_data_keeps_only_safe_keys(app: App) -> None:
    from referrals import eventlog
    from referrals.service import log_event

    await app.db.write(lambda conn: log_event(conn, "custom", None, phone="+33612345678", via="x"))
    out = io.StringIO()
    await app.db.read(lambda conn: eventlog.export_events(conn, out))
    assert "+33612345678" not in out.getvalue()
    assert '"{""via"": ""x""}"' in out.getvalue()
