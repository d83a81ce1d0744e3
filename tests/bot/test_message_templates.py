"""Every message template renders in French and English with sample data, under StrictUndefined.

Samples are given per variable name; structured values, and names whose shape differs from one
template to another, are given per message key. A new variable without a sample fails here.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import jinja2.meta
import pytest
from action_samples import ACTION_SAMPLES
from message_samples import CAMPAIGN, ROW

from bot.texts import LANGS, Texts
from referrals.stats import compute  # noqa: F401  (the shape of ``s`` below follows it)

TEXTS = Texts()

PARTICIPANT = SimpleNamespace(name="Léa-Marie", code="K7PM4QXB", wave=2, ref="p-1a2b3c4d5e")
STATS = {
    "participants": 120,
    "seeds": 20,
    "referred": 100,
    "k_factor": 0.8333,
    "amplification": 6.0,
    "max_depth": 4,
    "mean_depth": 1.75,
    "largest_tree": 40,
    "waves": [20, 50, 30, 15, 5],
    "channels": {"discord_invite": 80, "sms": 20, "unknown": 20},
    "median_referral_delay_hours": 26.5,
    "enrolled": 30,
    "enrollment_rate_referred": 0.28,
    "enrollment_rate_seeds": 0.1,
    "top_referrers": [
        {"participant": "p-1", "recruits": 7, "rank": 1},
        {"participant": "p-2", "recruits": 3, "rank": 2},
    ],
    "top_referrers_more_tied": 2,
    "recruits_30d": 0.42,
    "recruits_by_wave": [2.5, 0.6, 0.5, 0.3333, 0.0],
    "invitations": {
        "sent": 40,
        "delivered": 38,
        "failed": 2,
        "joined": 12,
        "opted_out": 1,
        "conversion": 0.3,
    },
}

BY_NAME: dict[str, Any] = {
    "programme": "Garantie Jeunes Pays de la Loire",
    "name": "Léa-Marie",
    "first_name": "Léa",
    "why": "Permission denied",
    "member": "Jean-Baptiste",
    "code": "K7PM4QXB",
    "link": "https://relais.example.org/r/K7PM-4QXB",
    "url": "https://relais.example.org",
    "count": 3,
    "cap": 1000,
    "n": 12,
    "number": 7,
    "line": 4,
    "lines": "4, 9, 12",
    "limit": 2000,
    "left": 3,
    "minutes": 60,
    "days": 30,
    "seconds": 20,
    "path": "/var/lib/relais/export.csv",
    "reason": "permission denied",
    "value": "2026-13-45",
    "option": "--since",
    "who": "bob",
    "column": "joined_at",
    "participant": "p42",
    "referrer": "Léa",
    "first": "2",
    "detail": "unexpected end of data",
    "kind": "ValueError",
    "at": "2026-11-29",
    "when": "30/11 08:00",
    "since": "2026-01-01",
    "until": "2026-01-31",
    "written": 120,
    "kept": 2,
    "period": "du 2026-01-01 au 2026-01-31",
    "message": "je cherche un appart",
    "mention": "123456789012345678",
    "staff": "Marie",
    "recruits": 3,
    "total": 5,
    "subtree_size": 6,
    "stop": "STOP au 36105",
    "commands": ["parrainage", "code", "inviter"],
    # configuration checks (relais doctor, relais discord check)
    "guild": "123456789012345678",
    "codes": "FR, RE, GP",
    "text": "STOP au 36105",
    "converted": "STOP au 36105",
    "sid": "MG0123456789abcdef0123456789abcdef",
    "sender": "RELAIS",
    "found": 7,
    "known": 6,
    "dir": "/var/lib/relais",
    "user": "relais",
    "version": "3.40.1",
    "needed": "3.35",
    "participants": 1200,
    "tz": "Europe/Paris",
    "now": "29/11/2026 18:00",
    "role": "Staff",
    "channel": "staff",
    "redirect": "https://relais.example.org/oauth/callback",
    "public": True,
    "problems": 2,
    "warnings": 1,
    "problem": "messages/fr/faq/cej.yaml: missing answer",
    "missing": "DISCORD_CLIENT_SECRET",
    "length": 12,
    "language": "fr",
    "keys": "adresse, horaires",
    "host": "localhost",
    "holidays": True,
    "sundays": True,
    "window": "20:00-08:00",
    "hint": "Mets un nombre entier.",
    "en": 22,
    "fr": 22,
    "done": True,
    "keep": 7,
    "free": "120 Mo",
    "cwd": "/srv/relais",
    "budget": 200,
    "used": 160,
    "per_member": 3,
    "base": "https://relais.example.org/app",
    "inactive": 1095,
    "questions": 90,
    "invited": 4,
    "joined": 6,
    "phone": "+33 6 12 34 56 78",
    "retention_days": 30,
    "ref": "p-1a2b3c4d5e",
    "their_lang": "fr",
    "id": 42,
    # knowledge-base check (relais faq check)
    "file": "messages/fr/faq/permis.yaml",
    "where": "messages/fr/faq/permis.yaml, entry 'permis'",
    "key": "answer",
    "concept": "travail",
    "position": 2,
    "chars": "ç œ",
    "kinds": "answer, smalltalk",
    "command": "/oublier",
    "what": "Gérer le serveur",
}

_SMS_BUCKET = {"delivered": 3, "failed": 1, "filtered": 1, "unknown": 1, "pending": 0}
SMS_FIGURES = {
    "count": 6,
    "total": {"label": None, "segments": 12, **_SMS_BUCKET},
    "campaigns": [{"label": "VAN-NANTES", "segments": 12, **_SMS_BUCKET}],
    "weeks": [{"label": "2026-W11", "segments": 12, **_SMS_BUCKET}],
}

BY_KEY: dict[str, dict[str, Any]] = {
    "discord.missed_joins": {"count": 3, "names": ["Léa", "Sam"]},
    "sms.stats": {"f": SMS_FIGURES},
    "relatives.stats": {"f": {"relatives": 2, "via_relative": 5}},
    "import.enrol_done": {"new": 12, "changed": 1},
    "analytics.weekly_post": {
        "week": {"participants": 12, "referred": 9, "invitations": {"sent": 3}},
        "s": STATS,
    },
    "import.enrolled_before_joined": {"line": 4, "enrolled": "01/01/2026"},
    "stats.report": {
        "s": STATS,
        "names": {"p-1": "Léa"},
        "channel_names": {"discord_invite": "lien Discord perso"},
    },
    "chain.report": {
        "me": PARTICIPANT,
        "ancestors": [PARTICIPANT],
        "recruits": [PARTICIPANT],
        "campaign": SimpleNamespace(code="VAN-NANTES"),
    },
    "privacy.summary": {
        "d": {
            "display_name": "Léa",
            "joined_at": "2026-01-05T09:00:00+00:00",
            "code": "K7PM-4QXB",
            "brought_by": "Jean",
            "campaign": None,
            "recruits": 2,
            "invitations": [{}],
            "questions": [],
            "handoffs": [],
            "enrolled_at": "2026-02-01T10:00:00+00:00",
        }
    },
    "learning.report": {
        "r": {
            "asked": 10,
            "unanswered_count": 2,
            "distinct": 1,
            "questions": [
                {
                    "id": 7,
                    "text": "t'as un vélo",
                    "count": 2,
                    "last_at": "2026-12-03T10:00:00+00:00",
                    "entry": None,
                    "score": 0.1,
                }
            ],
            "feedback": [{"entry": "cej", "useful": 3, "useless": 1}],
        }
    },
    "learning.handled": {"text": "t'as un vélo", "count": 2, "entry": "mobilite"},
    "code.ok_campaign": {"campaign": "VAN-NANTES"},
    "join.welcome": {"campaign": "VAN-NANTES", "referrer": "Léa"},
    "bot.help": {"staff": True},
    "sms.missing_settings": {"names": "TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER"},
    "attribution.list": {
        "items": [
            {"id": 3, "name": "Léa", "at": "2026-11-29T10:00:00+00:00", "candidates": [(1, "Jo")]}
        ]
    },
    "discord.join_ambiguous": {"candidates": ["Jo", "Sam"]},
    "analytics.campaigns": {"campaigns": [CAMPAIGN]},
    "analytics.comparison": {"rows": [ROW], "source_names": {"peer": "Par un pair"}},
    "landing.staff_callback": {"campaign": "VAN-NANTES"},
}


def _variables(lang: str, key: str) -> set[str]:
    source = TEXTS.catalogs[lang][key]
    return jinja2.meta.find_undeclared_variables(TEXTS.env.parse(source))


def _params(lang: str, key: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    specific = BY_KEY.get(key, {})
    for variable in _variables(lang, key):
        if variable in specific:
            params[variable] = specific[variable]
        elif variable in EXTRA.get(key, {}):
            params[variable] = EXTRA[key][variable]
        elif variable in BY_NAME:
            params[variable] = BY_NAME[variable]
    return params


# Samples for the areas other parts of the bot own (kept here so that every template is covered).
EXTRA: dict[str, dict[str, Any]] = {}
EXTRA.update(ACTION_SAMPLES)  # outreach actions (issue 22)

ALL_KEYS = sorted({(lang, key) for lang in LANGS for key in TEXTS.keys(lang)})


def test_both_languages_have_the_same_messages() -> None:
    assert set(TEXTS.keys("fr")) == set(TEXTS.keys("en"))


@pytest.mark.parametrize(("lang", "key"), ALL_KEYS, ids=[f"{lang}:{key}" for lang, key in ALL_KEYS])
def test_template_renders(lang: str, key: str) -> None:
    params = _params(lang, key)
    missing = _variables(lang, key) - set(params) - {"programme"}
    assert not missing, f"no sample for {sorted(missing)}: add one to BY_NAME or BY_KEY"
    text = TEXTS.render(key, lang, **{"programme": BY_NAME["programme"], **params})
    assert text.strip(), f"{lang}:{key} rendered empty"
    assert "{{" not in text and "{%" not in text
