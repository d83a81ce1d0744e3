"""Settings (SPEC §2): typed, read once from the environment over a .env file."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from bot.settings import DEFAULT_COUNTRIES, Settings, load_settings, parse_quiet_hours
from bot.texts import Texts
from referrals.errors import ConfigError


def test_defaults_without_any_variable(tmp_path: Path) -> None:
    settings = load_settings({}, tmp_path / "absent.env")
    assert settings.discord_token is None
    assert (settings.discord_staff_role, settings.discord_staff_channel) == ("Staff", "staff")
    assert settings.db_path == Path("relais.db")
    assert (settings.lang, settings.tz) == ("fr", "Europe/Paris")
    assert settings.sms_allowed_countries == DEFAULT_COUNTRIES
    assert settings.sms_quiet_hours == parse_quiet_hours("20:00-08:00,sun,holidays")
    assert (
        settings.sms_invites_per_member_per_day,
        settings.sms_daily_budget,
        settings.sms_reinvite_days,
    ) == (3, 200, 180)
    assert not settings.twilio_configured


def test_missing_discord_token_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings().require("DISCORD_TOKEN")
    assert caught.value.key == "config.missing"
    assert caught.value.params["name"] == "DISCORD_TOKEN"
    message = Texts().render(caught.value.key, "fr", **caught.value.params)
    assert "DISCORD_TOKEN" in message
    Settings(discord_token="abc").require("DISCORD_TOKEN")  # no error


def test_blank_token_counts_as_missing(tmp_path: Path) -> None:
    settings = load_settings({"DISCORD_TOKEN": "   "}, None)
    with pytest.raises(ConfigError):
        settings.require("DISCORD_TOKEN")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RELAIS_LANG", "de"),
        ("RELAIS_TZ", "Mars/Olympus"),
        ("DISCORD_GUILD_ID", "abc"),
        ("SMS_DAILY_BUDGET", "-1"),
        ("SMS_INVITES_PER_MEMBER_PER_DAY", "three"),
        ("SMS_REINVITE_DAYS", "1.5"),
        ("SMS_QUIET_HOURS", "25:00-08:00"),
        ("SMS_QUIET_HOURS", "evening"),
        ("SMS_ALLOWED_COUNTRIES", "FRA"),
        ("PUBLIC_BASE_URL", "relais.example.org"),
        ("TWILIO_API_URL", "ftp://x"),
    ],
)
def test_bad_values_are_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({name: value}, None)
    assert caught.value.key == "config.bad_value"
    assert caught.value.params == {"name": name, "value": value}
    assert name in Texts().render(caught.value.key, "fr", **caught.value.params)


def test_values_are_typed() -> None:
    settings = load_settings(
        {
            "DISCORD_GUILD_ID": "123456789012345678",
            "RELAIS_DB": "/data/relais.db",
            "RELAIS_LANG": "EN",
            "SMS_ALLOWED_COUNTRIES": "fr, re",
            "SMS_QUIET_HOURS": "21:30-07:00,sun",
            "SMS_DAILY_BUDGET": "50",
            "PUBLIC_BASE_URL": "https://relais.example.org/",
            "TWILIO_ACCOUNT_SID": "AC1",
            "TWILIO_AUTH_TOKEN": "t",
            "TWILIO_FROM_NUMBER": "+33700000000",
        },
        None,
    )
    assert settings.discord_guild_id == 123456789012345678
    assert settings.db_path == Path("/data/relais.db")
    assert settings.lang == "en"
    assert settings.sms_allowed_countries == ("FR", "RE")
    quiet = settings.sms_quiet_hours
    assert (quiet.start, quiet.end, quiet.sundays, quiet.holidays) == (
        time(21, 30),
        time(7, 0),
        True,
        False,
    )
    assert settings.sms_daily_budget == 50
    assert settings.public_base_url == "https://relais.example.org"
    assert settings.twilio_configured and settings.two_way_sender


def test_empty_quiet_hours_means_never() -> None:
    assert load_settings({"SMS_QUIET_HOURS": ""}, None).sms_quiet_hours.never


def test_dotenv_is_read(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# comment\n"
        "export DISCORD_TOKEN='from-dotenv'\n"
        'RELAIS_LANG="en"\n'
        "SMS_DAILY_BUDGET = 12\n"
        "not a line\n",
        encoding="utf-8",
    )
    settings = load_settings({}, dotenv)
    assert settings.discord_token == "from-dotenv"
    assert settings.lang == "en"
    assert settings.sms_daily_budget == 12


def test_environment_overrides_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("DISCORD_TOKEN=from-dotenv\nRELAIS_TZ=Europe/Paris\n", encoding="utf-8")
    settings = load_settings({"DISCORD_TOKEN": "from-env"}, dotenv)
    assert settings.discord_token == "from-env"
    assert settings.tz == "Europe/Paris"


def test_dotenv_of_the_working_directory_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("DISCORD_STAFF_ROLE=Animateurs\n", encoding="utf-8")
    monkeypatch.delenv("DISCORD_STAFF_ROLE", raising=False)
    assert load_settings().discord_staff_role == "Animateurs"


def test_unreadable_dotenv_is_named(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_bytes(b"DISCORD_TOKEN=\xff\xfe\n")
    with pytest.raises(ConfigError) as caught:
        load_settings({}, dotenv)
    assert caught.value.params == {"path": str(dotenv)}
