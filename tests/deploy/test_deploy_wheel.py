"""The wheel works once installed like any other package (not editable), from another folder.

One module, one build: the wheel is built from a copy of the sources, installed without its
dependencies into a fresh venv, and the commands staff use run there. The dependencies are those
of the running environment (installed from requirements-dev.lock by `make`), reached through a
path entry: no network, and the fresh venv's own site-packages, holding the wheel, comes first.
Slow (a build and a dozen new processes): the time limits are generous for a loaded machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PATIENCE = 600  # seconds, for a build or one command on a busy machine


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources (no build/ or egg-info in the work tree)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("bot", "referrals", "messages"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(dist), "."],
        cwd=source,
        check=True,
        timeout=PATIENCE,
    )
    [built] = dist.glob("relais-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed (not editable); returns its ``relais`` script."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=False, symlinks=os.name != "nt")
    python = env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
            timeout=PATIENCE,
        ).stdout.strip()
    )
    # The running environment's packages, after the venv's own: the dependencies. A path entry
    # added by a .pth file is not a site directory, so the editable install of the work tree
    # (itself a .pth there) is not seen.
    (site / "_relais_test_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        timeout=PATIENCE,
    )
    return python.parent / "relais"


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a staff member in a folder of their own, nothing Relais configured."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RELAIS_", "DISCORD_", "TWILIO_", "SMS_", "PYTHON"))
    }
    env.update(
        RELAIS_DB=str(tmp_path / "relais.db"),
        RELAIS_TZ="UTC",
        MPLCONFIGDIR=str(tmp_path / "mpl"),
        HOME=str(tmp_path),
    )
    yield env


def relais(
    script: Path, env: dict[str, str], cwd: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(script), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=PATIENCE,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
    return done


def test_the_wheel_carries_the_messages_and_migrations(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith("/fr/cli.yaml") for n in names)
    assert any(n.endswith("/en/faq/cej.yaml") for n in names)
    assert any(n.endswith("/fr/report/report.html.j2") for n in names)
    assert any(n.endswith("/fr/web/landing.html.j2") for n in names)
    assert any(n.endswith("facts.yaml") for n in names)
    assert any(n.startswith("referrals/migrations/") and n.endswith(".sql") for n in names)
    assert not any(n.startswith("tests/") for n in names)


def test_installed_commands_run_from_another_folder(
    installed: Path, elsewhere: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    # The package comes from the fresh venv, not from the work tree.
    where = subprocess.run(
        [str(installed.parent / "python"), "-c", "import bot; print(bot.__file__)"],
        capture_output=True,
        text=True,
        cwd=folder,
        env=elsewhere,
        timeout=PATIENCE,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(installed.parent.parent), where

    shutil.copy2(ROOT / "tests" / "data" / "rds-fauxmadrona.csv", folder / "people.csv")
    done = relais(installed, elsewhere, folder, "import", "people.csv")
    assert "500" in done.stderr

    figures = json.loads(relais(installed, elsewhere, folder, "stats", "--json").stdout)
    assert figures["participants"] == 500

    answer = relais(installed, elsewhere, folder, "faq", "ask", "c koi le cej", "--json")
    assert json.loads(answer.stdout.splitlines()[0])["id"] == "cej"

    relais(installed, elsewhere, folder, "report", "--out", "report.html")
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "<html" in html and "data:image/png;base64," in html

    talk = relais(installed, elsewhere, folder, "console", stdin="discord:alice /parrainage\n")
    assert "alice <-" in talk.stdout

    assert "FICHIER.csv" in relais(installed, elsewhere, folder, "import", "--help").stdout


def test_the_programme_overrides_one_file_of_the_installed_messages(
    installed: Path, elsewhere: dict[str, str], tmp_path: Path
) -> None:
    relais(installed, elsewhere, tmp_path, "messages", "export", "own")
    own = tmp_path / "own"
    assert (own / "fr" / "faq" / "cej.yaml").is_file() and (own / "facts.yaml").is_file()
    for path in sorted(own.rglob("*"), reverse=True):
        if path.is_file() and path.name != "cli.yaml":
            path.unlink()
    shipped = (own / "fr" / "cli.yaml").read_text(encoding="utf-8")
    (own / "fr" / "cli.yaml").write_text(
        shipped.replace("Base de connaissances valide.", "Les réponses sont prêtes."),
        encoding="utf-8",
    )
    env = {**elsewhere, "RELAIS_MESSAGES_DIR": str(own)}
    assert "Les réponses sont prêtes." in relais(installed, env, tmp_path, "faq", "check").stderr
    answer = relais(installed, env, tmp_path, "faq", "ask", "c koi le cej", "--json")
    assert json.loads(answer.stdout.splitlines()[0])["id"] == "cej"  # the rest is shipped
