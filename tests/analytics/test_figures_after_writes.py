"""/stats right after a write (issue 19 item 4): the figures kept between calls are brought up
to date by reading again only the new and the changed participants (migration 023), and are
those of the database as it is now after a join, an enrolment, an erasure and a referrer set
later, each made through the conversation as people and staff make them."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import analytics_reference as reference
import pytest
from console_session import Story

from referrals import analytics, stats


@pytest.fixture
async def story(tmp_path: Path) -> AsyncIterator[Story]:
    opened = await Story.open(tmp_path, tz="UTC", lang="fr")
    try:
        yield opened
    finally:
        await opened.close()


def _full_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the snapshot's whole-table reads."""
    reads: list[int] = []
    whole = analytics._read_snapshot

    def counted(conn: sqlite3.Connection, top: int) -> analytics.Snapshot:
        reads.append(top)
        return whole(conn, top)

    monkeypatch.setattr(analytics, "_read_snapshot", counted)
    return reads


async def _stats(story: Story) -> str:
    text = await story.say("staff:marie /stats")
    # What /stats read equals the SQL of SPEC §6 and the former analytics on the database now.
    figures, extra = await story.app.db.read(analytics.staff_figures, None, None, "UTC")
    assert figures == await story.app.db.read(stats.compute, None, None)
    expected = await story.app.db.read(reference.compute, None, None, "UTC")
    assert {k: v for k, v in extra.items() if k != "timeline"} == {
        k: v for k, v in expected.items() if k != "timeline"
    }
    return text


def _figure(text: str, pattern: str) -> str:
    found = re.search(pattern, text)
    assert found, text
    return found.group(0)


