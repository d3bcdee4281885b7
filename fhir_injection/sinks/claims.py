"""Decisions -> FHIR R4 Claim and Task resources (plain dicts in R4 JSON form).

The same administration always gives the same Claim: its business identifier is
``<identifier_system>|<administration id>`` and its resource id a hash of that,
so a rerun, a restart or a second target sees the same claim, and a conditional
create (``ifNoneExist``) can refuse a second copy.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from ..decision.model import CENT, Coding, Decision, EsaReading, Line
from ..decision.practice import Config
from ..decision.ruleset import SYSTEM_CPT, SYSTEM_HCPCS, SYSTEM_NDC, SYSTEM_POS, Rules

__all__ = [
    "CLAIM_TYPE",
    "CONTAINER_EXTENSION",
    "DIAGNOSIS_TYPE",
    "INFO_CATEGORY",
    "PRIORITY",
    "TAG_SYSTEM",
    "TASK_IDENTIFIER_SUFFIX",
    "UCUM",
    "build_claim",
    "build_task",
    "claim_id",
    "claim_identifier",
    "stable_id",
    "task_id",
    "task_identifier",
]

TAG_SYSTEM = "urn:fhir-injection:tag"
TASK_IDENTIFIER_SUFFIX = ":task"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
PRIORITY = "http://terminology.hl7.org/CodeSystem/processpriority"
DIAGNOSIS_TYPE = "http://terminology.hl7.org/CodeSystem/ex-diagnosistype"
INFO_CATEGORY = "http://terminology.hl7.org/CodeSystem/claiminformationcategory"
#: the container a drug line's dose came from (R4 Claim.item.detail has no element for it): what
#: one container holds, single- or multi-dose, and the billing units discarded (docs/outputs.md)
CONTAINER_EXTENSION = "urn:fhir-injection:StructureDefinition/container"
UCUM = "http://unitsofmeasure.org"
#: the package units that have one UCUM code; a drug's "units" (epoetin, heparin, insulin: USP or
#: international units by product) have none, so they go as text only (UCUM's [U] is the enzyme
#: unit, which HAPI's validator refuses on an R4 Claim, and [iU] is not right for USP units)
_UCUM_CODES = {"mg": "mg", "mcg": "ug", "g": "g", "mL": "mL"}


def claim_identifier(decision: Decision, config: Config) -> tuple[str, str]:
    return config.identifier_system, decision.administration_id


def task_identifier(decision: Decision, config: Config) -> tuple[str, str]:
    return config.identifier_system + TASK_IDENTIFIER_SUFFIX, decision.administration_id


def stable_id(prefix: str, system: str, value: str) -> str:
    """A FHIR id (<= 64 chars, [A-Za-z0-9-.]) derived from a business identifier."""
    digest = hashlib.sha256(f"{system}|{value}".encode()).hexdigest()[:32]
    return f"{prefix}-{digest}"


def claim_id(decision: Decision, config: Config) -> str:
    return stable_id("fi-claim", *claim_identifier(decision, config))


def task_id(decision: Decision, config: Config) -> str:
    return stable_id("fi-task", *task_identifier(decision, config))


def _modifier_system(modifier: str) -> str:
    """CPT modifiers are two digits (25, 59); HCPCS Level II ones are letters (XU, JZ, JW)."""
    return SYSTEM_CPT if modifier.isdigit() else SYSTEM_HCPCS


def _money(amount: Decimal) -> dict:
    return {"value": float(amount.quantize(CENT)), "currency": "USD"}


def _head(resource_type: str, rid: str, identifier: tuple[str, str], config: Config) -> dict:
    """What Claims and Tasks share: type, stable id, our tag (for isolation), business identifier."""
    return {
        "resourceType": resource_type,
        "id": rid,
        "meta": {"tag": [{"system": TAG_SYSTEM, "code": config.identifier_system}]},
        "identifier": [{"system": identifier[0], "value": identifier[1]}],
    }


def build_claim(
    decision: Decision, config: Config, created: str, status: str | None = None
) -> dict | None:
    """The professional Claim for a 96372 decision, or None when no Claim can be formed.

    ``created`` is the run's timestamp (the engine holds no clock). ``status``
    overrides the decision's (the sync uses ``cancelled`` to void).
    """
    status = status or decision.claim_status
    if (
        status is None
        or decision.patient is None
        or decision.coverage is None
        or decision.provider is None
    ):
        return None
    claim: dict = {
        **_head("Claim", claim_id(decision, config), claim_identifier(decision, config), config),
        "status": status,
        "type": {"coding": [{"system": CLAIM_TYPE, "code": "professional"}]},
        "use": "claim",
        "patient": {"reference": decision.patient},
        "created": created,
        "provider": {"reference": decision.provider},
        "priority": {"coding": [{"system": PRIORITY, "code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": decision.coverage}}],
        "supportingInfo": [],
    }
    if decision.service_date:
        claim["billablePeriod"] = {"start": decision.service_date, "end": decision.service_date}
    if decision.rendering:  # the rendering provider (incident-to: the supervising practitioner)
        claim["careTeam"] = [
            {"sequence": 1, "provider": {"reference": decision.rendering}, "responsible": True}
        ]
    if decision.diagnoses:
        claim["diagnosis"] = [_diagnosis(i, d) for i, d in enumerate(decision.diagnoses, start=1)]
    pointers = list(
        range(1, min(len(decision.diagnoses), 4) + 1)
    )  # each line points to the first four
    claim["item"] = [
        _item(decision, n, line, pointers) for n, line in enumerate(decision.lines, start=1)
    ]
    claim["supportingInfo"] = [_source_administration(decision)]
    if decision.lab is not None:  # a Medicare ESA's hemoglobin or hematocrit (CMS CR 5699)
        sequence = len(claim["supportingInfo"]) + 1
        claim["supportingInfo"].append(_lab(sequence, decision.lab))
        for item, line in zip(claim["item"], decision.lines, strict=True):
            if line.kind == "drug":
                item["informationSequence"] = [sequence]
    total = sum((line.net for line in decision.lines if line.net is not None), Decimal(0))
    if total:
        claim["total"] = _money(total)
    return claim


def _lab(sequence: int, lab: EsaReading) -> dict:
    """The most recent hemoglobin or hematocrit before an ESA dose, as a supportingInfo of category
    'info' coded with its LOINC code (what the 837P reports in loop 2400 MEA, R1 or R2)."""
    quantity: dict = {"value": float(lab.value)}
    if lab.unit:
        quantity["unit"] = lab.unit
    return {
        "sequence": sequence,
        "category": {"coding": [{"system": INFO_CATEGORY, "code": "info"}]},
        "code": {"coding": [lab.as_fhir_code()]},
        "timingDate": lab.taken[:10],
        "valueQuantity": quantity,
    }


def _diagnosis(sequence: int, code: Coding) -> dict:
    kind = "principal" if sequence == 1 else "clinical"
    return {
        "sequence": sequence,
        "diagnosisCodeableConcept": {"coding": [code.as_fhir()]},
        "type": [{"coding": [{"system": DIAGNOSIS_TYPE, "code": kind}]}],
    }


def _item(decision: Decision, sequence: int, line: Line, pointers: list[int]) -> dict:
    """One claim line: the procedure or drug with its modifiers, units, date, place, site and NDC.
    A JW line (the drug's discarded units) is an item of its own: the same code, modifier JW, its
    quantity and fee."""
    coding = {
        "system": line.system,
        "code": line.code,
        **({"display": line.display} if line.display else {}),
    }
    item: dict = {"sequence": sequence, "productOrService": {"coding": [coding]}}
    if line.text:
        item["productOrService"]["text"] = line.text
    if decision.rendering:
        item["careTeamSequence"] = [1]
    if pointers:
        item["diagnosisSequence"] = pointers
    if line.modifiers:
        item["modifier"] = [
            {"coding": [{"system": _modifier_system(m), "code": m}]} for m in line.modifiers
        ]
    if decision.service_date:
        item["servicedDate"] = decision.service_date
    if decision.place_of_service:
        item["locationCodeableConcept"] = {
            "coding": [{"system": SYSTEM_POS, "code": decision.place_of_service}]
        }
    if line.quantity is not None:
        item["quantity"] = {"value": line.quantity}
    if line.unit_price is not None:
        item["unitPrice"] = _money(line.unit_price)
    if line.net is not None:
        item["net"] = _money(line.net)
    if line.kind == "administration" and decision.body_site:
        item["bodySite"] = {"coding": [c.as_fhir() for c in decision.body_site]}
        if decision.body_site_text:
            item["bodySite"]["text"] = decision.body_site_text
    if decision.encounter:
        item["encounter"] = [{"reference": decision.encounter}]
    container = _container(decision, line) if line.kind != "administration" else None
    if line.ndc:
        detail: dict = {
            "sequence": 1,
            "productOrService": {"coding": [{"system": SYSTEM_NDC, "code": line.ndc}]},
        }
        if line.ndc_quantity is not None:
            detail["quantity"] = {"value": float(line.ndc_quantity), "unit": line.ndc_unit}
        if container is not None:
            detail["extension"] = [container]
        item["detail"] = [detail]
    elif container is not None:  # the JW line (no NDC detail), or a drug line without an NDC
        item["extension"] = [container]
    return item


def _container(decision: Decision, line: Line) -> dict | None:
    """The container extension of a drug or JW line: the package's amount (UCUM), its kind when
    known, the billing units discarded when JW/JZ worked them out, where the size was read, and
    packages.csv's description of it. None when the container is not known."""
    package = decision.package
    if package is None:
        return None
    amount = {"value": float(package.amount), "unit": package.unit}
    code = _UCUM_CODES.get(package.unit)
    if code is not None:
        amount |= {"system": UCUM, "code": code}
    parts: list[dict] = [{"url": "amount", "valueQuantity": amount}]
    if package.container is not None:
        parts.append({"url": "kind", "valueCode": package.container})
        if package.kind_source is not None:  # the practice's profile, not a table, said the kind
            parts.append({"url": "kind-source", "valueString": f"practice {package.kind_source}"})
    if line.discarded is not None:
        parts.append({"url": "discarded", "valueUnsignedInt": line.discarded})
    parts.append({"url": "source", "valueString": package.source})
    if package.display:
        parts.append({"url": "description", "valueString": package.display})
    return {"url": CONTAINER_EXTENSION, "extension": parts}


def _source_administration(decision: Decision) -> dict:
    """supportingInfo: the MedicationAdministration this Claim bills."""
    return {
        "sequence": 1,
        "category": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claiminformationcategory",
                    "code": "info",
                }
            ],
            "text": "Source administration",
        },
        "valueReference": {"reference": decision.administration},
    }


