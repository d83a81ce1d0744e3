"""User-facing texts: jinja2 templates kept in ``messages/<lang>/<area>.yaml``.

A key ``area.name`` is the entry ``name`` of ``messages/<lang>/area.yaml``. Staff edit those files;
no user-facing text lives in Python code.

The messages ship inside the package (read with :mod:`importlib.resources`). A programme keeps its
own copies in the folder named by ``RELAIS_MESSAGES_DIR``: any file there replaces the shipped file
of the same relative path, every other file falls back to the shipped one
(:func:`resolve_messages_dir`).
"""

from __future__ import annotations

import atexit
import functools
import importlib.resources
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2.runtime import new_context

from referrals import codes

LANGS = ("fr", "en")
# The shipped messages, package data of ``bot`` (a real folder: pip installs packages unzipped).
MESSAGES_DIR = Path(str(importlib.resources.files("bot") / "messages"))


def overlay_files(folder: Path) -> list[Path]:
    """The relative paths of the files of a programme's messages folder (hidden ones skipped)."""
    return sorted(
        path.relative_to(folder)
        for path in folder.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


@functools.cache
def _overlaid(override: Path) -> Path:
    # Every reader of the messages (texts, FAQ, pages, report, doctor) takes one folder: the
    # shipped files overlaid by the programme's own are assembled once per process in a private
    # temporary folder (about 600 KB), removed at exit. A restart picks up edited files.
    merged = Path(tempfile.mkdtemp(prefix="relais-messages-"))
    atexit.register(shutil.rmtree, merged, ignore_errors=True)
    shutil.copytree(MESSAGES_DIR, merged, dirs_exist_ok=True)
    for relative in overlay_files(override):
        target = merged / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(override / relative, target)
    return merged


def resolve_messages_dir(override: Path | None) -> Path:
    """The messages folder to read: the shipped one, overlaid file by file by ``override``.

    Blocking (it may copy files): call it at start, or in a thread.
    """
    if override is None:
        return MESSAGES_DIR
    return _overlaid(override.resolve())


# libyaml's parser (ten times faster than the pure-Python one) when PyYAML was built with it.
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class MessageCatalogError(Exception):
    """A message file is missing, malformed, or lacks a key."""


def _load_catalog(directory: Path) -> dict[str, str]:
    entries: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER) or {}
        except yaml.YAMLError as exc:
            raise MessageCatalogError(f"{path}: {exc}") from exc
        if not isinstance(data, dict):
            raise MessageCatalogError(f"{path}: expected a mapping of message names to texts")
        for name, text in data.items():
            if not isinstance(text, str):
                raise MessageCatalogError(f"{path}: {name} is not a text")
            entries[f"{path.stem}.{name}"] = text.rstrip("\n")
    return entries


def _format_code(value: str | None) -> str:
    return codes.format_code(value) if value else ""


def _number(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}".replace(",", "\u202f")
    return f"{value:,.{digits}f}".replace(",", "\u202f").replace(".", ",")


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}\u00a0%"


_ELIDING = "aeiouyhàâäéèêëîïôöùûüœæ"


def _de(name: str) -> str:
    """French "de" before a name, elided before a vowel: "d'Amina", "de Sam"."""
    return f"d'{name}" if name[:1].lower() in _ELIDING else f"de {name}"


class Texts:
    """Renders message keys in a language, falling back to the default language."""

    def __init__(self, messages_dir: Path = MESSAGES_DIR, default_lang: str = "fr") -> None:
        self.messages_dir = messages_dir
        self.default_lang = default_lang
        self.catalogs = {lang: _load_catalog(messages_dir / lang) for lang in LANGS}
        self.env = jinja2.Environment(
            loader=jinja2.FunctionLoader(self._source),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["code"] = _format_code
        self.env.filters["number"] = _number
        self.env.filters["percent"] = _percent
        self.env.filters["de"] = _de
        self.globals: dict[str, Any] = {}
        # Compiled once: the catalogs are read at start (a restart picks up edited texts).
        self._templates: dict[tuple[str, str], jinja2.Template] = {}

    def _source(self, name: str) -> tuple[str, None, Callable[[], bool]] | None:
        lang, _, key = name.partition("/")
        text = self.catalogs.get(lang, {}).get(key)
        if text is None:
            return None
        return text, None, lambda: True

    def lang_of(self, locale: str | None) -> str:
        """The supported language for a Discord locale (``fr``, ``en-US``...), else the default."""
        if locale:
            short = str(locale).split("-")[0].split("_")[0].lower()
            if short in LANGS:
                return short
        return self.default_lang

    def has(self, key: str, lang: str | None = None) -> bool:
        """True when the key exists in this language."""
        return key in self.catalogs.get(lang or self.default_lang, {})

    def render(self, key: str, lang: str | None = None, /, **params: Any) -> str:
        """Render a message key in ``lang`` (falling back to the default language)."""
        lang = lang if lang in LANGS else self.default_lang
        if key not in self.catalogs[lang]:
            lang = self.default_lang if key in self.catalogs[self.default_lang] else "fr"
        if key not in self.catalogs[lang]:
            raise MessageCatalogError(f"missing message {key!r}")
        template = self._templates.get((lang, key))
        if template is None:
            template = self._templates[lang, key] = self.env.get_template(f"{lang}/{key}")
        # Rendered in a context holding only our values (shared, no globals): merging jinja's
        # default globals into every context, or even listing their names, cost more than the
        # rendering itself. The message catalogs use filters and their own variables only.
        context = new_context(
            self.env, template.name, template.blocks, {**self.globals, **params}, True
        )
        return self.env.concat(template.root_render_func(context)).strip()

    def keys(self, lang: str) -> list[str]:
        """Every message key of a language."""
        return sorted(self.catalogs[lang])
