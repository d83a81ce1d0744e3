"""``relais faq ask`` and ``relais faq check`` (SPEC §1, §7)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from bot.faq import FaqEngine, KnowledgeBaseError, check_knowledge_base, faq_ask_command


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
    """Validate the knowledge base; non-zero exit naming the file and entry at fault."""
    problems = await asyncio.to_thread(
        check_knowledge_base, ctx.texts.messages_dir, None, ctx.settings.lang
    )
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 2
    print(ctx.t("cli.faq_ok"), file=sys.stderr)
    return 0
