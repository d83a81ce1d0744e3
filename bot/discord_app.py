"""The Discord bot: the ``commands.Bot`` subclass, its wiring (``relais run``), command sync and
the setup check (``relais discord sync`` / ``relais discord check``).

The bot is an adapter like the console: cogs turn interactions into calls on the conversation
engine and deliver its replies. Slash commands are never synced on start (Discord rate-limits
it): ``relais discord sync``, the staff command ``/synchro``, or a development-guild sync when
``DISCORD_GUILD_ID`` is set and ``RELAIS_DEV_SYNC=1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from bot.context import CliError, Context
from bot.discord_join import FETCH_ERRORS, JoinTracker
from bot.discord_tree import RelaisTree
from bot.logging import get_logger
from bot.ports import Reply, Target
from bot.settings import Settings
from referrals import discord_joins
from referrals.errors import RelaisError

if TYPE_CHECKING:
    from bot.bootstrap import App
    from bot.conversation import Conversation

log = get_logger(__name__)

EXTENSIONS = (
    "bot.cogs.referral",
    "bot.cogs.invites",
    "bot.cogs.faq",
    "bot.cogs.privacy",
    "bot.cogs.staff",
    "bot.cogs.events",  # scheduled events <-> the agenda of actions
    "bot.cogs.registry",  # last: covers the registry commands the others do not
)
SHUTDOWN_TIMEOUT = 10.0
INVITE_CAP = 1000  # Discord's limit of invites per server (error 30016)
INVITE_WARN = 900  # staff are told from here
INVITE_RECYCLE = 990  # from here the oldest never-used invite the bot made is deleted


def intents() -> discord.Intents:
    """Guilds, members (join attribution, staff roles in DMs), invites, bans, DMs; no content."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.members = True
    wanted.invites = True
    wanted.moderation = True  # on_member_ban / on_member_unban: banned members lose the bot
    wanted.dm_messages = True
    wanted.guild_scheduled_events = True  # the agenda: events created, "Intéressé" clicks
    wanted.guild_messages = False
    return wanted


