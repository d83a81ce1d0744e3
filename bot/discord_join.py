"""Who brought a new member: Discord invite use counts compared on each join.

Discord does not say which invite a member used. Each guild's invite uses are cached (loaded over
REST in ``setup_hook``, before the gateway can deliver a join, again on every READY, and kept
current on invite create and delete); on each join, under a per-guild lock, fresh counts are
fetched and compared with the cache:

* one invite went up: certain;
* several went up (joins in a burst): ambiguous, the candidates are kept and no referral is
  counted until staff settle it (``/attribution``);
* none went up: unknown, except through the server's vanity URL (its own count) or an invite that
  Discord deleted on reaching its ``max_uses`` (it was at ``max_uses - 1``: that one, certain).

A join while the cache is not loaded (or after a failed fetch) is unknown, never a guess: its
fresh counts become the baseline. Uses seen but not yet matched with a join (two members joined
before the first join was handled) stay in a short-lived pool, so the second join is matched with
them rather than called unknown; the pool's window starts with its first use and does not slide.
Only the comparison and the database write hold the lock; DMs and staff posts happen after it.
The comparison is pure (``InviteLedger``); ``JoinTracker`` does the Discord and database work.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import discord

from bot.logging import get_logger
from bot.ports import Person, Reply, Target
from referrals import attributions, discord_joins

if TYPE_CHECKING:
    from bot.discord_app import RelaisBot

log = get_logger(__name__)

VANITY = "vanity"
POOL_TTL = 120.0  # seconds an unmatched use waits for its join event


@dataclass(frozen=True)
class InviteUse:
    """An invite's code, use count and limit (0: unlimited)."""

    code: str
    uses: int
    max_uses: int = 0


@dataclass(frozen=True)
class Attribution:
    """How one join was told apart."""

    status: Literal["certain", "ambiguous", "unknown", "vanity"]
    codes: tuple[str, ...] = ()

    @property
    def code(self) -> str | None:
        """The invite code when certain."""
        return self.codes[0] if self.status == "certain" else None


def used_invites(before: Mapping[str, InviteUse], after: Mapping[str, InviteUse]) -> Counter[str]:
    """Uses that happened between two snapshots, per invite code."""
    units: Counter[str] = Counter()
    for code, now in after.items():
        previous = before.get(code)
        delta = now.uses - (previous.uses if previous else 0)
        if delta > 0:
            units[code] += delta
    for code, previous in before.items():
        if code not in after and exhausted(previous):
            units[code] += 1
    return units


def exhausted(invite: InviteUse) -> bool:
    """True when one more use reaches the invite's limit (Discord then deletes it)."""
    return invite.max_uses > 0 and invite.uses == invite.max_uses - 1


@dataclass
class InviteLedger:
    """One guild's cached invite uses and the uses not yet matched with a join. No I/O."""

    invites: dict[str, InviteUse] = field(default_factory=dict)
    vanity_uses: int | None = None
    pool: Counter[str] = field(default_factory=Counter)
    consumed: int = 0  # joins matched ambiguously against the pool
    pool_at: float = 0.0
    ttl: float = POOL_TTL
    loaded: bool = False

    def load(self, invites: Iterable[InviteUse], vanity_uses: int | None = None) -> None:
        """Replace the cache (at start and on ready) and forget unmatched uses."""
        self.invites = {i.code: i for i in invites}
        self.vanity_uses = vanity_uses
        self.loaded = True
        self._clear()

    def unload(self) -> None:
        """The cache can no longer be trusted (a fetch failed): the next join re-baselines."""
        self.loaded = False
        self._clear()

    def created(self, invite: InviteUse) -> None:
        """An invite was created."""
        self.invites[invite.code] = invite

    def deleted(self, code: str, now: float) -> None:
        """An invite was deleted; one that was at its last use was used (join event may follow)."""
        previous = self.invites.pop(code, None)
        if previous is not None and exhausted(previous):
            self._add(Counter({code: 1}), now)

    def _add(self, units: Counter[str], now: float) -> None:
        if self.pool and now - self.pool_at > self.ttl:
            self._clear()
        if units:
            if not self.pool:
                self.pool_at = now  # the window starts with the first unmatched use
            self.pool.update(units)

    def _clear(self) -> None:
        self.pool.clear()
        self.consumed = 0

    def joined(
        self, fresh: Iterable[InviteUse], vanity_uses: int | None, now: float
    ) -> Attribution:
        """A member joined: compare the fresh counts with the cache, match one use."""
        after = {i.code: i for i in fresh}
        if not self.loaded:
            # Nothing to compare with: these counts are the baseline, and this join is unknown.
            self.load(after.values(), vanity_uses)
            return Attribution("unknown")
        units = used_invites(self.invites, after)
        if (
            vanity_uses is not None
            and self.vanity_uses is not None
            and vanity_uses > self.vanity_uses
        ):
            units[VANITY] += vanity_uses - self.vanity_uses
        self.invites = after
        if vanity_uses is not None:
            self.vanity_uses = vanity_uses
        self._add(units, now)
        remaining = sum(self.pool.values()) - self.consumed
        if remaining <= 0:
            self._clear()
            return Attribution("unknown")
        sources = sorted(code for code, count in self.pool.items() if count > 0)
        if len(sources) == 1:
            source = sources[0]
            self.pool[source] -= 1
            self.pool += Counter()  # drop zero counts
            if sum(self.pool.values()) - self.consumed <= 0:
                self._clear()
            if source == VANITY:
                return Attribution("vanity")
            return Attribution("certain", (source,))
        # Several invites moved and nothing tells which member used which one.
        self.consumed += 1
        if sum(self.pool.values()) - self.consumed <= 0:
            self._clear()
        return Attribution("ambiguous", tuple(sources))


