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


def _at_version(path: Path, version: int, monkeypatch: pytest.MonkeyPatch) -> sqlite3.Connection:
    """A database migrated up to ``version`` only (as an older Relais left it)."""
    shipped = store.migrations()
    monkeypatch.setattr(store, "migrations", lambda: [m for m in shipped if m[0] <= version])
    conn = sqlite3.connect(path, isolation_level=None)
    store.configure_connection(conn)
    assert store.migrate(conn) == version
    monkeypatch.setattr(store, "migrations", lambda: shipped)
    return conn


def test_partial_unique_rebuild_keeps_rows_links_and_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = _at_version(tmp_path / "old.db", 7, monkeypatch)
    try:
        at = "2026-03-01T10:00:00+00:00"
        conn.executescript(
            f"""
            INSERT INTO participants (id, ref, discord_id, code, root_id, joined_at)
                VALUES (1, 'p-a', '111', 'ABCDEFGH', 1, '{at}');
            INSERT INTO participants (id, ref, kind, phone_hash, referrer_id, root_id, wave,
                joined_at, referral_delay_s)
                VALUES (2, 'p-b', 'relative', 'h2', 1, 1, 1, '2026-03-01T10:01:00+00:00', 60);
            INSERT INTO participants (id, ref, root_id, joined_at) VALUES (3, 'p-c', 3, '{at}');
            INSERT INTO invitations (member_id, phone_hash, token, status, created_at,
                joined_participant_id) VALUES (1, 'h2', 't', 'sent', '{at}', 2);
            INSERT INTO links (code, participant_id, kind, created_at)
                VALUES ('inv1', 1, 'discord_invite', '{at}');
            """
        )
        before = conn.execute("SELECT * FROM participants ORDER BY id").fetchall()
        assert store.migrate(conn) == _latest() >= 8
        assert conn.execute("SELECT * FROM participants ORDER BY id").fetchall() == before
        # Foreign keys are on again, and still point at the rebuilt table.
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(
                "INSERT INTO invitations (member_id, phone_hash, token, status, created_at)"
                " VALUES (99, 'h', 't2', 'sent', ?)",
                (at,),
            )
        # Unique when set, any number of NULLs.
        for column, value in (("discord_id", "111"), ("phone_hash", "h2"), ("code", "ABCDEFGH")):
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute(
                    f"INSERT INTO participants (ref, {column}, root_id, joined_at)"
                    " VALUES ('p-dup', ?, 1, ?)",
                    (value, at),
                )
        conn.execute(
            "INSERT INTO participants (ref, root_id, joined_at) VALUES ('p-d', 4, ?)", (at,)
        )
        # The participant with nothing set is in none of the three indexes.
        sizes = {
            name: conn.execute(
                f'SELECT COUNT(*) FROM participants INDEXED BY "{name}" WHERE {column} IS NOT NULL'
            ).fetchone()[0]
            for name, column in (
                ("participants_discord_id", "discord_id"),
                ("participants_phone_hash", "phone_hash"),
                ("participants_code", "code"),
            )
        }
        assert sizes == {
            "participants_discord_id": 1,
            "participants_phone_hash": 1,
            "participants_code": 1,
        }
        # The delay trigger survived the copy: moving the referrer's join moves the delay.
        conn.execute("UPDATE participants SET joined_at = '2026-03-01T09:59:00+00:00' WHERE id = 1")
        assert (
            conn.execute("SELECT referral_delay_s FROM participants WHERE id = 2").fetchone()[0]
            == 120
        )
    finally:
        conn.close()


def test_a_rebuild_that_breaks_a_foreign_key_is_rolled_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = _at_version(tmp_path / "old.db", 7, monkeypatch)
    try:
        at = "2026-03-01T10:00:00+00:00"
        conn.execute(
            "INSERT INTO participants (id, ref, root_id, joined_at) VALUES (1, 'p-a', 1, ?)", (at,)
        )
        conn.execute(
            "INSERT INTO links (code, participant_id, kind, created_at)"
            " VALUES ('inv1', 1, 'discord_invite', ?)",
            (at,),
        )
        lossy = [
            (8, "008_lossy.sql", f"{store.REBUILD_MARKER}\nDELETE FROM participants;\n"),
        ]
        shipped = store.migrations()
        monkeypatch.setattr(store, "migrations", lambda: [*shipped[:7], *lossy])
        with pytest.raises(sqlite3.IntegrityError):
            store.migrate(conn)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 7
        assert conn.execute("SELECT COUNT(*) FROM participants").fetchone()[0] == 1
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    finally:
        conn.close()


async def test_open_reports_the_versions_it_migrated_between(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _at_version(tmp_path / "old.db", 7, monkeypatch).close()
    db = await Database.open(tmp_path / "old.db")
    try:
        assert (db.schema_before, db.schema_version) == (7, _latest())
    finally:
        await db.close()
    db = await Database.open(tmp_path / "old.db")  # nothing pending the second time
    try:
        assert db.schema_before == db.schema_version == _latest()
    finally:
        await db.close()
