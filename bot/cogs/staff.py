"""Staff commands: figures, chains, campaigns, enrolment, export, and publishing the commands.

Every one is guild-only, hidden from non-admins by ``default_permissions`` and checked at run
time against ``DISCORD_STAFF_ROLE`` (admins can change the hint, not the check).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.cogs.base import RelaisCog, person_of, slash

if TYPE_CHECKING:
    from bot.discord_app import RelaisBot

Day = app_commands.Range[str, 6, 10]
Member = app_commands.Range[str, 1, 100]


class StaffCog(RelaisCog):
    """Commands for the programme's team."""

    @slash("stats", staff=True)
    async def stats(
        self, interaction: discord.Interaction, depuis: Day | None = None, jusqua: Day | None = None
    ) -> None:
        """Word-of-mouth figures, optionally over a period."""
        await self.run(interaction, "stats", {"depuis": depuis, "jusqua": jusqua})

    @slash("rapport", staff=True)
    async def rapport(
        self, interaction: discord.Interaction, depuis: Day | None = None, jusqua: Day | None = None
    ) -> None:
        """The full HTML report, attached."""
        await self.run(interaction, "rapport", {"depuis": depuis, "jusqua": jusqua})

    @slash("chaine", staff=True)
    async def chaine(self, interaction: discord.Interaction, membre: Member) -> None:
        """A member's referral chain."""
        await self.run(interaction, "chaine", {"membre": membre})

    @slash("campagne", staff=True)
    async def campagne(
        self,
        interaction: discord.Interaction,
        nom: app_commands.Range[str, 3, 24],
        canal: app_commands.Range[str, 1, 40] | None = None,
    ) -> None:
        """Create a campaign code."""
        await self.run(interaction, "campagne", {"nom": nom, "canal": canal})

    @slash("inscrit", staff=True)
    async def inscrit(self, interaction: discord.Interaction, membre: Member) -> None:
        """Record that a member entered the programme."""
        await self.run(interaction, "inscrit", {"membre": membre})

    @slash("export", staff=True)
    async def export(self, interaction: discord.Interaction) -> None:
        """The referral records as a CSV file."""
        await self.run(interaction, "export")

    @slash("synchro", staff=True)
    async def synchro(self, interaction: discord.Interaction) -> None:
        """Publish the command tree (never done on start: Discord rate-limits syncs)."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        person = person_of(interaction)
        lang = self.bot.services.texts.lang_of(person.locale)
        synced = await self.bot.tree.sync()
        await interaction.followup.send(
            self.bot.services.texts.render("discord.synced", lang, count=len(synced), guild=None),
            ephemeral=True,
        )


async def setup(bot: RelaisBot) -> None:
    """Extension entry point."""
    await bot.add_cog(StaffCog(bot))
