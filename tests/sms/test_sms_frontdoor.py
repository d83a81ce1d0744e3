"""One front door: signed Twilio webhooks into the real aiohttp app of ``relais serve``.

The inbound SMS goes through the same brain as the console and Discord: rate limits, bans, the
hand-off quota, ``last_seen_at``; only mobiles of the allowed countries get a reply; every reply
counts in the daily budget; a reply for someone else (the member whose relative replied) waits in
the outbox until Discord is connected, and is delivered then.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer
from sms_support import LINK, MOBILE, RecordingTransport, add_member, make_settings
from twilio.request_validator import RequestValidator

import bot.conversation
from bot.bootstrap import App, build_app, web_app
from bot.ports import Reply
from bot.sms import gsm
from referrals import stats
from referrals.erasure import forget

PUBLIC = "https://relais.example.fr"
TOKEN = "twilio-auth-token-for-tests"


@dataclass
class Recording:
    """A delivery channel that records (stands for Discord in ``relais run``)."""

    delivered: list[Reply] = field(default_factory=list)

    async def deliver(self, reply: Reply) -> bool:
        self.delivered.append(reply)
        return True


class FixedClock:
    """The guard's clock: every message arrives within the same minute, however slow the CI."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 9, 11, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    app: App
    client: TestClient[Any, Any]
    transport: RecordingTransport
    clock: FixedClock
    sid: int = 0

    async def text(self, body: str, sender: str = MOBILE) -> list[str]:
        """One signed inbound SMS; the bodies of the TwiML reply."""
        self.sid += 1
        params = {"MessageSid": f"SM{self.sid:032d}", "From": sender, "Body": body}
        signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/sms", params)
        response = await self.client.post(
            "/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}
        )
        assert response.status == 200
        return re.findall(r"<Message>(.*?)</Message>", await response.text(), re.S)

    async def count(self, sql: str, *params: object) -> int:
        row = await self.app.db.fetchone(sql, tuple(params))
        assert row is not None
        return int(row[0])


async def open_world(tmp_path: Path, **env: str) -> World:
    settings = make_settings(
        PUBLIC_BASE_URL=PUBLIC,
        TWILIO_AUTH_TOKEN=TOKEN,
        TWILIO_ACCOUNT_SID="AC" + "1" * 32,
        TWILIO_FROM_NUMBER="+33700000000",
        SMS_QUIET_HOURS="",
        **env,
    )
    transport = RecordingTransport()
    app = await build_app(settings, tmp_path / "relais.db", transport=transport)
    clock = FixedClock()
    app.conversation.guard.clock = clock
    client: TestClient[Any, Any] = TestClient(TestServer(web_app(app), host="127.0.0.1"))
    await client.start_server()
    return World(app, client, transport, clock)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    world = await open_world(tmp_path)
    try:
        yield world
    finally:
        await world.client.close()
        await world.app.close()


async def invite_relative(world: World) -> int:
    member = await add_member(world.app.db, "Kevin", discord_id="4242")
    await world.app.sms.invite(member, MOBILE, "Sarah", LINK, "fr")
    await world.app.sms.dispatch_due()
    return member


async def test_a_flood_of_questions_gets_six_replies_a_minute(world: World) -> None:
    await invite_relative(world)
    answered = [await world.text(f"question {i} : c'est gratuit ?") for i in range(20)]
    assert sum(1 for bodies in answered if bodies) == 6  # docs/PRIVACY.md: 6 a minute
    # Keywords are never limited: STOP still works in the middle of a flood.
    assert await world.text("STOP")
    world.clock.now += timedelta(minutes=2)
    assert await world.text("c'est gratuit ?") == []  # opted out: silence


async def test_conseiller_opens_two_handoffs_a_day(world: World) -> None:
    staff = Recording()
    world.app.router.attach("channel", staff)
    await invite_relative(world)
    replies = [await world.text("CONSEILLER") for _ in range(3)]
    assert await world.count("SELECT COUNT(*) FROM handoffs") == 2
    assert len(staff.delivered) == 2 and all(MOBILE in p.text for p in staff.delivered)
    assert replies[2] and replies[2] != replies[0]  # told that the request is already on its way


