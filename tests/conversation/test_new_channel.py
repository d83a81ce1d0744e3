"""A new channel plugs in without touching the brain: one adapter, one ``Channel`` value.

``WebChat`` below is a complete (if tiny) adapter for a made-up web chat: it turns an incoming
message into a ``Person`` and a ``Conversation.text`` call, answers its own user with the replies
addressed to them, hands every other reply to the shared delivery router, and is itself the
router's deliverer for its channel (a staff member answering a hand-off reaches the web chat
user through it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from bot.bootstrap import App, build_app
from bot.ports import Channel, Person, Reply, Target
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


def test_the_brain_does_not_know_the_new_channel() -> None:
    for path in [*(ROOT / "bot").rglob("*.py"), *(ROOT / "referrals").rglob("*.py")]:
        assert "webchat" not in path.read_text(encoding="utf-8"), path
