"""Invitations: ``/inviter`` (an SMS to a relative, with their consent, through a modal when no
number is given) and the members' joins through personal Discord invites.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.base import RelaisCog, deliver, person_of, slash
from bot.discord_tree import handle_error
from bot.logging import get_logger

if TYPE_CHECKING:
    from bot.discord_app import RelaisBot

log = get_logger(__name__)


class InviteModal(discord.ui.Modal):
    """Number, first name, and the consent statement with a box the member must tick."""

    def __init__(
        self, cog: InvitesCog, lang: str, number: str | None = None, sender: str | None = None
    ) -> None:
        texts = cog.bot.app.texts
        super().__init__(title=texts.render("discord.invite_modal.title", lang)[:45])
        self.cog = cog
        self.number: discord.ui.TextInput[InviteModal] = discord.ui.TextInput(
            label=texts.render("discord.invite_modal.number", lang)[:45],
            placeholder=texts.render("discord.invite_modal.number_placeholder", lang)[:100],
            default=number,
            min_length=6,
            max_length=30,
        )
        self.first_name: discord.ui.TextInput[InviteModal] = discord.ui.TextInput(
            label=texts.render("discord.invite_modal.first_name", lang)[:45],
            placeholder=texts.render("discord.invite_modal.first_name_placeholder", lang)[:100],
            required=False,
            max_length=40,
        )
        # The member's own first name as the SMS will show it (issue 17): prefilled from the
        # display name when it can travel by SMS as it is.
        self.sender: discord.ui.TextInput[InviteModal] = discord.ui.TextInput(
            label=texts.render("discord.invite_modal.sender", lang)[:45],
            placeholder=texts.render("discord.invite_modal.sender_placeholder", lang)[:100],
            default=sender,
            required=False,
            max_length=40,
        )
        self.consent: discord.ui.Checkbox[InviteModal] = discord.ui.Checkbox()
        programme = cog.bot.settings.programme_name
        self.add_item(self.number)
        self.add_item(self.first_name)
        self.add_item(self.sender)
        self.add_item(
            discord.ui.TextDisplay(
                texts.render("discord.invite_modal.statement", lang, programme=programme)
            )
        )
        self.add_item(
            discord.ui.Label(
                text=texts.render("discord.invite_modal.consent", lang)[:45],
                description=texts.render("discord.invite_modal.consent_description", lang)[:100],
                component=self.consent,
            )
        )

    async def on_submit(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        """Ticked: the invitation leaves (the box was the confirmation); else ask with buttons."""
        await self.cog.invite(
            interaction,
            str(self.number.value),
            str(self.first_name.value or "") or None,
            consented=bool(self.consent.value),
            sender_name=str(self.sender.value or "") or None,
        )

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:  # type: ignore[override]
        """Same answers as the command tree."""
        await handle_error(interaction, error)


class InvitesCog(RelaisCog):
    """SMS invitations and Discord join attribution."""

    @slash("inviter")
    async def inviter(
        self,
        interaction: discord.Interaction,
        numero: app_commands.Range[str, 6, 30] | None = None,
        prenom: app_commands.Range[str, 1, 40] | None = None,
    ) -> None:
        """Without a number: the modal. With one: the confirmation buttons."""
        if numero is None:
            lang = self.bot.app.texts.lang_of(str(interaction.locale))
            sender = self.conversation.sms.sender_prefill(
                getattr(interaction.user, "display_name", None)
            )
            await interaction.response.send_modal(InviteModal(self, lang, sender=sender))
            return
        await self.invite(interaction, numero, prenom, consented=False)

    async def invite(
        self,
        interaction: discord.Interaction,
        number: str,
        first_name: str | None,
        *,
        consented: bool,
        sender_name: str | None = None,
    ) -> None:
        """Prepare the invitation; send it at once when consent was ticked in the modal."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        person = person_of(interaction)
        args: dict[str, str] = {"numero": number}
        if first_name:
            args["prenom"] = first_name
        if sender_name:
            args["moi"] = sender_name
        replies = await self.conversation.command(person, "inviter", args)
        if consented:
            yes = next(
                (
                    b.id
                    for r in replies
                    for b in r.buttons
                    if b.id.startswith("confirm:") and b.id.endswith(":yes")
                ),
                None,
            )
            if yes is not None:
                replies = await self.conversation.choice(person, yes)
        await deliver(self.bot, person, replies, interaction=interaction)

    # ------------------------------------------------------------ join attribution

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        """Load the invite caches (also after a reconnect: counts may have moved meanwhile)."""
        for guild in self.bot.guilds:
            await self.bot.joins.load(guild)

    @commands.Cog.listener()
    async def on_invite_create(self, invite: discord.Invite) -> None:
        """Keep the cache current."""
        self.bot.joins.invite_created(invite)

    @commands.Cog.listener()
    async def on_invite_delete(self, invite: discord.Invite) -> None:
        """Keep the cache current."""
        self.bot.joins.invite_deleted(invite)

    @commands.Cog.listener()
    async def on_member_join(self, member: discord.Member) -> None:
        """Attribute the join and welcome the member."""
        try:
            await self.bot.joins.member_joined(member)
        except Exception:
            log.exception("member_join_failed")

    @commands.Cog.listener()
    async def on_member_remove(self, member: discord.Member) -> None:
        """Note that the member left; coming back later is a rejoin, not a new referral."""
        if not member.bot:
            await self.conversation.referrals.member_left(str(member.id))

    @commands.Cog.listener()
    async def on_member_ban(self, guild: discord.Guild, user: discord.User) -> None:
        """A member banned from the server cannot use the bot any more."""
        await self.conversation.referrals.set_banned(str(user.id), True)

    @commands.Cog.listener()
    async def on_member_unban(self, guild: discord.Guild, user: discord.User) -> None:
        """Lifting the ban on the server lifts it in the bot too."""
        await self.conversation.referrals.set_banned(str(user.id), False)


async def setup(bot: RelaisBot) -> None:
    """Extension entry point."""
    await bot.add_cog(InvitesCog(bot))
