"""The SQLite store: one aiosqlite connection (one writer), numbered migrations, pragmas.

Every write runs as one ``BEGIN IMMEDIATE`` transaction inside the database thread, in a single
round-trip: the caller hands a plain function that receives the ``sqlite3.Connection``.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from referrals.errors import RelaisError
from referrals.files import create_private, ensure_private_database

T = TypeVar("T")
BUSY_TIMEOUT_MS = 5000


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def migrations() -> list[tuple[int, str, str]]:
    """The numbered SQL migrations shipped with the package, in order."""
    found = []
    for entry in resources.files("referrals.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:3].isdigit():
            found.append((int(name[:3]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


class DatabaseTooNew(RelaisError):
    """The file was written by a newer Relais (a schema version this one does not know)."""

    key = "cli.db_too_new"


class FolderNotWritable(RelaisError):
    """The database's folder cannot be written (SQLite keeps its WAL and lock files there)."""

    key = "cli.folder_read_only"


def _prepare_file(path: Path) -> None:
    """Refuse a read-only folder with a clear error, and create a new database file 0600."""
    if str(path) == ":memory:":
        return
    folder = path.parent
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise FolderNotWritable(path=str(folder))
    try:
        ensure_private_database(path)
    except PermissionError as exc:
        raise FolderNotWritable(path=str(folder)) from exc
    except OSError:
        pass  # a missing folder or a directory: SQLite's own error says so


def _split_statements(script: str) -> list[str]:
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer)
            buffer = ""
    if buffer.strip() and not buffer.strip().startswith("--"):
        statements.append(buffer)
    return statements


def configure_connection(conn: sqlite3.Connection) -> None:
    """Connection pragmas: WAL, foreign keys, busy timeout, synchronous NORMAL."""
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA secure_delete = ON")
    conn.execute("PRAGMA temp_store = MEMORY")


