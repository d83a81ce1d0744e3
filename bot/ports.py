"""What flows between the conversation engine and its adapters (console, Discord, SMS, web).

An adapter turns its input into a ``Person`` and a command, text or button choice; the engine
answers with ``Reply`` objects, each addressed to a ``Target``. The adapter delivers them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

# A new channel adds its name here, its traits in ``CHANNELS`` below and one adapter module;
# the brain does not change.
Channel = Literal["discord", "sms"]


@dataclass(frozen=True)
class ChannelTraits:
    """What the brain knows of a channel: its traits, never its name.

    The brain keys every channel-dependent behaviour on these (the architecture test forbids
    ``channel == "sms"`` in it), so a channel that shares a trait shares the behaviour.
    """

    # ``Person.id`` is a phone number: a sender must be a mobile of SMS_ALLOWED_COUNTRIES (else
    # silence), people are known by the number's keyed hash (opt-outs, invited relatives, the
    # hand-off quota), and anyone who is not a member is addressed as "vous".
    by_phone: bool = False
    # STOP, START, AIDE, CODE, CONSEILLER, OUI (French and English forms) are commands, and a
    # refusal in words ("arrêtez", "non merci") opts out.
    keywords: bool = False
    # Shows buttons; without them, replies are text only (menus are typed).
    buttons: bool = True
    # The longest message read: longer is refused in words, or cut when ``by_phone`` (a long SMS
    # arrives in parts that each cost the sender).
    max_text: int = 2000
    # Which written form of the answers: the knowledge base's ``answer`` or its short ``sms``.
    register: Literal["discord", "sms"] = "discord"
    # Each reply costs: counted in SMS_DAILY_BUDGET (segments), and a sender over a rate limit
    # gets silence rather than a paid refusal.
    paid: bool = False


CHAT = ChannelTraits()  # a chat where people are members: Discord, and any unknown channel

# One line per channel. A channel addressed by phone number that should share the SMS rules
# sets ``by_phone`` and ``keywords``; ``paid`` only if its replies are SMS segments.
CHANNELS: dict[str, ChannelTraits] = {
    "discord": CHAT,
    "sms": ChannelTraits(
        by_phone=True, keywords=True, buttons=False, max_text=1600, register="sms", paid=True
    ),
}


def traits(channel: str) -> ChannelTraits:
    """The traits of a channel (an unknown channel is a chat)."""
    return CHANNELS.get(channel, CHAT)


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

    @property
    def traits(self) -> ChannelTraits:
        """What the brain knows of this person's channel."""
        return traits(self.channel)


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


# ---------------------------------------------------------------- what the brain needs


class FaqAnswer(Protocol):
    """What the FAQ engine answers (``bot.faq.FaqAnswer``)."""

    @property
    def id(self) -> str | None: ...
    @property
    def score(self) -> float: ...
    @property
    def kind(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def suggestions(self) -> list[tuple[str, str]]: ...


class FaqEntryView(Protocol):
    """One knowledge-base entry as the brain shows it."""

    @property
    def answer_text(self) -> str: ...


class FaqPort(Protocol):
    """The FAQ engine, as the brain calls it (``bot.faq.FaqEngine``)."""

    def answer(
        self,
        question: str,
        lang: str = "fr",
        *,
        channel: Literal["discord", "sms"] = "discord",
        audience: Literal["youth", "relative"] = "youth",
        inviter: str | None = None,
        detect: bool = True,
    ) -> FaqAnswer:
        """The best answer, suggestions, or an unknown, for a channel and an audience."""
        ...

    def entry(self, entry_id: str, lang: str) -> FaqEntryView:
        """One entry by id; KeyError when unknown."""
        ...

    def short_answer(
        self, entry_id: str, lang: str, audience: str = "youth", inviter: str | None = None
    ) -> str:
        """The entry's answer short enough for an SMS (``relative``: the "vous" register; it
        may name ``inviter``, the member who invited them)."""
        ...


class InvitationResult(Protocol):
    """An accepted invitation: it leaves now (``queued``) or at ``not_before``."""

    @property
    def status(self) -> str: ...
    @property
    def not_before(self) -> datetime: ...


class SmsPort(Protocol):
    """The SMS side, as the brain calls it (``bot.sms.service.SmsService``)."""

    def hash(self, e164: str) -> str:
        """Keyed hash of an E.164 number."""
        ...

    def normalize_number(self, raw: str) -> str:
        """E.164 for a mobile of an allowed country; raises a RelaisError otherwise."""
        ...

    async def check_invitation(self, member_id: int, raw_number: str) -> str:
        """Every rule checkable before consent; returns E.164."""
        ...

    async def invite(
        self,
        member_id: int,
        number: str,
        first_name: str | None,
        link: str,
        lang: str,
        sender_name: str | None = None,
    ) -> InvitationResult:
        """Queue an invitation the member confirmed."""
        ...

    def sender_prefill(self, display_name: str | None) -> str | None:
        """The member's first name as an SMS can carry it, to prefill the invitation form."""
        ...

    async def notify(self, number: str, text: str, purpose: str) -> bool:
        """Queue a message the programme sends on its own (an action's evaluation); False when
        a rule (opt-out, budget, one-way sender) refuses it."""
        ...

    async def account_reply(self, number: str, text: str) -> str | None:
        """The reply to an inbound SMS, fitted for SMS and counted in the daily budget; None
        past the budget (the staff are alerted once)."""
        ...
