"""Diagnosis pointers: the administration's own reason (reasonCode,
reasonReference) is the first diagnosis its lines point to, then the encounter's diagnoses by rank
(CMS-1500 item 24E points each line to its own indication among item 21's diagnoses)."""

from __future__ import annotations

from fhir_injection import Config, build_claim
from tests.builders import CREATED, ICD10, admin, decide_one, replace_resource, world


def reason(*codes):
    return [{"coding": [{"system": ICD10, "code": c}]} for c in codes]


def claim_of(a, w=None):
    return build_claim(decide_one(a, w or world()), Config(), CREATED)


def codes_of(claim):
    return [d["diagnosisCodeableConcept"]["coding"][0]["code"] for d in claim["diagnosis"]]


def test_the_administrations_own_reason_comes_first_then_the_encounters():
    c = claim_of(admin(reasonCode=reason("G43.909")))
    assert codes_of(c) == ["G43.909", "M54.50"]
    assert all(item["diagnosisSequence"] == [1, 2] for item in c["item"])


def test_the_encounters_ranked_diagnoses_follow_and_each_line_points_to_four():
    conditions = [
        {
            "resourceType": "Condition",
            "id": f"c{n}",
            "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": ICD10, "code": code}]},
        }
        for n, code in enumerate(["R51.9", "J02.9", "E53.8", "Z23"])
    ]
    w = replace_resource(
        world(),
        "Encounter",
        diagnosis=[
            {"condition": {"reference": f"Condition/c{n}"}, "rank": rank}
            for n, rank in [(3, 4), (0, 1), (2, 3), (1, 2)]
        ],
    )
    c = claim_of(admin(reasonCode=reason("G43.909")), w + conditions)
    assert codes_of(c) == ["G43.909", "R51.9", "J02.9", "E53.8", "Z23"]
    assert all(item["diagnosisSequence"] == [1, 2, 3, 4] for item in c["item"])


def test_an_own_reason_the_encounter_also_has_is_listed_once_first():
    c = claim_of(admin(reasonCode=reason("M54.50", "G43.909")))
    assert codes_of(c) == ["M54.50", "G43.909"]


def test_without_an_own_reason_the_encounters_order_stands():
    assert codes_of(claim_of(admin())) == ["M54.50"]
