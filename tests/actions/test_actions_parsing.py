"""Console syntax: ``key=value`` options with quotes; positional options keep working."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.conversation import parse_command_line
from referrals.actions import ActionError, parse_type, parse_when


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/code K7PM 4QXB", ("code", {"code": "K7PM 4QXB"})),
        ("/inviter 06 12 34 56 78 Léa", ("inviter", {"numero": "06 12 34 56 78", "prenom": "Léa"})),
        ("/question c'est quoi le CEJ", ("question", {"texte": "c'est quoi le CEJ"})),
        ("/campagne VAN-NANTES van", ("campagne", {"nom": "VAN-NANTES", "canal": "van"})),
        ("/jesuisla TOURNOI-0912", ("jesuisla", {"code": "TOURNOI-0912"})),
        (
            '/action type=tournoi titre="Tournoi FIFA" lieu="Gymnase Sud"'
            ' debut="2026-12-09 14:00" fin="2026-12-09 18:00"',
            (
                "action",
                {
                    "type": "tournoi",
                    "titre": "Tournoi FIFA",
                    "lieu": "Gymnase Sud",
                    "debut": "2026-12-09 14:00",
                    "fin": "2026-12-09 18:00",
                },
            ),
        ),
        ("/campagne nom=VAN-NANTES canal=van", ("campagne", {"nom": "VAN-NANTES", "canal": "van"})),
        # key=value and positional words together: the words fill the options not named.
        (
            "/campagne canal=tiktok VAN-NANTES",
            ("campagne", {"canal": "tiktok", "nom": "VAN-NANTES"}),
        ),
        ('/avis code=TOURNOI-0912 "trop bien" merci', None),
        (
            "/avis TOURNOI-0912 a=b c'est top",
            ("avis", {"code": "TOURNOI-0912", "commentaire": "a=b c'est top"}),
        ),
        # An unclosed quote is read as typed, never an error.
        ('/action code=VAN-0912 lieu="Place', ("action", {"code": "VAN-0912", "lieu": '"Place'})),
    ],
)
def test_parse_command_line(line: str, expected: tuple[str, dict[str, str]] | None) -> None:
    parsed = parse_command_line(line)
    if expected is None:
        assert parsed == ("avis", {"code": "TOURNOI-0912", "commentaire": "trop bien merci"})
    else:
        assert parsed == expected


def test_unknown_command() -> None:
    assert parse_command_line("/nimporte type=x") is None


NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-09 14:00", datetime(2026, 12, 9, 13, 0, tzinfo=UTC)),
        ("09/12/2026 14h", datetime(2026, 12, 9, 13, 0, tzinfo=UTC)),
        ("09/12 14h30", datetime(2026, 12, 9, 13, 30, tzinfo=UTC)),
        ("2026-07-09T14:00", datetime(2026, 7, 9, 12, 0, tzinfo=UTC)),  # summer time
    ],
)
def test_dates_are_local(text: str, expected: datetime) -> None:
    assert parse_when(text, "Europe/Paris", NOW) == expected


@pytest.mark.parametrize("text", ["demain", "2026-13-01 14:00", "09/12 25:00", "", "14:00"])
def test_unreadable_dates(text: str) -> None:
    with pytest.raises(ActionError) as raised:
        parse_when(text, "Europe/Paris", NOW)
    assert raised.value.key == "actions.bad_date"


def test_types_in_french_and_english() -> None:
    assert parse_type("Tournoi") == "tournoi"
    assert parse_type("workshop") == "atelier"
    assert parse_type("ciné") == "sortie"
    with pytest.raises(ActionError):
        parse_type("karaoké")
