"""Join attribution through the gateway: real RelaisBot, real discord.py, fake Discord."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fake_discord import (
    BOT_ID,
    GUILD_ID,
    STAFF_CHANNEL_ID,
    WAIT,
    FakeDiscord,
    LiveBot,
    live_settings,
)


async def personal_invite(fake: FakeDiscord, live: LiveBot, user_id: int, name: str) -> str:
    """The member runs /parrainage: the bot creates their invite over REST; its code."""
    if user_id not in fake.members:
        fake.add_member(user_id, name)
    created = len(fake.calls("POST", r"/channels/\d+/invites$"))
    exchange = await fake.slash("parrainage", user_id)
    await exchange.wait(2)
    await fake.wait_for_calls("POST", r"/channels/\d+/invites$", created + 1)
    participant = await live.app.referrals.by_discord_id(str(user_id))
    code = await live.app.referrals.link_for(participant.id, "discord_invite")
    assert code is not None and code in fake.invites and code in exchange.text
    return str(code)


async def rows(live: LiveBot) -> list[dict[str, Any]]:
    found = await live.app.db.fetchall(
        "SELECT a.id, p.discord_id, a.status, a.via FROM join_attributions a"
        " JOIN participants p ON p.id = a.participant_id ORDER BY a.id"
    )
    return [dict(row) for row in found]


async def wait_rows(fake: FakeDiscord, live: LiveBot, count: int) -> list[dict[str, Any]]:
    """The attributions, once there are ``count`` (each join's DMs follow its write)."""
    async with asyncio.timeout(WAIT):
        while len(found := await rows(live)) < count:
            await fake.next_change()
    return found


async def referrer_of(live: LiveBot, user_id: int) -> str | None:
    me = await live.app.referrals.by_discord_id(str(user_id))
    assert me is not None
    if me.referrer_id is None:
        return None
    return (await live.app.referrals.participant(me.referrer_id)).discord_id


async def test_join_through_a_members_invite_is_certain_and_the_referrer_is_thanked(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    code = await personal_invite(fake_discord, live, 5001, "ana")
    fake_discord.add_invite("oldcampaign", 1, uses=40)  # other invites' history must not count
    await live.restart()
    await fake_discord.join(6001, "zoe", via=code)
    [welcome] = await fake_discord.wait_for_dm(6001)
    [thanks] = await fake_discord.wait_for_dm(5001)
    assert "ana" in welcome["content"] and "zoe" in thanks["content"]
    assert await referrer_of(live, 6001) == "5001"
    assert [(r["status"], r["via"]) for r in await rows(live)] == [("certain", code)]
    assert welcome["allowed_mentions"]["parse"] == []  # nothing the bot sends pings


async def test_a_join_before_ready_is_attributed_from_the_first_second(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    code = await personal_invite(fake_discord, live, 5001, "ana")
    fake_discord.add_invite("oldcampaign", 1, uses=40)
    fake_discord.add_invite("flyer", 1, uses=12)
    await live.stop()
    # Right after GUILD_CREATE, before on_ready (which waits for guild_ready_timeout).
    fake_discord.joins_on_connect.append((6001, "zoe", code))
    await live.start()
    await fake_discord.wait_for_dm(5001)
    assert await referrer_of(live, 6001) == "5001"
    assert [(r["status"], r["via"]) for r in await wait_rows(fake_discord, live, 1)] == [
        ("certain", code)
    ]


async def test_a_burst_of_50_joins_through_10_invites_is_never_wrongly_attributed(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    codes = [await personal_invite(fake_discord, live, 5000 + i, f"ref{i}") for i in range(10)]
    used = {}
    for n in range(50):
        code = codes[n % 10]
        used[str(7000 + n)] = code
        await fake_discord.join(7000 + n, f"new{n}", via=code)
    found = await wait_rows(fake_discord, live, 50)
    assert len({r["discord_id"] for r in found}) == 50  # every join recorded once
    for row in found:
        assert row["status"] in {"certain", "ambiguous"}
        if row["status"] == "certain":
            assert row["via"] == used[row["discord_id"]]
    await fake_discord.wait_until(lambda: all(fake_discord.dms_to(7000 + n) for n in range(50)))
    # One invite list per join, and nothing per member: the cost does not grow with the server.
    assert len(fake_discord.calls("GET", r"/guilds/\d+/invites$")) <= 50 + 3


async def test_members_who_joined_while_the_bot_was_away_are_recorded_with_one_staff_note(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    code = await personal_invite(fake_discord, live, 5001, "ana")
    await fake_discord.join(6000, "first", via=code)  # a join seen: the bot knows where it is
    await wait_rows(fake_discord, live, 1)
    fake_discord.resume_ok = False  # the session cannot resume: a fresh IDENTIFY and READY
    fake_discord.joined_while_away(6001, "zoe", via=code)
    fake_discord.joined_while_away(6002, "yan")
    identifies = fake_discord.identifies
    await fake_discord.reconnect()
    await fake_discord.wait_until(lambda: fake_discord.identifies > identifies)
    found = await wait_rows(fake_discord, live, 3)
    assert [(r["discord_id"], r["status"]) for r in found[1:]] == [
        ("6001", "unknown"),
        ("6002", "unknown"),
    ]
    [note] = await fake_discord.wait_for_staff_post()
    assert "zoe" in note["content"] and "yan" in note["content"]
    assert not fake_discord.dms_to(6001) and not fake_discord.dms_to(6002)  # no DM storm


async def test_a_reconnect_that_resumes_keeps_attributing(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    code = await personal_invite(fake_discord, live, 5001, "ana")
    await fake_discord.reconnect()
    await fake_discord.wait_until(lambda: fake_discord.resumes == 1 and bool(fake_discord.sessions))
    await fake_discord.join(6001, "zoe", via=code)
    await fake_discord.wait_for_dm(5001)
    assert await referrer_of(live, 6001) == "5001"


async def test_a_403_on_the_invite_list_records_unknown_and_welcomes(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    code = await personal_invite(fake_discord, live, 5001, "ana")
    fake_discord.forbid("GET", r"/guilds/\d+/invites$")
    await fake_discord.join(6001, "zoe", via=code)
    await fake_discord.wait_for_dm(6001)
    assert [r["status"] for r in await wait_rows(fake_discord, live, 1)] == ["unknown"]
    # The use by zoe was never seen: the next join re-baselines instead of taking it.
    await fake_discord.join(6002, "yan", via=code)
    await fake_discord.wait_for_dm(6002)
    assert [r["status"] for r in await wait_rows(fake_discord, live, 2)] == ["unknown"] * 2
    await fake_discord.join(6003, "mia", via=code)
    await fake_discord.wait_for_dm(6003)
    assert (await wait_rows(fake_discord, live, 3))[2]["status"] == "certain"


async def test_a_network_failure_on_the_invite_list_never_loses_the_join(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    code = await personal_invite(fake_discord, live, 5001, "ana")
    fake_discord.respond("GET", r"/guilds/\d+/invites$", 0, disconnect=True, times=10)
    await fake_discord.join(6001, "zoe", via=code)
    await fake_discord.wait_for_dm(6001)
    assert [r["status"] for r in await wait_rows(fake_discord, live, 1)] == ["unknown"]


async def test_a_429_on_the_invite_list_is_waited_out(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    code = await personal_invite(fake_discord, live, 5001, "ana")
    fake_discord.rate_limit("GET", r"/guilds/\d+/invites$", retry_after=0.01)
    await fake_discord.join(6001, "zoe", via=code)
    await fake_discord.wait_for_dm(5001)
    statuses = [c.status for c in fake_discord.calls("GET", r"/guilds/\d+/invites$")]
    assert 429 in statuses and statuses[-1] == 200
    assert await referrer_of(live, 6001) == "5001"


async def test_a_vanity_join_costs_one_extra_call(fake_discord: FakeDiscord, live: LiveBot) -> None:
    fake_discord.features.append("VANITY_URL")
    fake_discord.vanity = ("relais", 5)
    await live.restart()  # the guild now has the feature
    before = len(fake_discord.requests)
    await fake_discord.join(6001, "zoe", via="relais")
    await fake_discord.wait_for_dm(6001)
    [row] = await wait_rows(fake_discord, live, 1)
    assert row["via"] == "vanity"
    reads = [c.path for c in fake_discord.requests[before:] if c.method == "GET"]
    assert sorted(p.rsplit("/", 1)[-1] for p in reads) == ["invites", "vanity-url"]


async def test_near_the_cap_staff_are_warned_and_the_oldest_unused_invites_recycled(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(995):
        invite = fake_discord.add_invite(f"old{n:03d}", BOT_ID, uses=0 if n % 2 else 1)
        invite.created_at = (start + timedelta(minutes=n)).isoformat()
    await live.restart()
    await personal_invite(fake_discord, live, 5001, "ana")
    [warning] = await fake_discord.wait_for_staff_post()
    assert "995" in warning["content"]
    deleted = [c.path.rsplit("/", 1)[-1] for c in fake_discord.calls("DELETE", r"/invites/")]
    assert deleted == ["old001", "old003", "old005", "old007", "old009", "old011"]
    assert len(fake_discord.invites) == 990  # 995 - 6 + the new one
    await personal_invite(fake_discord, live, 5002, "bob")
    assert len(fake_discord.sent_to(STAFF_CHANNEL_ID)) == 1  # warned once


@pytest.mark.parametrize(
    "live_bot_settings", [live_settings(public_base_url="https://relais.example.org")]
)
async def test_with_a_public_url_personal_links_are_landing_links_not_invites(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    fake_discord.add_member(5001, "ana")
    exchange = await fake_discord.slash("parrainage", 5001)
    await exchange.wait(2)
    assert "https://relais.example.org/r/" in exchange.text
    assert not fake_discord.calls("POST", r"/channels/\d+/invites$")


async def test_an_ambiguous_pair_is_settled_by_staff_with_attribution(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    a = await personal_invite(fake_discord, live, 5001, "ana")
    b = await personal_invite(fake_discord, live, 5002, "bob")
    # Both uses are counted before the bot handles the first join: nothing tells them apart.
    fake_discord.joined_while_away(6001, "zoe", via=a)
    fake_discord.joined_while_away(6002, "yan", via=b)
    for user_id in (6001, 6002):
        member = fake_discord.members[user_id]
        await fake_discord.dispatch(
            "GUILD_MEMBER_ADD", {**member.payload(), "guild_id": str(GUILD_ID)}
        )
    found = await wait_rows(fake_discord, live, 2)
    assert [r["status"] for r in found] == ["ambiguous", "ambiguous"]
    alerts = await fake_discord.wait_for_staff_post(2)
    assert "ana" in alerts[0]["content"] and "bob" in alerts[0]["content"]
    fake_discord.add_member(9001, "claire", staff=True)
    settle = await fake_discord.slash(
        "attribution", 9001, {"numero": str(found[0]["id"]), "parrain": "ana"}
    )
    await settle.wait(2)
    assert await referrer_of(live, 6001) == "5001"
    assert [r["status"] for r in await rows(live)] == ["resolved", "ambiguous"]
