"""Typed settings, read once from the environment and a ``.env`` file (SPEC §2)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path

from referrals.errors import ConfigError

DEFAULT_DISCORD_API_URL = "https://discord.com/api/v10"
DEFAULT_COUNTRIES = ("FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF", "WF", "PF", "NC")


@dataclass(frozen=True)
class QuietHours:
    """When no invitation leaves: a daily window, Sundays, French public holidays."""

    start: time | None = None
    end: time | None = None
    sundays: bool = False
    holidays: bool = False

    @property
    def never(self) -> bool:
        """True when nothing is ever quiet."""
        return self.start is None and not self.sundays and not self.holidays


def parse_quiet_hours(value: str) -> QuietHours:
    """Parse ``20:00-08:00,sun,holidays``; an empty value means never quiet."""
    start = end = None
    sundays = holidays = False
    for raw in value.split(","):
        part = raw.strip().lower()
        if not part:
            continue
        if part in {"sun", "sunday", "dim", "dimanche"}:
            sundays = True
        elif part in {"holidays", "feries", "fériés"}:
            holidays = True
        else:
            match = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", part)
            if not match:
                raise ConfigError("config.bad_value", name="SMS_QUIET_HOURS", value=value)
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
                raise ConfigError("config.bad_value", name="SMS_QUIET_HOURS", value=value)
            start, end = time(h1, m1), time(h2, m2)
    return QuietHours(start, end, sundays, holidays)


def read_dotenv(path: Path) -> dict[str, str]:
    """Read ``KEY=VALUE`` lines of a .env file (comments, quotes and ``export`` allowed)."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return values
    except UnicodeDecodeError as exc:
        raise ConfigError("config.bad_dotenv", path=str(path)) from exc
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


@dataclass(frozen=True)
class Settings:
    """Every setting of SPEC §2, typed."""

    discord_token: str | None = None
    discord_guild_id: int | None = None
    discord_staff_role: str = "Staff"
    discord_staff_channel: str = "staff"
    db_path: Path = Path("relais.db")
    lang: str = "fr"
    tz: str = "Europe/Paris"
    secret: str | None = None
    secret_file: Path | None = None  # default: beside the database (secret_file_for)
    trusted_proxies: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    public_base_url: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    sms_stop_text: str | None = None
    twilio_api_url: str | None = None
    sms_allowed_countries: tuple[str, ...] = DEFAULT_COUNTRIES
    sms_quiet_hours: QuietHours = field(
        default_factory=lambda: parse_quiet_hours("20:00-08:00,sun,holidays")
    )
    sms_invites_per_member_per_day: int = 3
    sms_daily_budget: int = 200
    sms_reinvite_days: int = 180
    department: str | None = None  # RELAIS_DEPARTMENT: "44", "57", "2A"... (its own holidays)
    programme_name: str = "Relais"
    dev_sync: bool = False  # sync the slash commands to DISCORD_GUILD_ID at each start
    retention_inactive_days: int = 1095
    retention_questions_days: int = 90
    backup_dir: Path | None = None
    backup_keep: int = 7
    weekly_report: bool = False  # Monday 09:00 local: the week's figures to the staff channel
    discord_client_id: str | None = None
    discord_client_secret: str | None = None
    discord_api_url: str = DEFAULT_DISCORD_API_URL
    messages_dir: Path | None = None  # the programme's own copies of the messages (overlay)

    @property
    def twilio_configured(self) -> bool:
        """True when Twilio credentials and a sender are set."""
        return bool(
            self.twilio_account_sid
            and self.twilio_auth_token
            and (self.twilio_from_number or self.twilio_messaging_service_sid)
        )

    @property
    def discord_oauth_configured(self) -> bool:
        """True when the landing page can add people to the server through Discord OAuth2."""
        return bool(
            self.discord_client_id
            and self.discord_client_secret
            and self.discord_token
            and self.discord_guild_id
            and self.public_base_url
        )

    @property
    def two_way_sender(self) -> bool:
        """True when the sender is a phone number that can receive replies (STOP)."""
        return bool(self.twilio_from_number and self.twilio_from_number.startswith("+"))

    def secret_file_for(self, db_path: Path) -> Path | None:
        """The key file: ``RELAIS_SECRET_FILE``, else beside the database (none in memory)."""
        if self.secret_file is not None:
            return self.secret_file
        if str(db_path) == ":memory:":
            return None
        from referrals.privacy import default_key_file

        return default_key_file(db_path)

    def require(self, *names: str) -> None:
        """Fail with the variable's name when a required setting is missing."""
        for name in names:
            if not getattr(self, _ATTRIBUTE[name]):
                raise ConfigError("config.missing", name=name)


