"""Pass 1, the setting: which Encounter an administration belongs to, and where it was given.

An administration that names no Encounter (US Core's draft MedicationAdministration profile does
not make ``context`` must-support; quality-measure test data leave it out) belongs to the
patient's Encounter whose period contains its time: one such Encounter places it, none or several
do not (missing-encounter).

The place of service then comes from the place, in order of strength (96372.md 'Setting'):

1. ``MedicationAdministration.category`` (medication-admin-category: inpatient);
2. ``Encounter.class`` and ``Encounter.type`` (admission, emergency, observation; settings.csv,
   encounter_types.csv);
3. ``Encounter.hospitalization`` (an admission origin or discharge disposition: an admission);
4. the practice's profile of its places (Config.places: a Location or Organization by id or
   identifier), which is what that place is;
5. ``Encounter.location`` -> ``Location.type`` and ``Location.physicalType`` (HL7 v3 RoleCode
   HOSP, ER, ICU...; a CMS place of service coding), then the serviceProvider's
   ``Organization.type`` (places.csv);
6. the practice's default place of service (Config.default_place_of_service), for a visit the
   record says is no admission (class AMB, category outpatient) and places nowhere.

A code that says only the kind of visit (class AMB, category outpatient: ``unplaced``) decides
nothing: office (POS 11) and hospital outpatient department (19/22, where the hospital bills 96372)
are both ambulatory. Nothing known: no place of service (unknown-setting), never the office.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from .. import fastjson
from ..fhir.resources import MAPPING, identifiers_of
from .case import Case, key_of
from .clinical import setting_of, type_setting
from .context import EncounterPointers
from .elements import as_list, codings, parse_time
from .ruleset import SYSTEM_POS, Rules, Setting

__all__ = ["encounter_and_setting"]

#: Encounter statuses that are no visit an administration can belong to
_NOT_A_VISIT = frozenset({"planned", "cancelled", "entered-in-error"})
#: Encounter statuses of a visit still going on: one without an end contains what comes after its start
_GOING_ON = frozenset({"arrived", "triaged", "in-progress", "onleave"})
#: what a note says of an ``unplaced`` code: a visit that is no admission, place not said
_KIND_ONLY = "says the kind of visit (no admission), not where"


def encounter_and_setting(c: Case) -> None:
    """The Encounter the administration names or is placed in by its period, and the setting and
    place of service (c.setting, c.pos) with their basis; the gaps when either is not known."""
    reference = c.encounter_ref = c.refs.encounter
    c.encounter_refs = None
    c.setting = c.pos = None
    placed = ""
    if reference is None and c.admin.get("context") is None:  # names none (not: unreadable)
        encounter, why = _placed(c)
        if encounter is not None:
            c.encounter_ref = f"Encounter/{encounter.get('id')}"
            placed = f"placed in {c.encounter_ref} by its period; "
    else:
        encounter, problem = c.ctx.resolve(reference, "Encounter", c.admin)
        why = f"MedicationAdministration.context {problem}"
    c.encounter = encounter
    if encounter is None:
        c.gaps.add("missing-encounter", why)
    else:
        c.encounter_refs = EncounterPointers(encounter)
    found, kind, how, notes = _place(c)
    if found is None:
        if encounter is not None:
            problem = "; ".join(notes)
            c.gaps.add("unknown-setting", problem)
            c.known("place_of_service", "unknown", placed + problem)
        else:
            c.known("place_of_service", "unknown", why or "no Encounter")
        return
    c.setting, c.pos = found.setting, found.place_of_service
    if c.setting == "virtual":
        c.gaps.add(
            "missing-encounter",
            "The linked encounter is virtual (class VR): no injection is given in a "
            "virtual visit; link the in-person encounter",
        )
        c.setting = c.pos = None
        c.known("place_of_service", "unknown", placed + how)
        return
    c.known("place_of_service", kind, placed + how)


def _placed(c: Case) -> tuple[Mapping | None, str]:
    """The patient's one Encounter whose period contains the administration's time, or (None, why)."""
    lead = "MedicationAdministration.context is missing"
    when = c.when
    if not isinstance(when, datetime):
        return None, f"{lead}, and effective[x] has no time of day to place it in an Encounter"
    encounters = c.ctx.for_patient("Encounter", c.patient_id)
    found = [e for e in encounters if _contains(e, when)]
    if len(found) == 1:
        return found[0], ""
    if not found:
        return None, (
            f"{lead}, and none of the patient's {len(encounters)} Encounter(s) in the source has "
            "a period that contains its time"
        )
    keys = ", ".join(sorted(f"Encounter/{e.get('id')}" for e in found))
    return None, (
        f"{lead}, and {len(found)} of the patient's Encounters contain its time ({keys}): "
        "which one it belongs to is not said"
    )


def _contains(encounter: Mapping, when: datetime) -> bool:
    if encounter.get("status") in _NOT_A_VISIT:
        return False
    period = encounter.get("period")
    if not isinstance(period, MAPPING):
        return False
    start, end = parse_time(period.get("start")), parse_time(period.get("end"))
    if not isinstance(start, datetime) or not _not_after(start, when):
        return False
    if end is None:
        return encounter.get("status") in _GOING_ON
    return isinstance(end, datetime) and _not_after(when, end)


def _not_after(first: datetime, second: datetime) -> bool:
    """first <= second; False when one has an offset and the other not (they cannot be compared)."""
    if (first.tzinfo is None) != (second.tzinfo is None):
        return False
    return first <= second


def _place(c: Case) -> tuple[Setting | None, str, str, list[str]]:
    """(setting, basis kind, how, []) of the first signal that names a place, strongest first; or
    (None, "", "", what was read and said nothing of the place)."""
    rules, encounter = c.rules, c.encounter
    notes: list[str] = []
    found = _coded(c.admin.get("category"), "MedicationAdministration.category", c, notes)
    if found is not None:
        return found
    if encounter is not None:
        found = _class_or_type(c, encounter, notes)
        if found is not None:
            return found
        stay = encounter.get("hospitalization")
        if isinstance(stay, MAPPING):
            for child in ("admitOrigin", "dischargeDisposition"):
                row = rules.places.get(("Encounter.hospitalization", "", child))
                if row is not None and stay.get(child):
                    how = f"Encounter.hospitalization.{child} -> POS {row.place_of_service}"
                    return row, "rule", f"{how} (mappings/places.csv)", []
        found = _site_place(c, notes)
        if found is not None:
            return found
    default = c.config.default_place_of_service
    # the practice's default is for its own visits: one the record says is no admission (class
    # AMB, category outpatient) and places nowhere; not for one whose class is not known at all
    if default is not None and any(note.endswith(_KIND_ONLY) for note in notes):
        row = rules.places_of_service.get(default)
        if row is None:
            notes.append(
                f"default_place_of_service {default} is not in mappings/places_of_service.csv"
            )
        else:
            return row, "practice", f"default_place_of_service {default} (configuration)", []
    if encounter is not None:
        notes.append(
            "no Location.type, Organization.type or practice profile ([places], "
            "default_place_of_service) names the place: office (POS 11) or hospital outpatient "
            "(19/22) is not assumed"
        )
    return None, "", "", notes


def _site_place(c: Case, notes: list[str]) -> tuple[Setting, str, str, list[str]] | None:
    """The place the encounter's Locations and serviceProvider say: the practice's profile of them,
    then Location.type and physicalType, then Organization.type; notes added to ``notes``.

    A function of those references alone (and the tables): worked out once per site and kept in
    Context.memo, as the same clinics come back administration after administration; a contained
    reference (its Encounter's own) or one of a wrong type is read each time."""
    refs = c.encounter_refs
    assert refs is not None
    site = (*refs.locations, refs.provider)
    key = None
    if all(r is None or (type(r) is str and not r.startswith("#")) for r in site):
        key = ("place", site)
        entry = c.ctx.memo.get(key)
        if entry is not None and entry[0] is c.rules and entry[1] is c.config:
            notes.extend(entry[3])
            return entry[2]
    said: list[str] = []
    found = _site_place_read(c, said)
    notes.extend(said)
    if key is not None:
        c.ctx.memo[key] = (c.rules, c.config, found, tuple(said))
    return found


def _site_place_read(c: Case, notes: list[str]) -> tuple[Setting, str, str, list[str]] | None:
    found = _practice_place(c, notes)
    if found is not None:
        return found
    for resource in _locations(c):
        for element, concepts in (
            ("Location.type", resource.get("type")),
            ("Location.physicalType", resource.get("physicalType")),
        ):
            found = _coded(concepts, element, c, notes)
            if found is not None:
                return found
    organization = _organization(c)
    if organization is not None:
        found = _coded(organization.get("type"), "Organization.type", c, notes)
        if found is not None:
            return found
    return None


def _class_or_type(
    c: Case, encounter: Mapping, notes: list[str]
) -> tuple[Setting, str, str, list[str]] | None:
    """A setting Encounter.class, else one of its types, names outright; an unplaced one is a note.

    A function of Encounter.class and Encounter.type (and the tables): kept in Context.memo under
    their JSON, as a clinic's visits are coded alike."""
    noted = bool(notes)  # the category said something already (no "names no setting" note then)
    try:
        key: tuple | None = (
            "class-type",
            fastjson.orjson.dumps(encounter.get("class")),
            fastjson.orjson.dumps(encounter.get("type")),
            noted,
        )
    except (TypeError, AttributeError):  # a value JSON cannot hold; no orjson
        key = None
    if key is not None:
        entry = c.ctx.memo.get(key)
        if entry is not None and entry[0] is c.rules:
            notes.extend(entry[2])
            return entry[1]
    said: list[str] = []
    found = _class_or_type_read(c.rules, encounter, said, noted)
    notes.extend(said)
    if key is not None:
        c.ctx.memo[key] = (c.rules, found, tuple(said))
    return found


def _class_or_type_read(
    rules: Rules, encounter: Mapping, notes: list[str], noted: bool
) -> tuple[Setting, str, str, list[str]] | None:
    enc_class = encounter.get("class")
    enc_class = enc_class if isinstance(enc_class, MAPPING) else {}
    system, code = enc_class.get("system"), enc_class.get("code")
    said = rules.settings.get((system, code))  # type: ignore[arg-type]
    tables = "(mappings/settings.csv, encounter_types.csv)"
    if said is not None and said.setting != "unplaced":
        how = f"Encounter.class '{said.display}' -> POS {said.place_of_service} {tables}"
        return said, "rule", how, []
    if said is not None:
        notes.append(f"Encounter.class '{said.display}' {_KIND_ONLY}")
    for concept in as_list(encounter.get("type")):
        typed = type_setting(concept, rules)
        if typed is None:
            continue
        if typed.setting != "unplaced":
            how = f"Encounter.type '{typed.display}' -> POS {typed.place_of_service} {tables}"
            return typed, "rule", how, []
        notes.append(f"Encounter.type '{typed.display}' {_KIND_ONLY}")
    if said is None and not noted and not notes:
        notes.append(setting_of(encounter, rules)[1] or "Encounter names no setting")
    return None


def _coded(
    concepts, element: str, c: Case, notes: list[str]
) -> tuple[Setting, str, str, list[str]] | None:
    """The place a coded element names (places.csv, or a CMS place of service coding)."""
    # R4 MedicationAdministration.category is one CodeableConcept; the types are lists
    for concept in [concepts] if isinstance(concepts, MAPPING) else as_list(concepts):
        for coding in codings(concept):
            system, code = coding.get("system"), coding.get("code")
            if not (isinstance(system, str) and isinstance(code, str)):
                continue
            if system == SYSTEM_POS and element == "Location.type":
                row = c.rules.places_of_service.get(code)
                if row is not None:
                    return row, "record", f"{element} is CMS place of service {code}", []
                continue
            row = c.rules.places.get((element, system, code))
            if row is None:
                continue
            if row.setting == "unplaced":
                notes.append(f"{element} '{code}' {_KIND_ONLY}")
                continue
            how = f"{element} '{code}' -> POS {row.place_of_service} (mappings/places.csv)"
            return row, "rule", how, []
    return None


def _locations(c: Case) -> list[Mapping]:
    assert c.encounter_refs is not None
    found = []
    for reference in c.encounter_refs.locations:
        resource = c.ctx.get(reference, "Location", c.encounter)
        if resource is not None:
            found.append(resource)
    return found


def _organization(c: Case) -> Mapping | None:
    assert c.encounter_refs is not None
    return c.ctx.get(c.encounter_refs.provider, "Organization", c.encounter)


def _practice_place(c: Case, notes: list[str]) -> tuple[Setting, str, str, list[str]] | None:
    """The practice's own word on the encounter's Location or serviceProvider (Config.places)."""
    places = c.config.places
    if not places:
        return None
    assert c.encounter_refs is not None
    candidates: list[tuple[object, Mapping | None]] = [
        (reference, c.ctx.get(reference, "Location", c.encounter))
        for reference in c.encounter_refs.locations
    ]
    provider = c.encounter_refs.provider
    candidates.append((provider, _organization(c)))
    for reference, resource in candidates:
        keys = []
        if resource is not None:
            key = key_of(reference, resource)
            if key is not None:
                keys.append(key)
            keys += [f"{system}|{value}" for system, value in identifiers_of(resource)]
        for key in keys:
            pos = places.get(key)
            if pos is None:
                continue
            row = c.rules.places_of_service.get(pos)
            if row is None:
                notes.append(
                    f"[places] gives {key} POS {pos}, which is not in places_of_service.csv"
                )
                continue
            return row, "practice", f"[places] {key} -> POS {pos} (configuration)", []
    return None
