"""The delivery router: attached channels get their replies, the others wait in the outbox."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.delivery import DeliveryRouter
from bot.ports import Attachment, Button, Reply, Target
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
