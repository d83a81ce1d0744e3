"""Scheduled events follow the agenda of actions (issue 22), through the real RelaisBot,
discord.py's gateway and HTTP client, against the local fake Discord.

The fake Discord of ``fake_discord.py`` does not know scheduled events; ``ScheduledEvents`` below
adds their REST routes to it (create, fetch, modify) and, as Discord does, dispatches the gateway
event of each change.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fake_discord import BOT_ID, GUILD_ID, WAIT, FakeDiscord, LiveBot, RestCall, user_payload

from referrals import actions

STAFF_ID = 7001
LEA_ID = 5001


class ScheduledEvents:
    """Guild scheduled events in the fake: REST routes and gateway dispatches."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.events: dict[str, dict[str, Any]] = {}
        self.ids = itertools.count(800_000_000_000_000_001)
        self.calls: list[RestCall] = []
        original = fake._route

        async def route(method: str, path: str, call: RestCall) -> tuple[int, Any]:
            base = f"/guilds/{GUILD_ID}/scheduled-events"
            if path == base and method == "POST":
                self.calls.append(call)
                event = self.payload(str(next(self.ids)), call.json, creator=BOT_ID)
                self.events[event["id"]] = event
                await fake.dispatch("GUILD_SCHEDULED_EVENT_CREATE", event)
                return 200, event
            if path.startswith(base + "/") and method in {"GET", "PATCH"}:
                event = self.events[path.rsplit("/", 1)[-1]]
                if method == "PATCH":
                    self.calls.append(call)
                    event.update(self.fields(call.json))
                    await fake.dispatch("GUILD_SCHEDULED_EVENT_UPDATE", event)
                return 200, event
            return await original(method, path, call)

        fake._route = route  # type: ignore[method-assign]

    @staticmethod
    def fields(body: dict[str, Any]) -> dict[str, Any]:
        out = {
            k: v
            for k, v in body.items()
            if k
            in {
                "name",
                "description",
                "scheduled_start_time",
                "scheduled_end_time",
                "status",
                "privacy_level",
                "entity_type",
                "entity_metadata",
            }
        }
        return out

    def payload(self, event_id: str, body: dict[str, Any], *, creator: int) -> dict[str, Any]:
        return {
            "id": event_id,
            "guild_id": str(GUILD_ID),
            "channel_id": None,
            "creator_id": str(creator),
            "creator": user_payload(creator, "creator", bot=creator == BOT_ID),
            "name": "",
            "description": None,
            "scheduled_start_time": None,
            "scheduled_end_time": None,
            "privacy_level": 2,
            "status": 1,
            "entity_type": 3,
            "entity_id": None,
            "entity_metadata": {"location": ""},
            "user_count": 0,
            "image": None,
            "recurrence_rule": None,
            **self.fields(body),
        }


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait (generously) until ``check`` holds."""
    async with asyncio.timeout(WAIT):
        # The database has no change notification to wait on: poll it, within a generous limit.
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def local(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo("Europe/Paris")).strftime("%Y-%m-%d %H:%M")


async def test_actions_are_scheduled_events(fake_discord: FakeDiscord, live: LiveBot) -> None:
    events = ScheduledEvents(fake_discord)
    fake_discord.add_member(STAFF_ID, "marie", staff=True)
    await fake_discord.join(LEA_ID, "lea")
    db = live.app.db
    start = (datetime.now(UTC) + timedelta(days=3)).replace(second=0, microsecond=0)

    # Created with /action: the server's event has its name, place, times.
    exchange = await fake_discord.slash(
        "action",
        STAFF_ID,
        {
            "type": "tournoi",
            "titre": "Tournoi FIFA",
            "lieu": "Gymnase Sud",
            "debut": local(start),
            "fin": local(start + timedelta(hours=4)),
        },
    )
    await exchange.wait(2)
    await fake_discord.wait_until(lambda: "Action créée" in exchange.text)
    assert len(events.calls) == 1
    body = events.calls[0].json
    assert body["name"] == "Tournoi FIFA"
    assert body["entity_type"] == 3 and body["privacy_level"] == 2
    assert body["entity_metadata"] == {"location": "Gymnase Sud"}
    assert datetime.fromisoformat(body["scheduled_start_time"]) == start
    assert "/jesuisla TOURNOI-" in body["description"]
    (event_id,) = events.events

    async def stored() -> bool:
        return await db.read(actions.action_by_event, event_id) is not None

    await eventually(stored)
    action = await db.read(actions.action_by_event, event_id)
    assert action is not None and action.title == "Tournoi FIFA"
    guild = live.bot.guild()
    await fake_discord.wait_until(lambda: guild.get_scheduled_event(int(event_id)) is not None)

    # "Intéressé" in Discord's Events tab is recorded for the action.
    await fake_discord.dispatch(
        "GUILD_SCHEDULED_EVENT_USER_ADD",
        {
            "guild_id": str(GUILD_ID),
            "guild_scheduled_event_id": event_id,
            "user_id": str(LEA_ID),
        },
    )

    async def interested() -> bool:
        rows = await db.read(actions.results)
        return bool(rows) and rows[0]["interested"] == 1

    await eventually(interested)

    # Changed with /action: the event follows.
    moved = await fake_discord.slash(
        "action", STAFF_ID, {"code": action.code, "lieu": "Gymnase Nord"}
    )
    await moved.wait(2)
    await fake_discord.wait_until(lambda: len(events.calls) == 2)
    assert events.calls[1].method == "PATCH"
    assert events.calls[1].json["entity_metadata"] == {"location": "Gymnase Nord"}

    # Cancelled with /action: the event is cancelled (status 4).
    cancelled = await fake_discord.slash(
        "action", STAFF_ID, {"code": action.code, "annuler": "oui"}
    )
    await cancelled.wait(2)
    await fake_discord.wait_until(lambda: len(events.calls) == 3)
    assert events.calls[2].json["status"] == 4
    assert events.events[event_id]["status"] == 4
    after = await db.read(actions.action_by_code, action.code)
    assert after is not None and after.cancelled
    # Our own event, come back through the gateway, was not imported a second time.
    assert (await db.fetchone("SELECT COUNT(*) FROM actions"))[0] == 1


async def test_an_event_created_in_discord_becomes_an_action(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    events = ScheduledEvents(fake_discord)
    start = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    event = events.payload(
        "800000000000000099",
        {
            "name": "Atelier slam",
            "scheduled_start_time": start.isoformat(),
            "scheduled_end_time": (start + timedelta(hours=2)).isoformat(),
            "entity_metadata": {"location": "Médiathèque"},
        },
        creator=STAFF_ID,
    )
    events.events[event["id"]] = event
    await fake_discord.dispatch("GUILD_SCHEDULED_EVENT_CREATE", event)
    db = live.app.db

    async def imported() -> bool:
        return await db.read(actions.action_by_event, event["id"]) is not None

    await eventually(imported)
    action = await db.read(actions.action_by_event, event["id"])
    assert action is not None
    assert (action.type, action.title, action.place) == ("atelier", "Atelier slam", "Médiathèque")
    assert action.start == start
    # Cancelled in Discord: the action is cancelled too.
    await fake_discord.dispatch("GUILD_SCHEDULED_EVENT_UPDATE", {**event, "status": 4})

    async def cancelled() -> bool:
        found = await db.read(actions.action_by_event, event["id"])
        return found is not None and found.cancelled

    await eventually(cancelled)


async def test_without_the_manage_events_permission_the_action_still_exists(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    events = ScheduledEvents(fake_discord)
    fake_discord.add_member(STAFF_ID, "marie", staff=True)
    fake_discord.forbid("POST", f"/guilds/{GUILD_ID}/scheduled-events")
    start = (datetime.now(UTC) + timedelta(days=3)).replace(second=0, microsecond=0)
    exchange = await fake_discord.slash(
        "action",
        STAFF_ID,
        {
            "type": "van",
            "titre": "Le van",
            "debut": local(start),
            "fin": local(start + timedelta(hours=2)),
        },
    )
    await exchange.wait(2)
    await fake_discord.wait_until(lambda: "Action créée" in exchange.text)
    assert events.events == {}
    row = await live.app.db.fetchone("SELECT discord_event_id FROM actions")
    assert row is not None and row[0] is None


async def test_discord_check_names_the_manage_events_permission(
    fake_discord: FakeDiscord, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from fake_discord import BOT_PERMISSIONS, P_MANAGE_EVENTS, live_settings

    from bot.cli import Context
    from bot.discord_app import cmd_discord_check

    fake_discord.add_member(STAFF_ID, "marie", staff=True)
    ctx = Context(live_settings(), argparse.Namespace(guild=None, db=None))
    granted = ctx.t("discord.check.permission", name=ctx.t("discord.perm.manage_events"))
    assert await cmd_discord_check(ctx) == 0
    assert granted in capsys.readouterr().out
    fake_discord.set_bot_permissions(BOT_PERMISSIONS & ~P_MANAGE_EVENTS)
    assert await cmd_discord_check(ctx) == 1
    out = capsys.readouterr().out
    missing = ctx.t("discord.check.permission_missing", name=ctx.t("discord.perm.manage_events"))
    assert missing in out and "Gérer les événements" in missing
    assert ctx.t("discord.check.problems", count=1) in out  # only that one


async def test_interested_in_discord_gets_the_reminder_dm_the_day_before(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    events = ScheduledEvents(fake_discord)
    fake_discord.add_member(STAFF_ID, "marie", staff=True)
    await fake_discord.join(LEA_ID, "lea")
    agenda = live.app.conversation.agenda
    now = (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    agenda.clock = lambda: now  # 10:00 in Paris
    start = (now + timedelta(days=2)).replace(hour=14)
    exchange = await fake_discord.slash(
        "action",
        STAFF_ID,
        {
            "type": "atelier",
            "titre": "Atelier CV",
            "debut": local(start),
            "fin": local(start + timedelta(hours=2)),
        },
    )
    await exchange.wait(2)
    await fake_discord.wait_until(lambda: len(events.events) == 1)
    (event_id,) = events.events
    await fake_discord.dispatch(
        "GUILD_SCHEDULED_EVENT_USER_ADD",
        {"guild_id": str(GUILD_ID), "guild_scheduled_event_id": event_id, "user_id": str(LEA_ID)},
    )

    async def interested() -> bool:
        row = await live.app.db.fetchone(
            "SELECT COUNT(*) FROM action_people WHERE interested_at IS NOT NULL"
        )
        return bool(row[0])

    await eventually(interested)
    before = len(fake_discord.dms_to(LEA_ID))
    # Two days before: nothing. The day before (not in quiet hours): one DM, once.
    assert await agenda.tick() == 0
    day_before = start.astimezone(ZoneInfo("Europe/Paris")) - timedelta(days=1)
    agenda.clock = lambda: day_before.replace(hour=10).astimezone(UTC)
    assert await agenda.tick() == 1
    assert await agenda.tick() == 0
    await fake_discord.wait_until(lambda: len(fake_discord.dms_to(LEA_ID)) == before + 1)
    reminder = fake_discord.dms_to(LEA_ID)[-1]["content"]
    assert "Rappel : demain, Atelier CV" in reminder


async def test_an_event_changed_in_discord_changes_the_action(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    events = ScheduledEvents(fake_discord)
    start = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    event = events.payload(
        "800000000000000098",
        {
            "name": "Tournoi",
            "scheduled_start_time": start.isoformat(),
            "scheduled_end_time": (start + timedelta(hours=2)).isoformat(),
            "entity_metadata": {"location": "Gymnase"},
        },
        creator=STAFF_ID,
    )
    await fake_discord.dispatch("GUILD_SCHEDULED_EVENT_CREATE", event)
    db = live.app.db

    async def imported() -> bool:
        return await db.read(actions.action_by_event, event["id"]) is not None

    await eventually(imported)
    later = start + timedelta(hours=3)
    changed = {
        **event,
        "name": "Tournoi FIFA",
        "scheduled_start_time": later.isoformat(),
        "scheduled_end_time": (later + timedelta(hours=2)).isoformat(),
        "entity_metadata": {"location": "Gymnase Nord"},
    }
    await fake_discord.dispatch("GUILD_SCHEDULED_EVENT_UPDATE", changed)

    async def moved() -> bool:
        found = await db.read(actions.action_by_event, event["id"])
        return found is not None and found.start == later

    await eventually(moved)
    found = await db.read(actions.action_by_event, event["id"])
    assert found is not None and (found.title, found.place) == ("Tournoi FIFA", "Gymnase Nord")