def build_task(
    decision: Decision, config: Config, rules: Rules, created: str, status: str = "requested"
) -> dict | None:
    """The Task a clinician works from: one per administration with actionable gaps (errors and
    warnings of a claim or held 96372: :attr:`Decision.actionable_gaps`), else None."""
    gaps = decision.actionable_gaps
    if not gaps and status != "completed":
        return None
    worst = "error" if any(g.severity == "error" for g in gaps) else "warning"
    task: dict = {
        **_head("Task", task_id(decision, config), task_identifier(decision, config), config),
        "status": status,
        "intent": "order",
        "priority": "urgent" if worst == "error" and status != "completed" else "routine",
        "code": {"text": "Fix injection documentation for billing"},
        "description": (
            "; ".join(f"{g.code} ({g.severity})" for g in gaps)
            if gaps
            else "All documentation gaps fixed"
        ),
        "focus": {"reference": decision.administration},
        "authoredOn": created,
        "lastModified": created,
        "businessStatus": {
            "text": f"{len(gaps)} gap(s); blocks billing"
            if worst == "error" and gaps
            else f"{len(gaps)} gap(s); review"
        },
    }
    if decision.patient:
        task["for"] = {"reference": decision.patient}
    if decision.encounter:
        task["encounter"] = {"reference": decision.encounter}
    if decision.performer:
        task["owner"] = {"reference": decision.performer}
    if gaps:
        task["input"] = [
            {
                "type": {
                    "coding": [{"system": rules.gap_codesystem_url, "code": g.code}],
                    "text": g.severity,
                },
                "valueString": f"{g.field}: {g.message}",
            }
            for g in gaps
        ]
    return task
