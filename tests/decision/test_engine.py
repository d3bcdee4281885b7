"""The 96372 decision, one rule per test: a clean world, one change, one consequence."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from fhir_injection import Config, Context, decide, decide_all
from fhir_injection.decision.case import Draft, Gaps
from fhir_injection.decision.engine import _finish, _sort_key, decide_deleted
from fhir_injection.decision.model import Decision
from tests.builders import (
    ACT,
    CPT,
    CVX,
    ICD10,
    NDC,
    RXNORM,
    SNOMED,
    SOPT,
    V2_ROUTE,
    V2_SITE,
    V3_ROUTE,
    admin,
    contained_admin,
    decide_many,
    decide_one,
    dosage,
    dose,
    gap,
    gap_codes,
    line,
    med,
    replace_resource,
    route,
    rules,
    world,
)

HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
GAPS_FILE = Path(__file__).resolve().parents[2] / "mappings" / "gaps.codesystem.json"


# ----------------------------------------------------------------------------- the clean case


def test_clean_office_injection_bills_96372_and_the_drug():
    d = decide_one()
    assert d.outcome == "claim"
    assert d.procedure == "96372"
    assert d.gaps == ()
    assert d.claim_status == "active"
    assert [(ln.kind, ln.code, ln.modifiers, ln.quantity) for ln in d.lines] == [
        ("administration", "96372", (), 1),
        ("drug", "J1885", ("JZ",), 2),  # 30 mg / 15 mg; Medicare single-dose -> JZ
    ]
    assert line(d, "drug").ndc == "00409379501"
    assert d.payer_type == "medicare"
    assert d.place_of_service == "11"
    assert d.service_date == "2026-10-05"
    assert d.patient == "Patient/p1"
    assert d.encounter == "Encounter/e-p1"
    assert d.coverage == "Coverage/cov-p1"
    assert d.provider == "Organization/clinic"
    assert d.performer == "Practitioner/nurse"


def test_decide_is_pure_and_repeatable():
    a, w = admin(), world()
    a_before, w_before = copy.deepcopy(a), copy.deepcopy(w)
    first = decide(a, Context(w), rules())
    second = decide(a, Context(w), rules())
    assert first == second
    assert a == a_before and w == w_before


# ----------------------------------------------------------------------------- routes


@pytest.mark.parametrize(
    "system,code",
    [
        (SNOMED, "34206005"),
        (SNOMED, "78421000"),
        (V3_ROUTE, "IM"),
        (V3_ROUTE, "IMD"),
        (V3_ROUTE, "IMZ"),
        (V3_ROUTE, "SQ"),
        (V2_ROUTE, "IM"),
        (V2_ROUTE, "SC"),
    ],
)
def test_sc_and_im_routes_in_every_code_system_give_96372(system, code):
    d = decide_one(admin(dosage=dosage(route=route(system, code))))
    assert (d.outcome, d.procedure) == ("claim", "96372")
    assert "missing-route" not in gap_codes(d)


@pytest.mark.parametrize(
    "system,code,procedure,outcome",
    [
        (SNOMED, "47625008", "96374", "not-96372"),  # intravenous -> IV push
        (V3_ROUTE, "IVPUSH", "96374", "not-96372"),
        (V3_ROUTE, "IVINJ", "96374", "not-96372"),
        (V2_ROUTE, "IV", "96374", "not-96372"),
        (SNOMED, "58100008", "96373", "not-96372"),  # intra-arterial
        (V3_ROUTE, "IAINJ", "96373", "not-96372"),
        (V2_ROUTE, "IA", "96373", "not-96372"),
        (SNOMED, "372464004", None, "not-96372"),  # intradermal: not 96372, no code suggested
        (V3_ROUTE, "IDINJ", None, "not-96372"),
        (V2_ROUTE, "ID", None, "not-96372"),
        (SNOMED, "12130007", "20610", "not-96372"),  # intra-articular
        (V2_ROUTE, "IB", "20610", "not-96372"),
        (SNOMED, "372466002", "11900", "not-96372"),  # intralesional
        (V3_ROUTE, "IVITINJ", "67028", "not-96372"),  # intravitreal
        (V3_ROUTE, "SCINJ", None, "not-96372"),  # subconjunctival is NOT subcutaneous
        (SNOMED, "26643006", None, "not-billable"),  # oral
    ],
)
def test_other_routes_are_not_96372(system, code, procedure, outcome):
    d = decide_one(admin(dosage=dosage(route=route(system, code))))
    assert (d.outcome, d.procedure) == (outcome, procedure)
    assert gap(d, "route-not-sc-im").severity == "info"
    assert d.claim_status is None
    if procedure is None:  # nothing billed, or no code to bill it under: no line
        assert d.lines == ()
    else:  # the drug line alone, with its JZ (a Medicare single-dose ketorolac vial, all of it given)
        assert [(x.kind, x.code, x.modifiers) for x in d.lines] == [("drug", "J1885", ("JZ",))]


@pytest.mark.parametrize(
    "route_value",
    [
        {
            "text": "Injection"
        },  # text only and not on the reviewed list (mappings/route_text.csv): never guessed
        {"coding": [{"system": "http://example.org/routes", "code": "IM"}]},  # unknown system
        None,  # no route at all
    ],
)
def test_route_text_only_or_unknown_is_a_missing_route_gap_not_a_guess(route_value):
    d = decide_one(admin(dosage=dosage(route=route_value)))
    assert gap(d, "missing-route").severity == "error"
    assert d.outcome == "held"
    assert d.claim_status == "draft"


def test_text_only_route_message_says_it_is_not_guessed():
    d = decide_one(admin(dosage=dosage(route={"text": "shot in arm"})))
    assert (
        "text only" in gap(d, "missing-route").message
        and "not guessed" in gap(d, "missing-route").message
    )


def test_first_known_route_coding_wins_over_unknown_ones():
    r = {
        "coding": [
            {"system": "http://example.org/routes", "code": "zz"},
            {"system": V2_ROUTE, "code": "SC"},
        ]
    }
    d = decide_one(admin(dosage=dosage(route=r)))
    assert (d.outcome, d.procedure) == ("claim", "96372")


# ----------------------------------------------------------------------------- sites


def test_v2_site_is_carried_to_body_site():
    d = decide_one()
    assert [(c.system, c.code) for c in d.body_site] == [(V2_SITE, "LD")]
    assert d.body_site_text == "Left deltoid"


def test_snomed_site_with_laterality_in_the_code():
    site = {"coding": [{"system": SNOMED, "code": "368209003"}]}
    d = decide_one(admin(dosage=dosage(site=site)))
    assert [(c.system, c.code) for c in d.body_site] == [(SNOMED, "368209003")]
    assert d.body_site_text == "Right upper arm structure"
    assert "missing-site" not in gap_codes(d)


def test_snomed_site_with_a_laterality_qualifier_coding():
    site = {
        "coding": [{"system": SNOMED, "code": "35259002"}, {"system": SNOMED, "code": "24028007"}]
    }
    d = decide_one(admin(dosage=dosage(site=site)))
    assert {c.code for c in d.body_site} == {"35259002", "24028007"}
    assert d.body_site_text == "Deltoid muscle (right)"


@pytest.mark.parametrize("site", [None, {"text": "left arm"}])
def test_missing_or_text_only_site_is_a_warning_that_still_bills(site):
    d = decide_one(admin(dosage=dosage(site=site)))
    assert gap(d, "missing-site").severity == "warning"
    assert d.outcome == "claim"
    assert d.claim_status == "active"


def test_missing_site_severity_is_configurable():
    d = decide_one(
        admin(dosage=dosage(site=None)), config=Config(severity={"missing-site": "error"})
    )
    assert gap(d, "missing-site").severity == "error"
    assert d.outcome == "held"


# ----------------------------------------------------------------------------- vaccines


@pytest.mark.parametrize(
    "payer,cvx,code",
    [
        ("medicare", "140", "G0008"),  # influenza
        ("medicare", "150", "G0008"),
        ("medicare", "33", "G0009"),  # pneumococcal
        ("medicare", "133", "G0009"),
        ("medicare", "43", "G0010"),  # hepatitis B
        ("medicare", "08", "G0010"),
        (
            "commercial",
            "115",
            "90471",
        ),  # Tdap: no G-code (for Medicare it is Part D: tests/coding/test_vaccines_part_b.py)
        ("commercial", "140", "90471"),
        ("medicaid", "33", "90471"),
    ],
)
def test_vaccines_are_not_96372_and_suggest_the_admin_code(payer, cvx, code):
    d = decide_one(admin(medicationCodeableConcept=med(CVX, cvx)), world(payer=payer))
    assert (d.outcome, d.procedure) == ("not-96372", code)
    assert gap(d, "vaccine").severity == "info"
    assert d.lines == () and d.claim_status is None


def test_cvx_without_leading_zero_matches():
    d = decide_one(admin(medicationCodeableConcept=med(CVX, "8")))
    assert (d.outcome, d.procedure) == ("not-96372", "G0010")


@pytest.mark.parametrize(
    "text,code",
    [
        ("Fluzone quadrivalent 0.5 mL", "G0008"),
        ("Pneumovax 23", "G0009"),
        ("Engerix-B adult", "G0010"),
        ("Shingrix", "90471"),
    ],
)
def test_vaccine_named_only_in_text_is_still_a_vaccine(text, code):
    # Shingrix for a commercial payer (for Medicare it is Part D: tests/coding/test_vaccines_part_b.py)
    d = decide_one(
        admin(medicationCodeableConcept={"text": text}),
        world(payer="commercial" if text == "Shingrix" else "medicare"),
    )
    assert (d.outcome, d.procedure) == ("not-96372", code)
    assert "vaccine" in gap_codes(d)


# ----------------------------------------------------------------------------- anti-neoplastics


@pytest.mark.parametrize(
    "rxnorm,amount,procedure",
    [
        ("358258", 1.3, "96401"),  # bortezomib SC: non-hormonal
        ("6851", 25, "96401"),  # methotrexate, even for RA
        ("42375", 7.5, "96402"),  # leuprolide: hormonal
    ],
)
def test_antineoplastics_are_chemotherapy_administration(rxnorm, amount, procedure):
    # for cancer (leuprolide for another diagnosis is J1950 and 96372: tests/coding/test_hormonal.py)
    cancer = [{"coding": [{"system": ICD10, "code": "C61"}]}]
    d = decide_one(
        admin(
            medicationCodeableConcept=med(RXNORM, rxnorm),
            dosage=dosage(dose=dose(amount, "mg")),
            reasonCode=cancer,
        )
    )
    assert (d.outcome, d.procedure) == ("not-96372", procedure)
    assert gap(d, "antineoplastic").severity == "info"
    assert [x.kind for x in d.lines] == ["drug"]  # the drug line alone: no 96372 line


# ----------------------------------------------------------------------------- settings


@pytest.mark.parametrize("encounter_class", ["IMP", "ACUTE", "NONAC"])
def test_inpatient_has_no_separately_billable_professional_line(encounter_class):
    d = decide_one(admin(), world(encounter_class=encounter_class))
    assert d.outcome == "not-billable"
    assert gap(d, "facility-setting").severity == "info"
    assert "DRG" in gap(d, "facility-setting").message
    assert d.lines == () and d.claim_status is None


@pytest.mark.parametrize("encounter_class,pos", [("EMER", "23"), ("OBSENC", "22"), ("SS", "22")])
def test_other_facility_settings_are_flagged_not_claimed(encounter_class, pos):
    d = decide_one(admin(), world(encounter_class=encounter_class))
    assert d.outcome == "not-billable"
    assert d.procedure == "96372"  # the facility bills it on the institutional claim
    assert d.place_of_service == pos
    assert "facility-setting" in gap_codes(d)
    assert d.claim_status is None


@pytest.mark.parametrize("encounter_class,pos", [("AMB", "11"), ("HH", "12"), ("FLD", "15")])
def test_office_like_settings_bill_with_their_place_of_service(encounter_class, pos):
    d = decide_one(admin(), world(encounter_class=encounter_class))
    assert d.outcome == "claim"
    assert d.place_of_service == pos


# ----------------------------------------------------------------------------- the drug line


@pytest.mark.parametrize(
    "medication,amount,unit,hcpcs,units",
    [
        (
            med(RXNORM, "3992"),
            0.3,
            "mg",
            "J0165",
            3,
        ),  # epinephrine 0.3 mg / 0.1 mg: exactly 3 (J0171 ended 2025-06-30: J0165 NOS)
        (med(RXNORM, "2193"), 1, "g", "J0696", 4),  # ceftriaxone 1 g / 250 mg
        (med(RXNORM, "2193"), 500, "mg", "J0696", 2),
        (med(RXNORM, "11248"), 1000, "ug", "J3420", 1),  # B12 up to 1000 mcg
        (med(RXNORM, "11248"), 1500, "ug", "J3420", 2),
        (med(RXNORM, "11248"), 1, "mg", "J3420", 1),
        (med(RXNORM, "26225"), 4, "mg", "J2405", 4),
        (med(RXNORM, "35827"), 31, "mg", "J1885", 3),  # rounded up
        (med(RXNORM, "6691"), 150, "mg", "J1050", 150),
        (med(RXNORM, "1665459"), 2, "mL", "J1885", 4),  # SCD 30 mg/mL: strength from drug_codes.csv
        (med(RXNORM, "1000126"), 1, "mL", "J1050", 150),
    ],
)
def test_drug_units_are_dose_over_billing_unit_rounded_up(medication, amount, unit, hcpcs, units):
    # a commercial payer: no JW/JZ, so no container size is needed (tests/coding/test_jw_jz_package_size.py)
    d = decide_one(
        admin(medicationCodeableConcept=medication, dosage=dosage(dose=dose(amount, unit))),
        world(payer="commercial"),
    )
    assert d.outcome == "claim", gap_codes(d)
    assert (line(d, "drug").code, line(d, "drug").quantity) == (hcpcs, units)
    assert d.units == units


def test_contained_medication_strength_converts_ml_to_mg():
    d = decide_one(
        contained_admin(strength=(30, "mg", 1, "mL"), dose_ml=2), world(payer="commercial")
    )
    assert d.outcome == "claim", gap_codes(d)
    assert (line(d, "drug").code, line(d, "drug").quantity) == ("J1885", 4)  # 60 mg / 15 mg


def test_ml_dose_without_strength_is_missing_dose():
    d = decide_one(contained_admin(strength=None, dose_ml=2))
    assert gap(d, "missing-dose").severity == "error"
    assert d.outcome == "held"
    assert line(d, "drug").quantity is None


@pytest.mark.parametrize("value", [0, -5, 10**9, "thirty"])
def test_zero_negative_huge_or_non_numeric_dose_is_missing_dose(value):
    d = decide_one(admin(dosage=dosage(dose=dose(value, "mg"))))
    assert "missing-dose" in gap_codes(d)
    assert d.outcome == "held"


@pytest.mark.parametrize(
    "dose_value", [None, {"value": 30}, {"value": 30, "unit": "puffs", "code": "puffs"}]
)
def test_absent_unitless_or_unknown_unit_dose_is_missing_dose(dose_value):
    d = decide_one(admin(dosage=dosage(dose=dose_value)))
    assert "missing-dose" in gap_codes(d)
    assert d.outcome == "held"


def test_medication_reference_to_a_medication_resource():
    m = {
        "resourceType": "Medication",
        "id": "m-ceftriaxone",
        "code": {
            "coding": [
                {"system": RXNORM, "code": "1665021", "display": "ceftriaxone 1000 MG Injection"}
            ]
        },
    }
    a = admin(
        medicationCodeableConcept=None,
        medicationReference={"reference": "Medication/m-ceftriaxone"},
        dosage=dosage(dose=dose(1, "g")),
    )
    d = decide_one(a, [*world(), m])
    assert d.outcome == "claim"
    assert (line(d, "drug").code, line(d, "drug").quantity) == ("J0696", 4)


def test_dangling_medication_reference_is_missing_medication():
    a = admin(
        medicationCodeableConcept=None, medicationReference={"reference": "Medication/nowhere"}
    )
    d = decide_one(a)
    g = gap(d, "missing-medication")
    assert g.severity == "error"
    assert "Medication/nowhere" in g.message
    assert d.outcome == "held"


def test_contained_reference_to_nothing_is_missing_medication():
    a = contained_admin()
    a["medicationReference"] = {"reference": "#other"}
    assert "missing-medication" in gap_codes(decide_one(a))


def test_no_medication_at_all_is_missing_medication():
    d = decide_one(admin(medicationCodeableConcept=None))
    assert gap(d, "missing-medication").severity == "error"
    assert d.outcome == "held"


@pytest.mark.parametrize("ndc", ["00409379601", "0409-3796-01"])
def test_drug_found_by_ndc_alone(ndc):
    d = decide_one(admin(medicationCodeableConcept=med(NDC, ndc)), world(payer="commercial"))
    assert d.outcome == "claim", gap_codes(d)
    assert line(d, "drug").code == "J1885"
    assert line(d, "drug").ndc == "00409379601"


@pytest.mark.parametrize(
    "system", [HCPCS, "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"]
)
def test_drug_given_as_a_hcpcs_code(system):
    d = decide_one(
        admin(medicationCodeableConcept=med(system, "J2405"), dosage=dosage(dose=dose(8, "mg")))
    )
    assert (line(d, "drug").code, line(d, "drug").quantity) == ("J2405", 8)


def test_unmapped_drug_goes_to_j3490_with_a_warning_and_its_name_and_dose():
    # an NDC this project has no row for: J3490, priced by the payer from name, NDC and dose
    coding = [
        {"system": RXNORM, "code": "999999", "display": "mystery drug"},
        {"system": NDC, "code": "00002759701"},
    ]
    d = decide_one(admin(medicationCodeableConcept={"coding": coding}))
    assert gap(d, "unmapped-medication").severity == "warning"
    assert d.outcome == "claim", gap_codes(d)
    drug = line(d, "drug")
    assert drug.code == "J3490"
    assert drug.quantity == 1  # one unit; the amount travels as NDC quantity and text
    assert drug.text == "mystery drug 30 mg"
    assert drug.ndc == "00002759701"


def test_unmapped_drug_without_an_ndc_is_held_for_it_whatever_the_payer():
    # CGS Medicare NOC instructions: J3490/J3590/J9999 without the drug's NDC are returned unprocessable
    a = admin(
        medicationCodeableConcept={
            "coding": [{"system": RXNORM, "code": "999999", "display": "mystery drug"}]
        }
    )
    for payer in ("commercial", "medicare"):
        d = decide_one(a, world(payer=payer))
        assert (d.outcome, line(d, "drug").code) == ("held", "J3490")
        assert gap(d, "missing-ndc").severity == "error"
        assert "J3490 is a not-otherwise-classified code" in gap(d, "missing-ndc").message


def test_name_match_is_a_last_resort_and_flagged():
    d = decide_one(admin(medicationCodeableConcept={"text": "Toradol 30 mg/mL"}))
    assert line(d, "drug").code == "J1885"
    assert "by drug name only" in gap(d, "unmapped-medication").message


def test_code_match_beats_name_match():
    m = {
        "coding": [{"system": RXNORM, "code": "26225", "display": "ketorolac?"}],
        "text": "ketorolac",
    }
    d = decide_one(admin(medicationCodeableConcept=m, dosage=dosage(dose=dose(4, "mg"))))
    assert line(d, "drug").code == "J2405"
    assert "unmapped-medication" not in gap_codes(d)


def test_name_match_needs_word_boundaries():
    # "morphine" must not match inside "hydromorphine"-like words
    d = decide_one(admin(medicationCodeableConcept={"text": "hydromorphinex"}))
    assert line(d, "drug").code == "J3490"


# ----------------------------------------------------------------------------- payer rules on the drug line


def test_medicaid_requires_an_ndc():
    d = decide_one(admin(medicationCodeableConcept=med(RXNORM, "35827")), world(payer="medicaid"))
    assert gap(d, "missing-ndc").severity == "error"
    assert d.outcome == "held"


def test_medicaid_with_an_ndc_bills_without_jz():
    d = decide_one(admin(), world(payer="medicaid"))
    assert d.outcome == "claim"
    assert line(d, "drug").modifiers == ()
    assert line(d, "drug").ndc == "00409379501"
    assert (line(d, "drug").ndc_quantity, line(d, "drug").ndc_unit) == (Decimal("0.03"), "GR")


def test_ndc_quantity_of_a_solution_dosed_in_mg_is_in_ml():
    # NDC 00409-3796-01 is ketorolac 30 mg/mL: 30 mg is 1 mL of it, not 0.03 g
    d = decide_one(
        admin(medicationCodeableConcept=med(NDC, "00409379601")), world(payer="medicaid")
    )
    assert (line(d, "drug").ndc_quantity, line(d, "drug").ndc_unit) == (Decimal(1), "ML")
    d = decide_one(contained_admin(dose_ml=2) | {"medicationReference": {"reference": "#med1"}})
    assert line(d, "drug").ndc is None


def test_ndc_quantity_in_ml_when_dosed_in_ml():
    d = decide_one(
        admin(
            dosage=dosage(dose=dose(2, "mL")),
            medicationCodeableConcept={"coding": [{"system": NDC, "code": "00409379601"}]},
        )
    )
    assert (line(d, "drug").ndc_quantity, line(d, "drug").ndc_unit, line(d, "drug").quantity) == (
        Decimal(2),
        "ML",
        4,
    )


def test_commercial_gets_no_jz_and_needs_no_ndc():
    d = decide_one(admin(medicationCodeableConcept=med(RXNORM, "35827")), world(payer="commercial"))
    assert d.outcome == "claim"
    assert line(d, "drug").modifiers == ()
    assert "missing-ndc" not in gap_codes(d)


def test_jz_only_for_single_dose_drugs():
    d = decide_one(
        admin(medicationCodeableConcept=med(RXNORM, "26225"), dosage=dosage(dose=dose(4, "mg")))
    )
    assert line(d, "drug").modifiers == ()  # ondansetron: multi-dose vial


def test_jz_can_be_switched_off():
    d = decide_one(config=Config(jw_jz=False))
    assert line(d, "drug").modifiers == ()


@pytest.mark.parametrize(
    "code,payer_type",
    [
        ("1", "medicare"),
        ("121", "medicare"),
        ("2", "medicaid"),
        ("5", "commercial"),
        ("6", "commercial"),
        ("81", "self-pay"),
    ],
)
def test_payer_type_from_coverage_type_sopt(code, payer_type):
    w = replace_resource(world(), "Coverage", type={"coding": [{"system": SOPT, "code": code}]})
    assert decide_one(admin(), w).payer_type == payer_type


def test_coverage_without_type_is_commercial():
    assert (
        decide_one(admin(), replace_resource(world(), "Coverage", type=None)).payer_type
        == "commercial"
    )


def test_self_administered_drug_is_flagged_for_medicare():
    a = admin(medicationCodeableConcept=med(RXNORM, "67108"), dosage=dosage(dose=dose(40, "mg")))
    d = decide_one(a)
    assert (
        gap(d, "self-administered-drug").severity == "error"
    )  # held by default (tests/coding/test_self_administered.py)
    assert d.outcome == "held"
    assert (line(d, "drug").code, line(d, "drug").quantity) == ("J1650", 4)
    assert "self-administered-drug" not in gap_codes(decide_one(a, world(payer="commercial")))


# ----------------------------------------------------------------------------- diagnosis


def test_diagnosis_from_the_administration_reason_first():
    a = admin(reasonCode=[{"coding": [{"system": ICD10, "code": "R51.9"}]}])
    d = decide_one(a)
    assert [c.code for c in d.diagnoses] == ["R51.9", "M54.50"]  # its own, then the encounter's


def test_diagnosis_from_a_reason_reference():
    cond = {
        "resourceType": "Condition",
        "id": "c-other",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": ICD10, "code": "J02.9"}]},
    }
    d = decide_one(admin(reasonReference=[{"reference": "Condition/c-other"}]), [*world(), cond])
    assert [c.code for c in d.diagnoses] == ["J02.9", "M54.50"]


def test_diagnosis_falls_back_to_the_encounter():
    assert [c.code for c in decide_one().diagnoses] == ["M54.50"]


def test_diagnosis_from_the_encounter_reason_code():
    w = replace_resource(
        world(),
        "Encounter",
        diagnosis=None,
        reasonCode=[{"coding": [{"system": ICD10, "code": "E53.8"}]}],
    )
    assert [c.code for c in decide_one(admin(), w).diagnoses] == ["E53.8"]


def test_no_icd10_anywhere_is_missing_diagnosis():
    w = replace_resource(world(), "Encounter", diagnosis=None)
    d = decide_one(admin(reasonCode=[{"text": "back pain"}]), w)
    assert gap(d, "missing-diagnosis").severity == "error"
    assert d.outcome == "held"


# ----------------------------------------------------------------------------- E/M the same day


def test_em_on_the_encounter_asks_for_modifier_25():
    w = replace_resource(
        world(), "Encounter", type=[{"coding": [{"system": CPT, "code": "99213"}]}]
    )
    d = decide_one(admin(), w)
    g = gap(d, "em-same-day")
    assert g.severity == "warning"
    assert "modifier 25" in g.message
    assert "drop the 99211" not in g.message
    assert d.outcome == "claim"


def test_medicare_pays_no_99211_with_an_injection():
    w = replace_resource(
        world(), "Encounter", type=[{"coding": [{"system": CPT, "code": "99211"}]}]
    )
    assert (
        "medicare pays no 99211 with an injection: drop the 99211"
        in gap(decide_one(admin(), w), "em-same-day").message
    )
    w = replace_resource(
        world(payer="commercial"),
        "Encounter",
        type=[{"coding": [{"system": CPT, "code": "99211"}]}],
    )
    assert "drop the 99211" not in gap(decide_one(admin(), w), "em-same-day").message


def test_em_from_a_charge_item_the_same_day():
    item = {
        "resourceType": "ChargeItem",
        "id": "ci1",
        "status": "billable",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": CPT, "code": "99214"}]},
        "occurrenceDateTime": "2026-10-05T10:00:00-05:00",
    }
    assert "em-same-day" in gap_codes(decide_one(admin(), [*world(), item]))
    other_day = dict(item, occurrenceDateTime="2026-10-09")
    assert "em-same-day" not in gap_codes(decide_one(admin(), [*world(), other_day]))


def test_non_em_cpt_on_the_encounter_is_not_em():
    w = replace_resource(
        world(), "Encounter", type=[{"coding": [{"system": CPT, "code": "96372"}]}]
    )
    assert "em-same-day" not in gap_codes(decide_one(admin(), w))


# ----------------------------------------------------------------------------- same day


def _second(id="ma2", time="2026-10-05T09:45:00-05:00", rxnorm="1740467", amount=4, ndc=True):
    # ondansetron 2 mL single-dose (packages.csv); with the Hikma NDC 00641607825 (which Medicaid
    # requires) the CMS crosswalk's item of that NDC is the container, whose kind is not known: a
    # Medicare claim is then held (missing-package-size, ndc_hcpcs.csv)
    medication = {
        "coding": [{"system": RXNORM, "code": rxnorm}]
        + ([{"system": NDC, "code": "00641607825"}] if ndc else [])
    }
    return admin(
        id=id,
        effectiveDateTime=time,
        medicationCodeableConcept=medication,
        dosage=dosage(
            dose=dose(amount, "mg"), site={"coding": [{"system": V2_SITE, "code": "RD"}]}
        ),
    )


@pytest.mark.parametrize(
    "payer,modifier", [("medicare", "XU"), ("medicaid", "59"), ("commercial", "59")]
)
def test_second_injection_the_same_day_gets_the_distinct_modifier(payer, modifier):
    first, second = decide_many(
        [_second(ndc=payer != "medicare"), admin()], world(payer=payer)
    )  # order given != time order
    assert line(second, "administration").modifiers == ()
    assert line(first, "administration").modifiers == (modifier,)
    assert first.outcome == second.outcome == "claim"


def test_distinct_modifier_is_configurable():
    _, second = decide_many(
        [admin(), _second(ndc=False)], config=Config(distinct_modifier={"medicare": "XS"})
    )
    assert line(second, "administration").modifiers == ("XS",)


def test_injections_on_different_days_get_no_distinct_modifier():
    _, second = decide_many([admin(), _second(time="2026-10-06T09:45:00-05:00")])
    assert line(second, "administration").modifiers == ()


def test_a_duplicate_of_the_same_administration_is_flagged_and_not_billed():
    original, copy_ = decide_many([admin(id="ma1"), admin(id="ma1-copy")])
    assert original.outcome == "claim"
    assert copy_.outcome == "not-billable"
    assert gap(copy_, "duplicate").severity == "error"
    assert "MedicationAdministration/ma1" in gap(copy_, "duplicate").message
    assert copy_.lines == () and copy_.claim_status is None
    assert (
        line(original, "administration").modifiers == ()
    )  # the copy does not count as a 2nd injection


def test_same_business_identifier_is_a_duplicate():
    ident = [{"system": "urn:ehr:mar", "value": "42"}]
    _, b = decide_many([admin(id="a", identifier=ident), _second(id="b") | {"identifier": ident}])
    assert "duplicate" in gap_codes(b)


def test_more_than_the_mue_per_day_is_held():
    # products whose container size is known (single-dose ones need it for JW/JZ: tests/coding/test_jw_jz_package_size.py)
    # (dexamethasone and B12 by ingredient no longer: a Medicare Part B drug of unknown container kind
    # is held, ndc_hcpcs.csv; morphine and medroxyprogesterone clinical drugs name their containers)
    drugs = [("1665461", 30), ("1740467", 4), ("1732006", 4), ("1000126", 150), ("992460", 25)]
    admins = [
        admin(
            id=f"m{i}",
            effectiveDateTime=f"2026-10-05T09:{10 + i}:00-05:00",
            medicationCodeableConcept=med(RXNORM, rx),
            dosage=dosage(dose=dose(amt, "mg")),
        )
        for i, (rx, amt) in enumerate(drugs)
    ]
    decisions = decide_many(admins)
    assert [d.outcome for d in decisions] == ["claim"] * 4 + ["held"]
    assert gap(decisions[4], "units-over-mue").severity == "error"
    assert [line(d, "administration").modifiers for d in decisions] == [
        (),
        ("XU",),
        ("XU",),
        ("XU",),
        ("XU",),
    ]
    assert all("units-over-mue" not in gap_codes(d) for d in decisions[:4])


def test_same_day_rules_are_per_patient():
    w = world() + [
        r for r in world(patient="p2") if r["resourceType"] not in ("Organization", "Practitioner")
    ]
    a, b = decide_many([admin(), admin(id="x", patient="p2")], w)
    assert line(a, "administration").modifiers == line(b, "administration").modifiers == ()
    assert "duplicate" not in gap_codes(b)


# ----------------------------------------------------------------------------- status


@pytest.mark.parametrize(
    "status", ["not-done", "in-progress", "on-hold", "stopped", "unknown", None]
)
def test_not_completed_is_not_billable(status):
    d = decide_one(admin(status=status))
    assert d.outcome == "not-billable"
    assert gap(d, "not-administered").severity == "info"
    assert d.lines == () and d.claim_status is None


def test_entered_in_error_is_void():
    d = decide_one(admin(status="entered-in-error"))
    assert d.outcome == "void"
    assert d.gaps == () and d.lines == ()


# ----------------------------------------------------------------------------- documentation gaps


def test_missing_patient_holds_and_no_claim_can_be_formed():
    d = decide_one(admin(subject={"reference": "Patient/ghost"}))
    assert gap(d, "missing-patient").severity == "error"
    assert d.outcome == "held"
    assert d.claim_status is None and d.claim_blocker == "missing-patient"


@pytest.mark.parametrize(
    "w",
    [
        world(coverage=False),
        replace_resource(world(), "Coverage", period={"start": "2025-01-01", "end": "2025-12-31"}),
        replace_resource(world(), "Coverage", status="cancelled"),
    ],
)
def test_missing_or_inactive_coverage_holds_without_a_claim(w):
    d = decide_one(admin(), w)
    assert gap(d, "missing-coverage").severity == "error"
    assert d.outcome == "held"
    assert d.claim_status is None and d.claim_blocker == "missing-coverage"


@pytest.mark.parametrize("context", [None, {"reference": "Encounter/ghost"}])
def test_missing_encounter_is_an_error(context):
    # the next day: no encounter of the patient's contains it, so none places it either
    d = decide_one(admin(context=context, effectiveDateTime="2026-10-06T09:30:00-05:00"))
    assert gap(d, "missing-encounter").severity == "error"
    assert d.outcome == "held"


@pytest.mark.parametrize(
    "changes",
    [
        {"effectiveDateTime": None},
        {"effectiveDateTime": "2026-10"},
        {"effectiveDateTime": "yesterday"},
    ],
)
def test_missing_or_partial_time_is_an_error(changes):
    d = decide_one(admin(**changes))
    assert gap(d, "missing-time").severity == "error"
    assert d.outcome == "held"


def test_effective_period_start_is_used():
    a = admin(effectiveDateTime=None, effectivePeriod={"start": "2026-10-05T09:30:00-05:00"})
    d = decide_one(a)
    assert d.outcome == "claim" and d.service_date == "2026-10-05"


def test_time_outside_the_encounter_is_a_warning():
    d = decide_one(admin(effectiveDateTime="2026-10-05T14:00:00-05:00"))
    assert gap(d, "time-outside-encounter").severity == "warning"
    assert d.outcome == "claim"


@pytest.mark.parametrize(
    "performer",
    [
        None,
        [{"actor": {"reference": "Patient/p1"}}],
        [{"actor": {"reference": "Practitioner/ghost"}}],
    ],
)
def test_missing_performer_is_a_warning(performer):
    d = decide_one(admin(performer=performer))
    assert gap(d, "missing-performer").severity == "warning"
    assert d.outcome == "claim"
    assert d.performer is None


def test_missing_consent_is_info_by_default():
    # no payer requires written consent for 96372: organisational policy (gaps.codesystem.json)
    d = decide_one(admin(), world(consent=False))
    assert gap(d, "missing-consent").severity == "info"
    assert d.outcome == "claim"


@pytest.mark.parametrize("severity,outcome", [("warning", "claim"), ("error", "held")])
def test_missing_consent_severity_is_configurable(severity, outcome):
    d = decide_one(admin(), world(consent=False), Config(severity={"missing-consent": severity}))
    assert gap(d, "missing-consent").severity == severity
    assert d.outcome == outcome


@pytest.mark.parametrize(
    "change",
    [
        {"status": "inactive"},
        {"provision": {"type": "deny"}},
        {"provision": {"period": {"start": "2027-01-01"}}},
    ],
)
def test_inactive_denied_or_future_consent_counts_as_missing(change):
    w = replace_resource(world(), "Consent", **change)
    assert "missing-consent" in gap_codes(decide_one(admin(), w))


def test_held_decision_with_coverage_gets_a_draft_claim():
    d = decide_one(admin(dosage=dosage(dose=None)))
    assert d.outcome == "held" and d.claim_status == "draft"


def test_billing_provider_falls_back_to_config_then_performer():
    w = replace_resource(world(), "Encounter", serviceProvider=None)
    assert decide_one(admin(), w).provider == "Practitioner/nurse"
    cfg = Config(billing_provider="Organization/clinic")
    assert decide_one(admin(), w, cfg).provider == "Organization/clinic"


# ----------------------------------------------------------------------------- every gap code at least once


def _mue_case():
    drugs = [("35827", 30), ("26225", 4), ("3264", 4), ("3498", 50), ("8745", 25)]
    return [
        admin(
            id=f"m{i}",
            effectiveDateTime=f"2026-10-05T09:{10 + i}:00-05:00",
            medicationCodeableConcept=med(RXNORM, rx),
            dosage=dosage(dose=dose(amt, "mg")),
        )
        for i, (rx, amt) in enumerate(drugs)
    ], world()


GAP_CASES = {
    "missing-medication": lambda: ([admin(medicationCodeableConcept=None)], world()),
    "unmapped-medication": lambda: (
        [admin(medicationCodeableConcept={"text": "zzz compound"})],
        world(),
    ),
    "missing-dose": lambda: ([admin(dosage=dosage(dose=None))], world()),
    "missing-route": lambda: ([admin(dosage=dosage(route={"text": "Injection"}))], world()),
    "route-from-text": lambda: ([admin(dosage=dosage(route={"text": "IM"}))], world()),
    "infusion-time-unknown": lambda: (
        [
            admin(
                dosage=dosage(
                    route=route(V2_ROUTE, "IV"), rateQuantity={"value": 100, "code": "mL/h"}
                )
            )
        ],
        world(),
    ),
    "missing-site": lambda: ([admin(dosage=dosage(site=None))], world()),
    "missing-time": lambda: ([admin(effectiveDateTime=None)], world()),
    "missing-performer": lambda: ([admin(performer=None)], world()),
    "missing-diagnosis": lambda: (
        [admin()],
        replace_resource(world(), "Encounter", diagnosis=None),
    ),
    "missing-consent": lambda: ([admin()], world(consent=False)),
    "missing-coverage": lambda: ([admin()], world(coverage=False)),
    "missing-encounter": lambda: (
        [admin(context=None, effectiveDateTime="2026-10-06T09:30:00-05:00")],
        world(),
    ),
    "route-not-sc-im": lambda: ([admin(dosage=dosage(route=route(V2_ROUTE, "IV")))], world()),
    "vaccine": lambda: ([admin(medicationCodeableConcept=med(CVX, "140"))], world()),
    "antineoplastic": lambda: ([admin(medicationCodeableConcept=med(RXNORM, "358258"))], world()),
    "facility-setting": lambda: ([admin()], world(encounter_class="EMER")),
    "not-administered": lambda: ([admin(status="not-done")], world()),
    "time-outside-encounter": lambda: (
        [admin(effectiveDateTime="2026-10-04T09:30:00-05:00")],
        world(),
    ),
    "em-same-day": lambda: (
        [admin()],
        replace_resource(
            world(), "Encounter", type=[{"coding": [{"system": CPT, "code": "99212"}]}]
        ),
    ),
    "units-over-mue": _mue_case,
    "self-administered-drug": lambda: (
        [admin(medicationCodeableConcept=med(RXNORM, "67108"))],
        world(),
    ),
    "duplicate": lambda: ([admin(id="a"), admin(id="b")], world()),
    "missing-ndc": lambda: (
        [admin(medicationCodeableConcept=med(RXNORM, "35827"))],
        world(payer="medicaid"),
    ),
    "missing-patient": lambda: ([admin(subject=None)], world()),
    "missing-billing-provider": lambda: (
        [admin(performer=None)],
        replace_resource(world(), "Encounter", serviceProvider=None),
    ),
    "unknown-payer-type": lambda: (
        [admin()],
        replace_resource(
            world(), "Coverage", type={"coding": [{"system": ACT, "code": "PUBLICPOL"}]}
        ),
    ),
    "self-pay": lambda: (
        [admin()],
        replace_resource(world(), "Coverage", type={"text": "NO_INSURANCE"}),
    ),
    "unknown-setting": lambda: (
        [admin()],
        replace_resource(
            world(),
            "Encounter",
            location=None,
            **{
                "class": {
                    "extension": [
                        {
                            "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                            "valueCode": "unknown",
                        }
                    ]
                }
            },
        ),
    ),
    "route-conflicts-dose-form": lambda: (
        [admin(medicationCodeableConcept={"text": "ondansetron 2 MG/ML Intravenous Solution"})],
        world(),
    ),
    "dose-form-not-injectable": lambda: (
        [
            admin(
                medicationCodeableConcept={"text": "Acetaminophen 325 MG Oral Tablet"},
                dosage=dosage(route=None),
            )
        ],
        world(),
    ),
    "missing-package-size": lambda: (
        [admin(medicationCodeableConcept=med(RXNORM, "35827"))],
        world(),
    ),
    "missing-rendering-provider": lambda: (
        [admin()],
        replace_resource(world(), "Encounter", participant=None),
    ),
    "rendering-provider-by-role": lambda: (
        [admin()],
        [
            {k: v for k, v in r.items() if k != "qualification"} if r.get("id") == "doctor" else r
            for r in world()
        ],
    ),
    "vaccine-part-d": lambda: ([admin(medicationCodeableConcept=med(CVX, "115"))], world()),
    "ambiguous-drug-code": lambda: (
        [
            admin(
                medicationCodeableConcept={
                    "coding": [
                        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6902"}
                    ]
                }
            )
        ],
        world(),
    ),
    # a diagnosis only in SNOMED CT (no snomed_icd10.csv row); a Medicare ESA (CMS CR 5699)
    "diagnosis-not-icd10": lambda: (
        [admin(reasonCode=[{"coding": [{"system": SNOMED, "code": "82423001"}]}])],
        replace_resource(world(), "Encounter", diagnosis=None),
    ),
    "missing-esa-lab": lambda: (
        [
            admin(
                medicationCodeableConcept=med(RXNORM, "205923"),
                dosage=dosage(dose=dose(4000, "[iU]")),
            )
        ],
        world(),
    ),
    "esa-esrd-bundle": lambda: (
        [
            admin(
                medicationCodeableConcept=med(RXNORM, "205923"),
                dosage=dosage(dose=dose(4000, "[iU]")),
                reasonCode=[
                    {"coding": [{"system": ICD10, "code": "N18.6"}]},
                    {"coding": [{"system": ICD10, "code": "Z99.2"}]},
                ],
            )
        ],
        world(),
    ),
    # Medicare, 42 CFR 424.44: the 2026-10-05 service's last day to file is 2027-10-05
    "past-filing-limit": lambda: ([admin()], world(), Config(as_of=date(2027, 10, 6))),
}


def _codesystem_codes():
    return [c["code"] for c in json.loads(GAPS_FILE.read_text())["concept"]]


@pytest.mark.parametrize("code", _codesystem_codes())
def test_every_gap_code_in_the_codesystem_is_produced(code):
    assert code in GAP_CASES, f"add a case for new gap code {code}"
    admins, w, *config = GAP_CASES[code]()  # a case may bring its Config (the as-of day)
    decisions = decide_all(admins, Context(w), rules(), *config)
    found = [g for d in decisions for g in d.gaps if g.code == code]
    assert found, [gap_codes(d) for d in decisions]
    expected = rules().gaps[code].severity
    assert all(g.severity == expected for g in found)
    assert all(g.field == rules().gaps[code].field for g in found)
    if expected == "error":
        assert any(d.outcome in ("held", "not-billable") for d in decisions if code in gap_codes(d))


def test_gap_messages_carry_no_phi():
    for code, case in GAP_CASES.items():
        admins, w, *config = case()
        for d in decide_all(admins, Context(w), rules(), *config):
            for g in d.gaps:
                for secret in ("Testperson", "1950-02-03", "MEMBER-SECRET-1"):
                    assert secret not in g.message, (code, g.message)


# ----------------------------------------------------------------------------- review follow-ups


def test_injection_linked_to_a_virtual_encounter_is_held_for_the_encounter_link():
    d = decide_one(resources=world(encounter_class="VR"))
    assert d.outcome == "held"
    assert gap_codes(d) == ["missing-encounter"]
    assert "virtual" in gap(d, "missing-encounter").message
    assert d.claim_status == "draft"


def test_antineoplastic_with_text_only_route_still_asks_for_the_route():
    a = admin(
        medicationCodeableConcept=med(RXNORM, "358258", "bortezomib"),
        dosage=dosage(route={"text": "under the skin"}, dose=dose(2.3, "mg")),
    )
    d = decide_one(a)
    # the chemotherapy code follows the route (96401 SC/IM, 96409 push, 96413 infusion): none is asserted
    assert d.outcome == "held"
    assert d.procedure is None
    assert gap_codes(d) == ["antineoplastic", "missing-route"]
    assert gap(d, "missing-route").severity == "error"


def test_oddly_named_ndjson_file_is_read_by_resource_type(tmp_path):
    from fhir_injection.sources.folder import iter_folder

    (tmp_path / "export.ndjson").write_text(
        json.dumps(admin()) + "\n" + json.dumps(world()[0]) + "\n"
    )
    problems = []
    types = sorted(r["resourceType"] for r in iter_folder(tmp_path, problems.append))
    assert types == ["MedicationAdministration", "Patient"]
    assert problems == []


# =============================================================================
# The last step of every decision (``_finish``: which gaps a service that is not a 96372 keeps,
# what blocks a Claim), the order of a patient's day, the void of a deleted administration, and
# duplicates around a void. ``_finish`` and ``_sort_key`` are called directly with a hand-made
# pass-1 draft so each rule shows on its own; everything else goes through ``decide_many``.
# =============================================================================


RULES = rules()
CONFIG = Config()
WHO = {"patient": "Patient/p1", "coverage": "Coverage/c1", "provider": "Organization/clinic"}


def draft(outcome="claim", procedure="96372", gaps=(), when=None, admin_id="a1", **fields) -> Draft:
    found = Gaps(RULES, CONFIG)
    for code in gaps:
        found.add(code)
    decision = Decision(
        administration=f"MedicationAdministration/{admin_id}",
        version=None,
        outcome=outcome,
        procedure=procedure,
        **{**WHO, **fields},
    )
    return Draft({"id": admin_id}, decision, when, None, (), found)


# ----------------------------------------------------------------------------- not a 96372


# route-not-sc-im: info (raised for every administration); missing-dose: raised for what is
# billed; missing-site: raised for a 96372 only
MIXED = ("route-not-sc-im", "missing-dose", "missing-site")


@pytest.mark.parametrize(
    "outcome,procedure,kept",
    [
        ("not-96372", "96374", ["route-not-sc-im", "missing-dose"]),  # another code: what it bills
        (
            "held",
            "96374",
            ["route-not-sc-im", "missing-dose"],
        ),  # any outcome of another code: the same
        ("not-billable", None, ["route-not-sc-im"]),
        ("void", "96372", ["route-not-sc-im"]),  # a void keeps its code but is no 96372 service
        ("not-96372", "96372", ["route-not-sc-im", "missing-dose"]),
        ("not-billable", "96372", ["route-not-sc-im"]),
    ],
)
def test_a_service_that_is_no_96372_keeps_only_the_gaps_raised_for_it(outcome, procedure, kept):
    d = _finish(draft(outcome, procedure, MIXED, claim_status="active"), RULES, CONFIG)
    assert (d.outcome, d.procedure, gap_codes(d), d.claim_status, d.claim_blocker) == (
        outcome,
        procedure,
        kept,
        None,
        None,
    )


# ----------------------------------------------------------------------------- what blocks a Claim


@pytest.mark.parametrize(
    "missing,blocker",
    [
        ("patient", "missing-patient"),
        ("coverage", "missing-coverage"),
        ("provider", "missing-billing-provider"),
    ],
)
def test_a_96372_without_patient_coverage_or_provider_is_held_with_no_claim_even_without_its_gap(
    missing, blocker
):
    d = _finish(draft(**{missing: None}), RULES, CONFIG)
    assert (d.outcome, d.claim_status, d.claim_blocker, gap_codes(d)) == ("held", None, blocker, [])


def test_the_first_missing_piece_names_the_blocker():
    d = _finish(draft(patient=None, coverage=None, provider=None), RULES, CONFIG)
    assert d.claim_blocker == "missing-patient"
    d = _finish(draft(coverage=None, provider=None), RULES, CONFIG)
    assert d.claim_blocker == "missing-coverage"


def test_a_blocking_gap_blocks_the_claim_even_when_the_reference_is_there():
    d = _finish(draft(gaps=["missing-coverage"]), RULES, CONFIG)
    assert (d.outcome, d.claim_status, d.claim_blocker) == ("held", None, "missing-coverage")


@pytest.mark.parametrize(
    "gaps,outcome,status",
    [
        ((), "claim", "active"),
        (("missing-site",), "claim", "active"),  # a warning bills
        (("missing-diagnosis",), "held", "draft"),  # an error holds a draft Claim
    ],
)
def test_a_whole_96372_is_a_claim_or_a_held_draft(gaps, outcome, status):
    d = _finish(draft(gaps=gaps), RULES, CONFIG)
    assert (d.outcome, d.claim_status, d.claim_blocker, gap_codes(d)) == (
        outcome,
        status,
        None,
        list(gaps),
    )


# ----------------------------------------------------------------------------- the day's order


def test_the_day_is_ordered_by_instant_then_time_as_written_then_id():
    zoned = datetime(2026, 10, 5, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
    naive = datetime(2026, 10, 5, 9, 30)
    assert _sort_key(draft(when=zoned)) == (zoned.timestamp(), "2026-10-05T09:30:00-05:00", "a1")
    assert _sort_key(draft(when=naive)) == (naive.timestamp(), "2026-10-05T09:30:00", "a1")
    day = date(2026, 10, 5)
    assert _sort_key(draft(when=day, admin_id="b")) == (
        datetime(2026, 10, 5).timestamp(),
        "2026-10-05",
        "b",
    )
    assert _sort_key(draft(when=None, admin_id="c")) == (float("inf"), "", "c")


def test_an_instant_equal_to_a_naive_time_sorts_by_its_written_form():
    zoned = datetime(2026, 10, 5, 14, 30, tzinfo=UTC)
    naive = datetime.fromtimestamp(
        zoned.timestamp()
    )  # the same instant, in the machine's local time
    keys = sorted(
        [_sort_key(draft(when=zoned, admin_id="z")), _sort_key(draft(when=naive, admin_id="n"))]
    )
    assert [k[2] for k in keys] == sorted(
        ["z", "n"], key=lambda i: {"z": zoned, "n": naive}[i].isoformat()
    )


# ----------------------------------------------------------------------------- deleted at the source


def test_an_administration_deleted_at_the_source_is_a_void_of_its_patient():
    d = decide_deleted("a1", "p1")
    assert (d.administration, d.version, d.outcome, d.procedure, d.patient, d.gaps) == (
        "MedicationAdministration/a1",
        None,
        "void",
        None,
        "Patient/p1",
        (),
    )
    assert decide_deleted("a2").patient is None and decide_deleted("a2", "").patient is None


# ----------------------------------------------------------------------------- duplicates and voids


def test_an_entered_in_error_record_does_not_make_its_replacement_a_duplicate():
    ident = [{"system": "urn:ehr:mar", "value": "42"}]
    voided = admin(id="a", identifier=ident, status="entered-in-error")
    again = admin(id="b", identifier=ident, effectiveDateTime="2026-10-05T09:45:00-05:00")
    first, second = decide_many([voided, again])
    assert (
        first.outcome == "void"
        and "duplicate" not in gap_codes(second)
        and second.outcome == "claim"
    )
