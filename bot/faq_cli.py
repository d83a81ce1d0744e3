"""``relais faq ask`` and ``relais faq check`` (SPEC §1, §7)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from bot.faq import (
    FaqEngine,
    KnowledgeBaseError,
    check_knowledge_base,
    faq_ask_command,
    pending_facts,
)
from bot.faq_model import DEFAULT_METHOD


async def cmd_faq_ask(ctx: Any) -> int:
    """Answer one question, or one per line of standard input."""
    from bot.context import CliError

    try:
        engine = await asyncio.to_thread(
            FaqEngine.load, ctx.texts.messages_dir, None, ctx.settings.lang
        )
    except KnowledgeBaseError as exc:
        raise CliError(str(exc)) from exc
    if ctx.args.question is not None:
        questions: list[str] = [ctx.args.question]
    else:
        questions = [line.rstrip("\r\n") for line in sys.stdin if line.strip()]
    faq_ask_command(
        engine, questions, ctx.args.lang or ctx.settings.lang, ctx.args.json, sys.stdout
    )
    return 0


async def cmd_faq_check(ctx: Any) -> int:
    """Validate the knowledge base (non-zero exit naming the file and entry at fault), list the
    facts still to be completed, and with --eval / --cv print the answering figures."""
    lang = ctx.settings.lang
    problems = await asyncio.to_thread(check_knowledge_base, ctx.texts.messages_dir, None, lang)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 2
    print(ctx.t("cli.faq_ok"), file=sys.stderr)
    for name in await asyncio.to_thread(pending_facts, ctx.texts.messages_dir):
        print(ctx.t("kbcheck.unset_fact", name=name), file=sys.stderr)
    eval_path = getattr(ctx.args, "eval", None)
    cv = getattr(ctx.args, "cv", False)
    if not eval_path and not cv:
        return 0
    from bot.context import CliError
    from bot.faq_eval import cross_validate, evaluate, format_report, read_questions

    method = getattr(ctx.args, "method", None) or DEFAULT_METHOD
    engine = await asyncio.to_thread(FaqEngine.load, ctx.texts.messages_dir, None, lang, method)
    reports = []
    if eval_path:
        try:
            rows = read_questions(Path(eval_path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CliError(
                ctx.t("cli.faq_eval_unreadable", path=eval_path, reason=str(exc))
            ) from exc
        reports.append(("eval", await asyncio.to_thread(evaluate, engine, rows, lang)))
    if cv:
        reports.append(("cv", await asyncio.to_thread(cross_validate, engine, method)))
    for name, report in reports:
        print(ctx.t(f"cli.faq_eval_title_{name}"))
        print(format_report(report, ctx.t))
        if getattr(ctx.args, "mistakes", False):
            for question, expected, got in report.mistakes:
                print(f"  [{expected or '-'} -> {got or '-'}] {question}")
        print()
    return 0
