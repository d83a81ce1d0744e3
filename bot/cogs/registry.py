"""Slash commands for registry commands that have no dedicated cog method.

A teammate who adds ``@command("x", ...)`` in ``bot/commands/`` and its names in
``messages/*/discord.yaml`` gets a slash command without touching Discord code: every option is a
string, handled exactly like a console line.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.cogs.base import RelaisCog, slash
from bot.commands.registry import COMMANDS, Command

if TYPE_CHECKING:
    from bot.discord_app import RelaisBot


def build_command(cog: RelaisCog, spec: Command) -> app_commands.Command[Any, ..., Any]:
    """A slash command whose options are the registry options (required ones first)."""
    options = sorted(spec.options, key=lambda o: not o.required)

    async def callback(interaction: discord.Interaction, **values: str | None) -> None:
        await cog.run(interaction, spec.name, dict(values))

    params = [
        inspect.Parameter(
            "interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction
        )
    ]
    for option in options:
        params.append(
            inspect.Parameter(
                option.name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                annotation=app_commands.Range[str, 1, 1000]
                if option.required
                else app_commands.Range[str, 1, 1000] | None,
                default=inspect.Parameter.empty if option.required else None,
            )
        )
    # discord.py reads the options from the signature; functions have no typed __signature__.
    callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    callback.__name__ = callback.__qualname__ = spec.name
    command = slash(spec.name, staff=spec.staff)(callback)
    return command


class RegistryCog(RelaisCog):
    """Holds the generated commands so that they unload with the extension."""

    def __init__(self, bot: RelaisBot) -> None:
        super().__init__(bot)
        self.generated: list[app_commands.Command[Any, ..., Any]] = []

    async def cog_load(self) -> None:
        """Add a slash command for each registry command the other cogs do not cover."""
        for name, spec in COMMANDS.items():
            if self.bot.tree.get_command(name) is None:
                command = build_command(self, spec)
                self.bot.tree.add_command(command)
                self.generated.append(command)

    async def cog_unload(self) -> None:
        """Remove the generated commands."""
        for command in self.generated:
            self.bot.tree.remove_command(command.name)


async def setup(bot: RelaisBot) -> None:
    """Extension entry point."""
    await bot.add_cog(RegistryCog(bot))
