"""kill -9 of a ``relais console`` in the middle of a burst: nothing acknowledged is lost."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

from privacy_support import console_command, console_env

ACK = re.compile(r"^discord:(u\d+) <- .*\*\*([0-9A-Z]{4}-[0-9A-Z]{4})\*\*")
LINES = 400


def _start(tmp_path: Path, db: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        console_command(db),
        cwd=tmp_path,
        env=console_env(tmp_path),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        encoding="utf-8",
    )


def _feed(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    try:
        for index in range(LINES):
            process.stdin.write(f"discord:u{index} /parrainage\n")
            process.stdin.write(f"discord:u{index} comment je m'inscris ?\n")
            process.stdin.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass  # killed: expected


def _acks_until(process: subprocess.Popen[str], count: int) -> dict[str, str]:
    assert process.stdout is not None
    acks: dict[str, str] = {}
    deadline = time.monotonic() + 60
    for line in process.stdout:
        match = ACK.match(line)
        if match:
            acks[match.group(1)] = match.group(2).replace("-", "")
        if len(acks) >= count or time.monotonic() > deadline:
            break
    return acks


def _check(db: Path, acks: dict[str, str]) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = dict(conn.execute("SELECT discord_id, code FROM participants").fetchall())
    finally:
        conn.close()
    assert acks, "the console acknowledged nothing"
    for name, code in acks.items():
        assert stored.get(name) == code, name


def test_kill_9_in_a_burst_loses_no_acknowledged_action(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    process = _start(tmp_path, db)
    feeder = threading.Thread(target=_feed, args=(process,), daemon=True)
    feeder.start()
    try:
        acks = _acks_until(process, 25)
        os.kill(process.pid, signal.SIGKILL)  # mid-burst: more lines are queued and in flight
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL
        # What was printed after our last read was acknowledged too.
        assert process.stdout is not None
        for line in process.stdout.read().splitlines():
            if match := ACK.match(line):
                acks[match.group(1)] = match.group(2).replace("-", "")
    finally:
        if process.poll() is None:
            process.kill()
    _check(db, acks)
    # The database opens again and the bot goes on.
    again = subprocess.run(
        console_command(db),
        cwd=tmp_path,
        env=console_env(tmp_path),
        input="discord:after /parrainage\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )
    assert again.returncode == 0 and "discord:after <-" in again.stdout


def test_sigterm_finishes_the_line_in_progress_then_exits(tmp_path: Path) -> None:
    db = tmp_path / "term.db"
    process = _start(tmp_path, db)
    feeder = threading.Thread(target=_feed, args=(process,), daemon=True)
    feeder.start()
    try:
        acks = _acks_until(process, 10)
        process.send_signal(signal.SIGTERM)
        assert process.stdout is not None
        rest = process.stdout.read()
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    for line in rest.splitlines():
        if match := ACK.match(line):
            acks[match.group(1)] = match.group(2).replace("-", "")
    _check(db, acks)
    wal = Path(str(db) + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # closed with a checkpoint
