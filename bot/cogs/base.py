"""What every cog shares: the interaction -> Person mapping, the staff check, the command
decorator that takes names and descriptions from ``messages/``, reply delivery, and the
persistent buttons.
"""

from __future__ import annotations

import inspect
import io
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_text import DISCORD_MESSAGE_LIMIT as DISCORD_LIMIT
from bot.discord_text import split_message
from bot.discord_tree import handle_error
from bot.logging import get_logger
from bot.ports import Button, Person, Reply, Target
from bot.translator import command_key, loc, option_key

if TYPE_CHECKING:
    from bot.conversation import Conversation
    from bot.discord_app import RelaisBot

log = get_logger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

STYLES = {
    "primary": discord.ButtonStyle.primary,
    "secondary": discord.ButtonStyle.secondary,
    "success": discord.ButtonStyle.success,
    "danger": discord.ButtonStyle.danger,
}


# ---------------------------------------------------------------- who is speaking


MENTION = re.compile(r"<(@[!&]?|#)(\d+)>")
MASS_MENTION = re.compile(r"@(everyone|here)\b", re.IGNORECASE)


def display_name(user: discord.abc.User) -> str:
    """A member's name, safe to echo: ``<@id>``, ``<@&id>``, ``<#id>`` lose their brackets and
    ``@everyone``/``@here`` their ``@``, so a name never renders as a mention (nor pings)."""
    name = MENTION.sub(r"\1\2", user.display_name)
    return MASS_MENTION.sub(r"\1", name)


# Replies never ping: no message echoes user text with pings on (names may hold mentions).
NO_PINGS = discord.AllowedMentions.none()


def has_staff_role(user: discord.abc.User | None, role: str) -> bool:
    """True when the member holds the staff role (``DISCORD_STAFF_ROLE``: a name or an id)."""
    wanted = role.strip()
    for item in getattr(user, "roles", None) or ():
        if str(item.id) == wanted or item.name.casefold() == wanted.casefold():
            return True
    return False


def staff_member(bot: RelaisBot, user: discord.abc.User) -> bool:
    """Staff role check for a user anywhere (in a DM: their member record in the server)."""
    role = bot.settings.discord_staff_role
    if has_staff_role(user, role):
        return True
    if isinstance(user, discord.Member):
        return False
    guilds = [bot.get_guild(bot.settings.discord_guild_id)] if bot.settings.discord_guild_id else []
    for guild in [g for g in guilds if g is not None] or list(getattr(bot, "guilds", [])):
        member = guild.get_member(user.id)
        if member is not None and has_staff_role(member, role):
            return True
    return False


def person_of(interaction: discord.Interaction) -> Person:
    """The person behind an interaction: locale from the client, staff from the roles."""
    user = interaction.user
    # discord.py types interaction.client as Client; ours is always a RelaisBot.
    bot: RelaisBot = interaction.client  # type: ignore[assignment]
    return Person(
        "discord",
        str(user.id),
        display_name(user),
        staff=staff_member(bot, user),
        locale=str(interaction.locale) if interaction.locale else None,
    )


async def staff_check(interaction: discord.Interaction) -> bool:
    """Run-time staff check: ``default_permissions`` is only a hint that admins can override."""
    # discord.py types interaction.client as Client; ours is always a RelaisBot.
    bot: RelaisBot = interaction.client  # type: ignore[assignment]
    if not has_staff_role(interaction.user, bot.settings.discord_staff_role):
        raise app_commands.CheckFailure("staff role required")
    return True


# ---------------------------------------------------------------- command declaration


def slash(name: str, *, staff: bool = False) -> Callable[[F], app_commands.Command[Any, ..., Any]]:
    """Declare a slash command whose names and descriptions come from ``discord.yaml``.

    ``name`` is the registry name (French); every parameter after the interaction is an option
    named like the registry option. Staff commands are guild-only, hidden behind
    ``default_permissions`` and checked at run time.
    """

    def decorate(func: F) -> app_commands.Command[Any, ..., Any]:
        params = inspect.signature(func).parameters
        options = [p for p in params if p not in {"self", "interaction"}]
        if options:
            func = app_commands.rename(**{o: loc(option_key(name, o) + ".name") for o in options})(
                func
            )
            func = app_commands.describe(
                **{o: loc(option_key(name, o) + ".description") for o in options}
            )(func)
        if staff:
            func = app_commands.guild_only()(func)
            func = app_commands.default_permissions(manage_guild=True)(func)
            func = app_commands.check(staff_check)(func)
        return app_commands.command(
            name=loc(command_key(name) + ".name"),
            description=loc(command_key(name) + ".description"),
        )(func)

    return decorate


# ---------------------------------------------------------------- buttons


