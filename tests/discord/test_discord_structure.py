"""Every extension loaded into a bot that never logs in: names, localisations, staff guards."""

from __future__ import annotations

import re
from pathlib import Path
from unittest.mock import AsyncMock

import discord
import pytest
from discord import app_commands

from bot.cogs.base import RelaisButton, staff_check
from bot.commands.registry import COMMANDS
from bot.discord_app import EXTENSIONS, RelaisBot, intents
from bot.settings import Settings
from bot.translator import RelaisTranslator

NAME = re.compile(r"^[-_\w]{1,32}$")
LOCALES = ("fr", "en-US", "en-GB")
STAFF_ONLY = {"synchro"}  # Discord-only staff commands, not in the registry


@pytest.fixture
async def loaded() -> RelaisBot:
    bot = RelaisBot(Settings())
    assert bot.intents.members and bot.intents.invites and not bot.intents.message_content
    bot.tree.sync = AsyncMock()  # type: ignore[method-assign]
    await bot.setup_hook()
    return bot


async def test_every_extension_loads_and_nothing_syncs_on_start(loaded: RelaisBot) -> None:
    assert set(loaded.extensions) == set(EXTENSIONS)
    loaded.tree.sync.assert_not_awaited()  # type: ignore[attr-defined]


async def test_dev_guild_sync_only_when_asked() -> None:
    bot = RelaisBot(Settings(discord_guild_id=123), dev_sync=True)
    bot.tree.sync = AsyncMock(return_value=[])  # type: ignore[method-assign]
    await bot.setup_hook()
    bot.tree.sync.assert_awaited_once()  # type: ignore[attr-defined]
    assert bot.tree.sync.await_args.kwargs["guild"].id == 123  # type: ignore[attr-defined]


async def test_commands_cover_the_registry_with_unique_names(loaded: RelaisBot) -> None:
    commands = loaded.tree.get_commands()
    names = [c.name for c in commands]
    assert len(names) == len(set(names))
    assert set(COMMANDS) <= set(names)
    assert set(names) - set(COMMANDS) == STAFF_ONLY
    translator = RelaisTranslator()
    english = [
        translator.lookup(c._locale_name, discord.Locale.american_english)  # type: ignore[union-attr]
        for c in commands
        if isinstance(c, app_commands.Command)
    ]
    assert len(english) == len(set(english))


async def test_french_and_english_names_and_descriptions_everywhere(loaded: RelaisBot) -> None:
    translator = RelaisTranslator()
    for command in loaded.tree.get_commands():
        assert isinstance(command, app_commands.Command)
        payload = await command.get_translated_payload(loaded.tree, translator)
        assert NAME.match(payload["name"]) and payload["name"] == payload["name"].lower()
        for locale in LOCALES:
            name = payload["name_localizations"].get(locale)
            description = payload["description_localizations"].get(locale)
            assert name and NAME.match(name) and name == name.lower(), (command.name, locale)
            assert description and len(description) <= 100, (command.name, locale)
        assert payload["name_localizations"]["fr"] == command.name
        option_names = [option["name"] for option in payload["options"]]
        assert len(option_names) == len(set(option_names))
        for option in payload["options"]:
            for locale in LOCALES:
                name = option.get("name_localizations", {}).get(locale)
                description = option.get("description_localizations", {}).get(locale)
                assert name and NAME.match(name), (command.name, option["name"], locale)
                assert description and len(description) <= 100, (command.name, option["name"])
        spec = COMMANDS.get(command.name)
        if spec is not None:
            assert {o.name for o in spec.options} == set(option_names)


async def test_staff_commands_are_guarded_twice_and_guild_only(loaded: RelaisBot) -> None:
    for command in loaded.tree.get_commands():
        assert isinstance(command, app_commands.Command)
        spec = COMMANDS.get(command.name)
        staff = spec.staff if spec is not None else command.name in STAFF_ONLY
        if staff:
            assert command.guild_only, command.name
            assert command.default_permissions is not None
            assert command.default_permissions.manage_guild, command.name
            assert staff_check in command.checks, command.name
        else:
            assert not command.guild_only and command.default_permissions is None
            assert staff_check not in command.checks


@pytest.mark.parametrize(
    "custom_id",
    [
        "confirm:12:yes",
        "confirm:12:no",
        "faq:useful:cej",
        "faq:show:sans-diplome",
        "handoff:open",
        "handoff:take:3",
    ],
)
def test_every_engine_button_id_is_a_persistent_custom_id(custom_id: str) -> None:
    assert re.fullmatch(RelaisButton.__discord_ui_compiled_template__, custom_id)
    assert RelaisButton(custom_id, "x").item.custom_id == custom_id


def test_intents_need_no_message_content() -> None:
    wanted = intents()
    assert wanted.members and wanted.dm_messages and not wanted.message_content
    # Bans reach the bot only with the moderation intent (not privileged).
    assert wanted.moderation


async def test_a_server_ban_bans_from_the_bot(tmp_path: Path) -> None:
    import io
    from unittest.mock import MagicMock

    from bot.app import build_app
    from bot.console import ConsoleOutput
    from bot.ports import Person
    from bot.settings import Settings

    output = ConsoleOutput(io.StringIO(), tmp_path, "staff")
    app = await build_app(
        Settings(), tmp_path / "b.db", transport=output, notifier=output, invites=output
    )
    try:
        bot = RelaisBot(Settings(), app)
        await bot.load_extension("bot.cogs.invites")
        cog = bot.get_cog("InvitesCog")
        assert cog is not None
        person = Person("discord", "4242", "kim")
        await app.conversation.command(person, "parrainage", {})
        user = MagicMock(spec=discord.User)
        user.id = 4242
        await cog.on_member_ban(MagicMock(spec=discord.Guild), user)
        refused = await app.conversation.command(person, "parrainage", {})
        assert refused[0].text == app.texts.render("limits.banned", "fr")
        await cog.on_member_unban(MagicMock(spec=discord.Guild), user)
        again = await app.conversation.command(person, "parrainage", {})
        assert "Ton code" in again[0].text
    finally:
        await app.close()
