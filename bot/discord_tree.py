"""The command tree: one place that turns every command error into an answer."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bot.logging import get_logger
from referrals.errors import RelaisError

log = get_logger(__name__)


def error_message(error: BaseException) -> tuple[str, dict[str, Any], bool]:
    """The message key and parameters for an error, and whether it is unexpected (to log)."""
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(original, RelaisError):
        return original.key, dict(original.params), False
    if isinstance(original, app_commands.NoPrivateMessage):
        return "discord.guild_only", {}, False
    if isinstance(original, app_commands.CommandOnCooldown):
        return "discord.cooldown", {"seconds": int(original.retry_after) + 1}, False
    if isinstance(original, app_commands.CheckFailure):
        return "staff.refused", {}, False
    if isinstance(original, app_commands.TransformerError):
        return "discord.bad_value", {"value": str(original.value)[:100]}, False
    return "bot.error", {}, True


async def answer(interaction: discord.Interaction, content: str) -> None:
    """Answer privately, whether or not the interaction was already acknowledged."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(content, ephemeral=True)
        else:
            await interaction.response.send_message(content, ephemeral=True)
    except discord.HTTPException as exc:
        # The interaction token may have expired (15 min): nothing more can be said to them.
        log.warning("error_answer_failed", error=type(exc).__name__)


class RelaisTree(app_commands.CommandTree):
    """Maps domain errors to their templated message; logs the others with their traceback."""

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Answer the person in their language; never leave 'This interaction failed'."""
        await handle_error(interaction, error)


async def handle_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Shared by the tree, the buttons and the modal."""
    key, params, unexpected = error_message(error)
    command = interaction.command.qualified_name if interaction.command else None
    if unexpected:
        original = getattr(error, "original", error)
        log.error(
            "interaction_failed",
            command=command,
            exc_info=(type(original), original, original.__traceback__),
        )
    else:
        log.info("interaction_refused", command=command, key=key)
    texts = _texts(interaction)
    lang = texts.lang_of(str(interaction.locale)) if interaction.locale else texts.default_lang
    programme = getattr(getattr(interaction.client, "settings", None), "programme_name", "Relais")
    try:
        content = texts.render(key, lang, programme=programme, **params)
    except Exception:
        log.exception("error_template_failed", key=key)
        content = texts.render("bot.error", lang, programme=programme)
    await answer(interaction, content)


def _texts(interaction: discord.Interaction) -> Any:
    app = getattr(interaction.client, "app", None)
    if app is not None:
        return app.texts
    from bot.translator import catalog

    return catalog()
