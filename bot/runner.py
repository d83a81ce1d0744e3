"""``relais serve`` and ``relais run``: the long-running processes.

``serve`` runs the web server (Twilio webhooks, ``/healthz``, opt-out links, the ``/r/CODE``
landing page) and the outbound SMS worker until SIGTERM or SIGINT, then shuts down gracefully:
the site stops accepting requests, in-flight ones finish, the worker ends, the database is
checkpointed and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.logging import get_logger
from bot.ports import Reply

if TYPE_CHECKING:
    from bot.cli import Context

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
        from bot.sms.errors import SmsSendError

        raise SmsSendError("not_configured", retryable=True)


def install_stop_signals(stop: asyncio.Event) -> None:
    """Set ``stop`` on SIGTERM and SIGINT."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def start_site(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving ``app``; the caller cleans the returned runner up."""
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT, handle_signals=False)
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


async def cmd_serve(ctx: Context) -> int:
    """``relais serve [--host H] [--port P]``: the web server only, no Discord."""
    from bot.app import build_app
    from bot.landing import setup_landing
    from bot.maintenance import maintenance_loop
    from bot.sms.twilio_transport import TwilioTransport
    from bot.web import create_app

    settings = ctx.settings
    if not settings.public_base_url:
        print(ctx.t("sms.public_url_missing"), file=sys.stderr)
    transport: Any = TwilioTransport(settings) if settings.twilio_configured else NoTransport()
    services = await build_app(settings, ctx.db_path, transport=transport, notifier=LogNotifier())
    try:
        app = create_app(settings=settings, texts=services.texts, db=services.db, sms=services.sms)
        setup_landing(app, conversation=services.conversation)
        stop = asyncio.Event()
        install_stop_signals(stop)
        worker_sms = services.sms if settings.twilio_configured else None
        # Retention, backups and burst alerts; it ends with ``stop`` (after the site).
        maintenance = asyncio.create_task(maintenance_loop(services, stop))
        await serve_until(app, ctx.args.host, ctx.args.port, stop, worker_sms)
        await maintenance
    finally:
        if isinstance(transport, TwilioTransport):
            await transport.close()
        await services.close()
    return 0


async def cmd_run(ctx: Context) -> int:
    """``relais run``: the Discord bot and the web server in one process."""
    ctx.settings.require("DISCORD_TOKEN")
    from bot.discord_app import run_bot

    return await run_bot(ctx)
