"""What an administration points to, as plain data the engine can look up.

:class:`Context` is a read-only index of FHIR resources (dicts in R4 JSON form):
by ``Type/id`` and, for the resources found by patient rather than by
reference (Consent, Coverage, ChargeItem, Encounter, Condition), by patient id.
Sources fill it; the engine only reads it, so it stays a pure function.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping

from ..fhir.resources import (
    MAPPING,
    PATIENT_ELEMENT,
    conditional_reference,
    identifiers_of,
    key_for,
    patient_id_of,
    ref_key,
    shown_reference,
    split_reference,
    token_matches,
)

__all__ = [
    "AdministrationPointers",
    "Context",
    "CoveragePointers",
    "EncounterPointers",
    "MEMO_TYPES",
    "administration_references",
    "coverage_references",
    "encounter_references",
    "practitioner_keys",
    "practitioner_roles",
    "role_references",
]

#: the types :attr:`Context.memo`'s entries are derived from (shared resources, not a patient's)
MEMO_TYPES = frozenset({"Practitioner", "PractitionerRole", "Location", "Organization"})


class Context:
    """Resources by ``Type/id``, and per-patient lists for the patient-scoped types.

    :meth:`get` follows every form of reference the engine meets: a literal one (``Type/id``,
    absolute, with or without ``_history``), a contained one (``#id``, within the ``container``
    the caller names) and a conditional one (``Type?identifier=system|value``, which resolves
    when exactly one resource of the type has that identifier). :meth:`resolve` says why one
    does not resolve, for a gap's message.
    """

    __slots__ = (
        "_by_key",
        "_by_patient",
        "_lookup",
        "_find",
        "_by_identifier",
        "_roles",
        "_by_practitioner",
        "memo",
    )

    def __init__(
        self,
        resources: Iterable[Mapping] = (),
        lookup: Callable[[str, str], Mapping | None] | None = None,
        find: Callable[[str, tuple[str | None, str]], list[Mapping]] | None = None,
        roles: Callable[[list[str]], list[Mapping]] | None = None,
        memo: dict | None = None,
    ):
        """Index ``resources``; ``lookup(type, id)``, when given, is asked for a reference the index
        does not hold (the offline spool keeps most resources on disk until one is referenced);
        ``find(type, (system, value))``, when given, answers a conditional reference's identifier
        search over every resource of the source (else the ones indexed here are searched);
        ``roles(keys)``, when given, answers :meth:`roles_of` over every resource of the source for
        a Practitioner's :func:`practitioner_keys` (else the ones indexed here are searched).

        ``memo`` holds what the decision derives from the resources a reference resolves to (a
        clinician's qualification and roles, a site's place of service), so that it is worked out
        once: its keys are the resources' identities, and each entry keeps its resource (the
        identity cannot pass to another one while the entry lives). A source that hands out one
        Context per patient over the same look-ups (the offline spool) passes one memo to all of
        them; by default each Context has its own. Adding a resource of a type its entries are read
        from (:data:`MEMO_TYPES`) clears it, as that can change what a reference resolves to."""
        self._by_key: dict[str, Mapping] = {}
        self._by_patient: dict[tuple[str, str], list[Mapping]] = defaultdict(list)
        self._lookup = lookup
        self._find = find
        self._roles = roles
        # per type, built when a conditional reference first asks: value -> [(system, resource)]
        self._by_identifier: dict[str, dict[str, list[tuple[str, Mapping]]]] = {}
        # a practitioner key -> the PractitionerRoles naming it, built when roles_of first asks
        self._by_practitioner: dict[str, list[Mapping]] | None = None
        self.memo: dict = {} if memo is None else memo
        for resource in resources:
            self.add(resource)

    def add_new(self, resource: Mapping, rtype: str, rid: str, patient_id: str | None) -> None:
        """:meth:`add` for a resource whose type, id and patient are known and whose key is not held yet."""
        self._by_key[f"{rtype}/{rid}"] = resource
        if patient_id and rtype != "MedicationAdministration":
            self._by_patient[(rtype, patient_id)].append(resource)
        elif self.memo and rtype in MEMO_TYPES:
            self.memo.clear()
        if self._by_identifier:
            self._by_identifier.pop(rtype, None)
        if self._by_practitioner is not None and rtype == "PractitionerRole":
            self._by_practitioner = None

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
        if self.memo and rtype in MEMO_TYPES:
            self.memo.clear()
        if self._by_identifier:
            self._by_identifier.pop(rtype, None)
        if self._by_practitioner is not None and rtype == "PractitionerRole":
            self._by_practitioner = None

    def get(
        self,
        reference: str | None,
        expected_type: str | None = None,
        container: Mapping | None = None,
    ) -> Mapping | None:
        """The resource ``reference`` points to (of ``expected_type`` when given), or None.

        ``container`` is the resource the reference is written in: a ``#id`` reference names one
        of its ``contained`` resources.
        """
        pair = split_reference(reference)
        if pair is None:
            if reference is None or type(reference) is not str:
                return None
            return self._resolve_other(reference, expected_type, container)[0]
        if expected_type and pair[0] != expected_type:
            return None
        assert reference is not None  # split_reference gives a pair only for a non-empty str
        found = self._by_key.get(key_for(reference, pair))
        if found is None and self._lookup is not None:
            return self._lookup(*pair)
        return found

    def resolve(
        self,
        reference: object,
        expected_type: str | None = None,
        container: Mapping | None = None,
    ) -> tuple[Mapping | None, str | None]:
        """(the resource, None), or (None, why not): the why starts with the reference as a
        message may quote it (:func:`~fhir_injection.fhir.resources.shown_reference`)."""
        if reference is None:
            return None, "is missing"
        if type(reference) is not str or not reference:
            return None, "is not a reference"
        pair = split_reference(reference)
        if pair is None:
            return self._resolve_other(reference, expected_type, container)
        shown = shown_reference(reference)
        if expected_type and pair[0] != expected_type:
            return None, f"{shown} points to {_a(pair[0])}, not {_a(expected_type)}"
        found = self.get(reference, expected_type)
        if found is None:
            return None, f"{shown} points to {pair[0]}/{pair[1]}, which is not in the source"
        return found, None

    def _resolve_other(
        self, reference: str, expected_type: str | None, container: Mapping | None
    ) -> tuple[Mapping | None, str | None]:
        """A contained, conditional or unresolvable reference (not ``Type/id``); the reason is
        only written out when it does not resolve (this runs for every conditional reference)."""
        if reference.startswith("#"):
            items = container.get("contained") if isinstance(container, MAPPING) else None
            for item in items if isinstance(items, list) else ():
                if isinstance(item, MAPPING) and item.get("id") == reference[1:]:
                    rtype = item.get("resourceType")
                    if expected_type and rtype != expected_type:
                        return None, (
                            f"{shown_reference(reference)} names a contained {rtype}, "
                            f"not {_a(expected_type)}"
                        )
                    return item, None
            return None, (
                f"{shown_reference(reference)} names no contained {expected_type or 'resource'}"
            )
        conditional = conditional_reference(reference)
        if conditional is not None:
            if expected_type and conditional.type != expected_type:
                return None, (
                    f"{shown_reference(reference)} searches {conditional.type}, not {expected_type}"
                )
            if conditional.problem:
                return None, f"{shown_reference(reference)} {conditional.problem}"
            matches = self.find(conditional.type, conditional.tokens)
            if len(matches) == 1:
                return matches[0], None
            if not matches:
                return None, f"{shown_reference(reference)} matches no {conditional.type}"
            return None, (
                f"{shown_reference(reference)} matches {len(matches)} {conditional.type} "
                "resources (ambiguous)"
            )
        if reference.startswith(("urn:uuid:", "urn:oid:")):
            return None, f"{shown_reference(reference)} names no entry of its Bundle"
        return None, f"{shown_reference(reference)} cannot be followed"

    def find(self, rtype: str, tokens: Iterable[tuple[str | None, str]]) -> list[Mapping]:
        """The distinct resources of ``rtype`` with an identifier matching any of ``tokens``
        ((system, value); system None: any system, "": no system)."""
        found: dict[str, Mapping] = {}
        for token in tokens:
            if self._find is not None:
                candidates = self._find(rtype, token)
            else:
                index = self._by_identifier.get(rtype)
                if index is None:
                    index = self._by_identifier[rtype] = self._identifier_index(rtype)
                candidates = [
                    resource
                    for system, resource in index.get(token[1], ())
                    if token_matches(token, system, token[1])
                ]
            for resource in candidates:
                found.setdefault(str(resource.get("id")), resource)
        return list(found.values())

    def roles_of(self, practitioner: Mapping) -> list[Mapping]:
        """The PractitionerRoles whose ``practitioner`` names this Practitioner resource, by a
        literal reference to its id or by one of its identifiers (a logical reference, as Synthea
        writes it: ``{"identifier": {"system": NPI, "value": …}}``): what kind of clinician they are
        when the Practitioner does not say (US Core, Epic and Oracle Health put it on the role)."""
        keys = practitioner_keys(practitioner)
        if self._roles is not None:
            return self._roles(keys)
        index = self._by_practitioner
        if index is None:
            index = self._by_practitioner = practitioner_roles(
                r for k, r in self._by_key.items() if k.startswith("PractitionerRole/")
            )
        return [role for key in keys for role in index.get(key, ())]

    def _identifier_index(self, rtype: str) -> dict[str, list[tuple[str, Mapping]]]:
        index: dict[str, list[tuple[str, Mapping]]] = defaultdict(list)
        prefix = f"{rtype}/"
        for key, resource in self._by_key.items():
            if key.startswith(prefix):
                for system, value in identifiers_of(resource):
                    index[value].append((system, resource))
        return dict(index)

    def for_patient(self, resource_type: str, patient_id: str | None) -> list[Mapping]:
        if not patient_id:
            return []
        return list(self._by_patient.get((resource_type, patient_id), ()))

    def __contains__(self, reference: str) -> bool:
        return ref_key(reference) in self._by_key

    def __len__(self) -> int:
        return len(self._by_key)


# What an administration and its encounter point to: the one place that reads those elements. The
# engine follows the references through these views; the live sync's look-ups fetch what
# administration_references and encounter_references give, which are made from the same views. A
# pointer added to a view (and to its TYPES) is fetched by the one and can be read by the other.


class AdministrationPointers:
    """What a MedicationAdministration points to, for the decision to follow.

    Each pointer is the ``reference`` value of its element as written: None when the element is
    absent or not an object; any other value is kept as it is (the engine finds it resolves to
    nothing). The repeating ones are lists, one entry per object item.
    """

    __slots__ = ("subject", "encounter", "medication", "performers", "reasons")
    # as a valid record has them; a wrongly typed reference is kept as it is (see above)
    subject: str | None
    encounter: str | None
    medication: str | None
    performers: list[str | None]
    reasons: list[str | None]

    #: (pointer, the type it must point to (None: any; the engine takes the first Practitioner or
    #: PractitionerRole), whether it repeats)
    TYPES = (
        ("subject", "Patient", False),
        ("encounter", "Encounter", False),
        ("medication", "Medication", False),
        ("performers", None, True),
        ("reasons", "Condition", True),
    )

    def __init__(self, admin: Mapping):  # made for every administration decided: plain, quick code
        self.subject = _reference(admin.get("subject"))  # the Patient
        self.encounter = _reference(admin.get("context"))  # the Encounter
        self.medication = _reference(
            admin.get("medicationReference")
        )  # "#id" for a contained Medication
        self.performers = performers = []  # each performer's actor
        items = admin.get("performer")
        if isinstance(items, list):
            for item in items:
                if isinstance(item, MAPPING):
                    performers.append(_reference(item.get("actor")))
        self.reasons = _references(admin.get("reasonReference"))  # Conditions


class EncounterPointers:
    """The same for the administration's Encounter."""

    __slots__ = ("provider", "diagnoses", "reasons", "locations", "participants", "roles")
    provider: str | None
    diagnoses: list[str | None]
    reasons: list[str | None]
    locations: list[str | None]
    participants: list[str | None]
    roles: list[list[tuple[object, object]]]  # each participant's type codings (system, code)

    #: participants: the clinicians of the encounter (a Practitioner or PractitionerRole; the
    #: rendering provider is read from them)
    TYPES = (
        ("provider", "Organization", False),
        ("diagnoses", "Condition", True),
        ("reasons", "Condition", True),
        ("locations", "Location", True),
        ("participants", None, True),
    )

    def __init__(self, encounter: Mapping):
        self.provider = _reference(encounter.get("serviceProvider"))  # the billing Organization
        # the Condition of each diagnosis, in rank order (unranked last; ties as written)
        self.diagnoses = diagnoses = []
        items = encounter.get("diagnosis")
        if isinstance(items, list):
            items = [d for d in items if isinstance(d, MAPPING)]
            if len(items) > 1:
                items.sort(key=_rank)
            for item in items:
                diagnoses.append(_reference(item.get("condition")))
        self.reasons = _references(encounter.get("reasonReference"))  # Conditions
        # the Location of each location entry (its time zone, for the clinic's local day)
        self.locations = locations = []
        items = encounter.get("location")
        if isinstance(items, list):
            for item in items:
                if isinstance(item, MAPPING):
                    locations.append(_reference(item.get("location")))
        # each participant's individual, and the (system, code) of its type codings
        self.participants = participants = []
        self.roles = roles = []
        items = encounter.get("participant")
        if isinstance(items, list):
            for item in items:
                if isinstance(item, MAPPING):
                    participants.append(_reference(item.get("individual")))
                    roles.append(_type_codes(item.get("type")))


