"""Discord's message format: a message holds at most 2,000 characters (the Discord adapter splits
longer replies; the brain returns whole texts)."""

from __future__ import annotations

DISCORD_MESSAGE_LIMIT = 2000


def split_message(text: str, limit: int) -> list[str]:
    """Split a long message at line breaks (then spaces) into parts of at most ``limit``."""
    parts: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        if cut <= 0:
            cut = text.rfind(" ", 0, limit)
        if cut <= 0:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip("\n ")
    if text:
        parts.append(text)
    return parts
