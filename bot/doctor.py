"""``relais doctor``: every configuration problem that can be seen offline, in plain words.

The doctor reads the raw variables (environment over ``.env``) itself, so that it names every bad
value rather than stopping at the first one as ``load_settings`` does. It never touches the network
and never writes: the database is opened read-only, and only when it already exists. Each finding is
OK, a warning, or a problem; the exit code is 0 without problems, 2 otherwise. Texts live in
``messages/<lang>/doctor.yaml``.
"""

from __future__ import annotations

import asyncio
import getpass
import ipaddress
import os
import re
import shutil
import sqlite3
import sys
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from bot.settings import VARIABLES, Settings, load_settings, read_dotenv
from bot.texts import MESSAGES_DIR
from referrals import outbox
from referrals.errors import ConfigError

if TYPE_CHECKING:
    from bot.context import Context

# RETURNING (used by the store) needs SQLite 3.35.
MIN_SQLITE = (3, 35, 0)
LOW_DISK_BYTES = 200 * 1024 * 1024
MAX_KB_PROBLEMS = 10
# France and its overseas territories: the default of SMS_ALLOWED_COUNTRIES.
FRENCH_REGIONS = frozenset(("FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF", "WF", "PF", "NC"))
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD")
_DISCORD_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}")
_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
_AUTH_TOKEN = re.compile(r"[0-9a-fA-F]{32}")
_ALPHA_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")
_SHORT_CODE = re.compile(r"\d{5,6}")
_PLACEHOLDER = re.compile(r"a completer|to be completed")


class Level(Enum):
    """How serious a finding is."""

    OK = "ok"
    WARNING = "warning"
    PROBLEM = "problem"


@dataclass(frozen=True)
class Finding:
    """One line of the report: a message key of ``doctor.yaml`` with its parameters."""

    section: str
    level: Level
    key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    """The findings, in the order they were made."""

    findings: list[Finding] = field(default_factory=list)
    invalid: set[str] = field(default_factory=set)

    def add(self, section: str, level: Level, key: str, **params: Any) -> None:
        """Record one finding."""
        self.findings.append(Finding(section, level, key, params))

    def count(self, level: Level) -> int:
        """How many findings have this level."""
        return sum(1 for f in self.findings if f.level is level)


# ----------------------------------------------------------------------------- reading variables


def read_values(dotenv: Path, environ: dict[str, str], report: Report) -> dict[str, str]:
    """The raw variables, the environment over ``.env``, as ``load_settings`` reads them."""
    values: dict[str, str] = {}
    if dotenv.is_file():
        try:
            values = read_dotenv(dotenv)
            report.add("general", Level.OK, "env_file_read", path=str(dotenv.resolve()))
        except ConfigError:
            report.add("general", Level.PROBLEM, "env_file_bad", path=str(dotenv.resolve()))
    else:
        report.add("general", Level.OK, "env_file_none", cwd=str(Path.cwd()))
    values.update(environ)
    return values


def _shown(name: str, value: str) -> str:
    """A value safe to print: secrets are never shown."""
    return "***" if _SECRET_NAME.search(name) else value


def valid_settings(values: dict[str, str], report: Report) -> Settings:
    """Check each variable on its own, report the bad ones, and build settings from the rest."""
    good: dict[str, str] = {}
    for name in VARIABLES:
        if name not in values:
            continue
        try:
            load_settings({name: values[name]}, dotenv=None)
        except ConfigError:
            hint_key = f"hint_{name.lower()}"
            report.invalid.add(name)
            report.add(
                "general",
                Level.PROBLEM,
                "bad_value",
                name=name,
                value=_shown(name, values[name]),
                hint=hint_key,
            )
            continue
        good[name] = values[name]
    try:
        return load_settings(good, dotenv=None)
    except ConfigError:  # pragma: no cover - each value was checked alone above
        return Settings()


def _filled(values: dict[str, str], name: str) -> str | None:
    value = values.get(name)
    return value.strip() if value and value.strip() else None


# ----------------------------------------------------------------------------- general


def check_general(values: dict[str, str], settings: Settings, report: Report) -> None:
    """Language, time zone, programme name."""
    if "RELAIS_LANG" not in report.invalid:
        report.add("general", Level.OK, "lang_ok", language=settings.lang)
    try:
        from zoneinfo import ZoneInfo

        now = datetime.now(ZoneInfo(settings.tz)).strftime("%H:%M")
        if "RELAIS_TZ" not in report.invalid:
            report.add("general", Level.OK, "tz_ok", tz=settings.tz, now=now)
    except Exception:
        report.add("general", Level.PROBLEM, "tz_data_missing", tz=settings.tz)
    if _filled(values, "RELAIS_PROGRAMME_NAME"):
        report.add("general", Level.OK, "programme_ok", name=settings.programme_name)
    else:
        report.add("general", Level.WARNING, "programme_default", name=settings.programme_name)


