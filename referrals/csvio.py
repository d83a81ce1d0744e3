"""Import and export of referral records (SPEC §5).

An import is checked whole before anything is written, then written in one transaction: a file
with any problem leaves the database untouched, and every problem is named with its line.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

from referrals import codes
from referrals.errors import ImportProblem, ImportRejected
from referrals.service import log_event
from referrals.store import run_write
from referrals.timeutil import parse_datetime, to_iso

COLUMNS = ("participant", "referrer", "joined_at", "channel", "kind", "enrolled_at")
REQUIRED = ("participant", "joined_at")
KINDS = ("youth", "relative")
MAX_PROBLEMS = 50


@dataclass
class _Row:
    line: int
    ref: str
    referrer: str
    joined_at: str
    channel: str
    kind: str
    enrolled_at: str | None


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


def _rows(text: str, problems: list[ImportProblem]) -> Iterator[tuple[int, dict[str, str]]]:
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_dialect(first_line))
    try:
        header = next(reader)
    except StopIteration:
        problems.append(ImportProblem("import.empty"))
        return
    names = [name.strip().lower() for name in header]
    missing = [column for column in REQUIRED if column not in names]
    if missing:
        problems.append(ImportProblem("import.missing_column", 1, column=", ".join(missing)))
        return
    line = reader.line_num
    for record in reader:
        start, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        yield (
            start,
            {name: (record[i].strip() if i < len(record) else "") for i, name in enumerate(names)},
        )


def parse(text: str, tz: str, conn: sqlite3.Connection) -> list[_Row]:
    """Check a whole file against the rules of SPEC §5 and the database; raise on any problem."""
    problems: list[ImportProblem] = []

    def problem(key: str, line: int, **params: str) -> None:
        problems.append(ImportProblem(key, line, **params))

    rows: list[_Row] = []
    seen: dict[str, int] = {}
    try:
        for line, record in _rows(text, problems):
            ref = record.get("participant", "")
            if not ref:
                problem("import.missing_value", line, column="participant")
                continue
            if ref in seen:
                problem("import.duplicate", line, participant=ref, first=str(seen[ref]))
                continue
            seen[ref] = line
            joined = parse_datetime(record.get("joined_at", ""), tz)
            if joined is None:
                problem(
                    "import.bad_date", line, column="joined_at", value=record.get("joined_at", "")
                )
            enrolled_text = record.get("enrolled_at", "")
            enrolled = parse_datetime(enrolled_text, tz) if enrolled_text else None
            if enrolled_text and enrolled is None:
                problem("import.bad_date", line, column="enrolled_at", value=enrolled_text)
            kind = (record.get("kind") or "youth").lower()
            if kind not in KINDS:
                problem("import.bad_kind", line, value=kind)
            referrer = record.get("referrer", "")
            if referrer == ref:
                problem("import.self_referral", line, participant=ref)
            if joined is not None:
                rows.append(
                    _Row(
                        line,
                        ref,
                        referrer,
                        to_iso(joined),
                        record.get("channel") or "unknown",
                        kind,
                        to_iso(enrolled) if enrolled else None,
                    )
                )
            if len(problems) >= MAX_PROBLEMS:
                break
    except csv.Error as exc:
        problem("import.bad_csv", 0, detail=str(exc))
    if problems:
        raise ImportRejected(problems)

    refs = [row.ref for row in rows]
    existing = _existing(conn, refs)
    for row in rows:
        if row.ref in existing:
            problem("import.exists", row.line, participant=row.ref)
    unknown = {row.referrer for row in rows if row.referrer and row.referrer not in seen}
    known_outside = _existing(conn, list(unknown))
    for row in rows:
        if row.referrer and row.referrer not in seen and row.referrer not in known_outside:
            problem("import.unknown_referrer", row.line, referrer=row.referrer)
    if problems:
        raise ImportRejected(problems[:MAX_PROBLEMS])
    return rows


def _existing(conn: sqlite3.Connection, refs: list[str]) -> dict[str, tuple[int, int, int]]:
    """The refs already in the database, with their id, wave and root."""
    found: dict[str, tuple[int, int, int]] = {}
    for start in range(0, len(refs), 500):
        chunk = refs[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for ref, pid, wave, root in conn.execute(
            f"SELECT ref, id, wave, root_id FROM participants WHERE ref IN ({marks})", chunk
        ):
            found[ref] = (pid, wave, root)
    return found


def _place(rows: list[_Row], conn: sqlite3.Connection, first_id: int) -> list[tuple[int, int, int]]:
    """(referrer id or 0, wave, root id) for every row; cycles raise with their lines."""
    index = {row.ref: i for i, row in enumerate(rows)}
    outside = _existing(conn, [r.referrer for r in rows if r.referrer and r.referrer not in index])
    placed: list[tuple[int, int, int] | None] = [None] * len(rows)
    on_path = [False] * len(rows)
    cycles: list[ImportProblem] = []
    for start in range(len(rows)):
        if placed[start] is not None:
            continue
        path: list[int] = []
        i = start
        base: tuple[int, int] | None = None  # (wave, root) of the node above the path
        while True:
            if placed[i] is not None:
                _ref, wave, root = placed[i]  # type: ignore[misc]
                base = (wave, root)
                break
            if on_path[i]:
                cycle_start = path.index(i)
                lines = [rows[j].line for j in path[cycle_start:]]
                cycles.append(
                    ImportProblem(
                        "import.cycle",
                        min(lines),
                        lines=", ".join(str(n) for n in sorted(lines)),
                    )
                )
                for j in path:
                    placed[j] = (0, 0, 0)
                    on_path[j] = False
                path = []
                break
            on_path[i] = True
            path.append(i)
            referrer = rows[i].referrer
            if not referrer:
                break
            if referrer in index:
                i = index[referrer]
                continue
            _pid, wave, root = outside[referrer]
            base = (wave, root)
            break
        # Assign from the top of the path down.
        for depth, j in enumerate(reversed(path)):
            on_path[j] = False
            referrer = rows[j].referrer
            if depth == 0 and base is None:
                placed[j] = (0, 0, first_id + j)
                continue
            if depth == 0:
                assert base is not None
                parent_wave, root = base
            else:
                _r, parent_wave, root = placed[path[len(path) - depth]]  # type: ignore[misc]
            parent_id = first_id + index[referrer] if referrer in index else outside[referrer][0]
            placed[j] = (parent_id, parent_wave + 1, root)
    if cycles:
        raise ImportRejected(cycles[:MAX_PROBLEMS])
    return placed  # type: ignore[return-value]


def _campaigns(conn: sqlite3.Connection, rows: list[_Row]) -> dict[str, int]:
    """Campaign ids for the ``campaign:NAME`` channels, created as needed."""
    names = {row.channel.split(":", 1)[1] for row in rows if row.channel.startswith("campaign:")}
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
                (code, rows[0].joined_at),
            ).fetchone()
        found[name] = row[0]
    return found


def import_rows(conn: sqlite3.Connection, text: str, tz: str = "UTC") -> int:
    """Check and load a whole CSV text in one transaction; returns the number of rows."""

    def run(conn: sqlite3.Connection) -> int:
        rows = parse(text, tz, conn)
        if not rows:
            return 0
        first_id = (conn.execute("SELECT COALESCE(MAX(id), 0) FROM participants").fetchone()[0]) + 1
        placed = _place(rows, conn, first_id)
        campaigns = _campaigns(conn, rows)
        conn.execute("PRAGMA defer_foreign_keys = ON")

        def records() -> Iterator[tuple[object, ...]]:
            for offset, (row, (parent, wave, root)) in enumerate(zip(rows, placed, strict=True)):
                campaign = None
                if not parent and row.channel.startswith("campaign:"):
                    campaign = campaigns.get(row.channel.split(":", 1)[1])
                yield (
                    first_id + offset,
                    row.ref,
                    row.kind,
                    parent or None,
                    campaign,
                    row.channel,
                    row.joined_at if (parent or campaign) else None,
                    root,
                    wave,
                    row.joined_at,
                    row.enrolled_at,
                )

        conn.executemany(
            "INSERT INTO participants (id, ref, kind, referrer_id, campaign_id, channel,"
            " source_set_at, root_id, wave, joined_at, enrolled_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            records(),
        )
        log_event(conn, "imported", count=len(rows))
        return len(rows)

    return run_write(conn, run)


def export_rows(
    conn: sqlite3.Connection,
    out: io.TextIOBase | io.StringIO,
    *,
    delimiter: str = ",",
    bom: bool = False,
) -> int:
    """Write every participant as a CSV row of SPEC §5; returns the number of rows."""
    if bom:
        out.write("\ufeff")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    cursor = conn.execute(
        "SELECT p.ref, r.ref, p.joined_at, p.channel, p.kind, p.enrolled_at"
        " FROM participants p LEFT JOIN participants r ON r.id = p.referrer_id ORDER BY p.id"
    )
    while batch := cursor.fetchmany(5000):
        writer.writerows(
            (ref, referrer or "", joined, channel, kind, enrolled or "")
            for ref, referrer, joined, channel, kind, enrolled in batch
        )
        count += len(batch)
    return count
