"""Personal referral codes (``K7PM-4QXB``) and campaign codes.

A personal code is 7 random Crockford Base32 symbols and one check symbol. The check works in
GF(32): symbol i (0-based) has weight alpha**(i+1) and the check symbol weight 1, and the weighted
sum of all eight symbols is zero. Every weight is non-zero (a single wrong symbol changes the sum)
and neighbouring weights differ (a swap of two different neighbours changes the sum too).
"""

from __future__ import annotations

import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE = {symbol: value for value, symbol in enumerate(ALPHABET)}
_PRIMITIVE = 0b100101  # x^5 + x^2 + 1, primitive over GF(2)
DATA_LENGTH = 7
CODE_LENGTH = DATA_LENGTH + 1
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})
_CAMPAIGN_RE = re.compile(r"^[A-Z0-9-]{3,24}$")


def _gf_mul(a: int, b: int) -> int:
    """Multiply two elements of GF(32)."""
    result = 0
    while b:
        if b & 1:
            result ^= a
        b >>= 1
        a <<= 1
        if a & 0b100000:
            a ^= _PRIMITIVE
    return result


def _weights() -> tuple[int, ...]:
    weights = []
    power = 1
    for _ in range(DATA_LENGTH):
        power = _gf_mul(power, 2)
        weights.append(power)
    return tuple(weights)


_WEIGHTS = _weights()


def check_symbol(data: str) -> str:
    """The check symbol for seven data symbols."""
    total = 0
    for weight, symbol in zip(_WEIGHTS, data, strict=True):
        total ^= _gf_mul(weight, _VALUE[symbol])
    return ALPHABET[total]


def is_valid(code: str) -> bool:
    """True when ``code`` (canonical, 8 symbols without dash) has a correct check symbol."""
    if len(code) != CODE_LENGTH or any(symbol not in _VALUE for symbol in code):
        return False
    return check_symbol(code[:DATA_LENGTH]) == code[DATA_LENGTH]


def new_code() -> str:
    """A fresh random personal code in canonical form (no dash)."""
    data = "".join(secrets.choice(ALPHABET) for _ in range(DATA_LENGTH))
    return data + check_symbol(data)


def format_code(code: str) -> str:
    """``K7PM4QXB`` -> ``K7PM-4QXB``."""
    return f"{code[:4]}-{code[4:]}"


def normalize_personal(text: str) -> str | None:
    """Canonical form of a typed personal code, or None when it is not one.

    Forgiving: case, spaces, dashes, ``O`` for ``0``, ``I``/``L`` for ``1``.
    """
    cleaned = re.sub(r"[\s\-_.]", "", text.upper()).translate(_CONFUSABLE)
    return cleaned if is_valid(cleaned) else None


def looks_like_personal(text: str) -> bool:
    """True when the text has the shape of a personal code (right length and symbols)."""
    cleaned = re.sub(r"[\s\-_.]", "", text.upper()).translate(_CONFUSABLE)
    return len(cleaned) == CODE_LENGTH and all(symbol in _VALUE for symbol in cleaned)


def normalize_campaign(text: str) -> str | None:
    """Canonical (upper-case) campaign code, or None when malformed (3-24 letters, digits, -)."""
    cleaned = text.strip().upper()
    if not _CAMPAIGN_RE.match(cleaned) or not cleaned.strip("-"):
        return None
    return cleaned
