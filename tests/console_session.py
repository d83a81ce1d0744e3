"""Drive whole stories through the conversation engine, exactly as the console does.

Shared by every test folder (``tests/`` is on ``sys.path`` through its conftest).
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

from bot.app import App, build_app
from bot.console import ConsoleOutput, _handle
from bot.settings import Settings, parse_quiet_hours


class Story:
    """A console session in memory: ``await story.say(line)`` returns what the bot printed."""

    def __init__(self, app: App, output: ConsoleOutput, buffer: io.StringIO, path: Path) -> None:
        self.app = app
        self.output = output
        self.buffer = buffer
        self.path = path

    @classmethod
    async def open(cls, tmp_path: Path, name: str = "story.db", **overrides: object) -> Story:
        """A fresh database and engine; settings overridable (quiet hours off by default)."""
        settings = replace(Settings(), sms_quiet_hours=parse_quiet_hours(""), **overrides)
        buffer = io.StringIO()
        output = ConsoleOutput(buffer, tmp_path / "files", settings.discord_staff_channel)
        path = tmp_path / name
        app = await build_app(settings, path, transport=output, notifier=output, invites=output)
        return cls(app, output, buffer, path)

    async def say(self, line: str) -> str:
        """One console line; returns every message printed for it (SMS included)."""
        start = self.buffer.tell()
        for reply in await _handle(self.app.conversation, self.output, line, self.app.settings):
            await self.output.print_reply(reply)
        await self.app.sms.dispatch_due()
        self.buffer.seek(start)
        printed = self.buffer.read()
        self.buffer.seek(0, io.SEEK_END)
        return printed

    async def close(self) -> None:
        """Close the database."""
        await self.app.close()
