"""Dose arithmetic: Decimal billing units, unit conversion, strength, NDC 11-digit form."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fhir_injection.decision.units import (
    MAX_BILLING_UNITS, DoseError, billing_units, convert, ndc11, quantity_amount, ratio_strength, to_decimal, unit_of,
)

D = Decimal
KETOROLAC_30_PER_ML = (D(30), "mg", D(1), "mL")


@pytest.mark.parametrize("amount,unit,per,per_unit,strength,units", [
    (D("0.3"), "mg", D("0.1"), "mg", None, 3),  # epinephrine J0171: exactly 3, not 4
    (0.3, "mg", D("0.1"), "mg", None, 3),  # even from a float
    (D(1), "g", D(250), "mg", None, 4),  # ceftriaxone J0696
    (D(2), "mL", D(15), "mg", KETOROLAC_30_PER_ML, 4),  # 60 mg ketorolac J1885
    (D(1000), "mcg", D(1000), "mcg", None, 1),  # B12 J3420
    (D(1000), "ug", D(1000), "mcg", None, 1),
    (D(1500), "mcg", D(1000), "mcg", None, 2),
    (D(1), "mg", D(1000), "mcg", None, 1),
    (D("0.5"), "mg", D(1), "mg", None, 1),  # at least 1
    (D(31), "mg", D(15), "mg", None, 3),  # rounded up
    (D(30), "mg", D(15), "mg", None, 2),
    (D("0.25"), "mL", D("7.5"), "mg", (D(30), "mg", D(1), "mL"), 1),  # leuprolide 7.5 mg
    (D("0.4"), "mL", D(10), "mg", (D(100), "mg", D(1), "mL"), 4),  # enoxaparin 40 mg
    (D(1), "cc", D(15), "mg", KETOROLAC_30_PER_ML, 2),
    (D(1), "mL", D(1), "mL", None, 1),
])
def test_billing_units(amount, unit, per, per_unit, strength, units):
    assert billing_units(D(str(amount)), unit, per, per_unit, strength) == units


def test_ml_without_strength_cannot_become_mg():
    with pytest.raises(DoseError, match="strength"):
        billing_units(D(2), "mL", D(15), "mg")


@pytest.mark.parametrize("amount", [D(0), D(-1), D("-0.1")])
def test_zero_or_negative_dose(amount):
    with pytest.raises(DoseError, match="not positive"):
        billing_units(amount, "mg", D(15), "mg")


def test_huge_dose_is_implausible():
    with pytest.raises(DoseError, match="implausible"):
        billing_units(D(10) ** 9, "mg", D(15), "mg")
    assert billing_units(D(MAX_BILLING_UNITS), "mg", D(1), "mg") == MAX_BILLING_UNITS


@pytest.mark.parametrize("unit", ["puffs", "", "tablet"])
def test_unknown_dose_unit(unit):
    with pytest.raises(DoseError):
        billing_units(D(1), unit, D(15), "mg")


def test_strength_with_the_wrong_dimensions_cannot_convert():
    with pytest.raises(DoseError):
        convert(D(1), "mL", "mg", (D(30), "unit", D(1), "mL"))


def test_strength_converts_mg_back_to_ml():
    assert convert(D(60), "mg", "mL", KETOROLAC_30_PER_ML) == D(2)


@pytest.mark.parametrize("amount,src,dst,expected", [
    (D(1), "g", "mg", D(1000)), (D(1), "mg", "mcg", D(1000)), (D(1500), "mcg", "mg", D("1.5")),
    (D(1), "L", "mL", D(1000)), (D(5), "[iU]", "unit", D(5)), (D(1), "G", "mg", D(1000)),
])
def test_convert_same_dimension(amount, src, dst, expected):
    assert convert(amount, src, dst) == expected


def test_unit_of_is_case_insensitive_and_rejects_non_strings():
    assert unit_of("ML") == unit_of("mL") == ("volume", D(1))
    assert unit_of(None) is None and unit_of(5) is None


@pytest.mark.parametrize("value,expected", [(30, D(30)), ("0.3", D("0.3")), (0.1, D("0.1")), (True, None),
                                            (None, None), ("abc", None), ("NaN", None), ("Infinity", None)])
def test_to_decimal(value, expected):
    assert to_decimal(value) == expected


def test_quantity_amount_prefers_the_ucum_code():
    assert quantity_amount({"value": 2, "unit": "milliliters", "code": "mL"}) == (D(2), "mL")
    assert quantity_amount({"value": 2, "unit": "mg"}) == (D(2), "mg")
    assert quantity_amount({"value": 2}) is None
    assert quantity_amount({"unit": "mg"}) is None
    assert quantity_amount("2 mg") is None


def test_ratio_strength():
    ratio = {"numerator": {"value": 30, "code": "mg"}, "denominator": {"value": 1, "code": "mL"}}
    assert ratio_strength(ratio) == (D(30), "mg", D(1), "mL")
    assert ratio_strength({"numerator": {"value": 30, "code": "mg"}}) is None
    assert ratio_strength({"numerator": {"value": 30, "code": "mg"},
                           "denominator": {"value": 0, "code": "mL"}}) is None
    assert ratio_strength({"numerator": {"value": 30, "code": "tab"},
                           "denominator": {"value": 1, "code": "mL"}}) is None


@pytest.mark.parametrize("code,expected", [
    ("0409-3796-01", "00409379601"),  # 4-4-2
    ("00409-379-01", "00409037901"),  # 5-3-2
    ("00409-3796-1", "00409379601"),  # 5-4-1
    ("00409-3796-01", "00409379601"),  # 5-4-2
    ("00409379601", "00409379601"),  # 11 digits
    (" 0409-3796-01 ", "00409379601"),
    ("0409379601", None),  # unhyphenated 10 digits: ambiguous
    ("409-3796-01", None), ("00409-37960-1", None), ("0409-3796-0a", None), ("004093796011", None),
    ("", None), (None, None), (409379601, None),
])
def test_ndc11(code, expected):
    assert ndc11(code) == expected
