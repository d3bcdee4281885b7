"""Who renders a 96372: the practitioner whose qualification lets them bill it (a physician or NPP),
read from the performer, the encounter's participants, or the clinic's configured one.

In an office, an injection given by a nurse or medical assistant is billed incident-to the
physician or NPP who supervises it (IOM 100-02 ch.15 s60): that practitioner is the rendering
provider; the nurse stays the performer. Qualifications and participant types are data
(mappings/qualifications.csv, participant_types.csv).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import NamedTuple

from ..fhir.resources import MAPPING, ref_key, shown_reference
from .case import Case, key_of
from .ruleset import Rules, credential_key

__all__ = [
    "Credential",
    "Rendering",
    "UNTYPED",
    "clinician_credential",
    "clinician_role",
    "qualification_role",
    "rendering_provider",
    "text_credential",
]

_CLINICIANS = ("Practitioner", "PractitionerRole")


@dataclass(frozen=True)
class Credential:
    """What the record says a clinician is, for billing: ``role`` eligible (renders a 96372),
    auxiliary (billed incident-to) or None; ``text`` the qualification text the role was read from
    through mappings/qualification_text.csv (None when a coding said it); ``unread`` the texts that
    say no role, each as a message names it (not on the reviewed list, or reviewed and naming none)."""

    role: str | None
    text: str | None = None
    unread: tuple[str, ...] = ()


_NO_CREDENTIAL = Credential(None)
_RANK = {"eligible": 2, "auxiliary": 1, None: 0}
#: what separates several credentials in one text: "MD, PhD", "RN/BSN", "FNP-C; APRN"
_CREDENTIAL_SEPARATORS = re.compile(r"[,;/|&+\n]")


def _better(first: Credential, second: Credential) -> Credential:
    """The credential of the better role (eligible, then auxiliary; the first on a tie), with the
    texts neither could read."""
    best = second if _RANK[second.role] > _RANK[first.role] else first
    unread = first.unread + tuple(u for u in second.unread if u not in first.unread)
    return best if unread == best.unread else replace(best, unread=unread)


def text_credential(text: str, rules: Rules) -> Credential:
    """The credential a qualification text says (``qualification.code.text``, a coding's display),
    read with mappings/qualification_text.csv: the whole text, or each credential of a list ("MD,
    PhD", or "MD PhD" when every word is on the list); the best of them wins. A text not on the list
    is never guessed at: it is ``unread``, named."""
    listed = rules.qualification_texts
    found: list[str] = []
    unread: list[str] = []
    for raw in _CREDENTIAL_SEPARATORS.split(text):
        part = " ".join(raw.split())
        if not credential_key(part):
            continue
        hit = listed.get(credential_key(part))
        if hit is not None:
            hits = [(part, hit)]
        else:
            words = part.split()
            each = [listed.get(credential_key(word)) for word in words]
            if len(words) < 2 or any(h is None for h in each):
                unread.append(
                    f"qualification text '{_shown(part)}' is not on the reviewed list "
                    "(mappings/qualification_text.csv)"
                )
                continue
            hits = [(word, h) for word, h in zip(words, each, strict=True) if h is not None]
        for written, (role, meaning) in hits:
            if role == "other":
                unread.append(
                    f"qualification text '{_shown(written)}' names no role that renders ({meaning})"
                )
            else:
                found.append(role)
    best = "eligible" if "eligible" in found else ("auxiliary" if found else None)
    return Credential(best, _shown(text) if best else None, tuple(unread))


def _shown(text: str) -> str:
    """A qualification text as a message quotes it: one line, at most 60 characters."""
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def qualification_role(practitioner: Mapping | None, rules: Rules) -> str | None:
    """``eligible`` (MD, DO, NP, PA, CNS, CNM), ``auxiliary`` (RN, LPN, medical assistant) or None
    (no qualification coding in mappings/qualifications.csv, no text in qualification_text.csv). An
    eligible qualification wins over an auxiliary one (an NP is also an RN)."""
    return _qualification(practitioner, rules).role


def _qualification(practitioner: Mapping | None, rules: Rules) -> Credential:
    if practitioner is None:
        return _NO_CREDENTIAL
    items = practitioner.get("qualification")
    concepts = (
        [item.get("code") for item in items if isinstance(item, MAPPING)]
        if isinstance(items, list)
        else ()
    )
    return _concepts_credential(concepts, rules)


def _concepts_credential(
    concepts, rules: Rules, found: Credential = _NO_CREDENTIAL, qualification: bool = True
) -> Credential:
    """The best credential these CodeableConcepts name (eligible before auxiliary), or ``found``
    when none names one. Codings first (mappings/qualifications.csv); then the concepts' ``text``
    and the displays of local codings (of a system qualifications.csv has no row for: Epic's and
    Oracle Health's code sets), read as qualification texts. A code of a listed system that no row
    lists says nothing, its display included (a clinic's NUCC 261Q taxonomy). The texts no row
    reads are ``unread`` only for a Practitioner.qualification (``qualification``): a
    PractitionerRole's specialty text ("Family Medicine") is no credential list."""
    texts: list[str] = []
    for concept in concepts:
        if not isinstance(concept, MAPPING):
            continue
        codings = concept.get("coding")
        for coding in codings if isinstance(codings, list) else ():
            if not isinstance(coding, MAPPING):
                continue
            role = _role_of(coding.get("system"), coding.get("code"), rules)
            if role == "eligible":
                return Credential(role)
            if role is not None:
                found = _better(found, Credential(role))
            elif (
                isinstance(display := coding.get("display"), str)
                and display.strip()
                and not _listed_system(coding.get("system"), rules)
            ):
                texts.append(display)
        text = concept.get("text")
        if isinstance(text, str) and text.strip():
            texts.append(text)
    seen: set[str] = set()
    for text in texts:
        key = credential_key(text)
        if key in seen:  # a display and a text that say the same
            continue
        seen.add(key)
        read = text_credential(text, rules)
        found = _better(found, read if qualification else replace(read, unread=()))
    return found


def _listed_system(system, rules: Rules) -> bool:
    """Whether mappings/qualifications.csv has rows of this code system (HL7 v2 0360, NUCC...)."""
    return system in rules.qualification_prefixes or any(
        listed == system for listed, _ in rules.qualifications
    )


def clinician_role(found: Mapping | None, ctx, rules: Rules, on: date | None) -> str | None:
    """``eligible``, ``auxiliary`` or None for a Practitioner or PractitionerRole: the role of
    :func:`clinician_credential`."""
    return clinician_credential(found, ctx, rules, on).role


def clinician_credential(found: Mapping | None, ctx, rules: Rules, on: date | None) -> Credential:
    """What a Practitioner or PractitionerRole is, for billing (:class:`Credential`).

    A PractitionerRole in force on the service date ``on`` tells the clinician's kind by its
    ``specialty`` (NUCC taxonomy, as US Core binds it) and ``code`` (practitioner-role, SNOMED CT
    occupations), read with the same tables as Practitioner.qualification
    (mappings/qualifications.csv, qualification_text.csv). For a PractitionerRole, that role and its
    Practitioner's qualification count; for a Practitioner, its qualification and the roles the
    context holds that name it (:meth:`~fhir_injection.decision.context.Context.roles_of`: Epic and
    Oracle Health point to the Practitioner and carry the kind on its roles). Any of them saying
    eligible makes it eligible (a Practitioner.qualification of RN and a role's specialty of nurse
    practitioner is an NP who is also an RN); else any saying auxiliary makes it auxiliary. A role
    that is not ``active`` or whose ``period`` does not cover the date says nothing of its own.
    """
    if found is None:
        return _NO_CREDENTIAL
    # what does not depend on the date is read once per clinician (Context.memo): the person's
    # qualification, the roles, and the credential of each set of roles in force
    key = ("credential", id(found))
    entry = ctx.memo.get(key)
    if entry is None or entry[1] is not rules:
        if found.get("resourceType") == "PractitionerRole":
            person = _qualification(_practitioner(found, ctx), rules)
            roles: tuple = (found,)
        else:
            person = _qualification(found, rules)
            if person.role == "eligible":
                ctx.memo[key] = (found, rules, person, None, None)
                return person  # an MD asks nothing more
            roles = tuple(ctx.roles_of(found))
        entry = ctx.memo[key] = (found, rules, person, roles, {})
    _, _, person, roles, by_roles = entry
    if roles is None:
        return person  # an MD asks nothing more
    in_force = tuple(n for n, role in enumerate(roles) if _in_force(role, on))
    credential = by_roles.get(in_force)
    if credential is None:
        concepts: list = []
        for n in in_force:
            for element in ("specialty", "code"):
                items = roles[n].get(element)
                if isinstance(items, list):
                    concepts.extend(items)
        credential = by_roles[in_force] = _concepts_credential(
            concepts, rules, person, qualification=False
        )
    return credential


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


class Rendering(NamedTuple):
    """Who renders: ``key`` (``Type/id``) or None; ``problem`` why no one does; ``note`` the
    rendering-provider-by-role note when an encounter role, not a qualification, names them; and
    where that came from (``kind`` of rules.BASIS_KINDS, ``how``) for Decision.basis."""

    key: str | None
    problem: str | None
    note: str | None
    kind: str
    how: str


def rendering_provider(c: Case) -> Rendering:
    """The rendering provider of a 96372, in this order: the performer when a physician or NPP
    gave it; the encounter's participant of the best participant_types.csv rank whose qualification
    makes them eligible (an untyped participant after every typed one); a typed participant whose
    qualification the record does not give at all, by that role (with a note for the coder); the
    Practitioner the practice configured (``[rendering_providers]``) for the encounter's Location,
    then for its Organization; else no one, and why.

    Real exports seldom carry Practitioner.qualification (Synthea never does; Epic and Oracle
    Health often leave it out), while the encounter's attending or primary performer is by that role
    the practitioner responsible for the visit. Auxiliary staff never render, and neither does an
    untyped participant or a performer of unknown qualification, nor a participant whose
    qualification text the reviewed list does not read (mappings/qualification_text.csv): the
    record says something, and it is not guessed at.
    """
    rules, ctx = c.rules, c.ctx
    reasons = []
    by_role: str | None = None
    if c.performer is not None:
        credential = clinician_credential(c.performer_found, ctx, rules, c.when_date)
        if credential.role == "eligible":
            return _read(c.performer, credential, "the performer")
        described = _described(credential, "auxiliary staff (incident-to)")
        reasons.append(f"the performer {c.performer} is {described}")
    refs = c.encounter_refs
    if refs is not None and refs.participants:
        ranks = [(_rank(roles, rules), n) for n, roles in enumerate(refs.roles)]
        seen = []
        for rank, n in sorted((rank, n) for rank, n in ranks if rank is not None):
            reference = refs.participants[n]
            found = ctx.get(reference, None, c.encounter)
            if found is None or found.get("resourceType") not in _CLINICIANS:
                continue
            key = key_of(reference, found)
            if key is None:
                continue
            credential = clinician_credential(found, ctx, rules, c.when_date)
            if credential.role == "eligible":
                return _read(key, credential, "an Encounter.participant")
            if (
                credential.role is None
                and not credential.unread
                and rank < UNTYPED
                and by_role is None
            ):
                by_role = key
            seen.append(f"{shown_reference(reference)} ({_described(credential, 'auxiliary')})")
        if by_role is not None:
            return Rendering(
                by_role,
                None,
                (
                    f"Rendering provider {by_role} is named by its Encounter.participant type; "
                    "no Practitioner.qualification says MD, DO, NP, PA, CNS or CNM"
                ),
                "rule",
                "Encounter.participant type (participant_types.csv)",
            )
        reasons.append(
            "Encounter.participant: " + (", ".join(seen) if seen else "no clinician found")
        )
    elif c.encounter is not None:
        reasons.append("the Encounter has no participant")
    configured = _configured_rendering(c, reasons)
    if configured is not None:
        return configured
    text = "; ".join(reasons)
    problem = text[:1].upper() + text[1:]
    return Rendering(None, problem, None, "unknown", problem)


def _configured_rendering(c: Case, reasons: list[str]) -> Rendering | None:
    """The Practitioner the practice configured (``[rendering_providers]``) for the encounter's
    Location, then for its Organization (basis 'practice'); None, with the reason, when none is."""
    places = _configured_places(c)
    for place in places:
        configured = c.config.rendering_providers.get(place)
        if configured is None and place.startswith("Organization/"):
            configured = c.config.rendering_providers.get(place.split("/", 1)[1])
        if configured:
            key = (
                configured
                if configured.startswith("Practitioner/")
                else f"Practitioner/{configured}"
            )
            return Rendering(key, None, None, "practice", f"[rendering_providers] for {place}")
    reasons.append(
        "no rendering provider is configured for the clinic ([rendering_providers]: "
        + (" or ".join(places) if places else "no Encounter.location or serviceProvider")
        + ")"
    )
    return None


def _read(key: str, credential: Credential, who: str) -> Rendering:
    """An eligible clinician found in the record: by a coding (read from the record) or by a
    qualification text the reviewed list reads (a mappings/ rule)."""
    if credential.text is None:
        return Rendering(key, None, None, "record", f"{who}'s qualification")
    return Rendering(
        key,
        None,
        None,
        "rule",
        f"{who}'s qualification text '{credential.text}' (qualification_text.csv)",
    )


def _described(credential: Credential, auxiliary: str) -> str:
    """A clinician who does not render, as a gap message says it: ``auxiliary``, or of no known
    qualification and what the record gives instead."""
    if credential.role == "auxiliary":
        what = auxiliary
    else:
        what = "no known qualification" if auxiliary == "auxiliary" else "of no known qualification"
    if credential.unread and credential.role is None:
        what += ": " + "; ".join(credential.unread)
    return what


def _configured_places(c: Case) -> list[str]:
    """The places a practice may configure a rendering provider for, most specific first: each
    Location of the encounter (``Encounter.location``), then the billing Organization."""
    places: list[str] = []
    refs = c.encounter_refs
    for reference in refs.locations if refs is not None else ():
        key = ref_key(reference)
        if key is None and reference is not None:
            key = key_of(reference, _location_of(c, reference))
        if key is not None and key.startswith("Location/") and key not in places:
            places.append(key)
    clinic = c.provider if isinstance(c.provider, str) else None
    if clinic is not None and clinic.startswith("Organization/"):
        places.append(clinic)
    return places


def _location_of(c: Case, reference: str) -> Mapping | None:
    """The Location a reference that is no literal ``Type/id`` (a conditional or Bundle reference)
    resolves to."""
    return c.ctx.get(reference, "Location", c.encounter)


def _rank(codes: list[tuple[object, object]], rules: Rules) -> int | None:
    """A participant's best rank (mappings/participant_types.csv); one with no type ranks last;
    one with types, none of them listed (a referrer, an admitter...), is never the rendering one."""
    if not codes:
        return UNTYPED
    ranks = [rules.participant_ranks.get(code) for code in codes]  # type: ignore[arg-type]
    known = [r for r in ranks if r is not None]
    return min(known) if known else None