async def test_each_write_changes_stats_right_after(
    story: Story, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = await story.say("discord:alice /parrainage")
    link = _figure(card, r"https://discord\.gg/\S+")
    code = _figure(card, r"\*\*([A-Z0-9]{4}-[A-Z0-9]{4})\*\*").strip("*")
    await story.say("discord:carol salut")  # organic so far
    reads = _full_reads(monkeypatch)
    first = await _stats(story)
    assert "👥 2 participants, dont 0 amené par un pair" in first
    assert len(reads) == 1  # the first /stats reads everything once

    await story.say(f"join discord:bob via {link}")  # a join
    joined = await _stats(story)
    assert "👥 3 participants, dont 1 amené par un pair" in joined

    await story.say("discord:carol /code " + code)  # a referrer set later
    coded = await _stats(story)
    assert "👥 3 participants, dont 2 amenés par un pair" in coded
    assert "1. alice : 2" in coded  # alice leads the board with both

    enrolled_before = _figure(coded, r"Entrées dans le programme[^\n]*")
    await story.say("staff:marie /inscrit bob")  # an enrolment
    enrolled = await _stats(story)
    assert "non renseigné" in enrolled_before
    assert "Entrées dans le programme : 1" in enrolled, enrolled

    await story.say("discord:alice /oublier")
    await story.say("discord:alice oui")  # an erasure: alice leaves the board
    erased = await _stats(story)
    assert "1. alice" not in erased and "👥 3 participants" in erased
    # Every write after the first /stats was read incrementally, never the whole table again.
    assert len(reads) == 1


def test_a_refresh_reads_only_new_and_changed_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On its own connection: new rows, changed rows, a deleted row; the refreshed arrays equal
    a whole read, and without the change log (a database before migration 023) or with a row
    slipped in below the highest id, everything is read again."""
    from referrals import csvio
    from referrals.store import configure_connection, migrate

    conn = sqlite3.connect(tmp_path / "own.db", isolation_level=None)
    try:
        configure_connection(conn)
        migrate(conn)
        rows = "".join(
            f"p{i},{f'p{i // 2}' if i else ''},"
            f"2026-01-{1 + i // 24:02d}T{i % 24:02d}:00:00+00:00,,,\n"
            for i in range(60)
        )
        csvio.import_rows(conn, "participant,referrer,joined_at,channel,kind,enrolled_at\n" + rows)
        reads = _full_reads(monkeypatch)

        def same() -> analytics.Snapshot:
            snap = analytics.snapshot(conn)
            whole = analytics._spread(analytics._read_rows(conn, "", []), len(snap.present))
            for name in analytics._ARRAYS:
                assert (getattr(snap, name) == getattr(whole, name)).all(), name
            return snap

        same()
        conn.execute("UPDATE participants SET enrolled_at = joined_at WHERE id % 4 = 0")
        conn.execute("UPDATE participants SET erased_at = joined_at, banned = 1 WHERE id = 3")
        conn.execute("DELETE FROM participants WHERE id = 60")
        conn.execute(
            "INSERT INTO participants (id, ref, root_id, wave, joined_at, referrer_id, channel)"
            " VALUES (70, 'late', 1, 1, '2026-02-01T00:00:00+00:00', 1, 'sms')"
        )
        changed = same()
        assert len(reads) == 1
        assert changed.enrolled[4] and changed.erased[3] and not changed.active[3]
        assert not changed.present[60] and changed.present[70] and changed.source[70] == 1
        # Below the highest id, no log: the count gives it away.
        conn.execute(
            "INSERT INTO participants (id, ref, root_id, joined_at)"
            " VALUES (65, 'slipped', 65, '2026-02-01T00:00:00+00:00')"
        )
        assert same().present[65] and len(reads) == 2
        conn.execute("DROP TRIGGER participants_figures_update")
        conn.execute("DROP TRIGGER participants_figures_delete")
        conn.execute("DROP TABLE participant_changes")
        conn.execute("UPDATE participants SET enrolled_at = NULL WHERE id = 4")
        assert not same().enrolled[4] and len(reads) == 3
    finally:
        conn.close()


async def test_a_stored_snapshot_serves_the_next_process_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the bot leaves in the database (``store_snapshot``) lets a new process (a report)
    read only what changed since: the figures are those of the database now, after an
    enrolment, an erasure, a ban, a deletion and a new participant; a stored snapshot of
    another schema version is not used."""
    from referrals import csvio
    from referrals.store import Database

    db = await Database.open(tmp_path / "kept.db")
    try:
        rows = "".join(
            f"p{i},{f'p{i // 3}' if i % 7 else ''},"
            f"2026-01-{1 + i // 24:02d}T{i % 24:02d}:00:00+00:00,"
            f"{'campaign:VAN' if i % 14 == 0 else 'code'},,\n"
            for i in range(200)
        )
        await db.call(
            csvio.import_rows, "participant,referrer,joined_at,channel,kind,enrolled_at\n" + rows
        )
        await db.read(analytics.staff_figures, None, None, "UTC")
        packed = await db.read(analytics.snapshot_to_store, 0)
        assert packed is not None
        await db.write(analytics.store_snapshot, *packed)
        for change in (
            "UPDATE participants SET enrolled_at = joined_at WHERE id % 5 = 0",
            "UPDATE participants SET erased_at = joined_at WHERE id = 9",
            "UPDATE participants SET banned = 1 WHERE id = 1",
            "DELETE FROM participants WHERE id = 200",
        ):
            await db.write(lambda conn, sql=change: conn.execute(sql))
        await db.call(
            csvio.import_rows,
            "participant,referrer,joined_at,channel,kind,enrolled_at\n"
            "late,p3,2026-02-01T00:00:00+00:00,sms,relative,\n",
        )
        reads = _full_reads(monkeypatch)
        analytics._last_snapshot.clear()  # a new process
        analytics._steady_figures.clear()
        figures, extra = await db.read(analytics.staff_figures, None, None, "UTC")
        assert reads == []  # started from the stored arrays
        assert figures == await db.read(stats.compute, None, None)
        expected = await db.read(reference.compute, None, None, "UTC")
        assert {k: v for k, v in extra.items() if k != "timeline"} == {
            k: v for k, v in expected.items() if k != "timeline"
        }
        assert figures["enrolled"] == 39 and figures["participants"] == 200  # 200 went, late came
        # Arrays stored under another schema version are read whole again.
        await db.write(lambda conn: conn.execute("UPDATE figures_snapshot SET schema_version = 1"))
        analytics._last_snapshot.clear()
        assert (await db.read(analytics.staff_figures, None, None, "UTC"))[0] == figures
        assert len(reads) == 1
    finally:
        await db.close()
