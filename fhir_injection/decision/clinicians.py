"""Who renders a 96372: the practitioner whose qualification lets them bill it (a physician or NPP),
read from the performer, the encounter's participants, or the clinic's configured one.

In an office, an injection given by a nurse or medical assistant is billed incident-to the
physician or NPP who supervises it (IOM 100-02 ch.15 s60): that practitioner is the rendering
provider; the nurse stays the performer. Qualifications and participant types are data
(mappings/qualifications.csv, participant_types.csv).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from ..fhir.resources import shown_reference
from .case import _Case, _key_of
from .model import MAPPING
from .rules import Rules

_CLINICIANS = ("Practitioner", "PractitionerRole")


def qualification_role(practitioner: Mapping | None, rules: Rules) -> str | None:
    """``eligible`` (MD, DO, NP, PA, CNS, CNM), ``auxiliary`` (RN, LPN, medical assistant) or None
    (no qualification coding in mappings/qualifications.csv). An eligible coding wins over an
    auxiliary one (an NP is also an RN)."""
    if practitioner is None:
        return None
    items = practitioner.get("qualification")
    concepts = (
        [item.get("code") for item in items if isinstance(item, MAPPING)]
        if isinstance(items, list)
        else ()
    )
    return _concepts_role(concepts, rules)


def _concepts_role(concepts, rules: Rules, found: str | None = None) -> str | None:
    """The best role the codings of these CodeableConcepts name (eligible before auxiliary), or
    ``found`` when none names one."""
    for concept in concepts:
        codings = concept.get("coding") if isinstance(concept, MAPPING) else None
        for coding in codings if isinstance(codings, list) else ():
            if not isinstance(coding, MAPPING):
                continue
            role = _role_of(coding.get("system"), coding.get("code"), rules)
            if role == "eligible":
                return role
            found = found or role
    return found


def clinician_role(found: Mapping | None, ctx, rules: Rules, on: date | None) -> str | None:
    """``eligible``, ``auxiliary`` or None for a Practitioner or PractitionerRole.

    A PractitionerRole in force on the service date ``on`` tells the clinician's kind by its
    ``specialty`` (NUCC taxonomy, as US Core binds it) and ``code`` (practitioner-role, SNOMED CT
    occupations), read with the same table as Practitioner.qualification
    (mappings/qualifications.csv). For a PractitionerRole, that role and its Practitioner's
    qualification count; for a Practitioner, its qualification and the roles the context holds
    that name it (:meth:`~fhir_injection.decision.context.Context.roles_of`: Epic and Oracle Health
    point to the Practitioner and carry the kind on its roles). Any of them saying eligible makes it
    eligible (a Practitioner.qualification of RN and a role's specialty of nurse practitioner is an
    NP who is also an RN); else any saying auxiliary makes it auxiliary. A role that is not
    ``active`` or whose ``period`` does not cover the date says nothing of its own.
    """
    if found is None:
        return None
    if found.get("resourceType") == "PractitionerRole":
        person = qualification_role(_practitioner(found, ctx), rules)
        roles: list = [found]
    else:
        person = qualification_role(found, rules)
        if person == "eligible":
            return person  # an MD asks nothing more
        roles = ctx.roles_of(found)
    concepts: list = []
    for role in roles:
        if _in_force(role, on):
            for element in ("specialty", "code"):
                items = role.get(element)
                if isinstance(items, list):
                    concepts.extend(items)
    return _concepts_role(concepts, rules, person)


def _in_force(role: Mapping, on: date | None) -> bool:
    """Whether a PractitionerRole applies on the service date: not ``active: false``, and its
    ``period`` (dates compared to the precision written: "2024" or "2024-05" cover the whole year
    or month) covers the date. Without a date, only ``active`` counts."""
    if role.get("active") is False:
        return False
    period = role.get("period")
    if on is None or not isinstance(period, MAPPING):
        return True
    day = on.isoformat()
    start, end = _day(period.get("start")), _day(period.get("end"))
    if start and day[: len(start)] < start:
        return False
    return not (end and day[: len(end)] > end)


def _day(value) -> str:
    """A period bound's date part ("2024", "2024-05", "2024-05-01"), or "" when there is none."""
    return value[:10] if isinstance(value, str) else ""