# ----------------------------------------------------------------------------- Discord


def check_discord(values: dict[str, str], settings: Settings, report: Report) -> None:
    """Token format, server id, staff role and channel, OAuth2 application."""
    token = _filled(values, "DISCORD_TOKEN")
    if token is None:
        report.add("discord", Level.PROBLEM, "token_missing")
    elif token.lower().startswith("bot "):
        report.add("discord", Level.PROBLEM, "token_bot_prefix")
    elif token.isdigit():
        report.add("discord", Level.PROBLEM, "token_is_app_id")
    elif re.fullmatch(r"[A-Za-z0-9_-]{32}", token):
        report.add("discord", Level.PROBLEM, "token_is_client_secret")
    elif not _DISCORD_TOKEN.fullmatch(token):
        report.add("discord", Level.PROBLEM, "token_bad_format")
    else:
        report.add("discord", Level.OK, "token_ok")

    guild = _filled(values, "DISCORD_GUILD_ID")
    if guild is None:
        report.add("discord", Level.WARNING, "guild_missing")
    elif settings.discord_guild_id is not None:
        if 17 <= len(str(settings.discord_guild_id)) <= 20:
            report.add("discord", Level.OK, "guild_ok", guild=settings.discord_guild_id)
        else:
            report.add("discord", Level.WARNING, "guild_odd", guild=settings.discord_guild_id)

    role, channel = settings.discord_staff_role, settings.discord_staff_channel
    if role.startswith(("@", "<@")):
        report.add("discord", Level.WARNING, "staff_role_mention", role=role)
    if channel.startswith(("#", "<#")):
        report.add("discord", Level.WARNING, "staff_channel_mention", channel=channel)
    report.add("discord", Level.OK, "staff_ok", role=role, channel=channel)

    client_id = _filled(values, "DISCORD_CLIENT_ID")
    client_secret = _filled(values, "DISCORD_CLIENT_SECRET")
    if client_id and not client_secret:
        report.add("discord", Level.PROBLEM, "oauth_no_secret")
    elif client_secret and not client_id:
        report.add("discord", Level.PROBLEM, "oauth_no_id")
    elif client_id and client_secret:
        if not client_id.isdigit():
            report.add("discord", Level.PROBLEM, "oauth_bad_id")
        missing = [
            name
            for name, value in (
                ("DISCORD_TOKEN", settings.discord_token),
                ("DISCORD_GUILD_ID", settings.discord_guild_id),
                ("PUBLIC_BASE_URL", settings.public_base_url),
            )
            if not value
        ]
        if missing:
            report.add("discord", Level.WARNING, "oauth_incomplete", missing=", ".join(missing))
        elif client_id.isdigit():
            redirect = f"{settings.public_base_url}/oauth/callback"
            report.add("discord", Level.OK, "oauth_ok", redirect=redirect)
    elif settings.public_base_url:
        report.add("discord", Level.WARNING, "oauth_off")
    if _filled(values, "DISCORD_API_URL"):
        report.add("discord", Level.WARNING, "discord_api_url", url=settings.discord_api_url)


# ----------------------------------------------------------------------------- web


