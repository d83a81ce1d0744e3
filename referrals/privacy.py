"""Keyed hashes of phone numbers, and the secret behind them.

The secret comes from ``RELAIS_SECRET``, else is generated once and kept in the database, so a
hash can be recomputed to recognise a number without the number itself being kept.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3


def phone_hash(secret: bytes, e164: str) -> str:
    """Keyed hash (HMAC-SHA256) of an E.164 number, hex."""
    # UTF-8, not ASCII: a malformed sender (a console line, a bad webhook) must hash, not crash;
    # an E.164 number is ASCII, so its hash is the same either way.
    return hmac.new(secret, e164.encode("utf-8"), hashlib.sha256).hexdigest()


def load_secret(conn: sqlite3.Connection, configured: str | None) -> bytes:
    """The hashing key: the configured one, else the one generated once and kept in ``meta``."""
    if configured:
        return configured.encode("utf-8")
    row = conn.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()
    if row is not None:
        return row[0].encode("ascii")
    value = secrets.token_hex(32)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('secret', ?)", (value,))
        stored = conn.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()[0]
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return stored.encode("ascii")
