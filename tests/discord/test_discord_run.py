"""``relais run`` wiring without Discord: graceful stop, a refused token in plain words."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import discord
import pytest

from bot.bootstrap import run_bot
from bot.cli import CliError, Context
from bot.discord_app import RelaisBot
from bot.settings import Settings, parse_quiet_hours


def context(tmp_path: Path) -> Context:
    settings = Settings(discord_token="x", sms_quiet_hours=parse_quiet_hours(""), secret="s")
    args = argparse.Namespace(db=str(tmp_path / "relais.db"), host="127.0.0.1", port=0)
    return Context(settings, args)


async def test_run_stops_gracefully_when_the_gateway_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = asyncio.Event()

    async def start(self: RelaisBot, token: str) -> None:
        started.set()  # a gateway that ends at once (as after SIGTERM + close)

    monkeypatch.setattr(RelaisBot, "start", start)
    assert await run_bot(context(tmp_path)) == 0
    assert started.is_set()


async def test_run_with_a_refused_token_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def start(self: RelaisBot, token: str) -> None:
        raise discord.LoginFailure("Improper token has been passed.")

    monkeypatch.setattr(RelaisBot, "start", start)
    ctx = context(tmp_path)
    with pytest.raises(CliError) as refused:
        await run_bot(ctx)
    assert refused.value.message == ctx.t("discord.bad_token")


def test_check_says_what_is_missing_in_plain_words(tmp_path: Path) -> None:
    from bot.discord_app import check_lines

    ctx = context(tmp_path)
    lines = check_lines(
        ctx,
        [
            (True, "token", {"name": "Relais#0001"}),
            (False, "members_intent_missing", {}),
            (False, "permission_missing", {"name": ctx.t("discord.perm.manage_guild")}),
            (False, "staff_role_missing", {"name": "Staff"}),
            (False, "staff_channel_missing", {"name": "staff"}),
        ],
    )
    assert lines[0] == ctx.t("discord.check.title")
    assert lines[1].startswith("✅") and all(line.startswith("❌") for line in lines[2:6])
    assert "Server Members" in lines[2] and "Staff" in lines[4]
    assert lines[-1] == ctx.t("discord.check.problems", count=4)
