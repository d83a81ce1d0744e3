"""Import and export of referral records (SPEC §5).

An import is checked whole before anything is written, then written in one transaction: a file
with any problem leaves the database untouched, and every problem is named with its line.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from referrals import codes
from referrals.errors import ImportProblem, ImportRejected
from referrals.service import delay_seconds, log_event
from referrals.store import run_write
from referrals.timeutil import parse_datetime, to_iso

COLUMNS = ("participant", "referrer", "joined_at", "channel", "kind", "enrolled_at")
REQUIRED = ("participant", "joined_at")
KINDS = ("youth", "relative")
MAX_PROBLEMS = 50


@dataclass
class _Rows:
    """A checked file, column by column (a million small objects would cost more than the I/O)."""

    lines: list[int] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    referrers: list[str] = field(default_factory=list)
    joined: list[str] = field(default_factory=list)
    stamps: list[float] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    enrolled: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.refs)


def decode(data: bytes) -> str:
    """Decode a CSV file as UTF-8 with or without BOM; refuse binary content."""
    if b"\x00" in data:
        raise ImportRejected([ImportProblem("import.not_text")])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRejected([ImportProblem("import.not_text")]) from None


def _dialect(header_line: str) -> str:
    return ";" if header_line.count(";") > header_line.count(",") else ","


def _reader(text: str, problems: list[ImportProblem]) -> tuple[Any, list[str]] | None:
    """A CSV reader past the header, and the header's names; None (with a problem) if unusable."""
    end = text.find("\n")
    first_line = text if end < 0 else text[:end]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_dialect(first_line))
    try:
        header = next(reader)
    except StopIteration:
        problems.append(ImportProblem("import.empty"))
        return None
    names = [name.strip().lower() for name in header]
    missing = [column for column in REQUIRED if column not in names]
    if missing:
        problems.append(ImportProblem("import.missing_column", 1, column=", ".join(missing)))
        return None
    return reader, names


def _is_canonical(text: str) -> bool:
    """True for ``YYYY-MM-DDTHH:MM:SS+00:00``, already the storage form once it parsed."""
    return (
        len(text) == 25
        and text[19:] == "+00:00"
        and text[10] == "T"
        and text[7] == "-"
        and text[13] == ":"
        and text[16] == ":"
    )


def parse(text: str, tz: str, conn: sqlite3.Connection) -> _Rows:
    """Check a whole file against the rules of SPEC §5 and the database; raise on any problem."""
    problems: list[ImportProblem] = []

    def problem(key: str, line: int, **params: str) -> None:
        problems.append(ImportProblem(key, line, **params))

    rows = _Rows()
    seen: dict[str, int] = {}
    opened = _reader(text, problems)
    if opened is None:
        raise ImportRejected(problems)
    reader, names = opened
    # One C call per record picks the six cells; a missing column reads the "" appended last.
    pick = itemgetter(*(names.index(c) if c in names else -1 for c in COLUMNS))
    width = len(names)
    blank = [""] * (width + 1)
    zone = ZoneInfo(tz)
    fromisoformat = datetime.fromisoformat
    # This loop runs a million times for a big file: every attribute lookup counts.
    add_line, add_ref, add_referrer = rows.lines.append, rows.refs.append, rows.referrers.append
    add_joined, add_stamp, add_channel = (
        rows.joined.append,
        rows.stamps.append,
        rows.channels.append,
    )
    add_kind, add_enrolled = rows.kinds.append, rows.enrolled.append
    line = reader.line_num
    try:
        for record in reader:
            start, line = line + 1, reader.line_num
            if len(record) >= width:
                record.append("")
            else:
                record.extend(blank[len(record) :])
            ref, referrer, joined_text, channel, kind, enrolled_text = pick(record)
            ref, referrer, joined_text = ref.strip(), referrer.strip(), joined_text.strip()
            if not ref:
                if any(cell.strip() for cell in record):
                    problem("import.missing_value", start, column="participant")
                continue  # otherwise a blank line, or only separators
            if ref in seen:
                problem("import.duplicate", start, participant=ref, first=str(seen[ref]))
                continue
            seen[ref] = start
            try:
                joined: datetime | None = fromisoformat(joined_text)
            except ValueError:
                joined = parse_datetime(joined_text, tz)
            if joined is None:
                problem("import.bad_date", start, column="joined_at", value=joined_text)
            elif joined.tzinfo is None:
                joined = joined.replace(tzinfo=zone)
            enrolled = None
            if enrolled_text := enrolled_text.strip():
                enrolled = parse_datetime(enrolled_text, tz)
                if enrolled is None:
                    problem("import.bad_date", start, column="enrolled_at", value=enrolled_text)
            kind = kind.strip().lower() or "youth"
            if kind not in KINDS:
                problem("import.bad_kind", start, value=kind)
            if referrer == ref:
                problem("import.self_referral", start, participant=ref)
            if problems or joined is None:
                if len(problems) >= MAX_PROBLEMS:
                    break
                continue  # the file is refused: its rows need not be kept
            add_line(start)
            add_ref(ref)
            add_referrer(referrer)
            add_joined(joined_text if _is_canonical(joined_text) else to_iso(joined))
            add_stamp(joined.timestamp())
            add_channel(channel.strip() or "unknown")
            add_kind(kind)
            add_enrolled(to_iso(enrolled) if enrolled else None)
    except csv.Error as exc:
        problem("import.bad_csv", line + 1, detail=str(exc))
    if problems:
        raise ImportRejected(problems)

    existing = _existing(conn, rows.refs)
    for line, ref in zip(rows.lines, rows.refs, strict=True):
        if ref in existing:
            problem("import.exists", line, participant=ref)
    unknown = set(rows.referrers).difference(seen)
    unknown.discard("")
    known_outside = _existing(conn, list(unknown))
    for line, referrer in zip(rows.lines, rows.referrers, strict=True):
        if referrer in unknown and referrer not in known_outside:
            problem("import.unknown_referrer", line, referrer=referrer)
    if problems:
        raise ImportRejected(problems[:MAX_PROBLEMS])
    return rows


