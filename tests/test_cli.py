"""The ``relais`` command: user errors exit 2 with one clear sentence, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot import cli

HEADER = "participant,referrer,joined_at,channel,kind,enrolled_at\n"


@pytest.fixture
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("RELAIS_DB", "RELAIS_LANG", "DISCORD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RELAIS_TZ", "UTC")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code: int, err: str, *expected: str) -> None:
    assert code == 2
    assert "Traceback" not in err and err.strip()
    for text in expected:
        assert text in err


def test_missing_file(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "import", "absent.csv")
    assert_user_error(code, err, "Impossible de lire absent.csv")
    assert len(err.strip().splitlines()) == 1 and out == ""


def test_bad_csv(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "bad.csv").write_text(HEADER + "a,,hier,,,\n", encoding="utf-8")
    code, out, err = run(capsys, "import", "bad.csv")
    assert_user_error(code, err, "bad.csv", "ligne 2", "joined_at", "« hier »")
    assert out == ""


@pytest.mark.parametrize(
    ("option", "value"), [("--since", "2026-13-01"), ("--until", "31/01/2026"), ("--since", "")]
)
def test_bad_date_option(
    workdir: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    code, out, err = run(capsys, "stats", option, value)
    assert_user_error(code, err, f"« {value} »", option, "AAAA-MM-JJ")
    assert len(err.strip().splitlines()) == 1 and out == ""


def test_unknown_participant_for_chain(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "chain", "nobody")
    assert_user_error(code, err, "« nobody »")
    assert len(err.strip().splitlines()) == 1 and out == ""


def test_chain_report(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "c.csv").write_text(
        HEADER + "a,,2026-01-01T00:00:00Z,,,\nb,a,2026-01-02T00:00:00Z,,,\n"
        "c,b,2026-01-03T00:00:00Z,,,\n",
        encoding="utf-8",
    )
    assert run(capsys, "import", "c.csv")[0] == 0
    code, out, _ = run(capsys, "chain", "b", "--json")
    assert code == 0
    assert json.loads(out) == {
        "participant": "b",
        "wave": 1,
        "ancestors": ["a"],
        "seed": "a",
        "campaign": None,
        "recruits": ["c"],
        "subtree_size": 2,
    }
    code, out, _ = run(capsys, "chain", "b")
    assert code == 0 and "Chaîne de b" in out and "Amené par : a" in out
    # The text counts like the JSON: a subtree of 2 is b and the one b brought in.
    assert "2 personnes dans sa chaîne (b inclus·e), dont 1 amenée" in out
    _code, out, _ = run(capsys, "chain", "a")
    assert "Chaîne d'a" in out


@pytest.mark.parametrize("content", [b"not a database at all\n" * 50, os.urandom(4096)])
def test_non_sqlite_db(workdir: Path, capsys: pytest.CaptureFixture[str], content: bytes) -> None:
    db = workdir / "notes.db"
    db.write_bytes(content)
    for args in (["stats", "--json"], ["export"], ["chain", "x"]):
        code, out, err = run(capsys, *args, "--db", str(db))
        assert_user_error(code, err, "notes.db", "n'est pas une base Relais")
        assert out == ""
    assert db.read_bytes() == content


def test_process_exits_promptly_on_a_non_sqlite_db(workdir: Path) -> None:
    # Regression: the database thread kept the process alive after the error message.
    (workdir / "notes.db").write_text("hello\n" * 100)
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "stats", "--db", "notes.db"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(Path(cli.__file__).resolve().parent.parent)},
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "notes.db" in done.stderr


def test_database_in_a_missing_folder(workdir: Path) -> None:
    # Regression: aiosqlite's thread reported "Event loop is closed" after the message.
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "stats", "--db", "missing/relais.db"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(Path(cli.__file__).resolve().parent.parent)},
    )
    assert done.returncode == 2
    assert "missing/relais.db" in done.stderr
    assert "Traceback" not in done.stderr and "Event loop" not in done.stderr


def test_unknown_command_is_a_usage_error(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["frobnicate"])
    assert caught.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_bad_configuration_is_named(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAIS_LANG", "klingon")
    code, _, err = run(capsys, "stats")
    assert_user_error(code, err, "RELAIS_LANG", "klingon")


def test_db_from_environment_and_backup(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAIS_DB", str(workdir / "env.db"))
    (workdir / "a.csv").write_text(HEADER + "a,,2026-01-01T00:00:00Z,,,\n", encoding="utf-8")
    assert run(capsys, "import", "a.csv")[0] == 0
    assert (workdir / "env.db").exists() and not (workdir / "relais.db").exists()
    code, _, err = run(capsys, "db", "backup", str(workdir / "copy.db"))
    assert code == 0 and "copy.db" in err
    code, out, _ = run(capsys, "stats", "--json", "--db", str(workdir / "copy.db"))
    assert code == 0 and json.loads(out)["participants"] == 1


def test_export_to_a_file(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "a.csv").write_text(HEADER + "a,,2026-01-01T00:00:00Z,sms,,\n", encoding="utf-8")
    assert run(capsys, "import", "a.csv")[0] == 0
    code, out, err = run(capsys, "export", "--out", "out.csv")
    assert code == 0 and out == "" and "out.csv" in err
    assert (workdir / "out.csv").read_text(encoding="utf-8") == (
        HEADER + "a,,2026-01-01T00:00:00+00:00,sms,youth,\n"
    )
    code, _, err = run(capsys, "export", "--out", str(workdir / "no" / "such" / "dir.csv"))
    assert_user_error(code, err, "dir.csv")


@pytest.mark.parametrize("command", ["stats", "report"])
def test_a_reversed_period_is_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    code, out, err = run(capsys, command, "--since", "2026-05-01", "--until", "2026-04-01")
    assert_user_error(code, err, "finit (2026-04-01) avant de commencer (2026-05-01)")
    assert out == "" and not (workdir / "report.html").exists()


def test_console_log_goes_to_a_private_file(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("sms:+33899123456 salut\nsms:abc allo\n"))
    code, out, err = run(capsys, "console", "-v", "--log", "console.log")
    assert code == 0 and out == ""
    assert "sms_sender_refused" in (workdir / "console.log").read_text(encoding="utf-8")
    assert (workdir / "console.log").stat().st_mode & 0o777 == 0o600
    assert "sms_sender_refused" not in err, "the log stays out of the conversation"
    assert "« abc » n'est pas un numéro de téléphone" in err