def _role_of(system, code, rules: Rules) -> str | None:
    if not isinstance(code, str):
        return None
    role = rules.qualifications.get((system, code))
    if role is not None:
        return role
    for prefix, prefix_role in rules.qualification_prefixes.get(system, ()):
        if code.startswith(prefix):
            return prefix_role
    return None


def _practitioner(role: Mapping, ctx) -> Mapping | None:
    """A PractitionerRole's ``practitioner``, when it can be followed (a contained one is the
    role's own)."""
    element = role.get("practitioner")
    reference = element.get("reference") if isinstance(element, MAPPING) else None
    return ctx.get(reference, "Practitioner", role)


#: a participant's rank when its type is none of the listed ones (mappings/participant_types.csv)
UNTYPED = 1_000


def rendering_provider(c: _Case) -> tuple[str | None, str | None, str | None]:
    """(``Type/id`` of the rendering provider, None, None), or (None, why no one is, None), or
    (``Type/id``, None, a note) when the one chosen is an encounter participant whose role (attender,
    primary performer...) names them but whose qualification the record does not give.

    Real exports seldom carry Practitioner.qualification (Synthea never does; Epic and Oracle
    Health often leave it out), while the encounter's attending or primary performer is by that role
    the practitioner responsible for the visit: such a participant renders when no one of a known
    eligible qualification does, with an info note for the coder. Auxiliary staff never render, and
    neither does an untyped participant or a performer of unknown qualification.
    """
    rules, ctx = c.rules, c.ctx
    reasons = []
    by_role: str | None = None
    if c.performer is not None:
        role = clinician_role(c.performer_found, ctx, rules, c.when_date)
        if role == "eligible":
            return c.performer, None, None
        reasons.append(
            f"the performer {c.performer} is "
            + ("auxiliary staff (incident-to)" if role else "of no known qualification")
        )
    refs = c.encounter_refs
    if refs is not None and refs.participants:
        ranks = [(_rank(roles, rules), n) for n, roles in enumerate(refs.roles)]
        seen = []
        for rank, n in sorted((rank, n) for rank, n in ranks if rank is not None):
            reference = refs.participants[n]
            found = ctx.get(reference, None, c.encounter)
            if found is None or found.get("resourceType") not in _CLINICIANS:
                continue
            key = _key_of(reference, found)
            if key is None:
                continue
            role = clinician_role(found, ctx, rules, c.when_date)
            if role == "eligible":
                return key, None, None
            if role is None and rank < UNTYPED and by_role is None:
                by_role = key
            seen.append(f"{shown_reference(reference)} ({role or 'no known qualification'})")
        if by_role is not None:
            return (
                by_role,
                None,
                (
                    f"Rendering provider {by_role} is named by its Encounter.participant type; "
                    "no Practitioner.qualification says MD, DO, NP, PA, CNS or CNM"
                ),
            )
        reasons.append(
            "Encounter.participant: " + (", ".join(seen) if seen else "no clinician found")
        )
    elif c.encounter is not None:
        reasons.append("the Encounter has no participant")
    clinic = c.provider if isinstance(c.provider, str) else None
    if clinic is not None and clinic.startswith("Organization/"):
        configured = c.config.rendering_providers.get(clinic.split("/", 1)[1])
        if configured:
            return (
                (
                    configured
                    if configured.startswith("Practitioner/")
                    else f"Practitioner/{configured}"
                ),
                None,
                None,
            )
    reasons.append("no rendering provider is configured for the clinic")
    text = "; ".join(reasons)
    return None, text[:1].upper() + text[1:], None


def _rank(codes: list[tuple[object, object]], rules: Rules) -> int | None:
    """A participant's best rank (mappings/participant_types.csv); one with no type ranks last;
    one with types, none of them listed (a referrer, an admitter...), is never the rendering one."""
    if not codes:
        return UNTYPED
    ranks = [rules.participant_ranks.get(code) for code in codes]  # type: ignore[arg-type]
    known = [r for r in ranks if r is not None]
    return min(known) if known else None
