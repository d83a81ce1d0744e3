"""Fixtures of the Discord tests (defined in ``discord_support``)."""

from __future__ import annotations

from discord_support import app, bot, recorder, settings, users

__all__ = ["app", "bot", "recorder", "settings", "users"]
