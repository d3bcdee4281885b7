"""What an administration points to, as plain data the engine can look up.

:class:`Context` is a read-only index of FHIR resources (dicts in R4 JSON form):
by ``Type/id`` and, for the resources found by patient rather than by
reference (Consent, Coverage, ChargeItem, Encounter, Condition), by patient id.
Sources fill it; the engine only reads it, so it stays a pure function.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Iterable

from ..fhir.resources import PATIENT_ELEMENT, key_for, patient_id_of, ref_key, split_reference

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
