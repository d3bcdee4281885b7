"""Drug codes chosen by diagnosis: mappings/diagnosis_groups.csv, drug_by_diagnosis.csv.

Leuprolide given for cancer (ICD-10-CM C00-C96 malignant, D00-D09 in situ) is J9217 with 96402
(hormonal anti-neoplastic); for endometriosis or fibroids it is J1950 (per 3.75 mg) with 96372
(96372.md; Vitalware "Leuprolide Acetate Administration"). Epoetin alfa for ESRD on dialysis (N18.6
with Z99.2) is J0886 (1000 units) until CMS ended it on 2015-12-31, Q4081 (100 units) after
(mappings/code_changes.csv); otherwise J0885 (CMS HCPCS descriptors).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fhir_injection import load_rules
from fhir_injection.decision.diagnosis_codes import diagnosis_rule_holds
from fhir_injection.decision.model import Coding
from tests.builders import (
    ICD10,
    RXNORM,
    admin,
    decide_one,
    dosage,
    dose,
    gap_codes,
    line,
    med,
    refused_row,
    replace_resource,
    world,
)

HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


def reasons(*codes):
    return [{"coding": [{"system": ICD10, "code": c}]} for c in codes]


def leuprolide(amount, *codes):
    a = admin(
        medicationCodeableConcept=med(RXNORM, "42375", "leuprolide"),
        dosage=dosage(dose=dose(amount, "mg")),
        reasonCode=reasons(*codes),
    )
    return decide_one(a, replace_resource(world(payer="commercial"), "Encounter", diagnosis=None))


@pytest.mark.parametrize("code", ["C61", "C50.911", "D05.11", "D09.0", "C96.9", "C7A.00"])
def test_leuprolide_for_cancer_is_j9217_and_96402(code):
    d = leuprolide(7.5, code)
    assert (d.outcome, d.procedure, d.drug, d.units) == ("not-96372", "96402", "J9217", 1)
    assert "antineoplastic" in gap_codes(d)


@pytest.mark.parametrize("code", ["N80.0", "D25.9", "D10.0", "Z31.83", "B99.9"])
def test_leuprolide_for_anything_else_is_j1950_and_96372(code):
    d = leuprolide(3.75, code)
    assert (d.outcome, d.procedure, d.drug, d.units) == ("claim", "96372", "J1950", 1)
    assert line(d, "drug").code == "J1950"


def test_leuprolide_11_25_mg_for_fibroids_is_three_units_of_j1950():
    assert leuprolide(11.25, "D25.9").units == 3


def test_the_product_code_stays_without_any_diagnosis():
    d = leuprolide(7.5)
    assert (d.drug, d.procedure, d.diagnoses) == ("J9217", "96402", ())


def test_a_cancer_diagnosis_among_others_decides():
    assert leuprolide(7.5, "N80.0", "C61").procedure == "96402"


def epoetin(*codes):
    a = admin(
        medicationCodeableConcept=med(HCPCS, "J0885"),
        dosage=dosage(dose=dose(4000, "[iU]")),
        reasonCode=reasons(*codes),
    )
    return decide_one(a, replace_resource(world(payer="commercial"), "Encounter", diagnosis=None))


def test_epoetin_for_esrd_on_dialysis_is_q4081_per_100_units_in_2026():
    # the diagnosis pair picks J0886; on a 2026 service date its successor Q4081 bills 4000 units
    d = epoetin("N18.6", "Z99.2")
    assert (d.drug, d.units, d.procedure, d.outcome) == ("Q4081", 40, "96372", "claim")


@pytest.mark.parametrize("codes", [("N18.6",), ("Z99.2",), ("N18.4", "D63.1"), ("D63.1",)])
def test_epoetin_otherwise_is_j0885(codes):
    assert epoetin(*codes).drug == "J0885"


def test_a_rule_holds_when_every_group_has_a_code_in_range():
    rules = load_rules()
    esrd = rules.diagnosis_rules["esrd-dialysis"]
    assert diagnosis_rule_holds([Coding(ICD10, "Z99.2"), Coding(ICD10, "n186")], esrd)
    assert not diagnosis_rule_holds([Coding(ICD10, "N18.6")], esrd)
    assert not diagnosis_rule_holds(
        [Coding("http://snomed.info/sct", "N18.6"), Coding(ICD10, "Z99.2")], esrd
    )
    cancer = rules.diagnosis_rules["cancer"]
    assert diagnosis_rule_holds([Coding(ICD10, "C00.0")], cancer)
    assert not diagnosis_rule_holds([Coding(ICD10, "C97")], cancer)
    assert not diagnosis_rule_holds([Coding(ICD10, "D10.0")], cancer)
    assert not diagnosis_rule_holds([Coding(ICD10, None)], cancer)


@pytest.mark.parametrize(
    "table,old,new,message",
    [
        (
            "drug_by_diagnosis.csv",
            "cancer,J9217,J1950,",
            "cancer,J9217,J0000,",
            "hcpcs 'J0000' is not in drugs.csv",  # (J9999 is a real code: not otherwise classified antineoplastics)
        ),
        (
            "drug_by_diagnosis.csv",
            "cancer,J9217,J1950,",
            "tumour,J9217,J1950,",
            "column 'rule' is 'tumour'",
        ),
        (
            "drug_by_diagnosis.csv",
            "esrd-dialysis,J0886,J0885,",
            "esrd-dialysis,J0886,J1950,",
            "already in a pair",
        ),
        (
            "diagnosis_groups.csv",
            "cancer,1,http://hl7.org/fhir/sid/icd-10-cm,C00,C96,",
            "cancer,1,http://hl7.org/fhir/sid/icd-10-cm,C96,C00,",
            "must run upwards",
        ),
        (
            "diagnosis_groups.csv",
            "cancer,1,http://hl7.org/fhir/sid/icd-10-cm,C00,C96,",
            "cancer,one,http://hl7.org/fhir/sid/icd-10-cm,C00,C96,",
            "column 'group' is 'one'",
        ),
    ],
)
def test_a_broken_row_is_reported_with_file_and_row(tmp_path, table, old, new, message):
    error, row = refused_row(tmp_path, table, old, new)
    assert (error.file, error.row) == (table, row) and message in str(error)
