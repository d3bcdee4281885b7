"""Decisions as FHIR R4 Claims and Tasks: valid R4B resources, deterministic, carrying every billing element."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from fhir_injection import Config, Line, build_claim, build_task
from fhir_injection.fhir.resources import reference_of
from fhir_injection.sinks.claims import claim_id, task_id
from tests.builders import (
    CPT,
    CREATED,
    ICD10,
    RXNORM,
    SNOMED,
    V2_ROUTE,
    V2_SITE,
    admin,
    decide_many,
    decide_one,
    dosage,
    gap_codes,
    med,
    replace_resource,
    route,
    rules,
    validate_claim,
    validate_task,
    world,
)

CPT_SYSTEM = "http://www.ama-assn.org/go/cpt"
HCPCS_SYSTEM = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
POS_SYSTEM = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
NDC_SYSTEM = "http://hl7.org/fhir/sid/ndc"


def claim_for(a=None, w=None, config=None, **kw):
    config = config or Config()
    d = decide_one(a, w, config)
    c = build_claim(d, config, CREATED, **kw)
    if c is not None:
        validate_claim(c)
    return d, c


def task_for(a=None, w=None, config=None):
    config = config or Config()
    d = decide_one(a, w, config)
    t = build_task(d, config, rules(), CREATED)
    if t is not None:
        validate_task(t)
    return d, t


def codes(item):
    return [(c["system"], c["code"]) for c in item["productOrService"]["coding"]]


def modifiers(item):
    return [(m["coding"][0]["system"], m["coding"][0]["code"]) for m in item.get("modifier", [])]


def test_clean_claim_has_every_element():
    _d, c = claim_for()
    assert c["resourceType"] == "Claim"
    assert c["status"] == "active"
    assert c["use"] == "claim"
    assert c["type"]["coding"][0]["code"] == "professional"
    assert c["patient"] == {"reference": "Patient/p1"}
    assert c["created"] == CREATED
    assert c["provider"] == {"reference": "Organization/clinic"}
    assert c["priority"]["coding"][0]["code"] == "normal"
    assert c["insurance"] == [
        {"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/cov-p1"}}
    ]
    assert c["diagnosis"][0]["diagnosisCodeableConcept"]["coding"][0] == {
        "system": ICD10,
        "code": "M54.50",
        "display": "Low back pain, unspecified",
    }
    assert c["billablePeriod"] == {"start": "2026-10-05", "end": "2026-10-05"}
    assert c["careTeam"][0]["provider"] == {
        "reference": "Practitioner/doctor"
    }  # incident-to: the MD
    assert c["supportingInfo"][0]["valueReference"] == {"reference": "MedicationAdministration/ma1"}
    admin_item, drug_item = c["item"]
    assert codes(admin_item) == [(CPT_SYSTEM, "96372")]
    assert codes(drug_item) == [(HCPCS_SYSTEM, "J1885")]
    for item in c["item"]:
        assert item["diagnosisSequence"] == [1]
        assert item["servicedDate"] == "2026-10-05"
        assert item["locationCodeableConcept"]["coding"] == [{"system": POS_SYSTEM, "code": "11"}]
        assert item["encounter"] == [{"reference": "Encounter/e-p1"}]
    assert admin_item["quantity"] == {"value": 1}
    assert drug_item["quantity"] == {"value": 2}
    assert modifiers(admin_item) == []
    assert modifiers(drug_item) == [(HCPCS_SYSTEM, "JZ")]
    assert admin_item["bodySite"]["coding"] == [
        {"system": V2_SITE, "code": "LD", "display": "Left deltoid"}
    ]
    assert "bodySite" not in drug_item
    assert admin_item["unitPrice"] == {"value": 15.36, "currency": "USD"}
    assert admin_item["net"] == {"value": 15.36, "currency": "USD"}
    assert drug_item["unitPrice"] == {"value": 0.30, "currency": "USD"}
    assert drug_item["net"] == {"value": 0.60, "currency": "USD"}
    assert c["total"] == {"value": 15.96, "currency": "USD"}
    assert drug_item["detail"][0]["productOrService"]["coding"] == [
        {"system": NDC_SYSTEM, "code": "00409379501"}
    ]
    assert drug_item["detail"][0]["quantity"] == {"value": 0.03, "unit": "GR"}


def test_same_administration_gives_the_identical_claim():
    _, first = claim_for()
    _, second = claim_for(admin(), world())
    assert first == second
    assert first["identifier"] == [{"system": "urn:fhir-injection:claim", "value": "ma1"}]
    assert first["id"].startswith("fi-claim-") and len(first["id"]) <= 64


def test_distinct_administrations_get_distinct_claim_ids():
    a, b = decide_many(
        [admin(id="a"), admin(id="b", effectiveDateTime="2026-10-05T10:00:00-05:00")]
    )
    assert claim_id(a, Config()) != claim_id(b, Config())
    assert task_id(a, Config()) != claim_id(a, Config())


def test_identifier_system_is_configurable():
    cfg = Config(identifier_system="urn:example:claims")
    _, c = claim_for(config=cfg)
    _, default = claim_for()
    assert c["identifier"][0]["system"] == "urn:example:claims"
    assert c["id"] != default["id"]


def test_held_decision_gives_a_draft_claim():
    d, c = claim_for(admin(dosage=dosage(dose=None)))
    assert d.outcome == "held"
    assert c["status"] == "draft"


def test_status_override_for_voiding():
    _, c = claim_for(status="cancelled")
    assert c["status"] == "cancelled"


@pytest.mark.parametrize(
    "a,w",
    [
        (admin(), world(coverage=False)),  # no coverage -> no Claim.insurance possible
        (admin(subject={"reference": "Patient/ghost"}), world()),
        (admin(status="not-done"), world()),
        (admin(status="entered-in-error"), world()),
        (admin(dosage=dosage(route=route(V2_ROUTE, "IV"))), world()),
        (admin(), world(encounter_class="IMP")),
    ],
)
def test_no_claim_when_none_can_be_formed_or_nothing_is_billable(a, w):
    assert claim_for(a, w)[1] is None


def test_second_injection_claim_carries_the_distinct_modifier():
    second = admin(
        id="ma2",
        effectiveDateTime="2026-10-05T10:00:00-05:00",
        medicationCodeableConcept=med(RXNORM, "26225"),
        dosage=dosage(
            dose={"value": 4, "code": "mg"}, site={"coding": [{"system": V2_SITE, "code": "RD"}]}
        ),
    )
    _, d2 = decide_many([admin(), second], world(payer="commercial"))
    c = build_claim(d2, Config(), CREATED)
    validate_claim(c)
    assert modifiers(c["item"][0]) == [(CPT_SYSTEM, "59")]
    _, d2 = decide_many([admin(), second])
    c = build_claim(d2, Config(), CREATED)
    validate_claim(c)
    assert modifiers(c["item"][0]) == [(HCPCS_SYSTEM, "XU")]
    assert c["item"][0]["bodySite"]["coding"][0]["code"] == "RD"


def test_several_diagnoses_are_linked_to_the_lines():
    reasons = [
        {"coding": [{"system": ICD10, "code": code}]}
        for code in ("A00", "B00", "C00", "D00", "E00")
    ]
    _, c = claim_for(admin(reasonCode=reasons))
    assert [dg["sequence"] for dg in c["diagnosis"]] == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]  # and the encounter's M54.50
    assert c["diagnosis"][0]["type"][0]["coding"][0]["code"] == "principal"
    assert all(
        item["diagnosisSequence"] == [1, 2, 3, 4] for item in c["item"]
    )  # at most 4 pointers


def test_unclassified_drug_line_names_the_drug():
    a = admin(
        medicationCodeableConcept={
            "coding": [{"system": RXNORM, "code": "999999", "display": "mystery drug"}]
        }
    )
    _, c = claim_for(a)
    assert codes(c["item"][1]) == [(HCPCS_SYSTEM, "J3490")]
    assert c["item"][1]["productOrService"]["text"] == "mystery drug 30 mg"


def test_snomed_site_and_laterality_reach_the_claim():
    site = {
        "coding": [{"system": SNOMED, "code": "35259002"}, {"system": SNOMED, "code": "7771000"}]
    }
    _, c = claim_for(admin(dosage=dosage(site=site)))
    body = c["item"][0]["bodySite"]
    assert [x["code"] for x in body["coding"]] == ["35259002", "7771000"]
    assert body["text"] == "Deltoid muscle (left)"


def test_claim_without_a_rendering_provider_has_no_care_team():
    d = decide_one(admin(), replace_resource(world(), "Encounter", participant=None))
    assert d.claim_status == "draft" and d.rendering is None  # held: missing-rendering-provider
    c = build_claim(d, Config(), CREATED)
    assert "careTeam" not in c
    assert all("careTeamSequence" not in item for item in c["item"])


def test_medicaid_claim_is_valid():
    _, c = claim_for(admin(), world(payer="medicaid"))
    assert c["status"] == "active"
    assert modifiers(c["item"][1]) == []


# ----------------------------------------------------------------------------- Task


def test_no_task_without_actionable_gaps():
    assert task_for()[1] is None
    assert (
        task_for(
            admin(
                medicationCodeableConcept={
                    "coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]
                }
            )
        )[1]
        is None
    )  # info only


def test_task_lists_the_gaps_and_points_to_the_administration():
    _d, t = task_for(admin(dosage=dosage(site=None, dose=None)), world(consent=False))
    assert t["resourceType"] == "Task"
    assert t["status"] == "requested" and t["intent"] == "order"
    assert t["focus"] == {"reference": "MedicationAdministration/ma1"}
    assert t["for"] == {"reference": "Patient/p1"}
    assert t["owner"] == {"reference": "Practitioner/nurse"}
    assert t["encounter"] == {"reference": "Encounter/e-p1"}
    assert t["priority"] == "urgent"  # an error blocks billing
    listed = [i["type"]["coding"][0]["code"] for i in t["input"]]
    assert sorted(listed) == sorted(
        ["missing-dose", "missing-site"]
    )  # consent is info: not a Task's
    assert all(i["type"]["coding"][0]["system"] == rules().gap_codesystem_url for i in t["input"])
    assert "missing-dose (error)" in t["description"]
    assert t["identifier"] == [{"system": "urn:fhir-injection:claim:task", "value": "ma1"}]


def test_warning_only_task_is_routine():
    _, t = task_for(admin(dosage=dosage(site=None)))
    assert t["priority"] == "routine"
    assert [i["type"]["coding"][0]["code"] for i in t["input"]] == ["missing-site"]


def test_task_without_performer_has_no_owner():
    _, t = task_for(admin(performer=None))
    assert "owner" not in t


def test_task_is_deterministic():
    a = admin(dosage=dosage(site=None))
    assert task_for(a)[1] == task_for(a)[1]


def test_completed_task_for_a_fixed_administration():
    d = decide_one()
    t = build_task(d, Config(), rules(), CREATED, status="completed")
    validate_task(t)
    assert t["status"] == "completed" and "input" not in t


def test_no_task_for_a_duplicate():
    # the duplicate is not billable (the first one bills): no billing action, no Task
    _a, b = decide_many([admin(id="a"), admin(id="b")])
    assert b.outcome == "not-billable" and [g.code for g in b.gaps] == ["duplicate"]
    assert build_task(b, Config(), rules(), CREATED) is None


def test_reference_of():
    assert reference_of({"resourceType": "Claim", "id": "x"}) == "Claim/x"


def test_claims_for_em_same_day_stay_valid():
    w = replace_resource(
        world(), "Encounter", type=[{"coding": [{"system": CPT, "code": "99213"}]}]
    )
    d, c = claim_for(admin(), w)
    assert c["status"] == "active"
    validate_task(build_task(d, Config(), rules(), CREATED))


# =============================================================================
# What a payer or a worklist reads beyond the clean claim above: when no Claim may be formed at
# all, how items point at the care team and the diagnoses by sequence number, the diagnosis roles,
# the supporting-information element, the ids that must not change between releases, and the words
# on a Task.
# =============================================================================


DIAGNOSIS_TYPE = "http://terminology.hl7.org/CodeSystem/ex-diagnosistype"
INFO_CATEGORY = "http://terminology.hl7.org/CodeSystem/claiminformationcategory"


def claim_of(decision, config=None, **kw):
    claim = build_claim(decision, config or Config(), CREATED, **kw)
    if claim is not None:
        validate_claim(claim)
    return claim


# ----------------------------------------------------------------------------- when no Claim is formed


@pytest.mark.parametrize("missing", ["patient", "coverage", "provider", "claim_status"])
def test_no_claim_without_each_of_patient_coverage_provider_and_status(missing):
    d = decide_one()
    assert claim_of(d) is not None  # the clean decision has all four
    assert claim_of(dataclasses.replace(d, **{missing: None})) is None


def test_a_status_override_forms_a_claim_for_a_decision_without_one():
    d = dataclasses.replace(decide_one(), claim_status=None)
    assert claim_of(d, status="cancelled")["status"] == "cancelled"


# ----------------------------------------------------------------------------- sequence links


def test_the_care_team_is_the_rendering_provider_and_every_item_points_to_it():
    c = claim_of(decide_one())  # the nurse gave it; the attending MD renders it (incident-to)
    assert c["careTeam"] == [
        {"sequence": 1, "provider": {"reference": "Practitioner/doctor"}, "responsible": True}
    ]
    assert [item["careTeamSequence"] for item in c["item"]] == [[1], [1]]
    assert {t["sequence"] for t in c["careTeam"]} == {
        s for item in c["item"] for s in item["careTeamSequence"]
    }


def test_items_are_numbered_from_one_and_the_ndc_detail_is_the_first_of_its_item():
    c = claim_of(decide_one())
    assert [item["sequence"] for item in c["item"]] == [1, 2]
    assert [d["sequence"] for d in c["item"][1]["detail"]] == [1]


def test_the_first_diagnosis_is_principal_and_the_others_secondary():
    reasons = [
        {"coding": [{"system": ICD10, "code": code}]} for code in ("M54.50", "M62.830", "G89.29")
    ]
    c = claim_of(decide_one(admin(reasonCode=reasons)))
    roles = [
        (dg["sequence"], dg["diagnosisCodeableConcept"]["coding"][0]["code"], dg["type"])
        for dg in c["diagnosis"]
    ]
    assert roles == [
        (1, "M54.50", [{"coding": [{"system": DIAGNOSIS_TYPE, "code": "principal"}]}]),
        (2, "M62.830", [{"coding": [{"system": DIAGNOSIS_TYPE, "code": "clinical"}]}]),
        (3, "G89.29", [{"coding": [{"system": DIAGNOSIS_TYPE, "code": "clinical"}]}]),
    ]
    assert all(item["diagnosisSequence"] == [1, 2, 3] for item in c["item"])


def test_the_source_administration_is_the_first_supporting_information():
    c = claim_of(decide_one())
    assert c["supportingInfo"] == [
        {
            "sequence": 1,
            "category": {
                "coding": [{"system": INFO_CATEGORY, "code": "info"}],
                "text": "Source administration",
            },
            "valueReference": {"reference": "MedicationAdministration/ma1"},
        }
    ]


def test_a_line_display_is_carried_only_when_there_is_one():
    d = decide_one()
    c = claim_of(d)
    assert c["item"][0]["productOrService"]["coding"][0]["display"] == line_display(
        d, "administration"
    )
    bare = dataclasses.replace(
        d, lines=(Line("administration", "http://www.ama-assn.org/go/cpt", "96372", None),)
    )
    assert claim_of(bare)["item"][0]["productOrService"]["coding"] == [
        {"system": "http://www.ama-assn.org/go/cpt", "code": "96372"}
    ]


def line_display(decision, kind):
    return next(ln.display for ln in decision.lines if ln.kind == kind)


# ----------------------------------------------------------------------------- ids that must not change


def test_claim_and_task_ids_are_the_hash_of_the_business_identifier():
    # a release that changed this derivation would make every rerun write a second Claim and Task
    d = decide_one()
    claim_digest = hashlib.sha256(b"urn:fhir-injection:claim|ma1").hexdigest()[:32]
    task_digest = hashlib.sha256(b"urn:fhir-injection:claim:task|ma1").hexdigest()[:32]
    assert claim_id(d, Config()) == f"fi-claim-{claim_digest}"
    assert task_id(d, Config()) == f"fi-task-{task_digest}"
    assert claim_of(d)["id"] == claim_id(d, Config())
    t = build_task(decide_one(admin(dosage=dosage(site=None))), Config(), rules(), CREATED)
    assert t["id"] == f"fi-task-{task_digest}"


# ----------------------------------------------------------------------------- the Task a clinician reads


def task_of(decision, status="requested"):
    task = build_task(decision, Config(), rules(), CREATED, status=status)
    if task is not None:
        validate_task(task)
    return task


def test_a_task_with_an_error_blocks_billing_and_lists_every_gap():
    d = decide_one(admin(dosage=dosage(dose=None, site=None)))
    t = task_of(d)
    assert t["code"] == {"text": "Fix injection documentation for billing"}
    assert t["description"] == "missing-dose (error); missing-site (warning)"
    assert t["businessStatus"] == {"text": "2 gap(s); blocks billing"}
    assert t["priority"] == "urgent"
    assert [(i["type"]["text"], i["valueString"]) for i in t["input"]] == [
        (g.severity, f"{g.field}: {g.message}") for g in d.gaps
    ]


def test_a_task_with_warnings_only_asks_for_review():
    t = task_of(decide_one(admin(dosage=dosage(site=None))))
    assert t["businessStatus"] == {"text": "1 gap(s); review"}
    assert t["description"] == "missing-site (warning)"


def test_a_completed_task_is_never_urgent_and_says_what_it_closed():
    fixed = task_of(decide_one(), status="completed")
    assert fixed["description"] == "All documentation gaps fixed"
    assert fixed["businessStatus"] == {"text": "0 gap(s); review"}
    assert fixed["priority"] == "routine"
    closed_with_errors = task_of(decide_one(admin(dosage=dosage(dose=None))), status="completed")
    assert closed_with_errors["priority"] == "routine"


def test_a_duplicate_opens_no_task():  # nothing to bill, nothing to fix: Tasks only where a person can act
    first, copy = decide_many([admin(id="a"), admin(id="b")])
    assert (copy.outcome, gap_codes(copy)) == ("not-billable", ["duplicate"])
    assert task_of(copy) is None
    closed = task_of(
        copy, status="completed"
    )  # a Task opened before is closed with nothing left to fix
    assert (closed["description"], closed["businessStatus"]) == (
        "All documentation gaps fixed",
        {"text": "0 gap(s); review"},
    )
    assert closed["priority"] == "routine"
    assert (
        first.outcome == "claim" and task_of(first) is None
    )  # the clean original has no gap either
