"""``relais console``: talk to the bot as any number of people (SPEC §3).

The same conversation engine as Discord and SMS; only the transport differs: every message the
bot sends is printed as ``RECIPIENT <- TEXT`` on stdout, and nothing else goes there.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.attachments import save_attachment
from bot.logging import get_logger
from bot.ports import Person, Reply
from bot.settings import Settings
from bot.sms.phone import canonical

if TYPE_CHECKING:
    from bot.conversation import Conversation
    from bot.sms.service import SmsService

log = get_logger(__name__)
_LINE = re.compile(r"^(discord|staff|sms):(\S+)(?:\s+(.*))?$", re.S)
_JOIN = re.compile(r"^join\s+discord:(\S+)\s+via\s+(\S+)\s*$", re.I)


class ConsoleOutput:
    """Prints bot messages; also the staff notifier, SMS transport and invite maker."""

    def __init__(self, out: TextIO, files_dir: Path, staff_channel: str) -> None:
        self.out = out
        self.files_dir = files_dir
        self.staff_channel = staff_channel
        self.staff_names: set[str] = set()
        self._names: dict[str, str] = {}  # case-folded name -> the name as first typed

    def identity(self, name: str) -> str:
        """One person per name whatever its case (``Bob`` is ``bob``), shown as first typed."""
        return self._names.setdefault(name.casefold(), name)

    def recipient(self, reply: Reply) -> str:
        """``discord:NAME``, ``staff:NAME``, ``sms:NUMBER`` or ``#CHANNEL``."""
        target = reply.to
        if target.kind == "channel":
            return f"#{target.id}"
        if target.kind == "discord" and target.id in self.staff_names:
            return f"staff:{target.id}"
        return f"{target.kind}:{target.id}"

    async def print_reply(self, reply: Reply) -> None:
        """One message, continuation lines indented by two spaces, buttons numbered.

        Attachments (CSV, charts, PDF) are written to ``relais-files/`` off the event loop.
        """
        lines = reply.text.split("\n")
        lines += [f"{index}. {button.label}" for index, button in enumerate(reply.buttons, 1)]
        for attachment in reply.attachments:
            saved = await asyncio.to_thread(
                save_attachment, self.files_dir, self.recipient(reply), attachment
            )
            lines.append(f"📎 {saved}")
        first, *rest = lines
        self.out.write(f"{self.recipient(reply)} <- {first}\n")
        for line in rest:
            self.out.write(f"  {line}\n")
        self.out.flush()

    async def notify_staff(self, reply: Reply) -> None:
        """Post in the staff channel: printed as ``#staff``."""
        await self.print_reply(reply)

    async def deliver(self, reply: Reply) -> bool:
        """The delivery router's channel for every target kind: printed."""
        await self.print_reply(reply)
        return True

    async def send(self, to: str, body: str, *, status_callback: str | None = None) -> str:
        """An outbound SMS, printed at the moment it would leave."""
        lines = body.split("\n")
        self.out.write(f"sms:{to} <- {lines[0]}\n")
        for line in lines[1:]:
            self.out.write(f"  {line}\n")
        self.out.flush()
        return "SMconsole" + secrets.token_hex(8)

    async def create_invite(self, member_name: str) -> str:
        """A personal invite code, as Discord would create one."""
        return secrets.token_urlsafe(6).replace("-", "x").replace("_", "y")


async def console_loop(
    conversation: Conversation,
    sms: SmsService,
    output: ConsoleOutput,
    settings: Settings,
    stdin: TextIO,
    interactive: bool,
) -> int:
    """Read actions line by line until end of input (wired by ``bot.bootstrap.run_console``)."""
    if interactive:
        print(conversation.texts.render("console.banner", settings.lang), file=sys.stderr)
    lines = _read_lines(stdin)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    # Queued SMS that are due (after a restart) leave before the first line.
    await sms.dispatch_due()
    while not stop.is_set():
        line = await _next_line(lines, stop)
        if line is None:
            break
        line = line.rstrip("\r\n")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        # A SIGTERM arriving now only sets ``stop``: this line is finished first.
        try:
            replies = await _handle(conversation, output, stripped, settings)
        except Exception:
            log.exception("console_line_failed")
            replies = []
            print(conversation.texts.render("console.error", settings.lang), file=sys.stderr)
        for reply in replies:
            await output.print_reply(reply)
        await sms.dispatch_due()
    return 0


def _read_lines(stdin: TextIO) -> asyncio.Queue[str | None]:
    """Read stdin in a daemon thread (a blocked read must not hold the exit); None at the end."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def pump() -> None:
        try:
            for line in iter(stdin.readline, ""):
                loop.call_soon_threadsafe(queue.put_nowait, line)
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, name="console-stdin", daemon=True).start()
    return queue


async def _next_line(lines: asyncio.Queue[str | None], stop: asyncio.Event) -> str | None:
    """The next input line, or None at end of input or when ``stop`` is set."""
    if not lines.empty():
        return lines.get_nowait()
    getter = asyncio.ensure_future(lines.get())
    stopper = asyncio.ensure_future(stop.wait())
    done, pending = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    return getter.result() if getter in done else None


def _stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM (and SIGINT): finish the line in progress, close the database, exit 0."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)


async def _handle(
    conversation: Conversation, output: ConsoleOutput, line: str, settings: Settings
) -> list[Reply]:
    join = _JOIN.match(line)
    if join:
        name, link = join.groups()
        name = output.identity(name)
        return await conversation.joined(Person("discord", name, name), link)
    match = _LINE.match(line)
    if not match:
        print(
            conversation.texts.render("console.bad_line", settings.lang, line=line[:80]),
            file=sys.stderr,
        )
        return []
    kind, who, text = match.group(1), match.group(2), match.group(3) or ""
    if kind == "sms":
        if not canonical(who).startswith("+"):
            print(
                conversation.texts.render("console.bad_sms_sender", settings.lang, who=who[:40]),
                file=sys.stderr,
            )
            return []
        person = Person("sms", who, "")
    else:
        who = output.identity(who)
        staff = kind == "staff"
        if staff:
            output.staff_names.add(who)
        person = Person("discord", who, who, staff=staff)
    return await conversation.text(person, text)
