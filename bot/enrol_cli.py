"""``relais enrol FILE.csv``: mark programme enrolment in bulk (participant, enrolled_at).

All or nothing, as ``relais import``: any problem leaves the database untouched and is named
with its line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bot.context import Context, decode_csv, read_csv_file, rejected_file
from referrals import csvio
from referrals.errors import ImportRejected


async def cmd_enrol(ctx: Context) -> int:
    """Read the file, check every line, then write every enrolment in one transaction."""
    path = Path(ctx.args.file)
    data = await read_csv_file(ctx)
    db = await ctx.open_db()
    try:
        text = decode_csv(ctx, data)
        new, changed = await db.call(csvio.enrol_rows, text, ctx.settings.tz)
    except ImportRejected as exc:
        raise rejected_file(ctx, exc, "import.enrol_rejected") from exc
    finally:
        await db.close()
    print(ctx.t("import.enrol_done", new=new, changed=changed, path=str(path)), file=sys.stderr)
    return 0
