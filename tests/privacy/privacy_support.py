"""A console session in memory for the privacy tests, and helpers on the database files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from console_session import Story

ROOT = Path(__file__).resolve().parents[2]


class Session(Story):
    """A console session for the privacy tests: a fixed secret, its own database file name."""

    @classmethod
    async def open(cls, tmp_path: Path, name: str = "privacy.db", **overrides: object) -> Session:
        """A fresh database; quiet hours off, a fixed secret, settings overridable."""
        overrides.setdefault("secret", "test-secret")
        story = await Story.open(tmp_path, name, **overrides)
        return cls(story.app, story.output, story.buffer, story.path)


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
