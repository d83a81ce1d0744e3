"""Parity at the wire: one story through the console, and through the real wires: the member's
side through the fake Discord gateway and REST (the /inviter modal, /conseiller, the notices as
DMs), with the bot started as ``relais run`` starts it, and the relative's side through signed
Twilio webhooks into the real aiohttp app, both on the same services.

Both runs must leave the same rows and send the relative the same replies (texts may differ only
in channel formatting: TwiML escaping), and the member's "a rejoint" notice arrives in both, once
the relative says OUI (their questions alone do not make them join).
"""

from __future__ import annotations

import html
import re
import sys
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from console_session import Story
from twilio.request_validator import RequestValidator

from bot.bootstrap import web_app
from bot.settings import Settings, parse_quiet_hours
from referrals.store import Database

# The fake Discord lives with the Discord tests (its folder is on sys.path only when they run).
sys.path.append(str(Path(__file__).resolve().parents[1] / "discord"))
from fake_discord import (
    STAFF_CHANNEL_ID,
    FakeDiscord,
    LiveBot,
    fake_discord,
    live_settings,
)

__all__ = ["fake_discord"]  # the fixture, used by the test below

PUBLIC = "https://relais.example.fr"
TOKEN = "twilio-auth-token-for-tests"
RELATIVE = "+33612345678"
QUESTIONS = ["c'est gratuit ?", "il faut quel âge ?"]
KEVIN = 5001  # the member, on the fake Discord
STORY = [
    ("member", "invite"),  # console: /inviter 06 12 34 56 78 Sarah, then oui; Discord: the modal
    ("member", "conseiller"),
    *[("relative", q) for q in QUESTIONS],
    *[("relative", "CONSEILLER")] * 3,
    *[("relative", f"et pour le permis de conduire, question {i} ?") for i in range(10)],
    ("relative", "OUI"),
    ("relative", "STOP"),
]


class FixedClock:
    def __call__(self) -> datetime:
        return datetime(2026, 3, 9, 11, 0, tzinfo=UTC)


def settings() -> Settings:
    return replace(
        Settings(),
        sms_quiet_hours=parse_quiet_hours(""),
        public_base_url=PUBLIC,
        twilio_auth_token=TOKEN,
    )


def printed(output: str) -> list[tuple[str, str]]:
    """The console's messages: (recipient, text), continuation lines joined."""
    messages: list[tuple[str, str]] = []
    for line in output.splitlines():
        if line.startswith("  ") and messages:
            who, text = messages[-1]
            messages[-1] = (who, text + "\n" + line[2:])
        elif " <- " in line:
            who, _, text = line.partition(" <- ")
            messages.append((who, text))
    return messages


def _no_code(text: str) -> str:
    """Personal codes are random: the same text carries a different code in each run."""
    return re.sub(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}\b", "CODE", text)


async def snapshot(db: Database) -> dict[str, Any]:
    """What the story left, without ids, times, tokens or keyed hashes."""

    async def rows(sql: str) -> list[tuple[Any, ...]]:
        return sorted((tuple(row) for row in await db.fetchall(sql)), key=repr)

    return {
        "participants": await rows(
            # A console person has no locale (the default language, fr, applies); Discord's is fr.
            "SELECT kind, channel, referrer_id IS NOT NULL, COALESCE(lang, 'fr'), display_name,"
            " last_seen_at IS NOT NULL FROM participants"
        ),
        "invitations": await rows(
            "SELECT status, first_name, lang, joined_participant_id IS NOT NULL FROM invitations"
        ),
        "handoffs": await rows("SELECT participant_id IS NOT NULL, text, status FROM handoffs"),
        "questions": await rows("SELECT lang, text, entry_id, answered FROM questions"),
        "opt_outs": await rows("SELECT COUNT(*) FROM opt_outs"),
        "outbound": [
            tuple(_no_code(v) if isinstance(v, str) else v for v in row)
            for row in await rows(
                # An invitation's text holds its random link token: compared for replies only.
                "SELECT purpose, status, CASE WHEN purpose = 'reply' THEN body END"
                " FROM outbound_sms"
            )
        ],
        "outbox": await rows("SELECT target_kind, body FROM outbox"),
        "events": sorted(Counter(r[0] for r in await rows("SELECT kind FROM events")).items()),
    }


MEMBER_LINES = {
    "invite": ["/inviter 06 12 34 56 78 Sarah", "oui"],
    "conseiller": ["/conseiller je voudrais parler de ma formation"],
}


