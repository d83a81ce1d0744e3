"""CSV import and export (SPEC §5): refusals with their line, atomicity, dialects, round trip."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest

from bot import cli
from referrals import csvio
from referrals.errors import ImportRejected
from referrals.store import Database

HEADER = "participant,referrer,joined_at,channel,kind,enrolled_at\n"
EXISTING = HEADER + (
    "old1,,2026-01-01T09:00:00+00:00,campaign:VAN,,\n"
    "old2,old1,2026-01-02T09:00:00+00:00,code,youth,2026-01-10T09:00:00+00:00\n"
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A clean working directory and environment for ``relais``; returns the database path."""
    monkeypatch.chdir(tmp_path)
    for name in ("RELAIS_DB", "RELAIS_LANG", "RELAIS_TZ"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RELAIS_TZ", "UTC")
    return tmp_path / "relais.db"


def relais(*args: str) -> int:
    return cli.main(list(args))


def dump(db_path: Path) -> list[str]:
    """Every schema object and row of the database, as SQL text."""
    conn = sqlite3.connect(db_path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def export(db_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert relais("export", "--db", str(db_path)) == 0
    return capsys.readouterr().out


BAD_FILES = {
    "missing_column": (
        "participant,referrer,channel\na,,code\n",
        1,
        "colonne obligatoire absente : joined_at",
    ),
    "duplicate": (
        HEADER
        + "a,,2026-01-05T09:00:00+00:00,,,\n"
        + "b,a,2026-01-05T10:00:00+00:00,,,\n"
        + "a,,2026-01-05T11:00:00+00:00,,,\n",
        4,
        "apparaît déjà ligne 2",
    ),
    "already_in_database": (
        HEADER + "a,,2026-01-05T09:00:00+00:00,,,\nold2,a,2026-01-05T10:00:00+00:00,,,\n",
        3,
        "« old2 » existe déjà dans la base",
    ),
    "unknown_referrer": (
        HEADER + "a,,2026-01-05T09:00:00+00:00,,,\nb,ghost,2026-01-05T10:00:00+00:00,,,\n",
        3,
        "« ghost » n'est ni dans le fichier ni dans la base",
    ),
    "self_referral": (
        HEADER + "a,,2026-01-05T09:00:00+00:00,,,\nb,b,2026-01-05T10:00:00+00:00,,,\n",
        3,
        "se parraine lui-même",
    ),
    "cycle": (
        HEADER
        + "s,,2026-01-05T08:00:00+00:00,,,\n"
        + "a,c,2026-01-05T10:00:00+00:00,,,\n"
        + "b,a,2026-01-05T10:00:00+00:00,,,\n"
        + "c,b,2026-01-05T10:00:00+00:00,,,\n"
        + "d,s,2026-01-05T11:00:00+00:00,,,\n",
        3,
        "boucle (lignes 3, 4, 5)",
    ),
    "bad_joined_at": (
        HEADER + "a,,2026-01-05T09:00:00+00:00,,,\nb,a,31/13/2026,,,\n",
        3,
        "colonne joined_at : date illisible « 31/13/2026 »",
    ),
    "bad_enrolled_at": (
        HEADER + "a,,2026-01-05T09:00:00+00:00,,,demain\n",
        2,
        "colonne enrolled_at : date illisible « demain »",
    ),
    "bad_kind": (
        HEADER + "a,,2026-01-05T09:00:00+00:00,,parent,\n",
        2,
        "« parent » n'est ni youth ni relative",
    ),
    "line_after_a_quoted_newline": (
        HEADER + 'a,,2026-01-05T09:00:00+00:00,"campaign:two\nlines",,\n' + "b,a,never,,,\n",
        4,
        "date illisible « never »",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_is_refused_with_its_line_and_nothing_changes(
    case: str, env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert relais("import", str(write(tmp_path, "old.csv", EXISTING)), "--db", str(env)) == 0
    before = dump(env)
    content, line, detail = BAD_FILES[case]
    path = write(tmp_path, f"{case}.csv", content)
    capsys.readouterr()
    assert relais("import", str(path), "--db", str(env)) == 2
    err = capsys.readouterr().err
    assert f"ligne {line}" in err
    assert detail in err
    assert str(path) in err and "rien n'a été importé" in err
    assert "Traceback" not in err
    assert dump(env) == before


@pytest.mark.parametrize(
    "content",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10",
        b"participant,joined_at\n\xff\xfe\xfa\xfb,2026-01-05\n",
    ],
    ids=["binary", "not_utf8"],
)
def test_non_text_file_is_refused(
    content: bytes, env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert relais("import", str(write(tmp_path, "old.csv", EXISTING)), "--db", str(env)) == 0
    before = dump(env)
    capsys.readouterr()
    assert relais("import", str(write(tmp_path, "x.csv", content)), "--db", str(env)) == 2
    err = capsys.readouterr().err
    assert "n'est pas un fichier texte" in err and "Traceback" not in err
    assert dump(env) == before


async def test_every_problem_is_named(tmp_db: Database) -> None:
    text = HEADER + "a,,bad,,,\nb,b,2026-01-05,,,\nc,,2026-01-05,,alien,\n"
    with pytest.raises(ImportRejected) as caught:
        await tmp_db.read(lambda conn: csvio.parse(text, "UTC", conn))
    assert [(p.key, p.line) for p in caught.value.problems] == [
        ("import.bad_date", 2),
        ("import.self_referral", 3),
        ("import.bad_kind", 4),
    ]


async def test_semicolon_and_bom_and_referrer_after_recruit(tmp_db: Database) -> None:
    text = (
        "\ufeffParticipant;Referrer;Joined_At;Channel;Kind;Enrolled_At\r\n"
        "kid;mum;2026-01-05 10:30;sms;relative;\r\n"
        "mum;;2026-01-05T09:00:00+01:00;;;2026-02-01\r\n"
        " ; ; ; ; ; \r\n"
        "grandkid;kid;2026-01-06T09:00:00Z;code;YOUTH;\r\n"
    )
    data = text.encode("utf-8")
    assert await tmp_db.call(csvio.import_rows, csvio.decode(data), "Europe/Paris") == 3
    rows = {
        row["ref"]: dict(row)
        for row in await tmp_db.fetchall(
            "SELECT p.ref, r.ref AS referrer, p.wave, p.root_id = s.id AS in_tree, p.channel,"
            " p.kind, p.joined_at, p.enrolled_at, p.referral_delay_s FROM participants p"
            " LEFT JOIN participants r ON r.id = p.referrer_id"
            " JOIN participants s ON s.ref = 'mum'"
        )
    }
    assert rows["mum"]["wave"] == 0 and rows["kid"]["wave"] == 1 and rows["grandkid"]["wave"] == 2
    assert all(row["in_tree"] for row in rows.values())
    assert rows["kid"]["referrer"] == "mum" and rows["kid"]["kind"] == "relative"
    assert rows["mum"]["channel"] == "unknown" and rows["grandkid"]["kind"] == "youth"
    # Naive times are read in the given zone and stored in UTC.
    assert rows["mum"]["joined_at"] == "2026-01-05T08:00:00+00:00"
    assert rows["kid"]["joined_at"] == "2026-01-05T09:30:00+00:00"
    assert rows["mum"]["enrolled_at"] == "2026-01-31T23:00:00+00:00"
    assert rows["kid"]["referral_delay_s"] == 5400.0


async def test_import_against_the_database(tmp_db: Database) -> None:
    await tmp_db.call(csvio.import_rows, EXISTING, "UTC")
    more = HEADER + "new1,old2,2026-01-03T09:00:00+00:00,,,\n"
    assert await tmp_db.call(csvio.import_rows, more, "UTC") == 1
    row = await tmp_db.fetchone(
        "SELECT p.wave, p.root_id = s.id, p.referral_delay_s FROM participants p,"
        " participants s WHERE p.ref = 'new1' AND s.ref = 'old1'"
    )
    assert tuple(row) == (2, 1, 86400.0)
    campaign = await tmp_db.fetchone(
        "SELECT c.code FROM participants p JOIN campaigns c ON c.id = p.campaign_id"
        " WHERE p.ref = 'old1'"
    )
    assert campaign[0] == "VAN"


def test_round_trip(
    env: Path, tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = (
        HEADER
        + "z-kid,z-seed,2026-03-02T10:00:00+00:00,sms,relative,\n"
        + "z-seed,,2026-03-01T09:00:00.250000+00:00,campaign:TIKTOK,,2026-03-05T09:00:00+00:00\n"
        + 'z-quote,z-seed,2026-03-03T09:00:00+00:00,"campaign:a,b",youth,\n'
    )
    for source in (data_dir / "rds-fauxtime.csv", write(tmp_path, "extra.csv", extra)):
        assert relais("import", str(source), "--db", str(env)) == 0
    first = export(env, capsys)
    assert first.startswith(HEADER)
    assert len(first.splitlines()) == 1 + 511 + 3
    again = write(tmp_path, "again.csv", first)
    fresh = tmp_path / "fresh.db"
    assert relais("import", str(again), "--db", str(fresh)) == 0
    assert export(fresh, capsys) == first
    # And the figures agree.
    capsys.readouterr()
    relais("stats", "--json", "--db", str(env))
    original = json.loads(capsys.readouterr().out)
    relais("stats", "--json", "--db", str(fresh))
    assert json.loads(capsys.readouterr().out) == original


def test_excel_export_reimports(
    env: Path, tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert relais("import", str(data_dir / "rds-fauxmadrona.csv"), "--db", str(env)) == 0
    out = tmp_path / "excel.csv"
    assert relais("export", "--excel", "--out", str(out), "--db", str(env)) == 0
    data = out.read_bytes()
    assert data.startswith("\ufeff".encode())
    assert data.decode("utf-8-sig").splitlines()[0] == HEADER.strip().replace(",", ";")
    fresh = tmp_path / "fresh.db"
    assert relais("import", str(out), "--db", str(fresh)) == 0
    assert export(fresh, capsys) == export(env, capsys)


@pytest.mark.parametrize("order", ["seed_first", "tail_first"])
def test_long_chain_without_recursion_limit(
    order: str, env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    length = 5000
    lines = [
        f"c{i},{f'c{i - 1}' if i else ''},2026-01-05T09:00:00+00:00,,,\n" for i in range(length)
    ]
    if order == "tail_first":
        lines.reverse()
    path = write(tmp_path, "chain.csv", HEADER + "".join(lines))
    assert relais("import", str(path), "--db", str(env)) == 0
    capsys.readouterr()
    assert relais("chain", f"c{length - 1}", "--json", "--db", str(env)) == 0
    chain = json.loads(capsys.readouterr().out)
    assert len(chain["ancestors"]) == length - 1
    assert chain["ancestors"][0] == f"c{length - 2}" and chain["seed"] == "c0"
    assert chain["wave"] == length - 1
    assert relais("chain", "c0", "--json", "--db", str(env)) == 0
    assert json.loads(capsys.readouterr().out)["subtree_size"] == length
    assert relais("stats", "--json", "--db", str(env)) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["max_depth"] == length - 1 and figures["largest_tree"] == length


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db")
    with pytest.raises(ImportRejected) as caught:
        csvio.parse("", "UTC", conn)
    assert caught.value.problems[0].key == "import.empty"
    conn.close()


async def test_header_only_imports_nothing(tmp_db: Database) -> None:
    assert await tmp_db.call(csvio.import_rows, HEADER, "UTC") == 0
    assert (await tmp_db.fetchone("SELECT COUNT(*) FROM participants"))[0] == 0


async def test_large_import_rebuilds_indexes(
    tmp_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csvio, "REBUILD_INDEXES_FROM", 10)
    indexes = await tmp_db.fetchall("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
    lines = [f"n{i},{f'n{i // 2}' if i else ''},2026-01-05T09:00:00+00:00,,,\n" for i in range(50)]
    assert await tmp_db.call(csvio.import_rows, HEADER + "".join(lines), "UTC") == 50
    after = await tmp_db.fetchall("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
    assert sorted(map(tuple, after)) == sorted(map(tuple, indexes))
    assert (await tmp_db.fetchone("PRAGMA foreign_keys"))[0] == 1
    assert (await tmp_db.fetchone("PRAGMA integrity_check"))[0] == "ok"
    assert (await tmp_db.fetchone("PRAGMA foreign_key_check")) is None


def test_export_to_a_buffer(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    from referrals import store

    store.configure_connection(conn)
    store.migrate(conn)
    csvio.import_rows(conn, EXISTING, "UTC")
    out = io.StringIO()
    assert csvio.export_rows(conn, out, delimiter=";") == 2
    assert out.getvalue().splitlines()[2] == (
        "old2;old1;2026-01-02T09:00:00+00:00;code;youth;2026-01-10T09:00:00+00:00"
    )
    conn.close()
