"""Slash command names and descriptions from ``messages/<lang>/discord.yaml``.

French names are the defaults (what ``relais discord sync`` publishes); Discord clients set to
English see the English names and descriptions through this ``app_commands.Translator``.
Every command and option string is a ``locale_str`` whose ``key`` extra names its message.
"""

from __future__ import annotations

from functools import lru_cache

import discord
from discord import app_commands

from bot.texts import Texts

# Discord locales -> our languages (French is also the default, shown to everyone else).
LOCALES: dict[discord.Locale, str] = {
    discord.Locale.french: "fr",
    discord.Locale.american_english: "en",
    discord.Locale.british_english: "en",
}
PREFIX = "discord."


@lru_cache(maxsize=1)
def catalog() -> Texts:
    """The message catalog, loaded once."""
    return Texts()


def text(key: str, lang: str = "fr") -> str:
    """The raw (unrendered) text of ``discord.<key>`` in ``lang``."""
    return catalog().catalogs[lang][PREFIX + key]


def has(key: str, lang: str) -> bool:
    """True when ``discord.<key>`` exists in ``lang``."""
    return PREFIX + key in catalog().catalogs[lang]


def loc(key: str) -> app_commands.locale_str:
    """A translatable string: its French text, and the key the translator looks up."""
    return app_commands.locale_str(text(key, "fr"), key=key)


def command_key(command: str) -> str:
    """Message key prefix of a command's name and description."""
    return f"command.{command}"


def option_key(command: str, option: str) -> str:
    """Message key prefix of an option's name and description."""
    return f"option.{command}.{option}"


class RelaisTranslator(app_commands.Translator):
    """Looks up the ``key`` of a ``locale_str`` in the catalog of the client's language."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        """The text in ``locale``'s language, or None (Discord then shows the French default)."""
        return self.lookup(string, locale)

    @staticmethod
    def lookup(string: app_commands.locale_str, locale: discord.Locale) -> str | None:
        """Synchronous lookup (also used by the tests)."""
        key = string.extras.get("key")
        lang = LOCALES.get(locale)
        if not key or lang is None or not has(key, lang):
            return None
        return text(key, lang)
