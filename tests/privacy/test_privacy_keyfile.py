"""The hashing key lives in a 0600 key file beside the database, never inside it (issue 20)."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
from console_session import Story
from privacy_support import console_command, console_env, file_bytes

from referrals.privacy import KeyFileError, default_key_file, phone_hash
from referrals.store import Database

NUMBER = "+33612345678"
OLD_SECRET = "0f" * 32  # what an older version generated and kept in meta


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_key_file_is_beside_the_database() -> None:
    assert default_key_file(Path("/var/lib/relais/relais.db")) == Path("/var/lib/relais/relais.key")
    assert default_key_file(Path("demo.db")) == Path("demo.key")
    assert default_key_file(Path("data/relais")) == Path("data/relais.key")


async def test_first_start_creates_a_private_key_file_and_nothing_in_the_database(
    tmp_path: Path,
) -> None:
    story = await Story.open(tmp_path, "relais.db")
    try:
        key_file = tmp_path / "relais.key"
        key = key_file.read_text(encoding="ascii").strip()
        assert len(key) == 64 and mode(key_file) == 0o600
        assert story.app.sms.hash(NUMBER) == phone_hash(key.encode(), NUMBER)  # type: ignore[attr-defined]
        row = await story.app.db.fetchone("SELECT value FROM meta WHERE key = 'secret'")
        assert row is None
    finally:
        await story.close()
    assert key.encode() not in file_bytes(tmp_path / "relais.db")
    # A restart reads the same key: hashes stay recognisable.
    again = await Story.open(tmp_path, "relais.db")
    try:
        assert again.app.sms.hash(NUMBER) == phone_hash(key.encode(), NUMBER)  # type: ignore[attr-defined]
    finally:
        await again.close()


async def test_an_old_database_secret_moves_to_the_key_file_and_is_erased(
    tmp_path: Path,
) -> None:
    path = tmp_path / "relais.db"
    db = await Database.open(path)
    old_hash = phone_hash(OLD_SECRET.encode(), NUMBER)
    await db.write(
        lambda conn: conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)", [("secret", OLD_SECRET)]
        )
    )
    await db.write(
        lambda conn: conn.execute(
            "INSERT INTO opt_outs (phone_hash, at) VALUES (?, '2026-01-01T00:00:00+00:00')",
            (old_hash,),
        )
    )
    await db.close()
    assert OLD_SECRET.encode() in file_bytes(path)

    story = await Story.open(tmp_path, "relais.db")
    try:
        key_file = tmp_path / "relais.key"
        assert key_file.read_text(encoding="ascii").strip() == OLD_SECRET
        assert mode(key_file) == 0o600
        # The same key: the number that opted out is still recognised.
        assert story.app.sms.hash(NUMBER) == old_hash  # type: ignore[attr-defined]
        assert await story.app.db.fetchone("SELECT value FROM meta WHERE key = 'secret'") is None
        # Its bytes are gone from the files on disk, not only from the table.
        assert OLD_SECRET.encode() not in file_bytes(path)
    finally:
        await story.close()
    assert OLD_SECRET.encode() not in file_bytes(path)


async def test_relais_secret_file_is_honoured(tmp_path: Path) -> None:
    elsewhere = tmp_path / "keys" / "relais-key.txt"
    elsewhere.parent.mkdir()
    elsewhere.write_text("a" * 40 + "\n", encoding="ascii")
    story = await Story.open(tmp_path, "relais.db", secret_file=elsewhere)
    try:
        assert story.app.sms.hash(NUMBER) == phone_hash(b"a" * 40, NUMBER)  # type: ignore[attr-defined]
        assert not (tmp_path / "relais.key").exists()
    finally:
        await story.close()


async def test_relais_secret_wins_and_creates_no_file(tmp_path: Path) -> None:
    story = await Story.open(tmp_path, "relais.db", secret="from-the-environment-" * 2)
    try:
        expected = phone_hash(("from-the-environment-" * 2).encode(), NUMBER)
        assert story.app.sms.hash(NUMBER) == expected  # type: ignore[attr-defined]
        assert not (tmp_path / "relais.key").exists()
    finally:
        await story.close()


async def test_a_short_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "relais.key").write_text("short\n", encoding="ascii")
    with pytest.raises(KeyFileError) as caught:
        await Story.open(tmp_path, "relais.db")
    assert caught.value.key == "cli.key_file_short"


def test_the_console_says_where_it_created_the_key(tmp_path: Path) -> None:
    env = console_env(tmp_path)
    del env["RELAIS_SECRET"]
    done = subprocess.run(
        console_command(tmp_path / "demo.db"),
        input="discord:alice bonjour\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stderr.splitlines() if "secret_key_file_created" in line]
    assert str(tmp_path / "demo.key") in done.stderr or "demo.key" in done.stderr
    assert mode(tmp_path / "demo.key") == 0o600
    conn = sqlite3.connect(tmp_path / "demo.db")
    try:
        assert conn.execute("SELECT COUNT(*) FROM meta WHERE key = 'secret'").fetchone()[0] == 0
    finally:
        conn.close()
    # A short key file: exit 2 with one sentence naming it.
    (tmp_path / "other.key").write_text("short\n", encoding="ascii")
    done = subprocess.run(
        console_command(tmp_path / "other.db"),
        input="",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "other.key" in done.stderr and "trop courte" in done.stderr


async def test_a_different_old_secret_is_kept_aside_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "relais.db"
    db = await Database.open(path)
    await db.write(
        lambda conn: conn.execute("INSERT INTO meta VALUES ('secret', ?)", (OLD_SECRET,))
    )
    await db.close()
    (tmp_path / "relais.key").write_text("b" * 64 + "\n", encoding="ascii")
    story = await Story.open(tmp_path, "relais.db")
    try:
        assert story.app.sms.hash(NUMBER) == phone_hash(b"b" * 64, NUMBER)  # type: ignore[attr-defined]
    finally:
        await story.close()
    aside = tmp_path / "relais.key.from-database"
    assert aside.read_text(encoding="ascii").strip() == OLD_SECRET and mode(aside) == 0o600
    assert OLD_SECRET.encode() not in file_bytes(path)
