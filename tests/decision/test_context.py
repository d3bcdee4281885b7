"""What an administration points to (fhir_injection/decision/context.py).

A Context is the engine's only view of the other resources: these tests pin how references are
normalised, which resources count as a patient's, what a newer version of a resource replaces, and
the look-up hook the server-backed context (store._LazyContext) overrides.
"""

from __future__ import annotations

import pytest

from fhir_injection import Context
from fhir_injection.fhir.resources import patient_id_of, ref_key, split_reference


def coverage(id="cov1", beneficiary=None, **changes):
    resource = {
        "resourceType": "Coverage",
        "id": id,
        "status": "active",
        "beneficiary": beneficiary if beneficiary is not None else {"reference": "Patient/p1"},
    }
    resource.update(changes)
    return resource


@pytest.mark.parametrize(
    "reference,key",
    [
        ("Patient/p1", "Patient/p1"),
        ("https://ehr.example/fhir/Patient/p1", "Patient/p1"),
        ("https://ehr.example/fhir/Patient/p1/_history/3", "Patient/p1"),
        ("Patient/p1/_history/3", "Patient/p1"),
        ("Patient/p1/", "Patient/p1"),  # a trailing slash
        ("#med1", None),
        ("urn:uuid:1f3a", None),
        ("p1", None),
        ("", None),
        (None, None),
        (5, None),
        (["Patient/p1"], None),
    ],
)
def test_references_are_normalised_to_type_and_id(reference, key):
    assert ref_key(reference) == key
    assert split_reference(reference) == (tuple(key.split("/")) if key else None)


def test_an_absolute_reference_finds_the_resource_held_by_type_and_id():
    patient = {"resourceType": "Patient", "id": "p1"}
    ctx = Context([patient])
    assert ctx.get("https://ehr.example/fhir/Patient/p1") is patient
    assert ctx.get("https://ehr.example/fhir/Patient/p1", "Patient") is patient
    assert ctx.get("https://ehr.example/fhir/Patient/p1", "Practitioner") is None
    assert ctx.get("Patient/p1/") is patient
    assert "https://ehr.example/fhir/Patient/p1" in ctx
    assert "Patient/p2" not in ctx and "#p1" not in ctx


@pytest.mark.parametrize(
    "beneficiary,patient",
    [
        ({"reference": "Patient/p1"}, "p1"),
        ([{"reference": "Patient/p1"}], "p1"),  # a list, as some servers send it: the first
        ([], None),
        ({"reference": "Group/p1"}, None),  # a group with the same id is not the patient
        ({"reference": "#p1"}, None),
        ("Patient/p1", None),
    ],
)
def test_the_patient_of_a_coverage(beneficiary, patient):
    resource = coverage(beneficiary=beneficiary)
    assert patient_id_of(resource) == patient
    assert Context([resource]).for_patient("Coverage", "p1") == ([resource] if patient else [])


def test_only_patient_scoped_types_have_a_patient():
    assert (
        patient_id_of({"resourceType": "DiagnosticReport", "subject": {"reference": "Patient/p1"}})
        is None
    )
    assert patient_id_of({"subject": {"reference": "Patient/p1"}}) is None


def test_administrations_are_held_but_not_listed_as_a_patients_context():
    ma = {
        "resourceType": "MedicationAdministration",
        "id": "ma1",
        "subject": {"reference": "Patient/p1"},
    }
    ctx = Context([ma])
    assert ctx.get("MedicationAdministration/ma1") is ma
    assert ctx.for_patient("MedicationAdministration", "p1") == []


def test_a_resource_without_type_or_id_is_not_held():
    ctx = Context(
        [{"resourceType": "Patient"}, {"id": "p1"}, {"resourceType": "Coverage", "id": 7}]
    )
    assert len(ctx) == 0


def test_a_newer_version_replaces_the_older_in_the_patients_list():
    old, new = coverage(status="draft"), coverage(status="active")
    ctx = Context([old, new])
    assert ctx.for_patient("Coverage", "p1") == [new]
    assert ctx.get("Coverage/cov1") is new
    assert len(ctx) == 1


def test_a_newer_version_for_another_patient_moves_the_resource():
    old, new = coverage(), coverage(beneficiary={"reference": "Patient/p2"})
    ctx = Context([old, new])
    assert ctx.for_patient("Coverage", "p1") == []
    assert ctx.for_patient("Coverage", "p2") == [new]


def test_other_resources_of_the_patient_stay_when_one_is_replaced():
    a, b, b2 = coverage("a"), coverage("b"), coverage("b", status="cancelled")
    assert Context([a, b, b2]).for_patient("Coverage", "p1") == [a, b2]


def test_add_new_indexes_a_resource_whose_key_and_patient_are_known():
    ctx = Context()
    cov = coverage()
    ctx.add_new(cov, "Coverage", "cov1", "p1")
    ma = {"resourceType": "MedicationAdministration", "id": "ma1"}
    ctx.add_new(ma, "MedicationAdministration", "ma1", "p1")
    assert ctx.get("Coverage/cov1") is cov and ctx.get("MedicationAdministration/ma1") is ma
    assert ctx.for_patient("Coverage", "p1") == [cov]
    assert ctx.for_patient("MedicationAdministration", "p1") == []
    assert ctx.for_patient("Coverage", None) == []


def test_a_context_can_look_further_for_what_it_does_not_hold():
    asked = []

    def lookup(rtype, rid):  # as the offline store falls back to its spool
        asked.append((rtype, rid))
        return {"resourceType": rtype, "id": rid}

    held = {"resourceType": "Organization", "id": "held"}
    ctx = Context([held], lookup=lookup)
    assert ctx.get("https://ehr.example/fhir/Organization/clinic") == {
        "resourceType": "Organization",
        "id": "clinic",
    }
    assert asked == [("Organization", "clinic")]
    assert ctx.get("Organization/held") is held and asked == [
        ("Organization", "clinic")
    ]  # held: not asked
    assert (
        ctx.get("Organization/clinic", "Patient") is None and len(asked) == 1
    )  # wrong type: not asked
    assert Context().get("Organization/clinic") is None  # no lookup: nothing found
