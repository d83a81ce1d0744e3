"""Fixtures shared by every test: keep this small and generic."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot import bootstrap, faq
from bot.faq import FaqEngine
from bot.settings import VARIABLES
from referrals.store import Database

DATA_DIR = Path(__file__).resolve().parent / "data"
# Where the tests' temporary folders go when this machine has a memory file system: the suite
# creates a few thousand throw-away SQLite databases, and on a disk each pays the disk's syncs.
MEMORY_TEMP = Path("/dev/shm")


def pytest_configure(config: pytest.Config) -> None:
    """Temporary folders in memory (``/dev/shm``) when there is one and nothing else was asked
    (``--basetemp`` or ``PYTEST_DEBUG_TEMPROOT`` win). Nothing a test checks depends on it."""
    if config.option.basetemp or os.environ.get("PYTEST_DEBUG_TEMPROOT"):
        return
    if MEMORY_TEMP.is_dir() and os.access(MEMORY_TEMP, os.W_OK | os.X_OK):
        os.environ["PYTEST_DEBUG_TEMPROOT"] = str(MEMORY_TEMP)


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


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """The root logger's handlers and level back after each test: ``bot.cli.main`` called in
    the test process points them at that test's captured stdout or stderr, closed after it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


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
    contents of every file in the folder, so a test that edits or overlays a
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
        key = (_fingerprint(messages_dir), _contents(facts_path), lang, method, learnt)
        if key not in self._engines:
            self._engines[key] = FaqEngine.load(messages_dir, facts_path, lang, method, learnt)
        return self._engines[key]


def _fingerprint(folder: Path) -> tuple[str, str]:
    """The folder and a hash of the names and contents of every file in it (a few ms)."""
    digest = hashlib.blake2b()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return (str(folder), digest.hexdigest())


def _contents(path: Path | None) -> tuple[str, bytes] | None:
    return None if path is None else (str(path), Path(path).read_bytes())


@pytest.fixture(autouse=True, scope="session")
def _one_faq_engine_per_knowledge_base() -> Iterator[None]:
    """``build_app`` and the doctor's check of the knowledge base, once per unchanged base."""
    checked: dict[tuple[Any, ...], list[str]] = {}
    check = faq.check_knowledge_base

    def check_once(
        messages_dir: Path, facts_path: Path | None = None, lang: str = "en"
    ) -> list[str]:
        key = (_fingerprint(messages_dir), _contents(facts_path), lang)
        if key not in checked:
            checked[key] = check(messages_dir, facts_path, lang)
        return list(checked[key])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bootstrap, "FaqEngine", _SharedEngines())
        # bot.doctor imports it when it checks; the FAQ tests hold the function itself.
        patch.setattr(faq, "check_knowledge_base", check_once)
        yield
