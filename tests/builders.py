"""Small FHIR R4 worlds for rule tests: one clean, billable office injection, then change one thing.

``world()`` returns the resources around a patient; ``admin(**changes)`` a
MedicationAdministration that is clean unless told otherwise. Tests state the
one documentation change and assert the one consequence.
"""

from __future__ import annotations

import copy

SNOMED = "http://snomed.info/sct"
V3_ROUTE = "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration"
V2_ROUTE = "http://terminology.hl7.org/CodeSystem/v2-0162"
V2_SITE = "http://terminology.hl7.org/CodeSystem/v2-0163"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC = "http://hl7.org/fhir/sid/ndc"
CVX = "http://hl7.org/fhir/sid/cvx"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
UCUM = "http://unitsofmeasure.org"
SOPT = "https://nahdo.org/sopt"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V2_DEGREE = "http://terminology.hl7.org/CodeSystem/v2-0360"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"

PAYER_SOPT = {"medicare": "1", "medicaid": "2", "commercial": "5"}


def world(
    payer: str = "medicare",
    patient: str = "p1",
    encounter_class: str = "AMB",
    consent: bool = True,
    coverage: bool = True,
) -> list[dict]:
    """A Medicare office visit (its Location is typed CMS POS 11): the nurse (RN) gives the injection,
    the doctor (MD) attends the encounter and renders it incident-to."""
    resources = [
        {
            "resourceType": "Patient",
            "id": patient,
            "name": [{"family": "Testperson", "given": ["Pat"]}],
            "birthDate": "1950-02-03",
            "gender": "female",
        },
        {
            "resourceType": "Organization",
            "id": "clinic",
            "name": "Demo Clinic",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
        },
        {"resourceType": "Organization", "id": "payer", "name": "Demo Payer"},
        # the place: an office (CMS place of service 11 as the Location's type); class AMB alone does
        # not say office or hospital outpatient department (96372.md 'Setting')
        {
            "resourceType": "Location",
            "id": "office",
            "name": "Demo Clinic, main office",
            "type": [{"coding": [{"system": POS, "code": "11", "display": "Office"}]}],
        },
        {
            "resourceType": "Practitioner",
            "id": "nurse",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1111111112"}],
            "qualification": [{"code": {"coding": [{"system": V2_DEGREE, "code": "RN"}]}}],
        },
        {
            "resourceType": "Practitioner",
            "id": "doctor",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1111111120"}],
            "qualification": [{"code": {"coding": [{"system": V2_DEGREE, "code": "MD"}]}}],
        },
        {
            "resourceType": "Encounter",
            "id": f"e-{patient}",
            "status": "finished",
            "class": {"system": ACT, "code": encounter_class},
            "subject": {"reference": f"Patient/{patient}"},
            "period": {"start": "2026-10-05T09:00:00-05:00", "end": "2026-10-05T11:00:00-05:00"},
            "serviceProvider": {"reference": "Organization/clinic"},
            "location": [{"location": {"reference": "Location/office"}}],
            "participant": [
                {
                    "type": [{"coding": [{"system": PARTICIPATION, "code": "ATND"}]}],
                    "individual": {"reference": "Practitioner/doctor"},
                }
            ],
            "diagnosis": [{"condition": {"reference": f"Condition/c-{patient}"}, "rank": 1}],
        },
        {
            "resourceType": "Condition",
            "id": f"c-{patient}",
            "subject": {"reference": f"Patient/{patient}"},
            "code": {
                "coding": [
                    {"system": ICD10, "code": "M54.50", "display": "Low back pain, unspecified"}
                ]
            },
        },
    ]
    if coverage:
        resources.append(
            {
                "resourceType": "Coverage",
                "id": f"cov-{patient}",
                "status": "active",
                "beneficiary": {"reference": f"Patient/{patient}"},
                "subscriberId": "MEMBER-SECRET-1",
                "payor": [{"reference": "Organization/payer"}],
                "type": {"coding": [{"system": SOPT, "code": PAYER_SOPT[payer]}]},
                "period": {"start": "2026-01-01", "end": "2026-12-31"},
            }
        )
    if consent:
        resources.append(
            {
                "resourceType": "Consent",
                "id": f"consent-{patient}",
                "status": "active",
                "scope": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                            "code": "treatment",
                        }
                    ]
                },
                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                "patient": {"reference": f"Patient/{patient}"},
                "dateTime": "2026-01-02",
                "provision": {"period": {"start": "2026-01-02", "end": "2027-01-01"}},
            }
        )
    return resources


