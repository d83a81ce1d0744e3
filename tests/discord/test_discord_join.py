"""Join attribution: the pure comparison, then bursts through fake guilds and invites."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any
from unittest.mock import MagicMock

import discord
from discord_support import Recorder, Users, make_interaction

from bot.discord_app import RelaisBot
from bot.discord_join import Attribution, InviteLedger, InviteUse, used_invites

# ---------------------------------------------------------------- the pure comparison


def ledger(*invites: InviteUse, vanity: int | None = None) -> InviteLedger:
    book = InviteLedger()
    book.load(invites, vanity)
    return book


def test_one_invite_up_is_certain_none_up_is_unknown() -> None:
    book = ledger(InviteUse("a", 3), InviteUse("b", 0))
    assert book.joined([InviteUse("a", 4), InviteUse("b", 0)], None, 0) == Attribution(
        "certain", ("a",)
    )
    assert book.joined([InviteUse("a", 4), InviteUse("b", 0)], None, 1) == Attribution("unknown")


def test_two_joins_on_different_invites_seen_at_once_are_both_ambiguous() -> None:
    book = ledger(InviteUse("a", 0), InviteUse("b", 0))
    fresh = [InviteUse("a", 1), InviteUse("b", 1)]
    first = book.joined(fresh, None, 0)
    second = book.joined(fresh, None, 0.1)  # no change since: matched with the pool
    assert first == second == Attribution("ambiguous", ("a", "b"))
    assert book.joined(fresh, None, 0.2) == Attribution("unknown")  # pool used up


def test_two_joins_on_the_same_invite_are_both_certain() -> None:
    book = ledger(InviteUse("a", 0))
    fresh = [InviteUse("a", 2)]
    assert book.joined(fresh, None, 0) == Attribution("certain", ("a",))
    assert book.joined(fresh, None, 0.1) == Attribution("certain", ("a",))


def test_vanity_url() -> None:
    book = ledger(InviteUse("a", 0), vanity=10)
    assert book.joined([InviteUse("a", 0)], 11, 0) == Attribution("vanity")


def test_invite_deleted_on_its_last_use() -> None:
    assert used_invites({"a": InviteUse("a", 4, 5)}, {}) == {"a": 1}
    assert used_invites({"a": InviteUse("a", 2, 5)}, {}) == {}  # deleted by hand: not a use
    book = ledger(InviteUse("a", 4, 5), InviteUse("b", 1))
    assert book.joined([InviteUse("b", 1)], None, 0) == Attribution("certain", ("a",))
    # The delete event may arrive before the join event.
    book = ledger(InviteUse("a", 4, 5), InviteUse("b", 1))
    book.deleted("a", 0)
    assert book.joined([InviteUse("b", 1)], None, 0.1) == Attribution("certain", ("a",))


def test_unmatched_uses_expire() -> None:
    book = ledger(InviteUse("a", 0), InviteUse("b", 0))
    book.joined([InviteUse("a", 1), InviteUse("b", 1)], None, 0)
    late = book.joined([InviteUse("a", 1), InviteUse("b", 1)], None, 1000)
    assert late == Attribution("unknown")


def test_new_invite_used_before_its_create_event() -> None:
    book = ledger()
    assert book.joined([InviteUse("n", 1)], None, 0) == Attribution("certain", ("n",))


# ---------------------------------------------------------------- fake Discord objects


@dataclass
class FakeInvite:
    code: str
    uses: int = 0
    max_uses: int = 0
    guild: Any = None


@dataclass
class FakeGuild:
    id: int = 77
    invites_list: list[FakeInvite] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    vanity_uses: int = 0

    async def invites(self) -> list[FakeInvite]:
        await asyncio.sleep(0)  # let the other join handlers run meanwhile
        return [FakeInvite(i.code, i.uses, i.max_uses, self) for i in self.invites_list]

    async def vanity_invite(self) -> FakeInvite:
        return FakeInvite("relais", self.vanity_uses, 0, self)

    def use(self, code: str) -> None:
        invite = next(i for i in self.invites_list if i.code == code)
        invite.uses += 1
        if invite.max_uses and invite.uses >= invite.max_uses:
            self.invites_list.remove(invite)


def new_member(guild: FakeGuild, user_id: int, name: str, bot: bool = False) -> MagicMock:
    member = MagicMock(spec=discord.Member)
    member.id = user_id
    member.display_name = name
    member.bot = bot
    member.guild = guild
    return member


async def referrers(bot: RelaisBot, guild: FakeGuild, *people: tuple[int, str]) -> list[str]:
    """Members who ran /parrainage: each has a personal invite, now in the guild."""
    referral = bot.get_cog("ReferralCog")
    codes = []
    for user_id, name in people:
        await referral.parrainage.callback(referral, make_interaction(bot, user_id, name))  # type: ignore[union-attr]
        code = await bot.app.referrals.link_for(  # type: ignore[union-attr]
            (await bot.app.referrals.by_discord_id(str(user_id))).id,  # type: ignore[union-attr]
            "discord_invite",
        )
        assert code is not None
        guild.invites_list.append(FakeInvite(code, 0, 0, guild))
        codes.append(code)
    return codes


async def rows(bot: RelaisBot) -> list[dict[str, Any]]:
    found = await bot.app.db.fetchall(  # type: ignore[union-attr]
        "SELECT a.id, p.discord_id, a.status, a.candidates, a.via FROM join_attributions a"
        " JOIN participants p ON p.id = a.participant_id ORDER BY a.id"
    )
    return [dict(row) for row in found]


async def referrer_of(bot: RelaisBot, user_id: int) -> str | None:
    me = await bot.app.referrals.by_discord_id(str(user_id))  # type: ignore[union-attr]
    assert me is not None
    if me.referrer_id is None:
        return None
    return (await bot.app.referrals.participant(me.referrer_id)).discord_id  # type: ignore[union-attr]


# ---------------------------------------------------------------- bursts


async def test_two_joins_handled_one_after_the_other_are_both_certain(
    bot: RelaisBot, users: Users
) -> None:
    guild = FakeGuild()
    a, b = await referrers(bot, guild, (1, "ana"), (2, "bob"))
    await bot.joins.load(guild)  # type: ignore[arg-type]
    guild.use(a)
    await bot.joins.member_joined(new_member(guild, 10, "zoe"))
    guild.use(b)
    await bot.joins.member_joined(new_member(guild, 11, "yan"))
    assert await referrer_of(bot, 10) == "1" and await referrer_of(bot, 11) == "2"
    assert [r["status"] for r in await rows(bot)] == ["certain", "certain"]
    users.by_id[1].send.assert_awaited()  # thanks to the referrer
    users.by_id[10].send.assert_awaited()  # welcome


async def test_two_joins_at_once_on_different_invites_are_ambiguous_until_staff_settle(
    bot: RelaisBot, recorder: Recorder
) -> None:
    guild = FakeGuild()
    a, b = await referrers(bot, guild, (1, "ana"), (2, "bob"))
    await bot.joins.load(guild)  # type: ignore[arg-type]
    guild.use(a)
    guild.use(b)
    results = await asyncio.gather(
        bot.joins.member_joined(new_member(guild, 10, "zoe")),
        bot.joins.member_joined(new_member(guild, 11, "yan")),
    )
    assert [r.status for r in results] == ["ambiguous", "ambiguous"]  # type: ignore[union-attr]
    assert await referrer_of(bot, 10) is None and await referrer_of(bot, 11) is None
    found = await rows(bot)
    assert [r["status"] for r in found] == ["ambiguous", "ambiguous"]
    ana = await bot.app.referrals.by_discord_id("1")  # type: ignore[union-attr]
    assert ana is not None and ana.id in json.loads(found[0]["candidates"])
    alerts = [r for r in recorder.staff if r.to.kind == "channel"]
    assert len(alerts) == 2 and "ana" in alerts[0].text and "bob" in alerts[0].text
    # Staff settle the first one through the generated /attribution command.
    command = bot.tree.get_command("attribution")
    staff = make_interaction(bot, 9001, "claire", staff=True)
    await command.callback(staff, numero=str(found[0]["id"]), parrain="ana")  # type: ignore[union-attr, call-arg]
    assert await referrer_of(bot, 10) == "1"
    assert [r["status"] for r in await rows(bot)] == ["resolved", "ambiguous"]


async def test_two_joins_at_once_on_the_same_invite_are_certain(bot: RelaisBot) -> None:
    guild = FakeGuild()
    [a] = await referrers(bot, guild, (1, "ana"))
    await bot.joins.load(guild)  # type: ignore[arg-type]
    guild.use(a)
    guild.use(a)
    await asyncio.gather(
        bot.joins.member_joined(new_member(guild, 10, "zoe")),
        bot.joins.member_joined(new_member(guild, 11, "yan")),
    )
    assert await referrer_of(bot, 10) == "1" and await referrer_of(bot, 11) == "1"


async def test_vanity_url_join_is_known_and_has_no_referrer(bot: RelaisBot) -> None:
    guild = FakeGuild(features=["VANITY_URL"], vanity_uses=5)
    await referrers(bot, guild, (1, "ana"))
    await bot.joins.load(guild)  # type: ignore[arg-type]
    guild.vanity_uses += 1
    result = await bot.joins.member_joined(new_member(guild, 10, "zoe"))
    assert result == Attribution("vanity")
    assert await referrer_of(bot, 10) is None
    [row] = await rows(bot)
    assert row["via"] == "vanity"


async def test_invite_deleted_on_its_last_use_is_certain(bot: RelaisBot) -> None:
    guild = FakeGuild()
    [a] = await referrers(bot, guild, (1, "ana"))
    guild.invites_list[0].max_uses = 3
    guild.invites_list[0].uses = 2
    await bot.joins.load(guild)  # type: ignore[arg-type]
    guild.use(a)  # reaches max_uses: Discord deletes it
    assert not guild.invites_list
    await bot.joins.member_joined(new_member(guild, 10, "zoe"))
    assert await referrer_of(bot, 10) == "1"


async def test_rejoin_is_not_a_new_referral_and_bots_are_ignored(
    bot: RelaisBot, users: Users
) -> None:
    guild = FakeGuild()
    a, b = await referrers(bot, guild, (1, "ana"), (2, "bob"))
    await bot.joins.load(guild)  # type: ignore[arg-type]
    guild.use(a)
    await bot.joins.member_joined(new_member(guild, 10, "zoe"))
    guild.use(b)  # zoe left and comes back through bob's invite
    await bot.joins.member_joined(new_member(guild, 10, "zoe"))
    assert await referrer_of(bot, 10) == "1"
    assert len(await rows(bot)) == 1
    assert 2 not in users.by_id  # bob is not thanked (never DMed)
    assert await bot.joins.member_joined(new_member(guild, 99, "robot", bot=True)) is None
    assert await bot.app.referrals.by_discord_id("99") is None  # type: ignore[union-attr]


async def test_join_without_invite_permission_is_unknown(bot: RelaisBot) -> None:
    guild = FakeGuild()

    async def refused() -> list[FakeInvite]:
        raise discord.Forbidden(MagicMock(status=403), "missing Manage Server")

    guild.invites = refused  # type: ignore[method-assign]
    result = await bot.joins.member_joined(new_member(guild, 10, "zoe"))
    assert result == Attribution("unknown")
    assert [r["status"] for r in await rows(bot)] == ["unknown"]
