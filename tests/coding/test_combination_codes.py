"""Combination codes (mappings/combination_codes.csv): ICD-10-CM Official Guidelines for Coding and
Reporting FY2026, section I.A.15 "With": "The classification presumes a causal relationship between
the two conditions linked by these terms in the Alphabetic Index or Tabular List ... unless the
documentation clearly states the conditions are unrelated." The Alphabetic Index lists "Anemia, in
(due to) (with), chronic kidney disease D63.1": anemia (D64.9) documented with CKD (N18.1-N18.9) is
coded N18.x, D63.1, the CKD stage first by D63.1's "code first" note (code_first.csv)."""

from __future__ import annotations

from tests.builders import (
    ICD10,
    RXNORM,
    SNOMED,
    admin,
    decide_one,
    dosage,
    dose,
    line,
    med,
    refused_row,
    replace_resource,
    world,
)


def _reason(system, *codes):
    return [{"coding": [{"system": system, "code": c}]} for c in codes]


def epoetin(reasons, encounter_code=None):
    """A Medicare epoetin alfa injection given for ``reasons``; the encounter's diagnosis is a
    Condition coded ``encounter_code`` (ICD-10-CM), or none."""
    a = admin(
        medicationCodeableConcept=med(
            RXNORM, "205923", "1 ML Epoetin Alfa 4000 UNT/ML Injection [Epogen]"
        ),
        dosage=dosage(dose=dose(4000, "[iU]")),
        reasonCode=reasons,
    )
    resources = world()
    if encounter_code is None:
        resources = replace_resource(resources, "Encounter", diagnosis=None)
    else:
        resources = replace_resource(
            resources, "Condition", code={"coding": [{"system": ICD10, "code": encounter_code}]}
        )
    return decide_one(a, resources)


def codes(d):
    return [c.code for c in d.diagnoses]


def how(d):
    return {fact: (kind, text) for fact, kind, text in d.basis}["diagnosis"]


def test_anemia_with_ckd_stage_4_is_coded_n18_4_then_d63_1():
    d = epoetin(_reason(ICD10, "D64.9", "N18.4"))
    assert codes(d) == ["N18.4", "D63.1"]
    kind, text = how(d)
    assert kind == "rule"
    assert "D64.9 with N18.4 coded D63.1" in text
    assert "Official Guidelines I.A.15 'With'" in text


def test_the_encounters_ckd_combines_with_the_administrations_anemia():
    d = epoetin(_reason(ICD10, "D64.9"), encounter_code="N18.3")
    assert codes(d) == ["N18.3", "D63.1"]


def test_anemia_alone_stays_d64_9():
    d = epoetin(_reason(ICD10, "D64.9"))
    assert codes(d) == ["D64.9"]
    assert how(d) == ("record", "ICD-10-CM D64.9 (reasons, encounter)")


def test_ckd_alone_is_unchanged():
    assert codes(epoetin(_reason(ICD10, "N18.4"))) == ["N18.4"]


def test_d63_1_already_coded_is_unchanged():
    d = epoetin(_reason(ICD10, "D63.1", "N18.4"))
    assert codes(d) == ["N18.4", "D63.1"]
    assert how(d)[0] == "record"


def test_anemia_with_d63_1_and_ckd_is_not_written_twice():
    assert codes(epoetin(_reason(ICD10, "D64.9", "D63.1", "N18.4"))) == ["N18.4", "D63.1"]


def test_a_code_outside_the_ckd_range_does_not_combine():
    # N18.30 is in N18.1-N18.9 (stage 3 unspecified, compared on the bounds' length), N19 is not
    assert codes(epoetin(_reason(ICD10, "D64.9", "N19"))) == ["D64.9", "N19"]
    assert codes(epoetin(_reason(ICD10, "D64.9", "N18.30"))) == ["N18.30", "D63.1"]


def test_synthea_snomed_anemia_and_ckd_4_bill_n18_4_then_d63_1():
    # Synthea writes 271737000 Anemia (snomed_icd10.csv: D64.9) and 431857002 CKD stage 4 (N18.4)
    d = epoetin(_reason(SNOMED, "271737000", "431857002"))
    assert codes(d) == ["N18.4", "D63.1"]
    kind, text = how(d)
    assert kind == "rule"
    assert "D64.9 with N18.4 coded D63.1" in text


def test_the_combined_anemia_still_takes_ec_on_a_medicare_esa_line():
    """CMS CR 5699: EC, an ESA given for anemia from neither chemotherapy nor radiotherapy."""
    d = epoetin(_reason(ICD10, "D64.9", "N18.4"))
    assert [m for m in line(d, "drug").modifiers if m in ("EA", "EB", "EC")] == ["EC"]


def test_a_broken_row_names_file_and_row(tmp_path):
    err, row = refused_row(
        tmp_path, "combination_codes.csv", "D64.9,N18.1,N18.9,", "D64.9,N18.9,N18.1,"
    )
    assert f"combination_codes.csv, row {row}: range N189-N181 must run upwards" in str(err)


def test_a_row_whose_code_is_not_icd10_names_file_and_row(tmp_path):
    err, row = refused_row(tmp_path, "combination_codes.csv", ",D63.1,", ",63D,")
    assert f"combination_codes.csv, row {row}: column 'becomes' is '63D'" in str(err)
