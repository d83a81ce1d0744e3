"""Imports that refuse the impossible and read French Excel; exports that cannot run code;
``relais enrol`` (issues 19 and 20)."""

from __future__ import annotations

import csv
import io
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import cli
from referrals import csvio, eventlog
from referrals.errors import ImportRejected
from referrals.store import migrate

HEADER = "participant,referrer,joined_at,channel,kind,enrolled_at\n"
NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("RELAIS_DB", "RELAIS_LANG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RELAIS_TZ", "Europe/Paris")
    return tmp_path / "relais.db"


def memory_db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn)
    return conn


def problems(text: str, tz: str = "UTC") -> list[tuple[str, int | None]]:
    conn = memory_db()
    with pytest.raises(ImportRejected) as caught:
        csvio.parse(text, tz, conn, NOW)
    return [(p.key, p.line) for p in caught.value.problems]


def test_impossible_rows_are_refused_each_naming_its_line() -> None:
    text = HEADER + (
        "a,,2026-01-05T09:00:00+00:00,,,\n"
        "b,a,2027-01-05T09:00:00+00:00,code,,\n"  # a year ahead
        "c,a,2026-01-04T09:00:00+00:00,code,,\n"  # before its referrer
        "d,a,2026-01-06T09:00:00+00:00,code,,2026-01-01T00:00:00+00:00\n"  # enrolled first
        "e,a,2026-01-06T09:00:00+00:00,pigeon,,\n"  # no such channel
        "f,a,2026-06-01T23:00:00+00:00,code,,\n"  # within a day ahead: accepted
    )
    assert problems(text) == [
        ("import.future_date", 3),
        ("import.before_referrer", 4),
        ("import.enrolled_before_joined", 5),
        ("import.bad_channel", 6),
    ]


def test_a_bad_date_does_not_hide_the_other_problems_of_its_line() -> None:
    text = HEADER + "a,,2026-01-05T09:00:00+00:00,,,\nb,ghost,hier,pigeon,parent,\n"
    assert sorted(problems(text)) == [
        ("import.bad_channel", 3),
        ("import.bad_date", 3),
        ("import.bad_kind", 3),
        ("import.unknown_referrer", 3),
    ]


def test_recruit_before_a_referrer_already_in_the_database() -> None:
    conn = memory_db()
    csvio.import_rows(conn, HEADER + "old,,2026-01-05T09:00:00+00:00,,,\n", "UTC", NOW)
    with pytest.raises(ImportRejected) as caught:
        csvio.parse(HEADER + "new,old,2026-01-04T09:00:00+00:00,,,\n", "UTC", conn, NOW)
    assert [(p.key, p.line) for p in caught.value.problems] == [("import.before_referrer", 2)]


def test_raw_fauxtime_is_refused_at_line_356(
    env: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["import", str(data_dir / "rds-fauxtime-raw.csv"), "--db", str(env)]) == 2
    err = capsys.readouterr().err
    assert (
        "ligne 356, colonne joined_at : la date « 2100-03-12T14:25:00+00:00 » est dans le futur"
        in err
    )
    assert "Traceback" not in err
    assert cli.main(["import", str(data_dir / "rds-fauxtime.csv"), "--db", str(env)]) == 0


