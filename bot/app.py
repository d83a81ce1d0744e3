"""Kept for existing imports: the services are built by ``bot.bootstrap`` (the composition root)."""

from __future__ import annotations

from bot.bootstrap import App, build_app

__all__ = ["App", "build_app"]