# A migration that rebuilds a table says so on a line of its own. SQLite cannot drop a UNIQUE
# column constraint in place; its documented way is to copy the table, and with foreign keys on,
# dropping the old copy would be an implicit DELETE checked against every referencing table.
REBUILD_MARKER = "-- relais: rebuilds tables"


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations in one transaction; returns the schema version.

    When a pending migration rebuilds a table, foreign keys are switched off for the
    transaction (the pragma has no effect inside one) and checked as a whole before the commit.
    """
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    pending = [m for m in migrations() if m[0] > current]
    if not pending:
        return current
    rebuilds = any(REBUILD_MARKER in script for _number, _name, script in pending)
    foreign_keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    if rebuilds:
        conn.execute("PRAGMA foreign_keys = OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated between our read and the lock.
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, _name, script in pending:
                if number <= current:
                    continue
                for statement in _split_statements(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
                current = number
            if rebuilds and conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
                raise sqlite3.IntegrityError("a table rebuild broke a foreign key")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        if rebuilds:
            conn.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
    return current


def run_write(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn`` in a ``BEGIN IMMEDIATE`` transaction; commit, or roll back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


async def _connect(path: Path) -> aiosqlite.Connection:
    """An aiosqlite connection; when opening fails, its thread is let finish before raising."""
    connection = aiosqlite.connect(str(path), isolation_level=None)
    try:
        return await connection
    except BaseException:
        # aiosqlite stops its worker thread on failure; wait for it while the loop still runs,
        # or it reports "Event loop is closed" after the command has exited.
        await asyncio.to_thread(connection._thread.join, 5)
        raise


def _configure_reader(conn: sqlite3.Connection) -> None:
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA query_only = ON")


class _Call:
    """A write function with its arguments, called with the connection first."""

    __slots__ = ("args", "fn", "kwargs")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]):
        self.fn, self.args, self.kwargs = fn, args, kwargs

    def __call__(self, conn: sqlite3.Connection) -> Any:
        return self.fn(conn, *self.args, **self.kwargs)


def run_batch(
    conn: sqlite3.Connection, functions: list[Callable[[sqlite3.Connection], Any]]
) -> list[tuple[bool, Any]]:
    """Run several write functions in one transaction, each in its own savepoint."""
    if len(functions) == 1:
        try:
            return [(True, run_write(conn, functions[0]))]
        except Exception as exc:
            return [(False, exc)]
    outcomes: list[tuple[bool, Any]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for fn in functions:
            conn.execute("SAVEPOINT write")
            try:
                result = fn(conn)
            except Exception as exc:
                conn.execute("ROLLBACK TO write")
                conn.execute("RELEASE write")
                outcomes.append((False, exc))
            else:
                conn.execute("RELEASE write")
                outcomes.append((True, result))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes


class Database:
    """The application's database: an aiosqlite connection in autocommit mode."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._pending: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._reader: aiosqlite.Connection | None = None
        self._reader_lock = asyncio.Lock()
        # Schema versions found on opening and after the pending migrations (0: a new file).
        self.schema_before = 0
        self.schema_version = 0

    @classmethod
    async def open(cls, path: Path | str) -> Database:
        """Open (creating and migrating as needed) the database file."""
        path = Path(path)
        await asyncio.to_thread(_prepare_file, path)
        conn = await _connect(path)
        db = cls(conn, path)
        try:
            await db.call(configure_connection)
            version = await db.fetchone("PRAGMA user_version")
            assert version is not None  # PRAGMA user_version always answers one row
            db.schema_before = version[0]
            known = migrations()[-1][0]
            if db.schema_before > known:
                raise DatabaseTooNew(path=str(path), version=db.schema_before, known=known)
            db.schema_version = await db.call(migrate)
        except BaseException:
            # Not a database (or a failed migration): stop the connection's thread, or the
            # process would wait for it forever at exit.
            await conn.close()
            raise
        return db

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(connection, *args, **kwargs)`` in the database thread, in one round-trip."""
        # aiosqlite's public API runs one statement per await; _execute is the documented
        # worker entry point that lets a whole function run in the connection's thread.
        # It forwards positional arguments only, hence the partial for keyword ones.
        target = functools.partial(fn, **kwargs) if kwargs else fn
        return await self._conn._execute(target, self._conn._conn, *args)

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a read-only function on the reader connection, in its own thread.

        In WAL mode readers and the writer do not wait for each other: a long report (figures
        over a million participants) never holds up a join. The reader sees every committed
        write; it refuses to write (``query_only``).
        """
        reader = await self._open_reader()
        target = functools.partial(fn, **kwargs) if kwargs else fn
        return await reader._execute(target, reader._conn, *args)

    async def _open_reader(self) -> aiosqlite.Connection:
        if self._reader is None:
            async with self._reader_lock:
                if self._reader is None:
                    reader = await _connect(self.path)
                    await reader._execute(_configure_reader, reader._conn)
                    self._reader = reader
        return self._reader

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` atomically in the database thread; return once it is committed.

        Writes that arrive while a commit is under way are grouped into the next transaction
        (group commit), each inside its own savepoint: a write that raises is rolled back alone
        and its exception re-raised here, the others commit. Alone, a write is one
        ``BEGIN IMMEDIATE`` transaction in one round-trip, as before.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((_Call(fn, args, kwargs), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        # A caller cancelled while waiting only stops waiting: the write itself is in the batch
        # and commits (or not) with it, so no shield is needed.
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                outcomes = await self.call(run_batch, [fn for fn, _future in batch])
            except BaseException as exc:  # the commit itself failed: every write in it did
                outcomes = [(False, exc)] * len(batch)
            for (_fn, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    async def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Run one query and return its rows."""
        return await self.call(lambda conn: conn.execute(sql, params).fetchall())

    async def fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        """Run one query and return its first row."""
        return await self.call(lambda conn: conn.execute(sql, params).fetchone())

    async def backup(self, target: Path | str) -> None:
        """Online, consistent copy of the database to ``target`` (SQLite backup API)."""
        target = Path(target)
        tmp = target.with_name(target.name + ".part")
        tmp.unlink(missing_ok=True)

        def copy(conn: sqlite3.Connection) -> None:
            create_private(tmp)  # a copy of personal data: 0600 whatever the umask
            dest = sqlite3.connect(str(tmp))
            try:
                conn.backup(dest)
            finally:
                dest.close()

        await self.call(copy)
        tmp.replace(target)

    async def close(self) -> None:
        """Finish queued writes, checkpoint the WAL and close."""
        if self._flusher is not None:
            await self._flusher
        try:
            if self._reader is not None:
                await self._reader.close()
                self._reader = None
            await self.call(lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
        finally:
            await self._conn.close()


def answers(conn: sqlite3.Connection) -> bool:
    """Whether the database answers a trivial query (``/healthz``)."""
    row = conn.execute("SELECT 1").fetchone()
    return row is not None and row[0] == 1


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    """A value of the ``meta`` table (bookkeeping such as the last maintenance run)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Set a value of the ``meta`` table."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
