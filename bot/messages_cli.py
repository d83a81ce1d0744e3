"""``relais messages export DIR``: a copy of the shipped messages to start a programme's own."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path
from typing import Any

from bot.texts import MESSAGES_DIR, overlay_files


def export_messages(target: Path) -> tuple[int, int]:
    """Copy every shipped message file missing from ``target``; return (written, kept).

    A file already in ``target`` is never overwritten: it may hold the programme's edits.
    """
    written = kept = 0
    for relative in overlay_files(MESSAGES_DIR):
        destination = target / relative
        if destination.exists():
            kept += 1
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(MESSAGES_DIR / relative, destination)
        written += 1
    return written, kept


async def cmd_messages_export(ctx: Any) -> int:
    """Write the shipped messages into ``ctx.args.dir`` (existing files are kept)."""
    from bot.context import CliError

    target = Path(ctx.args.dir)
    try:
        written, kept = await asyncio.to_thread(export_messages, target)
    except OSError as exc:
        reason = exc.strerror or exc
        raise CliError(ctx.t("cli.cannot_write", path=str(target), reason=reason)) from exc
    print(
        ctx.t("cli.messages_exported", written=written, kept=kept, path=str(target)),
        file=sys.stderr,
    )
    return 0
