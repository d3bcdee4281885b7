"""Context.memo: what the decision derives from shared resources (a clinician's credential, a site's
place of service and time zone, a product's codes, a kind of visit) is worked out once, and
changes nothing any administration is decided as.

Leuprolide is J9217 for cancer and J1950 otherwise (96372.md; drug_by_diagnosis.csv): two
administrations of one product, decided in one Context, each keep their own diagnosis's code. A
Practitioner with no qualification is an NP by its PractitionerRole's NUCC specialty 363L00000X
(US Core PractitionerRole binds specialty to NUCC): a role added after the credential was read
is seen.
"""

from __future__ import annotations

from fhir_injection import Context
from fhir_injection.decision.clinicians import clinician_credential
from fhir_injection.sources.spool import Spool
from tests.builders import (
    ICD10,
    RXNORM,
    admin,
    decide_many,
    dosage,
    dose,
    med,
    replace_resource,
    rules,
    world,
)

NUCC = "http://nucc.org/provider-taxonomy"


def leuprolide(id_, amount, code):
    return admin(
        id=id_,
        medicationCodeableConcept=med(RXNORM, "42375", "leuprolide"),
        dosage=dosage(dose=dose(amount, "mg")),
        reasonCode=[{"coding": [{"system": ICD10, "code": code}]}],
    )


def test_one_product_two_diagnoses_two_codes_in_one_context():
    resources = replace_resource(world(payer="commercial"), "Encounter", diagnosis=None)
    for first, second in (("C61", "N80.0"), ("N80.0", "C61")):
        decided = decide_many(
            [leuprolide("a1", 7.5, first), leuprolide("a2", 3.75, second)], resources
        )
        drugs = {d.administration: (d.drug, d.procedure) for d in decided}
        expect = {"C61": ("J9217", "96402"), "N80.0": ("J1950", "96372")}
        assert drugs == {
            "MedicationAdministration/a1": expect[first],
            "MedicationAdministration/a2": expect[second],
        }


def bare_practitioner():
    return {"resourceType": "Practitioner", "id": "np"}


def np_role():
    return {
        "resourceType": "PractitionerRole",
        "id": "np-role",
        "practitioner": {"reference": "Practitioner/np"},
        "specialty": [{"coding": [{"system": NUCC, "code": "363L00000X"}]}],
    }


def test_a_role_added_after_the_credential_was_read_is_seen():
    practitioner = bare_practitioner()
    ctx = Context([practitioner])
    assert clinician_credential(practitioner, ctx, rules(), None).role is None
    assert ctx.memo  # read once, kept
    ctx.add(np_role())
    assert not ctx.memo  # a PractitionerRole can change what a Practitioner is
    assert clinician_credential(practitioner, ctx, rules(), None).role == "eligible"


def test_a_role_not_in_force_on_the_day_says_nothing_and_the_next_day_it_does():
    from datetime import date

    practitioner = bare_practitioner()
    role = {**np_role(), "period": {"start": "2026-10-06"}}
    ctx = Context([practitioner, role])
    assert clinician_credential(practitioner, ctx, rules(), date(2026, 10, 5)).role is None
    assert clinician_credential(practitioner, ctx, rules(), date(2026, 10, 6)).role == "eligible"
    assert clinician_credential(practitioner, ctx, rules(), date(2026, 10, 5)).role is None


def test_the_spool_gives_every_patient_one_memo_and_a_new_one_after_records_are_added(tmp_path):
    resources = world(patient="p1") + [
        r
        for r in world(patient="p2")
        if r["resourceType"] in ("Patient", "Encounter", "Condition", "Coverage", "Consent")
    ]
    with Spool(directory=str(tmp_path)) as spool:
        spool.add_all([*resources, admin("a1", "p1"), admin("a2", "p2")], print)
        _, first = spool.for_patient("p1")
        _, second = spool.for_patient("p2")
        assert first.memo is second.memo
        spool.add_all([np_role()], print)
        _, third = spool.for_patient("p1")
        assert third.memo is not first.memo and not third.memo
