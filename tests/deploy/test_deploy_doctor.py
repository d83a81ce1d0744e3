"""``relais doctor``: names every configuration problem in plain words, offline, without writing."""

from __future__ import annotations

import ast
import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot import cli
from bot.doctor import Level, diagnose, latest_schema
from bot.settings import VARIABLES
from bot.texts import LANGS, MESSAGES_DIR, Texts
from referrals.store import Database

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"
AUTH = "0123456789abcdef0123456789abcdef"
SECRET = "f" * 64


def good_env(db: Path) -> dict[str, str]:
    return {
        "DISCORD_TOKEN": TOKEN,
        "DISCORD_GUILD_ID": "123456789012345678",
        "DISCORD_CLIENT_ID": "987654321098765432",
        "DISCORD_CLIENT_SECRET": "abcdefghijklmnopqrstuvwxyzABCDEF",
        "PUBLIC_BASE_URL": "https://relais.example.fr",
        "RELAIS_PROGRAMME_NAME": "Mission locale de Nantes",
        "RELAIS_SECRET": SECRET,
        "RELAIS_DB": str(db),
        "TWILIO_ACCOUNT_SID": "AC" + AUTH,
        "TWILIO_AUTH_TOKEN": AUTH,
        "TWILIO_FROM_NUMBER": "RELAIS",
    }


