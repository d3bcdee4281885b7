"""fhir_injection/decision/clinicians.py, who renders the service: a PractitionerRole is read through its Practitioner, malformed qualifications are
skipped, candidates that cannot be followed are passed over, and the coder's message lists each
candidate seen.
"""

from __future__ import annotations

from tests.builders import (
    PARTICIPATION,
    V2_DEGREE,
    admin,
    decide_one,
    gap,
    gap_codes,
    replace_resource,
    world,
)


def practitioner(pid: str, *codings, qualification=None) -> dict:
    resource = {"resourceType": "Practitioner", "id": pid}
    if codings:
        resource["qualification"] = [
            {"code": {"coding": [{"system": s, "code": c}]}} for s, c in codings
        ]
    if qualification is not None:
        resource["qualification"] = qualification
    return resource


def role(rid: str, practitioner_ref: str | None) -> dict:
    resource = {"resourceType": "PractitionerRole", "id": rid}
    if practitioner_ref:
        resource["practitioner"] = {"reference": practitioner_ref}
    return resource


def participant(reference: str, *types: str) -> dict:
    item: dict = {"individual": {"reference": reference}}
    if types:
        item["type"] = [{"coding": [{"system": PARTICIPATION, "code": t}]} for t in types]
    return item


def encounter_with(*participants, extra=(), resources=None) -> list[dict]:
    return replace_resource(
        resources or world(), "Encounter", participant=list(participants)
    ) + list(extra)


def test_a_role_is_read_through_its_practitioner_an_auxiliary_one_does_not_render_by_role():
    w = encounter_with(
        participant("PractitionerRole/r1", "ATND"),
        extra=[role("r1", "Practitioner/aide"), practitioner("aide", (V2_DEGREE, "RN"))],
    )
    d = decide_one(admin(), w)
    assert d.rendering is None and "rendering-provider-by-role" not in gap_codes(d)
    assert (
        "Encounter.participant: 'PractitionerRole/r1' (auxiliary)"
        in gap(d, "missing-rendering-provider").message
    )


def test_a_role_whose_practitioner_is_eligible_renders_without_a_note():
    w = encounter_with(
        participant("PractitionerRole/r1", "ATND"),
        extra=[role("r1", "Practitioner/md"), practitioner("md", (V2_DEGREE, "MD"))],
    )
    d = decide_one(admin(), w)
    assert d.rendering == "PractitionerRole/r1" and "rendering-provider-by-role" not in gap_codes(d)


def test_a_performer_role_of_an_eligible_practitioner_renders_itself():
    a = admin(performer=[{"actor": {"reference": "PractitionerRole/r2"}}])
    w = [*world(), role("r2", "Practitioner/np"), practitioner("np", (V2_DEGREE, "NP"))]
    assert decide_one(a, w).rendering == "PractitionerRole/r2"


def test_malformed_qualifications_are_skipped_and_a_later_eligible_coding_counts():
    junk = [
        "junk",
        {"code": "MD"},
        {"code": {"coding": "MD"}},
        {
            "code": {
                "coding": [
                    "junk",
                    {"system": "http://example.org/other", "code": "XYZ"},
                    {"system": V2_DEGREE, "code": "MD"},
                ]
            }
        },
    ]
    w = encounter_with(
        participant("Practitioner/odd", "ATND"), extra=[practitioner("odd", qualification=junk)]
    )
    d = decide_one(admin(), w)
    assert d.rendering == "Practitioner/odd" and "rendering-provider-by-role" not in gap_codes(d)


def test_an_unknown_qualification_system_is_no_qualification():
    w = encounter_with(
        participant("Practitioner/x"),
        extra=[practitioner("x", ("http://example.org/degrees", "MD"))],
    )
    d = decide_one(admin(), w)
    assert d.rendering is None
    assert (
        "'Practitioner/x' (no known qualification)" in gap(d, "missing-rendering-provider").message
    )


def test_a_participant_pointing_to_nothing_is_passed_over_for_the_next():
    w = encounter_with(
        participant("Practitioner/gone", "ATND"),
        participant("Practitioner/md", "PPRF"),
        extra=[practitioner("md", (V2_DEGREE, "MD"))],
    )
    assert decide_one(admin(), w).rendering == "Practitioner/md"


def test_a_participant_that_is_no_clinician_is_passed_over_for_the_next():
    w = encounter_with(
        participant("Patient/p1", "ATND"),
        participant("Practitioner/md", "PPRF"),
        extra=[practitioner("md", (V2_DEGREE, "MD"))],
    )
    assert decide_one(admin(), w).rendering == "Practitioner/md"


def test_the_message_lists_every_candidate_seen():
    w = encounter_with(
        participant("Practitioner/rn"),
        participant("Practitioner/x"),
        extra=[practitioner("rn", (V2_DEGREE, "RN")), practitioner("x")],
    )
    d = decide_one(admin(), w)
    assert (
        "Encounter.participant: 'Practitioner/rn' (auxiliary), 'Practitioner/x' (no known qualification); "
        "no rendering provider is configured for the clinic"
    ) in gap(d, "missing-rendering-provider").message


def test_no_performer_no_clinic_and_no_participant_is_a_gap_not_a_crash():
    w = replace_resource(world(), "Encounter", participant=None, serviceProvider=None)
    d = decide_one(admin(performer=None), w)
    assert d.rendering is None and d.outcome == "held"
    assert gap(d, "missing-rendering-provider").message.startswith(
        "The Encounter has no participant; no rendering provider is configured for the clinic"
    )
