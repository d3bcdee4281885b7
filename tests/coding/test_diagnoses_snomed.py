"""Diagnoses coded in SNOMED CT: the diagnosis groups list SNOMED CT members of VSAC value sets
(mappings/diagnosis_groups.csv), a sourced table bills some as ICD-10-CM (mappings/snomed_icd10.csv),
and the rest is the gap diagnosis-not-icd10, apart from missing-diagnosis (nothing coded at all).

Synthea writes diagnoses in SNOMED CT only: its ESRD patients' epoetin is given for 46177005
"End-stage renal disease (disorder)" (fixtures/synthea/bulk), a member of VSAC "End Stage Renal
Disease" (OID 2.16.840.1.113883.3.526.3.353) whose only ICD-10-CM member is N18.6.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from fhir_injection.decision.diagnosis_codes import diagnosis_groups_of, diagnosis_rule_holds
from fhir_injection.decision.model import Coding
from tests.builders import (
    ICD10,
    RXNORM,
    SNOMED,
    admin,
    decide_one,
    dosage,
    dose,
    gap,
    gap_codes,
    med,
    refused_row,
    replace_resource,
    rules,
    world,
)

SYNTHEA = Path(__file__).resolve().parents[2] / "fixtures" / "synthea" / "bulk"


def _ndjson(name):
    with gzip.open(SYNTHEA / f"{name}.ndjson.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def synthea_esrd():
    """A Synthea epoetin administration whose encounter's reason is SNOMED CT 46177005, with its
    encounter and the patient's Conditions, as Synthea wrote them."""
    encounters = {e["id"]: e for e in _ndjson("Encounter")}
    for a in _ndjson("MedicationAdministration"):
        if "Epoetin" not in json.dumps(a.get("medicationCodeableConcept")):
            continue
        enc = encounters[a["context"]["reference"].split("/")[1]]
        codes = [c["code"] for r in enc.get("reasonCode", []) for c in r["coding"]]
        if "46177005" in codes:
            patient = a["subject"]["reference"]
            conditions = [c for c in _ndjson("Condition") if c["subject"]["reference"] == patient]
            return a, [enc, *conditions]
    raise AssertionError("no Synthea ESRD epoetin administration")


def test_synthea_esrd_snomed_falls_in_the_esrd_group_and_bills_n18_6(synthea_esrd):
    administration, resources = synthea_esrd
    d = decide_one(administration, resources)
    # the administration's own reason, Synthea's 271737000 Anemia (Synthea's map: D64.9, reviewed),
    # with the encounter's 46177005 ESRD (VSAC: N18.6) is coded D63.1 (combination_codes.csv,
    # Official Guidelines I.A.15 "With"), after N18.6 by its "code first" note
    assert [c.code for c in d.diagnoses] == ["N18.6", "D63.1"]
    esrd = Coding(SNOMED, "46177005", "End-stage renal disease (disorder)")
    assert diagnosis_groups_of(esrd, rules()) == ["esrd-dialysis"]
    # ESRD alone is not "on dialysis" (group 2: Z99.2), so J0885 stays
    assert not diagnosis_rule_holds([esrd], rules().diagnosis_rules["esrd-dialysis"])
    assert d.drug == "J0885"
    assert "diagnosis-not-icd10" not in gap_codes(d)
    assert "missing-diagnosis" not in gap_codes(d)


def snomed_reason(*codes):
    return [{"coding": [{"system": SNOMED, "code": c, "display": f"d{c}"}]} for c in codes]


def epoetin(reason, payer="commercial"):
    a = admin(
        medicationCodeableConcept=med(
            RXNORM, "205923", "1 ML Epoetin Alfa 4000 UNT/ML Injection [Epogen]"
        ),
        dosage=dosage(dose=dose(4000, "[iU]")),
        reasonCode=reason,
    )
    return decide_one(a, replace_resource(world(payer=payer), "Encounter", diagnosis=None))


def test_esrd_on_dialysis_in_snomed_is_the_dialysis_code_and_n18_6_with_z99_2():
    # 236435004 "End stage renal failure on dialysis": both groups of the rule; N18.6 + Z99.2
    d = epoetin(snomed_reason("236435004"))
    assert d.drug == "Q4081"
    assert [c.code for c in d.diagnoses] == ["N18.6", "Z99.2"]


def test_an_icd10_coding_beside_the_snomed_one_is_used_as_written():
    reason = [
        {"coding": [{"system": SNOMED, "code": "46177005"}, {"system": ICD10, "code": "N18.6"}]}
    ]
    d = epoetin(reason)
    assert [c.code for c in d.diagnoses] == ["N18.6"]
    assert "diagnosis-not-icd10" not in gap_codes(d)


def test_snomed_only_unmapped_is_its_own_gap_naming_code_display_and_group():
    # 94503003 metastasis to prostate: in the VSAC Prostate Cancer value set (cancer group) but not
    # C61 (a secondary neoplasm), so the table has no row for it
    d = epoetin(snomed_reason("94503003"))
    assert "missing-diagnosis" not in gap_codes(d)
    g = gap(d, "diagnosis-not-icd10")
    assert g.severity == "error"
    assert "SNOMED CT 94503003 'd94503003'" in g.message and "diagnosis group cancer" in g.message
    assert d.outcome == "held"


def test_missing_diagnosis_says_what_is_there():
    d = epoetin(None)
    g = gap(d, "missing-diagnosis")
    assert g.message.startswith("The administration names no reason")
    other = epoetin(
        [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-9-cm", "code": "285.21"}]}]
    )
    assert (
        "coded only as http://hl7.org/fhir/sid/icd-9-cm|285.21"
        in gap(other, "missing-diagnosis").message
    )
    text = epoetin([{"text": "anemia"}])
    assert "has no coding (text only)" in gap(text, "missing-diagnosis").message


def test_prostate_cancer_in_snomed_makes_leuprolide_j9217():
    a = admin(
        medicationCodeableConcept=med(RXNORM, "42375", "leuprolide"),
        dosage=dosage(dose=dose(7.5, "mg")),
        reasonCode=snomed_reason("399068003"),
    )
    d = decide_one(a, replace_resource(world(payer="commercial"), "Encounter", diagnosis=None))
    assert (d.drug, d.procedure) == ("J9217", "96402")
    assert [c.code for c in d.diagnoses] == ["C61"]


def test_a_snomed_group_row_names_one_concept(tmp_path):
    err, row = refused_row(
        tmp_path,
        "diagnosis_groups.csv",
        "cancer,1,http://snomed.info/sct,399068003,399068003,",
        "cancer,1,http://snomed.info/sct,399068003,399068004,",
    )
    assert f"diagnosis_groups.csv, row {row}: a SNOMED CT row names one concept" in str(err)


def test_a_snomed_map_row_needs_an_icd10_code(tmp_path):
    err, row = refused_row(tmp_path, "snomed_icd10.csv", ",C61,", ",61C,")
    assert f"snomed_icd10.csv, row {row}: column 'icd10' is '61C', not an ICD-10-CM code" in str(
        err
    )
