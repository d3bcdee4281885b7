"""Td/Tdap for a Medicare patient: Part B when given to treat an injury, Part D when routine.

Medicare Benefit Policy Manual (CMS Pub. 100-02) ch.15 §50.4.4.2: vaccinations are excluded "unless
they are directly related to the treatment of an injury or direct exposure ... such as ... tetanus
antitoxin or booster vaccine". Noridian JE, "Tetanus and Diphtheria Vaccinations Billing Guidelines":
the medically necessary example is 90715 + 90471, both with S61011A (laceration of the right thumb);
a routine tetanus booster has no Part B benefit (Part D). First Coast, "Avoid claim processing delays
when billing tetanus vaccinations", lists S81.812A, S01.511D, S41.141A, S61.452A and S80.812D as
injuries Medicare allows. mappings/: vaccines.csv medicare_part_b `injury`, diagnosis_groups.csv rule
`injury` (S00-S99, T07-T14, T20-T34), vaccine_admin.csv medicare/tetanus 90471.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fhir_injection import MappingError, load_rules
from tests.builders import (
    CVX,
    ICD10,
    SNOMED,
    admin,
    decide_one,
    gap,
    gap_codes,
    med,
    refused_row,
    replace_resource,
    world,
)

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


def reason(code, display=None):
    coding = {"system": ICD10, "code": code}
    if display:
        coding["display"] = display
    return [{"coding": [coding]}]


def tetanus(cvx="115", payer="medicare", **changes):
    return decide_one(admin(medicationCodeableConcept=med(CVX, cvx), **changes), world(payer=payer))


def test_the_noridian_example_tdap_for_a_thumb_laceration_is_part_b_90471_pointing_to_the_injury():
    d = tetanus(
        "115", reasonCode=reason("S61.011A", "Laceration w/o fb of right thumb w/o damage to nail")
    )
    assert (d.outcome, d.procedure) == ("not-96372", "90471")
    assert gap_codes(d) == ["vaccine"]
    message = gap(d, "vaccine").message
    assert (
        "product 90715): bill 90471" in message
        and "Medicare Part B" in message
        and "S61.011A" in message
    )
    assert d.diagnoses[0].code == "S61.011A"


def test_the_noridian_routine_booster_is_part_d_not_a_part_b_claim():
    d = tetanus("113")  # the encounter's only diagnosis is low back pain: no injury
    assert (d.outcome, d.procedure, d.claim_status) == ("not-billable", None, None)
    assert gap_codes(d) == ["vaccine", "vaccine-part-d"]
    assert "no injury diagnosis" in gap(d, "vaccine-part-d").message


@pytest.mark.parametrize("code", ["S81.812A", "S01.511D", "S41.141A", "S61.452A", "S80.812D"])
def test_the_first_coast_injuries_make_td_part_b(code):
    d = tetanus("113", reasonCode=reason(code))
    assert (d.outcome, d.procedure) == ("not-96372", "90471")
    assert d.diagnoses[0].code == code


def test_the_code_as_noridian_writes_it_without_the_dot():
    d = tetanus("115", reasonCode=reason("S61011A"))
    assert (d.outcome, d.procedure) == ("not-96372", "90471")


@pytest.mark.parametrize("cvx,product", [("115", "90715"), ("113", "90714"), ("09", "90714")])
def test_every_td_and_tdap_cvx_follows_the_injury_rule(cvx, product):
    assert tetanus(cvx).outcome == "not-billable"
    d = tetanus(cvx, reasonCode=reason("S91.331A"))  # puncture wound of the right foot
    assert (d.outcome, d.procedure) == ("not-96372", "90471")
    assert f"product {product}" in gap(d, "vaccine").message


@pytest.mark.parametrize(
    "code", ["T31.0", "T33.90XA", "T14.8XXA"]
)  # burns <10%, frostbite, unspecified region
def test_burns_frostbite_and_an_injury_of_unspecified_region_count(code):
    assert tetanus("113", reasonCode=reason(code)).procedure == "90471"


@pytest.mark.parametrize(
    "code,what",
    [
        (
            "W45.8XXA",
            "external cause only (foreign body through skin): a secondary code, not the injury",
        ),
        ("T40.1X1A", "poisoning: not a wound"),
        ("Z23", "encounter for immunization: routine"),
    ],
)
def test_no_injury_code_means_part_d(code, what):
    d = tetanus("115", reasonCode=reason(code))
    assert (d.outcome, gap_codes(d)) == ("not-billable", ["vaccine", "vaccine-part-d"]), what


def test_the_injury_on_the_encounter_is_pointed_to_before_the_administrations_own_z23():
    res = world()
    res.append(
        {
            "resourceType": "Condition",
            "id": "wound",
            "subject": {"reference": "Patient/p1"},
            "code": {
                "coding": [
                    {"system": ICD10, "code": "S61.452A", "display": "Open bite of left hand"}
                ]
            },
        }
    )
    res = replace_resource(
        res, "Encounter", diagnosis=[{"condition": {"reference": "Condition/wound"}, "rank": 1}]
    )
    d = decide_one(admin(medicationCodeableConcept=med(CVX, "113"), reasonCode=reason("Z23")), res)
    assert (d.outcome, d.procedure) == ("not-96372", "90471")
    assert [c.code for c in d.diagnoses] == ["S61.452A", "Z23"]


def test_an_injury_condition_coded_in_snomed_and_icd10_as_a_vendor_writes_it():
    # Epic/Oracle Problem-list shape: SNOMED CT first, the ICD-10-CM billing code second, on a
    # Condition the administration points to
    res = world()
    res.append(
        {
            "resourceType": "Condition",
            "id": "lac",
            "subject": {"reference": "Patient/p1"},
            "code": {
                "coding": [
                    {"system": SNOMED, "code": "312608009", "display": "Laceration - injury"},
                    {
                        "system": ICD10,
                        "code": "S81.812A",
                        "display": "Laceration w/o fb, left lower leg, init",
                    },
                ],
                "text": "Laceration of left lower leg",
            },
        }
    )
    d = decide_one(
        admin(
            medicationCodeableConcept=med(CVX, "115"),
            reasonReference=[{"reference": "Condition/lac"}],
        ),
        res,
    )
    assert (d.outcome, d.procedure, d.diagnoses[0].code) == ("not-96372", "90471", "S81.812A")


def test_a_td_named_only_by_its_brand_follows_the_rule_too():
    d = decide_one(
        admin(
            medicationCodeableConcept={"text": "Tenivac (Td) 0.5 mL IM"},
            reasonCode=reason("S61.011A"),
        )
    )
    assert (d.outcome, d.procedure) == ("not-96372", "90471")
    assert "CVX 113 (" in gap(d, "vaccine").message


@pytest.mark.parametrize("payer", ["commercial", "medicaid"])
def test_other_payers_are_unchanged_with_or_without_an_injury(payer):
    for changes in ({}, {"reasonCode": reason("S61.011A")}):
        d = tetanus("115", payer=payer, **changes)
        assert (d.outcome, d.procedure) == ("not-96372", "90471")
        assert "Medicare Part B" not in gap(d, "vaccine").message


def test_a_vaccine_without_the_injury_rule_stays_part_d_even_after_an_injury():
    d = tetanus("187", reasonCode=reason("S61.011A"))  # zoster
    assert (d.outcome, gap_codes(d)) == ("not-billable", ["vaccine", "vaccine-part-d"])


# --------------------------------------------------------------------------- broken rows


@pytest.mark.parametrize(
    "table,old,new,message",
    [
        (
            "vaccines.csv",
            ",tetanus,injury,tdvax,",
            ",tetanus,wound,tdvax,",
            "column 'medicare_part_b' is 'wound', expected one of",
        ),
        (
            "vaccines.csv",
            ",tetanus,injury,tdvax,",
            ",tetanus,Injury,tdvax,",
            "column 'medicare_part_b' is 'Injury'",
        ),
        (
            "vaccine_admin.csv",
            "medicare,tetanus,90471,",
            "medicare,tetanos,90471,",
            "column 'vaccine_group' is 'tetanos'",
        ),
        (
            "diagnosis_groups.csv",
            "injury,1,http://hl7.org/fhir/sid/icd-10-cm,T20,T34,",
            "injury,1,http://hl7.org/fhir/sid/icd-10-cm,T34,T20,",
            "must run upwards",
        ),
        (
            "diagnosis_groups.csv",
            "injury,1,http://hl7.org/fhir/sid/icd-10-cm,S00,S99,",
            "injury,1,http://hl7.org/fhir/sid/icd-10-cm,S00,S99.9,",
            "must run upwards between codes of one length",
        ),
    ],
)
def test_a_broken_row_is_reported_with_file_and_row(tmp_path, table, old, new, message):
    error, row = refused_row(tmp_path, table, old, new)
    assert (error.file, error.row) == (table, row) and message in str(error)


def test_a_vaccine_naming_a_rule_nobody_defines_fails_when_the_rule_is_removed(tmp_path):
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    path = target / "diagnosis_groups.csv"
    path.write_text(
        "".join(
            ln for ln in path.read_text().splitlines(keepends=True) if not ln.startswith("injury,")
        )
    )
    with pytest.raises(MappingError) as err:
        load_rules(target)
    assert err.value.file == "vaccines.csv" and "column 'medicare_part_b' is 'injury'" in str(
        err.value
    )


# --------------------------------------------------------------------------- the demo clinic


def test_the_demo_td_after_an_injury_is_part_b_and_the_routine_td_part_d():
    from tests.coding.test_vaccines_covid import demo_decisions

    [injury] = demo_decisions("Td after an injury")
    assert (injury.payer_type, injury.outcome, injury.procedure) == (
        "medicare",
        "not-96372",
        "90471",
    )
    assert [c.code for c in injury.diagnoses] == ["S61.011A", "Z23"]
    [routine] = demo_decisions("routine Td, Medicare")
    assert (routine.payer_type, routine.outcome, gap_codes(routine)) == (
        "medicare",
        "not-billable",
        ["vaccine", "vaccine-part-d"],
    )


def test_the_codes_of_a_rule_only_when_every_group_holds_in_the_system_it_names():
    from fhir_injection.decision.diagnosis_codes import rule_diagnoses
    from fhir_injection.decision.model import Coding
    from tests.builders import rules

    esrd = rules().diagnosis_rules["esrd-dialysis"]
    n186, z992, i10 = (Coding(ICD10, c, None) for c in ("N18.6", "Z99.2", "I10"))
    assert rule_diagnoses([n186, i10], esrd) == []  # Z99.2's group has none
    assert rule_diagnoses([i10, z992, n186], esrd) == [
        z992,
        n186,
    ]  # in the record's order, I10 left out
    injury = rules().diagnosis_rules["injury"]
    assert rule_diagnoses([Coding(SNOMED, "S61.011A", None)], injury) == []
    lower = Coding(ICD10, "s61.011a", None)
    assert rule_diagnoses(
        [lower, Coding(ICD10, "T36.0X1A", None), Coding(ICD10, "T34.99XA", None)], injury
    ) == [lower, Coding(ICD10, "T34.99XA", None)]


def test_the_rules_listing_names_the_vaccines_part_b_covers_by_diagnosis(capsys):
    from fhir_injection.cli import main

    assert main(["rules"]) == 0
    out = capsys.readouterr().out
    assert "; Medicare Part B by diagnosis (injury): 09, 113, 115\n" in out
    assert (
        "codes chosen by diagnosis: 8 (cancer, esrd-dialysis);" in out
    )  # injury chooses no drug code