def admin(id: str = "ma1", patient: str = "p1", **changes) -> dict:
    """A clean ketorolac 30 mg IM injection in the left deltoid, with an NDC; ``changes`` override keys
    (a value of None deletes the key)."""
    resource = {
        "resourceType": "MedicationAdministration",
        "id": id,
        "status": "completed",
        "medicationCodeableConcept": {
            "coding": [
                {"system": RXNORM, "code": "35827", "display": "ketorolac"},
                {"system": NDC, "code": "00409379501", "display": "ketorolac 30 mg/mL"},
            ]
        },
        "subject": {"reference": f"Patient/{patient}"},
        "context": {"reference": f"Encounter/e-{patient}"},
        "effectiveDateTime": "2026-10-05T09:30:00-05:00",
        "performer": [{"actor": {"reference": "Practitioner/nurse"}}],
        "dosage": {
            "route": {
                "coding": [{"system": SNOMED, "code": "78421000", "display": "Intramuscular route"}]
            },
            "site": {"coding": [{"system": V2_SITE, "code": "LD", "display": "Left deltoid"}]},
            "dose": {"value": 30, "unit": "mg", "system": UCUM, "code": "mg"},
        },
    }
    return with_changes(resource, changes)


def with_changes(resource: dict, changes: dict) -> dict:
    """``resource`` with each key set to (a copy of) its new value; a value of None deletes the key."""
    for key, value in changes.items():
        if value is None:
            resource.pop(key, None)
        else:
            resource[key] = copy.deepcopy(value)
    return resource


def dosage(**changes) -> dict:
    return with_changes(admin()["dosage"], changes)


def med(system: str, code: str, display: str | None = None) -> dict:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


# --------------------------------------------------------------------------- helpers for rule tests

CREATED = "2026-10-06T12:00:00Z"


def rules():
    """The bundled mappings/ (loaded once per process)."""
    global _RULES
    try:
        return _RULES
    except NameError:
        from fhir_injection import load_rules

        _RULES = load_rules()
        return _RULES


def decide_one(
    administration: dict | None = None, resources: list[dict] | None = None, config=None
):
    """Decide one administration in ``resources`` (default: a clean Medicare ``world()``)."""
    from fhir_injection import Context, decide

    return decide(
        administration if administration is not None else admin(),
        Context(resources if resources is not None else world()),
        rules(),
        config,
    )


def decide_many(administrations: list[dict], resources: list[dict] | None = None, config=None):
    from fhir_injection import Context, decide_all

    return decide_all(
        administrations, Context(resources if resources is not None else world()), rules(), config
    )


def gap_codes(decision) -> list[str]:
    return [g.code for g in decision.gaps]


def gap(decision, code: str):
    found = [g for g in decision.gaps if g.code == code]
    assert found, f"no gap {code} in {gap_codes(decision)}"
    return found[0]


def line(decision, kind: str):
    found = [ln for ln in decision.lines if ln.kind == kind]
    return found[0] if found else None


def replace_resource(resources: list[dict], resource_type: str, **changes) -> list[dict]:
    """A copy of ``resources`` with the first ``resource_type`` changed (a value of None deletes the key)."""
    out = copy.deepcopy(resources)
    for r in out:
        if r["resourceType"] == resource_type:
            with_changes(r, changes)
            break
    return out


def without(resources: list[dict], resource_type: str) -> list[dict]:
    return [copy.deepcopy(r) for r in resources if r["resourceType"] != resource_type]


