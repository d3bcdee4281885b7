"""Dose arithmetic: Decimal billing units, unit conversion, strength, NDC 11-digit form."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fhir_injection.decision.units import (
    MAX_BILLING_UNITS,
    DoseError,
    billing_units,
    convert,
    ndc11,
    quantity_amount,
    ratio_strength,
    to_decimal,
    unit_of,
)

D = Decimal
KETOROLAC_30_PER_ML = (D(30), "mg", D(1), "mL")


@pytest.mark.parametrize(
    "amount,unit,per,per_unit,strength,units",
    [
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
    ],
)
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


@pytest.mark.parametrize(
    "amount,src,dst,expected",
    [
        (D(1), "g", "mg", D(1000)),
        (D(1), "mg", "mcg", D(1000)),
        (D(1500), "mcg", "mg", D("1.5")),
        (D(1), "L", "mL", D(1000)),
        (D(5), "[iU]", "unit", D(5)),
        (D(1), "G", "mg", D(1000)),
    ],
)
def test_convert_same_dimension(amount, src, dst, expected):
    assert convert(amount, src, dst) == expected


def test_unit_of_is_case_insensitive_and_rejects_non_strings():
    assert unit_of("ML") == unit_of("mL") == ("volume", D(1))
    assert unit_of(None) is None and unit_of(5) is None


@pytest.mark.parametrize(
    "value,expected",
    [
        (30, D(30)),
        ("0.3", D("0.3")),
        (0.1, D("0.1")),
        (True, None),
        (None, None),
        ("abc", None),
        ("NaN", None),
        ("Infinity", None),
    ],
)
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
    assert (
        ratio_strength(
            {"numerator": {"value": 30, "code": "mg"}, "denominator": {"value": 0, "code": "mL"}}
        )
        is None
    )
    assert (
        ratio_strength(
            {"numerator": {"value": 30, "code": "tab"}, "denominator": {"value": 1, "code": "mL"}}
        )
        is None
    )


@pytest.mark.parametrize(
    "code,expected",
    [
        ("0409-3796-01", "00409379601"),  # 4-4-2
        ("00409-379-01", "00409037901"),  # 5-3-2
        ("00409-3796-1", "00409379601"),  # 5-4-1
        ("00409-3796-01", "00409379601"),  # 5-4-2
        ("00409379601", "00409379601"),  # 11 digits
        (" 0409-3796-01 ", "00409379601"),
        ("0409379601", None),  # unhyphenated 10 digits: ambiguous
        ("409-3796-01", None),
        ("00409-37960-1", None),
        ("0409-3796-0a", None),
        ("004093796011", None),
        ("", None),
        (None, None),
        (409379601, None),
    ],
)
def test_ndc11(code, expected):
    assert ndc11(code) == expected


# =============================================================================
# The strengths a formulary really holds (a denominator that is not 1 mL, a numerator in mcg or
# units, a concentration written in g/L) and each branch of the strength conversion, with the
# expected figure worked out from the label: a coder would bill exactly these units.
# =============================================================================


ENOXAPARIN_40_PER_04 = (D(40), "mg", D("0.4"), "mL")  # Lovenox 40 mg/0.4 mL prefilled syringe
CYANOCOBALAMIN_1000_MCG_PER_ML = (D(1000), "mcg", D(1), "mL")
EPINEPHRINE_1_PER_ML = (D(1), "mg", D(1), "mL")
HEPARIN_5000_UNITS_PER_ML = (D(5000), "[iU]", D(1), "mL")


# ----------------------------------------------------------------------------- strength: volume -> amount


@pytest.mark.parametrize(
    "ml,units",
    [
        ("0.4", 4),  # the whole syringe: 40 mg = 4 x J1650 (10 mg)
        ("0.3", 3),  # 30 mg
        ("0.2", 2),  # 20 mg
        ("0.25", 3),  # 25 mg: 2.5 units, rounded up
    ],
)
def test_enoxaparin_40_mg_per_0_4_ml_bills_by_the_mg_in_the_volume(ml, units):
    # 40 mg / 0.4 mL is 100 mg per mL: the denominator must divide, not be taken as 1 mL
    assert billing_units(D(ml), "mL", D(10), "mg", ENOXAPARIN_40_PER_04) == units


def test_a_denominator_other_than_1_ml_converts_exactly():
    assert convert(D("0.4"), "mL", "mg", ENOXAPARIN_40_PER_04) == D(40)
    assert convert(D(1), "mL", "mg", ENOXAPARIN_40_PER_04) == D(100)
    assert convert(D(40), "mg", "mL", ENOXAPARIN_40_PER_04) == D("0.4")  # and back
    assert convert(D(10), "mg", "mL", ENOXAPARIN_40_PER_04) == D("0.1")


@pytest.mark.parametrize(
    "ml,mcg,units",
    [
        ("1", 1000, 1),  # one vial of 1,000 mcg/mL: J3420 is "up to 1000 mcg"
        ("1.5", 1500, 2),
        ("0.5", 500, 1),
        ("3", 3000, 3),
    ],
)
def test_cyanocobalamin_1000_mcg_per_ml_counts_mcg_not_mg(ml, mcg, units):
    assert convert(D(ml), "mL", "mcg", CYANOCOBALAMIN_1000_MCG_PER_ML) == D(mcg)
    assert convert(D(ml), "mL", "mg", CYANOCOBALAMIN_1000_MCG_PER_ML) == D(mcg) / 1000
    assert billing_units(D(ml), "mL", D(1000), "mcg", CYANOCOBALAMIN_1000_MCG_PER_ML) == units


def test_mcg_dose_through_a_mcg_strength_back_to_ml():
    assert convert(D(500), "mcg", "mL", CYANOCOBALAMIN_1000_MCG_PER_ML) == D("0.5")
    assert convert(D(2), "mg", "mL", CYANOCOBALAMIN_1000_MCG_PER_ML) == D(2)


@pytest.mark.parametrize("ml,units", [("0.3", 3), ("0.5", 5), ("1", 10), ("0.15", 2)])
def test_epinephrine_1_mg_per_ml_is_not_the_same_as_no_strength(ml, units):
    # 1 mg/mL: the factor is 1, yet a mL dose still needs the strength to be billed per 0.1 mg
    assert billing_units(D(ml), "mL", D("0.1"), "mg", EPINEPHRINE_1_PER_ML) == units
    with pytest.raises(DoseError, match="needs the product strength"):
        billing_units(D(ml), "mL", D("0.1"), "mg")


def test_activity_strength_converts_ml_to_units():
    # heparin 5,000 units/mL; 0.5 mL is 2,500 units = 3 x "per 1,000 units"
    assert convert(D("0.5"), "mL", "unit", HEPARIN_5000_UNITS_PER_ML) == D(2500)
    assert billing_units(D("0.5"), "mL", D(1000), "units", HEPARIN_5000_UNITS_PER_ML) == 3
    assert convert(D(2500), "u", "mL", HEPARIN_5000_UNITS_PER_ML) == D("0.5")


@pytest.mark.parametrize(
    "strength",
    [
        (D(1), "mg", D(1), "mL"),
        (D(1), "g", D(1), "L"),  # the same concentration in other units
        (D(1000), "ug", D(1), "mL"),
        (D(1), "mg", D(1), "cc"),
        (D("0.5"), "mg", D("0.5"), "mL"),
        (D(2), "mg", D(2), "mL"),
    ],
)
def test_the_same_concentration_in_any_units_gives_the_same_dose(strength):
    assert convert(D(3), "mL", "mg", strength) == D(3)
    assert convert(D(3), "mg", "mL", strength) == D(3)
    assert convert(D(3), "L", "g", strength) == D(3)


def test_an_amount_into_litres_through_a_per_ml_strength():
    # 60 mg of a 30 mg/mL solution is 2 mL, 0.002 L: the target unit's factor divides
    assert convert(D(60), "mg", "L", (D(30), "mg", D(1), "mL")) == D("0.002")
    assert convert(D(2), "mL", "g", (D(30), "mg", D(1), "mL")) == D("0.06")


def test_a_dose_in_litres_through_a_per_ml_strength():
    # 0.002 L of a 30 mg/mL solution is 2 mL, 60 mg
    assert convert(D("0.002"), "L", "mg", (D(30), "mg", D(1), "mL")) == D(60)
    # and a g dose back to mL of a mg/mL strength: 0.06 g is 60 mg is 2 mL
    assert convert(D("0.06"), "g", "mL", (D(30), "mg", D(1), "mL")) == D(2)


@pytest.mark.parametrize(
    "strength,message",
    [
        (
            (D(30), "tab", D(1), "mL"),
            "^product strength has unknown units$",
        ),  # numerator unit unknown
        (
            (D(30), "mg", D(1), "drop"),
            "^product strength has unknown units$",
        ),  # denominator unit unknown
        (
            (D(30), "mg", D(0), "mL"),
            "^product strength has unknown units$",
        ),  # per 0 mL: no concentration
        (
            (D(30), "mg", D(1), "mg"),
            r"^product strength \(mg/mg\) cannot convert mL to mg$",
        ),  # no concentration
        ((D(30), "unit", D(1), "mL"), r"^product strength \(unit/mL\) cannot convert mL to mg$"),
    ],
)
def test_a_strength_that_cannot_convert_says_why(strength, message):
    with pytest.raises(DoseError, match=message):
        convert(D(1), "mL", "mg", strength)


def test_unknown_units_are_named_in_the_error():
    with pytest.raises(DoseError, match="unit 'puffs' is not a known UCUM"):
        convert(D(1), "puffs", "mg")
    with pytest.raises(DoseError, match="billing unit 'tab' is not a known unit"):
        convert(D(1), "mg", "tab")
    with pytest.raises(DoseError, match=r"dose in mL needs the product strength to convert to mg"):
        convert(D(1), "mL", "mg")


def test_same_dimension_ignores_the_strength():
    # 2 mL is 2 mL whatever the product: the strength is only a bridge between dimensions
    assert convert(D(2), "mL", "mL", ENOXAPARIN_40_PER_04) == D(2)
    assert convert(D(500), "mcg", "mg", ENOXAPARIN_40_PER_04) == D("0.5")


# ----------------------------------------------------------------------------- billing units: the edges


def test_exactly_the_maximum_is_allowed_and_one_more_is_not():
    assert billing_units(D(MAX_BILLING_UNITS), "mg", D(1), "mg") == MAX_BILLING_UNITS
    with pytest.raises(
        DoseError, match=f"gives {MAX_BILLING_UNITS + 1} billing units: implausible"
    ):
        billing_units(D(MAX_BILLING_UNITS + 1), "mg", D(1), "mg")


def test_an_exact_multiple_is_not_rounded_up():
    assert billing_units(D(45), "mg", D(15), "mg") == 3
    assert billing_units(D("45.001"), "mg", D(15), "mg") == 4


def test_the_non_positive_dose_is_named():
    with pytest.raises(DoseError, match=r"^dose 0 mg is not positive$"):
        billing_units(D(0), "mg", D(15), "mg")


# ----------------------------------------------------------------------------- FHIR quantities and ratios


def test_ratio_strength_keeps_a_non_unit_denominator_and_the_ucum_codes():
    ratio = {
        "numerator": {"value": 40, "unit": "milligram", "code": "mg"},
        "denominator": {"value": 0.4, "unit": "millilitre", "code": "mL"},
    }
    assert ratio_strength(ratio) == (D(40), "mg", D("0.4"), "mL")


@pytest.mark.parametrize(
    "numerator,denominator",
    [
        ({"value": -30, "code": "mg"}, {"value": 1, "code": "mL"}),  # negative amount
        ({"value": 0, "code": "mg"}, {"value": 1, "code": "mL"}),  # zero amount
        ({"value": 30, "code": "mg"}, {"value": -1, "code": "mL"}),  # negative volume
        ({"value": 30, "code": "mg"}, {"value": 1, "code": "drop"}),  # unknown denominator unit
        ({"value": 30, "code": "mg"}, None),
        (None, {"value": 1, "code": "mL"}),
    ],
)
def test_ratio_strength_refuses_what_cannot_be_a_concentration(numerator, denominator):
    assert ratio_strength({"numerator": numerator, "denominator": denominator}) is None


@pytest.mark.parametrize(
    "numerator,denominator,expected",
    [
        (1, 1, (D(1), "mg", D(1), "mL")),  # epinephrine 1 mg/mL: a numerator of 1 is a strength too
        ("0.5", 1, (D("0.5"), "mg", D(1), "mL")),
        (1, 10, (D(1), "mg", D(10), "mL")),
    ],
)
def test_ratio_strength_keeps_small_strengths(numerator, denominator, expected):
    ratio = {
        "numerator": {"value": numerator, "code": "mg"},
        "denominator": {"value": denominator, "code": "mL"},
    }
    assert ratio_strength(ratio) == expected


def test_ratio_strength_of_a_non_ratio_is_none():
    assert ratio_strength(None) is None
    assert ratio_strength("30 mg/mL") is None


@pytest.mark.parametrize(
    "quantity",
    [
        {"value": 2, "code": "", "unit": ""},
        {"value": 2, "code": 5},  # a non-text code
        {"value": "lots", "code": "mL"},
        {"value": True, "code": "mL"},
    ],
)
def test_quantity_amount_needs_a_number_and_a_unit_text(quantity):
    assert quantity_amount(quantity) is None


def test_quantity_amount_falls_back_to_the_unit_when_the_code_is_empty():
    assert quantity_amount({"value": "2.5", "code": "", "unit": "mL"}) == (D("2.5"), "mL")


def test_unit_of_trims_and_knows_each_dimension():
    assert unit_of(" mcg ") == ("mass", D("0.001"))
    assert unit_of("g") == ("mass", D(1000))
    assert unit_of("L") == ("volume", D(1000))
    assert unit_of("[IU]") == ("activity", D(1))
    assert unit_of("") is None


@pytest.mark.parametrize("value", [D("1.5"), "1e3", 7])
def test_to_decimal_is_exact(value):
    assert to_decimal(value) == D(str(value))


def test_to_decimal_of_junk_is_none():
    assert to_decimal([1]) is None
    assert to_decimal(False) is None


@pytest.mark.parametrize(
    "code,expected",
    [
        ("12345-6789-01", "12345678901"),  # 5-4-2: as is
        ("1234-5678-90", "01234567890"),  # 4-4-2: zero in front of the labeler
        ("12345-678-90", "12345067890"),  # 5-3-2: zero in front of the product
        ("12345-6789-0", "12345678900"),  # 5-4-1: zero in front of the package
        ("1234-567-89", None),  # 4-3-2 is no NDC form
        ("12345-6789-01-1", None),  # four segments
        ("12345-6789", None),  # two segments
    ],
)
def test_ndc11_places_the_zero_in_the_short_segment(code, expected):
    assert ndc11(code) == expected
