"""Fixtures shared by every test: keep this small and generic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.settings import VARIABLES
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


@pytest.fixture
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty current folder (no .env) and an environment without any Relais setting."""
    monkeypatch.chdir(tmp_path)
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return tmp_path
