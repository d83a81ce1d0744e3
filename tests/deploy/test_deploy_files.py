"""Deployment files: the systemd unit, the compose file, the Dockerfile and .dockerignore."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from waiting import STARTUP

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def read_unit() -> configparser.ConfigParser:
    # systemd allows repeated keys (SystemCallFilter=...): strict=False keeps the last one.
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    unit.read_string((DEPLOY / "relais.service").read_text(encoding="utf-8"))
    return unit


def test_unit_parses_with_its_sections() -> None:
    unit = read_unit()
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_unit_has_the_hardening_and_restart_policy() -> None:
    service = read_unit()["Service"]
    expected = {
        "User": "relais",
        "ProtectSystem": "strict",
        "ReadWritePaths": "/var/lib/relais",
        "ProtectHome": "true",
        "NoNewPrivileges": "true",
        "PrivateTmp": "true",
        "Restart": "on-failure",
        "KillSignal": "SIGTERM",
    }
    for key, value in expected.items():
        assert service.get(key) == value, key
    assert int(service["TimeoutStopSec"]) >= 15
    assert service["EnvironmentFile"].startswith("/etc/relais/")
    assert "RELAIS_DB=/var/lib/relais/" in service["Environment"]
    exec_start = service["ExecStart"].split()
    assert exec_start[0].endswith("/relais") and exec_start[1] == "run"


def test_unit_start_limits_are_in_the_unit_section() -> None:
    # In [Service] they are ignored by current systemd.
    unit = read_unit()
    assert "StartLimitBurst" in unit["Unit"] and "StartLimitBurst" not in unit["Service"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze absent")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at a binary present on this machine.
    text = (DEPLOY / "relais.service").read_text(encoding="utf-8")
    true = shutil.which("true") or "/bin/true"
    text = re.sub(r"^ExecStart=\S+", f"ExecStart={true}", text, flags=re.M)
    copy = tmp_path / "relais.service"
    copy.write_text(text, encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def load_compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_parses_with_volume_env_file_port_and_healthcheck() -> None:
    compose = load_compose()
    service = compose["services"]["relais"]
    assert service["restart"] == "unless-stopped"
    env_files = service["env_file"]
    env_files = [env_files] if isinstance(env_files, str) else env_files
    assert any(str(f).endswith(".env") for f in env_files)
    assert any(v.split(":")[1] == "/data" for v in service["volumes"])
    named = next(v.split(":")[0] for v in service["volumes"] if v.split(":")[1] == "/data")
    assert named in compose["volumes"]
    assert any(str(p).endswith("8080:8080") for p in service["ports"])
    assert service["environment"]["RELAIS_DB"] == "/data/relais.db"
    assert "/healthz" in " ".join(service["healthcheck"]["test"])
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_is_slim_non_root_with_volume_healthcheck_and_run() -> None:
    instructions = dockerfile_instructions()
    values = {}
    for keyword, rest in instructions:
        values.setdefault(keyword, []).append(rest)
    assert values["FROM"][0].startswith("python:3.11-slim")
    users = values["USER"]
    assert users and users[-1] not in {"root", "0"} and not users[-1].startswith("0:")
    # The user is set before the command runs, after the last RUN that needs root.
    order = [k for k, _ in instructions]
    assert order.index("USER") > max(i for i, k in enumerate(order) if k == "RUN")
    assert any("/data" in v for v in values["VOLUME"])
    assert any("RELAIS_DB=/data/relais.db" in v for v in values["ENV"])
    healthcheck = values["HEALTHCHECK"][0]
    assert "/healthz" in healthcheck and "urllib" in healthcheck and "curl" not in healthcheck
    assert '"relais", "run"' in values["CMD"][0]
    assert '"0.0.0.0"' in values["CMD"][0]
    # Every file the Dockerfile copies from the repository exists.
    for rest in values["COPY"]:
        if rest.startswith("--from="):
            continue
        for source in rest.split()[:-1]:
            assert (ROOT / source).exists(), source


def test_the_image_installs_the_locked_dependencies_then_the_wheel() -> None:
    runs = [rest for keyword, rest in dockerfile_instructions() if keyword == "RUN"]
    locked = next(i for i, run in enumerate(runs) if "--require-hashes" in run)
    assert "requirements.lock" in runs[locked]
    wheel = next(i for i, run in enumerate(runs) if ".whl" in run and "pip install" in run)
    assert wheel > locked and "--no-deps" in runs[wheel]
    assert not any(re.search(r"pip install .*(-e|--editable)\b", run) for run in runs)
    # The lock pins every package with hashes.
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==\S+", lock, re.M)
    assert {"discord-py", "twilio", "aiohttp", "aiosqlite"} <= {p.lower() for p in pins}
    assert lock.count("--hash=sha256:") >= len(pins)


def healthcheck_code() -> str:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    match = re.search(r'HEALTHCHECK .*CMD \["python", "-c", "(.*)"\]', text)
    assert match, "no python -c health check"
    return match.group(1)


def test_compose_and_dockerfile_run_the_same_healthcheck() -> None:
    assert load_compose()["services"]["relais"]["healthcheck"]["test"][-1] == healthcheck_code()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthcheck_passes_against_the_real_server_then_sigterm_stops_it(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "SMS_", "DISCORD_"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "RELAIS_SECRET": "x" * 40,
            "PUBLIC_BASE_URL": "https://relais.example.fr",
        }
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--port", str(port), "--db", "h.db"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    check = healthcheck_code().replace(":8080/", f":{port}/")
    try:
        deadline = time.monotonic() + STARTUP
        while True:
            result = subprocess.run(
                [sys.executable, "-c", check], capture_output=True, timeout=STARTUP
            )
            if result.returncode == 0:
                break
            assert server.poll() is None, server.communicate()[1]
            assert time.monotonic() < deadline, "the health check never passed"
            time.sleep(0.1)
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=STARTUP)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, err
    # Not a terminal: the service logs JSON lines on stdout, one event each (issue 10).
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines and all(line.startswith("{") for line in lines), out
    assert any('"event": "web_listening"' in line for line in lines), out
    # The health check failing is what marks the container unhealthy.
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, timeout=STARTUP)
    assert result.returncode != 0


def test_dockerignore_keeps_secrets_and_databases_out() -> None:
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".git", ".venv", "*.db"} <= patterns
