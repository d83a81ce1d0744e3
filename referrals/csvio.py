"""Import and export of referral records (SPEC §5).

An import is checked whole before anything is written, then written in one transaction: a file
with any problem leaves the database untouched, and every problem is named with its line.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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


def detect_encoding(data: bytes) -> str:
    """``utf-8-sig`` for UTF-8 text (with or without BOM), ``cp1252`` for what French Excel
    writes as "CSV (séparateur : point-virgule)"; refuse binary content and anything else.

    UTF-8 is tried first: a cp1252 file with accents is never valid UTF-8 (an accented letter
    is one byte above 0x7F, never a valid UTF-8 sequence next to ASCII), so the two cannot be
    confused. cp1252 is accepted only when every byte maps to a printable character and no
    three bytes above 0x7F follow each other; anything else (UTF-16, binary, another code page
    full of non-Latin letters) is refused, never guessed.
    """
    if b"\x00" in data:
        raise ImportRejected([ImportProblem("import.not_text")])
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8-sig"
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        raise ImportRejected([ImportProblem("import.not_text")]) from None
    if any(ord(char) < 32 and char not in "\t\r\n" for char in text) or _NON_ASCII_RUN.search(data):
        raise ImportRejected([ImportProblem("import.not_text")])
    return "cp1252"


# In French or English text saved as cp1252, accented letters stand between ASCII letters
# ("Hélène", "Noël"); three bytes above 0x7F in a row are another encoding or binary.
_NON_ASCII_RUN = re.compile(rb"[\x80-\xff]{3}")


def decode(data: bytes) -> str:
    """Decode a CSV file (``detect_encoding``); refuse binary content."""
    return data.decode(detect_encoding(data))


# OWASP CSV injection: a cell starting with one of these runs as a formula in Excel or
# LibreOffice. Exports prefix it with a quote; "'" itself is prefixed too, so that the import,
# which removes one leading quote before any of these, gives back exactly what was exported.
FORMULA_STARTS = frozenset("=+-@\t\r'")


def neutralise(cell: str) -> str:
    """A text cell safe to open in a spreadsheet (``'`` before a formula start)."""
    return "'" + cell if cell and cell[0] in FORMULA_STARTS else cell


def unneutralise(cell: str) -> str:
    """The cell as it was before ``neutralise``."""
    return cell[1:] if len(cell) > 1 and cell[0] == "'" and cell[1] in FORMULA_STARTS else cell


# Channels the bot records; ``campaign:NAME`` too. Anything else in a file is a typo.
CHANNELS = frozenset(("discord_invite", "link", "code", "sms", "unknown"))
CAMPAIGN_PREFIX = "campaign:"
# A join more than this far ahead of the import's clock cannot be true.
FUTURE_TOLERANCE = timedelta(days=1)
_DAY_FIRST = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")


def parse_date(text: str, zone: ZoneInfo) -> datetime | None:
    """ISO 8601 (a naive time read in ``zone``), or French day-first ``dd/mm/yyyy`` and
    ``dd/mm/yyyy hh:mm[:ss]`` read in ``zone``; None when it does not parse."""
    value: datetime | None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = parse_datetime(text, zone.key)
        if value is None:
            match = _DAY_FIRST.fullmatch(text)
            if match is None:
                return None
            day, month, year, hour, minute, second = (int(g) if g else 0 for g in match.groups())
            try:
                value = datetime(year, month, day, hour, minute, second)
            except ValueError:
                return None
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def excel_date(iso: str | None, zone: ZoneInfo) -> str:
    """A stored UTC time as French Excel shows it: ``dd/mm/yyyy hh:mm`` local (``:ss`` when
    the seconds are not zero), which ``parse_date`` reads back."""
    if not iso:
        return ""
    value = parse_datetime(iso)
    if value is None:
        return iso
    local = value.astimezone(zone)
    text = local.strftime("%d/%m/%Y %H:%M")
    return text + local.strftime(":%S") if local.second else text


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


def parse(text: str, tz: str, conn: sqlite3.Connection, now: datetime | None = None) -> _Rows:
    """Check a whole file against the rules of SPEC §5 and the database; raise on any problem.

    Every problem of a line is reported (a bad date does not hide an unknown referrer), up to
    ``MAX_PROBLEMS``, in line order. ``now`` is the clock dates in the future are judged by.
    """
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
    latest = ((now or datetime.now(UTC)) + FUTURE_TOLERANCE).timestamp()
    fromisoformat = datetime.fromisoformat
    # Rows whose own cells are wrong are still checked against the others (referrer, order).
    bad_lines: set[int] = set()
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
            ref, referrer = unneutralise(ref.strip()), unneutralise(referrer.strip())
            joined_text = joined_text.strip()
            if not ref:
                if any(cell.strip() for cell in record):
                    problem("import.missing_value", start, column="participant")
                continue  # otherwise a blank line, or only separators
            if ref in seen:
                problem("import.duplicate", start, participant=ref, first=str(seen[ref]))
                continue
            seen[ref] = start
            count = len(problems)
            joined: datetime | None
            try:
                joined = fromisoformat(joined_text)
                if joined.tzinfo is None:
                    joined = joined.replace(tzinfo=zone)
            except ValueError:
                joined = parse_date(joined_text, zone)
            stamp = 0.0
            if joined is None:
                problem("import.bad_date", start, column="joined_at", value=joined_text)
            else:
                stamp = joined.timestamp()
                if stamp > latest:
                    problem("import.future_date", start, column="joined_at", value=joined_text)
            enrolled = None
            if enrolled_text := enrolled_text.strip():
                enrolled = parse_date(enrolled_text, zone)
                if enrolled is None:
                    problem("import.bad_date", start, column="enrolled_at", value=enrolled_text)
                elif enrolled.timestamp() > latest:
                    problem("import.future_date", start, column="enrolled_at", value=enrolled_text)
                elif joined is not None and enrolled < joined:
                    problem("import.enrolled_before_joined", start, enrolled=enrolled_text)
            kind = kind.strip().lower() or "youth"
            if kind not in KINDS:
                problem("import.bad_kind", start, value=kind)
            channel = unneutralise(channel.strip()) or "unknown"
            if channel not in CHANNELS and not (
                channel.startswith(CAMPAIGN_PREFIX) and len(channel) > len(CAMPAIGN_PREFIX)
            ):
                problem("import.bad_channel", start, value=channel)
            if referrer == ref:
                problem("import.self_referral", start, participant=ref)
            if len(problems) > count:
                bad_lines.add(start)
                if len(problems) >= MAX_PROBLEMS:
                    break
            if problems:
                # The file is refused: keep only what the checks across rows need.
                add_line(start)
                add_ref(ref)
                add_referrer(referrer)
                add_joined("")
                add_stamp(stamp if joined is not None else float("nan"))
                continue
            add_line(start)
            add_ref(ref)
            add_referrer(referrer)
            assert joined is not None  # a row without problems has its date
            add_joined(joined_text if _is_canonical(joined_text) else to_iso(joined))
            add_stamp(stamp)
            add_channel(channel)
            add_kind(kind)
            add_enrolled(to_iso(enrolled) if enrolled else None)
    except csv.Error as exc:
        problem("import.bad_csv", line + 1, detail=str(exc))

    if len(problems) < MAX_PROBLEMS:
        _check_across_rows(conn, rows, seen, problem)
    if problems:
        problems.sort(key=lambda p: p.line or 0)
        raise ImportRejected(problems[:MAX_PROBLEMS])
    return rows


def _check_across_rows(
    conn: sqlite3.Connection,
    rows: _Rows,
    seen: dict[str, int],
    problem: Callable[..., None],
) -> None:
    """Rules that join rows: already in the database, unknown referrer, a recruit who joined
    before their referrer (in the file or in the database)."""
    existing = _existing(conn, rows.refs)
    for line, ref in zip(rows.lines, rows.refs, strict=True):
        if ref in existing:
            problem("import.exists", line, participant=ref)
    index = dict(zip(rows.refs, range(len(rows.refs)), strict=True))
    unknown = set(rows.referrers).difference(seen)
    unknown.discard("")
    outside = _existing(conn, list(unknown))
    stamps = rows.stamps
    for i, (line, referrer) in enumerate(zip(rows.lines, rows.referrers, strict=True)):
        if not referrer:
            continue
        j = index.get(referrer)
        if j is not None:
            before = stamps[i] < stamps[j]  # NaN (a bad date) compares False
        elif referrer in outside:
            joined = parse_datetime(outside[referrer][3])
            before = joined is not None and stamps[i] < joined.timestamp()
        else:
            problem("import.unknown_referrer", line, referrer=referrer)
            continue
        if before:
            problem("import.before_referrer", line, referrer=referrer)


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


def import_rows(
    conn: sqlite3.Connection, text: str, tz: str = "UTC", now: datetime | None = None
) -> int:
    """Check and load a whole CSV text in one transaction; returns the number of rows."""

    def run(conn: sqlite3.Connection) -> int:
        rows = parse(text, tz, conn, now)
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
    # With "\n" line ends, the csv module leaves a lone "\r" unquoted, which a reader takes
    # for a line break: such rows are written with every cell quoted.
    quoted = csv.writer(out, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(header)
    count = 0
    while batch := cursor.fetchmany(5000):
        for record in batch:
            cells = [neutralise(cell) if isinstance(cell, str) else cell for cell in row(record)]
            if any(isinstance(cell, str) and "\r" in cell for cell in cells):
                quoted.writerow(cells)
            else:
                writer.writerow(cells)
        count += len(batch)
    return count


def export_rows(
    conn: sqlite3.Connection,
    out: io.TextIOBase | io.StringIO,
    *,
    delimiter: str = ",",
    bom: bool = False,
    excel_tz: str | None = None,
) -> int:
    """Write every participant as a CSV row of SPEC §5; returns the number of rows.

    With ``excel_tz``, dates are ``dd/mm/yyyy hh:mm`` in that zone, as French Excel shows
    and saves them, so a file edited in Excel imports back unchanged."""
    cursor = conn.execute(
        "SELECT p.ref, r.ref, p.joined_at, p.channel, p.kind, p.enrolled_at"
        " FROM participants p LEFT JOIN participants r ON r.id = p.referrer_id ORDER BY p.id"
    )
    if excel_tz is not None:
        zone = ZoneInfo(excel_tz)
        return write_csv(
            out,
            COLUMNS,
            cursor,
            lambda r: (
                r[0],
                r[1] or "",
                excel_date(r[2], zone),
                r[3],
                r[4],
                excel_date(r[5], zone),
            ),
            delimiter=delimiter,
            bom=bom,
        )
    return write_csv(
        out,
        COLUMNS,
        cursor,
        lambda r: (r[0], r[1] or "", r[2], r[3], r[4], r[5] or ""),
        delimiter=delimiter,
        bom=bom,
    )


ENROL_COLUMNS = ("participant", "enrolled_at")


def enrol_rows(
    conn: sqlite3.Connection, text: str, tz: str = "UTC", now: datetime | None = None
) -> tuple[int, int]:
    """Mark enrolment from a CSV of ``participant, enrolled_at``, all or nothing.

    Each line names a participant of the database (not erased) and the date they entered the
    programme (ISO 8601 or ``dd/mm/yyyy [hh:mm]`` in ``tz``), neither in the future nor before
    they joined. Returns (newly enrolled, dates changed); a line repeating the stored date
    changes nothing.
    """

    def run(conn: sqlite3.Connection) -> tuple[int, int]:
        problems: list[ImportProblem] = []
        first_line = text[: text.find("\n")] if "\n" in text else text
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=_dialect(first_line))
        try:
            header = [name.strip().lower() for name in next(reader)]
        except StopIteration:
            raise ImportRejected([ImportProblem("import.empty")]) from None
        missing = [column for column in ENROL_COLUMNS if column not in header]
        if missing:
            raise ImportRejected(
                [ImportProblem("import.missing_column", 1, column=", ".join(missing))]
            )
        at_ref, at_date = header.index("participant"), header.index("enrolled_at")
        zone = ZoneInfo(tz)
        latest = (now or datetime.now(UTC)) + FUTURE_TOLERANCE
        seen: dict[str, int] = {}
        updates: list[tuple[str, int, str | None]] = []
        line = reader.line_num
        try:
            for record in reader:
                start, line = line + 1, reader.line_num
                cells = [*record, "", ""]
                ref = unneutralise(cells[at_ref].strip())
                date_text = cells[at_date].strip()
                if not ref:
                    if any(cell.strip() for cell in record):
                        problems.append(
                            ImportProblem("import.missing_value", start, column="participant")
                        )
                    continue
                if ref in seen:
                    problems.append(
                        ImportProblem(
                            "import.duplicate", start, participant=ref, first=str(seen[ref])
                        )
                    )
                    continue
                seen[ref] = start
                found = conn.execute(
                    "SELECT id, joined_at, enrolled_at FROM participants"
                    " WHERE ref = ? AND erased_at IS NULL",
                    (ref,),
                ).fetchone()
                if found is None:
                    problems.append(
                        ImportProblem("import.unknown_participant", start, participant=ref)
                    )
                enrolled = parse_date(date_text, zone) if date_text else None
                if enrolled is None:
                    problems.append(
                        ImportProblem(
                            "import.bad_date", start, column="enrolled_at", value=date_text
                        )
                    )
                elif enrolled > latest:
                    problems.append(
                        ImportProblem(
                            "import.future_date", start, column="enrolled_at", value=date_text
                        )
                    )
                elif found is not None:
                    joined = parse_datetime(found[1])
                    if joined is not None and enrolled < joined:
                        problems.append(
                            ImportProblem(
                                "import.enrolled_before_joined", start, enrolled=date_text
                            )
                        )
                    elif not problems:
                        updates.append((to_iso(enrolled), found[0], found[2]))
                if len(problems) >= MAX_PROBLEMS:
                    break
        except csv.Error as exc:
            problems.append(ImportProblem("import.bad_csv", line + 1, detail=str(exc)))
        if problems:
            raise ImportRejected(problems[:MAX_PROBLEMS])
        new = changed = 0
        for at, pid, before in updates:
            if before == at:
                continue
            conn.execute("UPDATE participants SET enrolled_at = ? WHERE id = ?", (at, pid))
            if before is None:
                new += 1
                log_event(conn, "enrolled", pid)
            else:
                changed += 1
        return new, changed

    return run_write(conn, run)
