"""Broken files refused cleanly: one sentence naming the file, exit 2, the detail in the log.

Every command (``console``, ``serve`` and ``run`` included) opens the database and loads the
knowledge base and the message catalogs; when one of them is broken the person running the
command must fix a file, not read a traceback. ``bot.cli.main`` asks ``refusal`` for the sentence.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import yaml

from bot.logging import get_logger

if TYPE_CHECKING:
    from bot.context import Context

log = get_logger(__name__)
MAX_DETAIL = 300


def catalog_problem(exc: Exception) -> str:
    """One line for a broken message catalog: the file, the line when YAML says it, the problem."""
    text = str(exc)
    cause = exc.__cause__
    mark = getattr(cause, "problem_mark", None)
    if isinstance(cause, yaml.YAMLError) and mark is not None:
        path = text.split(": ", 1)[0]
        problem = getattr(cause, "problem", None) or "invalid YAML"
        return f"{path}: line {mark.line + 1}: {problem}"
    return " ".join(text.split())[:MAX_DETAIL]


def refusal(ctx: Context, exc: BaseException) -> str | None:
    """The sentence for an exception caused by a broken file, or None for any other exception."""
    from bot.faq import KnowledgeBaseError
    from bot.texts import MessageCatalogError

    if isinstance(exc, sqlite3.DatabaseError):
        log.warning(
            "database_unusable",
            path=str(ctx.db_path),
            error=type(exc).__name__,
            detail=str(exc)[:MAX_DETAIL],
        )
        return ctx.t("cli.db_error", path=str(ctx.db_path), reason=str(exc)[:MAX_DETAIL])
    if isinstance(exc, KnowledgeBaseError):
        log.warning("knowledge_base_invalid", problems=[p[:MAX_DETAIL] for p in exc.problems])
        return "\n".join(exc.problems)
    if isinstance(exc, MessageCatalogError):
        log.warning("messages_invalid", detail=str(exc)[:MAX_DETAIL])
        return ctx.t("cli.messages_error", reason=catalog_problem(exc))
    return None
