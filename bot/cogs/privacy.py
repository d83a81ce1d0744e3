"""Personal data: ``/mesdonnees`` (what is kept, as a file) and ``/oublier`` (erase, confirmed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from bot.cogs.base import RelaisCog, slash

if TYPE_CHECKING:
    from bot.discord_app import RelaisBot


class PrivacyCog(RelaisCog):
    """A member's own data; always private answers."""

    @slash("mesdonnees")
    async def mesdonnees(self, interaction: discord.Interaction) -> None:
        """Everything kept about the member, with the JSON file."""
        await self.run(interaction, "mesdonnees")

    @slash("oublier")
    async def oublier(self, interaction: discord.Interaction) -> None:
        """Erase the member's data, after a confirmation button."""
        await self.run(interaction, "oublier")


async def setup(bot: RelaisBot) -> None:
    """Extension entry point."""
    await bot.add_cog(PrivacyCog(bot))
