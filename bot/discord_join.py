"""Who brought a new member: Discord invite use counts compared on each join.

Discord does not say which invite a member used. Each guild's invite uses are cached (loaded on
ready, kept current on invite create and delete); on each join, under a per-guild lock, fresh
counts are fetched and compared with the cache:

* one invite went up: certain;
* several went up (joins in a burst): ambiguous, the candidates are kept and no referral is
  counted until staff settle it (``/attribution``);
* none went up: unknown, except through the server's vanity URL (its own count) or an invite that
  Discord deleted on reaching its ``max_uses`` (it was at ``max_uses - 1``: that one, certain).

Uses seen but not yet matched with a join (two members joined before the first join was handled)
stay in a short-lived pool, so the second join is matched with them rather than called unknown.
The comparison is pure (``InviteLedger``); ``JoinTracker`` does the Discord and database work.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import discord

from bot.logging import get_logger
from bot.ports import Person, Reply, Target
from referrals import attributions

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

    def load(self, invites: Iterable[InviteUse], vanity_uses: int | None = None) -> None:
        """Replace the cache (on ready)."""
        self.invites = {i.code: i for i in invites}
        self.vanity_uses = vanity_uses

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
            self.pool.update(units)
            self.pool_at = now

    def _clear(self) -> None:
        self.pool.clear()
        self.consumed = 0

    def joined(
        self, fresh: Iterable[InviteUse], vanity_uses: int | None, now: float
    ) -> Attribution:
        """A member joined: compare the fresh counts with the cache, match one use."""
        after = {i.code: i for i in fresh}
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


class JoinTracker:
    """Per-guild ledgers and locks; turns a member join into an attribution and a welcome."""

    def __init__(self, bot: RelaisBot, clock: Any = time.monotonic) -> None:
        self.bot = bot
        self.clock = clock
        self.ledgers: dict[int, InviteLedger] = defaultdict(InviteLedger)
        self.locks: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def fetch(self, guild: discord.Guild) -> tuple[list[InviteUse], int | None] | None:
        """Fresh invite counts (needs Manage Server), and the vanity URL's uses if any."""
        try:
            invites = [invite_use(i) for i in await guild.invites()]
        except discord.Forbidden:
            log.warning("invites_forbidden", guild=guild.id)
            return None
        except discord.HTTPException as exc:
            log.warning("invites_failed", guild=guild.id, status=exc.status)
            return None
        vanity: int | None = None
        if "VANITY_URL" in guild.features:
            try:
                found = await guild.vanity_invite()
                vanity = found.uses if found is not None else None
            except discord.HTTPException:
                vanity = None
        return invites, vanity

    async def load(self, guild: discord.Guild) -> None:
        """Fill the cache of one guild (on ready)."""
        async with self.locks[guild.id]:
            fetched = await self.fetch(guild)
            if fetched is not None:
                self.ledgers[guild.id].load(*fetched)
                log.info("invites_cached", guild=guild.id, count=len(fetched[0]))

    def invite_created(self, invite: discord.Invite) -> None:
        """Keep the cache current."""
        if invite.guild is not None:
            self.ledgers[invite.guild.id].created(invite_use(invite))

    def invite_deleted(self, invite: discord.Invite) -> None:
        """Keep the cache current."""
        if invite.guild is not None:
            self.ledgers[invite.guild.id].deleted(invite.code, self.clock())

    async def member_joined(self, member: discord.Member) -> Attribution | None:
        """Attribute a join, record it, welcome the member; bots are ignored."""
        if member.bot:
            return None
        guild = member.guild
        async with self.locks[guild.id]:
            fetched = await self.fetch(guild)
            if fetched is None:
                attribution = Attribution("unknown")
            else:
                attribution = self.ledgers[guild.id].joined(*fetched, self.clock())
            log.info("member_joined", status=attribution.status, candidates=len(attribution.codes))
            await self.record(member, attribution)
        return attribution

    async def record(self, member: discord.Member, attribution: Attribution) -> None:
        """Create the participant (through the conversation), record the attribution, deliver."""
        from bot.cogs.base import deliver

        app = self.bot.app
        person = Person("discord", str(member.id), member.display_name)
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
            number = await app.db.write(self._write, participant.id, status, attribution, via)
            if attribution.status == "ambiguous":
                replies.append(await self._staff_alert(person, attribution, number))
        await deliver(self.bot, person, replies)

    @staticmethod
    def _write(
        conn: Any, participant_id: int, status: str, attribution: Attribution, via: str | None
    ) -> int:
        codes = [c for c in attribution.codes if c != VANITY]
        candidates = attributions.owners(conn, codes) if status == "ambiguous" else []
        return attributions.record(
            conn, participant_id, status, candidates=candidates, codes=codes, via=via
        )

    async def _staff_alert(self, person: Person, attribution: Attribution, number: int) -> Reply:
        app = self.bot.app
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
