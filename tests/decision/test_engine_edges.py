"""The 96372 decision at its edges: each boundary and message a changed line of the engine would move.

Same style as test_engine.py: a clean office injection (builders.admin / builders.world), one change,
one consequence. What these add: the words a coder reads in each gap, the exact edges of periods
(a coverage or consent that starts or ends on the day or at the very minute, a time with and one
without a zone), the facts kept on decisions that stop early, how a contained Medication is read,
and the same-day rules' order and duplicate keys.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from fhir_injection import Config, Context, Line, decide, load_rules
from tests.builders import (
    CPT,
    CVX,
    ICD10,
    NDC,
    RXNORM,
    SNOMED,
    SOPT,
    V2_ROUTE,
    V2_SITE,
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
    without,
    world,
)

HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
OTHER = "http://example.org/local-codes"
WHEN = "2026-10-05T09:30:00-05:00"  # the clean administration's time (14:30 UTC)
MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


def detail(decision, code: str) -> str:
    """The part of a gap's message that is about this administration (the rest is the gap's definition)."""
    message, definition = gap(decision, code).message, rules().gaps[code].definition
    assert message.endswith(". " + definition), message
    return message[: -len(definition) - 2]


def coverage(id: str, payer: str = "medicare", **changes) -> dict:
    resource = next(r for r in world(payer=payer) if r["resourceType"] == "Coverage")
    resource["id"] = id
    resource.update(changes)
    return resource


def consent(id: str = "consent-p1", **changes) -> dict:
    resource = next(r for r in world() if r["resourceType"] == "Consent")
    resource["id"] = id
    for key, value in changes.items():
        if value is None:
            resource.pop(key, None)
        else:
            resource[key] = value
    return resource


def charge_item(id: str = "ci1", code: str = "99213", system: str = CPT, **changes) -> dict:
    item = {
        "resourceType": "ChargeItem",
        "id": id,
        "status": "billable",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": system, "code": code}]},
        "occurrenceDateTime": "2026-10-05T10:00:00-05:00",
    }
    item.update(changes)
    return item


def unmapped(display: str = "mystery drug", **coding) -> dict:
    return {
        "coding": [
            {"system": RXNORM, "code": "999999", "display": display},
            *([coding] if coding else []),
        ]
    }


# ----------------------------------------------------------------------------- what the coder reads


MESSAGES = {
    "not done": (admin(status="not-done"), world(), "not-administered", "Status is 'not-done'"),
    "no status": (admin(status=None), world(), "not-administered", "Status is missing"),
    "subject to nothing": (
        admin(subject={"reference": "Patient/ghost"}),
        world(),
        "missing-patient",
        "MedicationAdministration.subject 'Patient/ghost' points to Patient/ghost, "
        "which is not in the source",
    ),
    "subject to a practitioner": (
        admin(subject={"reference": "Practitioner/nurse"}),
        world(),
        "missing-patient",
        "MedicationAdministration.subject 'Practitioner/nurse' points to a Practitioner, "
        "not a Patient",
    ),
    "no subject": (
        admin(subject=None),
        world(),
        "missing-patient",
        "MedicationAdministration.subject is missing",
    ),
    "no medication": (
        admin(medicationCodeableConcept=None),
        world(),
        "missing-medication",
        "no medicationCodeableConcept or medicationReference",
    ),
    "medication to nothing": (
        admin(
            medicationCodeableConcept=None,
            medicationReference={"reference": "http://ehr.example/fhir/Medication/m9"},
        ),
        world(),
        "missing-medication",
        "medicationReference 'http://ehr.example/fhir/Medication/m9' points to Medication/m9, "
        "which is not in the source",
    ),
    "medication by display only": (
        admin(medicationCodeableConcept=None, medicationReference={"display": "ketorolac"}),
        world(),
        "missing-medication",
        "medicationReference has no usable reference",
    ),
    "medication urn": (
        admin(medicationCodeableConcept=None, medicationReference={"reference": "urn:uuid:1f3a"}),
        world(),
        "missing-medication",
        "medicationReference 'urn:uuid:1f3a' names no entry of its Bundle",
    ),
    "no contained medication": (
        contained_admin() | {"medicationReference": {"reference": "#other"}},
        world(),
        "missing-medication",
        "medicationReference '#other' names no contained Medication",
    ),
    # no context, and no encounter of the patient's contains its time (the next day): nothing places it
    "no context": (
        admin(context=None, effectiveDateTime="2026-10-06T09:30:00-05:00"),
        world(),
        "missing-encounter",
        "MedicationAdministration.context is missing, and none of the patient's 1 Encounter(s) in the "
        "source has a period that contains its time",
    ),
    "context to nothing": (
        admin(context={"reference": "Encounter/ghost"}),
        world(),
        "missing-encounter",
        "MedicationAdministration.context 'Encounter/ghost' points to Encounter/ghost, "
        "which is not in the source",
    ),
    "context to an episode of care": (
        admin(context={"reference": "EpisodeOfCare/eoc1"}),
        [
            *world(),
            {
                "resourceType": "EpisodeOfCare",
                "id": "eoc1",
                "status": "active",
                "patient": {"reference": "Patient/p1"},
            },
        ],
        "missing-encounter",
        "MedicationAdministration.context 'EpisodeOfCare/eoc1' points to an EpisodeOfCare, "
        "not an Encounter",
    ),
    "virtual encounter": (
        admin(),
        world(encounter_class="VR"),
        "missing-encounter",
        "The linked encounter is virtual (class VR): no injection is given in a virtual visit; "
        "link the in-person encounter",
    ),
    "bortezomib": (
        admin(medicationCodeableConcept=med(RXNORM, "358258"), dosage=dosage(dose=dose(2.3, "mg"))),
        world(),
        "antineoplastic",
        "J9041 is antineoplastic: bill 96401",
    ),
    "leuprolide": (
        admin(
            medicationCodeableConcept=med(RXNORM, "42375"),
            dosage=dosage(dose=dose(7.5, "mg")),
            reasonCode=[{"coding": [{"system": ICD10, "code": "C61"}]}],
        ),  # for cancer
        world(),
        "antineoplastic",
        "J9217 is antineoplastic hormonal: bill 96402",
    ),
    "bortezomib by a text route": (
        admin(
            medicationCodeableConcept=med(RXNORM, "358258"),
            dosage=dosage(route={"text": "SC"}, dose=dose(2.3, "mg")),
        ),
        world(),
        "route-from-text",
        "The route is text only; its text is on the reviewed list as subcutaneous",
    ),
    "iv push": (
        admin(dosage=dosage(route=route(V2_ROUTE, "IV"))),
        world(),
        "route-not-sc-im",
        "Route is intravenous: IV therapeutic push (no rate, duration or method): 96374 applies",
    ),
    "intradermal": (
        admin(dosage=dosage(route=route(V2_ROUTE, "ID"))),
        world(),
        "route-not-sc-im",
        "Route is intradermal",
    ),
    "unknown route codes": (
        admin(
            dosage=dosage(
                route={
                    "coding": [
                        {"system": OTHER, "code": "IM"},
                        {"system": OTHER, "code": "I-M"},
                        {"system": OTHER, "code": "im"},
                        {"system": OTHER, "code": "intramuscular"},
                    ]
                }
            )
        ),
        world(),
        "missing-route",
        f"route code(s) {OTHER}|IM, {OTHER}|I-M, {OTHER}|im are not in mappings/routes.csv",
    ),  # three shown
    "text route": (
        admin(dosage=dosage(route={"text": "IM"})),
        world(),
        "route-from-text",
        "The route is text only; its text is on the reviewed list as intramuscular",
    ),
    "no route": (admin(dosage=dosage(route=None)), world(), "missing-route", "no dosage.route"),
    "flu vaccine": (
        admin(medicationCodeableConcept=med(CVX, "140")),
        world(),
        "vaccine",
        "CVX 140 (Influenza, seasonal, injectable, preservative free, product 90656): bill G0008",
    ),
    "inpatient": (
        admin(),
        world(encounter_class="IMP"),
        "facility-setting",
        "Inpatient encounter: administration is inside the DRG payment",
    ),
    "emergency": (
        admin(),
        world(encounter_class="EMER"),
        "facility-setting",
        "Hospital outpatient/emergency encounter (POS 23): the facility bills 96372 on its institutional "
        "claim",
    ),
    "no time": (admin(effectiveDateTime=None), world(), "missing-time", "effective[x] is missing"),
    "month only": (
        admin(effectiveDateTime="2026-10"),
        world(),
        "missing-time",
        "effective[x] is not a full date or date-time",
    ),
    "no dose": (
        admin(dosage=dosage(dose=None)),
        world(),
        "missing-dose",
        "dosage.dose has no value with a unit",
    ),
    "two tonnes": (
        admin(dosage=dosage(dose=dose(2 * 10**9, "mg"))),
        world(),
        "missing-dose",
        "Dose 2000000000 mg is implausible",
    ),
    "two tonnes in grams": (
        admin(dosage=dosage(dose=dose(2 * 10**6, "g"))),
        world(),
        "missing-dose",
        "Dose 2000000 g is implausible",
    ),
    "one tonne": (
        admin(dosage=dosage(dose=dose(10**9, "mg"))),
        world(),
        "missing-dose",  # not above the limit
        "Dose 1000000000 mg gives 66666667 billing units: implausible",
    ),
    "mL without strength": (
        admin(dosage=dosage(dose=dose(2, "mL"))),
        world(),
        "missing-dose",
        "Dose in mL needs the product strength to convert to mg",
    ),
    "zero mg": (
        admin(dosage=dosage(dose=dose(0, "mg"))),
        world(),
        "missing-dose",
        "Dose 0 mg is not positive",
    ),
    "puffs": (
        admin(dosage=dosage(dose=dose(2, "puffs"))),
        world(),
        "missing-dose",
        "Unit 'puffs' is not a known UCUM mass, volume or unit code",
    ),
    "puffs of an unmapped drug": (
        admin(medicationCodeableConcept=unmapped(), dosage=dosage(dose=dose(2, "puffs"))),
        world(),
        "missing-dose",
        "dosage.dose is not a positive amount in a known unit",
    ),
    "zero of an unmapped drug": (
        admin(medicationCodeableConcept=unmapped(), dosage=dosage(dose=dose(0, "mg"))),
        world(),
        "missing-dose",
        "dosage.dose is not a positive amount in a known unit",
    ),
    "no site": (admin(dosage=dosage(site=None)), world(), "missing-site", "No dosage.site"),
    "text site": (
        admin(dosage=dosage(site={"text": "left arm"})),
        world(),
        "missing-site",
        "The site is text only",
    ),
    "site code without system": (
        admin(dosage=dosage(site={"coding": [{"code": "LD", "display": "Left deltoid"}]})),
        world(),
        "missing-site",
        "The site is text only",
    ),
    "no performer": (admin(performer=None), world(), "missing-performer", "No performer"),
    "performer to nothing": (
        admin(performer=[{"actor": {"reference": "Practitioner/ghost"}}]),
        world(),
        "missing-performer",
        "MedicationAdministration.performer.actor 'Practitioner/ghost' points to Practitioner/ghost, "
        "which is not in the source",
    ),
    "E/M on the encounter": (
        admin(),
        replace_resource(
            world(), "Encounter", type=[{"coding": [{"system": CPT, "code": "99213"}]}]
        ),
        "em-same-day",
        "E/M 99213 on the same encounter or day: put modifier 25 on the E/M",
    ),
    "two E/Ms": (
        admin(),
        [
            *replace_resource(
                world(), "Encounter", type=[{"coding": [{"system": CPT, "code": "99213"}]}]
            ),
            charge_item(code="99212"),
        ],
        "em-same-day",
        "E/M 99212, 99213 on the same encounter or day: put modifier 25 on the E/M",
    ),
    "99211 for medicare": (
        admin(),
        replace_resource(
            world(), "Encounter", type=[{"coding": [{"system": CPT, "code": "99211"}]}]
        ),
        "em-same-day",
        "E/M 99211 on the same encounter or day: put modifier 25 on the E/M; "
        "medicare pays no 99211 with an injection: drop the 99211 and bill 96372",
    ),
    "enoxaparin for medicare": (
        admin(medicationCodeableConcept=med(RXNORM, "67108"), dosage=dosage(dose=dose(40, "mg"))),
        world(),
        "self-administered-drug",
        "J1650 is on the self-administered drug list: held (sad_policy hold)",
    ),
    "no NDC for medicaid": (
        admin(medicationCodeableConcept=med(RXNORM, "35827")),
        world(payer="medicaid"),
        "missing-ndc",
        "medicaid requires the NDC",
    ),
    "unmapped": (
        admin(medicationCodeableConcept=unmapped()),
        world(),
        "unmapped-medication",
        "No RxNorm, NDC or HCPCS code of the drug is in mappings/: J3490",
    ),
    "by name": (
        admin(medicationCodeableConcept={"text": "Toradol 30 mg/mL"}),
        world(),
        "unmapped-medication",
        "Matched to J1885 by drug name only, not by code",
    ),
}


@pytest.mark.parametrize("case", list(MESSAGES))
def test_each_gap_tells_the_coder_what_was_found(case):
    a, w, code, expected = MESSAGES[case]
    d = decide_one(a, w)
    assert detail(d, code) == expected
    g = gap(d, code)
    assert (g.field, g.rule) == (rules().gaps[code].field, rules().gaps[code].source)


@pytest.mark.parametrize(
    "a,w,code",
    [
        (admin(), world(coverage=False), "missing-coverage"),
        (admin(effectiveDateTime="2026-10-05T12:00:00-05:00"), world(), "time-outside-encounter"),
    ],
)
def test_a_gap_without_particulars_says_just_its_definition(a, w, code):
    assert gap(decide_one(a, w), code).message == rules().gaps[code].definition


def test_the_mue_gap_counts_the_injections_of_the_day():
    drugs = [("35827", 30), ("26225", 4), ("3264", 4), ("3498", 50), ("8745", 25)]
    admins = [
        admin(
            id=f"m{i}",
            effectiveDateTime=f"2026-10-05T09:{10 + i}:00-05:00",
            medicationCodeableConcept=med(RXNORM, rx),
            dosage=dosage(dose=dose(amt, "mg")),
        )
        for i, (rx, amt) in enumerate(drugs)
    ]
    fifth = decide_many(admins)[4]
    assert detail(fifth, "units-over-mue") == "Injection 5 of 5 on 2026-10-05; MUE is 4"


def test_a_duplicate_names_the_original():
    _, copy = decide_many([admin(id="a"), admin(id="b")])
    assert detail(copy, "duplicate") == "Same as MedicationAdministration/a"


# ----------------------------------------------------------------------------- decisions that stop early


@pytest.mark.parametrize(
    "encounter_class,setting,pos,procedure",
    [
        ("EMER", "facility", "23", "96372"),  # the facility bills it on its institutional claim
        ("IMP", "inpatient", "21", None),  # inside the DRG: no procedure
    ],
)
def test_a_facility_decision_keeps_the_facts_the_report_needs(
    encounter_class, setting, pos, procedure
):
    d = decide_one(admin(meta={"versionId": "3"}), world(encounter_class=encounter_class))
    assert (d.administration, d.version, d.outcome, d.procedure) == (
        "MedicationAdministration/ma1",
        "3",
        "not-billable",
        procedure,
    )
    assert (d.service_date, d.payer_type) == ("2026-10-05", "medicare")
    assert (d.patient, d.encounter, d.setting, d.place_of_service) == (
        "Patient/p1",
        "Encounter/e-p1",
        setting,
        pos,
    )
    assert (d.drug, d.units, d.medication_text) == ("J1885", 2, "ketorolac")
    assert gap_codes(d) == ["facility-setting"]
    assert d.lines == () and d.claim_status is None


def test_a_facility_injection_of_no_known_medication_names_no_drug():
    d = decide_one(admin(medicationCodeableConcept=None), world(encounter_class="EMER"))
    assert (d.outcome, d.drug, d.units) == ("not-billable", None, None)
    assert gap_codes(d) == ["facility-setting"]  # not billed: only its explanation (raised-for)


def test_inpatient_injections_are_not_counted_against_the_office_limit():
    stay = replace_resource(
        world(encounter_class="IMP"),
        "Encounter",
        period={"start": "2026-10-01T08:00:00-05:00", "end": "2026-10-09T12:00:00-05:00"},
    )
    admins = [
        admin(id=f"m{i}", effectiveDateTime=f"2026-10-0{i + 1}T09:30:00-05:00") for i in range(6)
    ]
    decisions = decide_many(admins, stay)
    assert [gap_codes(d) for d in decisions] == [["facility-setting"]] * 6


def test_an_encounter_class_in_another_shape_is_no_setting():
    w = replace_resource(
        world(),
        "Encounter",
        **{"class": [{"coding": [{"system": "x", "code": "IMP"}]}], "location": None},
    )  # the class alone, no place
    d = decide_one(admin(), w)
    assert (d.outcome, d.setting, d.place_of_service) == (
        "held",
        None,
        None,
    )  # never assumed office
    assert (d.procedure, d.claim_status, gap_codes(d)) == ("96372", "draft", ["unknown-setting"])
    assert gap(d, "unknown-setting").severity == "error"


def test_an_unmapped_drug_in_the_emergency_room_is_still_named():
    d = decide_one(admin(medicationCodeableConcept=unmapped()), world(encounter_class="EMER"))
    assert (d.drug, d.units, d.medication_text) == ("J3490", 1, "mystery drug")


@pytest.mark.parametrize(
    "status,outcome", [("entered-in-error", "void"), ("not-done", "not-billable")]
)
def test_a_void_or_not_given_decision_names_its_administration_and_version(status, outcome):
    d = decide_one(admin(status=status, meta={"versionId": "7"}))
    assert (d.administration, d.version, d.outcome, d.procedure) == (
        "MedicationAdministration/ma1",
        "7",
        outcome,
        None,
    )


def test_the_version_and_time_as_given_are_kept():
    d = decide_one(admin(meta={"versionId": "12"}))
    assert d.version == "12"
    assert d.effective == WHEN
    assert (d.setting, d.drug, d.units, d.medication_text) == ("office", "J1885", 2, "ketorolac")
    assert decide_one(admin(meta=["12"])).version is None  # a malformed meta is no version


def test_a_time_that_is_not_text_is_not_kept():
    d = decide_one(admin(effectiveDateTime=20261005))
    assert d.effective is None
    assert detail(d, "missing-time") == "effective[x] is not a full date or date-time"


def test_without_an_encounter_no_setting_is_assumed():
    """No encounter (none named, none containing its time) or only a virtual one: no place of service,
    never the office (96372.md 'Unknowns')."""
    alone = admin(context=None, effectiveDateTime="2026-10-06T09:30:00-05:00")
    for d in (decide_one(alone), decide_one(resources=world(encounter_class="VR"))):
        assert (d.setting, d.place_of_service) == (None, None)
        assert "missing-encounter" in gap_codes(d) and d.outcome == "held"
    assert decide_one(admin(context={"reference": "Encounter/ghost"})).encounter is None


def test_without_a_patient_the_decision_names_none():
    assert decide_one(admin(subject={"reference": "Patient/ghost"})).patient is None


def test_no_medication_still_bills_the_administration_alone_and_judges_no_dose():
    d = decide_one(admin(medicationCodeableConcept=None, dosage=dosage(dose=None)))
    assert gap_codes(d) == [
        "missing-medication"
    ]  # the dose is judged against a drug, and there is none
    assert d.lines == (
        Line(
            "administration",
            "http://www.ama-assn.org/go/cpt",
            "96372",
            "Therapeutic, prophylactic, or diagnostic injection; subcutaneous or intramuscular",
            (),
            1,
            Decimal("15.36"),
        ),
    )
    assert (d.drug, d.units, d.medication_text) == (None, None, None)


def test_the_lines_carry_the_code_descriptors():
    d = decide_one()
    assert line(d, "administration").display == (
        "Therapeutic, prophylactic, or diagnostic injection; subcutaneous or intramuscular"
    )
    assert line(d, "drug").display == "Injection, ketorolac tromethamine, per 15 mg"
    assert line(d, "drug").text is None  # only an unclassified drug is described in text


def test_no_billing_provider_means_no_claim_and_says_why():
    w = replace_resource(world(), "Encounter", serviceProvider=None)
    d = decide_one(admin(performer=None), w)
    assert d.outcome == "held" and d.provider is None  # outcome claim always means an active Claim
    assert d.claim_status is None
    assert d.claim_blocker == "missing-billing-provider"
    assert gap_codes(d) == ["missing-performer", "missing-billing-provider"]
    assert detail(d, "missing-billing-provider") == (
        "Encounter.serviceProvider is missing; no billing_provider is configured; no performer"
    )


def test_a_service_provider_that_is_not_an_organization_is_not_the_billing_provider():
    w = replace_resource(world(), "Encounter", serviceProvider={"reference": "Practitioner/nurse"})
    assert (
        decide_one(admin(), w, Config(billing_provider="Organization/payer")).provider
        == "Organization/payer"
    )


# ----------------------------------------------------------------------------- the medication


def test_contained_medication_code_gives_the_drug_and_its_1_mg_per_ml_strength():
    # epinephrine 1 mg/mL (RxNorm 1660014): 0.3 mL is 0.3 mg = 3 x J0165 (0.1 mg; J0171 before 2025-07-01); 1 mg/mL must not be dropped
    a = contained_admin(
        strength=None, dose_ml="0.3", code={"coding": [{"system": RXNORM, "code": "1660014"}]}
    )
    a["contained"][0]["ingredient"] = []
    d = decide_one(a)
    assert (line(d, "drug").code, line(d, "drug").quantity) == ("J0165", 3)
    assert gap_codes(d) == []


@pytest.mark.parametrize("ml,units", [("0.4", 4), ("0.3", 3), ("0.8", 8)])
def test_contained_strength_of_40_mg_per_0_4_ml(ml, units):
    a = contained_admin(
        strength=(40, "mg", 0.4, "mL"),
        dose_ml=ml,
        code={"coding": [{"system": RXNORM, "code": "67108", "display": "enoxaparin"}]},
    )
    d = decide_one(a, world(payer="commercial"))
    assert (line(d, "drug").code, line(d, "drug").quantity) == ("J1650", units)


def test_contained_strength_of_1000_mcg_per_ml():
    a = contained_admin(
        strength=(1000, "mcg", 1, "mL"),
        dose_ml="1.5",
        code={"coding": [{"system": RXNORM, "code": "11248", "display": "cyanocobalamin"}]},
    )
    assert (line(decide_one(a), "drug").code, line(decide_one(a), "drug").quantity) == ("J3420", 2)


def test_contained_strength_of_1_mg_per_ml():
    a = contained_admin(
        strength=(1, "mg", 1, "mL"),
        dose_ml="0.5",
        code={"coding": [{"system": RXNORM, "code": "3992", "display": "epinephrine"}]},
    )
    assert line(decide_one(a), "drug").quantity == 5  # 0.5 mg / 0.1 mg


def test_the_ingredient_code_identifies_the_drug_without_a_name_match():
    d = decide_one(contained_admin(code={"coding": [{"system": RXNORM, "code": "999999"}]}))
    assert (line(d, "drug").code, line(d, "drug").quantity) == ("J1885", 4)
    assert "unmapped-medication" not in gap_codes(d)
    assert (
        d.medication_text == "ketorolac"
    )  # from the ingredient, the Medication's code has no words


def test_the_medication_text_comes_from_the_reference_display_when_the_medication_has_none():
    a = contained_admin(code={"coding": [{"system": RXNORM, "code": "999999"}]}, dose_ml=2)
    a["contained"][0]["ingredient"] = []
    a["medicationReference"]["display"] = "Mystery compound"
    d = decide_one(a)
    assert d.medication_text == "Mystery compound"
    assert line(d, "drug").text == "Mystery compound 2 mL"


def test_an_ingredient_entry_that_is_not_an_object_is_skipped_not_the_rest():
    a = contained_admin(code={"coding": [{"system": RXNORM, "code": "999999"}]})
    a["contained"][0]["ingredient"].insert(0, "ketorolac")
    d = decide_one(a)
    assert (line(d, "drug").code, line(d, "drug").quantity) == ("J1885", 4)


def test_the_medication_code_text_names_the_drug_before_its_ingredient():
    assert decide_one(contained_admin()).medication_text == "ketorolac tromethamine injection"


def test_a_reference_to_a_resource_that_is_not_a_medication_is_no_medication():
    d = decide_one(
        admin(
            medicationCodeableConcept=None, medicationReference={"reference": "Practitioner/nurse"}
        )
    )
    assert gap(d, "missing-medication").severity == "error"
    assert (d.medication_text, line(d, "drug")) == (None, None)


def test_a_coding_without_a_code_is_passed_over_not_the_rest():
    medication = {
        "coding": [{"system": NDC, "display": "ketorolac"}, {"system": RXNORM, "code": "35827"}]
    }
    d = decide_one(admin(medicationCodeableConcept=medication))
    assert line(d, "drug").code == "J1885"
    assert "unmapped-medication" not in gap_codes(d)  # found by its code, not by the name


def test_a_contained_resource_that_is_not_a_medication_is_not_the_drug():
    a = contained_admin()
    a["contained"][0]["resourceType"] = "Substance"
    assert (
        detail(decide_one(a), "missing-medication")
        == "medicationReference '#med1' names no contained Medication"
    )


def test_a_product_code_with_a_strength_wins_over_a_later_ingredient_code():
    # an EHR sends the SCD (30 mg/mL) and the ingredient: the SCD's strength turns 2 mL into 60 mg
    medication = {
        "coding": [{"system": RXNORM, "code": "860096"}, {"system": RXNORM, "code": "35827"}]
    }
    d = decide_one(admin(medicationCodeableConcept=medication, dosage=dosage(dose=dose(2, "mL"))))
    assert (line(d, "drug").code, line(d, "drug").quantity) == ("J1885", 4)


def test_a_cvx_code_with_padding_zeros_is_still_the_vaccine():
    d = decide_one(admin(medicationCodeableConcept=med(CVX, "043")))
    assert (d.outcome, d.procedure) == ("not-96372", "G0010")


def test_a_code_is_a_vaccine_only_in_the_cvx_system():
    d = decide_one(
        admin(medicationCodeableConcept=med(RXNORM, "33"))
    )  # "33" is pneumococcal only as CVX
    assert (d.outcome, d.procedure) == ("held", "96372")  # a 96372, held for the J3490's NDC
    assert line(d, "drug").code == "J3490"


def test_an_unknown_hcpcs_code_is_unclassified():
    d = decide_one(admin(medicationCodeableConcept=med(HCPCS, "J0000")))
    assert line(d, "drug").code == "J3490"
    assert "unmapped-medication" in gap_codes(d)


def test_the_name_match_reads_the_text_and_every_coding_display():
    text_and_display = {
        "coding": [{"system": RXNORM, "code": "999999", "display": "30 mg/mL"}],
        "text": "Toradol",
    }
    assert (
        line(decide_one(admin(medicationCodeableConcept=text_and_display)), "drug").code == "J1885"
    )
    second_display = {
        "coding": [
            {"system": RXNORM, "code": "999999", "display": "injection"},
            {"system": OTHER, "code": "x1", "display": "Toradol"},
        ]
    }
    assert line(decide_one(admin(medicationCodeableConcept=second_display)), "drug").code == "J1885"


# ----------------------------------------------------------------------------- dose and NDC quantity


def test_an_implausible_dose_is_never_carried_onto_the_claim():
    a = admin(medicationCodeableConcept=unmapped(), dosage=dosage(dose=dose(2 * 10**9, "mg")))
    drug = line(decide_one(a), "drug")
    assert drug.text == "mystery drug"  # no "2000000000 mg"
    assert drug.ndc_quantity is None and drug.ndc_unit is None


def test_an_unmapped_drug_without_a_dose_is_named_without_one():
    d = decide_one(admin(medicationCodeableConcept=unmapped(), dosage=dosage(dose=None)))
    assert line(d, "drug").text == "mystery drug"
    assert "missing-dose" in gap_codes(d)


def test_one_mg_of_an_unmapped_drug_is_one_unit():
    d = decide_one(admin(medicationCodeableConcept=unmapped(), dosage=dosage(dose=dose(1, "mg"))))
    assert line(d, "drug").quantity == 1
    assert "missing-dose" not in gap_codes(d)


def test_ndc_quantity_of_a_mass_dose_is_in_grams_even_from_mcg():
    # cyanocobalamin 1,000 mcg with an NDC and no strength: 1,000 mcg = 0.001 g
    medication = {
        "coding": [{"system": RXNORM, "code": "11248"}, {"system": NDC, "code": "12345-6789-01"}]
    }
    d = decide_one(
        admin(medicationCodeableConcept=medication, dosage=dosage(dose=dose(1000, "mcg")))
    )
    assert (line(d, "drug").ndc_quantity, line(d, "drug").ndc_unit) == (Decimal("0.001"), "GR")


def test_ndc_quantity_of_a_volume_dose_is_in_ml_even_from_litres():
    medication = {
        "coding": [{"system": RXNORM, "code": "1665459"}, {"system": NDC, "code": "00409379601"}]
    }
    d = decide_one(
        admin(medicationCodeableConcept=medication, dosage=dosage(dose=dose(0.002, "L")))
    )
    assert (line(d, "drug").ndc_quantity, line(d, "drug").ndc_unit) == (Decimal(2), "ML")
    assert line(d, "drug").quantity == 4  # 2 mL of the 30 mg/mL product is 60 mg = 4 x 15 mg


def test_ndc_quantity_of_a_dose_in_units_is_in_units():
    medication = unmapped("mystery insulin", system=NDC, code="12345-6789-01")
    d = decide_one(
        admin(medicationCodeableConcept=medication, dosage=dosage(dose=dose(10, "[iU]")))
    )
    # NCPDP billing unit standard: F2 for international units (mappings/ndc_units.csv)
    assert (line(d, "drug").ndc_quantity, line(d, "drug").ndc_unit) == (Decimal(10), "F2")


# ----------------------------------------------------------------------------- route, site, performer, diagnosis


def test_a_site_keeps_each_coding_with_its_own_or_the_table_display():
    site = {
        "coding": [
            {"system": SNOMED, "code": "7771000", "display": "Left"},  # laterality first
            {"system": SNOMED, "code": "35259002"},
        ]
    }
    d = decide_one(admin(dosage=dosage(site=site)))
    assert [(c.system, c.code, c.display) for c in d.body_site] == [
        (SNOMED, "7771000", "Left"),
        (SNOMED, "35259002", "Deltoid muscle"),
    ]
    assert d.body_site_text == "Deltoid muscle (left)"


def test_a_known_site_keeps_the_display_documented():
    d = decide_one(
        admin(
            dosage=dosage(
                site={"coding": [{"system": V2_SITE, "code": "LD", "display": "L deltoid"}]}
            )
        )
    )
    assert [(c.code, c.display) for c in d.body_site] == [("LD", "L deltoid")]
    d = decide_one(admin(dosage=dosage(site={"coding": [{"system": V2_SITE, "code": "LD"}]})))
    assert [(c.code, c.display) for c in d.body_site] == [("LD", "Left deltoid")]


def test_an_unknown_site_code_is_carried_with_its_display():
    site = {"coding": [{"system": OTHER, "code": "FLANK-L", "display": "Left flank"}]}
    d = decide_one(admin(dosage=dosage(site=site)))
    assert [(c.system, c.code, c.display) for c in d.body_site] == [
        (OTHER, "FLANK-L", "Left flank")
    ]
    assert d.body_site_text == "Left flank"
    assert "missing-site" not in gap_codes(d)


def test_an_unknown_site_code_without_display_takes_the_site_text():
    d = decide_one(
        admin(
            dosage=dosage(
                site={"coding": [{"system": OTHER, "code": "FLANK-L"}], "text": "left flank"}
            )
        )
    )
    assert d.body_site_text == "left flank"


def test_the_laterality_of_a_known_site_is_added_to_text_from_another_coding():
    site = {
        "coding": [
            {"system": OTHER, "code": "UA", "display": "Upper arm"},
            {"system": V2_SITE, "code": "LD"},
        ]
    }
    assert decide_one(admin(dosage=dosage(site=site))).body_site_text == "Upper arm (left)"


def test_a_practitioner_role_is_a_performer():
    role = {
        "resourceType": "PractitionerRole",
        "id": "pr1",
        "practitioner": {"reference": "Practitioner/nurse"},
    }
    d = decide_one(
        admin(performer=[{"actor": {"reference": "PractitionerRole/pr1"}}]), [*world(), role]
    )
    assert d.performer == "PractitionerRole/pr1"
    assert "missing-performer" not in gap_codes(d)


def test_malformed_performer_entries_are_passed_over():
    performers = [
        "nurse",
        {"actor": "Practitioner/nurse"},
        {"actor": {"reference": "Practitioner/nurse"}},
    ]
    assert decide_one(admin(performer=performers)).performer == "Practitioner/nurse"


def test_malformed_dosage_and_context_are_gaps_not_crashes():
    d = decide_one(admin(dosage=[admin()["dosage"]], context=[{"reference": "Encounter/e-p1"}]))
    assert {"missing-route", "missing-site", "missing-dose", "missing-encounter"} <= set(
        gap_codes(d)
    )
    assert detail(d, "missing-encounter") == "MedicationAdministration.context is missing"


def test_only_icd10_codings_are_diagnoses():
    reason = [
        {"coding": [{"system": SNOMED, "code": "279039007"}, {"system": ICD10, "code": "M54.50"}]}
    ]
    assert [c.code for c in decide_one(admin(reasonCode=reason)).diagnoses] == ["M54.50"]


def test_only_conditions_give_diagnoses():
    obs = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": ICD10, "code": "R50.9"}]},
    }
    d = decide_one(admin(reasonReference=[{"reference": "Observation/o1"}]), [*world(), obs])
    assert [c.code for c in d.diagnoses] == ["M54.50"]  # the encounter's


def test_encounter_diagnoses_go_by_rank_then_unranked_last():
    conds = [
        {
            "resourceType": "Condition",
            "id": cid,
            "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": ICD10, "code": code}]},
        }
        for cid, code in [("ca", "A00"), ("cb", "B00"), ("cc", "C00"), ("cd", "D00")]
    ]
    diagnosis = [
        {"condition": {"reference": "Condition/cb"}, "rank": 2},
        {"condition": {"reference": "Condition/cc"}},  # no rank
        {"condition": {"reference": "Condition/cd"}, "rank": "1"},  # not a number: unranked
        {"condition": {"reference": "Condition/ca"}, "rank": 1},
    ]
    w = replace_resource(world(), "Encounter", diagnosis=diagnosis) + conds
    assert [c.code for c in decide_one(admin(), w).diagnoses] == ["A00", "B00", "C00", "D00"]


def test_the_encounter_reason_reference_gives_a_diagnosis():
    w = replace_resource(
        world(), "Encounter", diagnosis=None, reasonReference=[{"reference": "Condition/c-p1"}]
    )
    assert [c.code for c in decide_one(admin(), w).diagnoses] == ["M54.50"]


def test_at_most_twelve_diagnoses_the_claim_form_holds():
    reasons = [{"coding": [{"system": ICD10, "code": f"Z{n:02d}.0"}]} for n in range(13)]
    assert [c.code for c in decide_one(admin(reasonCode=reasons)).diagnoses] == [
        f"Z{n:02d}.0" for n in range(12)
    ]


# ----------------------------------------------------------------------------- periods: the edges of a day


def _covered(**period) -> bool:
    w = replace_resource(world(), "Coverage", period=period)
    return "missing-coverage" not in gap_codes(decide_one(admin(), w))


@pytest.mark.parametrize(
    "period,covered",
    [
        ({"start": "2026-10-05", "end": "2026-12-31"}, True),  # starts on the service date
        ({"start": "2026-01-01", "end": "2026-10-05"}, True),  # ends on the service date
        ({"start": "2026-10-05", "end": "2026-10-05"}, True),  # a one-day coverage
        ({"start": "2026-10-06"}, False),  # starts the next day
        ({"start": "2026-01-01", "end": "2026-10-04"}, False),  # ended the day before
        ({"start": WHEN}, True),  # starts at the very minute
        ({"end": WHEN}, True),  # ends at the very minute
        ({"start": "2026-10-05T09:31:00-05:00"}, False),  # a minute later
        ({"end": "2026-10-05T09:29:00-05:00"}, False),  # a minute earlier
        (
            {"end": "2026-10-05T14:00:00Z"},
            False,
        ),  # ended at 09:00 Central: instants are compared, not wall clocks
        ({"start": "2026-10-05T14:30:00Z"}, True),  # the same instant written in UTC
    ],
)
def test_coverage_period_edges(period, covered):
    assert _covered(**period) is covered


@pytest.mark.parametrize(
    "effective,covered",
    [
        ("2026-10-05", True),  # a date-only administration on the coverage's last day
        ("2026-10-06", False),
    ],
)
def test_coverage_ending_at_a_time_against_a_date_only_administration(effective, covered):
    w = replace_resource(
        world(), "Coverage", period={"start": "2026-01-01", "end": "2026-10-05T08:00:00-05:00"}
    )
    assert (
        "missing-coverage" not in gap_codes(decide_one(admin(effectiveDateTime=effective), w))
    ) is covered


@pytest.mark.parametrize(
    "start,inside",
    [
        ("2026-10-05T09:00:00", True),  # no zone: the wall clock 09:00 is before 09:30
        (
            "2026-10-05T10:00:00",
            False,
        ),  # wall clock 10:00 is after 09:30, though 10:00 UTC is before 14:30 UTC
    ],
)
def test_a_period_without_a_zone_is_compared_by_the_wall_clock(start, inside):
    w = replace_resource(world(), "Coverage", period={"start": start})
    assert ("missing-coverage" not in gap_codes(decide_one(admin(), w))) is inside


def test_a_time_without_a_zone_against_periods_with_one():
    d = decide_one(
        admin(effectiveDateTime="2026-10-05T09:30:00")
    )  # wall clock, like the encounter's -05:00 times
    assert d.outcome == "claim"
    assert "time-outside-encounter" not in gap_codes(d)
    late = decide_one(admin(effectiveDateTime="2026-10-05T11:30:00"))
    assert "time-outside-encounter" in gap_codes(late)


def test_an_encounter_in_utc_holds_a_local_time_of_the_same_instant():
    w = replace_resource(
        world(),
        "Encounter",
        period={"start": "2026-10-05T14:00:00Z", "end": "2026-10-05T16:00:00Z"},
    )
    assert "time-outside-encounter" not in gap_codes(
        decide_one(admin(), w)
    )  # 09:30-05:00 is 14:30Z


def test_an_open_ended_encounter_still_has_a_start():
    w = replace_resource(world(), "Encounter", period={"start": "2026-10-05T10:00:00-05:00"})
    assert "time-outside-encounter" in gap_codes(decide_one(admin(), w))


def test_a_date_only_administration_is_inside_its_days_encounter():
    d = decide_one(admin(effectiveDateTime="2026-10-05"))
    assert "time-outside-encounter" not in gap_codes(d)
    assert d.service_date == "2026-10-05"


@pytest.mark.parametrize(
    "change,has_consent",
    [
        (
            {"provision": {"period": {"start": "2026-10-05", "end": "2026-10-05"}}},
            True,
        ),  # on the day
        ({"provision": {"period": {"start": WHEN}}}, True),  # from the very minute
        ({"provision": {"period": {"end": WHEN}}}, True),  # to the very minute
        (
            {"provision": {"period": {"start": "2026-01-01", "end": "2026-10-04"}}},
            False,
        ),  # ended the day before
        ({"dateTime": "2026-10-05"}, True),  # signed the same day
        ({"dateTime": WHEN}, True),  # signed at the very minute
        ({"dateTime": "2026-10-05T09:45:00-05:00"}, False),  # signed after the injection
        ({"dateTime": "2026-10-06", "provision": None}, False),  # signed the next day, no period
        ({"provision": []}, True),  # a malformed provision is no restriction
    ],
)
def test_consent_edges(change, has_consent):
    w = [*without(world(), "Consent"), consent(**change)]
    assert ("missing-consent" not in gap_codes(decide_one(admin(), w))) is has_consent


@pytest.mark.parametrize(
    "first",
    [
        {"status": "inactive"},
        {"provision": {"type": "deny"}},
        {"provision": {"period": {"end": "2026-06-30"}}},
        {"dateTime": "2026-12-01"},
    ],
)
def test_a_later_valid_consent_counts_after_one_that_does_not(first):
    w = [*without(world(), "Consent"), consent("c-old", **first), consent("c-new")]
    assert "missing-consent" not in gap_codes(decide_one(admin(), w))


# ----------------------------------------------------------------------------- coverage choice and payer type


@pytest.mark.parametrize(
    "first", [{"status": "cancelled"}, {"period": {"start": "2025-01-01", "end": "2025-12-31"}}]
)
def test_a_later_active_coverage_counts_after_one_that_does_not(first):
    w = [
        *world(coverage=False),
        coverage("cov-old", "commercial", **first),
        coverage("cov-now", "medicare"),
    ]
    d = decide_one(admin(), w)
    assert (d.coverage, d.payer_type) == ("Coverage/cov-now", "medicare")


def test_the_coverage_ordered_first_is_billed_whatever_order_they_come_in():
    primary = coverage("cov-z", "medicaid", order=1)
    secondary = coverage("cov-a", "commercial", order=2)
    for pair in ([primary, secondary], [secondary, primary]):
        d = decide_one(admin(), world(coverage=False) + pair)
        assert (d.coverage, d.payer_type) == ("Coverage/cov-z", "medicaid")


def test_without_an_order_the_choice_is_by_id_and_does_not_depend_on_arrival():
    a, b = (
        coverage("cov-a", "commercial"),
        coverage("cov-b", "medicare", order="1"),
    )  # a text order is no order
    for pair in ([a, b], [b, a]):
        assert decide_one(admin(), world(coverage=False) + pair).coverage == "Coverage/cov-a"


def test_the_payer_type_is_read_past_a_coding_without_a_code():
    w = replace_resource(
        world(),
        "Coverage",
        type={
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "display": "health insurance",
                },
                {"system": SOPT, "code": "2"},
            ]
        },
    )
    assert decide_one(admin(), w).payer_type == "medicaid"


def test_a_vaccine_without_coverage_suggests_the_commercial_code():
    d = decide_one(admin(medicationCodeableConcept=med(CVX, "140")), world(coverage=False))
    assert (d.procedure, d.payer_type) == ("90471", None)


# ----------------------------------------------------------------------------- E/M the same day


@pytest.mark.parametrize("status", ["entered-in-error", "not-billable", "aborted"])
def test_a_withdrawn_charge_item_is_no_em(status):
    assert "em-same-day" not in gap_codes(
        decide_one(admin(), [*world(), charge_item(status=status)])
    )


def test_an_em_charge_item_counts_after_a_withdrawn_one():
    items = [charge_item("ci0", status="entered-in-error"), charge_item("ci1")]
    assert "em-same-day" in gap_codes(decide_one(admin(), world() + items))


def test_an_em_charge_item_on_the_same_encounter_counts_without_a_date():
    item = charge_item(context={"reference": "Encounter/e-p1"}, occurrenceDateTime=None)
    assert detail(decide_one(admin(), [*world(), item]), "em-same-day").startswith("E/M 99213 ")
    other = charge_item(context={"reference": "Encounter/other"}, occurrenceDateTime=None)
    assert "em-same-day" not in gap_codes(decide_one(admin(), [*world(), other]))


def test_an_em_charge_item_counts_after_one_of_another_day():
    items = [charge_item("ci0", occurrenceDateTime="2026-09-01"), charge_item("ci1")]
    assert "em-same-day" in gap_codes(decide_one(admin(), world() + items))


@pytest.mark.parametrize("system,code", [(CPT, "96372"), (OTHER, "99213")])
def test_only_a_cpt_em_code_on_a_charge_item_is_an_em(system, code):
    # the injection's own charge (CPT 96372) is no E/M; nor is a local charge code that looks like one
    assert "em-same-day" not in gap_codes(
        decide_one(admin(), [*world(), charge_item(code=code, system=system)])
    )


# ----------------------------------------------------------------------------- same day: order and duplicates


def _modifiers(decisions):
    return [
        line(d, "administration").modifiers if line(d, "administration") else None
        for d in decisions
    ]


def _clean(id, time=WHEN, **changes):
    return admin(id=id, effectiveDateTime=time, **changes)


def test_the_day_is_ordered_by_time_not_by_id_or_arrival():
    later = _clean(
        "a",
        "2026-10-05T09:45:00-05:00",
        medicationCodeableConcept=med(RXNORM, "26225"),
        dosage=dosage(dose=dose(4, "mg")),
    )
    earlier = _clean("b")
    assert _modifiers(decide_many([later, earlier])) == [("XU",), ()]


def test_at_the_same_minute_the_lower_id_is_the_first_injection():
    ondansetron = dict(
        medicationCodeableConcept=med(RXNORM, "26225"), dosage=dosage(dose=dose(4, "mg"))
    )
    for order in (["b", "a"], ["a", "b"]):
        decisions = decide_many([_clean(i, **(ondansetron if i == "b" else {})) for i in order])
        by_id = dict(zip(order, _modifiers(decisions), strict=True))
        assert by_id == {"a": (), "b": ("XU",)}


def test_a_date_only_injection_counts_as_the_start_of_its_day():
    dated = _clean(
        "z",
        "2026-10-05",
        medicationCodeableConcept=med(RXNORM, "26225"),
        dosage=dosage(dose=dose(4, "mg")),
    )
    timed = _clean("a")
    assert _modifiers(decide_many([timed, dated])) == [("XU",), ()]


def test_an_injection_without_a_time_comes_after_the_timed_ones():
    timed, untimed = (
        _clean("z"),
        _clean(
            "a",
            None,
            medicationCodeableConcept=med(RXNORM, "26225"),
            dosage=dosage(dose=dose(4, "mg")),
        ),
    )
    first, second = decide_many([untimed, timed])
    assert (
        line(second, "administration").modifiers == ()
    )  # no time, no service date: not in the day's count
    assert "missing-time" in gap_codes(first)


def test_local_times_of_year_one_still_sort():
    early = _clean("z", "0001-01-01T09:00:00")
    late = _clean(
        "a",
        "0001-01-01T10:00:00",
        medicationCodeableConcept=med(RXNORM, "26225"),
        dosage=dosage(dose=dose(4, "mg")),
    )
    assert _modifiers(decide_many([late, early])) == [
        ("59",),
        (),
    ]  # no coverage in year 1: commercial's 59


def test_only_the_administration_line_gets_the_distinct_modifier():
    _, second = decide_many(
        [
            _clean("a"),
            _clean(
                "b",
                "2026-10-05T09:45:00-05:00",
                medicationCodeableConcept=med(RXNORM, "1665461"),
                dosage=dosage(dose=dose(30, "mg")),
            ),
        ]
    )  # a whole 1 mL ampule
    assert line(second, "administration").modifiers == ("XU",)
    assert line(second, "drug").modifiers == ("JZ",)


def test_without_coverage_the_commercial_distinct_modifier_choice_applies():
    _, second = decide_many(
        [
            _clean("a"),
            _clean(
                "b",
                "2026-10-05T09:45:00-05:00",
                medicationCodeableConcept=med(RXNORM, "26225"),
                dosage=dosage(dose=dose(4, "mg")),
            ),
        ],
        world(coverage=False),
        Config(distinct_modifier={"commercial": "XS"}),
    )
    assert line(second, "administration").modifiers == ("XS",)


def test_what_is_not_a_billed_injection_does_not_count_for_the_day():
    oral = _clean("a", "2026-10-05T09:00:00-05:00", dosage=dosage(route=route(SNOMED, "26643006")))
    copy = _clean("c")  # a duplicate of b
    b = _clean("b")
    decisions = decide_many([oral, b, copy])
    assert _modifiers(decisions) == [None, (), None]


def test_an_injection_the_hospital_bills_does_not_make_the_office_one_the_second():
    er = {
        "resourceType": "Encounter",
        "id": "er",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2026-10-05T07:00:00-05:00", "end": "2026-10-05T08:00:00-05:00"},
    }
    in_er = _clean("a", "2026-10-05T07:30:00-05:00", context={"reference": "Encounter/er"})
    _, office = decide_many([in_er, _clean("b")], [*world(), er])
    assert line(office, "administration").modifiers == ()


def test_a_third_copy_is_a_duplicate_too_and_loses_its_drug():
    first, second, third = decide_many([_clean("a"), _clean("b"), _clean("c")])
    assert first.outcome == "claim"
    for copy in (second, third):
        assert (copy.outcome, copy.procedure, copy.drug, copy.units) == (
            "not-billable",
            None,
            None,
            None,
        )
        assert copy.lines == ()
        assert detail(copy, "duplicate") == "Same as MedicationAdministration/a"


def test_duplicates_are_found_after_a_record_that_has_no_keys():
    not_done = _clean("0", "2026-10-05T08:00:00-05:00", status="not-done")
    _, _, copy = decide_many([not_done, _clean("a"), _clean("b")])
    assert "duplicate" in gap_codes(copy)


def test_a_voided_record_does_not_make_its_correction_a_duplicate():
    ident = [{"system": "urn:ehr:mar", "value": "42"}]
    voided = _clean("a", "2026-10-05T09:00:00-05:00", status="entered-in-error", identifier=ident)
    _, corrected = decide_many([voided, _clean("b", identifier=ident)])
    assert corrected.outcome == "claim"


def test_records_without_a_duplicate_key_are_not_duplicates_of_each_other():
    flu = _clean("a", medicationCodeableConcept=med(CVX, "140"))
    pneumo = _clean("b", medicationCodeableConcept=med(CVX, "33"))
    not_done = [_clean("c", status="not-done"), _clean("d", status="not-done")]
    decisions = decide_many([flu, pneumo, *not_done])
    assert [d.outcome for d in decisions] == [
        "not-96372",
        "not-96372",
        "not-billable",
        "not-billable",
    ]
    assert all("duplicate" not in gap_codes(d) for d in decisions)
    assert [d.procedure for d in decisions[:2]] == ["G0008", "G0009"]


@pytest.mark.parametrize(
    "first,second",
    [
        (
            [{"system": "urn:ehr:mar", "value": "42"}],
            [{"system": "urn:other:mar", "value": "42"}],
        ),  # other system
        (
            [{"system": "urn:ehr:mar", "value": "42"}],
            [{"system": "urn:ehr:mar", "value": "43"}],
        ),  # other value
        ([{"system": "urn:ehr:mar"}], [{"system": "urn:ehr:mar"}]),  # no value: no identifier
    ],
)
def test_different_identifiers_are_not_duplicates(first, second):
    a = _clean("a", identifier=first)
    b = _clean(
        "b",
        "2026-10-05T09:45:00-05:00",
        identifier=second,
        medicationCodeableConcept=med(RXNORM, "26225"),
        dosage=dosage(dose=dose(4, "mg")),
    )
    assert "duplicate" not in gap_codes(decide_many([a, b])[1])


@pytest.mark.parametrize(
    "other",
    [
        dict(
            dosage=dosage(dose=dose(15, "mg"))
        ),  # another dose of the same drug at the same minute
        dict(
            medicationCodeableConcept=med(RXNORM, "3264"), dosage=dosage(dose=dose(30, "mg"))
        ),  # another drug
        dict(dosage=dosage(route=route(SNOMED, "34206005"))),  # subcutaneous, not intramuscular
    ],
)
def test_same_minute_but_not_the_same_injection_is_not_a_duplicate(other):
    _, b = decide_many([_clean("a"), _clean("b", **other)])
    assert "duplicate" not in gap_codes(b)
    assert line(b, "administration").modifiers == ("XU",)


def test_two_unclassified_drugs_at_the_same_minute_are_told_apart_by_name():
    a = _clean("a", medicationCodeableConcept=unmapped("mystery drug A"))
    b = _clean("b", medicationCodeableConcept=unmapped("mystery drug B"))
    assert "duplicate" not in gap_codes(decide_many([a, b])[1])
    same = _clean("c", medicationCodeableConcept=unmapped("MYSTERY DRUG A"))
    assert "duplicate" in gap_codes(decide_many([a, same])[1])


def test_two_coded_drugs_without_names_at_the_same_minute_are_not_duplicates():
    a = _clean(
        "a", medicationCodeableConcept=med(RXNORM, "26225"), dosage=dosage(dose=dose(4, "mg"))
    )
    b = _clean(
        "b", medicationCodeableConcept=med(RXNORM, "3264"), dosage=dosage(dose=dose(4, "mg"))
    )
    assert "duplicate" not in gap_codes(decide_many([a, b])[1])


@pytest.mark.parametrize("encounter_class", ["EMER", "IMP"])
def test_the_earlier_of_two_hospital_copies_is_the_original(encounter_class):
    ident = [{"system": "urn:ehr:mar", "value": "42"}]
    late, early = (
        _clean("a", "2026-10-05T10:00:00-05:00", identifier=ident),
        _clean("b", identifier=ident),
    )
    d_late, d_early = decide_many([late, early], world(encounter_class=encounter_class))
    assert "duplicate" in gap_codes(d_late) and "duplicate" not in gap_codes(d_early)


# ----------------------------------------------------------------------------- what the tables decide


@pytest.fixture
def tables(tmp_path):
    """A copy of mappings/ to edit: ``tables(name, *rows, drop=prefix)`` appends rows (or drops lines)."""
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)

    def edit(name, *rows, drop=None):
        path = target / name
        lines = path.read_text(encoding="utf-8").splitlines()
        if drop:
            lines = [ln for ln in lines if not ln.startswith(drop)]
        path.write_text("\n".join(lines + list(rows)) + "\n", encoding="utf-8")
        return load_rules(target)

    return edit


def test_an_exact_payer_code_matches_that_code_only(tables):
    r = tables("payer_codes.csv", f"{SOPT},9,exact,medicaid,specific,State program (test row),test")

    def payer(code):
        w = replace_resource(world(), "Coverage", type={"coding": [{"system": SOPT, "code": code}]})
        return decide(admin(), Context(w), r).payer_type

    assert payer("9") == "medicaid"
    assert payer("95") == "commercial"  # the prefix row of 9


def test_a_vaccine_admin_code_falls_back_from_group_to_payer_to_default(tables):
    r = tables(
        "vaccine_admin.csv",
        "commercial,influenza,90999,Test row,test",
        "commercial,*,90998,Test row,test",
    )
    no_coverage = Context(world(coverage=False))
    assert (
        decide(admin(medicationCodeableConcept=med(CVX, "140")), no_coverage, r).procedure
        == "90999"
    )
    assert (
        decide(admin(medicationCodeableConcept=med(CVX, "33")), no_coverage, r).procedure == "90998"
    )
    medicaid = Context(
        world(payer="medicaid")
    )  # (Tdap for Medicare is Part D: no Part B code at all)
    assert (
        decide(admin(medicationCodeableConcept=med(CVX, "115")), medicaid, r).procedure == "90471"
    )


def test_a_drug_fee_for_the_setting_wins_over_the_fee_for_any(tables):
    r = tables("fee_schedule.csv", "J1885,office,0.50,unit,2026,test row")
    assert line(decide(admin(), Context(world()), r), "drug").unit_price == Decimal("0.50")


def test_without_a_fee_row_the_administration_line_has_no_price(tables):
    r = tables("fee_schedule.csv", drop="96372,")
    for a in (admin(), admin(medicationCodeableConcept=None)):
        administration = line(decide(a, Context(world()), r), "administration")
        assert (administration.code, administration.quantity, administration.unit_price) == (
            "96372",
            1,
            None,
        )


def test_a_business_identifier_repeated_for_another_patient_is_no_duplicate():
    """A dose of one patient is never a duplicate of another's: two patients' administrations that
    share an identifier (a copy-paste in the feed) are each decided; the same patient's are not."""
    w = world() + world(patient="p2")
    shared = [{"system": "urn:mar", "value": "MAR1"}]
    a1 = admin(id="a1", identifier=shared)
    a2 = admin(
        id="a2", patient="p2", identifier=shared, effectiveDateTime="2026-10-05T10:00:00-05:00"
    )
    d1, d2 = decide_many([a1, a2], w)
    assert "duplicate" not in gap_codes(d1) and "duplicate" not in gap_codes(d2)
    _b1, b2 = decide_many(
        [a1, admin(id="a3", identifier=shared, effectiveDateTime="2026-10-05T10:00:00-05:00")]
    )
    assert "duplicate" in gap_codes(b2) and b2.outcome == "not-billable"
