"""Vaccines by Medicare Part B coverage, and CVX -> CPT product codes.

42 CFR 410.57 / 410.63 and CMS MLN "Medicare Part B Immunization Billing": Part B covers influenza,
pneumococcal, hepatitis B (medium/high risk) and COVID-19 vaccines (and tetanus after an injury);
others (Tdap, zoster, HPV...) are Part D, billed to the patient's drug plan, not on a Part B claim.
CDC "CPT codes mapped to CVX codes": CVX 140 (influenza, preservative free) is 90655 for 0.25 mL
and 90656 for 0.5 mL; the adult dose is 90656.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from fhir_injection import Config, build_task
from tests.builders import CREATED, CVX, admin, decide_one, gap, gap_codes, med, rules, world

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


@pytest.mark.parametrize("cvx", ["115", "187", "165", "113"])
def test_part_d_vaccines_for_medicare_are_no_part_b_claim(cvx):
    d = decide_one(admin(medicationCodeableConcept=med(CVX, cvx)))
    assert (d.outcome, d.procedure, d.lines, d.claim_status) == ("not-billable", None, (), None)
    assert gap_codes(d) == ["vaccine", "vaccine-part-d"]
    assert gap(d, "vaccine-part-d").severity == "info"
    assert build_task(d, Config(), rules(), CREATED) is None


@pytest.mark.parametrize("payer", ["commercial", "medicaid"])
def test_other_payers_bill_the_same_vaccine_with_its_administration_code(payer):
    d = decide_one(admin(medicationCodeableConcept=med(CVX, "115")), world(payer=payer))
    assert (d.outcome, d.procedure) == ("not-96372", "90471")
    assert "vaccine-part-d" not in gap_codes(d)


@pytest.mark.parametrize("cvx,code", [("140", "G0008"), ("33", "G0009"), ("43", "G0010")])
def test_part_b_vaccines_for_medicare_keep_their_g_code(cvx, code):
    d = decide_one(admin(medicationCodeableConcept=med(CVX, cvx)))
    assert (d.outcome, d.procedure) == ("not-96372", code)


def test_cvx_140_is_the_0_5_ml_product_90656():
    assert rules().vaccines["140"].product_code == "90656"
    d = decide_one(admin(medicationCodeableConcept=med(CVX, "140")))
    assert "product 90656" in gap(d, "vaccine").message


def test_every_vaccine_row_is_part_b_exactly_for_the_part_b_groups():
    with open(MAPPINGS / "vaccines.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows
    for row in rows:
        part_b = row["vaccine_group"] in ("influenza", "pneumococcal", "hepatitis-b", "covid-19")
        assert (row["medicare_part_b"] == "yes") == part_b, row["cvx"]
        # tetanus: Part B only when given for an injury (tests/coding/test_vaccines_tetanus_injury.py)
        assert (row["medicare_part_b"] == "injury") == (row["vaccine_group"] == "tetanus"), row[
            "cvx"
        ]
        assert "CDC 'CPT codes mapped to CVX codes'" in row["source"], row["cvx"]


# CDC "CPT codes mapped to CVX codes" (the product codes this table was checked against)
CDC_CVX_TO_CPT = {
    "140": {"90655", "90656"},
    "141": {"90657", "90658"},
    "150": {"90685", "90686"},
    "158": {"90687", "90688"},
    "33": {"90732"},
    "133": {"90670"},
    "216": {"90677"},
    "43": {"90746"},
    "08": {"90744"},
    "115": {"90715"},
    "113": {"90714"},
    "09": {"90714"},
    "187": {"90750"},
    "165": {"90651"},
}


def test_every_product_code_is_one_the_cdc_maps_its_cvx_to():
    from tests.coding.test_vaccines_covid import CDC_COVID_CVX_TO_CPT

    cdc = {**CDC_CVX_TO_CPT, **CDC_COVID_CVX_TO_CPT}
    for cvx, vaccine in rules().vaccines.items():
        assert vaccine.product_code in cdc[cvx], cvx
