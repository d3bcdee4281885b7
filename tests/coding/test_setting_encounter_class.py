"""Setting and place of service from every form the encounter takes: Encounter.class
in HL7 v3 ActCode or HL7 v2 0004, else Encounter.type (CPT E/M, SNOMED CT encounter types, v2 0004
codings as Oracle Health sends, whole type text as Epic sends); a class that is absent or unknown with
no usable type is the error gap unknown-setting, never the office.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fhir_injection import Config, MappingError, load_rules
from fhir_injection.decision.clinical import setting_of
from fhir_injection.sinks.claims import build_claim
from tests.builders import (
    ACT,
    CPT,
    SNOMED,
    admin,
    decide_one,
    gap,
    gap_codes,
    line,
    replace_resource,
    validate_claim,
    world,
)

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
V2_0004 = "http://terminology.hl7.org/CodeSystem/v2-0004"
EPIC_CLASS = "urn:oid:1.2.840.114350.1.72.1.7.7.10.696784.13260"
DAR = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
ABSENT = {"extension": [{"url": DAR, "valueCode": "unknown"}]}


def encounter(enc_class=None, type_=None, place=False):
    """The clean world with Encounter.class set to ``enc_class`` (None: no class element) and
    Encounter.type to ``type_`` (a list of CodeableConcepts, None: none); without its office
    Location unless ``place`` (so the class and type alone say what they say)."""
    changes = {"class": enc_class, "type": type_}
    if not place:
        changes["location"] = None
    return replace_resource(world(), "Encounter", **changes)


def v2(code):
    return {"system": V2_0004, "code": code}


def type_code(system, code, display=None):
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return [{"coding": [coding]}]


# ----------------------------------------------------------------------------- HL7 v2 0004


@pytest.mark.parametrize("code", ["O", "P", "R"])
def test_v2_outpatient_classes_say_no_admission_not_where(code):
    """Read as v3 AMB: an office (POS 11) or a hospital outpatient department (19/22); the place or
    the practice's profile says which (CMS POS code set; IOM 100-04 ch.12 §20.4.2)."""
    d = decide_one(admin(), encounter(v2(code)))
    assert (d.outcome, d.setting, d.place_of_service) == ("held", None, None)
    assert "unknown-setting" in gap_codes(d)
    d = decide_one(admin(), encounter(v2(code)), Config(default_place_of_service="11"))
    assert (d.outcome, d.setting, d.place_of_service) == ("claim", "office", "11")
    d = decide_one(admin(), encounter(v2(code), place=True))  # the Location is an office
    assert (d.outcome, d.setting, d.place_of_service) == ("claim", "office", "11")


def test_v2_inpatient_is_inside_the_drg_with_no_administration_code():
    d = decide_one(admin(), encounter(v2("I")))
    assert (d.outcome, d.procedure, d.place_of_service) == ("not-billable", None, "21")
    assert "DRG" in gap(d, "facility-setting").message
    assert d.lines == () and d.claim_status is None
    assert d.service_date == "2026-10-05"  # the day it happened, billed or not


def test_v2_emergency_is_billed_by_the_facility():
    d = decide_one(admin(), encounter(v2("E")))
    assert (d.outcome, d.procedure, d.place_of_service) == ("not-billable", "96372", "23")
    assert gap(d, "facility-setting").severity == "info"


@pytest.mark.parametrize("code", ["B", "C", "N", "U"])
def test_v2_classes_that_do_not_say_where_need_the_type(code):
    assert "unknown-setting" in gap_codes(decide_one(admin(), encounter(v2(code))))
    d = decide_one(admin(), encounter(v2(code), [{"text": "Office Visit"}]))
    assert (d.setting, d.place_of_service) == ("office", "11")


# ----------------------------------------------------------------------------- no usable class


def test_data_absent_class_is_an_error_gap_not_the_office():
    d = decide_one(admin(), encounter(ABSENT))
    g = gap(d, "unknown-setting")
    assert g.severity == "error" and "data-absent-reason 'unknown'" in g.message
    assert d.outcome == "held"
    assert d.place_of_service is None and d.setting is None
    assert line(d, "administration").unit_price is None  # no office fee guessed either
    assert d.claim_status == "draft"


def test_held_claim_without_place_of_service_is_valid_fhir():
    d = decide_one(admin(), encounter(ABSENT))
    claim = build_claim(d, Config(), "2026-10-06T12:00:00Z")
    validate_claim(claim)
    assert all("locationCodeableConcept" not in item for item in claim["item"])


def test_missing_class_is_said_so():
    assert (
        "Encounter.class is missing"
        in gap(decide_one(admin(), encounter(None)), "unknown-setting").message
    )


def test_vendor_class_with_no_type_names_the_code_it_could_not_read():
    d = decide_one(
        admin(), encounter({"system": EPIC_CLASS, "code": "13", "display": "Support OP Encounter"})
    )
    assert f"{EPIC_CLASS}|13" in gap(d, "unknown-setting").message
    assert d.outcome == "held"


# ----------------------------------------------------------------------------- Encounter.type


@pytest.mark.parametrize(
    "type_",
    [
        [
            {
                "coding": [
                    {
                        "system": "urn:oid:1.2.840.114350.1.13.99999.1.7.10.698084.30",
                        "code": "101",
                        "display": "Office Visit",
                    }
                ],
                "text": "Office Visit",
            }
        ],  # Epic
        [{"text": "office visit"}],
        [{"coding": [{"system": "urn:oid:9.9", "code": "x", "display": "OFFICE VISIT"}]}],
    ],
    ids=["epic", "text", "display"],
)
def test_vendor_class_falls_back_to_an_office_visit_type(type_):
    d = decide_one(admin(), encounter({"system": EPIC_CLASS, "code": "13"}, type_))
    assert (d.outcome, d.setting, d.place_of_service) == ("claim", "office", "11")
    assert "unknown-setting" not in gap_codes(d)


