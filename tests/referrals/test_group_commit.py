"""Group commit: concurrent writes share a transaction, yet each stays atomic on its own."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from referrals.store import Database


async def test_concurrent_writes_all_commit(tmp_db: Database) -> None:
    def insert(conn: sqlite3.Connection, key: str) -> str:
        conn.execute("INSERT INTO meta (key, value) VALUES (?, 'v')", (key,))
        return key

    results = await asyncio.gather(*(tmp_db.write(insert, f"k{i}") for i in range(200)))
    assert results == [f"k{i}" for i in range(200)]
    count = await tmp_db.fetchone("SELECT COUNT(*) FROM meta WHERE key LIKE 'k%'")
    assert count is not None and count[0] == 200


async def test_a_failing_write_is_rolled_back_alone(tmp_db: Database) -> None:
    def good(conn: sqlite3.Connection, key: str) -> None:
        conn.execute("INSERT INTO meta (key, value) VALUES (?, 'v')", (key,))

    def bad(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO meta (key, value) VALUES ('half-done', 'v')")
        raise ValueError("refused")

    outcomes = await asyncio.gather(
        tmp_db.write(good, "a"), tmp_db.write(bad), tmp_db.write(good, "b"), return_exceptions=True
    )
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], ValueError)
    keys = {row[0] for row in await tmp_db.fetchall("SELECT key FROM meta")}
    assert {"a", "b"} <= keys
    assert "half-done" not in keys


async def test_write_after_error_still_works(tmp_db: Database) -> None:
    def boom(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO meta (key, value) VALUES ('x', 'v')")
        conn.execute("INSERT INTO meta (key, value) VALUES ('x', 'v')")  # unique violation

    with pytest.raises(sqlite3.IntegrityError):
        await tmp_db.write(boom)
    await tmp_db.write(lambda conn: conn.execute("INSERT INTO meta VALUES ('y', 'v')"))
    keys = {row[0] for row in await tmp_db.fetchall("SELECT key FROM meta")}
    assert "y" in keys and "x" not in keys
