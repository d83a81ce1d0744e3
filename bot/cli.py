"""The ``relais`` command: the one place that reads settings and wires everything (SPEC §1)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

from bot.context import (
    USER_ERROR,
    CliError,
    Context,
    decode_csv,
    parse_day,
    period_text,
    read_csv_file,
    rejected_file,
    write_atomically,
)
from bot.logging import configure_logging, get_logger, open_log
from bot.settings import Settings, load_settings
from bot.texts import LANGS, MessageCatalogError, Texts, resolve_messages_dir
from referrals import actions, csvio, stats
from referrals.errors import ConfigError, ImportRejected, NotFound, RelaisError
from referrals.timeutil import day_bounds

log = get_logger(__name__)


# ---------------------------------------------------------------- import / export / stats / chain


async def cmd_import(ctx: Context) -> int:
    """``relais import FILE.csv``: all or nothing."""
    path = Path(ctx.args.file)
    data = await read_csv_file(ctx)
    db = await ctx.open_db()
    try:
        text = decode_csv(ctx, data)
        count = await db.call(csvio.import_rows, text, ctx.settings.tz)
    except ImportRejected as exc:
        raise rejected_file(ctx, exc, "import.rejected") from exc
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
        per_action = await db.read(actions.results, low, high)
    finally:
        await db.close()
    if ctx.args.json:
        figures["actions"] = [{k: v for k, v in r.items() if k != "place"} for r in per_action]
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


def _help_lang() -> str:
    """The language of ``--help``: RELAIS_LANG from the environment, else French (the parser is
    built before the settings are read)."""
    lang = os.environ.get("RELAIS_LANG", "").strip().lower()
    return lang if lang in LANGS else "fr"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``relais`` command (help texts: messages/<lang>/help.yaml)."""
    texts = Texts()
    lang = _help_lang()

    def h(key: str) -> str:
        return texts.render(f"help.{key}", lang)

    def parser_of(**kwargs: Any) -> Any:
        # Raw descriptions keep the columns of `relais import --help` on their own lines.
        return dict(formatter_class=argparse.RawDescriptionHelpFormatter, add_help=False, **kwargs)

    def with_help(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument("-h", "--help", action="help", help=h("help"))
        return parser

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar=h("metavar_db"), help=h("db"))
    parser = with_help(_Parser(prog="relais", description=h("program"), **parser_of()))
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        parser_class=_Parser,
        title=h("commands"),
        metavar=h("metavar_command"),
    )

    def group(name: str, key: str) -> Any:
        command = with_help(sub.add_parser(name, help=h(key), description=h(key), **parser_of()))
        return command.add_subparsers(
            dest=f"{name}_command",
            required=True,
            parser_class=_Parser,
            title=h(f"{key}_commands"),
            metavar=h("metavar_command"),
        )

    def add(
        name: str,
        handler: Callable[[Context], Awaitable[int]],
        key: str,
        within: Any = sub,
        description: str | None = None,
    ) -> Any:
        command = within.add_parser(
            name, parents=[common], help=h(key), description=description or h(key), **parser_of()
        )
        with_help(command)
        command.set_defaults(handler=handler)
        return command

    def add_server_options(command: Any) -> None:
        # The web server of `relais run`; a container listens on 0.0.0.0 (deploy/Dockerfile).
        command.add_argument("--host", default="127.0.0.1", help=h("host"))
        command.add_argument("--port", type=int, default=8080, help=h("port"))

    add_server_options(add("run", _lazy("bot.bootstrap", "cmd_run"), "run"))
    add_server_options(add("serve", _lazy("bot.bootstrap", "cmd_serve"), "serve"))
    console = add("console", _lazy("bot.bootstrap", "cmd_console"), "console")
    console.add_argument("-v", "--verbose", action="store_true", help=h("verbose"))
    console.add_argument("--log", metavar=h("metavar_file"), help=h("log"))
    imp = add("import", cmd_import, "import", description=h("import_description"))
    imp.add_argument("file", metavar=h("metavar_csv"), help=h("file_csv"))
    enrol = add("enrol", _lazy("bot.enrol_cli", "cmd_enrol"), "enrol")
    enrol.add_argument("file", metavar=h("metavar_csv"), help=h("enrol_file"))
    exp = add("export", cmd_export, "export")
    exp.add_argument("--out", metavar=h("metavar_csv"), help=h("export_out"))
    exp.add_argument("--excel", action="store_true", help=h("excel"))
    exp.set_defaults(delimiter=",")
    st = add("stats", cmd_stats, "stats")
    st.add_argument("--json", action="store_true", help=h("json"))
    st.add_argument("--since", metavar=h("metavar_day"), help=h("since"))
    st.add_argument("--until", metavar=h("metavar_day"), help=h("until"))
    ch = add("chain", cmd_chain, "chain")
    ch.add_argument("participant", help=h("participant"))
    ch.add_argument("--json", action="store_true", help=h("json"))
    faq = group("faq", "faq")
    ask = add("ask", _lazy("bot.faq_cli", "cmd_faq_ask"), "ask", within=faq)
    ask.add_argument("question", nargs="?", help=h("question"))
    ask.add_argument("--json", action="store_true", help=h("json"))
    ask.add_argument("--lang", choices=("fr", "en"), help=h("ask_lang"))
    check = add("check", _lazy("bot.faq_cli", "cmd_faq_check"), "check", within=faq)
    check.add_argument("--eval", metavar=h("metavar_jsonl"), help=h("faq_eval"))
    check.add_argument("--cv", action="store_true", help=h("faq_cv"))
    check.add_argument(
        "--method", choices=("sgd", "logreg", "svm", "lexical"), help=h("faq_method")
    )
    check.add_argument("--mistakes", action="store_true", help=h("faq_mistakes"))
    sms = group("sms", "sms")
    test = add("test", _lazy("bot.sms.cli", "cmd_sms_test"), "sms_test", within=sms)
    test.add_argument("number", metavar=h("metavar_number"), help=h("number"))
    report = add("report", _lazy("bot.report", "cmd_report"), "report")
    report.add_argument(
        "--out", default="report.html", metavar=h("metavar_html"), help=h("report_out")
    )
    report.add_argument("--since", metavar=h("metavar_day"), help=h("since"))
    report.add_argument("--until", metavar=h("metavar_day"), help=h("until"))
    add("doctor", _lazy("bot.doctor", "cmd_doctor"), "doctor")
    discord = group("discord", "discord")
    sync = add("sync", _lazy("bot.discord_app", "cmd_discord_sync"), "sync", within=discord)
    sync.add_argument("--guild", type=int, metavar="ID", help=h("guild"))
    add("check", _lazy("bot.discord_app", "cmd_discord_check"), "discord_check", within=discord)
    db = group("db", "database")
    backup = add("backup", cmd_backup, "backup", within=db)
    backup.add_argument("file", metavar=h("metavar_db"), help=h("backup_file"))
    messages = group("messages", "messages")
    export = add(
        "export",
        _lazy("bot.messages_cli", "cmd_messages_export"),
        "messages_export",
        within=messages,
    )
    export.add_argument("dir", metavar=h("metavar_dir"), help=h("messages_dir"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``relais`` console script."""
    try:
        parser = build_parser()  # its help texts come from messages/
    except MessageCatalogError as exc:  # the texts themselves are broken: say which file
        from bot.filecheck import catalog_problem

        print(catalog_problem(exc), file=sys.stderr)
        return USER_ERROR
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
    try:
        ctx = Context(settings, args)
    except MessageCatalogError as exc:  # broken texts: name the file (the programme's own, if any)
        own = settings.messages_dir
        if own is None:
            from bot.filecheck import catalog_problem

            print(catalog_problem(exc), file=sys.stderr)
            return USER_ERROR
        reason = str(exc)  # name the programme's file, not its copy in the assembled folder
        reason = reason.replace(str(resolve_messages_dir(own)), str(own))
        print(Texts().render("cli.bad_messages", settings.lang, reason=reason), file=sys.stderr)
        return USER_ERROR
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
        from bot.filecheck import refusal

        # A broken file (database, knowledge base, messages) is the user's to fix: one sentence
        # naming it, exit 2; the detail goes to the log, without a traceback.
        message = refusal(ctx, exc)
        if message is not None:
            print(message, file=sys.stderr)
            return USER_ERROR
        log.exception("command_failed", command=args.command)
        print(ctx.t("cli.unexpected", kind=type(exc).__name__), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