async def through_the_console(tmp_path: Path) -> tuple[list[list[str]], list[str], dict[str, Any]]:
    story = await Story.open(tmp_path, "console.db", **vars_of(settings()))
    story.app.conversation.guard.clock = FixedClock()
    replies: list[list[str]] = []
    notices: list[str] = []
    try:
        for who, line in STORY:
            if who == "member":
                for typed in MEMBER_LINES[line]:
                    await story.say(f"discord:kevin {typed}")
                continue
            messages = printed(await story.say(f"sms:{RELATIVE} {line}"))
            replies.append([text for to, text in messages if to == f"sms:{RELATIVE}"])
            notices += [text for to, text in messages if to == "discord:kevin"]
        return replies, notices, await snapshot(story.app.db)
    finally:
        await story.close()


def vars_of(value: Settings) -> dict[str, Any]:
    return {
        "public_base_url": value.public_base_url,
        "twilio_auth_token": value.twilio_auth_token,
    }


async def member_on_discord(fake: FakeDiscord, live: LiveBot, step: str) -> None:
    """The member's step as a Discord client sends it; waits for the bot's answer."""
    if step == "invite":
        opened = await fake.slash("inviter", KEVIN)
        [call] = await opened.wait(1)
        modal = call.json["data"]  # number, first name, the member's name, consent ticked
        submit = await fake.submit_modal(modal, KEVIN, ["06 12 34 56 78", "Sarah", "kevin", True])
        await submit.wait(2)
        assert "Sarah" in submit.text
    elif step == "conseiller":
        posts = len(fake.sent_to(STAFF_CHANNEL_ID))
        exchange = await fake.slash(
            "conseiller", KEVIN, {"message": "je voudrais parler de ma formation"}
        )
        await exchange.wait(2)
        await fake.wait_for_staff_post(posts + 1)  # through the delivery router


async def through_the_wires(
    fake: FakeDiscord, tmp_path: Path
) -> tuple[list[list[str]], list[str], dict[str, Any]]:
    fake.add_member(KEVIN, "kevin")
    live = LiveBot(
        fake,
        live_settings(public_base_url=PUBLIC, twilio_auth_token=TOKEN),
        tmp_path / "wires.db",
    )
    await live.start()  # as ``relais run``: bot, router channels, outbox flushed at READY
    app = live.app
    app.conversation.guard.clock = FixedClock()
    client: TestClient[Any, Any] = TestClient(TestServer(web_app(app), host="127.0.0.1"))
    await client.start_server()  # the web server of the same process
    replies: list[list[str]] = []
    try:
        for number, (who, line) in enumerate(STORY):
            if who == "member":
                await member_on_discord(fake, live, line)
                await app.sms.dispatch_due()
                continue
            params = {"MessageSid": f"SM{number:032d}", "From": RELATIVE, "Body": line}
            signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/sms", params)
            response = await client.post(
                "/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}
            )
            assert response.status == 200
            body = await response.text()
            replies.append(
                [html.unescape(m) for m in re.findall(r"<Message>(.*?)</Message>", body, re.S)]
            )
        assert [to for to, _body in live.sms] == [RELATIVE]  # the invitation
        [notice] = await fake.wait_for_dm(KEVIN)  # "Sarah a rejoint", a DM through REST
        return replies, [notice["content"]], await snapshot(app.db)
    finally:
        await client.close()
        await live.stop()


def _no_codes(replies: list[list[str]]) -> list[list[str]]:
    return [[_no_code(text) for text in r] for r in replies]


async def test_the_same_story_through_the_console_and_the_wires(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    console_replies, console_notices, console_rows = await through_the_console(tmp_path)
    webhook_replies, webhook_notices, webhook_rows = await through_the_wires(fake_discord, tmp_path)
    # Personal codes are random: the same reply carries a different code in each run.
    assert _no_codes(webhook_replies) == _no_codes(console_replies)
    assert webhook_rows == console_rows
    # The story itself, so that two equally broken runs cannot pass.
    assert len(console_notices) == 1 and "Sarah a rejoint" in console_notices[0]
    assert webhook_notices == console_notices
    answered = [bool(r) for r in console_replies]
    assert answered[:2] == [True, True]  # two questions
    assert answered[2:5] == [True, True, True]  # CONSEILLER: two hand-offs, then "already sent"
    assert sum(answered[5:15]) == 4  # the flood: 6 questions a minute, 2 already asked
    assert answered[15] is True  # OUI: they join and get their code (keywords are not limited)
    assert "Votre code" in console_replies[15][0]
    assert answered[16] is True  # STOP is confirmed
    assert len(console_rows["handoffs"]) == 3  # the member's /conseiller, the relative's two
    assert console_rows["opt_outs"] == [(1,)]
