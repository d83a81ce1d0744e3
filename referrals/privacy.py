"""Keyed hashes of phone numbers, and the secret behind them.

The secret comes from ``RELAIS_SECRET``, else from a key file (``RELAIS_SECRET_FILE``, by default
``relais.key`` beside ``relais.db``), generated once and created 0600; it is never stored in the
database, so that a copy of the database alone cannot be used to recover numbers from their
hashes. A database whose secret an older version kept in ``meta`` is migrated on opening: the
secret moves to the key file and its bytes are erased from the database as for ``/oublier``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import sqlite3
from pathlib import Path

from referrals.errors import RelaisError
from referrals.files import write_private

log = logging.getLogger(__name__)
KEY_SUFFIX = ".key"


class KeyFileError(RelaisError):
    """The key file cannot be read or created; ``path`` and ``reason`` say why."""

    key = "cli.key_file_error"


def default_key_file(db_path: Path) -> Path:
    """The key file beside a database: ``relais.db`` -> ``relais.key``."""
    return db_path.with_name(db_path.stem + KEY_SUFFIX) if db_path.stem else db_path


def phone_hash(secret: bytes, e164: str) -> str:
    """Keyed hash (HMAC-SHA256) of an E.164 number, hex."""
    # UTF-8, not ASCII: a malformed sender (a console line, a bad webhook) must hash, not crash;
    # an E.164 number is ASCII, so its hash is the same either way.
    return hmac.new(secret, e164.encode("utf-8"), hashlib.sha256).hexdigest()


def _read_key(path: Path) -> bytes | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise KeyFileError(path=str(path), reason=reason) from exc
    if len(text) < 32:
        raise KeyFileError("cli.key_file_short", path=str(path))
    return text.encode("ascii")


def _write_key(path: Path, value: str) -> None:
    try:
        write_private(path, (value + "\n").encode("ascii"), exclusive=True)
    except FileExistsError:
        return  # another process created it first: _read_key reads theirs
    except OSError as exc:
        raise KeyFileError(path=str(path), reason=exc.strerror or type(exc).__name__) from exc


def _erase_stored_secret(conn: sqlite3.Connection) -> None:
    """Delete ``meta.secret`` (``secure_delete`` overwrites its bytes), then push the change out
    of the WAL and rebuild the file, so that no free page keeps a copy."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("DELETE FROM meta WHERE key = 'secret'")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def load_secret(
    conn: sqlite3.Connection, configured: str | None, key_file: Path | None = None
) -> bytes:
    """The hashing key: ``RELAIS_SECRET``, else the key file (created at the first start).

    A secret still kept in ``meta`` by an older version is moved to the key file (unless one
    exists) and erased from the database. Runs in the database thread (it reads and writes a
    small file). Raises ``KeyFileError`` when the key file cannot be read or written.
    """
    row = conn.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()
    stored: str | None = row[0] if row is not None else None
    if key_file is None:  # no file possible (an in-memory database): the old behaviour
        if configured:
            return configured.encode("utf-8")
        if stored is None:
            stored = secrets.token_hex(32)
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('secret', ?)", (stored,))
        return stored.encode("ascii")
    key = _read_key(key_file)
    if key is None and (stored is not None or not configured):
        _write_key(key_file, stored or secrets.token_hex(32))
        key = _read_key(key_file)
        log.warning("secret_key_file_created", extra={"path": str(key_file)})
    if stored is not None:
        if key is not None and stored.encode("ascii") != key:
            # A different key file was set up meanwhile: keep the old key (it hashed some
            # numbers) in a private file beside it rather than lose it with the erasure.
            _write_key(key_file.with_name(key_file.name + ".from-database"), stored)
        _erase_stored_secret(conn)
        log.warning("secret_moved_out_of_database", extra={"path": str(key_file)})
    if configured:
        return configured.encode("utf-8")
    assert key is not None
    return key
