"""What every ``relais`` command receives (settings, texts, the database path) and the user's
error it may raise; shared by ``bot.cli`` and the command modules (report, doctor, SMS test...).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from bot.logging import get_logger
from bot.settings import Settings
from bot.texts import Texts, resolve_messages_dir
from referrals import csvio
from referrals.errors import ImportRejected
from referrals.files import create_private
from referrals.store import Database

log = get_logger(__name__)
T = TypeVar("T")
USER_ERROR = 2


class CliError(Exception):
    """A user's error: one sentence on stderr, exit code 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Context:
    """What every command receives: settings, texts, the database path."""

    def __init__(self, settings: Settings, args: argparse.Namespace) -> None:
        self.settings = settings
        self.args = args
        self.texts = Texts(resolve_messages_dir(settings.messages_dir), default_lang=settings.lang)
        self.lang = settings.lang
        self.db_path = Path(args.db) if getattr(args, "db", None) else settings.db_path

    def t(self, key: str, **params: Any) -> str:
        """Render a message in the configured language."""
        return self.texts.render(key, self.lang, **params)

    async def open_db(self) -> Database:
        """Open (creating or migrating) the database, with a clear error when it is not one."""
        started = time.perf_counter()
        try:
            db = await Database.open(self.db_path)
        except sqlite3.DatabaseError as exc:
            raise CliError(self.t("cli.db_error", path=str(self.db_path), reason=str(exc))) from exc
        if 0 < db.schema_before < db.schema_version:  # an upgrade may take seconds: say so
            log.info(
                "database_migrated",
                from_version=db.schema_before,
                to_version=db.schema_version,
                seconds=round(time.perf_counter() - started, 1),
            )
        return db


def parse_day(ctx: Context, option: str, value: str | None) -> date | None:
    """A ``--since``/``--until`` day, or a clear error naming the option and the format."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise CliError(ctx.t("cli.bad_date", value=value, option=option)) from None


async def write_atomically(ctx: Context, path: Path, write: Callable[[Path], Awaitable[T]]) -> T:
    """Write ``path`` through ``path.part`` (all or nothing), off the event loop by ``write``;
    a clear message when it cannot be written."""
    tmp = path.with_name(path.name + ".part")
    try:
        # Personal data: the file is the bot's user's only (0600), whatever the umask.
        await asyncio.to_thread(create_private, tmp)
        result = await write(tmp)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        reason = exc.strerror or exc
        raise CliError(ctx.t("cli.cannot_write", path=str(path), reason=reason)) from exc
    return result


def period_text(ctx: Context, since: date | None, until: date | None) -> str:
    """A human period for reports."""
    if since and until:
        return ctx.t("stats.period_both", since=since.isoformat(), until=until.isoformat())
    if since:
        return ctx.t("stats.period_since", since=since.isoformat())
    if until:
        return ctx.t("stats.period_until", until=until.isoformat())
    return ""


async def read_csv_file(ctx: Context) -> bytes:
    """The bytes of the CSV named on the command line, or a clear error naming the file."""
    path = Path(ctx.args.file)
    try:
        return await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise CliError(
            ctx.t("import.cannot_read", path=str(path), reason=exc.strerror or exc)
        ) from exc


def decode_csv(ctx: Context, data: bytes) -> str:
    """The CSV's text: UTF-8 (with or without BOM) or French Excel's cp1252, said when it is."""
    encoding = csvio.detect_encoding(data)
    if encoding == "cp1252":
        print(ctx.t("import.read_as_cp1252"), file=sys.stderr)
    return data.decode(encoding)


def rejected_file(ctx: Context, exc: ImportRejected, header_key: str) -> CliError:
    """The error for a refused CSV: the file, how many problems, then each problem with its line."""
    lines = [ctx.t(header_key, count=len(exc.problems))]
    lines += [
        "  " + ctx.t(problem.key, line=problem.line, **problem.params) for problem in exc.problems
    ]
    return CliError(f"{ctx.args.file}: " + "\n".join(lines))