class RelaisBot(commands.Bot):
    """The programme's bot; ``app`` is None only for ``relais discord sync`` (no database)."""

    def __init__(
        self,
        settings: Settings,
        app: App | None = None,
        *,
        dev_sync: bool = False,
        notifier: DiscordNotifier | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents(),
            tree_cls=RelaisTree,
            help_command=None,
            # Nothing the bot sends pings anyone: replies echo names and text people typed.
            allowed_mentions=discord.AllowedMentions.none(),
            **options,
        )
        self.settings = settings
        self._app = app
        self.dev_sync = dev_sync
        self.notifier = notifier or DiscordNotifier(settings)
        self.notifier.bind(self)
        self.joins = JoinTracker(self)

    @property
    def app(self) -> App:
        """The services (absent only for ``relais discord sync``, which never reaches them)."""
        assert self._app is not None
        return self._app

    @property
    def conversation(self) -> Conversation:
        """The conversation engine."""
        return self.services.conversation

    @property
    def services(self) -> App:
        """The running app (only ``relais discord sync`` and ``check`` have none)."""
        return self.app

    @property
    def has_app(self) -> bool:
        """Whether the services are there (not for ``relais discord sync`` and ``check``)."""
        return self._app is not None

    async def setup_hook(self) -> None:
        """Translator, extensions, persistent buttons; a dev-guild sync only when asked."""
        from bot.cogs.base import RelaisButton
        from bot.translator import RelaisTranslator

        await self.tree.set_translator(RelaisTranslator())
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        self.add_dynamic_items(RelaisButton)
        if self.has_app and self.settings.discord_guild_id:
            # Before the gateway connects: a join delivered with GUILD_CREATE, before on_ready,
            # is then compared with real counts, not with an empty cache.
            await self.joins.load_at_start(self.settings.discord_guild_id)
        if self.dev_sync and self.settings.discord_guild_id:
            guild = discord.Object(id=self.settings.discord_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("dev_guild_synced", guild=guild.id, count=len(synced))

    async def on_message(self, message: discord.Message) -> None:
        """No prefix commands: DMs are handled by the faq cog's listener."""

    def guild(self) -> discord.Guild | None:
        """The programme's server: ``DISCORD_GUILD_ID``, else the only server the bot is on."""
        if self.settings.discord_guild_id:
            return self.get_guild(self.settings.discord_guild_id)
        return self.guilds[0] if len(self.guilds) == 1 else None


# ---------------------------------------------------------------- ports implemented on Discord


def find_channel(guild: discord.Guild, wanted: str) -> discord.TextChannel | None:
    """A text channel by id or by name (with or without '#', any case)."""
    wanted = wanted.strip().lstrip("#")
    for channel in guild.text_channels:
        if str(channel.id) == wanted or channel.name.casefold() == wanted.casefold():
            return channel
    return None


class DiscordNotifier:
    """Posts staff messages in ``DISCORD_STAFF_CHANNEL`` (a name or an id)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bot: RelaisBot | None = None

    def bind(self, bot: RelaisBot) -> None:
        """Attach the bot once it exists (the app is built before it)."""
        self.bot = bot

    def channel(self) -> discord.abc.Messageable | None:
        """The staff channel, if the bot can see it."""
        if self.bot is None:
            return None
        wanted = self.settings.discord_staff_channel
        if wanted.isdigit():
            found = self.bot.get_channel(int(wanted))
            if found is not None:
                # get_channel may name a category or a forum; a misconfigured id fails on send.
                return found  # type: ignore[return-value]
        guild = self.bot.guild()
        guilds = [guild] if guild is not None else list(self.bot.guilds)
        for item in guilds:
            channel = find_channel(item, wanted)
            if channel is not None:
                return channel
        return None

    async def notify_staff(self, reply: Reply) -> None:
        """Post the reply (with its buttons and files) in the staff channel."""
        from bot.cogs.base import message_parts

        if self.bot is not None and not self.bot.is_ready():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30):
                    await self.bot.wait_until_ready()
        channel = self.channel()
        if channel is None:
            log.error("staff_channel_missing", channel=self.settings.discord_staff_channel)
            return
        try:
            for part in message_parts(reply):
                await channel.send(**part)
        except discord.HTTPException as exc:
            log.error("staff_post_failed", status=getattr(exc, "status", None))


class DiscordInviteMaker:
    """Creates a unique invite for one member, and keeps the server under Discord's cap.

    Discord allows 1,000 invites per server (error 30016). With ``PUBLIC_BASE_URL`` set the
    personal links are landing-page links and no invite is made per member; without it, when
    the count nears the cap the oldest invite the bot made that was never used is deleted (its
    owner gets a new one on their next ``/parrainage``), and staff are told once at 900."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bot: RelaisBot | None = None
        self.warned = False

    def bind(self, bot: RelaisBot) -> None:
        """Attach the bot once it exists."""
        self.bot = bot

    def invite_channel(self, guild: discord.Guild) -> discord.abc.GuildChannel | None:
        """Where invites lead: the rules or system channel if allowed, else the first allowed."""
        me = guild.me
        preferred = [guild.rules_channel, guild.system_channel, *guild.text_channels]
        for channel in preferred:
            if channel is not None and channel.permissions_for(me).create_instant_invite:
                return channel
        return None

    async def create_invite(self, member_name: str) -> str:
        """The invite's code; a clear domain error when Discord refuses."""
        guild = self.bot.guild() if self.bot is not None else None
        channel = self.invite_channel(guild) if guild is not None else None
        if channel is None or guild is None:
            log.error("invite_channel_missing")
            raise RelaisError("discord.invite_failed")
        await self.make_room(guild)
        try:
            invite = await channel.create_invite(max_age=0, max_uses=0, unique=True)
        except discord.HTTPException as exc:
            log.error("invite_create_failed", status=getattr(exc, "status", None))
            raise RelaisError("discord.invite_failed") from exc
        except FETCH_ERRORS as exc:
            log.error("invite_create_failed", error=type(exc).__name__)
            raise RelaisError("discord.invite_failed") from exc
        # The invite-create event will also arrive; caching now closes the gap before it does.
        if self.bot is not None:
            self.bot.joins.invite_created(invite)
        return invite.code

    async def make_room(self, guild: discord.Guild) -> None:
        """Near the cap: warn staff (once), delete the oldest never-used invite the bot made."""
        assert self.bot is not None
        count = len(self.bot.joins.ledgers[guild.id].invites)
        if count >= INVITE_WARN and not self.warned and self.bot.has_app:
            self.warned = True
            texts = self.bot.app.texts
            text = texts.render(
                "discord.invites_near_cap", self.settings.lang, count=count, cap=INVITE_CAP
            )
            await self.bot.app.router.deliver(  # the staff post, through the router
                [
                    Reply(
                        Target("channel", self.settings.discord_staff_channel),
                        text,
                        ephemeral=False,
                    )
                ]
            )
        if count < INVITE_RECYCLE:
            return
        try:
            invites = await guild.invites()
        except FETCH_ERRORS as exc:
            log.warning("invite_recycle_failed", error=type(exc).__name__)
            return
        me = self.bot.user.id if self.bot.user is not None else None
        unused = [
            i
            for i in invites
            if not i.uses and i.inviter is not None and i.inviter.id == me and i.created_at
        ]
        for invite in sorted(unused, key=lambda i: i.created_at or 0)[
            : len(invites) - INVITE_RECYCLE + 1
        ]:
            await self.delete_invite(invite.code)
            self.bot.joins.invite_deleted(invite)
            if self.bot.has_app:
                await self.bot.app.db.write(discord_joins.drop_invite_link, invite.code)
            log.info("invite_recycled")

    async def delete_invite(self, code: str) -> None:
        """Delete an invite (``/oublier``, recycling); gone already or refused: logged only."""
        if self.bot is None:
            return
        try:
            await self.bot.http.delete_invite(code)
        except discord.NotFound:
            pass
        except FETCH_ERRORS as exc:
            log.warning("invite_delete_failed", error=type(exc).__name__)


class DiscordDelivery:
    """The delivery router's Discord channel: DMs to members and posts in the staff channel.

    Returns False (the reply then waits in the outbox, its attempts counted) while the gateway
    is not ready, when the staff channel cannot be found, or when a DM is refused (closed DMs,
    a user gone).
    """

    def __init__(self, bot: RelaisBot) -> None:
        self.bot = bot

    async def deliver(self, reply: Reply) -> bool:
        """Send one reply addressed to a Discord user or to the staff channel."""
        from bot.cogs.base import message_parts, send_dm

        if not self.bot.is_ready() or self.bot.is_closed():
            return False
        if reply.to.kind == "channel":
            channel = self.bot.notifier.channel()
            if channel is None:
                log.error("staff_channel_missing", channel=self.bot.settings.discord_staff_channel)
                return False
            try:
                for part in message_parts(reply):
                    await channel.send(**part)
            except discord.HTTPException as exc:
                log.error("staff_post_failed", status=getattr(exc, "status", None))
                return False
            return True
        # A closed DM or a user gone: False, and the router keeps the reply in the outbox.
        return await send_dm(self.bot, reply.to.id, reply)

    def ready(self) -> bool:
        """Whether the gateway is up (before READY, the outbox is not tried: no attempt is
        counted against what waits)."""
        return self.bot.is_ready() and not self.bot.is_closed()


# ---------------------------------------------------------------- relais discord sync / check


async def _login(ctx: Context, bot: RelaisBot) -> None:
    try:
        await bot.login(ctx.settings.discord_token or "")
    except discord.LoginFailure as exc:
        raise CliError(ctx.t("discord.bad_token")) from exc
    except (discord.HTTPException, OSError) as exc:
        raise CliError(ctx.t("discord.cannot_connect", reason=type(exc).__name__)) from exc


async def cmd_discord_sync(ctx: Context) -> int:
    """``relais discord sync [--guild ID]``: publish the commands (a guild: instantly)."""
    ctx.settings.require("DISCORD_TOKEN")
    bot = RelaisBot(ctx.settings)
    async with bot:
        await _login(ctx, bot)  # runs setup_hook: the translator and every extension
        guild_id = getattr(ctx.args, "guild", None)
        if guild_id:
            guild = discord.Object(id=guild_id)
            bot.tree.copy_global_to(guild=guild)
            synced = await bot.tree.sync(guild=guild)
        else:
            synced = await bot.tree.sync()
    print(ctx.t("discord.synced", count=len(synced), guild=guild_id))
    return 0


PERMISSIONS = (
    "manage_guild",
    "manage_channels",
    "create_instant_invite",
    "send_messages",
    "embed_links",
    "attach_files",
    "manage_events",  # actions mirrored as the server's scheduled events (issue 22)
)

Findings = list[tuple[bool, str, dict[str, Any]]]


def check_lines(ctx: Context, findings: Findings) -> list[str]:
    """Plain-words lines for the check's findings."""
    lines = [ctx.t("discord.check.title")]
    for ok, key, params in findings:
        what = ctx.t(f"discord.check.{key}", **params)
        lines.append(ctx.t("discord.check.ok" if ok else "discord.check.missing", detail=what))
    problems = sum(1 for ok, _k, _p in findings if not ok)
    lines.append(
        ctx.t("discord.check.all_good")
        if not problems
        else ctx.t("discord.check.problems", count=problems)
    )
    return lines


CHECK_ERRORS = FETCH_ERRORS  # any refusal or network failure becomes a line


def _failure(exc: BaseException) -> dict[str, Any]:
    """The parameters of a 'Discord refused' line: HTTP status and Discord's error code."""
    if isinstance(exc, discord.HTTPException):
        return {"reason": f"{exc.status} ({exc.code})"}
    return {"reason": type(exc).__name__}


async def cmd_discord_check(ctx: Context) -> int:
    """``relais discord check``: what is missing, in plain words; exit 1 when something is.

    Never raises on a Discord refusal: each one becomes a line (the members intent, a missing
    permission, an interactions endpoint URL that diverts the commands...)."""
    ctx.settings.require("DISCORD_TOKEN")
    settings = ctx.settings
    bot = RelaisBot(settings)
    findings: Findings = []
    async with bot:
        await _login(ctx, bot)
        findings.append((True, "token", {"name": str(bot.user)}))
        try:
            info = await bot.application_info()
        except CHECK_ERRORS as exc:
            findings.append((False, "app_info_failed", _failure(exc)))
        else:
            flags = info.flags
            members = bool(flags.gateway_guild_members or flags.gateway_guild_members_limited)
            findings.append(
                (members, "members_intent" if members else "members_intent_missing", {})
            )
            endpoint = info.interactions_endpoint_url
            findings.append(
                (
                    not endpoint,
                    "interactions_endpoint" if not endpoint else "interactions_endpoint_set",
                    {"url": endpoint or ""},
                )
            )
        findings.append((True, "message_content", {}))
        try:
            guild = await _check_guild(bot, settings, findings)
        except CHECK_ERRORS as exc:
            findings.append((False, "guild_failed", _failure(exc)))
            guild = None
        if guild is not None:
            await _check_guild_setup(ctx, bot, guild, findings)
    for line in check_lines(ctx, findings):
        print(line)
    return 0 if all(ok for ok, _k, _p in findings) else 1


async def _check_guild(
    bot: RelaisBot, settings: Settings, findings: Findings
) -> discord.Guild | None:
    if settings.discord_guild_id:
        try:
            guild = await bot.fetch_guild(settings.discord_guild_id)
        except discord.HTTPException:
            findings.append((False, "guild_not_found", {"value": settings.discord_guild_id}))
            return None
    else:
        guilds = [g async for g in bot.fetch_guilds(limit=10)]
        if not guilds:
            findings.append((False, "no_guild", {}))
            return None
        if len(guilds) > 1:
            findings.append((False, "several_guilds", {"count": len(guilds)}))
            return None
        guild = await bot.fetch_guild(guilds[0].id)
    findings.append((True, "guild", {"name": guild.name}))
    return guild


async def _check_guild_setup(
    ctx: Context, bot: RelaisBot, guild: discord.Guild, findings: Findings
) -> None:
    """Permissions, staff role and channel, invite count; each refusal is one line."""
    settings = ctx.settings
    assert bot.user is not None
    try:
        me = await guild.fetch_member(bot.user.id)
    except CHECK_ERRORS as exc:
        findings.append((False, "member_failed", _failure(exc)))
        return
    granted = me.guild_permissions
    for name in PERMISSIONS:
        ok = bool(getattr(granted, name))
        findings.append(
            (
                ok,
                "permission" if ok else "permission_missing",
                {"name": ctx.t(f"discord.perm.{name}")},
            )
        )
    wanted = settings.discord_staff_role.strip()
    role = next(
        (r for r in guild.roles if str(r.id) == wanted or r.name.casefold() == wanted.casefold()),
        None,
    )
    if role is None:
        findings.append((False, "staff_role_missing", {"name": wanted}))
    else:
        try:
            count = 0
            async for member in guild.fetch_members(limit=None):
                count += role in member.roles
        except discord.Forbidden:
            # Without the Server Members intent the member list is refused (50001).
            findings.append((False, "staff_role_uncounted", {"name": role.name}))
        except CHECK_ERRORS as exc:
            findings.append((False, "staff_role_uncounted", {"name": role.name, **_failure(exc)}))
        else:
            findings.append(
                (
                    count > 0,
                    "staff_role" if count else "staff_role_empty",
                    {"name": role.name, "count": count},
                )
            )
    await _check_staff_channel(guild, me, role, settings, findings)
    if granted.manage_guild:
        try:
            invites = len(await guild.invites())
        except CHECK_ERRORS as exc:
            findings.append((False, "invites_failed", _failure(exc)))
        else:
            ok = invites < INVITE_WARN
            findings.append(
                (ok, "invites" if ok else "invites_near_cap", {"count": invites, "cap": INVITE_CAP})
            )


async def _check_staff_channel(
    guild: discord.Guild,
    me: discord.Member,
    role: discord.Role | None,
    settings: Settings,
    findings: Findings,
) -> None:
    try:
        channels = await guild.fetch_channels()
    except CHECK_ERRORS as exc:
        findings.append((False, "channels_failed", _failure(exc)))
        return
    wanted_channel = settings.discord_staff_channel.strip().lstrip("#")
    channel = next(
        (
            c
            for c in channels
            if isinstance(c, discord.TextChannel)
            and (str(c.id) == wanted_channel or c.name.casefold() == wanted_channel.casefold())
        ),
        None,
    )
    if channel is None:
        findings.append((False, "staff_channel_missing", {"name": wanted_channel}))
        return
    allowed = channel.permissions_for(me)
    ok = allowed.view_channel and allowed.send_messages
    findings.append((ok, "staff_channel" if ok else "staff_channel_mute", {"name": channel.name}))
    if role is not None:
        seen = channel.permissions_for(role).view_channel
        findings.append(
            (
                seen,
                "staff_channel_seen" if seen else "staff_channel_hidden",
                {"name": channel.name, "role": role.name},
            )
        )


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: relais run")
