"""Numbers staff may safely call or text (issue 20): no premium-rate, shared-cost, toll-free or
personal numbers, in /inviter (mobile only) and the landing page's call-back form (mobile or fixed).
"""

from __future__ import annotations

import pytest
from sms_support import LINK, add_member, make_service

from bot.sms.errors import SmsRefused
from bot.sms.phone import CALLBACK_KINDS, check_callable, normalize_mobile, number_kind
from bot.texts import Texts
from referrals.store import Database

REGIONS = ("FR", "GP", "MQ", "GF", "RE", "YT")


@pytest.mark.parametrize(
    ("number", "kind"),
    [
        ("+33612345678", "mobile"),
        ("+33751234567", "mobile"),
        ("+262692123456", "mobile"),
        ("+33144556677", "fixed"),
        ("+33970123456", "voip"),  # a French 09 box line: an ordinary home phone
        ("+33899123456", "premium"),
        ("+33891123456", "premium"),
        ("+33810123456", "shared_cost"),
        ("+33820123456", "shared_cost"),
        ("+33800123456", "toll_free"),
        ("+447012345678", "personal"),
        ("+3361234", "unknown"),
    ],
)
def test_number_kinds(number: str, kind: str) -> None:
    assert number_kind(number) == kind


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("0899 123456", "sms.special_number"),
        ("08 99 12 34 56", "sms.special_number"),
        ("0810 12 34 56", "sms.special_number"),
        ("0800 12 34 56", "sms.special_number"),
        ("01 44 55 66 77", "sms.not_mobile"),
    ],
)
def test_invitations_go_to_mobiles_only(raw: str, key: str) -> None:
    with pytest.raises(SmsRefused) as caught:
        normalize_mobile(raw, REGIONS)
    assert caught.value.key == key
    assert normalize_mobile("06 12 34 56 78", REGIONS) == "+33612345678"


def test_callbacks_take_mobiles_and_fixed_lines() -> None:
    for number in ("+33612345678", "+33144556677", "+33970123456"):
        check_callable(number, CALLBACK_KINDS)
    for number in ("+33899123456", "+33810123456", "+33800123456"):
        with pytest.raises(SmsRefused) as caught:
            check_callable(number, CALLBACK_KINDS)
        assert caught.value.key == "sms.special_number"


def test_the_refusal_is_a_clear_message_in_both_languages() -> None:
    texts = Texts()
    assert "surtaxé" in texts.render("sms.special_number", "fr")
    assert "premium-rate" in texts.render("sms.special_number", "en")


async def test_inviter_refuses_a_premium_number_and_sends_nothing(db: Database) -> None:
    sms = await make_service(db)
    member = await add_member(db)
    with pytest.raises(SmsRefused) as caught:
        await sms.invite(member, "0899 123456", None, LINK, "fr")
    assert caught.value.key == "sms.special_number"
    rows = await db.fetchone("SELECT COUNT(*) FROM outbound_sms")
    assert rows is not None and rows[0] == 0
