"""Serving helpers of ``relais serve`` and ``relais run`` (wired in ``bot.bootstrap``).

``serve`` runs the web server (Twilio webhooks, ``/healthz``, opt-out links, the ``/r/CODE``
landing page) and the outbound SMS worker until SIGTERM or SIGINT, then shuts down gracefully:
the site stops accepting requests, in-flight ones finish, the worker ends, the database is
checkpointed and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from aiohttp import web

from bot.logging import get_logger
from bot.ports import Reply
from bot.sms.errors import SmsSendError
from bot.weblog import AccessLogger

log = get_logger(__name__)

SHUTDOWN_TIMEOUT = 10.0


class LogNotifier:
    """Staff notifier without Discord (``relais serve``): staff posts go to the log."""

    async def notify_staff(self, reply: Reply) -> None:
        """Log the post (the logger masks phone numbers)."""
        log.warning("staff_notification", channel=reply.to.id, text=reply.text)


class NoTransport:
    """Transport used when Twilio is not configured: nothing can leave (the queue keeps it)."""

    async def send(self, to: str, body: str, *, status_callback: str | None = None) -> str:
        """Refuse: retry later, once the provider is configured."""
        log.warning("sms_not_configured")
        raise SmsSendError("not_configured", retryable=True)


def install_stop_signals(stop: asyncio.Event) -> None:
    """Set ``stop`` on SIGTERM and SIGINT."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def start_site(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving ``app``; the caller cleans the returned runner up."""
    runner = web.AppRunner(
        app, shutdown_timeout=SHUTDOWN_TIMEOUT, handle_signals=False, access_log_class=AccessLogger
    )
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def serve_until(
    app: web.Application, host: str, port: int, stop: asyncio.Event, sms: Any | None = None
) -> None:
    """Serve ``app`` (and run the SMS worker when ``sms`` is given) until ``stop`` is set."""
    runner = await start_site(app, host, port)
    log.info("web_listening", host=host, port=port)
    worker = asyncio.create_task(sms.run_worker(stop)) if sms is not None else None
    try:
        await stop.wait()
    finally:
        log.info("web_stopping")
        await runner.cleanup()
        if worker is not None:
            stop.set()
            try:
                async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                    await worker
            except TimeoutError:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
