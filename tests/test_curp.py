import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from redes.core.curp import (
    CurpInfo,
    curp_check_digit,
    curp_without_check,
    is_valid_curp,
    normalize_curp,
    parse_curp,
)

VALID = "HEGG560427MVZRRL04"  # the textbook example; its check digit is 4


def _with_check(first17: str) -> str:
    return first17 + curp_check_digit(first17)


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def test_check_digit_follows_renapo():
    assert curp_check_digit(VALID[:17]) == "4"
    # Ñ has its own value in the alphabet (between N and O)
    assert curp_check_digit("ÑAAA000101HDFXXX0") != curp_check_digit("NAAA000101HDFXXX0")


def test_check_digit_needs_17_characters():
    with pytest.raises(ValueError):
        curp_check_digit("ABC")


def test_normalize_strips_and_upper_cases():
    assert normalize_curp(f"  {VALID.lower()} ") == VALID
    assert normalize_curp("") == ""
    assert normalize_curp(None) == ""


def test_sex_x_is_accepted():
    curp = _with_check("GOPA900101XGRNRL0")
    assert normalize_curp(curp) == curp
    assert parse_curp(curp).sex == "X"


def test_born_2000_on_uses_a_letter_for_the_century():
    curp = _with_check("GOPA050309MGRNRLA")
    assert parse_curp(curp) == CurpInfo(birth_date=dt.date(2005, 3, 9), sex="M", state="GR")
    assert parse_curp(VALID).birth_date == dt.date(1956, 4, 27)


def test_inconvenient_word_x_in_second_position_is_tolerated():
    # BUEI… becomes BXEI… by RENAPO's inconvenient-words rule
    curp = _with_check("BXEI800101HDFNNN0")
    assert normalize_curp(curp) == curp


def test_born_abroad_state_code():
    assert is_valid_curp(_with_check("GOPA900101HNENRL0"))


def test_wrong_check_digit_says_which_digit():
    wrong = VALID[:17] + "5"
    with pytest.raises(ValidationError) as exc:
        normalize_curp(wrong)
    assert "the check digit should be 4" in exc.value.messages[0]
    assert exc.value.code == "curp_check_digit"


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [
        ("HEGG560427MVZRRL0", "curp_length", "has 17"),
        ("1EGG560427MVZRRL04", "curp_structure", "Character 1"),
        ("HBGG560427MVZRRL04", "curp_structure", "Character 2"),
        ("HEGG56A427MVZRRL04", "curp_structure", "Character 7"),
        ("HEGG560427QVZRRL04", "curp_structure", "Character 11"),
        ("HEGG560427MVZARL04", "curp_structure", "Character 14"),
        ("HEGG561327MVZRRL04", "curp_birth_date", "not a valid date"),
        ("HEGG560231MVZRRL04", "curp_birth_date", "not a valid date"),
        ("HEGG560427MZZRRL04", "curp_state", "not a state code"),
    ],
)
def test_refusals_say_why(raw, code, fragment):
    with pytest.raises(ValidationError) as exc:
        normalize_curp(raw)
    assert exc.value.code == code
    assert fragment in exc.value.messages[0]


def test_future_birth_date_is_refused():
    year = (dt.date.today().year + 1) % 100
    curp = _with_check(f"GOPA{year:02d}0101HGRNRLA")
    with pytest.raises(ValidationError) as exc:
        normalize_curp(curp)
    assert exc.value.code == "curp_birth_date"


def test_parse_refuses_empty_and_invalid():
    with pytest.raises(ValidationError):
        parse_curp("")
    with pytest.raises(ValidationError):
        parse_curp(VALID[:17] + "0")


def test_without_check():
    assert curp_without_check(f" {VALID.lower()}") == VALID[:17]