class CoveragePointers:
    """The same for a patient's Coverage: the payor Organizations its payer type may be read from."""

    __slots__ = ("payors",)
    payors: list[str | None]

    TYPES = (("payors", "Organization", True),)

    def __init__(self, coverage: Mapping):
        self.payors = _references(coverage.get("payor"))  # Organization (or Patient/RelatedPerson)


def practitioner_keys(practitioner: Mapping) -> list[str]:
    """How a PractitionerRole may name this Practitioner: ``Practitioner/<id>``, and
    ``identifier:<system>|<value>`` for each of its identifiers (a logical reference)."""
    rid = practitioner.get("id")
    keys = [f"Practitioner/{rid}"] if isinstance(rid, str) else []
    keys += [f"identifier:{system}|{value}" for system, value in identifiers_of(practitioner)]
    return keys


def practitioner_roles(roles: Iterable[Mapping]) -> dict[str, list[Mapping]]:
    """PractitionerRoles by the :func:`practitioner_keys` key their ``practitioner`` names: a literal
    or absolute reference (``Practitioner/<id>``), or a logical one by identifier; a contained or
    conditional reference names no Practitioner of the source."""
    index: dict[str, list[Mapping]] = {}
    for role in roles:
        element = role.get("practitioner")
        if not isinstance(element, MAPPING):
            continue
        pair = split_reference(element.get("reference"))
        if pair is not None and pair[0] == "Practitioner":
            index.setdefault(f"Practitioner/{pair[1]}", []).append(role)
        elif isinstance(logical := element.get("identifier"), MAPPING):
            system, value = logical.get("system"), logical.get("value")
            if isinstance(value, str) and value:
                key = f"identifier:{system if isinstance(system, str) else ''}|{value}"
                index.setdefault(key, []).append(role)
    return index


