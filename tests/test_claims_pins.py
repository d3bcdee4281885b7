"""Claims and Tasks pinned where the mutation run found them loose (issue 10, item 6).

test_claims.py checks the clean claim element by element. These add what a payer or a worklist reads
and nothing checked: when no Claim may be formed at all, how items point at the care team and the
diagnoses by sequence number, the diagnosis roles, the supporting-information element, the ids that
must not change between releases, and the words on a Task.
"""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from tests.builders import CREATED, ICD10, admin, decide_many, decide_one, dosage, gap_codes, rules, validate_claim, validate_task
from fhir_injection import Config, Line, build_claim, build_task
from fhir_injection.sinks.claims import claim_id, task_id

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
    assert c["careTeam"] == [{"sequence": 1, "provider": {"reference": "Practitioner/doctor"}, "responsible": True}]
    assert [item["careTeamSequence"] for item in c["item"]] == [[1], [1]]
    assert {t["sequence"] for t in c["careTeam"]} == {s for item in c["item"] for s in item["careTeamSequence"]}


def test_items_are_numbered_from_one_and_the_ndc_detail_is_the_first_of_its_item():
    c = claim_of(decide_one())
    assert [item["sequence"] for item in c["item"]] == [1, 2]
    assert [d["sequence"] for d in c["item"][1]["detail"]] == [1]


def test_the_first_diagnosis_is_principal_and_the_others_secondary():
    reasons = [{"coding": [{"system": ICD10, "code": code}]} for code in ("M54.50", "M62.830", "G89.29")]
    c = claim_of(decide_one(admin(reasonCode=reasons)))
    roles = [(dg["sequence"], dg["diagnosisCodeableConcept"]["coding"][0]["code"], dg["type"]) for dg in c["diagnosis"]]
    assert roles == [
        (1, "M54.50", [{"coding": [{"system": DIAGNOSIS_TYPE, "code": "principal"}]}]),
        (2, "M62.830", [{"coding": [{"system": DIAGNOSIS_TYPE, "code": "clinical"}]}]),
        (3, "G89.29", [{"coding": [{"system": DIAGNOSIS_TYPE, "code": "clinical"}]}]),
    ]
    assert all(item["diagnosisSequence"] == [1, 2, 3] for item in c["item"])


def test_the_source_administration_is_the_first_supporting_information():
    c = claim_of(decide_one())
    assert c["supportingInfo"] == [{
        "sequence": 1,
        "category": {"coding": [{"system": INFO_CATEGORY, "code": "info"}], "text": "Source administration"},
        "valueReference": {"reference": "MedicationAdministration/ma1"},
    }]


def test_a_line_display_is_carried_only_when_there_is_one():
    d = decide_one()
    c = claim_of(d)
    assert c["item"][0]["productOrService"]["coding"][0]["display"] == line_display(d, "administration")
    bare = dataclasses.replace(d, lines=(Line("administration", "http://www.ama-assn.org/go/cpt", "96372", None),))
    assert claim_of(bare)["item"][0]["productOrService"]["coding"] == [
        {"system": "http://www.ama-assn.org/go/cpt", "code": "96372"}]


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
        (g.severity, f"{g.field}: {g.message}") for g in d.gaps]


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


def test_a_duplicate_opens_no_task():  # nothing to bill, nothing to fix (issue 11: Tasks only where a person can act)
    first, copy = decide_many([admin(id="a"), admin(id="b")])
    assert (copy.outcome, gap_codes(copy)) == ("not-billable", ["duplicate"])
    assert task_of(copy) is None
    closed = task_of(copy, status="completed")  # a Task opened before is closed with nothing left to fix
    assert (closed["description"], closed["businessStatus"]) == ("All documentation gaps fixed", {"text": "0 gap(s); review"})
    assert closed["priority"] == "routine"
    assert first.outcome == "claim" and task_of(first) is None  # the clean original has no gap either
