"""The composition root: the one place that builds and wires every service (SPEC §1).

``build_app`` opens the database and builds texts, the FAQ engine, the SMS service, the delivery
router and the conversation engine; the three long-running commands differ only in the channels
they attach to the router and the adapters they start:

- ``relais run``: Discord (gateway, DMs, staff channel), the web server, the SMS worker;
- ``relais serve``: the web server and the SMS worker; Discord-bound replies wait in the outbox;
- ``relais console``: the printing transport for every channel.

Only this module and ``bot.cli`` import adapters of several channels (an architecture test
checks it). A new channel plugs in here: one adapter module, one ``Channel`` value in
``bot.ports``, one ``router.attach`` line; the brain does not change.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bot import console
from bot.checkin import setup_checkin
from bot.context import CliError, Context
from bot.conversation import Conversation
from bot.delivery import Deliverer, DeliveryRouter
from bot.faq import FaqEngine
from bot.faq_model import DEFAULT_METHOD
from bot.landing import setup_landing
from bot.logging import get_logger
from bot.maintenance import TICK as MAINTENANCE_TICK
from bot.maintenance import maintenance_loop
from bot.ports import InviteMaker, Reply, SmsTransport, StaffNotifier
from bot.report import keep_snapshot
from bot.runner import SHUTDOWN_TIMEOUT, NoTransport, install_stop_signals, serve_until
from bot.settings import Settings
from bot.sms.service import SmsService
from bot.sms.twilio_transport import TwilioTransport
from bot.texts import Texts, resolve_messages_dir
from bot.web import create_app
from referrals import analytics, dialogue
from referrals.service import ReferralService
from referrals.store import Database

if TYPE_CHECKING:
    from bot.discord_app import RelaisBot

log = get_logger(__name__)

OUTBOX_READY_TIMEOUT = 120.0  # seconds to wait for the gateway before the first outbox flush


@dataclass
class App:
    """The services of one running Relais."""

    settings: Settings
    db: Database
    texts: Texts
    referrals: ReferralService
    faq: FaqEngine
    sms: SmsService
    conversation: Conversation
    router: DeliveryRouter

    async def close(self) -> None:
        """Close the database (checkpointing the WAL)."""
        await self.db.close()


class NotifierDelivery:
    """A plain staff notifier used as the router's ``channel`` deliverer (tests, tools)."""

    def __init__(self, notifier: StaffNotifier) -> None:
        self.notifier = notifier

    async def deliver(self, reply: Reply) -> bool:
        """Hand the post to the notifier."""
        await self.notifier.notify_staff(reply)
        return True


async def build_app(
    settings: Settings,
    db_path: Path,
    *,
    transport: SmsTransport,
    notifier: StaffNotifier | None = None,
    invites: InviteMaker | None = None,
    channels: dict[str, Deliverer] | None = None,
    messages_dir: Path | None = None,
) -> App:
    """Open the database and build the services around it.

    ``channels`` are the router's deliverers by target kind; ``notifier`` (a shortcut kept for
    tools and tests) becomes the ``channel`` deliverer.
    """
    if messages_dir is None:  # the shipped messages overlaid by RELAIS_MESSAGES_DIR
        messages_dir = await asyncio.to_thread(resolve_messages_dir, settings.messages_dir)
    texts = Texts(messages_dir, default_lang=settings.lang)
    db = await Database.open(db_path)
    try:
        # Training can take seconds on a cold cache: off the event loop.
        learnt = await db.read(dialogue.learnt_examples)
        faq = await asyncio.to_thread(
            FaqEngine.load, messages_dir, None, settings.lang, DEFAULT_METHOD, learnt
        )
        referrals = ReferralService(db)
        router = DeliveryRouter(db)
        for kind, deliverer in (channels or {}).items():
            router.attach(kind, deliverer)
        if notifier is not None:
            router.attach("channel", NotifierDelivery(notifier))
        sms = SmsService(db, settings, texts, transport, router)
        await sms.start()
    except BaseException:
        await db.close()
        raise
    conversation = Conversation(
        settings=settings,
        texts=texts,
        referrals=referrals,
        faq=faq,
        sms=sms,
        notifier=router,
        invites=invites,
    )
    conversation.agenda.deliver = router.deliver  # action reminders and evaluations
    return App(settings, db, texts, referrals, faq, sms, conversation, router)


