"""Files Relais writes are private whatever the umask; attachments never overwrite (issue 20)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_session import Story

from bot import cli
from bot.attachments import file_name, save_attachment
from bot.ports import Attachment
from referrals.files import write_private
from referrals.store import Database


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive common umask: without care, files would be world-readable."""
    previous = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("RELAIS_DB", "RELAIS_LANG", "DISCORD_TOKEN", "RELAIS_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RELAIS_TZ", "UTC")
    return tmp_path


async def test_database_and_wal_are_private(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "relais.db"
    db = await Database.open(path)
    try:
        await db.write(lambda conn: conn.execute("INSERT INTO meta VALUES ('k', 'v')"))
        assert mode(path) == 0o600
        for suffix in ("-wal", "-shm"):
            if Path(str(path) + suffix).exists():
                assert mode(Path(str(path) + suffix)) == 0o600, suffix
        await db.backup(tmp_path / "copy.db")
    finally:
        await db.close()
    assert mode(tmp_path / "copy.db") == 0o600


def test_cli_outputs_are_private(
    workdir: Path, open_umask: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["export", "--out", "out.csv"]) == 0
    assert cli.main(["export", "--excel", "--out", "out-excel.csv"]) == 0
    assert cli.main(["db", "backup", "backup.db"]) == 0
    assert cli.main(["report", "--out", "report.html"]) == 0
    for name in ("relais.db", "out.csv", "out-excel.csv", "backup.db", "report.html"):
        assert mode(workdir / name) == 0o600, name
    assert (workdir / "out.csv").read_text(encoding="utf-8-sig").startswith("participant")
    # An existing export keeps being private when it is written again.
    (workdir / "out.csv").chmod(0o644)
    assert cli.main(["export", "--out", "out.csv"]) == 0
    assert mode(workdir / "out.csv") == 0o600


def test_attachment_names_carry_no_path_and_no_number() -> None:
    name = file_name("sms:+33612345678", "../../etc/passwd")
    assert "/" not in name and "33612345678" not in name and name.endswith("passwd")
    assert file_name("discord:alice", "mes-donnees.json").startswith("discord-alice-")


def test_attachments_are_one_private_file_per_request(tmp_path: Path, open_umask: None) -> None:
    folder = tmp_path / "relais-files"
    first = Path(save_attachment(folder, "discord:alice", Attachment("mes-donnees.json", b"A")))
    second = Path(save_attachment(folder, "discord:bob", Attachment("mes-donnees.json", b"B")))
    third = Path(save_attachment(folder, "discord:alice", Attachment("mes-donnees.json", b"C")))
    assert len({first, second, third}) == 3
    assert [p.read_bytes() for p in (first, second, third)] == [b"A", b"B", b"C"]
    assert all(mode(p) == 0o600 for p in (first, second, third))
    assert mode(folder) == 0o700


def test_write_private_refuses_to_overwrite_when_exclusive(tmp_path: Path) -> None:
    path = tmp_path / "f"
    write_private(path, b"one", exclusive=True)
    with pytest.raises(FileExistsError):
        write_private(path, b"two", exclusive=True)
    assert path.read_bytes() == b"one"


async def test_mesdonnees_in_the_console_writes_each_person_their_own_file(
    tmp_path: Path, open_umask: None
) -> None:
    story = await Story.open(tmp_path, secret="test-secret")
    try:
        await story.say("discord:alice /parrainage")
        await story.say("discord:bob /parrainage")
        alice = await story.say("discord:alice /mesdonnees")
        bob = await story.say("discord:bob /mesdonnees")
    finally:
        await story.close()
    paths = [
        Path(line.split("📎 ", 1)[1].strip()) for line in (alice + bob).splitlines() if "📎" in line
    ]
    assert len(paths) == 2 and paths[0] != paths[1]
    assert "alice" in paths[0].read_text(encoding="utf-8")
    assert "bob" in paths[1].read_text(encoding="utf-8")
    assert "bob" not in paths[0].read_text(encoding="utf-8")
    assert all(mode(p) == 0o600 for p in paths) and mode(paths[0].parent) == 0o700


async def test_a_world_readable_database_of_an_older_version_becomes_private(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    db = await Database.open(path)
    await db.close()
    path.chmod(0o644)
    db = await Database.open(path)
    try:
        assert mode(path) == 0o600
    finally:
        await db.close()
