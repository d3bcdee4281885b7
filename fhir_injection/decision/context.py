"""What an administration points to, as plain data the engine can look up.

:class:`Context` is a read-only index of FHIR resources (dicts in R4 JSON form):
by ``Type/id`` and, for the resources found by patient rather than by
reference (Consent, Coverage, ChargeItem, Encounter, Condition), by patient id.
Sources fill it; the engine only reads it, so it stays a pure function.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Iterable, Iterator

from ..fhir.resources import MAPPING, PATIENT_ELEMENT, key_for, patient_id_of, ref_key, split_reference

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
        return self._find(pair, key_for(reference, pair))

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


# What an administration points to: the one list, read by the engine (which follows each of these)
# and by the live sync's look-ups (which fetch them). A reference added here is fetched and read.
def administration_references(admin: Mapping) -> Iterator[tuple[str, str | None]]:
    """(reference, the type it must be, or None for any) for each reference the engine follows."""
    yield from _wanted(admin.get("subject"), "Patient")
    yield from _wanted(admin.get("context"), "Encounter")
    yield from _wanted(admin.get("medicationReference"), "Medication")
    for p in _items(admin.get("performer")):
        yield from _wanted(p.get("actor"), None)
    for r in _items(admin.get("reasonReference")):
        yield from _wanted(r, "Condition")


def encounter_references(encounter: Mapping) -> Iterator[tuple[str, str | None]]:
    """The same for the references of an administration's Encounter that the engine follows."""
    yield from _wanted(encounter.get("serviceProvider"), "Organization")
    for d in _items(encounter.get("diagnosis")):
        yield from _wanted(d.get("condition"), "Condition")
    for r in _items(encounter.get("reasonReference")):
        yield from _wanted(r, "Condition")


def _items(value) -> Iterator[Mapping]:
    return (v for v in value if isinstance(v, MAPPING)) if isinstance(value, list) else iter(())


def _wanted(element, expected: str | None) -> Iterator[tuple[str, str | None]]:
    if isinstance(element, MAPPING) and isinstance(element.get("reference"), str):
        yield element["reference"], expected
