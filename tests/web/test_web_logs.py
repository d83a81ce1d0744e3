"""Quiet, useful logs of a real ``relais serve`` (issue 20): tokens masked in the access log,
fields from outside bounded, an aborted body one warning line without traceback.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from bot.logging import MAX_FIELD, bound_fields
from bot.weblog import bound, mask_url

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60.0  # generous: nothing here depends on the machine's speed
ABORTED = 20
SECRETS = ("STOPTOKENsecret123456", "INVITEtokenSecret98765", "OAUTHcode4242", "OAUTHstate777")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``relais serve`` in a subprocess; its stdout (the JSON log) collected line by line."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TWILIO_", "SMS_", "DISCORD_", "RELAIS_", "PUBLIC_", "BACKUP_"))
        }
        env.update(
            PYTHONPATH=str(ROOT),
            RELAIS_SECRET="s" * 32,
            TWILIO_AUTH_TOKEN="t" * 32,
            PUBLIC_BASE_URL="https://relais.example.fr",
        )
        command = [sys.executable, "-m", "bot.cli", "serve", "--db", "relais.db"]
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, count: int = 1) -> None:
        deadline = time.monotonic() + WAIT
        while sum(text in line for line in list(self.lines)) < count:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"{text!r} x{count} not logged: {''.join(self.lines)[-2000:]}")
            time.sleep(0.05)

    def request(self, raw: bytes, *, read: bool = True) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=WAIT) as sock:
            sock.sendall(raw)
            if not read:
                return b""
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            return data

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=WAIT)
        self._reader.join(WAIT)
        assert self.process.stderr is not None
        return self.process.stderr.read()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    started = Server(tmp_path)
    try:
        started.wait_for("web_listening")
        yield started
    finally:
        if started.process.poll() is None:
            started.process.kill()
            started.process.wait(timeout=WAIT)


def get(path: str, **headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: relais.example.fr", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_access_log_masks_tokens_and_bounds_fields(server: Server) -> None:
    server.request(get(f"/stop/{SECRETS[0]}"))
    server.request(get(f"/i/{SECRETS[1]}"))
    server.request(get(f"/oauth/callback?code={SECRETS[2]}&state={SECRETS[3]}"))
    server.request(
        get("/r/ZZZZ-ZZZZ", **{"User-Agent": "A" * 5000, "Referer": f"https://x/i/{SECRETS[1]}"})
    )
    server.wait_for("aiohttp.access", 4)
    stderr = server.stop()
    log = "".join(server.lines)
    for secret in SECRETS:
        assert secret not in log and secret not in stderr
    access = [json.loads(line) for line in server.lines if '"aiohttp.access"' in line]
    targets = [entry["target"] for entry in access]
    assert "/stop/…" in targets and "/i/…" in targets
    assert "/oauth/callback?code=…&state=…" in targets
    for entry in access:
        for key, value in entry.items():
            if isinstance(value, str) and key != "event":
                assert len(value) <= MAX_FIELD, (key, len(value))
    assert max(len(entry["event"]) for entry in access) < 400


def test_aborted_bodies_are_one_warning_line_each(server: Server) -> None:
    for _ in range(ABORTED):
        server.request(
            b"POST /twilio/sms HTTP/1.1\r\nHost: x\r\nX-Twilio-Signature: abc\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 5000\r\n\r\n"
            b"From=%2B3361",
            read=False,
        )  # the connection closes here, 4,990 bytes short
    server.wait_for("client_disconnected", ABORTED)
    server.stop()
    log = "".join(server.lines)
    warnings = [json.loads(line) for line in server.lines if "client_disconnected" in line]
    assert len(warnings) == ABORTED
    assert all(w["level"] == "warning" and w["path"] == "/twilio/sms" for w in warnings)
    assert "Traceback" not in log and '"exception"' not in log
    assert '"level": "error"' not in log


def test_bound_and_mask_helpers() -> None:
    assert bound("x" * 500) == "x" * 99 + "…"
    assert bound("a\nb\x00") == "a\\x0ab\\x00"  # a field cannot forge a second log line
    assert mask_url("/stop/abc?x=1") == "/stop/…?x=1"
    assert mask_url("/oauth/callback?state=s&code=c") == "/oauth/callback?state=…&code=…"
    assert mask_url("/r/K7PM-4QXB") == "/r/K7PM-4QXB"  # a referral code is public


def test_every_logged_field_is_bounded() -> None:
    with structlog.testing.capture_logs(processors=[bound_fields]) as captured:
        structlog.get_logger("t").warning(
            "twilio_status", error_code="9" * 5000, nested={"agent": "B" * 500}, text="T" * 300
        )
    event: dict[str, Any] = captured[0]
    assert len(event["error_code"]) == MAX_FIELD and len(event["nested"]["agent"]) == MAX_FIELD
    assert len(event["text"]) == 300  # a staff post, bounded where it is made
