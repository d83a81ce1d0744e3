"""The report reaches staff in Discord: ``/rapport`` attaches it, and the optional weekly post
goes to the staff channel on Monday 09:00 local (a controllable clock, never the wall clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from analytics_support import GRAPH

from bot import weekly
from bot.app import App, build_app
from bot.ports import Person, Reply
from bot.settings import Settings, load_settings, parse_quiet_hours
from referrals import csvio
from referrals.errors import ConfigError

MARIE = Person("discord", "marie", "marie", staff=True)
YOUTH = Person("discord", "lea", "lea")


class Recorder:
    """A staff notifier that keeps what it is given (the network edge of the bot)."""

    def __init__(self) -> None:
        self.posts: list[Reply] = []

    async def notify_staff(self, reply: Reply) -> None:
        self.posts.append(reply)

    async def send(self, to: str, body: str, *, status_callback: str | None = None) -> str:
        raise AssertionError("no SMS here")

    async def create_invite(self, code: str) -> str:
        return "INVITE"


@pytest.fixture
async def app_and_posts(tmp_path: Path) -> AsyncIterator[tuple[App, Recorder]]:
    recorder = Recorder()
    settings = replace(
        Settings(),
        sms_quiet_hours=parse_quiet_hours(""),
        tz="Europe/Paris",
        lang="fr",
        weekly_report=True,
    )
    app = await build_app(
        settings, tmp_path / "t.db", transport=recorder, notifier=recorder, invites=recorder
    )
    await app.db.call(csvio.import_rows, GRAPH, "UTC")
    try:
        yield app, recorder
    finally:
        await app.close()


async def test_rapport_attaches_the_html_report(app_and_posts: tuple[App, Recorder]) -> None:
    app, _ = app_and_posts
    (reply,) = await app.conversation.text(MARIE, "/rapport")
    assert "bilan complet est joint" in reply.text
    (attachment,) = reply.attachments
    assert attachment.filename.endswith(".html")
    html = attachment.data.decode("utf-8")
    assert html.startswith("<!DOCTYPE html>") and "Période couverte : du 2026-01-05" in html
    assert "heure de Europe/Paris" in html


async def test_rapport_is_for_staff_only(app_and_posts: tuple[App, Recorder]) -> None:
    app, _ = app_and_posts
    replies = await app.conversation.text(YOUTH, "/rapport")
    assert all(not reply.attachments for reply in replies)


@pytest.mark.parametrize(
    ("now", "last", "due"),
    [
        (datetime(2026, 3, 9, 7, 59, tzinfo=UTC), None, False),  # Monday 08:59 in Paris
        (datetime(2026, 3, 9, 8, 0, tzinfo=UTC), None, True),  # Monday 09:00 in Paris
        (datetime(2026, 3, 9, 8, 0, tzinfo=UTC), "2026-W11", False),  # already posted
        (datetime(2026, 3, 11, 15, 0, tzinfo=UTC), "2026-W10", True),  # down on Monday
        (datetime(2026, 3, 8, 22, 0, tzinfo=UTC), "2026-W10", False),  # Sunday 23:00
        (datetime(2026, 3, 29, 22, 30, tzinfo=UTC), "2026-W13", False),  # Sunday, after DST
        (datetime(2026, 3, 30, 7, 0, tzinfo=UTC), "2026-W13", True),  # Monday 09:00 CEST
    ],
)
def test_weekly_is_due_on_monday_nine_local(now: datetime, last: str | None, due: bool) -> None:
    assert weekly.weekly_due(now, "Europe/Paris", last) is due


async def test_weekly_post_goes_once_to_the_staff_channel(
    app_and_posts: tuple[App, Recorder],
) -> None:
    app, recorder = app_and_posts
    sunday = datetime(2026, 1, 25, 12, 0, tzinfo=UTC)
    monday = datetime(2026, 1, 26, 8, 30, tzinfo=UTC)
    assert await weekly.post_weekly_if_due(app, sunday) is True  # never posted: this week's
    assert await weekly.post_weekly_if_due(app, sunday) is False
    assert await weekly.post_weekly_if_due(app, monday) is True
    assert await weekly.post_weekly_if_due(app, monday.replace(hour=9)) is False
    post = recorder.posts[-1]
    assert post.to.kind == "channel" and post.to.id == "staff" and not post.ephemeral
    assert "Bilan de la semaine" in post.text and "Depuis le début : 8 participants" in post.text
    (chart,) = post.attachments
    assert chart.data.startswith(b"\x89PNG")
    assert len(recorder.posts) == 2


async def test_weekly_post_is_off_by_default(tmp_path: Path) -> None:
    recorder = Recorder()
    app = await build_app(
        replace(Settings(), sms_quiet_hours=parse_quiet_hours("")),
        tmp_path / "off.db",
        transport=recorder,
        notifier=recorder,
        invites=recorder,
    )
    try:
        assert (
            await weekly.post_weekly_if_due(app, datetime(2026, 1, 26, 8, 30, tzinfo=UTC)) is False
        )
        assert recorder.posts == []
    finally:
        await app.close()


def test_weekly_setting() -> None:
    assert load_settings({}, dotenv=None).weekly_report is False
    assert load_settings({"RELAIS_WEEKLY_REPORT": "1"}, dotenv=None).weekly_report is True
    with pytest.raises(ConfigError):
        load_settings({"RELAIS_WEEKLY_REPORT": "lundi"}, dotenv=None)
