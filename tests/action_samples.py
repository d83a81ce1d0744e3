"""Samples of the action templates' variables (``messages/*/actions.yaml``), for the template
test (``tests/bot/test_message_templates.py``)."""

from __future__ import annotations

from typing import Any

ITEM: dict[str, Any] = {
    "code": "TOURNOI-0912",
    "kind": "tournoi",
    "title": "Tournoi FIFA",
    "place": "Gymnase Sud",
    "day": "mercredi 09/12",
    "start": "14:00",
    "end": "18:00",
    "places": 20,
}
RESULT: dict[str, Any] = {
    "code": "TOURNOI-0912",
    "type": "tournoi",
    "title": "Tournoi FIFA",
    "place": "Gymnase Sud",
    "start": "2026-12-09T13:00:00+00:00",
    "interested": 12,
    "attended": 9,
    "new": 4,
    "recruits_30d": 3,
    "enrolled": 2,
    "rating_mean": 4.25,
    "ratings": 8,
    "would_recommend": 0.75,
}
_COMMON: dict[str, Any] = {
    "a": ITEM,
    "title": "Tournoi FIFA",
    "types": "van, permanence, atelier, tournoi, sortie, autre",
    "new": True,
    "r": RESULT,
    "results": [RESULT, {**RESULT, "code": "TOURNOI-1111", "rating_mean": None}],
    "compare": {"tournoi": [RESULT, RESULT]},
    "groups": [{"day": "mercredi 09/12", "lines": ["• 14:00–18:00 : Tournoi FIFA"]}],
    "lines": ["• mercredi 09/12, 14:00–18:00 : Tournoi FIFA — Gymnase Sud"],
    "period": "week",
    "sms": False,
    "places": 20,
}
ACTION_SAMPLES: dict[str, dict[str, Any]] = {
    f"actions.{name}": _COMMON
    for name in (
        "agenda",
        "agenda_item",
        "bad_type",
        "cancelled",
        "checked_in",
        "checked_in_again",
        "created",
        "eval_ask",
        "eval_reminder",
        "event_description",
        "go_button",
        "line",
        "missing_type",
        "poster_line",
        "reminder",
        "result_one",
        "results",
        "rsvp_ok",
        "unchanged",
        "updated",
        "answer",
        "answer_none",
        "full",
        *(
            f"sms_{name}{register}"
            for name in ("checked_in", "checked_in_again", "eval_ask", "eval_reminder")
            for register in ("", "_vous")
        ),
    )
}
