"""The SQLite store: migrations, pragmas, one-transaction writes, backup."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from referrals import store
from referrals.store import Database


def _latest() -> int:
    return store.migrations()[-1][0]


async def test_migrations_set_user_version_and_create_tables(tmp_db: Database) -> None:
    version = (await tmp_db.fetchone("PRAGMA user_version"))[0]
    assert version == _latest() >= 1
    tables = {row[0] for row in await tmp_db.fetchall("SELECT name FROM sqlite_master")}
    assert {"participants", "events", "campaigns", "invitations"} <= tables


async def test_pragmas_wal_foreign_keys_busy_timeout(tmp_db: Database) -> None:
    assert (await tmp_db.fetchone("PRAGMA journal_mode"))[0] == "wal"
    assert (await tmp_db.fetchone("PRAGMA foreign_keys"))[0] == 1
    assert (await tmp_db.fetchone("PRAGMA busy_timeout"))[0] == store.BUSY_TIMEOUT_MS > 0


async def test_foreign_keys_are_enforced(tmp_db: Database) -> None:
    def bad(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO participants (ref, referrer_id, root_id, joined_at)"
            " VALUES ('x', 999, 1, '2026-01-01T00:00:00+00:00')"
        )

    with pytest.raises(sqlite3.IntegrityError):
        await tmp_db.write(bad)


async def test_reopen_is_idempotent_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "relais.db"
    db = await Database.open(path)
    await db.write(lambda conn: conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')"))
    schema = await db.fetchall("SELECT type, name, sql FROM sqlite_master ORDER BY name")
    await db.close()
    for _ in range(2):
        db = await Database.open(path)
        try:
            assert (await db.fetchone("PRAGMA user_version"))[0] == _latest()
            again = await db.fetchall("SELECT type, name, sql FROM sqlite_master ORDER BY name")
            assert [tuple(r) for r in again] == [tuple(r) for r in schema]
            assert (await db.fetchone("SELECT value FROM meta WHERE key = 'k'"))[0] == "v"
        finally:
            await db.close()


def test_migrate_applies_only_pending_in_one_transaction(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    try:
        store.configure_connection(conn)
        assert store.migrate(conn) == _latest()
        # Nothing pending: a second call changes nothing and does not fail on existing tables.
        assert store.migrate(conn) == _latest()
    finally:
        conn.close()


def test_failed_migration_leaves_no_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = [(1, "001_initial.sql", store.migrations()[0][2] + "\nCREATE TABLE broken (;\n")]
    monkeypatch.setattr(store, "migrations", lambda: broken)
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError):
            store.migrate(conn)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
    finally:
        conn.close()


async def test_failing_write_rolls_back_entirely(tmp_db: Database) -> None:
    def half_done(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO meta (key, value) VALUES ('a', '1')")
        conn.execute("INSERT INTO meta (key, value) VALUES ('b', '2')")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await tmp_db.write(half_done)
    assert (await tmp_db.fetchone("SELECT COUNT(*) FROM meta"))[0] == 0
    # The connection is usable again (no transaction left open).
    await tmp_db.write(lambda conn: conn.execute("INSERT INTO meta VALUES ('c', '3')"))
    assert [tuple(r) for r in await tmp_db.fetchall("SELECT key FROM meta")] == [("c",)]


async def test_write_runs_in_one_immediate_transaction(tmp_db: Database) -> None:
    def inside(conn: sqlite3.Connection) -> bool:
        return conn.in_transaction

    assert await tmp_db.write(inside) is True
    assert await tmp_db.read(inside) is False


async def test_backup_is_a_consistent_copy(tmp_db: Database, tmp_path: Path) -> None:
    await tmp_db.write(lambda conn: conn.execute("INSERT INTO meta VALUES ('k', 'v')"))
    target = tmp_path / "copy.db"
    await tmp_db.backup(target)
    copy = sqlite3.connect(target)
    try:
        assert copy.execute("SELECT value FROM meta").fetchone()[0] == "v"
        assert copy.execute("PRAGMA user_version").fetchone()[0] == _latest()
    finally:
        copy.close()
    assert not (tmp_path / "copy.db.part").exists()


async def test_opening_a_non_sqlite_file_fails_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are not the droids you are looking for\n" * 20)
    with pytest.raises(sqlite3.DatabaseError):
        await Database.open(path)
    assert path.read_text().startswith("these are not")


async def test_call_read_and_write_forward_keyword_arguments(tmp_db: Database) -> None:
    def put(conn: sqlite3.Connection, key: str, *, value: str) -> str:
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
        return value

    def get(conn: sqlite3.Connection, *, key: str) -> str:
        return conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0]

    assert await tmp_db.write(put, "k", value="v") == "v"
    assert await tmp_db.read(get, key="k") == "v"
    assert await tmp_db.call(get, key="k") == "v"
