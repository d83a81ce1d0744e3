"""Joining through Discord OAuth2 against a fake Discord API on 127.0.0.1: exact attribution."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient
from waiting import eventually
from web_support import (
    BOT_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    GUILD,
    FakeDiscord,
    Recorder,
    add_member,
    client_for,
    make_app,
    open_services,
    state_of,
)

from bot.app import App
from bot.landing import cookie_name
from bot.ports import Person
from referrals import relatives, stats

PUBLIC = "http://relais.test"


@dataclass
class World:
    services: App
    recorder: Recorder
    discord: FakeDiscord
    client: TestClient[Any, Any]


async def _world(tmp_path: Path, public: str = PUBLIC) -> AsyncIterator[World]:
    discord = FakeDiscord(f"{public}/oauth/callback")
    api = await discord.start()
    recorder = Recorder()
    services = await open_services(
        tmp_path,
        recorder,
        PUBLIC_BASE_URL=public,
        DISCORD_TOKEN=BOT_TOKEN,
        DISCORD_GUILD_ID=GUILD,
        DISCORD_CLIENT_ID=CLIENT_ID,
        DISCORD_CLIENT_SECRET=CLIENT_SECRET,
        DISCORD_API_URL=api,
    )
    try:
        async with client_for(make_app(services, recorder)) as client:
            yield World(services, recorder, discord, client)
    finally:
        await services.close()
        await discord.stop()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async for value in _world(tmp_path):
        yield value


async def start(world: World, code: str, ip: str = "198.51.100.1") -> str:
    """Follow the landing's button up to Discord's consent screen; returns the state."""
    response = await world.client.get(
        f"/r/{code}/join", allow_redirects=False, headers={"X-Forwarded-For": ip}
    )
    assert response.status == 302, await response.text()
    return state_of(response.headers["Location"])


async def finish(world: World, state: str, user: str, ip: str = "198.51.100.1") -> Any:
    """Come back from Discord's consent screen as ``user``."""
    return await world.client.get(
        "/oauth/callback",
        params={"code": f"code-{user}", "state": state},
        headers={"X-Forwarded-For": ip},
    )


async def participant(world: World, discord_id: str) -> Any:
    return await world.services.db.fetchone(
        "SELECT id, referrer_id, campaign_id, channel, display_name FROM participants"
        " WHERE discord_id = ?",
        (discord_id,),
    )


async def test_the_button_shows_and_goes_to_discord(world: World) -> None:
    _, code = await add_member(world.services, "Sofiane", discord_id="1000")
    page = await (await world.client.get(f"/r/{code}")).text()
    assert f'href="/r/{code}/join"' in page and "Rejoindre sur Discord" in page
    response = await world.client.get(f"/r/{code}/join", allow_redirects=False)
    assert response.status == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        world.discord.url.rsplit("/api/", 1)[0] + "/oauth2/authorize"
    )
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    assert query["client_id"] == CLIENT_ID and query["response_type"] == "code"
    assert query["scope"] == "identify guilds.join"
    assert query["redirect_uri"] == f"{PUBLIC}/oauth/callback"
    state = query["state"]
    assert len(state) >= 40
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{cookie_name(state)}={state};")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/oauth" in cookie
    assert "Secure" not in cookie  # plain http in this test
    row = await world.services.db.fetchone(
        "SELECT code FROM oauth_states WHERE state = ?", (state,)
    )
    assert row is not None and row[0] == code


async def test_join_records_the_referral_and_adds_the_member(world: World) -> None:
    referrer, code = await add_member(world.services, "Sofiane Benali", discord_id="1000")
    state = await start(world, code)
    response = await finish(world, state, "2000000000000001")
    assert response.status == 200
    page = await response.text()
    assert "C'est bon ! Ouvre Discord" in page
    assert f'href="https://discord.com/channels/{GUILD}"' in page
    assert world.discord.added == ["2000000000000001"]
    row = await participant(world, "2000000000000001")
    assert row["referrer_id"] == referrer and row["channel"] == "link"
    assert row["display_name"] == "Jeune 0001 X"

    # The welcome and the referrer's thanks go to the Discord adapter's sender.
    def targets() -> list[tuple[str, str]]:
        return [(reply.to.kind, reply.to.id) for reply in world.recorder.delivered]

    await eventually(lambda: ("discord", "1000") in targets())
    assert ("discord", "2000000000000001") in targets() and ("discord", "1000") in targets()
    # The state is single use, and its cookie is cleared.
    assert cookie_name(state) in response.headers.get("Set-Cookie", "")
    again = await finish(world, state, "2000000000000001")
    assert again.status == 400