def _existing(conn: sqlite3.Connection, refs: list[str]) -> dict[str, tuple[int, int, int, str]]:
    """The refs already in the database, with their id, wave, root and join time."""
    found: dict[str, tuple[int, int, int, str]] = {}
    if not refs or conn.execute("SELECT NOT EXISTS (SELECT 1 FROM participants)").fetchone()[0]:
        return found
    for start in range(0, len(refs), 500):
        chunk = refs[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for ref, pid, wave, root, joined in conn.execute(
            f"SELECT ref, id, wave, root_id, joined_at FROM participants WHERE ref IN ({marks})",
            chunk,
        ):
            found[ref] = (pid, wave, root, joined)
    return found


@dataclass
class _Placed:
    """Where each row goes in the graph: referrer id, wave, root id, referral delay."""

    parents: list[int | None]
    waves: list[int]
    roots: list[int]
    delays: list[float | None]


def _place(rows: _Rows, conn: sqlite3.Connection, first_id: int) -> _Placed:
    """Referrer id, wave, root and delay of every row, without recursion; cycles raise."""
    n = len(rows)
    index = dict(zip(rows.refs, range(n), strict=True))
    outside = _existing(conn, [r for r in rows.referrers if r and r not in index])
    parent = [-1] * n  # index in the file of the referrer; -1: none in the file
    waves = [-1] * n  # -1: not placed yet
    roots = [0] * n
    parents: list[int | None] = [None] * n
    delays: list[float | None] = [None] * n
    stamps = rows.stamps
    for i, referrer in enumerate(rows.referrers):
        if not referrer:
            waves[i], roots[i] = 0, first_id + i
        elif (j := index.get(referrer)) is not None:
            parent[i], parents[i] = j, first_id + j
            delays[i] = round(stamps[i] - stamps[j], 3)
            if waves[j] >= 0:  # the referrer came earlier in the file: placed at once
                waves[i], roots[i] = waves[j] + 1, roots[j]
        else:
            pid, wave, root, joined = outside[referrer]
            parents[i], waves[i], roots[i] = pid, wave + 1, root
            delays[i] = delay_seconds(rows.joined[i], joined)
    visit = [0] * n  # the walk (start + 1) that last went through a row
    cycles: list[ImportProblem] = []
    for start in range(n):
        if waves[start] >= 0:
            continue
        path: list[int] = []
        i = start
        while waves[i] < 0 and visit[i] != start + 1:
            visit[i] = start + 1
            path.append(i)
            i = parent[i]
        if waves[i] < 0:
            # Came back to a row of this very walk: the rows from there on form a cycle.
            loop = path[path.index(i) :]
            lines = sorted(rows.lines[j] for j in loop)
            cycles.append(
                ImportProblem("import.cycle", lines[0], lines=", ".join(str(x) for x in lines))
            )
            for j in path:
                waves[j] = 0  # placed as anything: the file is refused
            continue
        wave, root = waves[i], roots[i]
        for j in reversed(path):
            wave += 1
            waves[j], roots[j] = wave, root
    if cycles:
        raise ImportRejected(cycles[:MAX_PROBLEMS])
    return _Placed(parents, waves, roots, delays)


def _campaigns(conn: sqlite3.Connection, rows: _Rows) -> dict[str, int]:
    """Campaign ids for the ``campaign:NAME`` channels, created as needed."""
    names = {
        channel.split(":", 1)[1] for channel in set(rows.channels) if channel[:9] == "campaign:"
    }
    found: dict[str, int] = {}
    for name in names:
        code = codes.normalize_campaign(name)
        if code is None:
            continue
        row = conn.execute("SELECT id FROM campaigns WHERE code = ?", (code,)).fetchone()
        if row is None:
            row = conn.execute(
                "INSERT INTO campaigns (code, channel, created_at) VALUES (?, 'import', ?)"
                " RETURNING id",
                (code, rows.joined[0]),
            ).fetchone()
        found[name] = row[0]
    return found


# Above this many rows (and more than already stored), the participants' secondary indexes are
# dropped and rebuilt: one sort per index instead of a million random B-tree inserts.
REBUILD_INDEXES_FROM = 50_000
IMPORT_CACHE_KIB = 256 * 1024


def _insert(conn: sqlite3.Connection, rows: _Rows, placed: _Placed, first_id: int) -> None:
    campaigns = _campaigns(conn, rows)
    campaign_of = [
        campaigns.get(channel[9:]) if parent is None and channel[:9] == "campaign:" else None
        for channel, parent in zip(rows.channels, placed.parents, strict=True)
    ]
    source_set = [
        joined if (parent is not None or campaign is not None) else None
        for joined, parent, campaign in zip(rows.joined, placed.parents, campaign_of, strict=True)
    ]
    indexes: list[str] = []
    if len(rows) >= REBUILD_INDEXES_FROM and len(rows) > first_id - 1:
        indexes = [
            sql
            for (sql,) in conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'participants'"
                " AND sql IS NOT NULL"
            )
        ]
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'participants'"
            " AND sql IS NOT NULL"
        ).fetchall():
            conn.execute(f'DROP INDEX "{name}"')
    conn.executemany(
        "INSERT INTO participants (id, ref, kind, referrer_id, campaign_id, channel,"
        " source_set_at, root_id, wave, joined_at, enrolled_at, referral_delay_s)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        zip(
            range(first_id, first_id + len(rows)),
            rows.refs,
            rows.kinds,
            placed.parents,
            campaign_of,
            rows.channels,
            source_set,
            placed.roots,
            placed.waves,
            rows.joined,
            rows.enrolled,
            placed.delays,
            strict=True,
        ),
    )
    for sql in indexes:
        conn.execute(sql)


