"""GSM-7 alphabet: segment counting as Twilio does, transliteration, fitting a text to N segments.

GSM-7 (3GPP TS 23.038) holds 160 septets in one SMS, 153 per segment once the message is split
(7 septets go to the concatenation header); an extension character (``€ [ ] { } ^ ~ | \\`` and form
feed) takes two septets and is never split across segments. One character outside the alphabet
switches the whole message to UCS-2: 70 UTF-16 code units in one SMS, 67 per segment, and a
surrogate pair is never split.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM_SINGLE, GSM_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67

# Common characters outside GSM-7 and their closest GSM-7 spelling (the rest lose their accents).
_REPLACEMENTS = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u02bc": "'",
    "`": "'",
    "´": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "«": '"',
    "»": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u2026": "...",
    "\u00a0": " ",
    "\u202f": " ",
    "\u2009": " ",
    "\t": " ",
    "œ": "oe",
    "Œ": "OE",
    "ç": "c",
    "•": "-",
    "·": "",  # inclusive writing (venu·e): "venue" reads better than "venu.e"
}


@dataclass(frozen=True)
class SegmentCount:
    """How a text travels: its encoding, its length in units, and the number of segments."""

    encoding: Literal["GSM-7", "UCS-2"]
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def is_gsm(text: str) -> bool:
    """True when every character is in the GSM-7 basic or extension table."""
    return all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text)


def _split_count(sizes: list[int], single: int, multi: int) -> int:
    """Segments needed for characters of the given unit sizes, never splitting one character."""
    total = sum(sizes)
    if total <= single:
        return 1 if total else 0
    segments, used = 1, 0
    for size in sizes:
        if used + size > multi:
            segments += 1
            used = 0
        used += size
    return segments


def count_segments(text: str) -> SegmentCount:
    """Count segments the way Twilio does (no smart encoding)."""
    if is_gsm(text):
        sizes = [2 if ch in GSM_EXTENSION else 1 for ch in text]
        return SegmentCount("GSM-7", sum(sizes), _split_count(sizes, GSM_SINGLE, GSM_MULTI))
    sizes = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return SegmentCount("UCS-2", sum(sizes), _split_count(sizes, UCS2_SINGLE, UCS2_MULTI))


def to_gsm(text: str) -> str:
    """Transliterate to GSM-7: plain punctuation, missing accents dropped, emoji removed."""
    out: list[str] = []
    for ch in text:
        ch = _REPLACEMENTS.get(ch, ch)
        if all(c in GSM_BASIC or c in GSM_EXTENSION for c in ch):
            out.append(ch)
            continue
        base = unicodedata.normalize("NFKD", ch)
        out.append("".join(c for c in base if c in GSM_BASIC))
    text = "".join(out)
    text = re.sub(r"[ ]{2,}", " ", text)
    return re.sub(r" *\n *", "\n", text).strip()


def septets(text: str) -> int:
    """GSM-7 septets a text takes (extension characters count two)."""
    return sum(2 if ch in GSM_EXTENSION else 1 for ch in text)


def clean_value(value: str | None, limit: int) -> str:
    """A user-supplied value (a name) made safe for an SMS: GSM-7, one line, at most ``limit``."""
    if not value:
        return ""
    text = to_gsm(" ".join(value.split()))
    return text[:limit].strip()


# What must never travel in a name: links (with or without a scheme), @mentions, runs of digits
# (a phone number, a "1000" prize).
_TLDS = (
    "com|fr|net|org|io|ly|co|me|gg|info|biz|xyz|app|link|site|online|be|ch|ca|eu|re|gp|mq|de"
    "|uk|us|ru|tk|ml|ga|cf|gq|shop|club|live|tv|to|cc|ws|pw|top|click|gl|ai|sh|im|so|st"
)
_URL_RE = re.compile(
    rf"(?:https?://|www\.)\S*|\b[\w-]+(?:\.[\w-]+)*\.(?:{_TLDS})\b(?:/\S*)?", re.IGNORECASE
)
_MENTION_RE = re.compile(r"[@#]\S*")
_DIGITS_RE = re.compile(r"\d+")


def clean_name(value: str | None, limit: int) -> str:
    """A person's name for an SMS: without links, @mentions and digits, GSM-7, at most ``limit``.

    Letters GSM-7 has (é è à ù) stay; others lose their accent; a name left with no letter is
    empty (the template then says it without a name).
    """
    if not value:
        return ""
    text = _URL_RE.sub(" ", value)
    text = _MENTION_RE.sub(" ", text)
    text = _DIGITS_RE.sub(" ", text)
    text = clean_value(text, limit * 2)
    text = re.sub(r"\s+([,.!?;:])", r"\1", text).strip(" -_.,;:!?/|'\"")
    if not any(ch.isalpha() for ch in text):
        return ""
    return text[:limit].strip()


def sms_first_name(display_name: str | None, limit: int = 20) -> str | None:
    """A prefill for "your first name as it will appear": the display name, when it is GSM-7
    (a name of emoji or of another script is not offered: the member types their own)."""
    if not display_name or not is_gsm(display_name.strip()):
        return None
    return clean_name(display_name, limit) or None


def fit(text: str, max_segments: int = 2) -> str:
    """Transliterate to GSM-7 and shorten (at a word, with an ellipsis) to fit ``max_segments``."""
    text = to_gsm(text)
    if count_segments(text).segments <= max_segments:
        return text
    # Start from a cut just past the largest possible size, then back up to a word boundary.
    words = text[: max_segments * GSM_MULTI].split(" ")
    while len(words) > 1:
        words.pop()
        candidate = " ".join(words).rstrip(" ,;:.") + "..."
        if count_segments(candidate).segments <= max_segments:
            return candidate
    cut = text[: max_segments * GSM_MULTI - 3]
    while cut and count_segments(cut + "...").segments > max_segments:
        cut = cut[:-1]
    return cut + "..."