async def test_campaign_link(world: World) -> None:
    campaign = await world.services.referrals.create_campaign("VAN-NANTES")
    state = await start(world, "van-nantes")
    assert (await finish(world, state, "3000000000000001")).status == 200
    row = await participant(world, "3000000000000001")
    assert row["campaign_id"] == campaign.id and row["referrer_id"] is None
    assert row["channel"] == "campaign:VAN-NANTES"


async def test_already_a_member_is_told_so_and_counted_once(world: World) -> None:
    _, code = await add_member(world.services, "Sofiane", discord_id="1000")
    other, other_code = await add_member(world.services, "Léa", discord_id="1001")
    state = await start(world, code)
    assert (await finish(world, state, "4000000000000001")).status == 200
    # The same person follows someone else's link later: already on the server.
    state = await start(world, other_code)
    response = await finish(world, state, "4000000000000001")
    assert response.status == 200 and "Tu es déjà sur le serveur" in await response.text()
    row = await participant(world, "4000000000000001")
    assert row["referrer_id"] != other
    count = await world.services.db.fetchone(
        "SELECT COUNT(*) FROM participants WHERE discord_id = ?", ("4000000000000001",)
    )
    assert count is not None and count[0] == 1
    assert world.discord.calls.count("put_member") == 1


async def test_a_member_the_bot_never_saw_stays_organic(world: World) -> None:
    _, code = await add_member(world.services, "Sofiane", discord_id="1000")
    world.discord.members.add("5000000000000001")
    response = await finish(world, await start(world, code), "5000000000000001")
    assert "Tu es déjà sur le serveur" in await response.text()
    row = await participant(world, "5000000000000001")
    assert row["referrer_id"] is None and row["campaign_id"] is None


async def test_member_joining_meanwhile_is_counted_once(world: World) -> None:
    referrer, code = await add_member(world.services, "Sofiane", discord_id="1000")
    world.discord.race.add("6000000000000001")  # 404 to the check, 204 to the add
    response = await finish(world, await start(world, code), "6000000000000001")
    assert response.status == 200
    row = await participant(world, "6000000000000001")
    assert row["referrer_id"] == referrer


async def test_bad_states(world: World) -> None:
    _, code = await add_member(world.services, "Sofiane", discord_id="1000")
    client = world.client
    assert (await client.get("/oauth/callback")).status == 400
    assert (await client.get("/oauth/callback?code=code-1&state=short")).status == 400
    forged = "A" * 43
    response = await client.get("/oauth/callback", params={"code": "code-1", "state": forged})
    assert response.status == 400 and "plus valable" in await response.text()
    # A state started in another browser (no cookie) is refused and stays usable.
    state = await start(world, code)
    client.session.cookie_jar.clear()
    assert (await finish(world, state, "7000000000000001")).status == 400
    row = await world.services.db.fetchone(
        "SELECT COUNT(*) FROM oauth_states WHERE state = ?", (state,)
    )
    assert row is not None and row[0] == 1
    # A cookie of another flow does not fit either.
    other = await start(world, code)
    client.session.cookie_jar.update_cookies({cookie_name(state): other})
    assert (await finish(world, state, "7000000000000001")).status == 400
    assert await participant(world, "7000000000000001") is None
    assert world.discord.calls == []


async def test_expired_state(world: World) -> None:
    _, code = await add_member(world.services, "Sofiane", discord_id="1000")
    state = await start(world, code)
    await world.services.db.write(
        lambda conn: conn.execute(
            "UPDATE oauth_states SET expires_at = '2000-01-01T00:00:00+00:00'"
        )
    )
    response = await finish(world, state, "8000000000000001")
    assert response.status == 400
    page = await response.text()
    assert "expiré" in page and f'href="/r/{code}"' in page
    assert await participant(world, "8000000000000001") is None


async def test_cancelled_on_discord(world: World) -> None:
    _, code = await add_member(world.services, "Sofiane", discord_id="1000")
    state = await start(world, code)
    response = await world.client.get(
        "/oauth/callback", params={"error": "access_denied", "state": state}
    )
    assert response.status == 200 and "Tu as annulé" in await response.text()
    assert world.discord.calls == []


async def test_discord_down_or_refusing(world: World) -> None:
    _, code = await add_member(world.services, "Sofiane", discord_id="1000")
    world.discord.fail_token = True
    response = await finish(world, await start(world, code), "9000000000000001")
    assert response.status == 502 and "Discord ne répond pas" in await response.text()
    world.discord.fail_token = False
    world.discord.banned.add("9000000000000002")
    response = await finish(world, await start(world, code), "9000000000000002")
    assert response.status == 403 and "Impossible de t'ajouter" in await response.text()


