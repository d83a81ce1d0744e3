"""Retention rules, the daily job and its rotated backups."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from privacy_support import Session

from bot.maintenance import daily_due, run_daily
from referrals.retention import RetentionPolicy, apply_retention


def _later(days: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


async def _invite(session: Session, who: str = "kim", number: str = "0612345678") -> None:
    await session.say(f"discord:{who} /inviter {number} Lea")
    await session.say(f"discord:{who} oui")


async def test_the_clear_number_goes_when_the_sms_leaves(tmp_path: Path) -> None:
    session = await Session.open(tmp_path)
    try:
        await _invite(session)
        rows = await session.app.db.fetchall(
            "SELECT i.phone, o.to_phone, o.status FROM invitations i"
            " JOIN outbound_sms o ON o.invitation_id = i.id"
        )
        assert [(r[0], r[1], r[2]) for r in rows] == [(None, None, "sent")]
    finally:
        await session.close()


async def test_an_unanswered_invitation_keeps_only_its_hash(tmp_path: Path) -> None:
    session = await Session.open(tmp_path)
    try:
        await _invite(session)
        policy = RetentionPolicy(invitation_days=180)
        report = await session.app.db.write(apply_retention, _later(179), policy)
        assert report.invitations == 0
        report = await session.app.db.write(apply_retention, _later(181), policy)
        assert report.invitations == 1
        row = await session.app.db.fetchone(
            "SELECT i.first_name, i.phone, i.phone_hash, o.body FROM invitations i"
            " JOIN outbound_sms o ON o.invitation_id = i.id"
        )
        assert row is not None
        assert (row[0], row[1], row[3]) == (None, None, "") and row[2]
        # Idempotent.
        report = await session.app.db.write(apply_retention, _later(182), policy)
        assert report.invitations == 0
    finally:
        await session.close()


async def test_inactive_participants_are_erased_after_three_years(tmp_path: Path) -> None:
    session = await Session.open(tmp_path)
    try:
        await session.say("discord:kim /parrainage")
        await session.say("discord:kim /aide")
        policy = RetentionPolicy(inactive_days=1095)
        report = await session.app.db.write(apply_retention, _later(1000), policy)
        assert report.participants == 0
        report = await session.app.db.write(apply_retention, _later(1100), policy)
        assert report.participants == 1
        row = await session.app.db.fetchone("SELECT discord_id, erased_at FROM participants")
        assert row is not None and row[0] is None and row[1]
    finally:
        await session.close()


async def test_imported_rows_without_identifiers_are_left_alone(tmp_path: Path) -> None:
    from referrals.csvio import import_rows

    session = await Session.open(tmp_path)
    try:
        await session.app.db.call(
            import_rows, "participant,referrer,joined_at\na,,2020-01-01T00:00:00\n"
        )
        report = await session.app.db.write(apply_retention, _later(2000), RetentionPolicy())
        assert report.participants == 0
    finally:
        await session.close()


async def test_free_text_pending_and_attempts_expire(tmp_path: Path) -> None:
    session = await Session.open(tmp_path)
    try:
        await session.say("discord:kim quokkaphrase frobnicate zlorp")
        await session.say("discord:kim /conseiller rappelez-moi")
        await session.say("discord:kim /inviter 0612345678")  # left pending
        db = session.app.db
        report = await db.write(apply_retention, _later(2), RetentionPolicy(questions_days=90))
        assert (report.pending, report.questions) == (1, 0)
        assert report.attempts >= 3
        report = await db.write(apply_retention, _later(91), RetentionPolicy(questions_days=90))
        assert (report.questions, report.handoffs) == (1, 1)
        assert await db.fetchone("SELECT 1 FROM questions WHERE text IS NOT NULL") is None
        assert await db.fetchone("SELECT 1 FROM handoffs WHERE text IS NOT NULL") is None
    finally:
        await session.close()


async def test_daily_job_keeps_a_rotation_of_backups(tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    session = await Session.open(tmp_path, backup_dir=backups, backup_keep=2)
    try:
        await session.say("discord:kim /parrainage")
        assert await daily_due(session.app.db, datetime.now(UTC))
        for day in range(3):
            summary = await run_daily(session.app, now=_later(day))
            assert summary["checkpoint_busy"] == 0
        assert not await daily_due(session.app.db, _later(2.5))
        assert await daily_due(session.app.db, _later(3.1))
        files = sorted(backups.glob("relais-*.db"))
        assert len(files) == 2
        assert files[-1].stat().st_mode & 0o077 == 0
        conn = sqlite3.connect(files[-1])
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("SELECT COUNT(*) FROM participants").fetchone()[0] == 1
        finally:
            conn.close()
    finally:
        await session.close()