def administration_references(admin: Mapping) -> Iterator[tuple[str, str | None]]:
    """(reference, the type it must be, or None for any) for each reference the engine follows."""
    return _pointed_to(AdministrationPointers(admin))


def encounter_references(encounter: Mapping) -> Iterator[tuple[str, str | None]]:
    """The same for the references of an administration's Encounter that the engine follows."""
    return _pointed_to(EncounterPointers(encounter))


def role_references(role: Mapping) -> Iterator[tuple[str, str | None]]:
    """The Practitioner a PractitionerRole names: its qualification tells, with the role's own
    specialty and code, whether it may render a 96372 (decision/clinicians.py)."""
    reference = _reference(role.get("practitioner"))
    if isinstance(reference, str):
        yield reference, "Practitioner"


def coverage_references(coverage: Mapping) -> Iterator[tuple[str, str | None]]:
    """The same for a Coverage (its payors, whose identifier or name can tell the payer type)."""
    return _pointed_to(CoveragePointers(coverage))


def _pointed_to(pointers) -> Iterator[tuple[str, str | None]]:
    for name, expected, repeats in pointers.TYPES:
        value = getattr(pointers, name)
        for reference in value if repeats else (value,):
            if isinstance(reference, str):
                yield reference, expected


def _references(items) -> list:
    """The ``reference`` of each object in a list of References."""
    found = []
    if isinstance(items, list):
        for item in items:
            if isinstance(item, MAPPING):
                found.append(item.get("reference"))
    return found


def _reference(element):
    """The ``reference`` of a Reference; None when it is not an object (None first: no slow Mapping check)."""
    return None if element is None or not isinstance(element, MAPPING) else element.get("reference")


def _type_codes(types) -> list[tuple[object, object]]:
    """(system, code) of every coding of a list of CodeableConcepts."""
    found = []
    if isinstance(types, list):
        for concept in types:
            codings = concept.get("coding") if isinstance(concept, MAPPING) else None
            if isinstance(codings, list):
                for coding in codings:
                    if isinstance(coding, MAPPING):
                        found.append((coding.get("system"), coding.get("code")))
    return found


def _rank(diagnosis: Mapping):
    return diagnosis.get("rank") if isinstance(diagnosis.get("rank"), int) else 99


def _a(type_name: object) -> str:
    """A resource type with its article: "an Encounter", "a Patient"."""
    text = str(type_name)
    return f"{'an' if text[:1] in 'AEIOU' else 'a'} {text}"
