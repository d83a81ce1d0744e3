"""Files Relais writes hold personal data: they are created readable by the bot's user only.

Modes are given to ``os.open`` and then set again with ``fchmod``, so that neither the umask nor a
file left over by an older version makes a database, a backup, an export or an attachment
readable by other users of the machine. Folders Relais creates are 0700.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as 0700 when it does not exist yet; return it.

    An existing folder keeps its mode: it may be shared on purpose (a mounted volume).
    """
    if not path.is_dir():
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(path, DIR_MODE)
    return path


def create_private(path: Path, *, exclusive: bool = False) -> None:
    """Create ``path`` empty with mode 0600 (or make an existing one 0600), whatever the umask.

    With ``exclusive``, an existing file raises ``FileExistsError`` (one file per request).
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else 0)
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def write_private(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` to ``path``, created 0600 (replacing its content unless ``exclusive``)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), FILE_MODE)
        out.write(data)


def ensure_private_database(path: Path) -> None:
    """Before SQLite opens ``path``: create a new database file 0600 (an empty file is an empty
    database), or make an existing one 0600; SQLite gives its WAL and shared-memory files the
    database file's mode."""
    if str(path) == ":memory:" or str(path).startswith("file:"):
        return
    if not path.exists():
        create_private(path)
        return
    # A database an older version created world-readable (and its WAL and shared memory, which
    # follow its mode) is made private too, when it is ours to change.
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(OSError):
            info = candidate.stat()
            if stat.S_ISREG(info.st_mode) and info.st_mode & 0o077 and info.st_uid == os.getuid():
                os.chmod(candidate, FILE_MODE)
