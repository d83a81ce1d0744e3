"""Fixtures of the SMS tests."""

from __future__ import annotations

import pytest

from referrals.store import Database


@pytest.fixture
def db(tmp_db: Database) -> Database:
    """A real SQLite file, opened and migrated (the shared ``tmp_db``)."""
    return tmp_db
