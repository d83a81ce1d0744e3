"""Broken files refused cleanly by every command, through the real `relais` entry point (#20).

Each case runs the ``relais`` entry point (``bot.cli.main``) as a person would run ``relais``:
exit 2, one sentence on stderr naming the file (and the entry or line), no traceback. The
database cases call it in the test process, with the environment and folder of a subprocess; the
cases that break the shipped knowledge base run ``python -m bot.cli`` in a subprocess on a copy
of the code, as does the counterpart that starts a real console.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot import cli

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120  # generous: the machine is shared; nothing here depends on speed
# `run` needs a token to get as far as opening its files; it never reaches Discord here.
COMMANDS = [["console"], ["serve", "--port", "0"], ["run", "--port", "0"], ["stats"]]


def relais(
    cwd: Path, *args: str, root: Path = ROOT, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RELAIS_", "DISCORD_", "TWILIO_", "SMS_"))
    }
    env.update(PYTHONPATH=str(root), DISCORD_TOKEN="not-a-real-token", RELAIS_TZ="UTC")
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=cwd,
        env=env,
    )


@pytest.fixture
def relais_here(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``relais`` run in this process through its entry point, as ``relais`` above runs it."""

    def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        with monkeypatch.context() as patch:
            patch.chdir(cwd)
            for name in os.environ:
                if name.startswith(("RELAIS_", "DISCORD_", "TWILIO_", "SMS_")):
                    patch.delenv(name)
            patch.setenv("DISCORD_TOKEN", "not-a-real-token")
            patch.setenv("RELAIS_TZ", "UTC")
            capsys.readouterr()
            try:
                code = cli.main(list(args))
            except SystemExit as exc:  # what the console script would exit with
                code = exc.code if isinstance(exc.code, int) else 1
            out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["relais", *args], code, out, err)

    return run


def assert_refused(done: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    for text in expected:
        assert text in done.stderr, done.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_file_that_is_not_a_database(
    tmp_path: Path, command: list[str], relais_here: Callable[..., Any]
) -> None:
    (tmp_path / "notes.db").write_bytes(b"these are my notes, not a database\n" * 100)
    done = relais_here(tmp_path, *command, "--db", "notes.db")
    assert_refused(done, "notes.db", "n'est pas une base Relais")
    assert (tmp_path / "notes.db").read_bytes().startswith(b"these are my notes")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_database_from_a_newer_version(
    tmp_path: Path, command: list[str], relais_here: Callable[..., Any]
) -> None:
    conn = sqlite3.connect(tmp_path / "future.db")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    conn.close()
    done = relais_here(tmp_path, *command, "--db", "future.db")
    assert_refused(done, "future.db", "version plus récente", "999")
    conn = sqlite3.connect(tmp_path / "future.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 999  # untouched
    conn.close()


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` unwritable, even for root (immutable attribute), then restore it."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if shutil.which("chattr") is None:
        pytest.skip("root without chattr: no way to make a folder read-only here")
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, timeout=TIMEOUT)
    if done.returncode != 0:
        pytest.skip("this file system has no immutable attribute")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True, timeout=TIMEOUT)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
def test_a_read_only_folder(
    tmp_path: Path, command: list[str], existing: bool, relais_here: Callable[..., Any]
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    if existing:  # a database made before, whose folder became read-only (a volume mounted ro)
        assert relais_here(tmp_path, "stats", "--db", "data/relais.db").returncode == 0
        for leftover in folder.glob("relais.db-*"):
            leftover.unlink()
    with read_only(folder):
        done = relais_here(tmp_path, *command, "--db", "data/relais.db")
    assert_refused(done, "data", "n'est pas accessible en écriture")


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the code and its messages, whose knowledge base each test may break."""
    root = tmp_path_factory.mktemp("project")
    for name in ("bot", "referrals"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture
def broken_base(project_copy: Path) -> Iterator[Path]:
    """The copy's ``cej.yaml`` (restored after the test)."""
    path = project_copy / "bot" / "messages" / "fr" / "faq" / "cej.yaml"
    original = path.read_text(encoding="utf-8")
    yield path
    path.write_text(original, encoding="utf-8")


@pytest.mark.parametrize("command", COMMANDS[:3], ids=lambda c: c[0])
def test_a_knowledge_base_entry_without_answer(
    tmp_path: Path, project_copy: Path, broken_base: Path, command: list[str]
) -> None:
    text = broken_base.read_text(encoding="utf-8")
    broken_base.write_text(text.split("\nanswer:", 1)[0] + "\n", encoding="utf-8")
    done = relais(tmp_path, *command, "--db", "relais.db", root=project_copy)
    assert_refused(done, "cej.yaml", "cej")


@pytest.mark.parametrize("command", COMMANDS[:3], ids=lambda c: c[0])
def test_a_knowledge_base_with_a_bad_yaml_line(
    tmp_path: Path, project_copy: Path, broken_base: Path, command: list[str]
) -> None:
    lines = broken_base.read_text(encoding="utf-8").splitlines()
    lines.insert(5, "keywords: [cej, : oops")  # line 6
    broken_base.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = relais(tmp_path, *command, "--db", "relais.db", root=project_copy)
    assert_refused(done, "cej.yaml")
    assert "6" in done.stderr or "7" in done.stderr  # the line (or the next, where YAML noticed)


def test_a_messages_file_with_a_bad_yaml_line(tmp_path: Path, project_copy: Path) -> None:
    path = project_copy / "bot" / "messages" / "fr" / "cli.yaml"
    original = path.read_text(encoding="utf-8")
    path.write_text(original + 'oops: "unterminated\n  : [\n', encoding="utf-8")
    try:
        done = relais(tmp_path, "console", "--db", "relais.db", root=project_copy)
    finally:
        path.write_text(original, encoding="utf-8")
    assert_refused(done, "cli.yaml", "line")
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_same_commands_start_when_nothing_is_broken(tmp_path: Path) -> None:
    # The counterpart of the cases above: a fresh folder works, so the refusals are the files'.
    done = relais(tmp_path, "console", "--db", "relais.db", stdin="discord:alice bonjour\n")
    assert done.returncode == 0, done.stderr
    assert "discord:alice <-" in done.stdout
