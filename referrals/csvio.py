"""Import and export of referral records (SPEC §5).

An import is checked whole before anything is written, then written in one transaction: a file
with any problem leaves the database untouched, and every problem is named with its line.
"""

from __future__ import annotations

import codecs
import csv
import gc
import io
import itertools
import math
import re
import sqlite3
from array import array
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any, TextIO
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


FILE_CHUNK = 1 << 20


def detect_file_encoding(path: Path) -> tuple[str, int]:
    """``detect_encoding`` for a file read in 1 MiB chunks (a million-row file is never held
    whole), and the number of line ends it has (an estimate of its rows)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0
    utf8 = True
    with path.open("rb") as handle:
        while chunk := handle.read(FILE_CHUNK):
            lines += chunk.count(b"\n")
            if b"\x00" in chunk:
                raise ImportRejected([ImportProblem("import.not_text")])
            if utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
        if utf8:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                utf8 = False
    if utf8:
        return "utf-8-sig", lines
    # Not UTF-8: what French Excel writes (small files); checked whole, as before.
    return detect_encoding(path.read_bytes()), lines


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


def _source_lines(source: str | TextIO) -> TextIO:
    return io.StringIO(source, newline="") if isinstance(source, str) else source


def parse(
    source: str | TextIO, tz: str, conn: sqlite3.Connection, now: datetime | None = None
) -> int:
    """Check a whole file against the rules of SPEC §5 and the database, writing nothing; raise
    on any problem, else return the number of rows.

    Every problem of a line is reported (a bad date does not hide an unknown referrer), up to
    ``MAX_PROBLEMS``, in line order. ``now`` is the clock dates in the future are judged by.
    """
    return _Loader(conn, tz, now, write=False).run(_source_lines(source))


# Rows are written in batches of this many, inside the import's one transaction.
BATCH_ROWS = 10_000


class _Loader:
    """One streaming pass over a CSV file: each row is checked, placed in the graph (referrer
    id, wave, root, delay) and written in batches inside the caller's transaction.

    Memory is bounded by the file's ids, not its rows: a dict from each ref to its position and
    four compact arrays (line, join time, wave, root), about 130 bytes a row. A row whose
    referrer comes later in the file waits (with its descendants) until that referrer is
    placed. Any problem stops the writing; the caller's rollback undoes what was written.
    """

    def __init__(
        self, conn: sqlite3.Connection, tz: str, now: datetime | None, *, write: bool
    ) -> None:
        self.conn = conn
        self.zone = ZoneInfo(tz)
        self.latest = ((now or datetime.now(UTC)) + FUTURE_TOLERANCE).timestamp()
        self.write = write
        self.problems: list[ImportProblem] = []
        self.first_id, self.stored = 1, False  # read once the header is known good
        self.index: dict[str, int] = {}  # ref -> position in the file (id - first_id)
        self.lines = array("I")
        self.stamps = array("d")
        self.waves = array("i")  # -1: not placed yet (its referrer comes later)
        self.roots = array("q")
        # Rows waiting for a referrer not placed yet: referrer ref -> [(position, line, row)].
        self.waiting: dict[str, list[tuple[int, int, tuple[Any, ...]]]] = {}
        self.batch: list[tuple[Any, ...]] = []
        self.campaigns: dict[str, int | None] = {}
        self.first_joined = ""
        self.written = 0

    def release(self) -> None:
        """Drop what the pass kept about every row (the caller may run long after it)."""
        self.index = {}
        self.lines, self.stamps = array("I"), array("d")
        self.waves, self.roots = array("i"), array("q")

    def problem(self, key: str, line: int, **params: str) -> None:
        self.problems.append(ImportProblem(key, line, **params))

    def run(self, stream: TextIO) -> int:
        first_line = stream.readline()
        reader = csv.reader(
            itertools.chain([first_line], stream) if first_line else iter(()),
            delimiter=_dialect(first_line),
        )
        try:
            header = next(reader)
        except StopIteration:
            raise ImportRejected([ImportProblem("import.empty")]) from None
        names = [name.strip().lower() for name in header]
        missing = [column for column in REQUIRED if column not in names]
        if missing:
            raise ImportRejected(
                [ImportProblem("import.missing_column", 1, column=", ".join(missing))]
            )
        self.first_id = (
            1 + self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM participants").fetchone()[0]
        )
        self.stored = self.first_id > 1
        self._rows(reader, names)
        if len(self.problems) < MAX_PROBLEMS:
            self._unresolved()
        if self.problems:
            self.problems.sort(key=lambda p: p.line or 0)
            raise ImportRejected(self.problems[:MAX_PROBLEMS])
        self._flush()
        return len(self.lines)

    def _rows(self, reader: Any, names: list[str]) -> None:
        problem = self.problem
        problems = self.problems
        # One C call per record picks the six cells; a missing column reads the "" appended last.
        pick = itemgetter(*(names.index(c) if c in names else -1 for c in COLUMNS))
        width = len(names)
        blank = [""] * (width + 1)
        zone, latest = self.zone, self.latest
        fromisoformat = datetime.fromisoformat
        index, lines, stamps = self.index, self.lines, self.stamps
        waves, roots, waiting = self.waves, self.roots, self.waiting
        index_get, lines_append, stamps_append = index.get, lines.append, stamps.append
        index_setdefault = index.setdefault
        waves_append, roots_append = waves.append, roots.append
        first_id, stored, write = self.first_id, self.stored, self.write
        batch = self.batch
        batch_append = batch.append
        batch_rows = BATCH_ROWS
        line = reader.line_num
        try:
            # This loop runs a million times for a big file: every attribute lookup, call and
            # temporary object counts. The usual row (its referrer already placed or none,
            # dates in storage form) is handled inline; the rest goes through _place.
            for record in reader:
                start, line = line + 1, reader.line_num
                if len(record) >= width:
                    record.append("")
                else:
                    record.extend(blank[len(record) :])
                ref, referrer, joined_text, channel, kind, enrolled_text = pick(record)
                ref, referrer = ref.strip(), referrer.strip()
                if ref[:1] == "'":
                    ref = unneutralise(ref)
                if referrer[:1] == "'":
                    referrer = unneutralise(referrer)
                if not ref:
                    if any(cell.strip() for cell in record):
                        problem("import.missing_value", start, column="participant")
                    continue  # otherwise a blank line, or only separators
                position = len(lines)
                first = index_setdefault(ref, position)  # one lookup: known, or now indexed
                if first != position:
                    problem("import.duplicate", start, participant=ref, first=str(lines[first]))
                    continue
                lines_append(start)
                joined: datetime | None
                joined_text = joined_text.strip()
                canonical = (
                    len(joined_text) == 25
                    and joined_text[19:] == "+00:00"
                    and joined_text[10] == "T"
                    and joined_text[7] == "-"
                    and joined_text[13] == ":"
                    and joined_text[16] == ":"
                )
                try:
                    joined = fromisoformat(joined_text)
                    if joined.tzinfo is None:
                        joined = joined.replace(tzinfo=zone)
                except ValueError:
                    joined = parse_date(joined_text, zone)
                stamp = math.nan
                if joined is None:
                    problem("import.bad_date", start, column="joined_at", value=joined_text)
                else:
                    stamp = joined.timestamp()
                    if stamp > latest:
                        problem("import.future_date", start, column="joined_at", value=joined_text)
                stamps_append(stamp)
                enrolled = None
                if enrolled_text := enrolled_text.strip():
                    enrolled = parse_date(enrolled_text, zone)
                    if enrolled is None:
                        problem("import.bad_date", start, column="enrolled_at", value=enrolled_text)
                    elif enrolled.timestamp() > latest:
                        problem(
                            "import.future_date", start, column="enrolled_at", value=enrolled_text
                        )
                    elif joined is not None and enrolled < joined:
                        problem("import.enrolled_before_joined", start, enrolled=enrolled_text)
                if kind:
                    kind = kind.strip().lower() or "youth"
                    if kind not in KINDS:
                        problem("import.bad_kind", start, value=kind)
                else:
                    kind = "youth"
                channel = channel.strip()
                if channel not in CHANNELS:
                    channel = unneutralise(channel) or "unknown"
                    if channel not in CHANNELS and not (
                        channel.startswith(CAMPAIGN_PREFIX) and len(channel) > len(CAMPAIGN_PREFIX)
                    ):
                        problem("import.bad_channel", start, value=channel)
                if referrer == ref:
                    problem("import.self_referral", start, participant=ref)
                    referrer = ""  # placed as a seed: the file is refused anyway
                if stored and self._exists(ref):
                    problem("import.exists", start, participant=ref)
                if problems:
                    if len(problems) >= MAX_PROBLEMS:
                        break
                    # Nothing more is written: only the graph is still checked.
                    self._place(position, start, referrer, (ref, kind, channel, "", None))
                    continue
                if not self.first_joined:
                    self.first_joined = joined_text if canonical else to_iso(joined)  # type: ignore[arg-type]
                joined_iso = joined_text if canonical else to_iso(joined)  # type: ignore[arg-type]
                enrolled_iso = to_iso(enrolled) if enrolled else None
                if referrer:
                    j = index_get(referrer)
                    if j is None or waves[j] < 0:
                        row = (ref, kind, channel, joined_iso, enrolled_iso)
                        self._place(position, start, referrer, row)
                        continue
                    wave, root = waves[j] + 1, roots[j]
                    waves_append(wave)
                    roots_append(root)
                    if stamp < stamps[j]:
                        problem("import.before_referrer", start, referrer=referrer)
                    elif write:
                        batch_append(
                            (
                                first_id + position,
                                ref,
                                kind,
                                first_id + j,
                                None,
                                channel,
                                joined_iso,
                                root,
                                wave,
                                joined_iso,
                                enrolled_iso,
                                round(stamp - stamps[j], 3),
                            )
                        )
                        if len(batch) >= batch_rows:
                            self._flush()
                    if waiting:
                        self._release(position, ref)
                else:
                    self._place(position, start, "", (ref, kind, channel, joined_iso, enrolled_iso))
        except csv.Error as exc:
            problem("import.bad_csv", line + 1, detail=str(exc))

    def _exists(self, ref: str) -> bool:
        return (
            self.conn.execute("SELECT 1 FROM participants WHERE ref = ?", (ref,)).fetchone()
            is not None
        )

    def _place(self, position: int, line: int, referrer: str, row: tuple[Any, ...]) -> None:
        """Place a row whose referrer is known (or absent), then the rows that waited for it."""
        waves, roots = self.waves, self.roots
        waves.append(-1)
        roots.append(0)
        if not referrer:
            self._placed(position, None, 0, self.first_id + position, None, row)
        else:
            j = self.index.get(referrer)
            if j is None or waves[j] < 0:
                if j is not None or not (
                    self.stored and self._from_database(position, line, referrer, row)
                ):
                    self.waiting.setdefault(referrer, []).append((position, line, row))
                    return
            else:
                self._child_of(j, referrer, position, line, row)
        if self.waiting:
            self._release(position, row[0])

    def _release(self, position: int, ref: str) -> None:
        """Place the rows that waited for this one, and theirs (a stack: no recursion)."""
        stack = [(position, ref)]
        while stack and self.waiting:
            j, referrer = stack.pop()
            for child, line, row in self.waiting.pop(referrer, ()):
                self._child_of(j, referrer, child, line, row)
                stack.append((child, row[0]))

    def _child_of(
        self, j: int, referrer: str, position: int, line: int, row: tuple[Any, ...]
    ) -> None:
        stamps = self.stamps
        if stamps[position] < stamps[j]:  # NaN (a bad date) compares False
            self.problem("import.before_referrer", line, referrer=referrer)
        delay = round(stamps[position] - stamps[j], 3)
        self._placed(position, self.first_id + j, self.waves[j] + 1, self.roots[j], delay, row)

    def _from_database(self, position: int, line: int, referrer: str, row: tuple[Any, ...]) -> bool:
        found = self.conn.execute(
            "SELECT id, wave, root_id, joined_at FROM participants WHERE ref = ?", (referrer,)
        ).fetchone()
        if found is None:
            return False
        pid, wave, root, joined = found
        referrer_joined = parse_datetime(joined)
        if referrer_joined is not None and self.stamps[position] < referrer_joined.timestamp():
            self.problem("import.before_referrer", line, referrer=referrer)
        delay = delay_seconds(row[3], joined) if row[3] else None
        self._placed(position, pid, wave + 1, root, delay, row)
        return True

    def _placed(
        self,
        position: int,
        parent: int | None,
        wave: int,
        root: int,
        delay: float | None,
        row: tuple[Any, ...],
    ) -> None:
        self.waves[position], self.roots[position] = wave, root
        if self.write and not self.problems:
            ref, kind, channel, joined, enrolled = row
            campaign = None
            if parent is None and channel[:9] == "campaign:":
                campaign = self._campaign(channel[9:])
            source_set = joined if (parent is not None or campaign is not None) else None
            self.batch.append(
                (
                    self.first_id + position,
                    ref,
                    kind,
                    parent,
                    campaign,
                    channel,
                    source_set,
                    root,
                    wave,
                    joined,
                    enrolled,
                    delay,
                )
            )
            if len(self.batch) >= BATCH_ROWS:
                self._flush()

    def _campaign(self, name: str) -> int | None:
        """The campaign id of a ``campaign:NAME`` channel, created as needed."""
        if name in self.campaigns:
            return self.campaigns[name]
        code = codes.normalize_campaign(name)
        found: int | None = None
        if code is not None:
            row = self.conn.execute("SELECT id FROM campaigns WHERE code = ?", (code,)).fetchone()
            if row is None:
                row = self.conn.execute(
                    "INSERT INTO campaigns (code, channel, created_at) VALUES (?, 'import', ?)"
                    " RETURNING id",
                    (code, self.first_joined),
                ).fetchone()
            found = row[0]
        self.campaigns[name] = found
        return found

    def _flush(self) -> None:
        if self.batch and self.write and not self.problems:
            self.conn.executemany(
                "INSERT INTO participants (id, ref, kind, referrer_id, campaign_id, channel,"
                " source_set_at, root_id, wave, joined_at, enrolled_at, referral_delay_s)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self.batch,
            )
            self.written += len(self.batch)
        self.batch.clear()  # in place: the row loop holds this list

    def _unresolved(self) -> None:
        """Rows still waiting at the end: an unknown referrer, or a cycle in the file."""
        if not self.waiting:
            return
        parent: dict[int, int] = {}
        rows_line: dict[int, int] = {}
        for referrer, rows in sorted(self.waiting.items(), key=lambda item: item[1][0][1]):
            j = self.index.get(referrer)
            for position, line, _row in rows:
                rows_line[position] = line
                if j is None:
                    self.problem("import.unknown_referrer", line, referrer=referrer)
                else:
                    parent[position] = j
        if self.problems:
            return
        # Every row left waits for a row that waits too: walk each chain to its loop.
        placed: set[int] = set()
        visit: dict[int, int] = {}
        for start in sorted(parent):
            if start in placed:
                continue
            path: list[int] = []
            i = start
            while i not in placed and visit.get(i) != start:
                visit[i] = start
                path.append(i)
                i = parent[i]
            if i not in placed:
                loop = path[path.index(i) :]
                found = sorted(rows_line[j] for j in loop)
                self.problem("import.cycle", found[0], lines=", ".join(str(x) for x in found))
            placed.update(path)


# Above this many rows (and more than already stored), the participants' secondary indexes are
# dropped and rebuilt: one sort per index instead of a million random B-tree inserts.
REBUILD_INDEXES_FROM = 50_000
# The page cache while importing: enough for the index rebuilds' sorts, within the import's
# memory budget (300 MB for a million rows, issue 19).
IMPORT_CACHE_KIB = 64 * 1024


def import_rows(
    conn: sqlite3.Connection,
    source: str | TextIO,
    tz: str = "UTC",
    now: datetime | None = None,
    rows_hint: int | None = None,
) -> int:
    """Check and load a whole CSV (a text, or a text stream read once) in one transaction;
    returns the number of rows. ``rows_hint`` (about the number of lines) chooses whether the
    indexes are rebuilt after the insert; a text counts its own lines."""
    if rows_hint is None:
        rows_hint = source.count("\n") if isinstance(source, str) else 0

    def run(conn: sqlite3.Connection) -> int:
        loader = _Loader(conn, tz, now, write=True)
        indexes: list[tuple[str, str]] = []
        stored = conn.execute("SELECT COUNT(*) FROM participants").fetchone()[0]
        if rows_hint >= REBUILD_INDEXES_FROM and rows_hint > stored:
            indexes = conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
                " AND tbl_name = 'participants' AND sql IS NOT NULL"
            ).fetchall()
            for name, _sql in indexes:
                conn.execute(f'DROP INDEX "{name}"')
        count = loader.run(_source_lines(source))
        loader.release()  # the ids and arrays are not needed by the index builds below
        for _name, sql in indexes:
            conn.execute(sql)
        if count:
            log_event(conn, "imported", count=count)
        return count

    # Every referrer is checked against the file and the database, so the per-row foreign-key
    # checks would only cost time (and, with indexes dropped, whole-table scans).
    # Neither pragma can change inside a transaction: set them around it.
    foreign_keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    cache_size = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
    journal = _rollback_journal(conn) if rows_hint >= REBUILD_INDEXES_FROM else None
    # The rows' tuples and lists (a million of each) make the cyclic garbage collector walk
    # every young container again and again; the import creates no reference cycles, so it
    # is paused meanwhile (1M rows: about 1 s of CPU less, 16.2-17.1 against 17.9-18.2 s).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return run_write(conn, run)
    finally:
        if collecting:
            gc.enable()
        if journal is not None:
            _restore_journal(conn, *journal)
        conn.execute(f"PRAGMA foreign_keys = {int(foreign_keys)}")
        conn.execute(f"PRAGMA cache_size = {int(cache_size)}")


def _rollback_journal(conn: sqlite3.Connection) -> tuple[str, int] | None:
    """Switch a WAL database to a rollback journal for a large import, when no other
    connection has it open; returns what to restore, or None when it stays as it was.

    In WAL mode every page of the import is written twice: to the WAL, then copied into the
    database by the checkpoint (209 MiB each way for a million rows). With a rollback journal,
    only the pages that existed before the import are saved to the journal before being
    changed (a handful for a new database): the new pages go straight to the file.

    Crash safety is SQLite's own: the journal is on disk and synced before any page it
    protects is overwritten (``synchronous = FULL`` for the import), so a crash or a power
    loss mid-import leaves a hot journal that the next connection rolls back: the database is
    as it was before the import, exactly as a WAL that was never committed. Leaving WAL needs
    every other connection closed; when one is open (a running bot), SQLite refuses at once
    (no busy wait) and the import stays in WAL, as before. The price: a command started while
    such an import runs cannot read the database until it ends (it waits ``busy_timeout``,
    then says the database is locked), where in WAL it would have read the state before.
    """
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    if mode != "wal":
        return None
    synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]
    timeout = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        switched = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0] == "delete"
    except sqlite3.OperationalError:
        switched = False
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout)}")
    if not switched:
        return None
    conn.execute("PRAGMA synchronous = FULL")
    return mode, int(synchronous)


def _restore_journal(conn: sqlite3.Connection, mode: str, synchronous: int) -> None:
    conn.execute(f"PRAGMA journal_mode = {mode}").fetchall()
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    # Changing the journal mode makes the connection reload the schema at its next statement
    # that needs it. If that statement is ``PRAGMA wal_checkpoint`` (what closing the database
    # runs), the schema read opens a read transaction on this very connection, and the
    # checkpoint fails with "database table is locked" (SQLite 3.40; why the first attempt at
    # this switch was dropped). Reading the schema here closes that trap.
    conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchall()


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