async def test_discord_unreachable(world: World) -> None:
    _, code = await add_member(world.services, "Sofiane", discord_id="1000")
    state = await start(world, code)
    await world.discord.stop()
    response = await finish(world, state, "9100000000000001")
    assert response.status == 502


async def test_twenty_concurrent_joins_through_different_links(world: World) -> None:
    referrers = [
        await add_member(world.services, f"Parrain{i}", discord_id=str(1100 + i)) for i in range(20)
    ]
    users = [str(10_000_000_000_000_000 + i) for i in range(20)]

    async def one(i: int) -> int:
        ip = f"198.51.100.{i + 10}"
        state = await start(world, referrers[i][1], ip)
        return (await finish(world, state, users[i], ip)).status

    statuses = await asyncio.gather(*(one(i) for i in range(20)))
    assert statuses == [200] * 20
    for i, user in enumerate(users):
        row = await participant(world, user)
        assert row["referrer_id"] == referrers[i][0], f"join {i} attributed to the wrong member"
    count = await world.services.db.fetchone(
        "SELECT COUNT(*) FROM participants WHERE LENGTH(discord_id) = 17"
    )
    assert count is not None and count[0] == 20
    joined = await world.services.db.fetchone(
        "SELECT COUNT(*) FROM events WHERE kind = 'joined' AND other_id IS NOT NULL"
    )
    assert joined is not None and joined[0] == 20
    assert sorted(world.discord.added) == sorted(users)


async def test_same_person_twice_at_once_is_counted_once(world: World) -> None:
    first, code_a = await add_member(world.services, "Sofiane", discord_id="1000")
    second, code_b = await add_member(world.services, "Léa", discord_id="1001")
    user = "12000000000000001"
    state_a = await start(world, code_a)
    state_b = await start(world, code_b)
    statuses = await asyncio.gather(finish(world, state_a, user), finish(world, state_b, user))
    assert [response.status for response in statuses] == [200, 200]
    count = await world.services.db.fetchone(
        "SELECT COUNT(*), MIN(referrer_id) FROM participants WHERE discord_id = ?", (user,)
    )
    assert count is not None and count[0] == 1 and count[1] in (first, second)


async def test_secure_cookie_over_https(tmp_path: Path) -> None:
    async for world in _world(tmp_path, public="https://relais.example.fr"):
        _, code = await add_member(world.services, "Sofiane", discord_id="1000")
        response = await world.client.get(f"/r/{code}/join", allow_redirects=False)
        assert "Secure" in response.headers["Set-Cookie"]
        assert "Strict-Transport-Security" in response.headers


# ---------------------------------------------------------------- the link of an invitation SMS

RELATIVE = "+33612345678"


async def invitation(world: World, member: int) -> str:
    """An SMS invitation from ``member``; returns its token (the SMS carries /i/TOKEN)."""
    await world.services.sms.invite(member, RELATIVE, "Sarah", "unused", "fr")
    row = await world.services.db.fetchone(
        "SELECT token FROM invitations WHERE member_id = ? ORDER BY id DESC", (member,)
    )
    body = (await world.services.db.fetchone("SELECT body FROM outbound_sms"))[0]
    assert f"{PUBLIC}/i/{row[0]}" in body
    return str(row[0])


async def joined_by(world: World) -> list[Any]:
    rows = await world.services.db.fetchall("SELECT joined_participant_id FROM invitations")
    return [row[0] for row in rows]


async def test_a_relative_joining_through_the_sms_link_counts_the_invitation(
    world: World,
) -> None:
    referrer, code = await add_member(world.services, "Sofiane Benali", discord_id="1000")
    token = await invitation(world, referrer)
    page = await world.client.get(f"/i/{token}")
    assert page.status == 200
    text = await page.text()
    assert "Sofiane" in text and "Benali" not in text
    assert f'href="/r/{code}/join?i={token}"' in text
    response = await world.client.get(f"/r/{code}/join?i={token}", allow_redirects=False)
    state = state_of(response.headers["Location"])
    assert (await finish(world, state, "2000000000000002")).status == 200
    row = await participant(world, "2000000000000002")
    assert row["referrer_id"] == referrer
    assert await joined_by(world) == [row["id"]]
    figures = await world.services.db.read(stats.compute)
    assert figures["invitations"]["joined"] == 1
    # Writing back by SMS afterwards: the same person, not a second participant, and the member
    # is not told a second time.
    before = (await world.services.db.fetchone("SELECT COUNT(*) FROM participants"))[0]
    world.recorder.delivered.clear()
    replies = await world.services.conversation.text(Person("sms", RELATIVE, ""), "c'est gratuit ?")
    assert [reply.to.kind for reply in replies] == ["sms"]
    after = (await world.services.db.fetchone("SELECT COUNT(*) FROM participants"))[0]
    assert after == before
    assert await joined_by(world) == [row["id"]]