def sms_transport(settings: Settings) -> SmsTransport:
    """Twilio when configured, else the transport that keeps everything queued."""
    if settings.twilio_configured:
        return TwilioTransport(settings)
    log.warning("twilio_not_configured")
    return NoTransport()


async def _close_transport(transport: SmsTransport) -> None:
    if isinstance(transport, TwilioTransport):
        await transport.close()


def web_app(app: App) -> Any:
    """The aiohttp application: Twilio webhooks, opt-out links, health, the landing page."""
    web = create_app(
        settings=app.settings,
        texts=app.texts,
        db=app.db,
        sms=app.sms,
        conversation=app.conversation,
        router=app.router,
    )
    setup_landing(web, conversation=app.conversation, deliver=app.router.deliver)
    setup_checkin(web, conversation=app.conversation)  # /a/CODE: an action's QR code
    return web


# ---------------------------------------------------------------- relais serve


async def cmd_serve(ctx: Context) -> int:
    """``relais serve [--host H] [--port P]``: the web server only, no Discord."""
    settings = ctx.settings
    if not settings.public_base_url:
        print(ctx.t("sms.public_url_missing"), file=sys.stderr)
    transport = sms_transport(settings)
    app = await build_app(settings, ctx.db_path, transport=transport)
    try:
        stop = asyncio.Event()
        install_stop_signals(stop)
        worker_sms = app.sms if settings.twilio_configured else None
        # Retention, backups and burst alerts; it ends with ``stop`` (after the site).
        maintenance = asyncio.create_task(maintenance_loop(app, stop))
        await serve_until(web_app(app), ctx.args.host, ctx.args.port, stop, worker_sms)
        await maintenance
    finally:
        await _close_transport(transport)
        await app.close()
    return 0


# ---------------------------------------------------------------- relais run


async def _flush_when_ready(bot: RelaisBot, router: DeliveryRouter) -> None:
    """What waited in the outbox (``relais serve``, a gateway outage) leaves once connected."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(OUTBOX_READY_TIMEOUT):
            await bot.wait_until_ready()
            await router.flush()


async def warm_figures(app: App) -> None:
    """Compute the figures on the reader connection at start-up (in its thread, off the event
    loop) and draw their charts in worker threads, so that the first ``/stats`` on an unchanged
    database does not pay for them (issue 19)."""
    try:
        figures, extra = await app.db.read(analytics.staff_figures, None, None, app.settings.tz)
        charts = await asyncio.to_thread(importlib.import_module, "bot.charts")
        lang = app.settings.lang
        labels = charts.chart_labels(lambda key: app.conversation.t(key, lang))
        # Drawn as /stats draws them (in the staff's usual language); kept by their inputs.
        await charts.timeline_chart_async(extra["timeline"], labels)
        await charts.cohorts_chart_async(extra["cohorts"], labels)
        await charts.waves_chart_async(figures["waves"], labels)
    except Exception:  # a cold /stats later is all it costs
        log.warning("figures_not_warmed", exc_info=True)
    # Left in the database for `relais report`, which then reads only what changed since.
    await keep_snapshot(app.db)


class DiscordRun:
    """The Discord side of ``relais run``: the bot over the app, its channels attached to the
    delivery router, the gateway, the outbox flushed at READY and every minute (the
    maintenance loop, which also runs the agenda and the daily job).

    ``relais run`` adds the web server; the fake-gateway tests use this class as it is, so that
    what they see is what production does.
    """

    def __init__(self, app: App, bot: RelaisBot) -> None:
        self.app = app
        self.bot = bot
        self.stop = asyncio.Event()
        self.gateway: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(
        cls,
        settings: Settings,
        db_path: Path,
        *,
        transport: SmsTransport,
        **bot_options: Any,
    ) -> DiscordRun:
        """Build the app and the bot; Discord DMs and staff posts go through the router."""
        # Discord is loaded by ``relais run`` only: ``serve`` and ``console`` start faster
        # without it (no cycle hides here: the architecture test checks function-level imports).
        from bot import discord_app

        notifier = discord_app.DiscordNotifier(settings)
        invites = discord_app.DiscordInviteMaker(settings)
        app = await build_app(settings, db_path, transport=transport, invites=invites)
        bot = discord_app.RelaisBot(
            settings, app, dev_sync=settings.dev_sync, notifier=notifier, **bot_options
        )
        invites.bind(bot)
        delivery = discord_app.DiscordDelivery(bot)
        app.router.attach("discord", delivery)
        app.router.attach("channel", delivery)
        return cls(app, bot)

    def start(self, token: str, *, tick: float = MAINTENANCE_TICK) -> asyncio.Task[None]:
        """Connect the gateway; flush the outbox at READY; the minute loop. Returns the
        gateway's task (it ends when the connection is closed for good)."""
        self.gateway = asyncio.create_task(self.bot.start(token))
        self._tasks = [
            asyncio.create_task(_flush_when_ready(self.bot, self.app.router)),
            asyncio.create_task(maintenance_loop(self.app, self.stop, tick)),
            asyncio.create_task(warm_figures(self.app)),
        ]
        return self.gateway

    async def close(self) -> None:
        """Stop the loops, close the gateway; replies for Discord wait in the outbox again.
        The database stays open (``App.close``)."""
        self.stop.set()
        for task in self._tasks[:1]:
            task.cancel()  # the READY flush, if the gateway never became ready
        await self.bot.close()
        # The gateway's failure is read by ``failure``; the flush may have been cancelled.
        await settle([*self._tasks, *([self.gateway] if self.gateway else [])])
        self.app.router.detach("discord")
        self.app.router.detach("channel")

    def failure(self) -> BaseException | None:
        """Why the gateway ended, if it failed."""
        gateway = self.gateway
        if gateway is None or not gateway.done() or gateway.cancelled():
            return None
        return gateway.exception()