def route(system: str, code: str) -> dict:
    return {"coding": [{"system": system, "code": code}]}


def dose(value, code: str) -> dict:
    return {"value": value, "unit": code, "system": UCUM, "code": code}


def contained_admin(
    id: str = "ma1", strength=(30, "mg", 1, "mL"), dose_ml=2, code=None, **changes
) -> dict:
    """An administration whose medication is a contained Medication (Oracle Health style)."""
    medication = {
        "resourceType": "Medication",
        "id": "med1",
        "code": code or {"text": "ketorolac tromethamine injection"},
        "ingredient": [
            {
                "itemCodeableConcept": {
                    "coding": [{"system": RXNORM, "code": "35827", "display": "ketorolac"}]
                }
            }
        ],
    }
    if strength:
        medication["ingredient"][0]["strength"] = {
            "numerator": {
                "value": strength[0],
                "unit": strength[1],
                "system": UCUM,
                "code": strength[1],
            },
            "denominator": {
                "value": strength[2],
                "unit": strength[3],
                "system": UCUM,
                "code": strength[3],
            },
        }
    a = admin(
        id=id,
        medicationCodeableConcept=None,
        medicationReference={"reference": "#med1"},
        contained=[medication],
        **changes,
    )
    a["dosage"]["dose"] = dose(dose_ml, "mL")
    return a


def validate_claim(claim: dict):
    from fhir.resources.R4B.claim import Claim

    return Claim.model_validate(claim)


def validate_task(task: dict):
    from fhir.resources.R4B.task import Task

    return Task.model_validate(task)


def prefix_identifiers(resource: dict, prefix: str, systems) -> dict:
    """``resource`` with the values of its identifiers in ``systems`` prefixed (in place), as
    :func:`prefix_references` prefixes a conditional reference's value."""
    for ident in resource.get("identifier") or []:
        if isinstance(ident, dict) and ident.get("system") in systems and "value" in ident:
            ident["value"] = prefix + ident["value"]
    return resource


def prefix_references(value, prefix: str):
    """A copy of ``value`` whose relative references ``Type/id`` become ``Type/<prefix>id``, and whose
    conditional references ``Type?identifier=system|value`` ask for ``system|<prefix>value``.

    Absolute (``http://…``) and contained (``#x``) references stay. Tests use it with a
    renamed ``id`` to load private copies of the demo onto a shared server.
    """
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if (
                key == "reference"
                and isinstance(item, str)
                and "?identifier=" in item
                and "|" in item
            ):
                # a conditional reference: the copy's identifier values carry the prefix too
                # (see prefix_identifiers), so one copy's reference never matches another's resource
                head, _, token = item.rpartition("|")
                out[key] = f"{head}|{prefix}{token}"
            elif (
                key == "reference"
                and isinstance(item, str)
                and "/" in item
                and "://" not in item
                and not item.startswith("#")
            ):
                rtype, rid = item.split("/", 1)
                out[key] = f"{rtype}/{prefix}{rid}"
            else:
                out[key] = prefix_references(item, prefix)
        return out
    if isinstance(value, list):
        return [prefix_references(v, prefix) for v in value]
    return value


def refused_row(tmp_path, table: str, old: str, new: str):
    """Load a copy of mappings/ whose ``table`` has its first ``old`` replaced by ``new``; the load
    must fail. Returns (the MappingError, the number of the edited row), for the test to check that
    the message names that file and row."""
    import shutil
    from pathlib import Path

    import pytest

    from fhir_injection import MappingError, load_rules

    target = tmp_path / "mappings"
    if not target.exists():
        shutil.copytree(Path(__file__).resolve().parent.parent / "mappings", target)
    path = target / table
    text = path.read_text(encoding="utf-8")
    assert old in text, (table, old)
    row = text[: text.index(old)].count("\n") + 1  # the header is row 1, as MappingError counts
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(MappingError) as err:
        load_rules(target)
    return err.value, row
