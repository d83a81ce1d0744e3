"""``relais serve`` / ``relais run``: serving until a signal, graceful shutdown, clear refusals."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
from sms_support import make_service, make_settings, open_db, web_app_for
from waiting import PATIENCE, STARTUP

from bot.bootstrap import cmd_run
from bot.cli import Context
from bot.runner import serve_until
from referrals.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_run_refuses_without_discord_token(tmp_path: Path) -> None:
    ctx = Context(make_settings(), argparse.Namespace(db=str(tmp_path / "t.db")))
    with pytest.raises(ConfigError) as info:
        await cmd_run(ctx)
    assert info.value.params == {"name": "DISCORD_TOKEN"}
    assert "DISCORD_TOKEN" in ctx.t(info.value.key, **info.value.params)


async def test_serve_until_stop_then_shuts_down(tmp_path: Path) -> None:
    db = await open_db(tmp_path / "t.db")
    try:
        sms = await make_service(db)
        app = web_app_for(sms)
        stop = asyncio.Event()
        port = free_port()
        task = asyncio.create_task(serve_until(app, "127.0.0.1", port, stop, sms))
        async with aiohttp.ClientSession() as session:
            deadline = asyncio.get_running_loop().time() + PATIENCE
            while True:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                        assert response.status == 200
                        break
                except aiohttp.ClientConnectorError:
                    if asyncio.get_running_loop().time() > deadline:
                        pytest.fail("server did not start")
                    await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, PATIENCE)
        with pytest.raises(aiohttp.ClientConnectorError):
            async with aiohttp.ClientSession() as session:
                await session.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        await db.close()


async def test_relais_serve_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "SMS_", "DISCORD_"))}
    env.update({"RELAIS_SECRET": "s", "PUBLIC_BASE_URL": "https://relais.example.fr"})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "serve",
        "--port",
        str(port),
        "--db",
        str(tmp_path / "serve.db"),
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as session:
            # A new process imports everything first: seconds on a loaded machine.
            deadline = asyncio.get_running_loop().time() + STARTUP
            while True:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                        assert await response.json() == {"status": "ok", "db": "ok"}
                        break
                except aiohttp.ClientConnectorError:
                    if process.returncode is not None:
                        break
                    if asyncio.get_running_loop().time() > deadline:
                        pytest.fail("relais run did not start")
                    await asyncio.sleep(0.05)
        assert process.returncode is None, (await process.stderr.read()).decode()  # type: ignore[union-attr]
        process.send_signal(signal.SIGTERM)
        stdout, _stderr = await asyncio.wait_for(process.communicate(), STARTUP)
        assert process.returncode == 0
        # The service's stdout is its log: JSON lines only, the shutdown logged.
        lines = stdout.decode().splitlines()
        assert lines and all(line.startswith("{") for line in lines)
        assert any('"event": "web_stopping"' in line for line in lines)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
