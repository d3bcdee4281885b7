"""The checks every record passes before anything indexes or decides it.

A record that fails becomes a :class:`~fhir_injection.errors.RecordProblem` naming the
record and the FHIR element: the run reports it and goes on. Every source (export folder,
server search) uses these same checks, so a record is judged the same whichever way it came.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from ..errors import RecordProblem
from ..fhir.resources import MAPPING, USED_TYPES

__all__ = ["check_resource", "check_shape", "valid_id"]

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{0,63}")


def valid_id(rid: object) -> bool:
    """Whether ``rid`` is a FHIR id (the same test :func:`check_resource` applies)."""
    return isinstance(rid, str) and _ID.fullmatch(rid) is not None


def check_resource(resource, where: str, expected_type: str | None = None) -> RecordProblem | None:
    """The minimum a resource needs before anything indexes it: an object with a type and a valid id."""
    if not isinstance(resource, MAPPING):
        return RecordProblem(where, None, f"expected a JSON object, got {type(resource).__name__}")
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        return RecordProblem(where, "resourceType", "missing or not a string")
    if not _TYPE_NAME.fullmatch(
        rtype
    ):  # never echo record content: it may be anything, even a name
        return RecordProblem(
            where, "resourceType", "is not a FHIR resource type name; the record is skipped"
        )
    if expected_type in USED_TYPES and rtype != expected_type:
        return RecordProblem(
            where,
            "resourceType",
            f"is '{rtype}' in a file of {expected_type} resources; the record is skipped",
        )
    rid = resource.get("id")
    if not isinstance(rid, str) or not _ID.fullmatch(rid):
        return RecordProblem(
            f"{where} ({rtype})", "id", "missing, not a string, or not a valid FHIR id"
        )
    return None


# What the engine reads of a MedicationAdministration, and the JSON type each must have.
_OBJECT, _LIST, _STRING = "an object", "a list", "a string"
_MA_SHAPE = (
    ("status", _STRING),
    ("effectiveDateTime", _STRING),
    ("effectivePeriod", _OBJECT),
    ("subject", _OBJECT),
    ("context", _OBJECT),
    ("medicationCodeableConcept", _OBJECT),
    ("medicationReference", _OBJECT),
    ("dosage", _OBJECT),
    ("meta", _OBJECT),
    ("meta.versionId", _STRING),
    ("identifier", _LIST),
    ("performer", _LIST),
    ("reasonCode", _LIST),
    ("reasonReference", _LIST),
    ("contained", _LIST),
    ("medicationCodeableConcept.coding", _LIST),
    ("dosage.route", _OBJECT),
    ("dosage.route.coding", _LIST),
    ("dosage.site", _OBJECT),
    ("dosage.site.coding", _LIST),
    ("dosage.dose", _OBJECT),
)
_TYPES: dict[str, type | tuple[type, ...]] = {_OBJECT: MAPPING, _LIST: list, _STRING: str}
_MA_PATHS = tuple((tuple(path.split(".")), _TYPES[kind], path, kind) for path, kind in _MA_SHAPE)
_EXACT = {_OBJECT: dict, _LIST: list, _STRING: str}
_MA_TOP = tuple((path, _EXACT[kind]) for path, kind in _MA_SHAPE if "." not in path)
_MA_INNER = tuple((tuple(path.split(".")), _EXACT[kind]) for path, kind in _MA_SHAPE if "." in path)


def _shape_is_right(resource: dict) -> bool:
    """The quick yes of :func:`check_shape` for the usual record, made of dicts and lists only: every
    element present has its JSON type and the dose value is a finite number. A no (or anything
    unusual, such as another kind of mapping) is left to check_shape's full, ordered walk."""
    get = resource.get
    for name, exact in _MA_TOP:
        value = get(name)
        if value is not None and type(value) is not exact:
            return False
    for parts, exact in _MA_INNER:
        value = resource
        for part in parts:
            value = value.get(part) if type(value) is dict else None
        if value is not None and type(value) is not exact:
            return False
    dose = get("dosage")
    dose = dose.get("dose") if type(dose) is dict else None
    value = dose.get("value") if type(dose) is dict else None
    return value is None or type(value) is int or (type(value) is float and math.isfinite(value))


def check_shape(resource: Mapping, where: str) -> RecordProblem | None:
    """A MedicationAdministration whose elements have the wrong JSON type is refused, naming the element.

    Wrong types are not FHIR: the record is reported rather than decided on a guess.
    """
    if resource.get("resourceType") != "MedicationAdministration":
        return None
    if type(resource) is dict and _shape_is_right(resource):
        return None
    for parts, types, path, kind in _MA_PATHS:
        value: object = resource
        for part in parts:
            value = value.get(part) if isinstance(value, MAPPING) else None
        if value is not None and not isinstance(value, types):
            return RecordProblem(
                f"{where} (MedicationAdministration/{resource.get('id')})",
                f"MedicationAdministration.{path}",
                f"is {type(value).__name__}, not {kind}; the record is skipped",
            )
    dose = (
        resource.get("dosage", {}).get("dose")
        if isinstance(resource.get("dosage"), MAPPING)
        else None
    )
    value = dose.get("value") if isinstance(dose, MAPPING) else None
    if value is not None and (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(value, float) and not math.isfinite(value))
    ):
        return RecordProblem(
            f"{where} (MedicationAdministration/{resource.get('id')})",
            "MedicationAdministration.dosage.dose.value",
            "is not a finite JSON number; the record is skipped",
        )
    return None