_ATTRIBUTE = {
    "DISCORD_TOKEN": "discord_token",
    "DISCORD_GUILD_ID": "discord_guild_id",
    "DISCORD_STAFF_ROLE": "discord_staff_role",
    "DISCORD_STAFF_CHANNEL": "discord_staff_channel",
    "RELAIS_DB": "db_path",
    "RELAIS_LANG": "lang",
    "RELAIS_TZ": "tz",
    "RELAIS_SECRET": "secret",
    "RELAIS_SECRET_FILE": "secret_file",
    "RELAIS_TRUSTED_PROXIES": "trusted_proxies",
    "PUBLIC_BASE_URL": "public_base_url",
    "TWILIO_ACCOUNT_SID": "twilio_account_sid",
    "TWILIO_AUTH_TOKEN": "twilio_auth_token",
    "TWILIO_FROM_NUMBER": "twilio_from_number",
    "TWILIO_MESSAGING_SERVICE_SID": "twilio_messaging_service_sid",
    "SMS_STOP_TEXT": "sms_stop_text",
    "TWILIO_API_URL": "twilio_api_url",
    "SMS_ALLOWED_COUNTRIES": "sms_allowed_countries",
    "SMS_QUIET_HOURS": "sms_quiet_hours",
    "SMS_INVITES_PER_MEMBER_PER_DAY": "sms_invites_per_member_per_day",
    "SMS_DAILY_BUDGET": "sms_daily_budget",
    "SMS_REINVITE_DAYS": "sms_reinvite_days",
    "RELAIS_DEPARTMENT": "department",
    "RELAIS_PROGRAMME_NAME": "programme_name",
    "RELAIS_DEV_SYNC": "dev_sync",
    "DISCORD_CLIENT_ID": "discord_client_id",
    "DISCORD_CLIENT_SECRET": "discord_client_secret",
    "DISCORD_API_URL": "discord_api_url",
    "RETENTION_INACTIVE_DAYS": "retention_inactive_days",
    "RETENTION_QUESTIONS_DAYS": "retention_questions_days",
    "BACKUP_DIR": "backup_dir",
    "BACKUP_KEEP": "backup_keep",
    "RELAIS_WEEKLY_REPORT": "weekly_report",
    "RELAIS_MESSAGES_DIR": "messages_dir",
}
VARIABLES = tuple(_ATTRIBUTE)


def _int(name: str, value: str, minimum: int = 0) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise ConfigError("config.bad_value", name=name, value=value) from None
    if number < minimum:
        raise ConfigError("config.bad_value", name=name, value=value)
    return number


