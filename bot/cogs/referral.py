"""Referral: ``/parrainage`` (code and personal link) and ``/code`` (who brought me)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.cogs.base import RelaisCog, slash

if TYPE_CHECKING:
    from bot.discord_app import RelaisBot


class ReferralCog(RelaisCog):
    """Personal code and link, redeeming a code."""

    @slash("parrainage")
    async def parrainage(self, interaction: discord.Interaction) -> None:
        """Code and link (creates the member's Discord invite on first use)."""
        await self.run(interaction, "parrainage")

    @slash("code")
    async def code(
        self, interaction: discord.Interaction, code: app_commands.Range[str, 1, 40]
    ) -> None:
        """Record who (or which outreach action) brought this member."""
        await self.run(interaction, "code", {"code": code})


async def setup(bot: RelaisBot) -> None:
    """Extension entry point."""
    await bot.add_cog(ReferralCog(bot))