async def test_a_token_of_another_members_invitation_is_not_counted(world: World) -> None:
    inviter, _ = await add_member(world.services, "Sofiane", discord_id="1000")
    other, other_code = await add_member(world.services, "Inès", discord_id="1001")
    token = await invitation(world, inviter)
    response = await world.client.get(f"/r/{other_code}/join?i={token}", allow_redirects=False)
    state = state_of(response.headers["Location"])
    assert (await finish(world, state, "2000000000000003")).status == 200
    assert (await participant(world, "2000000000000003"))["referrer_id"] == other
    assert await joined_by(world) == [None]


async def test_someone_already_known_does_not_count_the_invitation(world: World) -> None:
    inviter, code = await add_member(world.services, "Sofiane", discord_id="1000")
    await world.services.referrals.join("2000000000000004", "Known")  # left the server since
    token = await invitation(world, inviter)
    response = await world.client.get(f"/r/{code}/join?i={token}", allow_redirects=False)
    assert (
        await finish(world, state_of(response.headers["Location"]), "2000000000000004")
    ).status == 200
    assert (await participant(world, "2000000000000004"))["referrer_id"] is None
    assert await joined_by(world) == [None]


@pytest.mark.parametrize("token", ["nope1234", "x", "a%20b", "../../etc"])
async def test_an_unknown_invitation_link_is_a_friendly_404(world: World, token: str) -> None:
    response = await world.client.get(f"/i/{token}")
    assert response.status == 404
    assert "Traceback" not in await response.text()


async def left(world: World) -> None:
    """The invitation left (what Twilio's accepted send records): its link is now a 'yes'."""
    await world.services.db.write(
        lambda conn: conn.execute(
            "UPDATE invitations SET status = 'sent', sent_at = '2026-03-09T10:00:00+00:00'"
        )
    )


async def test_a_relative_opening_their_link_joins_and_gets_a_code_to_pass_on(
    world: World,
) -> None:
    referrer, _code = await add_member(world.services, "Sofiane Benali", discord_id="1000")
    token = await invitation(world, referrer)
    await left(world)
    head = await world.client.head(f"/i/{token}")  # a link preview is not a visit
    assert head.status == 200
    assert await joined_by(world) == [None]
    page = await world.client.get(f"/i/{token}")
    assert page.status == 200
    text = await page.text()
    assert "Sofiane vous a parlé" in text and "Benali" not in text
    row = await world.services.db.fetchone(
        "SELECT id, code, referrer_id, channel FROM participants WHERE kind = 'relative'"
    )
    assert row["referrer_id"] == referrer and row["code"]
    shown = f"{PUBLIC}/r/{row['code'][:4]}-{row['code'][4:]}"
    assert shown in text and f'href="/stop/{token}"' in text
    assert await joined_by(world) == [row["id"]]
    # The member is told that the relative joined (delivered in the background).
    for _ in range(500):
        if world.recorder.delivered:
            break
        await asyncio.sleep(0.01)
    [notice] = [r for r in world.recorder.delivered if r.to.id == "1000"]
    assert "Sarah a rejoint" in notice.text
    # A second visit: the same page, no second participant, no second notice.
    assert "Sofiane vous a parlé" in await (await world.client.get(f"/i/{token}")).text()
    count = await world.services.db.fetchone("SELECT COUNT(*) FROM participants")
    assert count[0] == 2
    # A young person who comes through the relative's code shows as "via un proche".
    await world.services.referrals.join("3000", "Lina", referrer_id=row["id"], channel="code")
    kin = await world.services.db.read(relatives.figures)
    assert kin == {"relatives": 1, "via_relative": 1}
    figures = await world.services.db.read(stats.invitations)
    assert figures["joined"] == 1 and figures["opted_out"] == 0


async def test_a_link_whose_invitation_never_left_is_not_a_visit(world: World) -> None:
    referrer, _ = await add_member(world.services, "Sofiane", discord_id="1000")
    token = await invitation(world, referrer)  # still queued
    page = await (await world.client.get(f"/i/{token}")).text()
    assert "Rejoindre sur Discord" in page
    assert await joined_by(world) == [None]
