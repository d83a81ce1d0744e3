"""``relais --help``: every command and option has a one-line description, defaults are shown,
``relais import --help`` lists the CSV columns and the formats accepted."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from bot.cli import build_parser
from bot.texts import Texts
from referrals import csvio


def parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, argparse.Action | None]]:
    """Every (sub)parser with its path and the choice action that names it."""
    yield path, parser, None
    for action in parser._actions:  # argparse exposes no public walk of its subparsers
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                assert helps.get(name), f"relais {' '.join((*path, name))} has no description"
                assert "\n" not in helps[name]
                yield from parsers(child, (*path, name))


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_every_command_and_option_has_one_line(monkeypatch: pytest.MonkeyPatch, lang: str) -> None:
    monkeypatch.setenv("RELAIS_LANG", lang)
    seen = 0
    for path, parser, _ in parsers(build_parser()):
        assert parser.description, f"relais {' '.join(path)}"
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, f"relais {' '.join(path)} {action.option_strings or action.dest}"
            assert "\n" not in action.help
            seen += 1
    assert seen > 40


def help_of(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*args, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_import_help_lists_columns_and_formats(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RELAIS_LANG", raising=False)
    text = help_of(capsys, "import")
    for column in csvio.COLUMNS:
        assert f"\n  {column} " in text
    for kind in csvio.KINDS:
        assert kind in text
    assert "UTF-8" in text and "BOM" in text and "point-virgule" in text
    assert "ISO 8601" in text and "RELAIS_TZ" in text


def test_defaults_are_shown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RELAIS_LANG", "en")
    text = " ".join(help_of(capsys, "run").split())
    assert "(default: 127.0.0.1;" in text and "(default: 8080)" in text
    assert "(default: report.html)" in " ".join(help_of(capsys, "report").split())
    assert "relais.db" in help_of(capsys, "stats")


def test_help_texts_come_from_the_messages(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RELAIS_LANG", "en")
    expected = Texts().render("help.messages_export", "en")
    assert expected.split()[0] in help_of(capsys, "messages")
    monkeypatch.setenv("RELAIS_LANG", "xx")  # not a language: French
    assert Texts().render("help.help", "fr") in help_of(capsys)
