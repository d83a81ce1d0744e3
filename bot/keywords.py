"""SMS keywords: the words that, texted alone, are commands of the brain (any case, accents
optional): STOP, START, AIDE, CODE, CONSEILLER and their French and English forms.

``Conversation`` turns a keyword into its command, as a slash command is on Discord; the SMS
adapter never interprets the text.
"""

from __future__ import annotations

import re
import unicodedata
from enum import Enum


class Keyword(Enum):
    """What an inbound message asks for, when it is a keyword."""

    STOP = "stop"
    START = "start"
    HELP = "help"
    CODE = "code"
    PERSON = "person"


# Folded forms (upper case, no accents, punctuation as spaces). Twilio's own opt-out keywords are
# included: a number that sends them is opted out at Twilio too, so we must agree.
_KEYWORDS: dict[str, Keyword] = {
    **dict.fromkeys(
        (
            "STOP",
            "STOP SMS",
            "STOPSMS",
            "STOP ALL",
            "STOPALL",
            "ARRET",
            "ARRETE",
            "ARRETER",
            "ARRET SMS",
            "DESABONNER",
            "DESABONNEMENT",
            "DESINSCRIRE",
            "DESINSCRIPTION",
            "UNSUBSCRIBE",
            "CANCEL",
            "END",
            "QUIT",
            "REVOKE",
            "OPTOUT",
            "OPT OUT",
        ),
        Keyword.STOP,
    ),
    **dict.fromkeys(("START", "UNSTOP", "REPRENDRE"), Keyword.START),
    **dict.fromkeys(("AIDE", "HELP", "INFO", "INFOS"), Keyword.HELP),
    **dict.fromkeys(("CODE", "MON CODE", "MY CODE"), Keyword.CODE),
    **dict.fromkeys(
        ("CONSEILLER", "CONSEILLERE", "HUMAIN", "PERSONNE", "RAPPEL", "AGENT", "HUMAN"),
        Keyword.PERSON,
    ),
}


def fold(text: str) -> str:
    """Upper case, accents removed, punctuation as spaces, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()
    return " ".join(re.sub(r"[^0-9A-Z]+", " ", plain).split())


def classify(text: str) -> Keyword | None:
    """The keyword an inbound message is, if the whole message is one."""
    return _KEYWORDS.get(fold(text))
