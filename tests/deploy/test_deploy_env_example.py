""".env.example documents every variable, and loads as it is."""

from __future__ import annotations

import re
from pathlib import Path

from bot.settings import VARIABLES, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / ".env.example"
# Read by one component straight from the environment, not through Settings (none left).
EXTRA_VARIABLES: set[str] = set()


def assignments() -> dict[str, bool]:
    """Every ``NAME=`` line, active or commented out: name -> active."""
    found: dict[str, bool] = {}
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]+)=", line)
        if match:
            found[match.group(2)] = match.group(1) is None
    return found


def test_every_variable_is_in_env_example() -> None:
    missing = [name for name in VARIABLES if name not in assignments()]
    assert not missing, f".env.example lacks {missing}"


def test_env_example_names_only_real_variables() -> None:
    unknown = set(assignments()) - set(VARIABLES) - EXTRA_VARIABLES
    assert not unknown, f".env.example documents unknown variables {sorted(unknown)}"


def test_env_example_copied_as_is_gives_the_defaults(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_settings({}, dotenv=dotenv) == Settings()


def test_env_example_defaults_match_the_code(tmp_path: Path) -> None:
    # Uncommenting a line as documented must keep the default, not change behaviour.
    text = re.sub(
        r"^#\s*([A-Z][A-Z0-9_]+=)", r"\1", EXAMPLE.read_text(encoding="utf-8"), flags=re.M
    )
    values = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[A-Z][A-Z0-9_]+", name) and value:
            values[name] = value
    for name in ("SMS_STOP_TEXT", "TWILIO_MESSAGING_SERVICE_SID", "RELAIS_DEV_SYNC"):
        values.pop(name, None)  # examples, not defaults
    settings = load_settings(values, dotenv=None)
    defaults = Settings()
    for field in (
        "lang",
        "tz",
        "db_path",
        "discord_staff_role",
        "discord_staff_channel",
        "discord_api_url",
        "sms_allowed_countries",
        "sms_quiet_hours",
        "sms_invites_per_member_per_day",
        "sms_daily_budget",
        "sms_reinvite_days",
    ):
        assert getattr(settings, field) == getattr(defaults, field), field