def load_settings(
    environ: dict[str, str] | None = None, dotenv: Path | None = Path(".env")
) -> Settings:
    """Build the settings from ``environ`` (default: os.environ) over a ``.env`` file."""
    values: dict[str, str] = read_dotenv(dotenv) if dotenv else {}
    values.update(os.environ if environ is None else environ)

    def get(name: str) -> str | None:
        value = values.get(name)
        return value.strip() if value and value.strip() else None

    kwargs: dict[str, object] = {}
    for name in ("DISCORD_TOKEN", "DISCORD_STAFF_ROLE", "DISCORD_STAFF_CHANNEL", "RELAIS_SECRET"):
        if (value := get(name)) is not None:
            kwargs[_ATTRIBUTE[name]] = value
    for name in (
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_FROM_NUMBER",
        "TWILIO_MESSAGING_SERVICE_SID",
        "SMS_STOP_TEXT",
        "RELAIS_PROGRAMME_NAME",
        "DISCORD_CLIENT_ID",
        "DISCORD_CLIENT_SECRET",
    ):
        if (value := get(name)) is not None:
            kwargs[_ATTRIBUTE[name]] = value
    if (value := get("DISCORD_GUILD_ID")) is not None:
        kwargs["discord_guild_id"] = _int("DISCORD_GUILD_ID", value, 1)
    if (value := get("RELAIS_DB")) is not None:
        kwargs["db_path"] = Path(value)
    if (value := get("RELAIS_LANG")) is not None:
        if value.lower() not in {"fr", "en"}:
            raise ConfigError("config.bad_value", name="RELAIS_LANG", value=value)
        kwargs["lang"] = value.lower()
    if (value := get("RELAIS_TZ")) is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError("config.bad_value", name="RELAIS_TZ", value=value) from None
        kwargs["tz"] = value
    for name in ("PUBLIC_BASE_URL", "TWILIO_API_URL", "DISCORD_API_URL"):
        if (value := get(name)) is not None:
            if not re.match(r"^https?://[^\s/]+", value):
                raise ConfigError("config.bad_value", name=name, value=value)
            kwargs[_ATTRIBUTE[name]] = value.rstrip("/")
    if (value := get("SMS_ALLOWED_COUNTRIES")) is not None:
        regions = tuple(part.strip().upper() for part in value.split(",") if part.strip())
        if not regions or any(not re.fullmatch(r"[A-Z]{2}", r) for r in regions):
            raise ConfigError("config.bad_value", name="SMS_ALLOWED_COUNTRIES", value=value)
        kwargs["sms_allowed_countries"] = regions
    if (value := get("RELAIS_DEPARTMENT")) is not None:
        if not re.fullmatch(
            r"0[1-9]|1\d|2[1-9]|[3-8]\d|9[0-5]|2[AB]|97[1-8]|98[6-8]", value.upper()
        ):
            raise ConfigError("config.bad_value", name="RELAIS_DEPARTMENT", value=value)
        kwargs["department"] = value.upper()
    if "SMS_QUIET_HOURS" in values:
        kwargs["sms_quiet_hours"] = parse_quiet_hours(values["SMS_QUIET_HOURS"])
    for name in ("SMS_INVITES_PER_MEMBER_PER_DAY", "SMS_DAILY_BUDGET", "SMS_REINVITE_DAYS"):
        if (value := get(name)) is not None:
            kwargs[_ATTRIBUTE[name]] = _int(name, value)
    for name in ("RETENTION_INACTIVE_DAYS", "RETENTION_QUESTIONS_DAYS", "BACKUP_KEEP"):
        if (value := get(name)) is not None:
            kwargs[_ATTRIBUTE[name]] = _int(name, value, 1)
    if (value := get("RELAIS_SECRET_FILE")) is not None:
        kwargs["secret_file"] = Path(value)
    if "RELAIS_TRUSTED_PROXIES" in values:  # empty: no proxy is trusted
        from bot.clientaddr import parse_networks

        value = values["RELAIS_TRUSTED_PROXIES"]
        try:
            kwargs["trusted_proxies"] = parse_networks(value)
        except ValueError:
            name = "RELAIS_TRUSTED_PROXIES"
            raise ConfigError("config.bad_value", name=name, value=value) from None
    if (value := get("BACKUP_DIR")) is not None:
        kwargs["backup_dir"] = Path(value)
    if (value := get("RELAIS_MESSAGES_DIR")) is not None:
        if not Path(value).is_dir():
            raise ConfigError("config.not_a_folder", name="RELAIS_MESSAGES_DIR", path=value)
        kwargs["messages_dir"] = Path(value)
    if (value := get("RELAIS_DEV_SYNC")) is not None:
        if value.lower() not in {"1", "true", "yes", "oui", "0", "false", "no", "non"}:
            raise ConfigError("config.bad_value", name="RELAIS_DEV_SYNC", value=value)
        kwargs["dev_sync"] = value.lower() in {"1", "true", "yes", "oui"}
    if (value := get("RELAIS_WEEKLY_REPORT")) is not None:
        if value.lower() not in {"1", "true", "yes", "oui", "0", "false", "no", "non"}:
            raise ConfigError("config.bad_value", name="RELAIS_WEEKLY_REPORT", value=value)
        kwargs["weekly_report"] = value.lower() in {"1", "true", "yes", "oui"}
    # kwargs holds each field's own type, checked above; a dict[str, object] cannot say so.
    return Settings(**kwargs)  # type: ignore[arg-type]