@pytest.fixture
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty working directory (no .env) and an environment without any Relais variable."""
    monkeypatch.chdir(tmp_path)
    for name in (*VARIABLES, "RELAIS_DEV_SYNC"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def make_db(path: Path) -> Path:
    async def create() -> None:
        db = await Database.open(path)
        await db.close()

    asyncio.run(create())
    return path


def doctor(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    *args: str,
) -> tuple[int, str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    code = cli.main(["doctor", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out


def lines_with(out: str, label: str) -> list[str]:
    return [line.strip() for line in out.splitlines() if line.strip().startswith(label)]


def problems(out: str) -> str:
    return "\n".join(lines_with(out, "PROBLÈME"))


def test_a_good_environment_has_no_problem(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = good_env(make_db(workdir / "relais.db"))
    code, out = doctor(capsys, monkeypatch, env)
    assert code == 0, problems(out)
    assert not lines_with(out, "PROBLÈME")
    assert "Relais peut démarrer" in out
    assert "https://relais.example.fr/twilio/sms" in out  # what to paste into Twilio
    assert "https://relais.example.fr/oauth/callback" in out  # what to paste into Discord
    assert f"à jour (version {latest_schema()})" in out
    # The default facts are placeholders: a warning, not a problem.
    assert any("à compléter" in line for line in lines_with(out, "ATTENTION"))


def test_secrets_are_never_printed(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = good_env(workdir / "relais.db")
    env["DISCORD_CLIENT_SECRET"] = "s3cr3t-client-value-xyz"
    _code, out = doctor(capsys, monkeypatch, env)
    for secret in (TOKEN, AUTH, SECRET, "s3cr3t-client-value-xyz"):
        assert secret not in out


def test_an_empty_environment_names_the_missing_token_and_exits_2(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out = doctor(capsys, monkeypatch, {})
    assert code == 2
    assert "DISCORD_TOKEN manque" in problems(out)
    warnings = "\n".join(lines_with(out, "ATTENTION"))
    assert "DISCORD_GUILD_ID" in warnings and "PUBLIC_BASE_URL" in warnings
    assert "SMS ne sont pas configurés" in warnings
    assert "1 problème" in out
    assert not (workdir / "relais.db").exists(), "the doctor must not create the database"


def test_every_bad_value_is_named_not_only_the_first(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = good_env(workdir / "relais.db")
    env.update(
        {
            "SMS_QUIET_HOURS": "25:00-08:00",
            "SMS_ALLOWED_COUNTRIES": "France",
            "SMS_DAILY_BUDGET": "beaucoup",
            "RELAIS_LANG": "de",
            "RELAIS_TZ": "Europe/Nantes",
            "DISCORD_GUILD_ID": "mon-serveur",
        }
    )
    code, out = doctor(capsys, monkeypatch, env)
    assert code == 2
    found = problems(out)
    for name in (
        "SMS_QUIET_HOURS",
        "SMS_ALLOWED_COUNTRIES",
        "SMS_DAILY_BUDGET",
        "RELAIS_LANG",
        "RELAIS_TZ",
        "DISCORD_GUILD_ID",
    ):
        assert f"{name} a une valeur invalide" in found, name
    assert "« 25:00-08:00 »" in found and "20:00-08:00,sun,holidays" in found  # value and example
    # No OK line contradicts a rejected value.
    assert not any("Heures calmes" in line for line in lines_with(out, "OK"))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"DISCORD_TOKEN": "Bot " + TOKEN}, "sans ce mot"),
        ({"DISCORD_TOKEN": "987654321098765432"}, "Application ID"),
        ({"DISCORD_TOKEN": "abcdefghijklmnopqrstuvwxyzABCDEF"}, "Client Secret"),
        ({"DISCORD_TOKEN": "pas-un-jeton"}, "forme d'un jeton"),
        ({"PUBLIC_BASE_URL": "http://relais.example.fr"}, "n'est pas en https"),
        ({"PUBLIC_BASE_URL": "https://relais.example.fr/twilio/sms"}, "adresse de base"),
        ({"PUBLIC_BASE_URL": "relais.example.fr"}, "PUBLIC_BASE_URL a une valeur invalide"),
        ({"TWILIO_AUTH_TOKEN": ""}, "TWILIO_ACCOUNT_SID est défini mais pas TWILIO_AUTH_TOKEN"),
        ({"TWILIO_ACCOUNT_SID": ""}, "TWILIO_AUTH_TOKEN est défini mais pas TWILIO_ACCOUNT_SID"),
        ({"TWILIO_ACCOUNT_SID": "SK" + AUTH}, "clé d'API"),
        ({"TWILIO_FROM_NUMBER": ""}, "Aucun expéditeur SMS"),
        ({"TWILIO_FROM_NUMBER": "0612345678"}, "format international"),
        ({"TWILIO_FROM_NUMBER": "+3361234"}, "n'est pas un numéro valide"),
        ({"TWILIO_FROM_NUMBER": "RELAIS JEUNES 44"}, "11 caractères au plus"),
        ({"TWILIO_MESSAGING_SERVICE_SID": "XX12"}, "MG"),
        ({"SMS_ALLOWED_COUNTRIES": "FR,UK"}, "le Royaume-Uni s'écrit GB"),
        ({"DISCORD_CLIENT_SECRET": ""}, "pas DISCORD_CLIENT_SECRET"),
        ({"RELAIS_DB": "/nonexistent-relais-dir/relais.db"}, "n'existe pas"),
    ],
)
def test_each_problem_is_named(
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    change: dict[str, str],
    expected: str,
) -> None:
    env = good_env(workdir / "relais.db")
    env.update(change)
    for name, value in change.items():
        if not value:
            env.pop(name)
    code, out = doctor(capsys, monkeypatch, env)
    assert code == 2, out
    assert expected in problems(out), out


def test_one_way_sender_without_any_way_to_stop(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = good_env(workdir / "relais.db")
    del env["PUBLIC_BASE_URL"]
    code, out = doctor(capsys, monkeypatch, env)
    assert code == 2
    found = problems(out)
    assert "SMS_STOP_TEXT" in found and "PUBLIC_BASE_URL" in found
    assert "Twilio est configuré mais PUBLIC_BASE_URL manque" in found
    # With a stop text the sender is fine (the missing public URL stays a problem for Twilio).
    monkeypatch.setenv("SMS_STOP_TEXT", "STOP au 36180")
    _code, out = doctor(capsys, monkeypatch, {})
    assert "SMS_STOP_TEXT" not in problems(out)
    assert "« STOP au 36180 »" in out


def test_two_way_number_needs_no_stop_text(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = good_env(make_db(workdir / "relais.db"))
    env["TWILIO_FROM_NUMBER"] = "+33644630000"
    code, out = doctor(capsys, monkeypatch, env)
    assert code == 0, problems(out)
    assert "répondent STOP" in out


def test_doctor_says_which_opt_out_answers_stop(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = good_env(make_db(workdir / "relais.db"))
    env["TWILIO_FROM_NUMBER"] = "+33644630000"
    _code, out = doctor(capsys, monkeypatch, env)
    assert "Mode de désinscription : celui de Twilio par défaut" in out
    monkeypatch.setenv("TWILIO_MESSAGING_SERVICE_SID", "MG" + "0" * 32)
    _code, out = doctor(capsys, monkeypatch, {})
    assert "Mode de désinscription : celui du Messaging Service" in out
    monkeypatch.setenv("TWILIO_FROM_NUMBER", "RELAIS")
    _code, out = doctor(capsys, monkeypatch, {})
    assert "Mode de désinscription : expéditeur à sens unique" in out


def test_warnings_that_do_not_stop_the_bot(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = good_env(make_db(workdir / "relais.db"))
    env.update(
        {
            "SMS_QUIET_HOURS": "",
            "SMS_ALLOWED_COUNTRIES": "FR,BE",
            "SMS_STOP_TEXT": "Répondre « STOP » au 36180",
            "RELAIS_SECRET": "court",
            "DISCORD_STAFF_ROLE": "@Staff",
        }
    )
    code, out = doctor(capsys, monkeypatch, env)
    assert code == 0, problems(out)
    warnings = "\n".join(lines_with(out, "ATTENTION"))
    assert "SMS_QUIET_HOURS est vide" in warnings
    assert "hors de France : BE" in warnings
    assert '« Répondre " STOP " au 36180 »' in warnings  # how the line will leave (GSM-7)
    assert "RELAIS_SECRET est court" in warnings
    assert "sans @" in warnings


def test_database_checks(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = good_env(workdir / "relais.db")
    (workdir / "relais.db").write_text("pas une base", encoding="utf-8")
    code, out = doctor(capsys, monkeypatch, env)
    assert code == 2 and "n'est pas une base Relais lisible" in problems(out)

    newer = workdir / "newer.db"
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version = {latest_schema() + 1}")
    conn.close()
    code, out = doctor(capsys, monkeypatch, {}, "--db", str(newer))
    assert code == 2 and "plus récente que ce Relais" in problems(out)

    older = workdir / "older.db"
    conn = sqlite3.connect(older)
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    code, out = doctor(capsys, monkeypatch, {}, "--db", str(older))
    assert code == 0 and "relais db backup" in out


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_folder_is_a_problem(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = workdir / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        env = good_env(folder / "relais.db")
        code, out = doctor(capsys, monkeypatch, env)
    finally:
        folder.chmod(0o755)
    assert code == 2 and "n'est pas modifiable" in problems(out)


def test_secret_changed_after_opt_outs_were_hashed(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = make_db(workdir / "relais.db")
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO meta (key, value) VALUES ('secret', 'generated-before')")
    conn.execute("INSERT INTO opt_outs (phone_hash, at) VALUES ('ab', '2026-01-01T00:00:00+00:00')")
    conn.commit()
    conn.close()
    code, out = doctor(capsys, monkeypatch, good_env(db))
    assert code == 2 and "1 numéro(s) désinscrit(s)" in problems(out)
    env = good_env(db)
    del env["RELAIS_SECRET"]
    monkeypatch.delenv("RELAIS_SECRET", raising=False)
    code, out = doctor(capsys, monkeypatch, env)
    assert code == 0 and "encore dans la base (ancienne version)" in out
    assert str(workdir / "relais.key") in out  # where it will move


def test_secret_in_a_key_file_is_checked_against_relais_secret(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = make_db(workdir / "relais.db")
    (workdir / "relais.key").write_text("k" * 64 + "\n")
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO opt_outs (phone_hash, at) VALUES ('ab', '2026-01-01T00:00:00+00:00')")
    conn.commit()
    conn.close()
    code, out = doctor(capsys, monkeypatch, good_env(db))
    assert code == 2 and "1 numéro(s) désinscrit(s)" in problems(out)
    env = good_env(db)
    del env["RELAIS_SECRET"]
    monkeypatch.delenv("RELAIS_SECRET", raising=False)
    code, out = doctor(capsys, monkeypatch, env)
    assert code == 0 and "hors de la base" in out and "k" * 64 not in out


def test_backups_and_retention(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = good_env(make_db(workdir / "relais.db"))
    code, out = doctor(capsys, monkeypatch, env)
    assert "BACKUP_DIR n'est pas défini" in "\n".join(lines_with(out, "ATTENTION"))
    assert "1095 jours" in out
    env.update({"BACKUP_DIR": str(workdir / "backups"), "BACKUP_KEEP": "14"})
    code, out = doctor(capsys, monkeypatch, env)
    assert code == 0 and "les 14 plus récentes" in out  # created by the bot when missing
    (workdir / "file").write_text("x", encoding="utf-8")
    env.update({"BACKUP_DIR": str(workdir / "file" / "backups"), "RETENTION_QUESTIONS_DAYS": "0"})
    code, out = doctor(capsys, monkeypatch, env)
    assert code == 2
    assert "n'est pas un dossier" in problems(out)
    assert "RETENTION_QUESTIONS_DAYS a une valeur invalide" in problems(out)


def test_a_broken_knowledge_base_is_a_problem(tmp_path: Path) -> None:
    messages = tmp_path / "messages"
    shutil.copytree(MESSAGES_DIR, messages)
    (messages / "fr" / "faq" / "cej.yaml").write_text("id: cej\nanswer: [oops\n", encoding="utf-8")
    report, _settings = diagnose({}, dotenv=tmp_path / ".env", messages_dir=messages)
    found = [f for f in report.findings if f.key == "kb_problem"]
    assert found and found[0].level is Level.PROBLEM
    assert "cej.yaml" in found[0].params["problem"]


def _filled_in(value: object) -> object:
    if isinstance(value, dict):
        return {k: _filled_in(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled_in(v) for v in value]
    if isinstance(value, str) and ("compléter" in value.lower() or "to be completed" in value):
        return "Mission locale de Nantes"
    return value


def test_facts_complete_is_ok(tmp_path: Path) -> None:
    messages = tmp_path / "messages"
    shutil.copytree(MESSAGES_DIR, messages)
    facts = messages / "facts.yaml"
    data = yaml.safe_load(facts.read_text(encoding="utf-8"))
    facts.write_text(yaml.safe_dump(_filled_in(data), allow_unicode=True), encoding="utf-8")
    report, _settings = diagnose({}, dotenv=tmp_path / ".env", messages_dir=messages)
    keys = {f.key: f.level for f in report.findings if f.section == "content"}
    assert keys == {"kb_ok": Level.OK, "facts_ok": Level.OK}, keys


def test_a_dotenv_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("RELAIS_LANG=xx\nSMS_DAILY_BUDGET=0\n", encoding="utf-8")
    report, _settings = diagnose({"RELAIS_LANG": "en"}, dotenv=dotenv)
    keys = [f.key for f in report.findings]
    assert "env_file_read" in keys and "budget_zero" in keys
    assert not any(f.params.get("name") == "RELAIS_LANG" for f in report.findings)


def test_english_when_relais_lang_is_en(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out = doctor(capsys, monkeypatch, {"RELAIS_LANG": "en"})
    assert code == 2
    assert "DISCORD_TOKEN is missing" in "\n".join(lines_with(out, "PROBLEM"))
    assert out.rstrip().splitlines()[-1].startswith("Summary: 1 problem")


def test_subprocess_run_from_a_clean_environment(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env.update({**good_env(make_db(tmp_path / "relais.db")), "PYTHONPATH": str(ROOT)})
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "doctor"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Relais doctor")
    env["TWILIO_FROM_NUMBER"] = "pas un expéditeur !"
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "doctor"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "TWILIO_FROM_NUMBER" in result.stdout and "Traceback" not in result.stderr


def _doctor_keys() -> set[str]:
    """Every message key the doctor can report (third argument of report.add, and hints)."""
    tree = ast.parse((ROOT / "bot" / "doctor.py").read_text(encoding="utf-8"))
    keys = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add"
            and len(node.args) >= 3
        ):
            key = node.args[2]
            if isinstance(key, ast.Constant):
                keys.add(key.value)
            elif isinstance(key, ast.Name):  # a key chosen just before the call
                keys |= {
                    n.value
                    for n in ast.walk(tree)
                    if isinstance(n, ast.Constant)
                    and isinstance(n.value, str)
                    and n.value.startswith(("public_url_missing", "sid_"))
                }
    return keys


@pytest.mark.parametrize("lang", LANGS)
def test_every_doctor_message_exists_in_both_languages(lang: str) -> None:
    texts = Texts()
    keys = _doctor_keys()
    assert len(keys) > 60
    missing = [k for k in sorted(keys) if not texts.has(f"doctor.{k}", lang)]
    assert not missing, missing
    assert set(texts.catalogs["fr"]) & {f"doctor.{k}" for k in keys} == set(
        texts.catalogs["en"]
    ) & {f"doctor.{k}" for k in keys}


class _UniqueKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        keys = [self.construct_object(k, deep=deep) for k, _v in node.value]
        duplicates = {k for k in keys if keys.count(k) > 1}
        assert not duplicates, f"duplicate keys {duplicates}"
        return super().construct_mapping(node, deep=deep)


@pytest.mark.parametrize("lang", LANGS)
def test_doctor_messages_have_no_duplicate_key(lang: str) -> None:
    text = (MESSAGES_DIR / lang / "doctor.yaml").read_text(encoding="utf-8")
    yaml.load(text, Loader=_UniqueKeyLoader)


DOCTOR_SAMPLES = {
    "path": "/var/lib/relais/relais.db",
    "cwd": "/var/lib/relais",
    "name": "SMS_QUIET_HOURS",
    "value": "25:00",
    "hint": "Exemple : 20:00-08:00",
    "language": "fr",
    "tz": "Europe/Paris",
    "now": "14:05",
    "guild": 123456789012345678,
    "role": "Staff",
    "channel": "staff",
    "missing": "DISCORD_GUILD_ID, PUBLIC_BASE_URL",
    "redirect": "https://relais.example.fr/oauth/callback",
    "url": "https://relais.example.fr",
    "host": "localhost",
    "base": "https://relais.example.fr",
    "number": "+33644630000",
    "sender": "RELAIS",
    "sid": "MG0123456789abcdef0123456789abcdef",
    "text": "STOP au 36180",
    "converted": "STOP au 36180",
    "codes": "FR, RE",
    "window": "20:00-08:00",
    "sundays": True,
    "holidays": True,
    "days": 180,
    "per_member": 3,
    "budget": 200,
    "version": "3.40.1",
    "needed": "3.35.0",
    "dir": "/var/lib/relais",
    "user": "relais",
    "free": 120,
    "found": 7,
    "known": 6,
    "participants": 2,
    "length": 5,
    "count": 3,
    "problem": "fr/faq/cej.yaml: entry cej: no answer",
    "fr": 22,
    "en": 22,
    "keys": "address, phone",
    "reason": "file is not a database",
    "problems": 2,
    "warnings": 1,
    "inactive": 1095,
    "questions": 90,
    "keep": 7,
    "since": "2026-03-09 11:00",
}


@pytest.mark.parametrize("lang", LANGS)
def test_every_doctor_message_renders(lang: str) -> None:
    import jinja2.meta

    texts = Texts()
    keys = [k for k in texts.keys(lang) if k.startswith("doctor.")]
    for key in keys:
        source = texts.catalogs[lang][key]
        variables = jinja2.meta.find_undeclared_variables(texts.env.parse(source))
        assert variables <= set(DOCTOR_SAMPLES), (key, variables - set(DOCTOR_SAMPLES))
        text = texts.render(key, lang, **{v: DOCTOR_SAMPLES[v] for v in variables})
        assert text.strip() and "{{" not in text and "{%" not in text, key
