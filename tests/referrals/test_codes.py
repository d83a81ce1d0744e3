"""Personal and campaign codes (SPEC §4)."""

from __future__ import annotations

import random

import pytest

from referrals import codes
from referrals.codes import ALPHABET

SAMPLE = 200


def _sample_codes() -> list[str]:
    rng = random.Random(20260105)
    sample = []
    for _ in range(SAMPLE):
        data = "".join(rng.choice(ALPHABET) for _ in range(codes.DATA_LENGTH))
        sample.append(data + codes.check_symbol(data))
    # Edge cases: all zeros, all of the last symbol, and repeated patterns.
    for data in ("0000000", "ZZZZZZZ", "0Z0Z0Z0", "1111111"):
        sample.append(data + codes.check_symbol(data))
    return sample


@pytest.fixture(scope="module")
def sample() -> list[str]:
    return _sample_codes()


def test_new_codes_are_valid_and_well_formed() -> None:
    drawn = {codes.new_code() for _ in range(500)}
    assert len(drawn) == 500
    for code in drawn:
        assert len(code) == 8
        assert set(code) <= set(ALPHABET)
        assert codes.is_valid(code)


def test_every_single_symbol_change_is_caught(sample: list[str]) -> None:
    checked = 0
    for code in sample:
        assert codes.is_valid(code)
        for position in range(codes.CODE_LENGTH):
            for symbol in ALPHABET:
                if symbol == code[position]:
                    continue
                changed = code[:position] + symbol + code[position + 1 :]
                assert not codes.is_valid(changed), (code, changed)
                checked += 1
    assert checked == len(sample) * 8 * 31


def test_every_swap_of_two_different_neighbours_is_caught(sample: list[str]) -> None:
    checked = 0
    for code in sample:
        # Position 6 with 7 swaps the last data symbol with the check symbol.
        for position in range(codes.CODE_LENGTH - 1):
            a, b = code[position], code[position + 1]
            if a == b:
                continue
            swapped = code[:position] + b + a + code[position + 2 :]
            assert not codes.is_valid(swapped), (code, swapped)
            checked += 1
    assert checked > len(sample) * 6


def test_swaps_with_the_check_symbol_are_caught_for_every_pair() -> None:
    # Exhaustive on the last data symbol and the check symbol, whatever comes before.
    for prefix in ("000000", "K7PM4Q", "ZZZZZZ"):
        for last in ALPHABET:
            data = prefix + last
            check = codes.check_symbol(data)
            if check != last:
                assert not codes.is_valid(prefix + check + last)


def test_format_code() -> None:
    assert codes.format_code("K7PM4QXB") == "K7PM-4QXB"


@pytest.mark.parametrize(
    "typed",
    [
        "{code}",
        "{dashed}",
        "{lower}",
        "{dashed_lower}",
        "  {dashed}  ",
        "{spaced}",
        "{a} {b}",
        "{a}-{b}".lower(),
    ],
)
def test_normalisation_of_case_spaces_and_dash(typed: str) -> None:
    data = "K7PM4QX"
    code = data + codes.check_symbol(data)
    text = typed.format(
        code=code,
        dashed=codes.format_code(code),
        lower=code.lower(),
        dashed_lower=codes.format_code(code).lower(),
        spaced=" ".join(code),
        a=code[:4],
        b=code[4:],
    )
    assert codes.normalize_personal(text) == code


def test_normalisation_of_confusable_letters() -> None:
    data = "10A1B0C"
    code = data + codes.check_symbol(data)
    assert codes.normalize_personal("LOAIBOC" + code[7]) == code
    assert codes.normalize_personal("loa1-bOc" + code[7].lower()) == code
    assert codes.normalize_personal("IOAlBoC" + code[7]) == code


def test_normalisation_refuses_wrong_codes() -> None:
    data = "K7PM4QX"
    code = data + codes.check_symbol(data)
    wrong = code[:3] + ("A" if code[3] != "A" else "B") + code[4:]
    assert codes.normalize_personal(wrong) is None
    assert codes.normalize_personal(code[:7]) is None
    assert codes.normalize_personal(code + "0") is None
    assert codes.normalize_personal("K7PM-4QXU") is None  # U is not in the alphabet
    assert codes.normalize_personal("") is None
    assert codes.looks_like_personal(wrong)
    assert not codes.looks_like_personal("VAN-NANTES")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("VAN-NANTES", "VAN-NANTES"),
        ("van-nantes", "VAN-NANTES"),
        ("  Tiktok2026 ", "TIKTOK2026"),
        ("abc", "ABC"),
        ("A" * 24, "A" * 24),
        ("a-1", "A-1"),
    ],
)
def test_campaign_codes_accepted_case_insensitively(typed: str, expected: str) -> None:
    assert codes.normalize_campaign(typed) == expected


@pytest.mark.parametrize(
    "typed",
    ["ab", "A" * 25, "VAN NANTES", "VAN_NANTES", "café", "---", "", "van/nantes", "ÉTÉ"],
)
def test_campaign_codes_refused(typed: str) -> None:
    assert codes.normalize_campaign(typed) is None