async def test_banned_numbers_are_refused_and_last_seen_is_kept(world: World) -> None:
    await invite_relative(world)
    await world.text("OUI")
    seen = await world.app.db.fetchone(
        "SELECT id, last_seen_at FROM participants WHERE kind = 'relative'"
    )
    assert seen is not None and seen["last_seen_at"]
    await world.app.db.write(
        lambda conn: conn.execute("UPDATE participants SET banned = 1 WHERE id = ?", (seen[0],))
    )
    before = await world.count("SELECT COUNT(*) FROM questions")
    [refusal] = await world.text("c'est gratuit ?")
    expected = gsm.fit(world.app.conversation.t("limits.banned", "fr"), 2)
    assert html.unescape(refusal) == expected
    assert await world.count("SELECT COUNT(*) FROM questions") == before


@pytest.mark.parametrize(
    "sender",
    ["+447700900123", "+19005550123", "+2348031234567", "+33899123456", "+33142685300", "VERIFY"],
)
async def test_only_mobiles_of_allowed_countries_get_a_reply(
    world: World, sender: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with structlog.testing.capture_logs() as events:
        monkeypatch.setattr(bot.conversation, "log", structlog.get_logger("bot.conversation"))
        assert await world.text("AIDE", sender=sender) == []
    assert await world.count("SELECT COUNT(*) FROM events WHERE kind = 'sms_sender_refused'") == 1
    assert await world.count("SELECT COUNT(*) FROM outbound_sms") == 0
    assert [e["event"] for e in events if e["event"] == "sms_sender_refused"]
    digits = re.sub(r"\D", "", sender)
    assert (digits or sender)[-6:] not in repr(events)


async def test_replies_count_in_the_daily_budget(tmp_path: Path) -> None:
    # The budget counts segments (issue 17): the invitation takes 2, each reply 1 or 2.
    world = await open_world(tmp_path, SMS_DAILY_BUDGET="5")
    staff = Recording()
    world.app.router.attach("channel", staff)
    try:
        await invite_relative(world)
        assert await world.text("AIDE")
        replies = 1
        while await world.text("c'est gratuit ?"):
            replies += 1
            assert replies < 5
        used = await world.count("SELECT SUM(segments) FROM outbound_sms")
        assert used <= 5
        count = await world.count("SELECT COUNT(*) FROM outbound_sms WHERE purpose = 'reply'")
        assert count == replies
        alerts = len(staff.delivered)
        assert alerts >= 1  # the refusal that ended the loop was announced
        for _ in range(3):
            assert await world.text("et le permis ?") == []  # past the budget: no reply
        assert len(staff.delivered) == alerts  # one alert, not one per question
        assert await world.count("SELECT COUNT(*) FROM outbound_sms") == replies + 1
    finally:
        await world.client.close()
        await world.app.close()


async def test_a_question_alone_is_answered_in_vous_and_joins_nobody(world: World) -> None:
    await invite_relative(world)
    [answer] = await world.text("Bonjour, c'est quoi exactement ?")
    assert answer
    assert await world.count("SELECT COUNT(*) FROM participants WHERE kind = 'relative'") == 0
    assert await world.count("SELECT COUNT(*) FROM invitations WHERE joined_participant_id") == 0
    assert await world.count("SELECT COUNT(*) FROM outbox") == 0  # the member is not told
    [helped] = await world.text("AIDE")
    assert html.unescape(helped) == gsm.fit(world.app.conversation.t("sms.help_vous", "fr"), 2)


async def test_the_member_hears_that_their_relative_joined(world: World) -> None:
    await invite_relative(world)
    [welcome] = await world.text("Oui merci")
    assert "Votre code" in html.unescape(welcome) and f"{PUBLIC}/r/" in welcome
    assert await world.count("SELECT COUNT(*) FROM participants WHERE kind = 'relative'") == 1
    assert await world.count("SELECT COUNT(*) FROM invitations WHERE joined_participant_id") == 1
    # relais serve: no Discord here, the notice waits in the outbox ...
    assert await world.count("SELECT COUNT(*) FROM outbox WHERE target_kind = 'discord'") == 1
    # ... and leaves when Discord is attached (relais run).
    discord = Recording()
    world.app.router.attach("discord", discord)
    assert await world.app.router.flush() == 1
    [notice] = discord.delivered
    assert notice.to.id == "4242" and "Sarah a rejoint" in notice.text
    assert await world.count("SELECT COUNT(*) FROM outbox") == 0
    # Saying yes twice joins once and tells the member once.
    assert await world.text("OUI")
    assert await world.count("SELECT COUNT(*) FROM participants WHERE kind = 'relative'") == 1
    assert await world.count("SELECT COUNT(*) FROM outbox") == 0


async def test_no_notice_before_the_invitation_left(tmp_path: Path) -> None:
    world = await open_world(tmp_path)
    try:
        member = await add_member(world.app.db, "Kevin", discord_id="4242")
        await world.app.sms.invite(member, MOBILE, "Sarah", LINK, "fr")  # not dispatched yet
        assert await world.text("CODE")
        assert await world.count("SELECT COUNT(*) FROM outbox") == 0
        joined = "SELECT COUNT(*) FROM invitations WHERE joined_participant_id"
        assert await world.count(joined) == 0
    finally:
        await world.client.close()
        await world.app.close()


async def test_erasure_removes_what_waits_for_the_member(world: World) -> None:
    member = await invite_relative(world)
    await world.text("CODE")
    await forget(world.app.db, member)
    assert await world.count("SELECT COUNT(*) FROM outbox") == 0


async def test_repeated_message_sid_is_answered_once(world: World) -> None:
    await invite_relative(world)
    params = {"MessageSid": "SM" + "e" * 32, "From": MOBILE, "Body": "AIDE"}
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/sms", params)
    bodies = []
    for _ in range(2):
        response = await world.client.post(
            "/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}
        )
        bodies.append(await response.text())
    assert "<Message>" in bodies[0] and "<Message>" not in bodies[1]
    assert await world.count("SELECT COUNT(*) FROM outbound_sms WHERE purpose = 'reply'") == 1


async def test_a_refusal_in_words_opts_out_like_stop(world: World) -> None:
    await invite_relative(world)
    [confirmation] = await world.text("arrêtez de m'écrire, je veux plus de messages")
    expected = gsm.fit(world.app.conversation.t("sms.stop_confirmed_vous", "fr"), 2)
    assert html.unescape(confirmation) == expected
    assert await world.count("SELECT COUNT(*) FROM opt_outs") == 1
    assert await world.count("SELECT COUNT(*) FROM events WHERE kind = 'sms_opted_out'") == 1
    # An opt-out is not a "yes": the relative did not join, the member is not told.
    assert await world.count("SELECT COUNT(*) FROM participants WHERE kind = 'relative'") == 0
    assert await world.count("SELECT COUNT(*) FROM outbox") == 0
    assert await world.text("c'est gratuit ?") == []


@pytest.mark.parametrize(
    "words",
    [
        "Stop merci",
        "STOP svp",
        "stop au 36180",
        "Arrêtez",
        "Non merci",
        "Ne me recontactez plus",
        "Merci de ne plus écrire à mon fils",
    ],
)
async def test_refusals_opt_out_confirm_once_and_count_in_the_funnel(
    world: World, words: str
) -> None:
    await invite_relative(world)
    [confirmation] = await world.text(words)
    assert "vous ne recevrez plus" in html.unescape(confirmation)
    assert await world.text(words) == []  # confirmed once
    funnel = await world.app.db.read(stats.invitations)
    assert funnel["opted_out"] == 1 and funnel["joined"] == 0
    assert await world.count("SELECT COUNT(*) FROM participants WHERE kind = 'relative'") == 0


async def test_how_did_you_get_my_number_names_the_inviter_through_the_webhook(
    world: World,
) -> None:
    await invite_relative(world)
    [french] = await world.text("Vous avez eu mon numéro comment ?")
    assert "donné par Kevin" in html.unescape(french) and "STOP" in french
    [english] = await world.text("How did you get my number?")
    assert "given to us by Kevin" in html.unescape(english) and "STOP" in english
    [stranger] = await world.text("vous avez eu mon numéro comment ?", sender="+33698765432")
    assert "Kevin" not in html.unescape(stranger)
