"""A console story with a controllable clock for the agenda (issue 22)."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from console_session import Story

from bot.ports import Reply

PARIS = ZoneInfo("Europe/Paris")


class Clock:
    """The agenda's time, moved by the test."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at

    def set(self, local: str) -> None:
        """Set the time to a local (Paris) 'YYYY-MM-DD HH:MM'."""
        self.at = datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=PARIS).astimezone(UTC)

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


class AgendaStory:
    """A console story whose agenda reads ``clock`` and prints its timed messages."""

    def __init__(self, story: Story, clock: Clock) -> None:
        self.story = story
        self.clock = clock
        self.agenda = story.app.conversation.agenda
        self.agenda.clock = clock
        self.agenda.deliver = self._deliver
        # One time for the whole engine: menus, the SMS queue (quiet hours where the recipient
        # lives, the budget's day).
        story.app.conversation.clock = clock
        story.app.sms.clock = clock

    @classmethod
    async def open(cls, tmp_path: Path, start: str, **overrides: object) -> AgendaStory:
        quiet = overrides.pop("sms_quiet_hours", None)
        story = await Story.open(tmp_path, tz="Europe/Paris", **overrides)
        if quiet is not None:  # Story turns quiet hours off; the agenda reads its engine's
            conversation = story.app.conversation
            conversation.settings = replace(conversation.settings, sms_quiet_hours=quiet)
            story.app.sms.settings = replace(story.app.sms.settings, sms_quiet_hours=quiet)
        clock = Clock(datetime.now(UTC))
        clock.set(start)
        return cls(story, clock)

    async def _deliver(self, replies: list[Reply]) -> None:
        for reply in replies:
            await self.story.output.print_reply(reply)

    async def say(self, line: str) -> str:
        return await self.story.say(line)

    async def tick(self) -> str:
        """One run of the maintenance step; what it sent, as printed."""
        buffer = self.story.buffer
        start = buffer.tell()
        await self.agenda.tick()
        await self.story.app.sms.dispatch_due()  # an SMS evaluation leaves when it may
        buffer.seek(start)
        printed = buffer.read()
        buffer.seek(0, io.SEEK_END)
        return printed

    async def count(self, sql: str) -> int:
        row = await self.story.app.db.fetchone(sql)
        assert row is not None
        return int(row[0])

    async def close(self) -> None:
        await self.story.close()