def test_french_excel_file_cp1252_day_first(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (
        "participant;referrer;joined_at;channel;kind;enrolled_at\r\n"
        "Hélène;;05/01/2026 09:30;campaign:ÉTÉ;;\r\n"
        "Noël;Hélène;6/1/2026;code;;31/01/2026 14:00\r\n"
    )
    path = env.with_name("excel.csv")
    path.write_bytes(text.encode("cp1252"))
    assert cli.main(["import", str(path), "--db", str(env)]) == 0
    assert "Windows-1252" in capsys.readouterr().err
    rows = (
        sqlite3.connect(env)
        .execute("SELECT ref, joined_at, enrolled_at FROM participants ORDER BY id")
        .fetchall()
    )
    # Day first, in RELAIS_TZ (Paris, UTC+1 in winter).
    assert rows == [
        ("Hélène", "2026-01-05T08:30:00+00:00", None),
        ("Noël", "2026-01-05T23:00:00+00:00", "2026-01-31T13:00:00+00:00"),
    ]


@pytest.mark.parametrize(
    "data",
    [b"\xff\xfep\x00a\x00r\x00", b"participant,joined_at\n\x81\x8d,2026-01-05\n", b"\xe9\xe8\xe0x"],
)
def test_other_encodings_are_refused_not_guessed(data: bytes) -> None:
    with pytest.raises(ImportRejected) as caught:
        csvio.detect_encoding(data)
    assert [p.key for p in caught.value.problems] == ["import.not_text"]


def test_utf8_with_and_without_bom() -> None:
    assert csvio.decode("\ufeffé".encode()) == "é"
    assert csvio.decode("é".encode()) == "é"


def test_excel_export_edited_in_excel_imports_back_unchanged(
    env: Path, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["import", str(data_dir / "rds-fauxmadrona.csv"), "--db", str(env)]) == 0
    out = tmp_path / "excel.csv"
    assert cli.main(["export", "--excel", "--out", str(out), "--db", str(env)]) == 0
    text = out.read_bytes().decode("utf-8-sig")
    # 2026-01-05T09:00 UTC is 10:00 in Paris.
    assert text.splitlines()[1].startswith("m194;;05/01/2026 10:00;campaign:seed")
    # Excel saves it back in cp1252 with CRLF line ends.
    edited = tmp_path / "edited.csv"
    edited.write_bytes(text.replace("\n", "\r\n").encode("cp1252"))
    fresh = tmp_path / "fresh.db"
    assert cli.main(["import", str(edited), "--db", str(fresh)]) == 0
    capsys.readouterr()
    assert cli.main(["export", "--db", str(fresh)]) == 0
    again = capsys.readouterr().out
    assert cli.main(["export", "--db", str(env)]) == 0
    assert capsys.readouterr().out == again


FORMULAS = [
    '=HYPERLINK("http://evil.example/x","clic")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "'=1+1",
]


def test_exports_neutralise_formulas_and_import_restores_them() -> None:
    conn = memory_db()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # quotes a lone "\r"
    writer.writerow(["participant", "referrer", "joined_at"])
    writer.writerow(["seed", "", "2026-01-05T09:00:00+00:00"])
    for formula in FORMULAS:
        writer.writerow([csvio.neutralise(formula), "seed", "2026-01-05T10:00:00+00:00"])
    csvio.import_rows(conn, buffer.getvalue(), "UTC", NOW)
    stored = [
        r for (r,) in conn.execute("SELECT ref FROM participants WHERE ref != 'seed' ORDER BY id")
    ]
    assert stored == FORMULAS
    for excel in (False, True):
        out = io.StringIO()
        csvio.export_rows(
            conn, out, delimiter=";" if excel else ",", excel_tz="UTC" if excel else None
        )
        cells = [
            row[0]
            for row in csv.reader(io.StringIO(out.getvalue()), delimiter=";" if excel else ",")
        ][2:]
        assert all(cell[0] == "'" for cell in cells), cells
        assert [csvio.unneutralise(cell) for cell in cells] == FORMULAS
    events = io.StringIO()
    eventlog.export_events(conn, events)
    for row in csv.reader(io.StringIO(events.getvalue())):
        assert not any(cell[:1] in ("=", "+", "-", "@", "\t", "\r") for cell in row), row


# Participant ids keep no surrounding spaces on import (people type them by hand), except the
# tab or carriage return that a formula trick starts with, which the export protects.
REFS = (
    st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=1,
        max_size=30,
    )
    .map(lambda text: text.rstrip())
    .filter(lambda text: bool(text) and (text[0] in "\t\r" or text == text.strip()))
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(refs=st.lists(REFS, min_size=1, max_size=8, unique=True), excel=st.booleans())
def test_export_then_import_round_trips_any_text(refs: list[str], excel: bool) -> None:
    conn = memory_db()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # quotes a lone "\r"
    writer.writerow(["participant", "referrer", "joined_at", "channel"])
    previous = ""
    for i, ref in enumerate(refs):
        writer.writerow(
            [
                csvio.neutralise(ref),
                csvio.neutralise(previous),
                f"2026-01-05T09:0{i}:00+00:00",
                "code",
            ]
        )
        previous = ref
    csvio.import_rows(conn, buffer.getvalue(), "UTC", NOW)
    out = io.StringIO()
    csvio.export_rows(
        conn, out, delimiter=";" if excel else ",", bom=excel, excel_tz="UTC" if excel else None
    )
    fresh = memory_db()
    csvio.import_rows(fresh, out.getvalue().lstrip("\ufeff"), "UTC", NOW)
    query = (
        "SELECT p.ref, r.ref, p.joined_at FROM participants p"
        " LEFT JOIN participants r ON r.id = p.referrer_id ORDER BY p.id"
    )
    assert fresh.execute(query).fetchall() == conn.execute(query).fetchall()
    assert [r for (r,) in fresh.execute("SELECT ref FROM participants ORDER BY id")] == refs


def enrol(env: Path, tmp_path: Path, text: str, name: str = "enrol.csv") -> int:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return cli.main(["enrol", str(path), "--db", str(env)])


def test_enrol_marks_many_at_once(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    people = (
        HEADER
        + "a,,2026-01-05T09:00:00+00:00,,,\n"
        + "b,a,2026-01-06T09:00:00+00:00,,,\n"
        + "c,a,2026-01-07T09:00:00+00:00,,,\n"
    )
    (tmp_path / "people.csv").write_text(people, encoding="utf-8")
    assert cli.main(["import", str(tmp_path / "people.csv"), "--db", str(env)]) == 0
    assert (
        enrol(env, tmp_path, "participant;enrolled_at\na;10/01/2026\nb;2026-01-11T10:00:00+01:00\n")
        == 0
    )
    assert "2 entrées dans le programme enregistrées" in capsys.readouterr().err
    conn = sqlite3.connect(env)
    assert conn.execute("SELECT ref, enrolled_at FROM participants ORDER BY id").fetchall() == [
        ("a", "2026-01-09T23:00:00+00:00"),
        ("b", "2026-01-11T09:00:00+00:00"),
        ("c", None),
    ]
    assert conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'enrolled'").fetchone() == (2,)


def test_enrol_is_all_or_nothing(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    people = HEADER + "a,,2026-01-05T09:00:00+00:00,,,\nb,a,2026-01-06T09:00:00+00:00,,,\n"
    (tmp_path / "people.csv").write_text(people, encoding="utf-8")
    assert cli.main(["import", str(tmp_path / "people.csv"), "--db", str(env)]) == 0
    capsys.readouterr()
    bad = (
        "participant,enrolled_at\na,10/01/2026\nghost,10/01/2026\nb,01/01/2026\nb,02/01/2026\na2,\n"
    )
    assert enrol(env, tmp_path, bad) == 2
    err = capsys.readouterr().err
    assert "ligne 3, colonne participant : « ghost » n'est pas dans la base" in err
    assert (
        "ligne 4, colonne enrolled_at : entrée dans le programme (« 01/01/2026 ») avant l'arrivée"
        in err
    )
    assert "ligne 5 : le participant « b » apparaît déjà ligne 4" in err
    assert "Traceback" not in err
    assert sqlite3.connect(env).execute(
        "SELECT COUNT(enrolled_at) FROM participants"
    ).fetchone() == (0,)
    assert enrol(env, tmp_path, "participant,date\na,10/01/2026\n") == 2
    assert "colonne obligatoire absente : enrolled_at" in capsys.readouterr().err
