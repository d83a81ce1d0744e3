"""Every ``relais …`` command quoted in the docs exists, with those options (strict parsing).

Commands are taken from fenced code blocks and inline code spans of README.md, deploy/*.md and
docs/*.md, then parsed with the real ``bot.cli.build_parser()``: an unknown command or option fails.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from bot.cli import build_parser
from bot.settings import VARIABLES

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(```|~~~)[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)
INLINE = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)")
SEGMENT_SPLIT = re.compile(r"\s*(?:&&|\|\||;|\s\|\s|\$\(|\))\s*")
# The word a command starts with: a subcommand, never an option or a path.
SUBCOMMAND = re.compile(r"[a-z][a-z-]*")


def doc_files() -> list[Path]:
    files = [ROOT / "README.md"]
    files += sorted((ROOT / "deploy").glob("*.md"))
    files += sorted((ROOT / "docs").glob("*.md")) if (ROOT / "docs").is_dir() else []
    return [f for f in files if f.is_file()]


def code_snippets(markdown: str) -> list[tuple[str, bool]]:
    """Lines of fenced blocks, then inline code spans outside them, each with ``inline``."""
    snippets: list[tuple[str, bool]] = []
    for match in FENCE.finditer(markdown):
        snippets += [(line, False) for line in match.group(2).splitlines()]
    outside = FENCE.sub("", markdown)
    snippets += [(m.group(2).strip(), True) for m in INLINE.finditer(outside)]
    return snippets


def _tokens(segment: str) -> list[str]:
    segment = segment.replace("[", " ").replace("]", " ")
    try:
        return shlex.split(segment, comments=True)
    except ValueError:  # an unbalanced quote in prose-like code: fall back to plain words
        return segment.split()


def _is_relais(token: str) -> bool:
    return token == "relais" or token.endswith("/relais")


def commands_in(snippet: str) -> list[list[str]]:
    """``relais`` invocations in one line of code: the arguments after the program name.

    In ``docker compose exec relais relais doctor`` or ``sudo -u relais …/bin/relais db backup F``
    the last ``relais`` of a shell segment is the program; a bare ``relais`` (a service or user
    name, ``systemctl restart relais``) or one followed by an option (``journalctl -u relais -f``)
    is not a command.
    """
    found = []
    line = snippet.strip()
    if line.startswith("$ "):
        line = line[2:]
    for segment in SEGMENT_SPLIT.split(line):
        tokens = _tokens(segment)
        positions = [i for i, token in enumerate(tokens) if _is_relais(token)]
        if not positions:
            continue
        args = tokens[positions[-1] + 1 :]
        args = [a for a in args if a not in {"...", "…"} and not re.fullmatch(r"[<>]\S*", a)]
        # "fr|en" style alternatives: the first one stands for the others.
        args = [a.split("|")[0] if "|" in a and not a.startswith("-") else a for a in args]
        if args and SUBCOMMAND.fullmatch(args[0]):
            found.append(args)
    return found


def all_doc_commands() -> list[tuple[str, list[str], bool]]:
    found = []
    for path in doc_files():
        for snippet, inline in code_snippets(path.read_text(encoding="utf-8")):
            for args in commands_in(snippet):
                found.append((str(path.relative_to(ROOT)), args, inline))
    return found


def parse_strictly(args: list[str], *, reference: bool = False) -> str | None:
    """None when the parser accepts ``args``; else what it said.

    Unknown commands and options always fail. A placeholder in capitals (``--guild ID``) stands
    for a value; a ``reference`` (inline code in prose naming a command, ``relais sms test``)
    may leave out its required arguments.
    """
    parser = build_parser()
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            parser.parse_args(args)
        except SystemExit as exc:
            if exc.code in (0, None):  # --help
                return None
            message = err.getvalue().strip() or f"exit {exc.code}"
            if re.search(r"invalid \w+ value: '[A-Z][A-Z_.]*'", message):
                return None
            if reference and "the following arguments are required" in message:
                return None
            return message
    return None


DOC_COMMANDS = all_doc_commands()


def test_the_docs_quote_many_commands() -> None:
    by_file: dict[str, int] = {}
    for path, _args, _inline in DOC_COMMANDS:
        by_file[path] = by_file.get(path, 0) + 1
    assert by_file.get("README.md", 0) >= 15
    assert by_file.get("deploy/SETUP.md", 0) >= 10


@pytest.mark.parametrize(
    ("path", "args", "inline"),
    DOC_COMMANDS,
    ids=[f"{p}: relais {' '.join(a)}" for p, a, _i in DOC_COMMANDS],
)
def test_documented_command_exists_with_its_options(
    path: str, args: list[str], inline: bool
) -> None:
    problem = parse_strictly(args, reference=inline)
    assert problem is None, f"{path}: `relais {' '.join(args)}` is refused: {problem}"


def test_the_checker_refuses_unknown_commands_and_options() -> None:
    markdown = (
        "Run `relais stats --bogus` or:\n\n```sh\n"
        "docker compose exec relais relais frobnicate\n"
        "sudo -u relais /opt/relais/.venv/bin/relais db backup\n"
        "journalctl -u relais -f && systemctl restart relais\n"
        "```\n"
    )
    commands = [args for s, _inline in code_snippets(markdown) for args in commands_in(s)]
    assert commands == [["frobnicate"], ["db", "backup"], ["stats", "--bogus"]]
    assert all(parse_strictly(args) is not None for args in commands)
    assert parse_strictly(["stats", "--bogus"], reference=True) is not None
    assert parse_strictly(["db", "backup", "x.db"]) is None
    assert parse_strictly(["db", "backup"], reference=True) is None
    assert parse_strictly(["discord", "sync", "--guild", "ID"]) is None
    assert parse_strictly(["discord", "sync", "--guild", "12x"]) is not None


def leaf_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[str]:
    """Every runnable command path of the parser: ``run``, ``faq ask``, ``db backup``…"""
    leaves = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                leaves += leaf_commands(sub, (*prefix, name))
    return leaves or [" ".join(prefix)]


def test_readme_documents_every_command() -> None:
    readme = [args for path, args, _inline in DOC_COMMANDS if path == "README.md"]
    documented = {" ".join(args[:2]) for args in readme} | {args[0] for args in readme}
    missing = [c for c in leaf_commands(build_parser()) if c not in documented]
    assert not missing, f"README.md does not show: {missing}"


def test_readme_configuration_table_lists_every_variable() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in VARIABLES if f"`{name}`" not in table]
    assert not missing, f"README.md configuration table lacks {missing}"


def test_docs_link_to_files_that_exist_or_are_owned_elsewhere() -> None:
    # Links to the privacy and Discord notes are written by other work; the rest must resolve.
    pending = {"docs/PRIVACY.md", "deploy/DISCORD.md"}
    for path in doc_files():
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue
            resolved = (path.parent / target).resolve()
            relative = resolved.relative_to(ROOT).as_posix() if ROOT in resolved.parents else target
            assert resolved.exists() or relative in pending, f"{path.name}: broken link {target}"
