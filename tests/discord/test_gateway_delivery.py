"""Messages to someone other than the person who acted leave through the one delivery router,
seen at the fake Discord's REST: the referrer's "X a rejoint grâce à toi", the staff channel's
post of /conseiller and the member's notice when staff take it. The live bot is started by
``bot.bootstrap.DiscordRun`` as ``relais run`` starts it: what waits in the outbox leaves at READY
and with the minute loop; a refused DM stays in the outbox, never lost silently.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest
from fake_discord import FakeDiscord, LiveBot
from waiting import PATIENCE

from bot.bootstrap import build_app
from bot.delivery import MAX_ATTEMPTS
from bot.ports import Reply, Target
from bot.runner import NoTransport
from referrals import outbox

LEA = 5001
SAM = 5002
MAX = 5003
CLAIRE = 9001  # staff

CODE = re.compile(r"[0-9A-Z]{4}-[0-9A-Z]{4}")
DM_OPEN = r"^/users/@me/channels$"  # discord.py opens the DM channel before the first DM


@pytest.fixture
def people(fake_discord: FakeDiscord) -> None:
    fake_discord.add_member(LEA, "lea")
    fake_discord.add_member(SAM, "sam")
    fake_discord.add_member(MAX, "max")
    fake_discord.add_member(CLAIRE, "claire", staff=True)


async def waiting(live: LiveBot) -> list[outbox.OutboxRow]:
    return await live.app.db.read(outbox.waiting, ["discord", "channel"], 100)


async def until(
    live: LiveBot, condition: Callable[[list[outbox.OutboxRow]], bool]
) -> list[outbox.OutboxRow]:
    """The outbox's rows once ``condition`` holds for them (generous patience)."""
    async with asyncio.timeout(PATIENCE):
        while True:
            rows = await waiting(live)
            if condition(rows):
                return rows
            await asyncio.sleep(0.02)  # a database poll: no event to wait on


async def code_of(fake: FakeDiscord, user_id: int) -> str:
    exchange = await fake.slash("parrainage", user_id)
    await exchange.wait(2)
    found = CODE.search(exchange.text)
    assert found is not None, exchange.text
    return found.group(0)


@pytest.mark.usefixtures("people")
async def test_code_links_the_referral_and_the_referrer_gets_a_dm(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    code = await code_of(fake_discord, LEA)
    exchange = await fake_discord.slash("code", SAM, {"code": code}, locale="en-US")
    await exchange.wait(2)
    assert "lea" in exchange.text
    assert all(m["flags"] & 64 for m in exchange.followups)  # sam's answer is private
    [dm] = await fake_discord.wait_for_dm(LEA)
    assert "sam" in dm["content"]
    assert fake_discord.dms_to(SAM) == []  # sam was answered in the interaction, not by DM
    participant = await live.app.referrals.by_discord_id(str(SAM))
    assert participant is not None and participant.referrer_id is not None
    assert await waiting(live) == []


@pytest.mark.usefixtures("people")
async def test_conseiller_posts_in_the_staff_channel_and_staff_take_it(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    exchange = await fake_discord.slash("conseiller", LEA, {"message": "aide pour mon CV"})
    await exchange.wait(2)
    assert all(m["flags"] & 64 for m in exchange.followups)
    [post] = await fake_discord.wait_for_staff_post()
    assert "lea" in post["content"]
    take = next(
        b["custom_id"]
        for row in post["components"]
        for b in row["components"]
        if b["custom_id"].startswith("handoff:take:")
    )
    # A young person clicking the staff button is refused privately; the button stays.
    nosy = await fake_discord.click(take, MAX)
    calls = await nosy.wait(2)
    assert calls[0].json["type"] == 5  # deferred, not an edit removing the buttons
    staff = await fake_discord.click(take, CLAIRE)
    calls = await staff.wait(2)
    assert calls[0].json["type"] == 7  # the buttons are removed from the post
    assert "lea" in staff.text
    [dm] = await fake_discord.wait_for_dm(LEA)
    assert "claire" in dm["content"]
    assert fake_discord.dms_to(MAX) == []
    assert await waiting(live) == []


@pytest.mark.usefixtures("people")
async def test_what_relais_serve_kept_leaves_when_the_bot_is_ready(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    await live.stop()
    # ``relais serve`` on the same database: no Discord, the notice and the post wait.
    serve = await build_app(live.settings, live.db_path, transport=NoTransport())
    try:
        await serve.router.deliver(
            [
                Reply(Target("discord", str(LEA)), "Sam a répondu à ton SMS", ephemeral=False),
                Reply(Target("channel", "staff"), "Un proche demande un conseiller"),
            ]
        )
        assert len(await serve.db.read(outbox.waiting, ["discord", "channel"], 100)) == 2
    finally:
        await serve.close()
    await live.start()  # ``relais run``: the outbox is flushed at READY
    [dm] = await fake_discord.wait_for_dm(LEA)
    assert dm["content"] == "Sam a répondu à ton SMS"
    [post] = await fake_discord.wait_for_staff_post()
    assert post["content"] == "Un proche demande un conseiller"
    await until(live, lambda rows: rows == [])


@pytest.mark.parametrize("live_tick", [0.05])  # the minute loop, run faster
@pytest.mark.usefixtures("people")
async def test_a_refused_dm_waits_in_the_outbox_and_leaves_with_the_minute_loop(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    code = await code_of(fake_discord, LEA)
    fake_discord.forbid("POST", DM_OPEN, code=50007)  # lea's DMs are closed, this once
    await (await fake_discord.slash("code", SAM, {"code": code})).wait(2)
    [dm] = await fake_discord.wait_for_dm(LEA)
    assert "sam" in dm["content"]
    opened = fake_discord.calls("POST", DM_OPEN)
    assert [c.status for c in opened][:2] == [403, 200]  # refused, then sent by the loop
    await until(live, lambda rows: rows == [])


@pytest.mark.parametrize("live_tick", [0.05])
@pytest.mark.usefixtures("people")
async def test_a_dm_refused_for_good_stays_in_the_outbox_after_its_last_attempt(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    fake_discord.forbid("POST", DM_OPEN, code=50007, times=1000)  # DMs closed for good
    await live.app.router.deliver(
        [Reply(Target("discord", str(LEA)), "Sam a rejoint grâce à toi", ephemeral=False)]
    )
    [row] = await until(live, lambda rows: bool(rows) and rows[0].attempts >= MAX_ATTEMPTS)
    assert row.target_id == str(LEA) and row.attempts == MAX_ATTEMPTS  # kept for the doctor
    assert len(fake_discord.calls("POST", DM_OPEN)) == MAX_ATTEMPTS  # then no longer tried
    assert fake_discord.dms_to(LEA) == []
