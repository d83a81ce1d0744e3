"""``relais enrol FILE.csv``: mark programme enrolment in bulk (participant, enrolled_at).

All or nothing, as ``relais import``: any problem leaves the database untouched and is named
with its line.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from referrals import csvio
from referrals.errors import ImportRejected

if TYPE_CHECKING:
    from bot.context import Context


async def cmd_enrol(ctx: Context) -> int:
    """Read the file, check every line, then write every enrolment in one transaction."""
    from bot.context import CliError, decode_csv, read_csv_file

    path = Path(ctx.args.file)
    data = await read_csv_file(ctx)
    db = await ctx.open_db()
    try:
        text = decode_csv(ctx, data)
        new, changed = await db.call(csvio.enrol_rows, text, ctx.settings.tz)
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
