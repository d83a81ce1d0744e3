"""The streaming import (issue 19 item 4): rows written in batches inside one transaction,
rows waiting for a referrer that comes later, and the same graph whatever the file's order or
the batch size, compared with a hand-computed placement."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest

from referrals import csvio, store
from referrals.errors import ImportRejected

HEADER = "participant,referrer,joined_at,channel,kind,enrolled_at\n"
# Hand-computed: S (seed, campaign VAN) -> A (1 day) -> B (2 days) -> C (1 hour);
# A -> D (3 days); T is a seed of its own.
ROWS = [
    "S,,2026-01-01T00:00:00+00:00,campaign:VAN,,",
    "A,S,2026-01-02T00:00:00+00:00,code,,",
    "B,A,2026-01-04T00:00:00+00:00,code,,2026-01-05T00:00:00+00:00",
    "C,B,2026-01-04T01:00:00+00:00,sms,relative,",
    "D,A,2026-01-05T00:00:00+00:00,link,,",
    "T,,2026-01-03T00:00:00+00:00,,,",
]
EXPECTED = {
    # ref: (referrer, wave, root, delay in seconds, campaign)
    "S": (None, 0, "S", None, "VAN"),
    "A": ("S", 1, "S", 86400.0, None),
    "B": ("A", 2, "S", 172800.0, None),
    "C": ("B", 3, "S", 3600.0, None),
    "D": ("A", 2, "S", 259200.0, None),
    "T": (None, 0, "T", None, None),
}


def memory_db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    store.configure_connection(conn)
    store.migrate(conn)
    return conn


def graph(conn: sqlite3.Connection) -> dict[str, tuple[object, ...]]:
    return {
        row[0]: tuple(row[1:])
        for row in conn.execute(
            "SELECT p.ref, r.ref, p.wave, t.ref, p.referral_delay_s, c.code FROM participants p"
            " LEFT JOIN participants r ON r.id = p.referrer_id"
            " JOIN participants t ON t.id = p.root_id"
            " LEFT JOIN campaigns c ON c.id = p.campaign_id"
        )
    }


@pytest.mark.parametrize("batch", [1, 2, 10_000])
@pytest.mark.parametrize("order", ["file", "reversed", "shuffled"])
def test_same_graph_whatever_the_order_and_batch(
    order: str, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csvio, "BATCH_ROWS", batch)
    rows = {"file": ROWS, "reversed": ROWS[::-1], "shuffled": [ROWS[i] for i in (3, 0, 4, 2, 5, 1)]}
    conn = memory_db()
    text = HEADER + "\n".join(rows[order]) + "\n"
    assert csvio.import_rows(conn, text, "UTC") == 6
    assert graph(conn) == EXPECTED
    # Ids follow the file's order, as before (ties in leaderboards are broken by id).
    refs = [line.split(",")[0] for line in rows[order]]
    assert [r for (r,) in conn.execute("SELECT ref FROM participants ORDER BY id")] == refs


def test_a_text_stream_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvio, "BATCH_ROWS", 2)
    data = (HEADER + "\n".join(ROWS) + "\n").encode("cp1252")
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="cp1252", newline="")
    conn = memory_db()
    assert csvio.import_rows(conn, stream, "UTC", rows_hint=7) == 6
    assert graph(conn) == EXPECTED


def test_a_problem_after_written_batches_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvio, "BATCH_ROWS", 2)
    conn = memory_db()
    text = HEADER + "\n".join(ROWS) + "\nZ,nobody,2026-01-06T00:00:00+00:00,,,\n"
    with pytest.raises(ImportRejected) as caught:
        csvio.import_rows(conn, text, "UTC")
    assert [(p.key, p.line) for p in caught.value.problems] == [("import.unknown_referrer", 8)]
    assert conn.execute("SELECT COUNT(*) FROM participants").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM campaigns").fetchone()[0] == 0


def test_a_waiting_row_is_checked_against_its_referrer() -> None:
    # B waits for A (later in the file), and joined before A: refused once A is read.
    text = HEADER + "B,A,2026-01-01T00:00:00+00:00,,,\nA,,2026-01-02T00:00:00+00:00,,,\n"
    with pytest.raises(ImportRejected) as caught:
        csvio.import_rows(memory_db(), text, "UTC")
    assert [(p.key, p.line) for p in caught.value.problems] == [("import.before_referrer", 2)]


def test_a_cycle_behind_a_waiting_chain_is_named_once() -> None:
    text = HEADER + (
        "x,y,2026-01-01T00:00:00+00:00,,,\n"  # waits for y, itself in the loop y -> z -> y
        "y,z,2026-01-01T00:00:00+00:00,,,\n"
        "z,y,2026-01-01T00:00:00+00:00,,,\n"
        "s,,2026-01-01T00:00:00+00:00,,,\n"
    )
    with pytest.raises(ImportRejected) as caught:
        csvio.import_rows(memory_db(), text, "UTC")
    assert [(p.key, p.line, p.params) for p in caught.value.problems] == [
        ("import.cycle", 3, {"lines": "3, 4"})
    ]


def test_file_encoding_read_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Chunks of 3 bytes split "é" (2 bytes in UTF-8) across reads: still UTF-8.
    monkeypatch.setattr(csvio, "FILE_CHUNK", 3)
    text = HEADER + "Hélène,,2026-01-01T00:00:00+00:00,,,\nNoël,Hélène,2026-01-02,,,\n"
    utf8, excel, binary = tmp_path / "u.csv", tmp_path / "e.csv", tmp_path / "b.csv"
    utf8.write_bytes(text.encode("utf-8"))
    excel.write_bytes(text.encode("cp1252"))
    binary.write_bytes(b"participant\n\x00\x01")
    assert csvio.detect_file_encoding(utf8) == ("utf-8-sig", 3)
    assert csvio.detect_file_encoding(excel) == ("cp1252", 3)
    with pytest.raises(ImportRejected):
        csvio.detect_file_encoding(binary)
    # A file cut in the middle of a UTF-8 letter is not UTF-8.
    utf8.write_bytes(text.encode("utf-8")[:-1] + "é".encode()[:1])
    assert csvio.detect_file_encoding(utf8)[0] == "cp1252"
