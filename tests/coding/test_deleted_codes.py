"""Codes CMS deleted on 2025-12-31 with no successor, and anti-neoplastics outside J9000-J9999.

The CMS HCPCS Level II file, January 2026 release (mappings/build/source/hcpcs2026_drugs.csv), deletes
four drug codes (action code D, terminated 2025-12-31) and adds no code for the same drug:
  J2995 "Injection, streptokinase, per 250,000 iu"
  J9098 "Injection, cytarabine liposome, 10 mg"
  J9165 "Injection, diethylstilbestrol diphosphate, 250 mg"   (a hormonal anti-neoplastic)
  Q2017 "Injection, teniposide, 50 mg"                         (an anti-neoplastic with a Q code)
A dose still given from stock on a 2026 date is billed with the not-otherwise-classified code: J3490
("Unclassified drugs") or J9999 ("Not otherwise classified, antineoplastic drugs"). CGS Medicare Part B,
"Not Otherwise Classified (NOC) Drugs: Clarification on Required Information" (2014, updated 2015):
J3490/J3590/J9999 claims carry the drug's name, the NDC and the exact dosage (2400 SV101-7 or item 19),
one unit a line; without them the claim is returned unprocessable. The drug stays what it is: an
anti-neoplastic billed under J9999 is still chemotherapy administration (96401, 96402 when hormonal).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.builders import (
    ICD10,
    NDC,
    RXNORM,
    admin,
    decide_one,
    dosage,
    dose,
    gap,
    gap_codes,
    line,
    rules,
    world,
)

ROOT = Path(__file__).resolve().parents[2]
CMS = ROOT / "mappings" / "build" / "source" / "hcpcs2026_drugs.csv"
IN_2025 = "2025-12-31T09:30:00-05:00"
IN_2026 = "2026-10-05T09:30:00-05:00"  # the clean world's visit (builders)
STREPTOKINASE = {"coding": [{"system": RXNORM, "code": "10106", "display": "streptokinase"}]}
TENIPOSIDE = {
    "coding": [
        {"system": RXNORM, "code": "313213", "display": "5 ML teniposide 10 MG/ML Injection"}
    ]
}
CYTARABINE_LIPOSOME = {
    "coding": [
        {
            "system": RXNORM,
            "code": "968807",
            "display": "5 ML cytarabine liposome 10 MG/ML Injection",
        }
    ]
}


def cms() -> dict[str, dict]:
    with CMS.open(newline="", encoding="utf-8") as fh:
        return {r["hcpcs"]: r for r in csv.DictReader(fh)}


def given(concept, amount, when, unit="mg", payer="commercial", route=None, resources=None, **kw):
    a = admin(
        medicationCodeableConcept=concept,
        dosage=dosage(dose=dose(amount, unit), **({"route": route} if route else {})),
        effectiveDateTime=when,
        **kw,
    )
    return decide_one(a, resources or world(payer=payer))


def with_ndc(concept, ndc="00002759701"):
    return {"coding": [*concept["coding"], {"system": NDC, "code": ndc}]}


def test_the_cms_file_deletes_them_and_adds_nothing_for_the_same_drug():
    file = cms()
    for code, words in (
        ("J2995", "streptokinase"),
        ("J9098", "cytarabine liposome"),
        ("J9165", "diethylstilbestrol"),
        ("Q2017", "teniposide"),
    ):
        assert (file[code]["action_code"], file[code]["terminated"]) == ("D", "20251231")
        same = [
            c
            for c, r in file.items()
            if words in r["long_description"].lower() and not r["terminated"]
        ]
        assert same == [], (code, same)
    assert file["J9999"]["long_description"] == "Not otherwise classified, antineoplastic drugs"
    assert not file["J9999"]["terminated"] and not file["J3490"]["terminated"]


def test_the_table_sends_them_to_the_noc_codes_from_the_day_after():
    changes = rules().code_changes
    assert {
        old: [(c.new, c.effective.isoformat()) for c in changes[old]]
        for old in ("J2995", "J9098", "J9165", "Q2017")
    } == {
        "J2995": [("J3490", "2026-01-01")],
        "J9098": [("J9999", "2026-01-01")],
        "J9165": [("J9999", "2026-01-01")],
        "Q2017": [("J9999", "2026-01-01")],
    }
    d = rules().drugs
    assert (d["J9999"].drug_class, d["J9999"].unit_status, d["J9999"].unit_amount) == (
        "antineoplastic",
        "noc",
        None,
    )


def test_streptokinase_in_2025_is_j2995_in_its_own_units():
    d = given(
        STREPTOKINASE, 250000, IN_2025, unit="[iU]"
    )  # outside the visit: only the code is looked at
    assert (d.drug, d.units, line(d, "drug").code) == ("J2995", 1, "J2995")


def test_streptokinase_in_2026_is_j3490_one_unit_with_its_name_dose_and_ndc():
    d = given(with_ndc(STREPTOKINASE), 250000, IN_2026, unit="[iU]")
    assert d.outcome == "claim", gap_codes(d)
    drug = line(d, "drug")
    assert (drug.code, drug.quantity, drug.ndc) == ("J3490", 1, "00002759701")
    assert drug.text == "streptokinase 250000 [iU]"  # the note CGS asks for: name and exact dose
    assert d.drug == "J3490" and d.units == 1


def test_streptokinase_in_2026_without_an_ndc_is_held_for_it():
    d = given(STREPTOKINASE, 250000, IN_2026, unit="[iU]")
    assert (d.outcome, line(d, "drug").code) == ("held", "J3490")
    assert "J3490 is a not-otherwise-classified code" in gap(d, "missing-ndc").message


@pytest.mark.parametrize(
    "concept,amount,old", [(TENIPOSIDE, 100, "Q2017"), (CYTARABINE_LIPOSOME, 50, "J9098")]
)
def test_an_anti_neoplastic_stays_chemotherapy_administration_under_j9999(concept, amount, old):
    before, after = given(concept, amount, IN_2025), given(concept, amount, IN_2026)
    for d in (before, after):
        assert (d.outcome, d.procedure) == ("not-96372", "96401"), gap_codes(d)
        assert "antineoplastic" in gap_codes(d)
    assert before.drug == old and after.drug == "J9999"


def test_diethylstilbestrol_under_j9999_keeps_the_hormonal_rule():
    # CPT: a hormonal anti-neoplastic SC/IM is 96402; the product's class decides, not the NOC code's
    des = {
        "coding": [
            {"system": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "code": "J9165"}
        ]
    }
    d = given(des, 250, IN_2026, reasonCode=[{"coding": [{"system": ICD10, "code": "C61"}]}])
    assert (d.outcome, d.procedure, d.drug) == ("not-96372", "96402", "J9999"), gap_codes(d)


def test_teniposide_was_never_a_96372_even_before_it_was_deleted():
    # Q2017 is outside J9000-J9999: the curated class says anti-neoplastic (it was "standard")
    d = given(TENIPOSIDE, 100, "2024-06-03T09:30:00-05:00")
    assert (d.outcome, d.procedure, d.drug) == ("not-96372", "96401", "Q2017")


@pytest.mark.parametrize(
    "code,amount",
    [("Q5107", 100), ("Q5112", 100), ("Q5119", 100), ("J0894", 20), ("J0594", 10), ("Q2050", 20)],
)
def test_anti_neoplastics_outside_j9_are_chemotherapy_administration(code, amount):
    hcpcs = {
        "coding": [
            {"system": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "code": code}
        ]
    }
    d = given(hcpcs, amount, IN_2026)
    assert (d.outcome, d.procedure) == ("not-96372", "96401"), gap_codes(d)


def test_a_noc_code_without_the_noc_status_is_refused_with_file_and_row(tmp_path):
    import shutil

    from fhir_injection import MappingError, load_rules

    target = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", target)
    path = target / "drugs.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    row = next(i for i, text in enumerate(lines) if text.startswith("J9999,"))
    lines[row] = lines[row].replace(
        ",antineoplastic,no,no,,noc,", ",antineoplastic,no,no,,per-item,"
    )
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(MappingError) as info:
        load_rules(target)
    assert info.value.file == "drugs.csv" and "J9999" in str(info.value)