async def settle(tasks: list[asyncio.Task[Any]]) -> None:
    """Give each task up to SHUTDOWN_TIMEOUT to end, then cancel it."""
    for task in tasks:
        try:
            async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
        except BaseException:
            pass


async def cmd_run(ctx: Context) -> int:
    """``relais run``: the Discord gateway, the web server and the SMS worker until SIGTERM."""
    ctx.settings.require("DISCORD_TOKEN")
    return await run_bot(ctx)


async def run_bot(ctx: Context) -> int:
    """``relais run``: the gateway, the web server and the SMS worker until SIGTERM."""
    import discord

    settings = ctx.settings
    settings.require("DISCORD_TOKEN")
    transport = sms_transport(settings)
    run = await DiscordRun.open(settings, ctx.db_path, transport=transport)
    app = run.app
    stop = run.stop
    install_stop_signals(stop)
    host = getattr(ctx.args, "host", None) or "127.0.0.1"
    port = getattr(ctx.args, "port", None)
    port = 8080 if port is None else port
    try:
        async with run.bot:
            web = asyncio.create_task(serve_until(web_app(app), host, port, stop, app.sms))
            gateway = run.start(settings.discord_token or "")
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({web, gateway, stopping}, return_when=asyncio.FIRST_COMPLETED)
            log.info("shutting_down")
            await run.close()
            await settle([web, stopping])  # the web server's failure is read just below
            failure = run.failure()
            if isinstance(failure, discord.LoginFailure):
                raise CliError(ctx.t("discord.bad_token"))
            if isinstance(failure, discord.PrivilegedIntentsRequired):
                raise CliError(ctx.t("discord.intents_refused"))
            if failure is not None:
                raise CliError(ctx.t("discord.cannot_connect", reason=type(failure).__name__))
            web_failure = web.exception() if web.done() and not web.cancelled() else None
            if web_failure is not None:
                log.error("web_server_failed", exc_info=web_failure)
                return 1
    finally:
        app.router.detach("discord")
        app.router.detach("channel")
        await _close_transport(transport)
        await app.close()
    return 0


# ---------------------------------------------------------------- relais console


async def run_console(
    settings: Settings, db_path: Path, stdin: TextIO, stdout: TextIO, interactive: bool
) -> int:
    """``relais console``: every channel is the printing transport."""
    output = console.ConsoleOutput(
        stdout, db_path.parent / "relais-files", settings.discord_staff_channel
    )
    app = await build_app(
        settings,
        db_path,
        transport=output,
        invites=output,
        channels={"discord": output, "channel": output, "sms": output},
    )
    try:
        return await console.console_loop(
            app.conversation, app.sms, output, settings, stdin, interactive
        )
    finally:
        await app.close()


async def cmd_console(ctx: Context) -> int:
    """``relais console``."""
    return await run_console(
        ctx.settings, ctx.db_path, sys.stdin, sys.stdout, interactive=sys.stdin.isatty()
    )
