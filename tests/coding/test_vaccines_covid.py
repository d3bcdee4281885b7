"""COVID-19 vaccines: CVX -> CPT product code, and CPT 90480 for the administration (never 96372).

Sources, as the rows of mappings/vaccines.csv and vaccine_admin.csv cite them:
- CDC "CPT codes mapped to CVX codes" (vaccines.asp?rpt=cpt), read in the stored copy
  immregistries/codebase@641f2ea42152f864dda760d9a3abda06fa9b6255 cdc-source/cpt.xml: 91318 -> CVX 308,
  91319 -> 310, 91320 -> 309, 91321 -> 311, 91322 -> 312, 91323 -> 334, 91304 -> 313 (and the retired
  211); no CPT code maps to CVX 213 (COVID-19, unspecified).
- CDC trade names (same copy, tradename.xml): COMIRNATY -> 309 and 310, SPIKEVAX -> 311 and 312,
  mNEXSPIKE -> 334 only, NUVAXOVID -> 313 only: a brand alone does not always say the presentation.
- CPT 90480 "Immunization administration by intramuscular injection of SARS-CoV-2 (COVID-19)
  vaccine, single dose", from 2023-09-11, for any COVID-19 vaccine product (CMS MLN Connects
  2023-09-14; AAFP FPM 2023-10-10); Medicare Part B pays the vaccine and its administration.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fhir_injection import MappingError, load_rules
from tests.builders import (
    CVX,
    RXNORM,
    admin,
    decide_one,
    gap,
    gap_codes,
    med,
    refused_row,
    rules,
    world,
)

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
STORED_COPY = "immregistries/codebase@641f2ea42152f864dda760d9a3abda06fa9b6255"

# The CDC table's own rows (CVX -> the CPT codes CDC maps to it), as read in the stored copy
CDC_COVID_CVX_TO_CPT = {
    "308": {"91318"},
    "309": {"91320"},
    "310": {"91319"},
    "311": {"91321"},
    "312": {"91322"},
    "313": {"91304"},
    "334": {"91323"},
    "213": {""},  # CDC maps no CPT code to the unspecified CVX: no product code
}


@pytest.mark.parametrize(
    "cvx,cpt", [(k, next(iter(v))) for k, v in CDC_COVID_CVX_TO_CPT.items() if k != "213"]
)
def test_each_cdc_row_bills_90480_with_its_product_code(cvx, cpt):
    d = decide_one(admin(medicationCodeableConcept=med(CVX, cvx)))
    assert (d.outcome, d.procedure, d.lines, d.claim_status) == ("not-96372", "90480", (), None)
    assert gap_codes(d) == ["vaccine"]
    assert f"CVX {cvx} (" in gap(d, "vaccine").message
    assert f"product {cpt}): bill 90480" in gap(d, "vaccine").message


def test_the_table_holds_every_covid_cvx_the_cdc_maps_a_2024_2026_product_code_to():
    covid = {k: v for k, v in rules().vaccines.items() if v.group == "covid-19"}
    assert {k: {v.product_code} for k, v in covid.items()} == CDC_COVID_CVX_TO_CPT


def test_every_covid_row_cites_the_stored_copy_of_the_cdc_table_it_was_checked_in():
    import csv

    with open(MAPPINGS / "vaccines.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["vaccine_group"] == "covid-19"]
    assert len(rows) == 8
    for row in rows:
        assert STORED_COPY in row["source"], row["cvx"]
        assert "cdc-source/cvx.xml" in row["source"], row["cvx"]
        if row["product_code"]:
            assert f"CPT {row['product_code']} -> CVX {row['cvx']}" in row["source"], row["cvx"]


@pytest.mark.parametrize("payer", ["medicare", "medicaid", "commercial"])
def test_every_payer_gets_90480_never_90471_or_a_g_code(payer):
    d = decide_one(admin(medicationCodeableConcept=med(CVX, "312")), world(payer=payer))
    assert (d.outcome, d.procedure) == ("not-96372", "90480")
    assert "vaccine-part-d" not in gap_codes(d)


def test_a_medicare_patient_is_billed_to_part_b_not_part_d():
    d = decide_one(admin(medicationCodeableConcept=med(CVX, "309")))
    assert d.payer_type == "medicare"
    assert (d.outcome, d.procedure) == ("not-96372", "90480")
    assert rules().vaccines["309"].medicare_part_b is True


def test_no_covid_vaccine_is_ever_a_96372_even_without_a_route_or_dose():
    for cvx in CDC_COVID_CVX_TO_CPT:
        d = decide_one(admin(medicationCodeableConcept=med(CVX, cvx), dosage=None))
        assert (d.outcome, d.procedure) == ("not-96372", "90480"), cvx


# --------------------------------------------------------------------------- by name


def by_text(text, payer="commercial"):
    return decide_one(admin(medicationCodeableConcept={"text": text}), world(payer=payer))


def test_mnexspike_by_name_is_cvx_334_and_91323():
    d = by_text("mNEXSPIKE (COVID-19 Vaccine, mRNA) 10 mcg/0.2 mL injection")
    assert (d.outcome, d.procedure) == ("not-96372", "90480")
    assert "CVX 334 (" in gap(d, "vaccine").message and "product 91323" in gap(d, "vaccine").message


@pytest.mark.parametrize(
    "text,cvx,cpt",
    [
        ("Comirnaty 30 mcg/0.3 mL", "309", "91320"),
        ("Comirnaty 10 mcg/0.3 mL", "310", "91319"),
        ("Spikevax 50 mcg/0.5 mL prefilled syringe", "312", "91322"),
        ("Spikevax 25 mcg/0.25 mL prefilled syringe", "311", "91321"),
        ("NUVAXOVID", "313", "91304"),
    ],
)
def test_a_brand_with_its_dose_names_one_presentation(text, cvx, cpt):
    d = by_text(text)
    assert (
        f"CVX {cvx} (" in gap(d, "vaccine").message
        and f"product {cpt}" in gap(d, "vaccine").message
    )


@pytest.mark.parametrize(
    "text",
    [
        "Spikevax",  # CDC: SPIKEVAX is CVX 311 (25 mcg/0.25 mL) and 312 (50 mcg/0.5 mL)
        "COMIRNATY injection",  # CDC: COMIRNATY is CVX 309 and 310
        "COVID-19 vaccine",
    ],
)
def test_a_name_that_does_not_say_the_presentation_is_still_a_90480_and_the_product_is_left_to_a_person(
    text,
):
    d = by_text(text)
    assert (d.outcome, d.procedure) == ("not-96372", "90480")
    message = gap(d, "vaccine").message
    assert "CVX 213 (" in message and "product not named by the record" in message
    assert "code the product (CPT)" in message


def test_an_rxnorm_ingredient_name_synthea_and_omop_style():
    # the RxNorm concept name real exports carry ("SARS-CoV-2 (COVID-19) vaccine, mRNA-1273 0.2 MG/ML
    # Injectable Suspension", OMOP concept 37003518): a COVID-19 vaccine, presentation not known
    d = by_text(
        "SARS-CoV-2 (COVID-19) vaccine, mRNA-1273 0.2 MG/ML Injectable Suspension", payer="medicare"
    )
    assert (d.outcome, d.procedure) == ("not-96372", "90480")
    assert "CVX 213 (" in gap(d, "vaccine").message


def test_a_us_core_immunization_style_cvx_coding_on_a_contained_medication():
    # a US Core vaccineCode (CVX value set: the CDC short description as display), carried as a
    # MedicationAdministration's contained Medication (Oracle Health style)
    medication = {
        "resourceType": "Medication",
        "id": "vax",
        "code": {
            "coding": [
                {
                    "system": CVX,
                    "code": "309",
                    "display": "COVID-19, mRNA, LNP-S, PF, tris-sucrose, 30 mcg/0.3 mL",
                }
            ],
            "text": "COMIRNATY 2025-2026 Formula",
        },
    }
    a = admin(
        medicationCodeableConcept=None,
        medicationReference={"reference": "#vax"},
        contained=[medication],
    )
    d = decide_one(a)
    assert (d.outcome, d.procedure) == ("not-96372", "90480")
    assert "CVX 309 (" in gap(d, "vaccine").message and "product 91320" in gap(d, "vaccine").message


def test_a_retired_cvx_this_table_does_not_hold_is_still_a_covid_vaccine_by_its_cdc_display():
    # CVX 208 (the original Pfizer vaccine, inactive since 2023) with the CDC short description
    d = decide_one(
        admin(
            medicationCodeableConcept=med(
                CVX, "208", "COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose"
            )
        )
    )
    assert (d.outcome, d.procedure) == ("not-96372", "90480")
    assert "unmapped-medication" not in gap_codes(d)


def test_a_cdc_short_description_alone_names_its_presentation():
    d = by_text("COVID-19, mRNA, LNP-S, PF, 25 mcg/0.25 mL")
    assert "CVX 311 (" in gap(d, "vaccine").message and "product 91321" in gap(d, "vaccine").message


def test_an_rxnorm_coding_of_a_covid_vaccine_with_its_display_is_matched_by_the_display():
    # RxNorm 2470233 "SARS-CoV-2 (COVID-19) vaccine, mRNA-1273 0.2 MG/ML" (a clinical drug component, as
    # an OHDSI ATLAS concept set lists it): no RxNorm row maps it, its display says what it is
    d = decide_one(
        admin(
            medicationCodeableConcept=med(
                RXNORM, "2470233", "SARS-CoV-2 (COVID-19) vaccine, mRNA-1273 0.2 MG/ML"
            )
        )
    )
    assert (d.outcome, d.procedure) == ("not-96372", "90480")


# --------------------------------------------------------------------------- broken rows


@pytest.mark.parametrize(
    "table,old,new,message",
    [
        (
            "vaccines.csv",
            ",91323,covid-19,yes,",
            ",9132,covid-19,yes,",
            "column 'product_code' is '9132'",
        ),
        (
            "vaccines.csv",
            ",91323,covid-19,yes,",
            ",91323,covid,yes,",
            "column 'vaccine_group' is 'covid'",
        ),
        (
            "vaccines.csv",
            ",91323,covid-19,yes,",
            ",91323,covid-19,sometimes,",
            "column 'medicare_part_b' is 'sometimes'",
        ),
        (
            "vaccine_admin.csv",
            "*,covid-19,90480,",
            "*,covid19,90480,",
            "column 'vaccine_group' is 'covid19'",
        ),
        ("vaccine_admin.csv", "*,covid-19,90480,", "*,covid-19,,", "column 'admin_code' is empty"),
    ],
)
def test_a_broken_row_is_reported_with_file_and_row(tmp_path, table, old, new, message):
    error, row = refused_row(tmp_path, table, old, new)
    assert (error.file, error.row) == (table, row) and message in str(error)


def test_a_cvx_listed_twice_is_reported_with_its_second_row(tmp_path):
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    path = target / "vaccines.csv"
    lines = path.read_text().splitlines()
    n = next(i for i, ln in enumerate(lines) if ln.startswith("334,"))
    lines.append(lines[n])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MappingError) as err:
        load_rules(target)
    assert (err.value.file, err.value.row) == ("vaccines.csv", len(lines)) and "334" in str(
        err.value
    )


# --------------------------------------------------------------------------- the demo clinic


def demo_decisions(scenario_start):
    """The demo clinic's administrations whose scenario starts with ``scenario_start``, decided with
    every resource of fixtures/demo (found by scenario text: other cases may shift the ids)."""
    import json

    from fhir_injection import Context, decide

    root = Path(__file__).resolve().parents[2] / "fixtures"
    expected = json.loads((root / "demo-expected.json").read_text())["administrations"]
    resources = [
        json.loads(line)
        for f in sorted((root / "demo").glob("*.ndjson"))
        for line in f.read_text().splitlines()
        if line.strip()
    ]
    ctx = Context(resources)
    wanted = {ref for ref, a in expected.items() if a["scenario"].startswith(scenario_start)}
    return [
        decide(r, ctx, rules())
        for r in resources
        if r["resourceType"] == "MedicationAdministration"
        and f"MedicationAdministration/{r['id']}" in wanted
    ]


def test_the_demo_covid_vaccine_for_medicare_is_part_b_90480_with_product_91320():
    [d] = demo_decisions("COVID-19 vaccine CVX 309 for Medicare")
    assert (d.payer_type, d.outcome, d.procedure) == ("medicare", "not-96372", "90480")
    assert "product 91320" in gap(d, "vaccine").message


def test_the_demo_covid_vaccine_by_name_for_a_commercial_patient_is_90480_with_product_91323():
    [d] = demo_decisions("COVID-19 vaccine by name only (mNEXSPIKE)")
    assert (d.payer_type, d.outcome, d.procedure) == ("commercial", "not-96372", "90480")
    assert "CVX 334 (" in gap(d, "vaccine").message and "product 91323" in gap(d, "vaccine").message
