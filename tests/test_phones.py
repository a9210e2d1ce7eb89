import pytest
from django.core.exceptions import ValidationError

from redes.core.phones import normalize_phone


@pytest.mark.parametrize(
    "raw",
    [
        "8112345678",
        "81 1234 5678",
        "(81) 1234-5678",
        "+52 81 1234 5678",
        "+52 1 81 1234 5678",
        "5218112345678",
        "528112345678",
        "044 81 1234 5678",
        "045 81 1234 5678",
        "01 81 1234 5678",
    ],
)
def test_mexican_forms_share_one_e164_key(raw):
    assert normalize_phone(raw) == "+528112345678"


@pytest.mark.parametrize("raw", ["", "123", "81123456789012", "abc", "+52 00 0000 0000"])
def test_it_says_why_a_number_is_refused(raw):
    with pytest.raises(ValidationError):
        normalize_phone(raw)