def _is_local_host(host: str) -> bool:
    if host in {"localhost", ""} or host.endswith((".local", ".localhost", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local


def check_web(values: dict[str, str], settings: Settings, report: Report) -> None:
    """PUBLIC_BASE_URL: set, https, reachable from the Internet, a base without a path."""
    url = settings.public_base_url
    if url is None:
        if _filled(values, "PUBLIC_BASE_URL"):
            return  # already reported as a bad value
        level = Level.PROBLEM if _twilio_credentials(values) else Level.WARNING
        key = "public_url_missing_twilio" if level is Level.PROBLEM else "public_url_missing"
        report.add("web", level, key)
        return
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    bad = False
    if parts.scheme != "https":
        report.add("web", Level.PROBLEM, "public_url_http", url=url)
        bad = True
    if _is_local_host(host):
        report.add("web", Level.WARNING, "public_url_local", url=url, host=host)
        bad = True
    if parts.query or parts.fragment:
        report.add("web", Level.PROBLEM, "public_url_query", url=url)
        bad = True
    path = parts.path.rstrip("/")
    if re.search(r"/(twilio|healthz|r|stop|oauth)(/|$)", path):
        report.add(
            "web", Level.PROBLEM, "public_url_path", url=url, base=f"{parts.scheme}://{host}"
        )
        bad = True
    if not bad:
        report.add("web", Level.OK, "public_url_ok", url=url)


# ----------------------------------------------------------------------------- SMS


def _twilio_credentials(values: dict[str, str]) -> bool:
    return bool(_filled(values, "TWILIO_ACCOUNT_SID") or _filled(values, "TWILIO_AUTH_TOKEN"))


def check_sms(values: dict[str, str], settings: Settings, report: Report) -> None:
    """Twilio credentials and sender, the opt-out line, countries, quiet hours, limits."""
    sid = _filled(values, "TWILIO_ACCOUNT_SID")
    token = _filled(values, "TWILIO_AUTH_TOKEN")
    number = _filled(values, "TWILIO_FROM_NUMBER")
    service = _filled(values, "TWILIO_MESSAGING_SERVICE_SID")
    if not (sid or token or number or service):
        report.add("sms", Level.WARNING, "twilio_off")
    else:
        _check_twilio(sid, token, number, service, settings, report)
    if _filled(values, "TWILIO_API_URL"):
        report.add("sms", Level.WARNING, "twilio_api_url", url=settings.twilio_api_url)
    _check_countries(settings, report)
    _check_quiet_hours(settings, report)
    _check_limits(settings, report)


def _check_twilio(
    sid: str | None,
    token: str | None,
    number: str | None,
    service: str | None,
    settings: Settings,
    report: Report,
) -> None:
    if sid and not token:
        report.add("sms", Level.PROBLEM, "sid_without_token")
    if token and not sid:
        report.add("sms", Level.PROBLEM, "token_without_sid")
    if not (sid or token):
        report.add("sms", Level.PROBLEM, "sender_without_credentials")
    if sid and not _ACCOUNT_SID.fullmatch(sid):
        key = "sid_is_api_key" if sid.startswith("SK") else "sid_bad_format"
        report.add("sms", Level.PROBLEM, key)
    if token and not _AUTH_TOKEN.fullmatch(token):
        report.add("sms", Level.WARNING, "auth_token_bad_format")
    if not (number or service):
        report.add("sms", Level.PROBLEM, "no_sender")
        return
    if number and service:
        report.add("sms", Level.WARNING, "both_senders")
    if service and not _SERVICE_SID.fullmatch(service):
        report.add("sms", Level.PROBLEM, "service_bad_format")
    one_way = True
    if number:
        one_way = _check_sender_number(number, report)
    elif service:
        report.add("sms", Level.OK, "sender_service", sid=service)
    if one_way:
        _check_stop_line(settings, report)
        report.add("sms", Level.OK, "opt_out_mode_one_way")
    else:
        report.add("sms", Level.OK, "stop_keyword")
        # Which opt-out answers STOP (issue 17): Twilio's own, mirrored by Relais (OptOutType).
        key = "opt_out_mode_service" if service else "opt_out_mode_default"
        report.add("sms", Level.OK, key)


def _check_sender_number(number: str, report: Report) -> bool:
    """Report on TWILIO_FROM_NUMBER; True when it is a one-way sender."""
    import phonenumbers

    if number.startswith("+"):
        try:
            parsed = phonenumbers.parse(number, None)
            valid = phonenumbers.is_valid_number(parsed)
        except phonenumbers.NumberParseException:
            valid = False
        if valid:
            report.add("sms", Level.OK, "sender_number", number=number)
        else:
            report.add("sms", Level.PROBLEM, "sender_number_invalid", number=number)
        return False
    if _SHORT_CODE.fullmatch(number):
        report.add("sms", Level.OK, "sender_short_code", number=number)
    elif re.fullmatch(r"[\d .-]+", number):
        report.add("sms", Level.PROBLEM, "sender_national", number=number)
    elif _ALPHA_SENDER.fullmatch(number):
        report.add("sms", Level.OK, "sender_alphanumeric", sender=number)
    else:
        report.add("sms", Level.PROBLEM, "sender_alphanumeric_bad", sender=number)
    return True


def _check_stop_line(settings: Settings, report: Report) -> None:
    """A one-way sender needs SMS_STOP_TEXT or an opt-out link under PUBLIC_BASE_URL."""
    from bot.sms import gsm

    text = settings.sms_stop_text
    if text:
        converted = gsm.to_gsm(text)
        if converted != text:
            report.add("sms", Level.WARNING, "stop_text_not_gsm", text=text, converted=converted)
        if "stop" not in _fold(text):
            report.add("sms", Level.WARNING, "stop_text_no_stop", text=text)
        report.add("sms", Level.OK, "stop_text_ok", text=converted)
    elif settings.public_base_url:
        report.add("sms", Level.OK, "stop_link_ok", url=settings.public_base_url)
    else:
        report.add("sms", Level.PROBLEM, "one_way_no_stop")


def _check_countries(settings: Settings, report: Report) -> None:
    import phonenumbers

    regions = settings.sms_allowed_countries
    unknown = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        report.add("sms", Level.PROBLEM, "countries_unknown", codes=", ".join(unknown))
    foreign = [r for r in regions if r not in FRENCH_REGIONS and r not in unknown]
    if foreign:
        report.add("sms", Level.WARNING, "countries_foreign", codes=", ".join(foreign))
    if not unknown and "SMS_ALLOWED_COUNTRIES" not in report.invalid:
        report.add("sms", Level.OK, "countries_ok", codes=", ".join(regions))


def _check_quiet_hours(settings: Settings, report: Report) -> None:
    quiet = settings.sms_quiet_hours
    if "SMS_QUIET_HOURS" in report.invalid:
        return
    if quiet.never:
        report.add("sms", Level.WARNING, "quiet_never")
        return
    window = (
        f"{quiet.start:%H:%M}-{quiet.end:%H:%M}"
        if quiet.start is not None and quiet.end is not None
        else ""
    )
    report.add(
        "sms",
        Level.OK,
        "quiet_ok",
        window=window,
        sundays=quiet.sundays,
        holidays=quiet.holidays,
    )


def _check_limits(settings: Settings, report: Report) -> None:
    if settings.sms_daily_budget == 0:
        report.add("sms", Level.WARNING, "budget_zero")
    if settings.sms_invites_per_member_per_day == 0:
        report.add("sms", Level.WARNING, "invites_zero")
    if settings.sms_reinvite_days < 30:
        report.add("sms", Level.WARNING, "reinvite_short", days=settings.sms_reinvite_days)
    limits = {"SMS_INVITES_PER_MEMBER_PER_DAY", "SMS_DAILY_BUDGET", "SMS_REINVITE_DAYS"}
    if limits & report.invalid:
        return
    report.add(
        "sms",
        Level.OK,
        "limits_ok",
        per_member=settings.sms_invites_per_member_per_day,
        budget=settings.sms_daily_budget,
        days=settings.sms_reinvite_days,
    )


# ----------------------------------------------------------------------------- database


def latest_schema() -> int:
    """The schema version this Relais migrates to."""
    from referrals.store import migrations

    return max((number for number, _name, _sql in migrations()), default=0)


def check_database(db_path: Path, values: dict[str, str], report: Report) -> None:
    """SQLite version, the file and its folder, the schema version, the hashing secret."""
    version = sqlite3.sqlite_version_info
    if version < MIN_SQLITE:
        report.add(
            "database",
            Level.PROBLEM,
            "sqlite_old",
            version=sqlite3.sqlite_version,
            needed=".".join(map(str, MIN_SQLITE)),
        )
    else:
        report.add("database", Level.OK, "sqlite_ok", version=sqlite3.sqlite_version)

    path = db_path.expanduser().absolute()
    folder = path.parent
    user = _user()
    secret = _filled(values, "RELAIS_SECRET")
    key_file = _key_file(values, path)
    if not folder.is_dir():
        report.add("database", Level.PROBLEM, "db_dir_missing", dir=str(folder))
        _check_secret(secret, None, report, key_file)
        return
    if not os.access(folder, os.W_OK | os.X_OK):
        report.add("database", Level.PROBLEM, "db_dir_not_writable", dir=str(folder), user=user)
    free = shutil.disk_usage(folder).free
    if free < LOW_DISK_BYTES:
        report.add("database", Level.WARNING, "disk_low", dir=str(folder), free=free // 2**20)
    if not path.exists():
        report.add("database", Level.OK, "db_new", path=str(path))
        _check_secret(secret, None, report, key_file)
        return
    if not path.is_file():
        report.add("database", Level.PROBLEM, "db_not_file", path=str(path))
        return
    if not os.access(path, os.R_OK | os.W_OK):
        report.add("database", Level.PROBLEM, "db_not_writable", path=str(path), user=user)
        return
    try:
        info = _inspect_database(path)
    except sqlite3.Error as exc:
        report.add("database", Level.PROBLEM, "db_not_sqlite", path=str(path), reason=str(exc))
        return
    known = latest_schema()
    found = info["version"]
    if found > known:
        report.add("database", Level.PROBLEM, "db_newer", path=str(path), found=found, known=known)
    elif found < known:
        report.add(
            "database",
            Level.WARNING,
            "db_pending",
            path=str(path),
            found=found,
            known=known,
        )
    else:
        report.add(
            "database",
            Level.OK,
            "db_ok",
            path=str(path),
            version=found,
            participants=info["participants"],
        )
    for channel, count, oldest in info.get("outbox", []):
        # Messages built for Discord while only ``relais serve`` ran: ``relais run`` sends them.
        report.add(
            "database",
            Level.WARNING,
            "outbox_waiting",
            channel=channel,
            count=count,
            since=(oldest or "")[:16].replace("T", " "),
        )
    _check_secret(secret, info, report, key_file)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry for this uid (some containers)
        return str(os.getuid()) if hasattr(os, "getuid") else "?"


def _inspect_database(path: Path) -> dict[str, Any]:
    """Schema version, stored secret and a few counts, read-only."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        info: dict[str, Any] = {
            "version": version,
            "participants": 0,
            "stored_secret": None,
            "opt_outs": 0,
        }
        if "participants" in tables:
            info["participants"] = conn.execute("SELECT count(*) FROM participants").fetchone()[0]
        if "meta" in tables:
            row = conn.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()
            info["stored_secret"] = row[0] if row else None
        if "opt_outs" in tables:
            info["opt_outs"] = conn.execute("SELECT count(*) FROM opt_outs").fetchone()[0]
        info["outbox"] = outbox.summary(conn) if "outbox" in tables else []
        return info
    finally:
        conn.close()


def _key_file(values: dict[str, str], db_path: Path) -> Path:
    from referrals.privacy import default_key_file

    configured = _filled(values, "RELAIS_SECRET_FILE")
    return Path(configured) if configured else default_key_file(db_path)


def _check_secret(
    secret: str | None,
    info: dict[str, Any] | None,
    report: Report,
    key_file: Path | None = None,
) -> None:
    stored = info["stored_secret"] if info else None
    file_key: str | None = None
    if key_file is not None and key_file.exists():
        try:
            file_key = key_file.read_text(encoding="ascii").strip() or None
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            report.add(
                "database",
                Level.PROBLEM,
                "secret_file_unreadable",
                path=str(key_file),
                reason=reason,
            )
            return
    previous = file_key or stored
    where = str(key_file) if key_file is not None else "relais.key"
    if secret:
        if len(secret) < 32:
            report.add("database", Level.WARNING, "secret_short", length=len(secret))
        if previous and previous != secret and info and info["opt_outs"]:
            report.add("database", Level.PROBLEM, "secret_mismatch", count=info["opt_outs"])
        else:
            report.add("database", Level.OK, "secret_env")
    elif file_key:
        report.add("database", Level.OK, "secret_file", path=where)
    elif stored:
        report.add("database", Level.OK, "secret_stored", path=where)
    else:
        report.add("database", Level.OK, "secret_will_generate", path=where)


def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_retention_and_backups(settings: Settings, report: Report) -> None:
    """Retention periods, and the daily backup folder (created by the bot when missing)."""
    names = {"RETENTION_INACTIVE_DAYS", "RETENTION_QUESTIONS_DAYS"}
    if not names & report.invalid:
        report.add(
            "database",
            Level.OK,
            "retention_ok",
            inactive=settings.retention_inactive_days,
            questions=settings.retention_questions_days,
        )
    if "BACKUP_DIR" in report.invalid or "BACKUP_KEEP" in report.invalid:
        return
    folder = settings.backup_dir
    if folder is None:
        report.add("database", Level.WARNING, "backup_off")
        return
    folder = folder.expanduser().absolute()
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        report.add("database", Level.PROBLEM, "backup_not_dir", dir=str(existing))
    elif not os.access(existing, os.W_OK | os.X_OK):
        report.add(
            "database", Level.PROBLEM, "backup_not_writable", dir=str(existing), user=_user()
        )
    else:
        report.add("database", Level.OK, "backup_ok", dir=str(folder), keep=settings.backup_keep)


# ----------------------------------------------------------------------------- content


def _fold(text: str) -> str:
    """Lower case without accents."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _placeholders(value: Any, path: str = "") -> list[str]:
    """The keys of ``facts.yaml`` whose value still says it is to be completed."""
    if isinstance(value, dict):
        found: list[str] = []
        for key, item in value.items():
            found += _placeholders(item, f"{path}.{key}" if path else str(key))
        return found
    if isinstance(value, list):
        return [key for i, item in enumerate(value) for key in _placeholders(item, f"{path}[{i}]")]
    if isinstance(value, str) and _PLACEHOLDER.search(_fold(value)):
        return [path]
    return []


def check_content(messages_dir: Path, report: Report, lang: str = "fr") -> None:
    """The knowledge base (as ``relais faq check``) and the programme facts."""
    from bot.faq import check_knowledge_base

    try:
        problems = check_knowledge_base(messages_dir, lang=lang)
    except Exception as exc:  # a broken file must be reported, not crash the doctor
        problems = [f"{messages_dir}: {exc}"]
    for problem in problems[:MAX_KB_PROBLEMS]:
        report.add("content", Level.PROBLEM, "kb_problem", problem=problem)
    if len(problems) > MAX_KB_PROBLEMS:
        report.add("content", Level.PROBLEM, "kb_more", count=len(problems) - MAX_KB_PROBLEMS)
    if not problems:
        counts = {
            lang: sum(1 for p in (messages_dir / lang / "faq").glob("*.yaml") if p.stem[0] != "_")
            for lang in ("fr", "en")
        }
        report.add("content", Level.OK, "kb_ok", fr=counts["fr"], en=counts["en"])

    facts_path = messages_dir / "facts.yaml"
    try:
        facts = yaml.safe_load(facts_path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        report.add(
            "content", Level.PROBLEM, "facts_unreadable", path=str(facts_path), reason=str(exc)
        )
        return
    pending = _placeholders(facts)
    if pending:
        keys = sorted({key.split(".")[0].split("[")[0] for key in pending})
        report.add(
            "content",
            Level.WARNING,
            "facts_pending",
            path=str(facts_path),
            count=len(pending),
            keys=", ".join(keys),
        )
    else:
        report.add("content", Level.OK, "facts_ok", path=str(facts_path))


# ----------------------------------------------------------------------------- the command


SECTIONS = ("general", "discord", "web", "sms", "database", "content")


def diagnose(
    environ: dict[str, str],
    *,
    dotenv: Path = Path(".env"),
    db_arg: str | None = None,
    messages_dir: Path = MESSAGES_DIR,
) -> tuple[Report, Settings]:
    """Every finding for this environment (blocking: run it in a thread)."""
    report = Report()
    values = read_values(dotenv, environ, report)
    settings = valid_settings(values, report)
    check_general(values, settings, report)
    check_discord(values, settings, report)
    check_web(values, settings, report)
    check_sms(values, settings, report)
    db_path = Path(db_arg) if db_arg else settings.db_path
    check_database(db_path, values, report)
    check_retention_and_backups(settings, report)
    check_content(messages_dir, report, settings.lang)
    return report, settings


def render(report: Report, ctx: Context, lang: str) -> str:
    """The report as text, grouped by section."""

    def t(key: str, **params: Any) -> str:
        return ctx.texts.render(f"doctor.{key}", lang, **params)

    lines = [t("title")]
    for section in SECTIONS:
        findings = [f for f in report.findings if f.section == section]
        if not findings:
            continue
        lines.append("")
        lines.append(t(f"section_{section}"))
        for finding in findings:
            params = dict(finding.params)
            if finding.key == "bad_value":
                hint = params.pop("hint")
                params["hint"] = t(hint) if ctx.texts.has(f"doctor.{hint}", lang) else ""
            label = t(f"level_{finding.level.value}")
            text = t(finding.key, **params).replace("\n", "\n" + " " * 12)
            lines.append(f"  {label:<10}{text}")
    lines.append("")
    problems, warnings = report.count(Level.PROBLEM), report.count(Level.WARNING)
    lines.append(t("summary", problems=problems, warnings=warnings))
    return "\n".join(lines)


async def cmd_doctor(ctx: Context) -> int:
    """``relais doctor``: print every finding; exit 0 without problems, 2 otherwise."""
    report, settings = await asyncio.to_thread(
        diagnose,
        dict(os.environ),
        db_arg=getattr(ctx.args, "db", None),
        messages_dir=ctx.texts.messages_dir,
    )
    print(render(report, ctx, settings.lang))
    sys.stdout.flush()
    return 2 if report.count(Level.PROBLEM) else 0
