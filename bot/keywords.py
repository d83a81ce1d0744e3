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
    YES = "yes"


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
    # A positive answer to an invitation (Twilio's YES re-subscribes: handled as START there).
    **dict.fromkeys(("OUI", "OUI MERCI", "OUI SVP", "OUI OK", "D ACCORD", "DACCORD"), Keyword.YES),
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


# A refusal in the person's own words (folded): a stop keyword followed by anything ("STOP
# merci", "stop au 36180"), and the usual French ways of saying no to a programme's SMS.
_REFUSAL = re.compile(
    r"^(?:STOP|ARRET|ARRETE|ARRETEZ|ARRETER|UNSUBSCRIBE)\b"
    r"|^NON MERCI\b"
    r"|\bNE (?:ME |NOUS |LUI |LES )?(?:RE)?(?:CONTACTE[ZR]?|ECRI(?:VE)?[ZR]?|ENVOYE[ZR]?) PLUS\b"
    r"|\bNE PLUS (?:ME |NOUS |LUI |LES )?(?:RE)?(?:CONTACTER|ECRIRE|ENVOYER)\b"
    r"|\bSTOP\s*$"
)


def is_refusal(text: str) -> bool:
    """Whether a message is a refusal in the person's own words (it opts out like STOP)."""
    return bool(_REFUSAL.search(fold(text)))
