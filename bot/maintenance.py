"""The daily job (retention, WAL checkpoint, optional backups) and the loop that runs it.

``maintenance_loop`` runs next to the bot: every minute it looks for suspicious bursts (joins
through the web landing page do not pass through the conversation), and once a day (the last run
is kept in ``meta``, so a restart does not run it again) it calls ``run_daily``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.logging import get_logger
from referrals import actions
from referrals.erasure import checkpoint
from referrals.files import private_dir
from referrals.retention import RetentionPolicy, apply_retention
from referrals.store import Database, get_meta, set_meta
from referrals.timeutil import to_iso

if TYPE_CHECKING:
    from bot.bootstrap import App

log = get_logger(__name__)

TICK = 60.0  # seconds between burst checks
DAILY = timedelta(hours=24)
LAST_RUN_KEY = "maintenance_last_run"
BACKUP_PREFIX = "relais-"
BACKUP_SUFFIX = ".db"


def policy_of(settings: Any) -> RetentionPolicy:
    """The retention policy from the settings."""
    return RetentionPolicy(
        invitation_days=settings.sms_reinvite_days,
        inactive_days=settings.retention_inactive_days,
        questions_days=settings.retention_questions_days,
    )


def _rotate(directory: Path, keep: int) -> None:
    backups = sorted(
        p
        for p in directory.glob(f"{BACKUP_PREFIX}*{BACKUP_SUFFIX}")
        if p.name[len(BACKUP_PREFIX) : len(BACKUP_PREFIX) + 8].isdigit()
    )
    for old in backups[: max(0, len(backups) - keep)]:
        with contextlib.suppress(OSError):
            old.unlink()


async def backup_rotate(db: Database, directory: Path, keep: int, now: datetime) -> Path:
    """Write a dated online backup into ``directory``; keep only the ``keep`` newest."""
    await asyncio.to_thread(private_dir, directory)
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = directory / f"{BACKUP_PREFIX}{stamp}{BACKUP_SUFFIX}"
    await db.backup(target)
    # Personal data: readable by the bot's user only.
    with contextlib.suppress(OSError):
        os.chmod(target, 0o600)
    await asyncio.to_thread(_rotate, directory, keep)
    return target


async def run_daily(app: App, now: datetime | None = None) -> dict[str, Any]:
    """Retention, a WAL checkpoint (erased bytes leave the WAL), then the optional backup."""
    settings = app.settings
    now = now or datetime.now(UTC)
    report = await app.db.write(apply_retention, now, policy_of(settings))
    # Comments on actions are kept like the questions' texts.
    await app.db.write(
        actions.purge_comments, now - timedelta(days=settings.retention_questions_days)
    )
    busy, _, _ = await app.db.call(checkpoint)
    summary: dict[str, Any] = {**report.as_dict(), "checkpoint_busy": busy}
    if settings.backup_dir is not None:
        try:
            path = await backup_rotate(app.db, Path(settings.backup_dir), settings.backup_keep, now)
            summary["backup"] = path.name
        except Exception as exc:  # a full disk must not stop the bot
            log.exception("backup_failed")
            summary["backup_error"] = type(exc).__name__
    await app.db.write(set_meta, LAST_RUN_KEY, to_iso(now.replace(microsecond=0)))
    log.info("maintenance_done", **summary)
    return summary


async def daily_due(db: Database, now: datetime) -> bool:
    """True when the daily job has not run in the last 24 hours."""
    value = await db.read(get_meta, LAST_RUN_KEY)
    if value is None:
        return True
    try:
        last = datetime.fromisoformat(value)
    except ValueError:
        return True
    return now - last >= DAILY


async def maintenance_loop(app: App, stop: asyncio.Event, tick: float = TICK) -> None:
    """Until ``stop`` is set: burst checks every ``tick`` seconds, the daily job when due.

    A step in progress when ``stop`` is set finishes (each is a few transactions); errors are
    logged and the loop goes on.
    """
    while not stop.is_set():
        try:
            await app.conversation.guard.watch(force=True)
            await app.router.flush()  # replies waiting for a channel this process reaches
            await app.conversation.agenda.tick()  # action reminders and evaluations, when due
            if await daily_due(app.db, datetime.now(UTC)):
                await run_daily(app)
            from bot.weekly import post_weekly_if_due

            await post_weekly_if_due(app)  # off unless RELAIS_WEEKLY_REPORT is set
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("maintenance_error")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=tick)
