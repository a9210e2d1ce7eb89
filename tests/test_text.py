import pytest

from redes.registry import matching
from redes.registry.text import (
    NO_NUMBER,
    PARTICLES,
    address_key,
    address_parts,
    address_tail,
    fold,
    group_particles,
    split_full_name,
)


def test_fold_drops_accents_enye_case_punctuation_spaces():
    assert fold("  María-José   NÚÑEZ ") == "maria jose nunez"
    assert fold("Ñañez") == fold("nanez")
    assert fold(None) == ""
    assert fold("Calle 5 de Mayo #12") == "calle 5 de mayo 12"


def test_address_key_format_number_and_postal_code_last():
    assert address_key("Calle Hidalgo", "No. 12-A", "39 300") == "hidalgo 12a 39300"
    assert address_key("HIDALGO", " 12 ", "39300") == address_key("Av. Hidalgo", "12", "39-300")
    assert address_key("", "", "") == ""
    assert address_key(None, None, None) == ""
    assert address_key("5 de Mayo", "S/N", "66050") == f"5 de mayo {NO_NUMBER} 66050"
    assert address_key("Hidalgo", "", "") == "hidalgo sn 0"


def test_address_parts_and_tail():
    key = address_key("Calle 5 de Mayo", "12", "39300")
    assert address_parts(key) == ("5 de mayo", "12", "39300")
    assert address_tail(key) == "12 39300"
    # without a number or without a postal code there is no tail (it would join unrelated households)
    assert address_tail(address_key("Hidalgo", "S/N", "39300")) == ""
    assert address_tail(address_key("Hidalgo", "12", "")) == ""
    assert address_parts(address_key("Hidalgo", "12", "")) == ("hidalgo", "12", "")
    assert address_tail("") == ""


def test_address_key_keeps_number_and_postal_code_when_cut():
    key = address_key("Privada " + "muy larga " * 30, "1234", "39300")
    assert len(key) <= 120
    assert address_tail(key) == "1234 39300"


def test_group_particles():
    assert group_particles(["de", "la", "Cruz", "López"]) == ["de la Cruz", "López"]
    assert group_particles(["García", "del"]) == ["García del"]
    assert "de" in PARTICLES and "del" in PARTICLES and "y" in PARTICLES


@pytest.mark.parametrize(
    ("full", "parts"),
    [
        ("María José de la Cruz Hernández", ("María José", "de la Cruz", "Hernández")),
        ("José Luis Ramírez del Río", ("José Luis", "Ramírez", "del Río")),
        ("Pedro de los Santos", ("Pedro", "de los Santos", "")),
        ("María de los Ángeles García del Río", ("María de los Ángeles", "García", "del Río")),
        ("José Luis Ortiz y Pérez", ("José Luis", "Ortiz", "y Pérez")),
        ("Juan Pérez López", ("Juan", "Pérez", "López")),
        ("Ana López", ("Ana", "López", "")),
        ("Ana", ("Ana", "", "")),
        ("  ", ("", "", "")),
        (None, ("", "", "")),
    ],
)
def test_split_full_name(full, parts):
    assert split_full_name(full) == parts


def test_matcher_uses_the_same_functions():
    # one normaliser: the matcher re-exports text's functions instead of keeping its own copies
    assert matching.address_key is address_key
    assert matching.split_full_name is split_full_name
    assert matching.PARTICLES is PARTICLES
    assert not hasattr(matching, "normalize_name")
