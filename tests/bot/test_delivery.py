"""The delivery router: attached channels get their replies, the others wait in the outbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.delivery import MAX_ATTEMPTS, DeliveryRouter
from bot.ports import Attachment, Button, Reply, Target
from referrals.retention import RetentionPolicy, apply_retention
from referrals.store import Database


@dataclass
class Flaky:
    """A channel that fails ``failures`` times, then delivers."""

    failures: int = 0
    got: list[Reply] = field(default_factory=list)

    async def deliver(self, reply: Reply) -> bool:
        if self.failures:
            self.failures -= 1
            return False
        self.got.append(reply)
        return True


class Broken:
    async def deliver(self, reply: Reply) -> bool:
        raise RuntimeError("gateway closed")


async def test_unattached_and_failing_channels_keep_the_reply(tmp_db: Database) -> None:
    router = DeliveryRouter(tmp_db)
    reply = Reply(
        Target("discord", "42", "Kevin"),
        "Sarah a répondu",
        buttons=[Button("faq:useful:x", "Utile", "success")],
        attachments=[Attachment("a.csv", b"\x00\x01", "data")],
        ephemeral=False,
    )
    await router.deliver([reply])  # nothing attached: kept
    router.attach("discord", Broken())
    await router.deliver([reply])  # raising: kept, never raised to the caller
    assert await router.flush() == 0
    flaky = Flaky(failures=1)
    router.attach("discord", flaky)
    assert await router.flush() == 1  # one of the two failed once more and is still there
    assert await router.flush() == 1
    assert flaky.got == [reply, reply]  # buttons, attachment and flags survive the outbox
    row = await tmp_db.fetchone("SELECT COUNT(*) FROM outbox")
    assert row is not None and row[0] == 0


async def test_the_router_is_the_staff_notifier(tmp_db: Database) -> None:
    router = DeliveryRouter(tmp_db)
    staff = Flaky()
    router.attach("channel", staff)
    post = Reply(Target("channel", "staff", "staff"), "hand-off", ephemeral=False)
    await router.notify_staff(post)
    assert staff.got == [post]


@dataclass
class NotYet(Flaky):
    """A channel that is attached but not ready (a gateway still connecting)."""

    up: bool = False

    def ready(self) -> bool:
        return self.up


async def test_a_channel_not_ready_keeps_its_replies_without_counting_attempts(
    tmp_db: Database,
) -> None:
    router = DeliveryRouter(tmp_db)
    gateway = NotYet()
    router.attach("discord", gateway)
    await router.deliver([Reply(Target("discord", "42"), "bonjour")])
    assert await router.flush() == 0
    row = await tmp_db.fetchone("SELECT attempts FROM outbox")
    assert row is not None and row[0] == 0  # never tried
    gateway.up = True
    assert await router.flush() == 1 and [r.text for r in gateway.got] == ["bonjour"]


async def test_a_reply_refused_for_good_is_kept_then_dropped_with_old_texts(
    tmp_db: Database,
) -> None:
    router = DeliveryRouter(tmp_db)
    closed = Flaky(failures=10_000)  # a member whose DMs are closed
    router.attach("discord", closed)
    await router.deliver([Reply(Target("discord", "42"), "Sam a rejoint grâce à toi")])
    for _ in range(MAX_ATTEMPTS + 3):
        await router.flush()
    assert closed.failures == 10_000 - MAX_ATTEMPTS  # tried MAX_ATTEMPTS times, then no more
    row = await tmp_db.fetchone("SELECT attempts FROM outbox")
    assert row is not None and row[0] == MAX_ATTEMPTS  # still there: `relais doctor` lists it
    # Retention removes it with the other texts past RETENTION_QUESTIONS_DAYS.
    policy = RetentionPolicy(questions_days=90)
    await tmp_db.write(apply_retention, datetime.now(UTC) + timedelta(days=30), policy)
    assert (await tmp_db.fetchone("SELECT COUNT(*) FROM outbox"))[0] == 1  # type: ignore[index]
    await tmp_db.write(apply_retention, datetime.now(UTC) + timedelta(days=91), policy)
    assert (await tmp_db.fetchone("SELECT COUNT(*) FROM outbox"))[0] == 0  # type: ignore[index]
