"""The real RelaisBot through discord.py's gateway and HTTP client, against a local fake."""

from __future__ import annotations

from fake_discord import GENERAL_ID, FakeDiscord, LiveBot


async def test_the_bot_becomes_ready_and_answers_aide(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    assert fake_discord.identifies == 1
    assert live.bot.guild() is not None and live.bot.guild().id
    fake_discord.add_member(5001, "lea")
    exchange = await fake_discord.slash("aide", 5001)
    calls = await exchange.wait(2)
    assert calls[0].path.endswith("/callback")
    assert calls[0].json["type"] == 5 and calls[0].json["data"]["flags"] == 64
    assert "/aide" in exchange.text or exchange.text
    assert GENERAL_ID
