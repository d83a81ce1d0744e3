"""Fixtures shared by every test: keep this small and generic."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot import bootstrap
from bot.faq import FaqEngine
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


class _SharedEngines:
    """``FaqEngine.load`` for ``build_app``, once per knowledge base and test process.

    Building the engine reads and indexes about fifty YAML files (half a second of CPU); most
    tests build an app on the shipped, unchanged messages. The key holds every argument and the
    size and modification time of every file in the folder, so a test that edits or overlays a
    file gets an engine of its own, and a broken base still raises (failures are not kept).
    ``FaqEngine.load`` itself, called directly by the FAQ tests and the CLI, is left alone. An
    engine is not changed after loading, so tests can share one.
    """

    def __init__(self) -> None:
        self._engines: dict[tuple[Any, ...], FaqEngine] = {}

    def load(
        self,
        messages_dir: Path,
        facts_path: Path | None = None,
        lang: str = "en",
        method: str = "sgd",
        learnt: Iterable[tuple[str, str, str]] = (),
    ) -> FaqEngine:
        learnt = tuple(learnt)
        folder = Path(messages_dir)
        files = tuple(
            (str(path), stat.st_size, stat.st_mtime_ns)
            for path in sorted(folder.rglob("*"))
            if (stat := path.stat()) and path.is_file()
        )
        key = (str(folder), facts_path, lang, method, learnt, files)
        if key not in self._engines:
            self._engines[key] = FaqEngine.load(folder, facts_path, lang, method, learnt)
        return self._engines[key]


@pytest.fixture(autouse=True, scope="session")
def _one_faq_engine_per_knowledge_base() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bootstrap, "FaqEngine", _SharedEngines())
        yield