def import_rows(conn: sqlite3.Connection, text: str, tz: str = "UTC") -> int:
    """Check and load a whole CSV text in one transaction; returns the number of rows."""

    def run(conn: sqlite3.Connection) -> int:
        rows = parse(text, tz, conn)
        if not rows:
            return 0
        first_id = (conn.execute("SELECT COALESCE(MAX(id), 0) FROM participants").fetchone()[0]) + 1
        placed = _place(rows, conn, first_id)
        _insert(conn, rows, placed, first_id)
        log_event(conn, "imported", count=len(rows))
        return len(rows)

    # Every referrer was checked against the file and the database above, so the per-row
    # foreign-key checks would only cost time (and, with indexes dropped, whole-table scans).
    # Neither pragma can change inside a transaction: set them around it.
    foreign_keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    cache_size = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
    try:
        return run_write(conn, run)
    finally:
        conn.execute(f"PRAGMA foreign_keys = {int(foreign_keys)}")
        conn.execute(f"PRAGMA cache_size = {int(cache_size)}")


def write_csv(
    out: io.TextIOBase | io.StringIO,
    header: tuple[str, ...],
    cursor: sqlite3.Cursor,
    row: Callable[[tuple[Any, ...]], tuple[Any, ...]],
    *,
    delimiter: str = ",",
    bom: bool = False,
) -> int:
    """Stream a query's rows as CSV (BOM and semicolons for French Excel); returns the count."""
    if bom:
        out.write("\ufeff")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    count = 0
    while batch := cursor.fetchmany(5000):
        writer.writerows(row(record) for record in batch)
        count += len(batch)
    return count


def export_rows(
    conn: sqlite3.Connection,
    out: io.TextIOBase | io.StringIO,
    *,
    delimiter: str = ",",
    bom: bool = False,
) -> int:
    """Write every participant as a CSV row of SPEC §5; returns the number of rows."""
    cursor = conn.execute(
        "SELECT p.ref, r.ref, p.joined_at, p.channel, p.kind, p.enrolled_at"
        " FROM participants p LEFT JOIN participants r ON r.id = p.referrer_id ORDER BY p.id"
    )
    return write_csv(
        out,
        COLUMNS,
        cursor,
        lambda r: (r[0], r[1] or "", r[2], r[3], r[4], r[5] or ""),
        delimiter=delimiter,
        bom=bom,
    )
