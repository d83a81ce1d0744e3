"""The command registry: French names, options, staff flag, handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.ports import Person, Reply

if TYPE_CHECKING:
    from bot.conversation import Conversation

Handler = Callable[["Conversation", Person, dict[str, str]], Awaitable[list[Reply]]]


@dataclass(frozen=True)
class Option:
    """One argument of a command."""

    name: str
    required: bool = True
    rest: bool = False  # takes the rest of the line


@dataclass(frozen=True)
class Command:
    """A slash command: its French name, options, who may use it, its handler."""

    name: str
    options: tuple[Option, ...]
    staff: bool  # staff only
    participant: bool  # young people and relatives only: staff are not participants
    handler: Handler


COMMANDS: dict[str, Command] = {}


def command(
    name: str, *options: Option, staff: bool = False, participant: bool = False
) -> Callable[[Handler], Handler]:
    """Register a command handler."""

    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(name, options, staff, participant, handler)
        return handler

    return register