class RelaisButton(discord.ui.DynamicItem[discord.ui.Button], template=r"(?P<id>[a-z_]+:\S*)"):
    """A conversation button: its custom id is the engine's Button id, so it survives restarts."""

    def __init__(
        self,
        button_id: str,
        label: str | None = None,
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
    ) -> None:
        super().__init__(
            discord.ui.Button(label=(label or "…")[:80], style=style, custom_id=button_id[:100])
        )
        self.button_id = button_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> RelaisButton:
        """Rebuild the button from a click on any message, even one sent before a restart."""
        label = getattr(item, "label", None)
        style = getattr(item, "style", discord.ButtonStyle.secondary)
        return cls(match["id"], label, style)

    async def callback(self, interaction: discord.Interaction) -> None:
        """Route the click to ``Conversation.choice``."""
        try:
            await press(interaction, self.button_id)
        except Exception as exc:
            await handle_error(interaction, exc)


async def press(interaction: discord.Interaction, button_id: str) -> None:
    """A button was clicked: remove the buttons (no double click), answer the choice privately."""
    # discord.py types interaction.client as Client; ours is always a RelaisBot.
    bot: RelaisBot = interaction.client  # type: ignore[assignment]
    person = person_of(interaction)
    staff_only = button_id.startswith("handoff:take:")
    if staff_only and not person.staff:
        # Keep the staff post's button for the team; just answer this person.
        await interaction.response.defer(ephemeral=True, thinking=True)
    else:
        await interaction.response.edit_message(view=None)
    replies = await bot.conversation.choice(person, button_id)
    await deliver(bot, person, replies, interaction=interaction)


def view_of(buttons: Sequence[Button]) -> discord.ui.View | None:
    """A persistent view holding the buttons (none: no view)."""
    if not buttons:
        return None
    view = discord.ui.View(timeout=None)
    for button in buttons[:25]:
        style = STYLES.get(button.style, discord.ButtonStyle.secondary)
        view.add_item(RelaisButton(button.id, button.label, style))
    return view


# ---------------------------------------------------------------- delivery


def message_parts(reply: Reply) -> list[dict[str, Any]]:
    """The messages of a reply: long text split, buttons and files on the last part."""
    texts = split_message(reply.text, DISCORD_LIMIT) or ["…"]
    parts: list[dict[str, Any]] = [
        {"content": text, "allowed_mentions": NO_PINGS} for text in texts
    ]
    view = view_of(reply.buttons)
    if view is not None:
        parts[-1]["view"] = view
    if reply.attachments:
        parts[-1]["files"] = [
            discord.File(io.BytesIO(a.data), filename=a.filename, description=a.description or None)
            for a in reply.attachments[:10]
        ]
    return parts


async def send_dm(bot: RelaisBot, user_id: str, reply: Reply) -> bool:
    """DM a Discord user; a closed DM is logged and skipped, never an error for the sender."""
    if not user_id.isdigit():
        log.warning("dm_bad_target")
        return False
    try:
        user = bot.get_user(int(user_id)) or await bot.fetch_user(int(user_id))
        for part in message_parts(reply):
            await user.send(**part)
    except discord.Forbidden:
        log.info("dm_closed", user_id=user_id)
        return False
    except discord.HTTPException as exc:
        log.warning("dm_failed", user_id=user_id, status=getattr(exc, "status", None))
        return False
    return True


async def deliver(
    bot: RelaisBot,
    person: Person,
    replies: Sequence[Reply],
    *,
    interaction: discord.Interaction | None = None,
    channel: discord.abc.Messageable | None = None,
) -> None:
    """Answer the person where they spoke (the interaction's follow-up, or the DM channel);
    every other reply (a DM to someone else, a staff post, anyone without an open interaction)
    goes through the one delivery router, which keeps in the outbox what cannot leave now."""
    me = Target.of(person)
    others: list[Reply] = []
    for reply in replies:
        if reply.to == me and interaction is not None:
            for part in message_parts(reply):
                await interaction.followup.send(ephemeral=reply.ephemeral, **part)
        elif reply.to == me and channel is not None:
            for part in message_parts(reply):
                await channel.send(**part)
        else:
            others.append(reply)
    if others:
        await bot.services.router.deliver(others)


# ---------------------------------------------------------------- the cog base


class RelaisCog(commands.Cog):
    """A cog over the conversation engine."""

    def __init__(self, bot: RelaisBot) -> None:
        self.bot = bot

    @property
    def conversation(self) -> Conversation:
        """The engine."""
        return self.bot.conversation

    async def run(
        self,
        interaction: discord.Interaction,
        name: str,
        args: dict[str, str | None] | None = None,
        *,
        ephemeral: bool = True,
    ) -> None:
        """Defer (before any database or Twilio work), call the command, deliver the replies."""
        await interaction.response.defer(ephemeral=ephemeral, thinking=True)
        person = person_of(interaction)
        clean = {k: v for k, v in (args or {}).items() if v is not None}
        replies = await self.conversation.command(person, name, clean)
        await deliver(self.bot, person, replies, interaction=interaction)
