"""The ``relais`` command: the one place that reads settings and wires everything (SPEC §1)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

from bot.context import (
    USER_ERROR,
    CliError,
    Context,
    parse_day,
    period_text,
    write_atomically,
)
from bot.logging import configure_logging, get_logger, open_log
from bot.settings import Settings, load_settings
from bot.texts import Texts
from referrals import csvio, stats
from referrals.errors import ConfigError, ImportRejected, NotFound, RelaisError
from referrals.timeutil import day_bounds

log = get_logger(__name__)


# ---------------------------------------------------------------- import / export / stats / chain


async def cmd_import(ctx: Context) -> int:
    """``relais import FILE.csv``: all or nothing."""
    path = Path(ctx.args.file)
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise CliError(
            ctx.t("import.cannot_read", path=str(path), reason=exc.strerror or exc)
        ) from exc
    db = await ctx.open_db()
    try:
        encoding = csvio.detect_encoding(data)
        if encoding == "cp1252":
            print(ctx.t("import.read_as_cp1252"), file=sys.stderr)
        text = data.decode(encoding)
        count = await db.call(csvio.import_rows, text, ctx.settings.tz)
    except ImportRejected as exc:
        lines = [ctx.t("import.rejected", count=len(exc.problems))]
        lines += [
            "  " + ctx.t(problem.key, line=problem.line, **problem.params)
            for problem in exc.problems
        ]
        raise CliError(f"{path}: " + "\n".join(lines)) from exc
    finally:
        await db.close()
    print(ctx.t("import.done", count=count, path=str(path)), file=sys.stderr)
    return 0


async def cmd_export(ctx: Context) -> int:
    """``relais export [--out FILE.csv]``."""
    # Database.call passes positional arguments only; --excel means what French Excel reads.
    delimiter = ";" if ctx.args.excel else ctx.args.delimiter

    excel_tz = ctx.settings.tz if ctx.args.excel else None

    def write_csv(conn: sqlite3.Connection, out: Any) -> int:
        return csvio.export_rows(
            conn, out, delimiter=delimiter, bom=ctx.args.excel, excel_tz=excel_tz
        )

    def write_file(conn: sqlite3.Connection, path: Path) -> int:
        with path.open("w", encoding="utf-8", newline="") as out:
            return write_csv(conn, out)

    db = await ctx.open_db()
    try:
        if ctx.args.out:
            out_path = Path(ctx.args.out)
            count = await write_atomically(ctx, out_path, lambda tmp: db.call(write_file, tmp))
            print(ctx.t("import.exported", count=count, path=str(out_path)), file=sys.stderr)
        else:
            await db.call(write_csv, sys.stdout)
    finally:
        await db.close()
    return 0


async def cmd_stats(ctx: Context) -> int:
    """``relais stats [--json] [--since] [--until]``."""
    from bot.labels import channel_names

    since = parse_day(ctx, "--since", ctx.args.since)
    until = parse_day(ctx, "--until", ctx.args.until)
    low, high = day_bounds(since, until, ctx.settings.tz)
    db = await ctx.open_db()
    try:
        figures = await db.read(stats.compute, low, high)
    finally:
        await db.close()
    if ctx.args.json:
        print(json.dumps(figures, ensure_ascii=False))
    else:
        print(
            ctx.t(
                "stats.report",
                s=figures,
                names={},
                channel_names=channel_names(figures["channels"], ctx.t),
                period=period_text(ctx, since, until),
            )
        )
    return 0


async def cmd_chain(ctx: Context) -> int:
    """``relais chain PARTICIPANT [--json]``."""
    from referrals.service import ReferralService

    db = await ctx.open_db()
    try:
        service = ReferralService(db)
        found = await service.find(ctx.args.participant)
        if found is None:
            raise CliError(ctx.t("cli.not_found", who=ctx.args.participant))
        chain = await service.chain(found.id)
    finally:
        await db.close()
    if ctx.args.json:
        print(
            json.dumps(
                {
                    "participant": chain.participant.ref,
                    "wave": chain.participant.wave,
                    "ancestors": [p.ref for p in chain.ancestors],
                    "seed": (chain.ancestors[-1] if chain.ancestors else chain.participant).ref,
                    "campaign": chain.campaign.code if chain.campaign else None,
                    "recruits": [p.ref for p in chain.recruits],
                    "subtree_size": chain.subtree_size,
                },
                ensure_ascii=False,
            )
        )
    else:
        print(
            ctx.t(
                "chain.report",
                me=chain.participant,
                ancestors=chain.ancestors,
                recruits=chain.recruits,
                subtree_size=chain.subtree_size,
                campaign=chain.campaign,
            )
        )
    return 0


async def cmd_backup(ctx: Context) -> int:
    """``relais db backup FILE``: online, consistent copy."""
    db = await ctx.open_db()
    try:
        await db.backup(ctx.args.file)
    except (OSError, sqlite3.Error) as exc:
        raise CliError(ctx.t("cli.cannot_write", path=ctx.args.file, reason=str(exc))) from exc
    finally:
        await db.close()
    print(ctx.t("cli.backup_done", path=ctx.args.file), file=sys.stderr)
    return 0


# ---------------------------------------------------------------- the parser


def _lazy(module: str, name: str) -> Callable[[Context], Awaitable[int]]:
    """A command implemented in another module, imported only when it runs."""

    async def run(ctx: Context) -> int:
        import importlib

        handler = getattr(importlib.import_module(module), name)
        return await handler(ctx)

    return run


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"relais: {message}", file=sys.stderr)
        raise SystemExit(USER_ERROR)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``relais`` command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help="SQLite file (default: $RELAIS_DB, else relais.db)")
    parser = _Parser(prog="relais", description="Relais: peer referral for youth programmes.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(name: str, handler: Callable[[Context], Awaitable[int]], help_text: str) -> Any:
        command = sub.add_parser(name, parents=[common], help=help_text)
        command.set_defaults(handler=handler)
        return command

    run = add("run", _lazy("bot.bootstrap", "cmd_run"), "the Discord bot and the web server")
    # The web server of `relais run`; a container listens on 0.0.0.0 (deploy/Dockerfile).
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8080)
    serve = add("serve", _lazy("bot.bootstrap", "cmd_serve"), "only the web server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    console = add("console", _lazy("bot.bootstrap", "cmd_console"), "talk to the bot locally")
    console.add_argument("-v", "--verbose", action="store_true", help="log info too (stderr)")
    console.add_argument("--log", metavar="FILE", help="write the log to FILE, not stderr")
    imp = add("import", cmd_import, "load referral records from a CSV file")
    imp.add_argument("file")
    enrol = add("enrol", _lazy("bot.enrol_cli", "cmd_enrol"), "mark enrolment from a CSV file")
    enrol.add_argument("file", help="CSV with columns participant, enrolled_at")
    exp = add("export", cmd_export, "write referral records as CSV")
    exp.add_argument("--out")
    exp.add_argument(
        "--excel", action="store_true", help="UTF-8 BOM, semicolons, dd/mm/yyyy hh:mm local dates"
    )
    exp.set_defaults(delimiter=",")
    st = add("stats", cmd_stats, "word-of-mouth figures")
    st.add_argument("--json", action="store_true")
    st.add_argument("--since", help="first day counted, YYYY-MM-DD")
    st.add_argument("--until", help="last day counted, YYYY-MM-DD")
    ch = add("chain", cmd_chain, "a participant's referral chain")
    ch.add_argument("participant")
    ch.add_argument("--json", action="store_true")
    faq = sub.add_parser("faq", help="questions and answers")
    faq_sub = faq.add_subparsers(dest="faq_command", required=True, parser_class=_Parser)
    ask = faq_sub.add_parser("ask", parents=[common], help="answer questions")
    ask.add_argument("question", nargs="?")
    ask.add_argument("--json", action="store_true")
    ask.add_argument("--lang", choices=("fr", "en"))
    ask.set_defaults(handler=_lazy("bot.faq_cli", "cmd_faq_ask"))
    check = faq_sub.add_parser("check", parents=[common], help="validate the knowledge base")
    check.set_defaults(handler=_lazy("bot.faq_cli", "cmd_faq_check"))
    sms = sub.add_parser("sms", help="SMS tools")
    sms_sub = sms.add_subparsers(dest="sms_command", required=True, parser_class=_Parser)
    test = sms_sub.add_parser("test", parents=[common], help="send one test SMS")
    test.add_argument("number")
    test.set_defaults(handler=_lazy("bot.sms.cli", "cmd_sms_test"))
    report = add("report", _lazy("bot.report", "cmd_report"), "a self-contained HTML report")
    report.add_argument("--out", default="report.html")
    report.add_argument("--since")
    report.add_argument("--until")
    add("doctor", _lazy("bot.doctor", "cmd_doctor"), "check the configuration in plain words")
    discord_cmd = sub.add_parser("discord", help="Discord tools")
    discord_sub = discord_cmd.add_subparsers(
        dest="discord_command", required=True, parser_class=_Parser
    )
    sync = discord_sub.add_parser("sync", parents=[common], help="publish the slash commands")
    sync.add_argument("--guild", type=int, help="only this server (instant)")
    sync.set_defaults(handler=_lazy("bot.discord_app", "cmd_discord_sync"))
    dcheck = discord_sub.add_parser("check", parents=[common], help="check the Discord setup")
    dcheck.set_defaults(handler=_lazy("bot.discord_app", "cmd_discord_check"))
    db = sub.add_parser("db", help="database tools")
    db_sub = db.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    backup = db_sub.add_parser("backup", parents=[common], help="online consistent copy")
    backup.add_argument("file")
    backup.set_defaults(handler=cmd_backup)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``relais`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # The console's stdout is the conversation: keep its log quiet unless something goes wrong.
    # The services log on stdout (what containers and journald collect); every other command
    # keeps stdout for its own output (CSV, JSON, answers) and logs on stderr.
    service = args.command in {"run", "serve"}
    log_file = getattr(args, "log", None)
    quiet = args.command == "console" and not getattr(args, "verbose", False)
    try:
        stream = open_log(log_file) if log_file else sys.stdout if service else sys.stderr
    except OSError as exc:
        print(
            Texts().render("cli.log_unwritable", "fr", path=log_file, why=exc.strerror),
            file=sys.stderr,
        )
        return USER_ERROR
    configure_logging(logging.WARNING if quiet else logging.INFO, stream=stream)
    try:
        settings = load_settings()
    except ConfigError as exc:
        if args.command != "doctor":
            print(Texts().render(exc.key, "fr", **exc.params), file=sys.stderr)
            return USER_ERROR
        # The doctor reads the raw variables itself and names every bad one, not only the first.
        settings = Settings()
    ctx = Context(settings, args)
    try:
        return asyncio.run(args.handler(ctx))
    except CliError as exc:
        print(exc.message, file=sys.stderr)
        return USER_ERROR
    except NotFound as exc:
        print(ctx.t("cli.not_found", who=exc.params.get("who", "?")), file=sys.stderr)
        return USER_ERROR
    except RelaisError as exc:
        print(ctx.t(exc.key, **exc.params), file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        log.exception("command_failed", command=args.command)
        print(ctx.t("cli.unexpected", kind=type(exc).__name__), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
