"""Wiring: build every service once, from settings, for the CLI commands that need them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.conversation import Conversation
from bot.ports import InviteMaker, SmsTransport, StaffNotifier
from bot.settings import Settings
from bot.texts import Texts, resolve_messages_dir
from referrals.service import ReferralService
from referrals.store import Database

if TYPE_CHECKING:  # imported when building, not at import time (start-up cost)
    from bot.faq import FaqEngine
    from bot.sms.service import SmsService


@dataclass
class App:
    """The services of one running Relais."""

    settings: Settings
    db: Database
    texts: Texts
    referrals: ReferralService
    faq: FaqEngine
    sms: SmsService
    conversation: Conversation

    async def close(self) -> None:
        """Close the database (checkpointing the WAL)."""
        await self.db.close()


async def build_app(
    settings: Settings,
    db_path: Path,
    *,
    transport: SmsTransport,
    notifier: StaffNotifier,
    invites: InviteMaker | None = None,
    messages_dir: Path | None = None,
) -> App:
    """Open the database and build the services around it (``messages_dir``: default, the
    shipped messages overlaid by ``RELAIS_MESSAGES_DIR``)."""
    from bot.faq import FaqEngine
    from bot.sms.service import SmsService

    if messages_dir is None:
        messages_dir = await asyncio.to_thread(resolve_messages_dir, settings.messages_dir)
    texts = Texts(messages_dir, default_lang=settings.lang)
    db = await Database.open(db_path)
    try:
        faq = FaqEngine.load(messages_dir, lang=settings.lang)
        referrals = ReferralService(db)
        sms = SmsService(db, settings, texts, transport, notifier, faq=faq)
        await sms.start()
    except BaseException:
        await db.close()
        raise
    conversation = Conversation(
        settings=settings,
        texts=texts,
        referrals=referrals,
        faq=faq,
        sms=sms,
        notifier=notifier,
        invites=invites,
    )
    return App(settings, db, texts, referrals, faq, sms, conversation)
