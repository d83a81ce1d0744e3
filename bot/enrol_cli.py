"""``relais enrol FILE.csv``: mark programme enrolment in bulk (participant, enrolled_at).

All or nothing, as ``relais import``: any problem leaves the database untouched and is named
with its line.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from referrals import csvio
from referrals.errors import ImportRejected

if TYPE_CHECKING:
    from bot.context import Context


async def cmd_enrol(ctx: Context) -> int:
    """Read the file, check every line, then write every enrolment in one transaction."""
    from bot.context import CliError

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
        new, changed = await db.call(csvio.enrol_rows, data.decode(encoding), ctx.settings.tz)
    except ImportRejected as exc:
        lines = [ctx.t("import.enrol_rejected", count=len(exc.problems))]
        lines += [
            "  " + ctx.t(problem.key, line=problem.line, **problem.params)
            for problem in exc.problems
        ]
        raise CliError(f"{path}: " + "\n".join(lines)) from exc
    finally:
        await db.close()
    print(ctx.t("import.enrol_done", new=new, changed=changed, path=str(path)), file=sys.stderr)
    return 0
