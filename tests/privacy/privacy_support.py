"""A console session in memory for the privacy tests, and helpers on the database files."""

from __future__ import annotations

import io
import os
import sys
from dataclasses import replace
from pathlib import Path

from bot.app import App, build_app
from bot.console import ConsoleOutput, _handle
from bot.settings import Settings, parse_quiet_hours

ROOT = Path(__file__).resolve().parents[2]


class Session:
    """``await session.say(line)`` returns what the bot printed for that console line."""

    def __init__(self, app: App, output: ConsoleOutput, buffer: io.StringIO, path: Path) -> None:
        self.app = app
        self.output = output
        self.buffer = buffer
        self.path = path

    @classmethod
    async def open(cls, tmp_path: Path, **overrides: object) -> Session:
        """A fresh database; quiet hours off, a fixed secret, settings overridable."""
        settings = replace(
            Settings(), sms_quiet_hours=parse_quiet_hours(""), secret="test-secret", **overrides
        )
        buffer = io.StringIO()
        output = ConsoleOutput(buffer, tmp_path / "files", settings.discord_staff_channel)
        path = tmp_path / "privacy.db"
        app = await build_app(settings, path, transport=output, notifier=output, invites=output)
        return cls(app, output, buffer, path)

    async def say(self, line: str) -> str:
        """One console line; everything printed for it (SMS and staff posts included)."""
        start = self.buffer.tell()
        for reply in await _handle(self.app.conversation, self.output, line, self.app.settings):
            self.output.print_reply(reply)
        await self.app.sms.dispatch_due()
        self.buffer.seek(start)
        printed = self.buffer.read()
        self.buffer.seek(0, io.SEEK_END)
        return printed

    async def close(self) -> None:
        """Close (checkpoint) the database."""
        await self.app.close()


def file_bytes(db_path: Path) -> bytes:
    """The bytes of the database and of its WAL and shared-memory files, as on disk."""
    data = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = Path(str(db_path) + suffix)
        if candidate.exists():
            data += candidate.read_bytes()
    return data


def console_env(tmp_path: Path) -> dict[str, str]:
    """An environment for a ``relais console`` subprocess: clean of real settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TWILIO_", "SMS_", "DISCORD_", "RELAIS_", "PUBLIC_", "BACKUP_"))
    }
    env.update(
        {"RELAIS_SECRET": "s", "SMS_QUIET_HOURS": "", "PYTHONPATH": str(ROOT), "PYTHONUTF8": "1"}
    )
    return env


def console_command(db_path: Path) -> list[str]:
    """The ``relais console`` command line."""
    return [sys.executable, "-m", "bot.cli", "console", "--db", str(db_path)]