def invite_use(invite: discord.Invite) -> InviteUse:
    """The counts of a Discord invite."""
    return InviteUse(invite.code, invite.uses or 0, invite.max_uses or 0)


def raw_invite_use(data: Mapping[str, Any]) -> InviteUse:
    """The counts of an invite as the REST API returns it."""
    return InviteUse(str(data["code"]), int(data.get("uses") or 0), int(data.get("max_uses") or 0))


# A failed REST call: Discord refused or answered badly, or the network failed past discord.py's
# own retries (aiohttp's errors, which the Discord side does not import). Either way the join is
# still recorded (unknown) and welcomed; the error's type is logged.
FETCH_ERRORS: tuple[type[Exception], ...] = (Exception,)


class JoinTracker:
    """Per-guild ledgers and locks; turns a member join into an attribution and a welcome."""

    def __init__(self, bot: RelaisBot, clock: Any = time.monotonic) -> None:
        self.bot = bot
        self.clock = clock
        self.ledgers: dict[int, InviteLedger] = defaultdict(InviteLedger)
        self.locks: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.loaded_at_start: set[int] = set()  # loaded in setup_hook, not yet on a READY

    async def fetch_raw(
        self, guild_id: int, vanity: bool
    ) -> tuple[list[InviteUse], int | None] | None:
        """Fresh invite counts (needs Manage Server) and the vanity URL's uses, over REST."""
        http = self.bot.http
        try:
            invites = [raw_invite_use(i) for i in await http.invites_from(guild_id)]
        except discord.Forbidden:
            log.warning("invites_forbidden", guild=guild_id)
            return None
        except discord.HTTPException as exc:
            log.warning("invites_failed", guild=guild_id, status=exc.status)
            return None
        except FETCH_ERRORS as exc:
            log.warning("invites_failed", guild=guild_id, error=type(exc).__name__)
            return None
        uses: int | None = None
        if vanity:
            try:
                found = await http.get_vanity_code(guild_id)  # one call: the uses are in it
                uses = int(found.get("uses") or 0) if found.get("code") else None
            except FETCH_ERRORS:
                uses = None
        return invites, uses

    async def fetch(self, guild: discord.Guild) -> tuple[list[InviteUse], int | None] | None:
        """Fresh counts of a guild the bot has in cache."""
        return await self.fetch_raw(guild.id, "VANITY_URL" in guild.features)

    async def load_guild(self, guild_id: int, *, vanity: bool = True) -> bool:
        """Fill the cache of one guild by id (in ``setup_hook``, before any join can arrive)."""
        async with self.locks[guild_id]:
            fetched = await self.fetch_raw(guild_id, vanity)
            if fetched is None:
                self.ledgers[guild_id].unload()
                return False
            self.ledgers[guild_id].load(*fetched)
            log.info("invites_cached", guild=guild_id, count=len(fetched[0]))
            return True

    async def load_at_start(self, guild_id: int) -> None:
        """The load in ``setup_hook``: the first READY then keeps it (joins may already be
        queued against it)."""
        if await self.load_guild(guild_id):
            self.loaded_at_start.add(guild_id)

    async def load(self, guild: discord.Guild) -> bool:
        """Fill the cache of one guild on READY (counts may have moved while disconnected),
        unless it was loaded just before this first session."""
        if guild.id in self.loaded_at_start:
            self.loaded_at_start.discard(guild.id)
            return True
        return await self.load_guild(guild.id, vanity="VANITY_URL" in guild.features)

    def invite_created(self, invite: discord.Invite) -> None:
        """Keep the cache current."""
        if invite.guild is not None:
            self.ledgers[invite.guild.id].created(invite_use(invite))

    def invite_deleted(self, invite: discord.Invite) -> None:
        """Keep the cache current."""
        if invite.guild is not None:
            self.ledgers[invite.guild.id].deleted(invite.code, self.clock())

    async def member_joined(self, member: discord.Member) -> Attribution | None:
        """Attribute a join, record it, then (lock released) welcome the member."""
        if member.bot:
            return None
        guild = member.guild
        async with self.locks[guild.id]:
            fetched = await self.fetch(guild)
            ledger = self.ledgers[guild.id]
            if fetched is None:
                ledger.unload()  # this join's use is unseen: the next join must not take it
                attribution = Attribution("unknown")
            else:
                attribution = ledger.joined(*fetched, self.clock())
            log.info("member_joined", status=attribution.status, candidates=len(attribution.codes))
            person, replies = await self.record(member, attribution)
        await self.deliver(person, replies)
        return attribution

    async def deliver(self, person: Person, replies: list[Reply]) -> None:
        """DMs and staff posts, outside the lock; a failure is logged, never raised."""
        from bot.cogs.base import deliver

        try:
            await deliver(self.bot, person, replies)
        except Exception:
            log.exception("join_delivery_failed")

    async def record(
        self, member: discord.Member, attribution: Attribution, *, welcome: bool = True
    ) -> tuple[Person, list[Reply]]:
        """Create the participant (through the conversation) and record the attribution;
        return the replies to deliver (the welcome, the thanks, a staff alert)."""
        from bot.cogs.base import display_name

        app = self.bot.services
        person = Person("discord", str(member.id), display_name(member))
        known = await app.referrals.by_discord_id(person.id)
        link = f"https://discord.gg/{attribution.code}" if attribution.code else None
        replies = await self.bot.conversation.joined(person, link)
        if known is None:
            participant = await app.referrals.by_discord_id(person.id)
            assert participant is not None
            status = (
                "certain" if attribution.status in {"certain", "vanity"} else attribution.status
            )
            via = attribution.code or (VANITY if attribution.status == "vanity" else None)
            joined_at = (member.joined_at or datetime.now(UTC)).astimezone(UTC).isoformat()
            number = await app.db.write(
                self._write, participant.id, status, attribution, via, joined_at
            )
            if attribution.status == "ambiguous":
                replies.append(await self._staff_alert(person, attribution, number))
        return person, replies if welcome else []

    @staticmethod
    def _write(
        conn: Any,
        participant_id: int,
        status: str,
        attribution: Attribution,
        via: str | None,
        joined_at: str,
    ) -> int:
        discord_joins.saw_join(conn, joined_at)
        codes = [c for c in attribution.codes if c != VANITY]
        candidates = attributions.owners(conn, codes) if status == "ambiguous" else []
        return attributions.record(
            conn, participant_id, status, candidates=candidates, codes=codes, via=via
        )

    def connected(self) -> None:
        """A gateway session starts: members who joined before it were not seen as events."""
        self.connected_at = datetime.now(UTC)

    async def catch_up(self, guild: discord.Guild) -> list[str]:
        """Members who joined while the bot was away (stopped or disconnected): recorded as
        ``unknown``, not welcomed one by one (no DM storm), one summary for staff."""
        app = self.bot.services
        last = await app.db.read(discord_joins.last_join)
        before = getattr(self, "connected_at", None) or datetime.now(UTC)
        if last is None:  # first run: nothing to compare with, start counting from now
            await app.db.write(discord_joins.saw_join, before.isoformat())
            return []
        missed = sorted(
            (
                m
                for m in guild.members
                if not m.bot
                and m.joined_at is not None
                and last < m.joined_at.astimezone(UTC).isoformat() < before.isoformat()
            ),
            key=lambda m: m.joined_at or before,
        )
        names: list[str] = []
        for member in missed:
            async with self.locks[guild.id]:
                if await app.referrals.by_discord_id(str(member.id)) is not None:
                    continue  # handled by its join event meanwhile
                person, _ = await self.record(member, Attribution("unknown"), welcome=False)
            names.append(person.name)
        if names:
            log.info("missed_joins_recorded", count=len(names))
            settings = self.bot.settings
            summary = Reply(
                Target("channel", settings.discord_staff_channel),
                app.texts.render(
                    "discord.missed_joins", settings.lang, count=len(names), names=names[:50]
                ),
                ephemeral=False,
            )
            await self.deliver(Person("discord", "", ""), [summary])
        return names

    async def _staff_alert(self, person: Person, attribution: Attribution, number: int) -> Reply:
        app = self.bot.services
        names = []
        for code in attribution.codes:
            owner = await app.db.read(attributions.owners, [code])
            if code == VANITY:
                names.append(VANITY)
            elif owner:
                names.append((await app.referrals.participant(owner[0])).name)
            else:
                names.append(code)
        settings = self.bot.settings
        return Reply(
            Target("channel", settings.discord_staff_channel),
            app.texts.render(
                "discord.join_ambiguous",
                settings.lang,
                number=number,
                name=person.name,
                mention=person.id,
                candidates=names,
            ),
            ephemeral=False,
        )
