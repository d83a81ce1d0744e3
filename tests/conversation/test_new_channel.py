"""A new channel plugs in without touching the brain: one adapter, one ``Channel`` value with
its traits (``bot.ports.CHANNELS``).

``WebChat`` below is a complete (if tiny) adapter for a made-up web chat: it turns an incoming
message into a ``Person`` and a ``Conversation.text`` call, answers its own user with the replies
addressed to them, hands every other reply to the shared delivery router, and is itself the
router's deliverer for its channel (a staff member answering a hand-off reaches the web chat
user through it). An unknown channel is a chat, like Discord.

``WhatsApp`` is addressed by phone number: its traits say so (``by_phone``, ``keywords``), and it
gets the SMS rules with no change in the brain: only mobiles of the allowed countries are
answered, STOP/CONSEILLER/refusals in words are commands, the phone quotas apply. Its replies are
not SMS, so they do not count in SMS_DAILY_BUDGET (``paid`` is off).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from bot.bootstrap import App, build_app
from bot.ports import CHANNELS, Channel, ChannelTraits, Person, Reply, Target
from bot.settings import Settings, parse_quiet_hours

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class WebChat:
    """The adapter: the only code a new channel needs (besides its transport)."""

    app: App
    outbox: dict[str, list[str]] = field(default_factory=dict)  # what each user's screen shows

    def __post_init__(self) -> None:
        self.app.router.attach("webchat", self)

    async def receive(self, user_id: str, name: str, text: str) -> None:
        person = Person(cast(Channel, "webchat"), user_id, name)
        replies = await self.app.conversation.text(person, text)
        mine = [r for r in replies if r.to == Target.of(person)]
        for reply in mine:
            await self.deliver(reply)
        await self.app.router.deliver([r for r in replies if r not in mine])

    async def deliver(self, reply: Reply) -> bool:
        lines = [reply.text, *(f"[{b.label}]" for b in reply.buttons)]
        self.outbox.setdefault(reply.to.id, []).append("\n".join(lines))
        return True


@dataclass
class Staff:
    posts: list[Reply] = field(default_factory=list)

    async def notify_staff(self, reply: Reply) -> None:
        self.posts.append(reply)


class NoSms:
    async def send(self, to: str, body: str, *, status_callback: str | None = None) -> str:
        raise AssertionError("no SMS in this story")


async def open_app(tmp_path: Path, staff: Staff) -> App:
    settings = replace(Settings(), sms_quiet_hours=parse_quiet_hours(""))
    app = await build_app(settings, tmp_path / "relais.db", transport=NoSms(), notifier=staff)
    moment = datetime(2026, 3, 9, 11, 0, tzinfo=UTC)
    app.conversation.guard.clock = lambda: moment  # the flood lands in one minute, however slow
    return app


async def test_a_new_channel_gets_answers_hand_offs_and_limits(tmp_path: Path) -> None:
    staff = Staff()
    app = await open_app(tmp_path, staff)
    chat = WebChat(app)
    try:
        await chat.receive("w-1", "Lina", "c'est gratuit ?")
        [answer] = chat.outbox["w-1"]
        assert "[" in answer  # an answer with its "useful?" buttons, as on Discord
        await chat.receive("w-1", "Lina", "/conseiller j'ai besoin d'aide")
        assert len(staff.posts) == 1 and "Lina" in staff.posts[0].text
        # Rows are the same as for any other channel: the question, the hand-off.
        questions = await app.db.fetchone("SELECT COUNT(*) FROM questions")
        handoffs = await app.db.fetchone("SELECT COUNT(*) FROM handoffs")
        assert questions is not None and questions[0] == 1
        assert handoffs is not None and handoffs[0] == 1
        # The same screening: a flood is limited.
        for _ in range(12):
            await chat.receive("w-1", "Lina", "et le permis ?")
        limited = app.conversation.t("limits.question", "fr")
        assert chat.outbox["w-1"][-1] == limited
    finally:
        await app.close()


async def test_replies_for_the_new_channel_wait_until_it_is_attached(tmp_path: Path) -> None:
    app = await open_app(tmp_path, Staff())
    try:
        await app.router.deliver([Reply(Target(cast(Any, "webchat"), "w-2"), "bonjour")])
        chat = WebChat(app)  # attaches its channel
        assert await app.router.flush() == 1
        assert chat.outbox == {"w-2": ["bonjour"]}
    finally:
        await app.close()


def test_the_brain_does_not_know_the_new_channels() -> None:
    for path in [*(ROOT / "bot").rglob("*.py"), *(ROOT / "referrals").rglob("*.py")]:
        text = path.read_text(encoding="utf-8").casefold()
        assert "webchat" not in text, path
        # (bot/web.py names WhatsApp's link-preview robot, an adapter's business)
        assert "whatsapp" not in text or path.name == "web.py", path


# ---------------------------------------------------------------- a phone-addressed channel

# The one line a WhatsApp channel would add to ``bot.ports.CHANNELS``.
WHATSAPP = ChannelTraits(by_phone=True, keywords=True, buttons=False, max_text=4096, register="sms")
MOBILE = "+33612345678"


@dataclass
class WhatsApp:
    """The adapter of a WhatsApp-like channel (its provider's webhook would call ``receive``)."""

    app: App
    screens: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.app.router.attach("whatsapp", self)

    async def receive(self, number: str, text: str) -> list[str]:
        person = Person(cast(Channel, "whatsapp"), number, "")
        replies = await self.app.conversation.text(person, text)
        mine = [r for r in replies if r.to == Target.of(person)]
        for reply in mine:
            assert not reply.buttons  # the channel has none: menus are typed
            await self.deliver(reply)
        await self.app.router.deliver([r for r in replies if r not in mine])
        return [r.text for r in mine]

    async def deliver(self, reply: Reply) -> bool:
        self.screens.setdefault(reply.to.id, []).append(reply.text)
        return True


async def count(app: App, sql: str, *params: object) -> int:
    row = await app.db.fetchone(sql, tuple(params))
    assert row is not None
    return int(row[0])


async def test_a_phone_addressed_channel_gets_the_sms_rules_without_a_brain_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(CHANNELS, "whatsapp", WHATSAPP)
    staff = Staff()
    app = await open_app(tmp_path, staff)
    chat = WhatsApp(app)
    t = app.conversation.t
    try:
        # Screening of the sender: a premium-rate number gets nothing, and it is counted.
        assert await chat.receive("+33899123456", "AIDE") == []
        refused = "SELECT COUNT(*) FROM events WHERE kind = 'sms_sender_refused'"
        assert await count(app, refused) == 1
        # A question is answered in the short written form, to a stranger in "vous".
        [answer] = await chat.receive(MOBILE, "c'est gratuit ?")
        assert answer and answer != t("sms.unknown_vous", "fr")
        # Keywords are commands: AIDE lists them.
        assert await chat.receive(MOBILE, "AIDE") == [t("sms.help_vous", "fr")]
        # The phone quota: 6 questions a minute; past it, a refusal (not paid: it may be said).
        flood = [await chat.receive(MOBILE, f"question {i} : et le permis ?") for i in range(8)]
        limited = [r for r in flood if r == [t("limits.sms", "fr")]]
        assert len(limited) == 3  # 1 question above + 5 of the flood answered, 3 refused
        # CONSEILLER: two hand-offs a day, each a staff post with the number to call back.
        handoffs = [await chat.receive(MOBILE, "CONSEILLER") for _ in range(3)]
        assert await count(app, "SELECT COUNT(*) FROM handoffs") == 2
        assert len(staff.posts) == 2 and all(MOBILE in p.text for p in staff.posts)
        assert handoffs[2] == [t("limits.handoff", "fr")]
        later = datetime(2026, 3, 9, 11, 5, tzinfo=UTC)
        app.conversation.guard.clock = lambda: later  # the flood's minute is over
        # A refusal in the person's own words opts the number out, like STOP; then silence.
        [confirmed] = await chat.receive(MOBILE, "ne me recontactez plus")
        assert confirmed == t("sms.stop_confirmed_vous", "fr")
        opted = "SELECT COUNT(*) FROM opt_outs WHERE phone_hash = ?"
        assert await count(app, opted, app.sms.hash(MOBILE)) == 1
        assert await chat.receive(MOBILE, "c'est gratuit ?") == []
        # Its replies are not SMS: nothing counted in SMS_DAILY_BUDGET.
        assert await count(app, "SELECT COUNT(*) FROM outbound_sms") == 0
    finally:
        await app.close()