# "Office or other outpatient visit" (99202-99215) is the kind of visit, not where: no place
@pytest.mark.parametrize(
    "code,setting,pos",
    [
        ("99202", None, None),
        ("99205", None, None),
        ("99211", None, None),
        ("99215", None, None),
        ("99283", "facility", "23"),
        ("99222", "inpatient", "21"),
        ("99347", "home", "12"),
    ],
)
def test_cpt_em_code_in_type_names_the_setting(code, setting, pos):
    d = decide_one(admin(), encounter(ABSENT, type_code(CPT, code)))
    assert (d.setting, d.place_of_service) == (setting, pos)


def test_cpt_codes_outside_the_ranges_say_nothing():
    for code in ("99201", "99206", "96372", "9921A"):
        assert "unknown-setting" in gap_codes(
            decide_one(admin(), encounter(ABSENT, type_code(CPT, code)))
        )


def test_office_em_in_type_still_raises_the_same_day_em_rule():
    d = decide_one(admin(), encounter(ABSENT, type_code(CPT, "99213"), place=True))
    assert d.place_of_service == "11" and "em-same-day" in gap_codes(d)


@pytest.mark.parametrize(
    "code,setting,pos",
    [
        ("185349003", None, None),
        ("185345009", None, None),
        ("50849002", "facility", "23"),
        ("183452005", "inpatient", "21"),
        ("32485007", "inpatient", "21"),
    ],
)
def test_snomed_encounter_types_name_the_setting(code, setting, pos):
    d = decide_one(admin(), encounter(ABSENT, type_code(SNOMED, code)))
    assert (d.setting, d.place_of_service) == (setting, pos)


def test_generic_patient_encounter_procedure_says_nothing_about_where():
    # 308335008 is the root of the US Core encounter types: any encounter at all
    d = decide_one(
        admin(), encounter(ABSENT, type_code(SNOMED, "308335008", "Patient encounter procedure"))
    )
    assert "unknown-setting" in gap_codes(d)


def test_oracle_sends_v2_0004_in_encounter_type():
    d = decide_one(
        admin(),
        encounter(
            {"system": "https://fhir.cerner.com/x/codeSet/71", "code": "309308"},
            [
                {
                    "coding": [
                        {"system": "https://fhir.cerner.com/x/codeSet/71", "code": "9"},
                        v2("I"),
                    ]
                }
            ],
        ),
    )
    assert (d.outcome, d.setting) == ("not-billable", "inpatient")


def test_a_known_class_wins_over_the_type():
    d = decide_one(admin(), encounter({"system": ACT, "code": "EMER"}, [{"text": "Office Visit"}]))
    assert d.place_of_service == "23" and d.outcome == "not-billable"


def test_a_later_type_can_name_the_setting_when_the_first_does_not():
    types = [{"text": "Follow-up of something"}, {"text": "Office Visit"}]
    assert decide_one(admin(), encounter(ABSENT, types)).place_of_service == "11"


def test_setting_of_reads_wrong_types_without_raising(rules):
    for enc in (
        {"class": "AMB"},
        {"class": {"system": 1, "code": None}},
        {"type": "Office"},
        {"type": [None, {"coding": "x"}]},
        {"class": {"extension": "x"}},
    ):
        found, why = setting_of(enc, rules)
        assert found is None and why


# ----------------------------------------------------------------------------- the table


@pytest.fixture
def mappings(tmp_path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    return target


@pytest.mark.parametrize(
    "name,row,message",
    [
        (
            "encounter_types.csv",
            "code,http://www.ama-assn.org/go/cpt,99299,99290,x,office,11,src",
            "low to high",
        ),
        ("encounter_types.csv", "code,http://snomed.info/sct,abc,def,x,office,11,src", "numeric"),
        ("encounter_types.csv", "guess,http://snomed.info/sct,1,,x,office,11,src", "kind"),
        ("encounter_types.csv", "text,http://snomed.info/sct,Clinic,,x,office,11,src", "no system"),
        ("encounter_types.csv", "text,,OFFICE  VISIT,,x,office,11,src", "duplicate"),
        (
            "encounter_types.csv",
            "code,http://snomed.info/sct,185349003,,x,office,11,src",
            "duplicate",
        ),
        ("encounter_types.csv", "code,http://snomed.info/sct,1,,x,clinic,11,src", "setting"),
        (
            "encounter_types.csv",
            "code,http://snomed.info/sct,1,,x,office,1,src",
            "place_of_service",
        ),
        ("encounter_types.csv", "code,http://snomed.info/sct,1,,x,office,11,", "source"),
        (
            "settings.csv",
            "http://terminology.hl7.org/CodeSystem/v2-0004,O,again,office,11,src",
            "duplicate",
        ),
    ],
)
def test_broken_setting_row_names_file_and_row(mappings, name, row, message):
    path = mappings / name
    text = path.read_text(encoding="utf-8")
    path.write_text(text + row + "\n", encoding="utf-8")
    with pytest.raises(MappingError) as info:
        load_rules(mappings)
    assert (info.value.file, info.value.row) == (name, len(text.splitlines()) + 1)
    assert message in str(info.value)


def test_every_encounter_type_row_has_a_source_and_a_two_digit_place_of_service(rules):
    found = list(rules.encounter_types.values()) + list(rules.encounter_type_texts.values())
    found += [s for ranges in rules.encounter_type_ranges.values() for _, _, s in ranges]
    assert found and all(
        len(s.place_of_service) == 2 or (s.setting, s.place_of_service) == ("unplaced", "")
        for s in found
    )
