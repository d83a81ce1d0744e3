"""/oublier on the bytes of the database files; /mesdonnees complete against every table."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from privacy_support import Session, file_bytes

from referrals import stats
from referrals.erasure import TABLES, personal_data

NAME = "Zephyrine47"
PHONE = "+33612345678"
FIRST_NAME = "Oriabelle"
QUESTION = "quokkaphrase unmatched frobnicate zlorp"
HANDOFF = "rappelez-moi vite au sujet de xylophonix"


async def _story(session: Session) -> dict[str, str]:
    card = await session.say(f"discord:{NAME} /parrainage")
    code = re.search(r"\*\*([0-9A-Z]{4}-[0-9A-Z]{4})\*\*", card).group(1)  # type: ignore[union-attr]
    invite = re.search(r"discord\.gg/(\S+)", card).group(1)  # type: ignore[union-attr]
    assert "1." in await session.say(f"discord:{NAME} /inviter 06 12 34 56 78 {FIRST_NAME}")
    sent = await session.say(f"discord:{NAME} oui")
    assert f"sms:{PHONE} <-" in sent
    await session.say(f"discord:{NAME} {QUESTION}")
    await session.say(f"discord:{NAME} /conseiller {HANDOFF}")
    # A friend comes through the link: the erased member stays their referrer, anonymously.
    await session.say(f"join discord:friend1 via https://discord.gg/{invite}")
    # A confirmation left pending holds a number in clear.
    await session.say(f"discord:{NAME} /inviter 0698765432 Pendinga")
    return {"code": code, "invite": invite}


def _secrets(found: dict[str, str]) -> list[bytes]:
    code = found["code"]
    return [
        s.encode("utf-8")
        for s in (
            NAME,
            PHONE,
            "612345678",
            "698765432",
            FIRST_NAME,
            "Pendinga",
            QUESTION,
            "xylophonix",
            code,
            code.replace("-", ""),
            found["invite"],
        )
    ]


async def test_forget_removes_the_bytes_from_database_and_wal(tmp_path: Path) -> None:
    session = await Session.open(tmp_path)
    try:
        found = await _story(session)
        before = await session.app.db.read(stats.compute)
        data = file_bytes(session.path)
        present = [s for s in _secrets(found) if s in data]
        assert present, "the story should have stored identifiers"
        assert "1." in await session.say(f"discord:{NAME} /oublier")
        assert await session.say(f"discord:{NAME} oui")
        # While the bot still runs: the checkpoint emptied the WAL, secure_delete zeroed pages.
        data = file_bytes(session.path)
        for secret in _secrets(found):
            assert secret not in data, secret
        after = await session.app.db.read(stats.compute)
        assert after["participants"] == before["participants"]
        assert after["referred"] == before["referred"]
    finally:
        await session.close()
    data = file_bytes(session.path)
    for secret in _secrets(found):
        assert secret not in data, secret


async def test_the_anonymous_node_keeps_its_place(tmp_path: Path) -> None:
    session = await Session.open(tmp_path)
    try:
        await _story(session)
        await session.say(f"discord:{NAME} /oublier")
        await session.say(f"discord:{NAME} oui")

        def check(conn: sqlite3.Connection) -> None:
            me = conn.execute("SELECT * FROM participants WHERE erased_at IS NOT NULL").fetchone()
            assert me["discord_id"] is None and me["display_name"] is None and me["code"] is None
            friend = conn.execute(
                "SELECT referrer_id FROM participants WHERE discord_id = 'friend1'"
            ).fetchone()
            assert friend["referrer_id"] == me["id"]
            assert conn.execute("SELECT COUNT(*) FROM pending_actions").fetchone()[0] == 0
            assert conn.execute("SELECT COUNT(*) FROM links").fetchone()[0] == 0
            row = conn.execute("SELECT phone, first_name, phone_hash FROM invitations").fetchone()
            assert row["phone"] is None and row["first_name"] is None and row["phone_hash"]

        await session.app.db.read(check)
        # Coming back later starts a new, organic participant.
        assert "discord:" + NAME in await session.say(f"discord:{NAME} /parrainage")
    finally:
        await session.close()


async def test_mesdonnees_lists_everything(tmp_path: Path) -> None:
    session = await Session.open(tmp_path)
    try:
        found = await _story(session)
        out = await session.say(f"discord:{NAME} /mesdonnees")
        assert found["code"] in out
        # One file per person and request (issue 20): its path is on the 📎 line.
        saved = Path(next(line for line in out.splitlines() if "📎" in line).split("📎 ", 1)[1])
        assert saved.parent == tmp_path / "files" and saved.name.endswith("mes-donnees.json")
        data = json.loads(saved.read_text(encoding="utf-8"))
        assert data["display_name"] == NAME and data["discord_id"] == NAME
        assert data["code"] == found["code"]
        assert data["links"][0]["code"] == found["invite"]
        assert data["invitations"][0]["first_name"] == FIRST_NAME
        assert data["invitations"][0]["number_kept"] is False  # it left: the number is gone
        assert any(q["text"] == QUESTION for q in data["questions"])
        assert data["handoffs"][0]["text"] == HANDOFF
        assert data["pending_confirmations"][0]["kind"] == "invite"
        assert data["recruits"] == 1
        assert data["last_seen_at"]
        assert {"joined", "code_created", "sms_invited", "handoff"} <= {
            e["kind"] for e in data["events"]
        }
        # The same dict as the function the command uses, JSON-ready.
        participant = await session.app.referrals.by_discord_id(NAME)
        assert participant is not None
        direct = await session.app.db.read(personal_data, participant.id)
        assert json.loads(json.dumps(direct)) == data
    finally:
        await session.close()


async def test_every_table_is_accounted_for(tmp_path: Path) -> None:
    session = await Session.open(tmp_path)
    try:
        rows = await session.app.db.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    finally:
        await session.close()
    missing = {row[0] for row in rows} - set(TABLES)
    assert not missing, f"add these tables to referrals.erasure.TABLES: {missing}"


async def test_every_column_that_can_hold_a_person_is_cleared(tmp_path: Path) -> None:
    """Columns of ``participants`` whose name says identity are NULL after erasure."""
    session = await Session.open(tmp_path)
    try:
        await _story(session)
        await session.say(f"discord:{NAME} /oublier")
        await session.say(f"discord:{NAME} oui")
        row = await session.app.db.fetchone(
            "SELECT * FROM participants WHERE erased_at IS NOT NULL"
        )
        assert row is not None
        for column in ("display_name", "discord_id", "phone", "phone_hash", "code", "lang"):
            assert row[column] is None, column
        assert row["ref"].startswith("p-")
    finally:
        await session.close()
