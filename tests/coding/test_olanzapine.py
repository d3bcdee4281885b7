"""Short-acting IM olanzapine has its own code: J2359, billed by the SERVICE DATE (mappings/code_starts.csv).

Facts from the CMS HCPCS Level II file, January 2026 release (mappings/build/source/hcpcs2026_drugs.csv,
long descriptors and add dates):
  J2359 "Injection, olanzapine, 0.5 mg"                 added 2023-10-01
  J2358 "Injection, olanzapine, long-acting, 1 mg"      (the pamoate, Zyprexa Relprevv)
  J3490 "Unclassified drugs"
Before J2359's first day, short-acting olanzapine had no code of its own: J3490, one unit, its NDC on
the line (CGS Medicare Part B NOC drug instructions). The CMS October 2025 ASP NDC-HCPCS crosswalk
(mappings/ndc_hcpcs.csv) lists the generic 10 mg vials under J2359 at 20 billing units.
"""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from tests.builders import (
    RXNORM,
    admin,
    decide_one,
    dosage,
    dose,
    gap_codes,
    line,
    med,
    refused_row,
    rules,
    world,
)

ROOT = Path(__file__).resolve().parents[2]
CMS = ROOT / "mappings" / "build" / "source" / "hcpcs2026_drugs.csv"
OLANZAPINE_10 = med(RXNORM, "485968", "olanzapine 10 MG Injection")
PAMOATE_210 = med(RXNORM, "1718934", "olanzapine 210 MG Injection")
SCOPOLAMINE = med(RXNORM, "198207", "scopolamine 0.4 MG/ML Injectable Solution")


def cms() -> dict[str, dict]:
    with CMS.open(newline="", encoding="utf-8") as fh:
        return {r["hcpcs"]: r for r in csv.DictReader(fh)}


def given(concept, amount, unit="mg", when="2026-10-05T09:30:00-05:00", payer="commercial"):
    a = admin(
        medicationCodeableConcept=concept,
        dosage=dosage(dose=dose(amount, unit)),
        effectiveDateTime=when,
    )
    return decide_one(a, world(payer=payer))


# ------------------------------------------------------------------ the tables against the CMS file
def test_j2359_is_the_cms_short_acting_olanzapine_code_added_2023_10_01():
    file = cms()
    assert file["J2359"]["long_description"] == "Injection, olanzapine, 0.5 mg"
    assert file["J2359"]["added"] == "20231001" and not file["J2359"]["terminated"]
    assert file["J2358"]["long_description"] == "Injection, olanzapine, long-acting, 1 mg"
    start = rules().code_starts["J2359"]
    assert (start.added, start.before) == (date(2023, 10, 1), "J3490")


def test_the_billing_unit_is_the_descriptors_half_milligram():
    drug = rules().drugs["J2359"]
    assert (drug.unit_amount, drug.unit) == (Decimal("0.5"), "mg")
    # the CMS crosswalk: a Sandoz 10 mg vial under J2359 from 2023-10-01 (BILLUNITS 20 = 10 mg / 0.5 mg)
    crosswalk = rules().ndc_hcpcs["00781315972"]
    assert (crosswalk.hcpcs, crosswalk.effective) == (("J2359",), (date(2023, 10, 1),))
    assert (crosswalk.package.amount, crosswalk.package.unit) == (Decimal(10), "mg")
    assert crosswalk.package.amount / drug.unit_amount == 20


# ------------------------------------------------------------------ the decision
def test_olanzapine_10_mg_in_2026_is_j2359_times_20():
    d = given(OLANZAPINE_10, 10)
    assert (d.drug, d.units) == ("J2359", 20)
    assert (line(d, "drug").code, line(d, "drug").quantity) == ("J2359", 20)
    assert "unmapped-medication" not in gap_codes(d) and "missing-ndc" not in gap_codes(d)


@pytest.mark.parametrize(
    "amount,units", [(10, 20), (5, 10), (Decimal("2.5"), 5), (Decimal("7.5"), 15)]
)
def test_the_units_are_the_dose_in_half_milligrams(amount, units):
    assert given(OLANZAPINE_10, amount).units == units


@pytest.mark.parametrize(
    "when,code,units",
    [
        ("2023-09-30T12:00:00-05:00", "J3490", 1),  # the day before J2359: unclassified, one unit
        ("2023-10-01T12:00:00-05:00", "J2359", 20),  # J2359's first day
        ("2022-05-10T12:00:00-05:00", "J3490", 1),
    ],
)
def test_the_service_date_chooses_between_j3490_and_j2359(when, code, units):
    d = given(OLANZAPINE_10, 10, when=when)
    assert (d.drug, d.units) == (code, units)


def test_before_j2359_the_unclassified_line_needs_its_ndc():
    d = given(OLANZAPINE_10, 10, when="2023-09-30T12:00:00-05:00")
    assert d.drug == "J3490" and "missing-ndc" in gap_codes(d)


def test_olanzapine_pamoate_210_mg_is_j2358_times_210():
    d = given(PAMOATE_210, 210)
    assert (d.drug, d.units) == ("J2358", 210)


def test_zyprexa_intramuscular_in_free_text_is_j2359_by_name_flagged():
    concept = {"text": "Zyprexa IntraMuscular 10 mg"}
    d = given(concept, 10)
    assert (d.drug, d.units) == ("J2359", 20)
    assert "unmapped-medication" in gap_codes(d)  # matched by name only, not by code


def test_for_medicare_a_vial_of_unknown_kind_is_missing_package_size():
    # J2359 is in the CMS crosswalk (separately payable); no table says the vial is single- or multi-dose
    d = given(OLANZAPINE_10, 10, payer="medicare")
    assert (d.drug, d.units) == ("J2359", 20) and "missing-package-size" in gap_codes(d)


def test_a_drug_with_no_code_of_its_own_is_still_j3490():
    # scopolamine hydrobromide injection: named by no CMS HCPCS descriptor (the demo's NOC case)
    assert not any("scopolamine" in r["long_description"].lower() for r in cms().values())
    d = given(SCOPOLAMINE, Decimal("0.4"))
    assert d.drug == "J3490" and {"unmapped-medication", "missing-ndc"} <= set(gap_codes(d))


# ------------------------------------------------------------------ the table is validated
@pytest.mark.parametrize(
    "old,new,message",
    [
        ("J2359,2023-10-01,J3490", "J2359,2023-10-32,J3490", "column 'added'"),
        (
            "J2359,2023-10-01,J3490",
            "J2359,2023-10-01,J0000",
            "before_hcpcs 'J0000' is not in drugs.csv",
        ),
        ("J2359,2023-10-01,J3490", "J2359,2023-10-01,J2359", "before_hcpcs 'J2359' is hcpcs"),
    ],
)
def test_a_broken_code_start_row_names_file_and_row(tmp_path, old, new, message):
    err, row = refused_row(tmp_path, "code_starts.csv", old, new)
    assert (err.file, err.row) == ("code_starts.csv", row) and message in str(err)
