"""Builders shared by the SMS tests: settings, a movable clock, recording adapters, a service."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.bootstrap import NotifierDelivery
from bot.conversation import Conversation
from bot.delivery import DeliveryRouter
from bot.faq import FaqEngine
from bot.ports import Person, Reply
from bot.settings import Settings, load_settings
from bot.sms.service import SmsService
from bot.texts import MESSAGES_DIR, Texts
from bot.web import create_app
from referrals.service import ReferralService, insert_participant
from referrals.sms_inbound import seen_message
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
        clock=clock or Clock(),
    )
    await service.start()
    if faq is not None:
        _FAQS[id(service)] = faq
    return service


_FAQS: dict[int, Any] = {}
_CONVERSATIONS: dict[int, Conversation] = {}


def conversation_for(sms: SmsService) -> Conversation:
    """The brain over this SMS service (the FAQ given to ``make_service``, else the real one)."""
    conv = _CONVERSATIONS.get(id(sms))
    if conv is None or conv.sms is not sms:
        faq = _FAQS.get(id(sms)) or _real_faq()
        conv = Conversation(
            settings=sms.settings,
            texts=sms.texts,
            referrals=ReferralService(sms.db),
            faq=faq,
            sms=sms,
            notifier=sms.notifier,
        )
        _CONVERSATIONS[id(sms)] = conv
    return conv


_ENGINE: list[FaqEngine] = []


def _real_faq() -> FaqEngine:
    if not _ENGINE:
        _ENGINE.append(FaqEngine.load(MESSAGES_DIR))
    return _ENGINE[0]


async def inbound(
    sms: SmsService, person: Person, text: str, message_sid: str | None = None
) -> list[Reply]:
    """An inbound SMS as the webhook hands it to the brain (a repeated MessageSid: nothing)."""
    if message_sid and await sms.db.write(seen_message, message_sid, now_iso()):
        return []
    return await conversation_for(sms).text(person, text)


def web_app_for(sms: SmsService, **extra: Any) -> web.Application:
    """The real aiohttp app over this SMS service and its brain."""
    router = DeliveryRouter(sms.db)
    router.attach("channel", NotifierDelivery(sms.notifier))
    return create_app(
        settings=sms.settings,
        texts=sms.texts,
        db=sms.db,
        sms=sms,
        conversation=conversation_for(sms),
        router=router,
        **extra,
    )


async def open_db(path: Path) -> Database:
    """A real SQLite file."""
    return await Database.open(path)
