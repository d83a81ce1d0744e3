"""Attachments written to disk (the console's ``relais-files/``): one private file per request.

A ``/mesdonnees`` file holds everything stored about a person: it is created 0600 in a 0700
folder, under a name of its own (recipient, time, a random part), never overwriting the file of
the previous person or request.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

from bot.ports import Attachment
from referrals.files import private_dir, write_private

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_PART = 40


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("._")[:MAX_PART] or "file"


def file_name(recipient: str, filename: str, now: datetime | None = None) -> str:
    """``RECIPIENT-YYYYMMDDTHHMMSS-RANDOM-NAME``: no path, no phone number in clear."""
    kind, _, who = recipient.partition(":")
    if kind == "sms":  # a file name is not a place for a phone number
        who = hashlib.sha256(who.encode("utf-8")).hexdigest()[:10]
    label = _safe(f"{kind}-{who}" if who else kind)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    return f"{label}-{stamp}-{secrets.token_hex(3)}-{_safe(Path(filename).name)}"


def save_attachment(folder: Path, recipient: str, attachment: Attachment) -> str:
    """Write ``attachment`` for ``recipient`` into ``folder`` (0700) as a new 0600 file."""
    private_dir(folder)
    while True:
        path = folder / file_name(recipient, attachment.filename)
        try:
            write_private(path, attachment.data, exclusive=True)
        except FileExistsError:
            continue
        return str(path)
