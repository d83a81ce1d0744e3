"""What flows between the conversation engine and its adapters (console, Discord, SMS, web).

An adapter turns its input into a ``Person`` and a command, text or button choice; the engine
answers with ``Reply`` objects, each addressed to a ``Target``. The adapter delivers them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

Channel = Literal["discord", "sms"]


@dataclass(frozen=True)
class Person:
    """Who speaks: a Discord member (console names stand for Discord users) or a phone number."""

    channel: Channel
    id: str  # Discord user id (console: the NAME), or an E.164 number for SMS
    name: str  # display name (SMS: empty)
    staff: bool = False
    locale: str | None = None  # Discord locale such as "fr" or "en-US"

    @property
    def key(self) -> str:
        """A stable key for per-person state."""
        return f"{self.channel}:{self.id}"


@dataclass(frozen=True)
class Target:
    """Where a reply goes: a Discord user, a phone number, or a server channel (``staff``)."""

    kind: Literal["discord", "sms", "channel"]
    id: str
    name: str = ""

    @classmethod
    def of(cls, person: Person) -> Target:
        """The target that answers this person."""
        return cls(person.channel, person.id, person.name)


@dataclass(frozen=True)
class Button:
    """A choice offered with a message; ``id`` is a stable custom id (survives restarts)."""

    id: str
    label: str
    style: Literal["primary", "secondary", "success", "danger"] = "secondary"


@dataclass(frozen=True)
class Attachment:
    """A file sent with a message (a chart, a CSV, a poster)."""

    filename: str
    data: bytes
    description: str = ""


@dataclass
class Reply:
    """One message the bot sends."""

    to: Target
    text: str
    buttons: list[Button] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    ephemeral: bool = True  # Discord: only the person sees it (personal data)


class StaffNotifier(Protocol):
    """Posts a message in the staff channel (console: printed as ``#staff``)."""

    async def notify_staff(self, reply: Reply) -> None:
        """Post the reply in the staff channel."""
        ...


class SmsTransport(Protocol):
    """Hands one SMS to a provider; returns the provider's message id."""

    async def send(self, to: str, body: str, *, status_callback: str | None = None) -> str:
        """Send ``body`` to the E.164 number ``to``."""
        ...


class InviteMaker(Protocol):
    """Creates a personal server invite for one member (Discord: a never-expiring invite)."""

    async def create_invite(self, member_name: str) -> str:
        """Create the invite; return its code (``discord.gg/<code>``)."""
        ...
