"""Slash commands, the modal, buttons, DMs, ``discord sync`` and ``discord check`` through the
gateway and REST of a fake Discord, with the real RelaisBot and discord.py."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from fake_discord import (
    APP_ID,
    BOT_PERMISSIONS,
    GUILD_ID,
    P_MANAGE_GUILD,
    FakeDiscord,
    LiveBot,
    live_settings,
)

from bot.cli import Context
from bot.discord_app import cmd_discord_check, cmd_discord_sync

LEA = 5001
CLAIRE = 9001  # staff


@pytest.fixture
def people(fake_discord: FakeDiscord) -> None:
    fake_discord.add_member(LEA, "lea")
    fake_discord.add_member(CLAIRE, "claire", staff=True)


def deferred_privately(call: Any) -> bool:
    return call.json["type"] == 5 and call.json["data"]["flags"] & 64 == 64


@pytest.mark.usefixtures("people")
async def test_every_youth_command_defers_privately_then_answers(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    for name, options in [
        ("aide", {}),
        ("parrainage", {}),
        ("question", {"texte": "c koi le cej"}),
        ("code", {"code": "NOPE-0000"}),
        ("conseiller", {"message": "je veux parler à quelqu'un"}),
    ]:
        exchange = await fake_discord.slash(name, LEA, options)
        calls = await exchange.wait(2)
        assert deferred_privately(calls[0]), name
        assert exchange.text.strip(), name
        assert all(m["flags"] & 64 for m in exchange.followups), name  # ephemeral follow-ups
    # /conseiller posted for the team in the staff channel.
    [post] = await fake_discord.wait_for_staff_post()
    assert "lea" in post["content"]


@pytest.mark.usefixtures("people")
async def test_mesdonnees_uploads_a_file_and_oublier_asks_with_a_button(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    await (await fake_discord.slash("parrainage", LEA)).wait(2)
    exchange = await fake_discord.slash("mesdonnees", LEA)
    calls = await exchange.wait(2)
    assert any(name.endswith(".json") for c in calls for name in c.files)
    exchange = await fake_discord.slash("oublier", LEA)
    await exchange.wait(2)
    [message] = exchange.followups
    [row] = message["components"]
    ids = [b["custom_id"] for b in row["components"]]
    assert any(i.endswith(":yes") for i in ids)
    # The member's invite is deleted with the rest when they confirm.
    code = next(iter(fake_discord.invites))
    yes = next(i for i in ids if i.endswith(":yes"))
    click = await fake_discord.click(yes, LEA)
    calls = await click.wait(2)
    assert calls[0].json["type"] == 7  # the buttons are removed from the message
    await fake_discord.wait_for_calls("DELETE", rf"/invites/{code}$")
    assert code not in fake_discord.invites


@pytest.mark.usefixtures("people")
async def test_staff_commands_upload_files_and_are_refused_to_others(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    exchange = await fake_discord.slash("stats", CLAIRE)
    calls = await exchange.wait(2)
    assert deferred_privately(calls[0])
    charts = [n.rsplit(".", 1)[-1] for c in calls for n in c.files]
    assert len(charts) >= 2 and set(charts) == {"png"}
    exchange = await fake_discord.slash("export", CLAIRE)
    calls = await exchange.wait(2)
    assert [n.rsplit(".", 1)[-1] for c in calls for n in c.files] == ["csv", "csv"]
    for name, options in [
        ("campagne", {"nom": "VAN-NANTES", "canal": "van"}),
        ("chaine", {"membre": "lea"}),
        ("inscrit", {"membre": "lea"}),
    ]:
        exchange = await fake_discord.slash(name, CLAIRE, options)
        await exchange.wait(2)
        assert exchange.text.strip(), name
    refused = await fake_discord.slash("stats", LEA)
    [call] = await refused.wait(1)
    assert call.json["type"] == 4 and call.json["data"]["flags"] & 64  # a private refusal
    assert not call.files


@pytest.mark.usefixtures("people")
async def test_inviter_modal_opens_and_its_submit_sends_the_sms(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    exchange = await fake_discord.slash("inviter", LEA)
    [call] = await exchange.wait(1)
    assert call.json["type"] == 9  # a modal
    modal = call.json["data"]
    kinds = [c["type"] for c in modal["components"]]
    assert set(kinds) <= {10, 18}  # text display and labels only: every input in a ui.Label
    submit = await fake_discord.submit_modal(modal, LEA, ["06 12 34 56 78", "Sam", "Lea", True])
    calls = await submit.wait(2)
    assert deferred_privately(calls[0])
    assert "Sam" in submit.text
    [row] = await live.app.db.fetchall("SELECT status FROM invitations")
    assert row[0] != "cancelled"  # the ticked box was the confirmation: no buttons asked


@pytest.mark.usefixtures("people")
async def test_a_modal_opened_before_a_restart_says_to_reopen_it(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    exchange = await fake_discord.slash("inviter", LEA)
    [call] = await exchange.wait(1)
    modal = call.json["data"]
    await live.restart()
    submit = await fake_discord.submit_modal(modal, LEA, ["06 12 34 56 78", "Sam", "Lea", True])
    [answer] = await submit.wait(1)
    assert answer.json["type"] == 4 and answer.json["data"]["flags"] & 64
    assert "/inviter" in answer.json["data"]["content"]


@pytest.mark.usefixtures("people")
async def test_buttons_still_work_after_a_restart(fake_discord: FakeDiscord, live: LiveBot) -> None:
    exchange = await fake_discord.slash("inviter", LEA, {"numero": "06 12 34 56 78"})
    await exchange.wait(2)
    [message] = exchange.followups
    yes = next(
        b["custom_id"]
        for row in message["components"]
        for b in row["components"]
        if b["custom_id"].endswith(":yes")
    )
    await live.restart()
    click = await fake_discord.click(yes, LEA)
    calls = await click.wait(2)
    assert calls[0].json["type"] == 7
    assert click.text.strip()


@pytest.mark.usefixtures("people")
async def test_a_direct_message_is_answered_without_the_message_content_intent(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    await fake_discord.direct_message(LEA, "c koi le cej")
    [answer] = await fake_discord.wait_for_dm(LEA)
    assert "CEJ" in answer["content"]
    assert not fake_discord.intents & (1 << 15)  # MESSAGE_CONTENT not requested


async def test_a_mention_in_a_display_name_never_pings(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    fake_discord.add_member(5002, f"<@{CLAIRE}> @everyone")
    exchange = await fake_discord.slash("conseiller", 5002)
    await exchange.wait(2)
    [post] = await fake_discord.wait_for_staff_post()
    assert f"<@{CLAIRE}>" not in post["content"] and "@everyone" not in post["content"]
    assert post["allowed_mentions"]["parse"] == []


# ---------------------------------------------------------------- relais discord sync / check


def context(**overrides: Any) -> Context:
    args = argparse.Namespace(guild=overrides.pop("guild", None), db=None)
    return Context(live_settings(**overrides), args)


async def test_sync_publishes_every_command(fake_discord: FakeDiscord) -> None:
    assert await cmd_discord_sync(context()) == 0
    [put] = fake_discord.calls("PUT", rf"/applications/{APP_ID}/commands$")
    names = {c["name"] for c in put.json}
    assert {"parrainage", "inviter", "stats", "oublier", "attribution"} <= names
    assert await cmd_discord_sync(context(guild=GUILD_ID)) == 0
    assert fake_discord.calls("PUT", rf"/applications/{APP_ID}/guilds/{GUILD_ID}/commands$")


async def test_check_all_good(
    fake_discord: FakeDiscord, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_discord.add_member(CLAIRE, "claire", staff=True)
    ctx = context()
    assert await cmd_discord_check(ctx) == 0
    out = capsys.readouterr().out
    assert ctx.t("discord.check.all_good") in out and "❌" not in out


async def test_check_without_the_members_intent_prints_lines_and_never_raises(
    fake_discord: FakeDiscord, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_discord.app_flags = 0
    fake_discord.members_intent = False  # GET /guilds/ID/members -> 403 (50001)
    fake_discord.interactions_endpoint_url = "https://example.org/interactions"
    fake_discord.set_bot_permissions(BOT_PERMISSIONS & ~P_MANAGE_GUILD)
    ctx = context()
    assert await cmd_discord_check(ctx) == 1
    out = capsys.readouterr().out
    for key, params in [
        ("members_intent_missing", {}),
        ("staff_role_uncounted", {"name": "Staff"}),
        ("interactions_endpoint_set", {"url": "https://example.org/interactions"}),
        ("permission_missing", {"name": ctx.t("discord.perm.manage_guild")}),
    ]:
        assert ctx.t(f"discord.check.{key}", **params) in out


async def test_check_counts_invites_against_the_cap(
    fake_discord: FakeDiscord, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_discord.add_member(CLAIRE, "claire", staff=True)
    for n in range(905):
        fake_discord.add_invite(f"i{n}", CLAIRE)
    ctx = context()
    assert await cmd_discord_check(ctx) == 1
    assert ctx.t("discord.check.invites_near_cap", count=905, cap=1000) in capsys.readouterr().out


async def test_check_turns_a_refused_guild_into_a_line(
    fake_discord: FakeDiscord, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_discord.forbid("GET", rf"/guilds/{GUILD_ID}/members/\d+$", code=50001)
    ctx = context()
    assert await cmd_discord_check(ctx) == 1
    assert "403" in capsys.readouterr().out


@pytest.mark.usefixtures("people")
async def test_synchro_publishes_the_tree_from_discord(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    exchange = await fake_discord.slash("synchro", CLAIRE)
    await exchange.wait(2)
    [put] = fake_discord.calls("PUT", rf"/applications/{APP_ID}/commands$")
    inviter = next(c for c in put.json if c["name"] == "inviter")
    assert inviter["name_localizations"].get("en-US") and inviter["options"][0]["name"] == "numero"
    assert str(len(put.json)) in exchange.text


@pytest.mark.usefixtures("people")
async def test_a_429_on_a_follow_up_is_waited_out(fake_discord: FakeDiscord, live: LiveBot) -> None:
    fake_discord.rate_limit("POST", r"^/webhooks/\d+/tok")
    exchange = await fake_discord.slash("aide", LEA)
    await exchange.wait(3)
    assert [c.status for c in exchange.calls] == [200, 429, 200]
    assert exchange.text.strip()


@pytest.mark.usefixtures("people")
async def test_every_command_in_the_tree_answers_through_the_gateway(
    fake_discord: FakeDiscord, live: LiveBot
) -> None:
    """Each slash command, with its required options, as a staff member sends it: deferred or
    a modal first, then an answer; never Discord's 'This interaction failed'."""
    commands = live.bot.tree.get_commands()
    assert len(commands) >= 15
    for command in commands:
        options = {p.name: "x" * int(p.min_value or 1) for p in command.parameters if p.required}
        exchange = await fake_discord.slash(command.name, CLAIRE, options)
        calls = await exchange.wait(1)
        if calls[0].json["type"] == 9:  # /inviter without a number: the form
            continue
        calls = await exchange.wait(2)
        assert calls[0].json["type"] == 5, command.name
        assert exchange.text.strip(), command.name
