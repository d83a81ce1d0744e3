"""Shipped messages overlaid file by file by the programme's own folder (RELAIS_MESSAGES_DIR),
and ``relais messages export`` that writes a copy to start from."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot import cli
from bot.messages_cli import export_messages
from bot.settings import load_settings
from bot.texts import MESSAGES_DIR, Texts, overlay_files, resolve_messages_dir
from referrals.errors import ConfigError


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_without_a_folder_the_shipped_messages_are_read() -> None:
    assert resolve_messages_dir(None) == MESSAGES_DIR
    assert (MESSAGES_DIR / "fr" / "cli.yaml").is_file()


def test_a_file_of_the_folder_replaces_the_shipped_one_the_rest_falls_back(
    tmp_path: Path,
) -> None:
    own = tmp_path / "own"
    (own / "fr").mkdir(parents=True)
    shipped = (MESSAGES_DIR / "fr" / "cli.yaml").read_text(encoding="utf-8")
    (own / "fr" / "cli.yaml").write_text(
        shipped.replace("Base de connaissances valide.", "Tout est bon, chef."), encoding="utf-8"
    )
    (own / ".hidden.yaml").write_text("ignored: [", encoding="utf-8")
    texts = Texts(resolve_messages_dir(own))
    assert texts.render("cli.faq_ok", "fr") == "Tout est bon, chef."
    assert texts.render("cli.faq_ok", "en") == Texts().render("cli.faq_ok", "en")
    assert texts.keys("fr") == Texts().keys("fr")  # every other file falls back
    assert overlay_files(own) == [Path("fr/cli.yaml")]


def test_a_bad_folder_is_named(workdir: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"RELAIS_MESSAGES_DIR": str(workdir / "absent")}, dotenv=None)
    message = Texts().render(caught.value.key, "fr", **caught.value.params)
    assert "RELAIS_MESSAGES_DIR" in message and "absent" in message


def test_export_then_edit_an_answer_used_by_faq_ask(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _out, err = run(capsys, "messages", "export", "mine")
    assert code == 0 and "mine" in err and "Traceback" not in err
    written = overlay_files(workdir / "mine")
    assert written == overlay_files(MESSAGES_DIR)
    # Keep only one edited FAQ file: the programme's answer wins, the rest is shipped.
    faq_file = workdir / "mine" / "fr" / "faq" / "cej.yaml"
    entry = yaml.safe_load(faq_file.read_text(encoding="utf-8"))
    entry["answer"] = "Chez nous, le CEJ se signe le mardi."
    for relative in written:
        if relative != Path("fr/faq/cej.yaml"):
            (workdir / "mine" / relative).unlink()
    faq_file.write_text(yaml.safe_dump(entry, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("RELAIS_MESSAGES_DIR", str(workdir / "mine"))
    code, out, err = run(capsys, "faq", "ask", "c koi le cej")
    assert code == 0, err
    assert "Chez nous, le CEJ se signe le mardi." in out


def test_export_never_overwrites_a_file(workdir: Path) -> None:
    target = workdir / "mine"
    (target / "fr").mkdir(parents=True)
    (target / "fr" / "cli.yaml").write_text("faq_ok: edited\n", encoding="utf-8")
    written, kept = export_messages(target)
    assert kept == 1 and written == len(overlay_files(MESSAGES_DIR)) - 1
    assert (target / "fr" / "cli.yaml").read_text(encoding="utf-8") == "faq_ok: edited\n"


def test_export_to_an_unwritable_place_is_one_sentence(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "file").write_text("x", encoding="utf-8")
    code, out, err = run(capsys, "messages", "export", "file/sub")
    assert code == 2 and out == ""
    assert "Traceback" not in err and "file/sub" in err


def test_a_broken_file_of_the_programme_is_named_in_one_sentence(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    own = workdir / "own"
    (own / "fr").mkdir(parents=True)
    (own / "fr" / "cli.yaml").write_text("faq_ok: [oops\n", encoding="utf-8")
    monkeypatch.setenv("RELAIS_MESSAGES_DIR", str(own))
    code, out, err = run(capsys, "faq", "check")
    assert code == 2 and out == ""
    assert "Traceback" not in err and "RELAIS_MESSAGES_DIR" in err
    assert str(own / "fr" / "cli.yaml") in err
