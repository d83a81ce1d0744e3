"""A large import into a database nobody else has open runs with a rollback journal instead of
WAL (each page written once), and leaves the database in WAL, usable, exactly as before when
it fails or when the process dies mid-import (issue 19 item 4)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot import cli
from referrals import csvio, store
from referrals.errors import ImportRejected

HEADER = "participant,referrer,joined_at,channel,kind,enrolled_at\n"


def forest(size: int, bad_last: bool = False) -> str:
    rows = [f"n{i},{f'n{i // 2}' if i else ''},2026-01-05T09:00:00+00:00,,," for i in range(size)]
    if bad_last:
        rows.append("late,n1,2026-01-01T09:00:00+00:00,,,")  # before its referrer
    return HEADER + "\n".join(rows) + "\n"


def file_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    store.configure_connection(conn)
    store.migrate(conn)
    return conn


@pytest.fixture
def seen_modes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The journal mode in force while the import writes (recorded at its last statement)."""
    modes: list[str] = []
    log_event = csvio.log_event

    def spy(conn: sqlite3.Connection, *args: object, **kwargs: object) -> None:
        modes.append(conn.execute("PRAGMA journal_mode").fetchone()[0])
        log_event(conn, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(csvio, "log_event", spy)
    monkeypatch.setattr(csvio, "REBUILD_INDEXES_FROM", 10)
    return modes


def test_alone_it_imports_with_a_rollback_journal_and_comes_back_to_wal(
    tmp_path: Path, seen_modes: list[str]
) -> None:
    conn = file_db(tmp_path / "r.db")
    assert csvio.import_rows(conn, forest(50), "UTC") == 50
    assert seen_modes == ["delete"]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL, as configured
    # What closing the database runs: failed with "database table is locked" before.
    assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert not (tmp_path / "r.db-journal").exists()


def test_another_connection_open_keeps_wal(tmp_path: Path, seen_modes: list[str]) -> None:
    conn = file_db(tmp_path / "r.db")
    other = sqlite3.connect(tmp_path / "r.db")  # a running bot's reader, say
    assert other.execute("SELECT COUNT(*) FROM participants").fetchone()[0] == 0
    assert csvio.import_rows(conn, forest(50), "UTC") == 50
    assert seen_modes == ["wal"]
    assert other.execute("SELECT COUNT(*) FROM participants").fetchone()[0] == 50
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_refused_file_leaves_the_database_as_it_was_and_in_wal(
    tmp_path: Path, seen_modes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csvio, "BATCH_ROWS", 7)  # batches written before the last line
    conn = file_db(tmp_path / "r.db")
    csvio.import_rows(conn, HEADER + "old,,2026-01-01T09:00:00+00:00,,,\n", "UTC")
    with pytest.raises(ImportRejected) as caught:
        csvio.import_rows(conn, forest(50, bad_last=True), "UTC")
    assert [(p.key, p.line) for p in caught.value.problems] == [("import.before_referrer", 52)]
    assert [tuple(row) for row in conn.execute("SELECT ref FROM participants")] == [("old",)]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# The import in a child process that dies (no cleanup, no rollback) after writing batches.
DIES_MID_IMPORT = """
import os, sqlite3, sys
from referrals import csvio, store
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
store.configure_connection(conn)
csvio.REBUILD_INDEXES_FROM, csvio.BATCH_ROWS = 10, 500
csvio.IMPORT_CACHE_KIB = 64  # a small page cache: written pages spill into the file
flush, batches = csvio._Loader._flush, []
def dying_flush(self):
    flush(self)
    batches.append(1)
    if len(batches) == 3:
        os._exit(9)
csvio._Loader._flush = dying_flush
csvio.import_rows(conn, sys.stdin.read(), "UTC")
"""


def test_a_process_dying_mid_import_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    conn = file_db(path)
    csvio.import_rows(conn, HEADER + "old,,2026-01-01T09:00:00+00:00,,,\n", "UTC")
    conn.close()
    size = path.stat().st_size
    died = subprocess.run(
        [sys.executable, "-c", DIES_MID_IMPORT, str(path)],
        input=forest(3000),
        text=True,
        capture_output=True,
        check=False,
    )
    assert died.returncode == 9, died.stderr
    assert (tmp_path / "r.db-journal").exists()  # a hot journal: the import was under way
    assert path.stat().st_size > size  # and pages of it were written into the file
    # The next open (any relais command) rolls it back and is in WAL again.
    assert cli.main(["export", "--out", str(tmp_path / "out.csv"), "--db", str(path)]) == 0
    assert (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()[1:] == [
        "old,,2026-01-01T09:00:00+00:00,unknown,youth,"
    ]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert not (tmp_path / "r.db-journal").exists()


def test_the_garbage_collector_is_paused_only_while_importing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc

    during: list[bool] = []
    monkeypatch.setattr(csvio, "log_event", lambda *args, **kwargs: during.append(gc.isenabled()))
    conn = sqlite3.connect(":memory:", isolation_level=None)
    store.configure_connection(conn)
    store.migrate(conn)
    assert csvio.import_rows(conn, forest(5), "UTC") == 5
    assert during == [False] and gc.isenabled()
    with pytest.raises(ImportRejected):
        csvio.import_rows(conn, forest(5, bad_last=True).replace("n0,", "m0,"), "UTC")
    assert gc.isenabled()
