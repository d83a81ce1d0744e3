"""One delivery router shared by every adapter: each ``Reply`` reaches its target's channel.

The brain answers with ``Reply`` objects addressed to a ``Target``. The adapter that asked
delivers the replies to the person it serves (an interaction follow-up, a TwiML response, a
console line); every other reply (the member whose relative replied, the staff channel) goes
through ``DeliveryRouter.deliver``. Each process attaches the channels it can reach (``relais
run``: Discord; the console: its printer). A reply for a channel that is not attached, or whose
delivery fails, waits in the durable ``outbox`` table; ``flush`` delivers what waits once the
channel is attached (``relais run`` does it when the gateway is ready, then every minute).
Nothing built is dropped.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Protocol

from bot.logging import get_logger
from bot.ports import Attachment, Button, Reply, Target
from referrals import outbox
from referrals.store import Database, now_iso

log = get_logger(__name__)

FLUSH_BATCH = 100
# A reply refused this many times (a member's DMs closed, a user gone) is no longer tried; it
# stays in the outbox, where ``relais doctor`` counts it: nothing built is lost silently.
MAX_ATTEMPTS = 10


class Deliverer(Protocol):
    """Delivers replies on one channel; False when it could not (the reply then waits).

    A deliverer may also have ``ready() -> bool``: while it says False (a gateway not yet
    connected), the router keeps that channel's replies without trying them.
    """

    async def deliver(self, reply: Reply) -> bool:
        """Send the reply to ``reply.to``."""
        ...


def encode(reply: Reply) -> str:
    """A reply as JSON for the outbox (the target is kept in its own columns)."""
    return json.dumps(
        {
            "text": reply.text,
            "buttons": [[b.id, b.label, b.style] for b in reply.buttons],
            "attachments": [
                [a.filename, base64.b64encode(a.data).decode("ascii"), a.description]
                for a in reply.attachments
            ],
            "ephemeral": reply.ephemeral,
        },
        ensure_ascii=False,
    )


def decode(row: outbox.OutboxRow) -> Reply:
    """The reply an outbox row holds."""
    data = json.loads(row.body)
    return Reply(
        Target(row.target_kind, row.target_id, row.target_name),  # type: ignore[arg-type]
        data["text"],
        buttons=[Button(i, label, style) for i, label, style in data.get("buttons", [])],
        attachments=[
            Attachment(name, base64.b64decode(raw), description)
            for name, raw, description in data.get("attachments", [])
        ],
        ephemeral=bool(data.get("ephemeral", True)),
    )


class DeliveryRouter:
    """Routes replies to the attached channels; keeps the others in the outbox.

    It is also the brain's ``StaffNotifier``: a staff post is a reply to the ``channel`` target.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._channels: dict[str, Deliverer] = {}

    def attach(self, kind: str, deliverer: Deliverer) -> None:
        """This process can reach ``kind`` targets (``discord``, ``channel``, ``sms``...)."""
        self._channels[kind] = deliverer

    def detach(self, kind: str) -> None:
        """The channel is gone (the gateway closed): its replies wait again."""
        self._channels.pop(kind, None)

    def attached(self, kind: str) -> bool:
        """Whether replies of this kind can leave now."""
        return self._ready(kind) is not None

    def _ready(self, kind: str) -> Deliverer | None:
        deliverer = self._channels.get(kind)
        ready = getattr(deliverer, "ready", None)
        if deliverer is None or (ready is not None and not ready()):
            return None
        return deliverer

    async def deliver(self, replies: Sequence[Reply]) -> None:
        """Deliver each reply, or keep it in the outbox; never raises for one reply's failure."""
        for reply in replies:
            deliverer = self._ready(reply.to.kind)
            delivered = False
            if deliverer is not None:
                try:
                    delivered = await deliverer.deliver(reply)
                except Exception:
                    log.exception("delivery_failed", kind=reply.to.kind)
            if not delivered:
                await self.keep(reply, attempts=0 if deliverer is None else 1)

    async def keep(self, reply: Reply, attempts: int = 0) -> None:
        """Put a reply in the outbox (``attempts``: it was tried and refused already)."""
        target = reply.to
        await self.db.write(
            outbox.put, target.kind, target.id, target.name, encode(reply), now_iso(), attempts
        )
        log.info("delivery_waiting", kind=target.kind, attempts=attempts)

    async def notify_staff(self, reply: Reply) -> None:
        """The brain's staff notifier: a post in the staff channel, through the router."""
        await self.deliver([reply])

    async def flush(self) -> int:
        """Deliver what waits for the ready channels; returns how many left the outbox.

        A reply refused again counts one more attempt; after ``MAX_ATTEMPTS`` it is no longer
        tried but stays in the outbox (``relais doctor`` lists it)."""
        kinds = sorted(kind for kind in self._channels if self._ready(kind) is not None)
        if not kinds:
            return 0
        rows = await self.db.read(outbox.waiting, kinds, FLUSH_BATCH, MAX_ATTEMPTS)
        sent = 0
        for row in rows:
            deliverer = self._ready(row.target_kind)
            if deliverer is None:  # the channel went away during the flush: try later
                continue
            ok = False
            try:
                ok = await deliverer.deliver(decode(row))
            except Exception:
                log.exception("delivery_failed", kind=row.target_kind)
            if ok:
                await self.db.write(outbox.done, row.id)
                sent += 1
            else:
                await self.db.write(outbox.failed, row.id)
                if row.attempts + 1 >= MAX_ATTEMPTS:
                    log.warning("delivery_given_up", kind=row.target_kind, attempts=MAX_ATTEMPTS)
        if sent:
            log.info("outbox_delivered", count=sent)
        return sent
