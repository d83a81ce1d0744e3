"""Questions: ``/question`` (also in server channels), ``/conseiller``, ``/aide``, and free text
in direct messages (no message-content intent needed: bots receive their DMs' content).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.base import RelaisCog, deliver, display_name, slash, staff_member
from bot.logging import get_logger
from bot.ports import Person

if TYPE_CHECKING:
    from bot.discord_app import RelaisBot

log = get_logger(__name__)


class FaqCog(RelaisCog):
    """Answers from the knowledge base, and the hand-off to a person."""

    @slash("question")
    async def question(
        self, interaction: discord.Interaction, texte: app_commands.Range[str, 1, 1000]
    ) -> None:
        """Answer a question (privately, even in a server channel: questions can be personal)."""
        await self.run(interaction, "question", {"texte": texte})

    @slash("conseiller")
    async def conseiller(
        self,
        interaction: discord.Interaction,
        message: app_commands.Range[str, 1, 1000] | None = None,
    ) -> None:
        """Ask for a person: a post in the staff channel, an acknowledgement."""
        await self.run(interaction, "conseiller", {"message": message})

    @slash("aide")
    async def aide(self, interaction: discord.Interaction) -> None:
        """What the bot can do."""
        await self.run(interaction, "aide")

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Free text in a DM: a question, a command line, or the answer to offered buttons."""
        if message.author.bot or message.guild is not None:
            return
        if not message.content:
            return  # an attachment or a sticker alone: nothing to answer
        author = message.author
        person = Person(
            "discord",
            str(author.id),
            display_name(author),
            staff=staff_member(self.bot, author),
        )
        try:
            async with message.channel.typing():
                replies = await self.conversation.text(person, message.content)
                await deliver(self.bot, person, replies, channel=message.channel)
        except Exception:
            log.exception("dm_failed")
            text = self.bot.services.texts.render("bot.error", self.bot.settings.lang)
            with contextlib.suppress(discord.HTTPException):
                await message.channel.send(text)


async def setup(bot: RelaisBot) -> None:
    """Extension entry point."""
    await bot.add_cog(FaqCog(bot))
