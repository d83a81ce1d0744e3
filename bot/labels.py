"""People-facing names of channels and sources: the one labelling function every figure uses.

Stored channels are internal words (``discord_invite``, ``code``, ``campaign:RENTREE2026``...);
staff read them in their language from ``messages/<lang>/analytics.yaml`` (``channel_*`` keys).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

KNOWN_CHANNELS = ("discord_invite", "link", "code", "sms", "unknown")
CAMPAIGN_PREFIX = "campaign:"


def channel_name(channel: str | None, render: Callable[..., str]) -> str:
    """``channel`` in words, rendered with ``render(key, **params)``."""
    channel = channel or "unknown"
    if channel.startswith(CAMPAIGN_PREFIX):
        return render("analytics.channel_campaign", name=channel[len(CAMPAIGN_PREFIX) :].upper())
    if channel in KNOWN_CHANNELS:
        return render(f"analytics.channel_{channel}")
    return render("analytics.channel_other", name=channel)


def channel_names(channels: Iterable[str], render: Callable[..., str]) -> dict[str, str]:
    """Each channel's words, for a template."""
    return {channel: channel_name(channel, render) for channel in channels}


def source_names(render: Callable[..., str]) -> dict[str, str]:
    """The four sources (``referrals.analytics.SOURCES``) in words."""
    from referrals.analytics import SOURCES

    return {name: render(f"analytics.source_{name}") for name in SOURCES}
