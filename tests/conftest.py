"""Fixtures shared by every test: keep this small and generic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from referrals.store import Database

DATA_DIR = Path(__file__).resolve().parent / "data"


@pytest.fixture
def data_dir() -> Path:
    """The folder of test data files (``tests/data``)."""
    return DATA_DIR


@pytest.fixture
async def tmp_db(tmp_path: Path) -> AsyncIterator[Database]:
    """An opened, migrated database on a temporary file, closed after the test."""
    db = await Database.open(tmp_path / "relais.db")
    try:
        yield db
    finally:
        await db.close()
