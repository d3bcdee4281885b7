"""Decisions as FHIR R4 Claims and Tasks: valid R4B resources, deterministic, carrying every billing element."""

from __future__ import annotations

import pytest

from tests.builders import (
    CPT, CREATED, ICD10, RXNORM, SNOMED, V2_ROUTE, V2_SITE, admin, decide_many, decide_one, dosage, med,
    replace_resource, route, rules, validate_claim, validate_task, world,
)
from fhir_injection import Config
from fhir_injection import build_claim
from fhir_injection import build_task
from fhir_injection.fhir.resources import reference_of
from fhir_injection.sinks.claims import claim_id, task_id

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
    d, c = claim_for()
    assert c["resourceType"] == "Claim"
    assert c["status"] == "active"
    assert c["use"] == "claim"
    assert c["type"]["coding"][0]["code"] == "professional"
    assert c["patient"] == {"reference": "Patient/p1"}
    assert c["created"] == CREATED
    assert c["provider"] == {"reference": "Organization/clinic"}
    assert c["priority"]["coding"][0]["code"] == "normal"
    assert c["insurance"] == [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/cov-p1"}}]
    assert c["diagnosis"][0]["diagnosisCodeableConcept"]["coding"][0] == {
        "system": ICD10, "code": "M54.50", "display": "Low back pain, unspecified"}
    assert c["billablePeriod"] == {"start": "2026-10-05", "end": "2026-10-05"}
    assert c["careTeam"][0]["provider"] == {"reference": "Practitioner/doctor"}  # incident-to: the MD
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
    assert admin_item["bodySite"]["coding"] == [{"system": V2_SITE, "code": "LD", "display": "Left deltoid"}]
    assert "bodySite" not in drug_item
    assert admin_item["unitPrice"] == {"value": 15.36, "currency": "USD"}
    assert admin_item["net"] == {"value": 15.36, "currency": "USD"}
    assert drug_item["unitPrice"] == {"value": 0.30, "currency": "USD"}
    assert drug_item["net"] == {"value": 0.60, "currency": "USD"}
    assert c["total"] == {"value": 15.96, "currency": "USD"}
    assert drug_item["detail"][0]["productOrService"]["coding"] == [{"system": NDC_SYSTEM, "code": "00409379501"}]
    assert drug_item["detail"][0]["quantity"] == {"value": 0.03, "unit": "GR"}


def test_same_administration_gives_the_identical_claim():
    _, first = claim_for()
    _, second = claim_for(admin(), world())
    assert first == second
    assert first["identifier"] == [{"system": "urn:fhir-injection:claim", "value": "ma1"}]
    assert first["id"].startswith("fi-claim-") and len(first["id"]) <= 64


def test_distinct_administrations_get_distinct_claim_ids():
    a, b = decide_many([admin(id="a"), admin(id="b", effectiveDateTime="2026-10-05T10:00:00-05:00")])
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


@pytest.mark.parametrize("a,w", [
    (admin(), world(coverage=False)),  # no coverage -> no Claim.insurance possible
    (admin(subject={"reference": "Patient/ghost"}), world()),
    (admin(status="not-done"), world()),
    (admin(status="entered-in-error"), world()),
    (admin(dosage=dosage(route=route(V2_ROUTE, "IV"))), world()),
    (admin(), world(encounter_class="IMP")),
])
def test_no_claim_when_none_can_be_formed_or_nothing_is_billable(a, w):
    assert claim_for(a, w)[1] is None


def test_second_injection_claim_carries_the_distinct_modifier():
    second = admin(id="ma2", effectiveDateTime="2026-10-05T10:00:00-05:00",
                   medicationCodeableConcept=med(RXNORM, "26225"),
                   dosage=dosage(dose={"value": 4, "code": "mg"}, site={"coding": [{"system": V2_SITE, "code": "RD"}]}))
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
    reasons = [{"coding": [{"system": ICD10, "code": code}]} for code in ("A00", "B00", "C00", "D00", "E00")]
    _, c = claim_for(admin(reasonCode=reasons))
    assert [dg["sequence"] for dg in c["diagnosis"]] == [1, 2, 3, 4, 5, 6]  # and the encounter's M54.50
    assert c["diagnosis"][0]["type"][0]["coding"][0]["code"] == "principal"
    assert all(item["diagnosisSequence"] == [1, 2, 3, 4] for item in c["item"])  # at most 4 pointers


def test_unclassified_drug_line_names_the_drug():
    a = admin(medicationCodeableConcept={"coding": [{"system": RXNORM, "code": "999999", "display": "mystery drug"}]})
    _, c = claim_for(a)
    assert codes(c["item"][1]) == [(HCPCS_SYSTEM, "J3490")]
    assert c["item"][1]["productOrService"]["text"] == "mystery drug 30 mg"


def test_snomed_site_and_laterality_reach_the_claim():
    site = {"coding": [{"system": SNOMED, "code": "35259002"}, {"system": SNOMED, "code": "7771000"}]}
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
    assert task_for(admin(medicationCodeableConcept={"coding": [{"system": "http://hl7.org/fhir/sid/cvx",
                                                                  "code": "140"}]}))[1] is None  # info only


def test_task_lists_the_gaps_and_points_to_the_administration():
    d, t = task_for(admin(dosage=dosage(site=None, dose=None)), world(consent=False))
    assert t["resourceType"] == "Task"
    assert t["status"] == "requested" and t["intent"] == "order"
    assert t["focus"] == {"reference": "MedicationAdministration/ma1"}
    assert t["for"] == {"reference": "Patient/p1"}
    assert t["owner"] == {"reference": "Practitioner/nurse"}
    assert t["encounter"] == {"reference": "Encounter/e-p1"}
    assert t["priority"] == "urgent"  # an error blocks billing
    listed = [i["type"]["coding"][0]["code"] for i in t["input"]]
    assert sorted(listed) == sorted(["missing-dose", "missing-site"])  # consent is info: not a Task's
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
    # issue 11 item 7: the duplicate is not billable (the first one bills): no billing action, no Task
    a, b = decide_many([admin(id="a"), admin(id="b")])
    assert b.outcome == "not-billable" and [g.code for g in b.gaps] == ["duplicate"]
    assert build_task(b, Config(), rules(), CREATED) is None


def test_reference_of():
    assert reference_of({"resourceType": "Claim", "id": "x"}) == "Claim/x"


def test_claims_for_em_same_day_stay_valid():
    w = replace_resource(world(), "Encounter", type=[{"coding": [{"system": CPT, "code": "99213"}]}])
    d, c = claim_for(admin(), w)
    assert c["status"] == "active"
    validate_task(build_task(d, Config(), rules(), CREATED))
