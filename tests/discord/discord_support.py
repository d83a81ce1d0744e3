"""Fixtures of the Discord tests: a real database and conversation, a bot that never logs in,
interactions mocked with ``spec=discord.Interaction``."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import discord
import pytest

from bot.app import App, build_app
from bot.discord_app import RelaisBot
from bot.ports import Reply
from bot.settings import Settings, parse_quiet_hours

STAFF_ROLE_ID = 4242


class Recorder:
    """Staff notifier, SMS transport and invite maker that remember what they were asked."""

    def __init__(self) -> None:
        self.staff: list[Reply] = []
        self.sms: list[tuple[str, str]] = []
        self.invites: list[str] = []
        self._numbers = itertools.count(1)

    def bind(self, bot: Any) -> None:
        """Like DiscordNotifier."""

    async def notify_staff(self, reply: Reply) -> None:
        self.staff.append(reply)

    async def send(self, to: str, body: str, *, status_callback: str | None = None) -> str:
        self.sms.append((to, body))
        return f"SM{len(self.sms)}"

    async def create_invite(self, member_name: str) -> str:
        code = f"inv{next(self._numbers)}"
        self.invites.append(code)
        return code


@pytest.fixture
def settings() -> Settings:
    return Settings(
        discord_staff_role="Staff",
        discord_staff_channel="staff",
        sms_quiet_hours=parse_quiet_hours(""),
        secret="test-secret",
    )


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def app(tmp_path: Path, settings: Settings, recorder: Recorder) -> AsyncIterator[App]:
    built = await build_app(
        settings, tmp_path / "relais.db", transport=recorder, notifier=recorder, invites=recorder
    )
    try:
        yield built
    finally:
        await built.close()


class Users:
    """The Discord users the bot can DM: each has an AsyncMock ``send``."""

    def __init__(self) -> None:
        self.by_id: dict[int, MagicMock] = {}

    def get(self, user_id: int) -> MagicMock:
        if user_id not in self.by_id:
            user = MagicMock(spec=discord.User)
            user.id = user_id
            user.send = AsyncMock()
            self.by_id[user_id] = user
        return self.by_id[user_id]


@pytest.fixture
def users() -> Users:
    return Users()


@pytest.fixture
async def bot(settings: Settings, app: App, recorder: Recorder, users: Users) -> RelaisBot:
    relais = RelaisBot(settings, app, notifier=recorder)  # type: ignore[arg-type]
    await relais.setup_hook()
    relais.get_user = users.get  # type: ignore[method-assign]
    relais.fetch_user = AsyncMock(side_effect=users.get)  # type: ignore[method-assign]
    return relais


def member(user_id: int, name: str, *, staff: bool = False) -> MagicMock:
    """A guild member, with the staff role or not."""
    user = MagicMock(spec=discord.Member)
    user.id = user_id
    user.name = name
    user.display_name = name
    user.bot = False
    role = MagicMock(spec=discord.Role)
    role.id = STAFF_ROLE_ID
    role.name = "Staff"
    user.roles = [role] if staff else []
    return user


def make_interaction(
    bot: RelaisBot,
    user_id: int = 1001,
    name: str = "lea",
    *,
    staff: bool = False,
    locale: discord.Locale = discord.Locale.french,
) -> MagicMock:
    """An interaction on ``spec=discord.Interaction``; ``calls`` keeps the order of answers."""
    interaction = MagicMock(spec=discord.Interaction)
    interaction.client = bot
    interaction.locale = locale
    interaction.user = member(user_id, name, staff=staff)
    interaction.command = None
    calls: list[str] = []
    interaction.calls = calls
    state = {"done": False}

    def recorder_of(label: str, done: bool = True) -> AsyncMock:
        async def record(*args: Any, **kwargs: Any) -> None:
            calls.append(label)
            if done:
                state["done"] = True

        return AsyncMock(side_effect=record)

    response = MagicMock()
    response.defer = recorder_of("defer")
    response.send_message = recorder_of("send_message")
    response.send_modal = recorder_of("send_modal")
    response.edit_message = recorder_of("edit_message")
    response.is_done = MagicMock(side_effect=lambda: state["done"])
    interaction.response = response
    followup = MagicMock()
    followup.send = recorder_of("followup")
    interaction.followup = followup
    return interaction


def sent(interaction: MagicMock) -> list[dict[str, Any]]:
    """The follow-ups sent, as keyword arguments (content, ephemeral, view, files)."""
    result = []
    for call in interaction.followup.send.await_args_list:
        kwargs = dict(call.kwargs)
        if call.args:
            kwargs["content"] = call.args[0]
        result.append(kwargs)
    return result


def button_ids(message: dict[str, Any]) -> list[str]:
    """The custom ids of a message's buttons."""
    view = message.get("view")
    return [item.custom_id for item in view.children] if view is not None else []
