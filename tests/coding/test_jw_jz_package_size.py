"""JW and JZ from the container's size (CMS JW/JZ modifier policy, Claims Processing Manual ch. 17 s40).

The source's own example (CGS Medicare "JW and JZ Modifier Guidelines", 2023; 96372.md "Drug line"):
500 mg of ceftriaxone given from a 1 g single-dose vial is J0696 x 2 plus a second line J0696-JW x 2.
JZ only when nothing is discarded; neither for a multiple-dose container; a gap, not a JZ, when a
Medicare single-dose container's size is unknown.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from fhir_injection import Config, build_claim
from fhir_injection.sinks.report import decision_entry
from tests.builders import (
    CREATED,
    NDC,
    RXNORM,
    UCUM,
    admin,
    contained_admin,
    decide_one,
    dosage,
    dose,
    gap,
    gap_codes,
    line,
    med,
    refused_row,
    validate_claim,
    world,
)

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
CEFTRIAXONE_1G = med(RXNORM, "1665021", "ceftriaxone 1000 MG Injection")


def _given(medication, amount, unit, payer="medicare", config=None):
    return decide_one(
        admin(medicationCodeableConcept=medication, dosage=dosage(dose=dose(amount, unit))),
        world(payer=payer),
        config,
    )


def test_cms_example_500_mg_from_a_1_g_vial_is_two_units_and_two_units_jw():
    d = _given(CEFTRIAXONE_1G, 500, "mg")
    assert d.outcome == "claim", gap_codes(d)
    drug, waste = line(d, "drug"), line(d, "waste")
    assert (drug.code, drug.quantity, drug.modifiers) == ("J0696", 2, ())
    assert (waste.code, waste.quantity, waste.modifiers) == ("J0696", 2, ("JW",))
    assert waste.unit_price == drug.unit_price and waste.net == drug.net  # its own fee: 2 units


def test_the_jw_line_is_a_claim_item_of_its_own_with_the_same_code():
    c = build_claim(_given(CEFTRIAXONE_1G, 500, "mg"), Config(), CREATED)
    validate_claim(c)
    assert [i["sequence"] for i in c["item"]] == [1, 2, 3]
    drug, waste = c["item"][1], c["item"][2]
    assert waste["productOrService"] == drug["productOrService"]
    assert waste["modifier"] == [
        {
            "coding": [
                {"system": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "code": "JW"}
            ]
        }
    ]
    assert "modifier" not in drug
    assert waste["quantity"] == {"value": 2} and drug["quantity"] == {"value": 2}
    assert waste["net"] == drug["net"]
    assert (
        "detail" not in waste and "bodySite" not in waste
    )  # the NDC and the site go with the given amount
    assert c["total"]["value"] == pytest.approx(
        c["item"][0]["net"]["value"] + 2 * drug["net"]["value"]
    )


def test_nothing_discarded_is_jz_and_no_jw_line():
    d = _given(CEFTRIAXONE_1G, 1, "g")
    assert (line(d, "drug").quantity, line(d, "drug").modifiers) == (4, ("JZ",))
    assert line(d, "waste") is None


def test_two_vials_opened_count_both_containers():
    d = _given(CEFTRIAXONE_1G, 1500, "mg")  # two 1 g vials: 8 units opened, 6 given
    assert (line(d, "drug").quantity, line(d, "waste").quantity) == (6, 2)


def test_epinephrine_from_a_1_ml_single_dose_vial_is_decided_by_the_container_not_the_code():
    # drugs.csv marks J0171 multi-dose (its fallback); packages.csv says the 1 mL vial is single-dose
    d = _given(med(RXNORM, "1660014"), Decimal("0.3"), "mg")
    assert (line(d, "drug").quantity, line(d, "waste").quantity) == (
        3,
        7,
    )  # 1 mg vial = 10 x 0.1 mg


def test_a_multiple_dose_vial_gets_neither_jw_nor_jz():
    medication = {
        "coding": [{"system": RXNORM, "code": "3992"}, {"system": NDC, "code": "42023016801"}]
    }
    d = _given(medication, Decimal("0.3"), "mg")
    assert d.outcome == "claim" and line(d, "drug").modifiers == () and line(d, "waste") is None
    assert d.package.container == "multi-dose"


def test_medication_amount_is_the_container_when_no_table_row_names_the_product():
    # R4 Medication.amount: 2 mL in the vial; the ingredient strength turns it into 60 mg = 4 x 15 mg
    a = contained_admin(strength=(30, "mg", 1, "mL"), dose_ml=1)
    a["contained"][0]["amount"] = {
        "numerator": {"value": 2, "unit": "mL", "system": UCUM, "code": "mL"},
        "denominator": {"value": 1},
    }
    d = decide_one(a)
    assert d.outcome == "claim", gap_codes(d)
    assert (line(d, "drug").quantity, line(d, "waste").quantity) == (2, 2)
    assert (d.package.amount, d.package.unit, d.package.source) == (
        Decimal(2),
        "mL",
        "Medication.amount",
    )


@pytest.mark.parametrize(
    "amount",
    [
        {
            "numerator": {"value": 2, "unit": "mL", "system": UCUM, "code": "mL"},
            "denominator": {"value": 2},
        },
        {"numerator": {"value": 2, "unit": "bottle"}},
        {"numerator": {"value": 0, "code": "mL"}},
        {"denominator": {"value": 1}},
        "2 mL",
    ],
)
def test_a_medication_amount_that_is_not_one_container_in_a_known_unit_is_not_read(amount):
    a = contained_admin(strength=(30, "mg", 1, "mL"), dose_ml=1)
    a["contained"][0]["amount"] = amount
    d = decide_one(a)
    assert d.package is None and "missing-package-size" in gap_codes(d)


def test_an_ndc_package_wins_over_medication_amount_and_an_rxnorm_row():
    a = contained_admin(
        strength=(30, "mg", 1, "mL"),
        dose_ml=1,
        code={
            "coding": [
                {"system": RXNORM, "code": "1665459"},
                {"system": NDC, "code": "00409379501"},
            ]
        },
    )
    a["contained"][0]["amount"] = {
        "numerator": {"value": 10, "code": "mL"},
        "denominator": {"value": 1, "code": "1"},
    }
    assert decide_one(a).package.source == "ndc_hcpcs.csv"  # the NDC's item in the CMS crosswalk
    assert decide_one(a).package.amount == Decimal(30)  # the NDC's 30 mg, not the RxNorm 2 mL row
    del a["contained"][0]["code"]["coding"][1]  # no NDC: Medication.amount before the RxNorm row
    assert decide_one(a).package.source == "Medication.amount"


def test_an_unknown_container_of_a_medicare_single_dose_drug_is_a_gap_not_a_jz():
    d = _given(med(RXNORM, "2193"), 500, "mg")  # ceftriaxone by ingredient: which vial?
    assert d.outcome == "held"
    g = gap(d, "missing-package-size")
    assert g.severity == "error" and g.field == "Medication.amount"
    assert g.message.startswith("J0696 comes in single-dose containers of a size not known")
    assert line(d, "drug").modifiers == () and line(d, "waste") is None


@pytest.mark.parametrize("payer", ["commercial", "medicaid"])
def test_other_payers_need_no_container_size(payer):
    d = _given(med(RXNORM, "2193"), 500, "mg", payer=payer)
    assert "missing-package-size" not in gap_codes(d)


def test_jw_jz_turned_off_needs_no_container_size():
    d = _given(med(RXNORM, "2193"), 500, "mg", config=Config(jw_jz=False))
    assert d.outcome == "claim" and line(d, "waste") is None and line(d, "drug").modifiers == ()


def test_a_container_that_cannot_be_converted_is_a_gap_that_says_why():
    # a 2 mL vial (Medication.amount) of a product whose strength nobody gives: how many mg is that?
    a = contained_admin(strength=None, dose_ml=1)
    a["dosage"]["dose"] = dose(15, "mg")
    a["contained"][0]["amount"] = {"numerator": {"value": 2, "code": "mL"}}
    d = decide_one(a)
    assert d.outcome == "held"
    assert gap(d, "missing-package-size").message.startswith(
        "The container (2 mL, Medication.amount): dose in mg needs the product strength to convert to mL"
    )


def test_no_dose_no_jw_nor_jz_but_no_package_gap_either():
    d = decide_one(admin(medicationCodeableConcept=CEFTRIAXONE_1G, dosage=dosage(dose=None)))
    assert "missing-dose" in gap_codes(d) and "missing-package-size" not in gap_codes(d)
    assert line(d, "drug").modifiers == ()


def test_the_report_carries_the_container_and_the_jw_units():
    entry = decision_entry(_given(CEFTRIAXONE_1G, 500, "mg"), None, None)
    assert entry["jw_units"] == 2
    assert entry["package"] == {
        "amount": "1",
        "unit": "g",
        "container": "single-dose",
        "source": "packages.csv",
    }
    assert entry["modifiers"] == {"96372": [], "drug": []}
    plain = decision_entry(_given(med(RXNORM, "11248"), 1000, "ug"), None, None)
    assert plain["jw_units"] is None and plain["package"] is None


@pytest.fixture
def mappings(tmp_path):
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    return target


@pytest.mark.parametrize(
    "old,new,message",
    [
        (",1665021,1,g,single-dose", ",1665021,1,g,one-use", "column 'container' is 'one-use'"),
        (",1665021,1,g,", ",1665021,1,bottle,", "package_unit 'bottle' is not a known"),
        (",1665021,1,g,", ",1665021,-1,g,", "must be a positive number"),
        ("ndc,42023015901,", "ndc,42023-0159-01,", "must be 11 digits"),
    ],
)
def test_a_broken_package_row_is_reported_with_file_and_row(tmp_path, old, new, message):
    error, row = refused_row(tmp_path, "packages.csv", old, new)
    assert error.file == "packages.csv" and error.row == row and message in str(error)
