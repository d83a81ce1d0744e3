"""Invitations: ``/inviter`` (an SMS to a relative, with their consent, through a modal when no
number is given) and the members' joins through personal Discord invites.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.base import NO_PINGS, RelaisCog, deliver, display_name, person_of, slash
from bot.discord_tree import handle_error
from bot.logging import get_logger

if TYPE_CHECKING:
    from bot.discord_app import RelaisBot

log = get_logger(__name__)


MODAL_PREFIX = "relais_invite:"
MODAL_LIFETIME = 3600.0  # seconds an open /inviter form stays answerable


class InviteModal(discord.ui.Modal):
    """Number, first name, and the consent statement with a box the member must tick; every
    input inside a ``ui.Label`` (discord.py 2.7 modals)."""

    def __init__(
        self, cog: InvitesCog, lang: str, number: str | None = None, sender: str | None = None
    ) -> None:
        texts = cog.bot.services.texts
        super().__init__(
            title=texts.render("discord.invite_modal.title", lang)[:45],
            timeout=MODAL_LIFETIME,
            custom_id=f"{MODAL_PREFIX}{uuid.uuid4().hex}",
        )
        self.cog = cog
        self.number: discord.ui.TextInput[InviteModal] = discord.ui.TextInput(
            placeholder=texts.render("discord.invite_modal.number_placeholder", lang)[:100],
            default=number,
            min_length=6,
            max_length=30,
        )
        self.first_name: discord.ui.TextInput[InviteModal] = discord.ui.TextInput(
            placeholder=texts.render("discord.invite_modal.first_name_placeholder", lang)[:100],
            required=False,
            max_length=40,
        )
        # The member's own first name as the SMS will show it (issue 17): prefilled from the
        # display name when it can travel by SMS as it is.
        self.sender: discord.ui.TextInput[InviteModal] = discord.ui.TextInput(
            placeholder=texts.render("discord.invite_modal.sender_placeholder", lang)[:100],
            default=sender,
            required=False,
            max_length=40,
        )
        self.consent: discord.ui.Checkbox[InviteModal] = discord.ui.Checkbox()
        programme = cog.bot.settings.programme_name
        self.add_item(
            discord.ui.Label(
                text=texts.render("discord.invite_modal.number", lang)[:45], component=self.number
            )
        )
        self.add_item(
            discord.ui.Label(
                text=texts.render("discord.invite_modal.first_name", lang)[:45],
                component=self.first_name,
            )
        )
        self.add_item(
            discord.ui.Label(
                text=texts.render("discord.invite_modal.sender", lang)[:45],
                component=self.sender,
            )
        )
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

    async def on_submit(self, interaction: discord.Interaction) -> None:
        """Ticked: the invitation leaves (the box was the confirmation); else ask with buttons."""
        await self.cog.invite(
            interaction,
            str(self.number.value),
            str(self.first_name.value or "") or None,
            consented=bool(self.consent.value),
            sender_name=str(self.sender.value or "") or None,
        )

    # Modal.on_error takes (interaction, error), but Modal derives from BaseView whose on_error
    # also takes the item: mypy checks against the latter.
    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:  # type: ignore[override]
        """Same answers as the command tree."""
        await handle_error(interaction, error)

    async def on_timeout(self) -> None:
        """Forget the form: a late submit is answered like one from before a restart."""
        self.cog.open_modals.discard(self.custom_id)


class InvitesCog(RelaisCog):
    """SMS invitations and Discord join attribution."""

    def __init__(self, bot: RelaisBot) -> None:
        super().__init__(bot)
        self.open_modals: set[str] = set()  # custom ids of the /inviter forms this run opened

    @slash("inviter")
    async def inviter(
        self,
        interaction: discord.Interaction,
        numero: app_commands.Range[str, 6, 30] | None = None,
        prenom: app_commands.Range[str, 1, 40] | None = None,
    ) -> None:
        """Without a number: the modal. With one: the confirmation buttons."""
        if numero is None:
            lang = self.bot.services.texts.lang_of(str(interaction.locale))
            sender = self.conversation.sms.sender_prefill(display_name(interaction.user))
            modal = InviteModal(self, lang, sender=sender)
            self.open_modals.add(modal.custom_id)
            await interaction.response.send_modal(modal)
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

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """A form opened before a restart (or long ago) has no handler any more: say to reopen
        it rather than let Discord show 'This interaction failed'."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        custom_id = str(data.get("custom_id", ""))
        if not custom_id.startswith(MODAL_PREFIX) or custom_id in self.open_modals:
            return
        texts = self.bot.services.texts
        lang = texts.lang_of(str(interaction.locale)) if interaction.locale else texts.default_lang
        try:
            await interaction.response.send_message(
                texts.render("discord.invite_modal.expired", lang),
                ephemeral=True,
                allowed_mentions=NO_PINGS,
            )
        except discord.HTTPException as exc:
            log.warning("expired_modal_answer_failed", error=type(exc).__name__)

    # ------------------------------------------------------------ join attribution

    @commands.Cog.listener()
    async def on_connect(self) -> None:
        """A new gateway session (not a resume): note when, for the missed joins."""
        self.bot.joins.connected()

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        """Reload the invite caches (counts may have moved while disconnected), then record the
        members who joined meanwhile."""
        for guild in self.bot.guilds:
            await self.bot.joins.load(guild)
            try:
                await self.bot.joins.catch_up(guild)
            except Exception:
                log.exception("missed_joins_failed")

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
