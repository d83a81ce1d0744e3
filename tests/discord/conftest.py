"""Fixtures of the Discord tests (defined in ``discord_support`` and ``fake_discord``)."""

from __future__ import annotations

from discord_support import app, bot, recorder, settings, users
from fake_discord import fake_discord, live, live_bot_settings, live_tick

__all__ = [
    "app",
    "bot",
    "fake_discord",
    "live",
    "live_bot_settings",
    "live_tick",
    "recorder",
    "settings",
    "users",
]
