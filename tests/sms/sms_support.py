"""Builders shared by the SMS tests: settings, a movable clock, recording adapters, a service."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.ports import Reply
from bot.settings import Settings, load_settings
from bot.sms.service import SmsService
from bot.texts import Texts
from referrals.service import insert_participant
from referrals.store import Database, now_iso

PARIS = ZoneInfo("Europe/Paris")
MOBILE = "+33612345678"
MOBILE_FORMS = ("+33612345678", "0612345678", "06 12 34 56 78", "612345678", "33612345678")
OTHER_MOBILE = "+33698765432"
LINK = "https://relais.mission-locale-nantes-metropole.fr/r/K7PM-4QXB"


def paris(*args: int) -> datetime:
    """An aware datetime in Paris time."""
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


# A Monday that is not a holiday, at noon.
MONDAY_NOON = paris(2026, 3, 9, 12, 0)


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime = MONDAY_NOON) -> None:
        self.now = now.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        """Jump to ``moment``."""
        self.now = moment.astimezone(UTC)

    def advance(self, **delta: float) -> None:
        """Move forward."""
        self.now += timedelta(**delta)


@dataclass
class RecordingTransport:
    """A transport that records what would leave and returns fake SIDs."""

    sent: list[tuple[str, str, str | None]] = field(default_factory=list)
    fail_with: list[Exception] = field(default_factory=list)

    async def send(self, to: str, body: str, *, status_callback: str | None = None) -> str:
        """Record (or raise the next scripted error)."""
        if self.fail_with:
            raise self.fail_with.pop(0)
        self.sent.append((to, body, status_callback))
        return f"SM{len(self.sent):032d}"


@dataclass
class RecordingNotifier:
    """Collects staff posts."""

    posts: list[Reply] = field(default_factory=list)

    async def notify_staff(self, reply: Reply) -> None:
        """Record the post."""
        self.posts.append(reply)


def make_settings(**env: str) -> Settings:
    """Settings from a clean environment (defaults of SPEC §2) plus ``env``."""
    base = {"RELAIS_SECRET": "test-secret"}
    base.update(env)
    return load_settings(base, dotenv=None)


async def add_member(db: Database, name: str = "Kevin", discord_id: str | None = None) -> int:
    """A youth member on the server."""

    def run(conn: Any) -> int:
        return insert_participant(
            conn, joined_at=now_iso(), display_name=name, discord_id=discord_id or name
        ).id

    return await db.write(run)


async def make_service(
    db: Database,
    *,
    clock: Clock | None = None,
    transport: Any = None,
    notifier: RecordingNotifier | None = None,
    faq: object | None = None,
    **env: str,
) -> SmsService:
    """A started SmsService over ``db``."""
    settings = make_settings(**env)
    service = SmsService(
        db,
        settings,
        Texts(default_lang=settings.lang),
        transport if transport is not None else RecordingTransport(),
        notifier if notifier is not None else RecordingNotifier(),
        faq=faq,
        clock=clock or Clock(),
    )
    await service.start()
    return service


async def open_db(path: Path) -> Database:
    """A real SQLite file."""
    return await Database.open(path)
