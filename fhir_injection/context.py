"""What an administration points to, as plain data the engine can look up.

:class:`Context` is a read-only index of FHIR resources (dicts in R4 JSON form):
by ``Type/id`` and, for the resources found by patient rather than by
reference (Consent, Coverage, ChargeItem, Encounter, Condition), by patient id.
Sources fill it; the engine only reads it, so it stays a pure function.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from collections.abc import Mapping
from typing import Iterable

from .model import MAPPING

# Which element of each resource type names its patient.
PATIENT_ELEMENT = {
    "Consent": "patient",
    "Coverage": "beneficiary",
    "ChargeItem": "subject",
    "Condition": "subject",
    "Encounter": "subject",
    "MedicationAdministration": "subject",
}

REFERENCED_TYPES = ("Patient", "Practitioner", "PractitionerRole", "Organization", "Medication",
                    "Encounter", "Condition")


def split_reference(reference: str | None) -> tuple[str, str] | None:
    """``"Patient/1"``, ``"http://x/fhir/Patient/1"`` or ``"Patient/1/_history/2"`` -> (type, id).

    Contained (``#x``), ``urn:`` and malformed references give None.
    """
    if not reference or not isinstance(reference, str):
        return None
    return _split_text(reference)


@lru_cache(maxsize=8192)  # a patient's administrations name the same encounter, performer, clinic
def _split_text(reference: str) -> tuple[str, str] | None:
    if "?" not in reference:  # the usual "Type/id" without building lists
        rtype, _, rid = reference.partition("/")
        if rid and "/" not in rid and rtype[:1].isupper():  # an upper-case start is neither "#" nor "urn:"
            return rtype, rid
    if reference.startswith(("#", "urn:")):
        return None
    parts = reference.split("?")[0].rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) < 2 or not parts[-1] or not parts[-2][:1].isupper():
        return None
    return parts[-2], parts[-1]


def _key(reference: str, pair: tuple[str, str]) -> str:
    """``Type/id`` of a reference split into ``pair``: a reference that is just that is its own key."""
    return reference if len(reference) == len(pair[0]) + len(pair[1]) + 1 else f"{pair[0]}/{pair[1]}"


def ref_key(reference: str | None) -> str | None:
    """Normalise a literal reference to ``Type/id`` (None when not one)."""
    pair = split_reference(reference)
    return None if pair is None else _key(reference, pair)


def patient_id_of(resource: Mapping) -> str | None:
    element = PATIENT_ELEMENT.get(resource.get("resourceType", ""))
    if not element:
        return None
    value = resource.get(element)
    if isinstance(value, list):  # R4 Coverage.beneficiary is single; tolerate lists
        value = value[0] if value else None
    if not isinstance(value, MAPPING):
        return None
    pair = split_reference(value.get("reference"))
    return pair[1] if pair and pair[0] == "Patient" else None


class Context:
    """Resources by ``Type/id``, and per-patient lists for the patient-scoped types."""

    __slots__ = ("_by_key", "_by_patient")

    def __init__(self, resources: Iterable[Mapping] = ()):
        self._by_key: dict[str, Mapping] = {}
        self._by_patient: dict[tuple[str, str], list[Mapping]] = defaultdict(list)
        for resource in resources:
            self.add(resource)

    def add_new(self, resource: Mapping, rtype: str, rid: str, patient_id: str | None) -> None:
        """:meth:`add` for a resource whose type, id and patient are known and whose key is not held yet."""
        self._by_key[f"{rtype}/{rid}"] = resource
        if patient_id and rtype != "MedicationAdministration":
            self._by_patient[(rtype, patient_id)].append(resource)

    def add(self, resource: Mapping) -> None:
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if not isinstance(rtype, str) or not isinstance(rid, str):
            return
        key = f"{rtype}/{rid}"
        if key in self._by_key:
            old = self._by_key[key]
            if rtype in PATIENT_ELEMENT:
                pid = patient_id_of(old)
                if pid:
                    bucket = self._by_patient[(rtype, pid)]
                    bucket[:] = [r for r in bucket if r is not old]
        self._by_key[key] = resource
        pid = patient_id_of(resource)
        if pid and rtype != "MedicationAdministration":
            self._by_patient[(rtype, pid)].append(resource)

    def get(self, reference: str | None, expected_type: str | None = None) -> Mapping | None:
        pair = split_reference(reference)
        if pair is None or (expected_type and pair[0] != expected_type):
            return None
        return self._find(pair, _key(reference, pair))

    def _find(self, pair: tuple[str, str], key: str) -> Mapping | None:
        return self._by_key.get(key)

    def for_patient(self, resource_type: str, patient_id: str | None) -> list[Mapping]:
        if not patient_id:
            return []
        return list(self._by_patient.get((resource_type, patient_id), ()))

    def __contains__(self, reference: str) -> bool:
        return ref_key(reference) in self._by_key

    def __len__(self) -> int:
        return len(self._by_key)
