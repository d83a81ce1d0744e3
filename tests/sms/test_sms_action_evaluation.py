"""An action's evaluation by SMS (issue 22), through signed webhooks into the real aiohttp app,
with the real Twilio transport against the fake Twilio API and one controllable clock: a relative
checks in by texting the action's code, gets one SMS after the end (never in quiet hours), answers
with a digit, then in words, then a free comment; OUI keeps its meaning for a relative."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from sms_support import LINK, Clock, add_member, make_settings, paris
from twilio.request_validator import RequestValidator

from bot.bootstrap import App, build_app, web_app
from bot.ports import Person
from bot.sms.twilio_transport import TwilioTransport

PUBLIC = "https://relais.example.fr"
SAM = "+33611111111"


@dataclass
class World:
    app: App
    client: TestClient[Any, Any]
    fake: FakeTwilio
    transport: TwilioTransport
    clock: Clock
    sid: int = 0

    async def text(self, body: str, sender: str = SAM) -> str:
        """One signed inbound SMS; the text of the TwiML reply."""
        self.sid += 1
        params = {"MessageSid": f"SM{self.sid:032d}", "From": sender, "Body": body}
        signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + "/twilio/sms", params)
        response = await self.client.post(
            "/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}
        )
        assert response.status == 200
        return " ".join(re.findall(r"<Message>(.*?)</Message>", await response.text(), re.S))

    async def tick(self) -> list[str]:
        """The maintenance step, then the SMS worker's: the bodies the fake Twilio got."""
        before = len(self.fake.messages)
        await self.app.conversation.agenda.tick()
        await self.app.sms.dispatch_due()
        return [m["Body"] for m in self.fake.messages[before:]]

    async def row(self) -> tuple[Any, ...]:
        found = await self.app.db.fetchone(
            "SELECT ap.rating, ap.recommend, ap.comment, ap.phone IS NOT NULL"
            " FROM action_people ap JOIN participants p ON p.id = ap.participant_id"
            " WHERE p.phone_hash = ?",
            (self.app.sms.hash(SAM),),
        )
        assert found is not None
        return tuple(found)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    fake = await FakeTwilio().start()
    settings = make_settings(
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM_NUMBER="+33700000000",
        TWILIO_API_URL=fake.base_url,
        PUBLIC_BASE_URL=PUBLIC,
        RELAIS_TZ="Europe/Paris",
    )  # default quiet hours: 20:00-08:00, Sundays, holidays
    transport = TwilioTransport(settings, timeout=30.0, backoff=0.0)
    app = await build_app(settings, tmp_path / "relais.db", transport=transport)
    clock = Clock(paris(2026, 12, 1, 10, 0))
    conversation = app.conversation
    app.sms.clock = conversation.clock = conversation.agenda.clock = clock
    conversation.guard.clock = clock
    client: TestClient[Any, Any] = TestClient(TestServer(web_app(app), host="127.0.0.1"))
    await client.start_server()
    try:
        yield World(app, client, fake, transport, clock)
    finally:
        await client.close()
        await app.close()
        await transport.close()
        await fake.close()


async def test_a_relative_evaluates_an_action_by_sms(world: World) -> None:
    app = world.app
    marie = Person("discord", "marie", "marie", staff=True)
    created = await app.conversation.command(
        marie,
        "action",
        {"type": "sortie", "titre": "Ciné", "debut": "2026-12-09 18:00", "fin": "21:00"},
    )
    assert "SORTIE-0912" in created[0].text
    # alice invites Sam, who says OUI: a relative ("vous").
    member = await add_member(app.db, "alice")
    await app.sms.invite(member, SAM, "Sam", LINK, "fr")
    await app.sms.dispatch_due()
    assert "Votre code" in await world.text("OUI")

    world.clock.set(paris(2026, 12, 9, 18, 30))
    here = await world.text("sortie-0912")
    assert "votre présence à Ciné est enregistrée" in here

    # The action ends at 21:00, in quiet hours: the SMS waits for 08:00.
    world.clock.set(paris(2026, 12, 9, 21, 5))
    assert await world.tick() == []
    world.clock.set(paris(2026, 12, 10, 8, 0))
    [asked] = await world.tick()
    assert asked.startswith("Merci pour votre venue à Ciné (mercredi 09/12) ! Votre note ?")
    assert world.fake.messages[-1]["To"] == SAM
    assert await world.tick() == []  # once

    # OUI is not a rating (a relative's OUI keeps its meaning); a digit is.
    assert "note" not in (await world.text("OUI")).lower()
    assert (await world.row())[0] is None
    assert "En parleriez-vous à quelqu'un ?" in await world.text("5")
    assert "Un commentaire ?" in await world.text("Peut être")
    saved = await world.text("Le film était trop bien")
    assert "votre commentaire sur l'action SORTIE-0912 est noté" in saved
    assert await world.row() == (5, "peut-etre", "Le film était trop bien", 0)
    # Rated: no reminder, ever.
    world.clock.set(paris(2026, 12, 11, 9, 0))
    assert await world.tick() == []
    # The replies were counted in the budget like every SMS, in segments.
    segments = await app.db.fetchone(
        "SELECT COUNT(*) FROM outbound_sms WHERE purpose = 'evaluation' AND segments = 1"
    )
    assert segments is not None and segments[0] == 1
