"""Phone numbers: parsing and validation with ``phonenumbers`` (default region France)."""

from __future__ import annotations

from collections.abc import Iterable

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from bot.sms.errors import SmsRefused

DEFAULT_REGION = "FR"
MAX_INPUT = 40


def _parse(raw: str, region: str = DEFAULT_REGION) -> phonenumbers.PhoneNumber | None:
    text = raw.strip()
    if not text or len(text) > MAX_INPUT:
        return None
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException:
        return None


def _parse_valid(raw: str, regions: list[str]) -> phonenumbers.PhoneNumber | None:
    """Parse with France as default region, then (national form) with each allowed region.

    Overseas departments have their own country codes: ``0692 12 34 56`` written in La Reunion
    is +262 692 12 34 56, not a metropolitan number.
    """
    number = _parse(raw)
    if number is not None and phonenumbers.is_valid_number(number):
        return number
    if raw.strip().startswith(("+", "00")):
        return number
    for region in regions:
        candidate = _parse(raw, region)
        if candidate is not None and phonenumbers.is_valid_number(candidate):
            return candidate
    return number


# What staff may safely call or text (issue 20). A premium-rate, shared-cost or personal
# number costs the caller or forwards anywhere; a toll-free or UAN number is a service, not a
# person. French 09 numbers are VoIP in the numbering plan but are ordinary home lines.
_KINDS = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PREMIUM_RATE: "premium",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PERSONAL_NUMBER: "personal",
    PhoneNumberType.UAN: "service",
    PhoneNumberType.PAGER: "service",
    PhoneNumberType.VOICEMAIL: "service",
}
SPECIAL_KINDS = frozenset({"premium", "shared_cost", "toll_free", "personal", "service"})
CALLBACK_KINDS = frozenset({"mobile", "fixed", "voip"})


def number_kind(e164: str) -> str:
    """What a number is: mobile, fixed, voip, premium, shared_cost, toll_free, personal,
    service, or unknown (not a valid number)."""
    number = _parse(e164)
    if number is None or not phonenumbers.is_valid_number(number):
        return "unknown"
    return _KINDS.get(phonenumbers.number_type(number), "unknown")


def check_callable(e164: str, accepted: frozenset[str]) -> None:
    """Raise SmsRefused unless the number is of an ``accepted`` kind (a clear key for each)."""
    kind = number_kind(e164)
    if kind in accepted:
        return
    if kind in SPECIAL_KINDS:
        raise SmsRefused("sms.special_number")
    raise SmsRefused("sms.not_mobile" if "fixed" not in accepted else "sms.invalid_number")


def normalize_mobile(raw: str, allowed_regions: Iterable[str]) -> str:
    """The E.164 form of a valid mobile number of an allowed region; raises SmsRefused."""
    regions = [r.upper() for r in allowed_regions]
    number = _parse_valid(raw, regions)
    if number is None or not phonenumbers.is_valid_number(number):
        raise SmsRefused("sms.invalid_number")
    region = phonenumbers.region_code_for_number(number)
    if region not in regions:
        raise SmsRefused("sms.country_not_allowed", region=region or "?")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    check_callable(e164, frozenset({"mobile"}))
    return e164


def canonical(raw: str) -> str:
    """E.164 for any parseable number (inbound senders), else the stripped input.

    Used to hash a sender consistently, whatever form a console line or a provider gives.
    """
    number = _parse(raw)
    if number is None or not phonenumbers.is_possible_number(number):
        return raw.strip()
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
