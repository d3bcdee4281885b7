"""What the record says around the drug: route, body site, diagnoses, consent, coverage and payer, E/M visits.

Each function reads one part of the record (through ``mappings/`` where a code must be known) and
returns plain values; the engine turns them into gaps and lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from ..fhir.resources import ref_key
from .context import AdministrationPointers, Context, EncounterPointers
from .elements import as_date, as_list, codings, concept_text, parse_time, period, within
from .model import MAPPING, Coding
from .rules import SYSTEM_CPT, SYSTEM_ICD10CM, Rules, normal_text


def route_of(dosage: Mapping, rules: Rules) -> tuple[str | None, str | None, bool]:
    """(route, problem, from text): the route of the first known coding; else, when no coding is
    known, of the route text if it is on the reviewed list (mappings/route_text.csv) as a whole;
    else None and why. Text is never guessed from: only the listed texts count."""
    concept = dosage.get("route")
    found = codings(concept)
    for c in found:
        # the codes as written: one that is not text finds nothing
        hit = rules.routes.get((c.get("system"), c.get("code")))  # type: ignore[arg-type]
        if hit:
            return hit, None, False
    text = concept.get("text") if isinstance(concept, MAPPING) else None
    if isinstance(text, str) and text.strip():
        listed = rules.route_text.get(normal_text(text))
        if listed:
            why = "no route code is known" if found else "the route is text only"
            return listed, f"{why}; its text is on the reviewed list as {listed}", True
    if found:
        shown = ", ".join(f"{c.get('system')}|{c.get('code')}" for c in found[:3])
        return None, f"route code(s) {shown} are not in mappings/routes.csv", False
    if concept_text(concept):
        return (
            None,
            "the route is text only and not on the reviewed list (mappings/route_text.csv); "
            "it is not guessed from text",
            False,
        )
    return None, "no dosage.route", False


def body_site(dosage: Mapping, rules: Rules) -> tuple[tuple[Coding, ...], str | None, str | None]:
    """(codings for Claim.item.bodySite, display text, problem)."""
    concept = dosage.get("site")
    coded = [c for c in codings(concept) if c.get("system") and c.get("code")]
    if not coded:
        if concept_text(concept):
            return (), None, "the site is text only"
        return (), None, "no dosage.site"
    laterality = None
    display = None
    out = []
    for c in coded:
        key = (c["system"], c["code"])
        if key in rules.laterality:
            laterality = laterality or rules.laterality[key]
            out.append(Coding(c["system"], c["code"], c.get("display")))
            continue
        site = rules.sites.get(key)
        if site:
            laterality = laterality or site.laterality
            display = display or site.display
            out.append(Coding(site.system, site.code, c.get("display") or site.display))
        else:
            display = display or c.get("display")
            out.append(Coding(c["system"], c["code"], c.get("display")))
    text = display or concept_text(concept)
    if text and laterality and laterality not in text.lower():
        text = f"{text} ({laterality})"
    return tuple(out), text, None


def _icd10(concepts: Iterable) -> list[Coding]:
    out = []
    for concept in concepts:
        for c in codings(concept):
            if c.get("system") == SYSTEM_ICD10CM and isinstance(c.get("code"), str) and c["code"]:
                out.append(Coding(SYSTEM_ICD10CM, c["code"], c.get("display")))
    return out


def _conditions_icd10(references: Iterable, ctx: Context) -> list[Coding]:
    """ICD-10-CM codes of the Conditions that ``references`` point to."""
    found = []
    for reference in references:
        cond = ctx.get(reference, "Condition")
        if cond:
            found.extend(_icd10([cond.get("code")]))
    return found


def diagnoses(
    admin: Mapping,
    refs: AdministrationPointers,
    encounter: Mapping | None,
    encounter_refs: EncounterPointers | None,
    ctx: Context,
) -> list[Coding]:
    """ICD-10-CM codes: the administration's reason first, else the encounter's."""
    codes = _icd10(as_list(admin.get("reasonCode"))) + _conditions_icd10(refs.reasons, ctx)
    if not codes and encounter:
        assert (
            encounter_refs is not None
        )  # the engine makes them whenever it has found the encounter
        codes = _conditions_icd10(encounter_refs.diagnoses, ctx)
        codes += _icd10(as_list(encounter.get("reasonCode"))) + _conditions_icd10(
            encounter_refs.reasons, ctx
        )
    unique: dict[str | None, Coding] = {}
    for c in codes:
        unique.setdefault(c.code, c)
    return list(unique.values())[:12]


def active_consent(consents: list[Mapping], when) -> Mapping | None:
    """The first active, permitting Consent in force at ``when`` (any, when the time is unknown)."""
    for consent in consents:
        if consent.get("status") != "active":
            continue
        provision = value if isinstance(value := consent.get("provision"), MAPPING) else {}
        if provision.get("type") == "deny":
            continue
        start, end = period(provision)
        given = parse_time(consent.get("dateTime"))
        if when is not None:
            if not within(when, start, end):
                continue
            if given is not None and not within(when, given, None):
                continue
        return consent
    return None


def active_coverage(coverages: list[Mapping], when) -> Mapping | None:
    """The active Coverage in force at ``when`` that comes first (Coverage.order, then id)."""
    usable = []
    for cov in coverages:
        if cov.get("status") != "active":
            continue
        start, end = period(cov)
        if when is not None and not within(when, start, end):
            continue
        usable.append(cov)
    if len(usable) > 1:
        usable.sort(
            key=lambda c: (
                c.get("order") if isinstance(c.get("order"), int) else 99,
                c.get("id") or "",
            )
        )
    return usable[0] if usable else None


def payer_type_of(coverage: Mapping, rules: Rules) -> str:
    """medicare, medicaid or commercial, from Coverage.type through mappings/payer_codes.csv."""
    for c in codings(coverage.get("type")):
        system, code = c.get("system"), c.get("code")
        if not isinstance(code, str):
            continue
        for p_system, p_code, match, payer_type in rules.payer_codes:
            if system == p_system and (
                code == p_code if match == "exact" else code.startswith(p_code)
            ):
                return payer_type
    return "commercial"


def em_codes(
    encounter: Mapping | None, charge_items: list[Mapping], service_date: date | None, rules: Rules
) -> list[str]:
    """E/M visit codes on the same encounter (its type, its ChargeItems) or the same day (ChargeItems)."""
    codes = []
    if encounter:
        for concept in as_list(encounter.get("type")):
            for c in codings(concept):
                if (
                    c.get("system") == SYSTEM_CPT
                    and isinstance(c.get("code"), str)
                    and rules.is_em(c["code"])
                ):
                    codes.append(c["code"])
    enc_key = f"Encounter/{encounter.get('id')}" if encounter else None
    for item in charge_items:
        if item.get("status") in ("entered-in-error", "not-billable", "aborted"):
            continue
        context = value if isinstance(value := item.get("context"), MAPPING) else {}
        same_encounter = enc_key and ref_key(context.get("reference")) == enc_key
        when = parse_time(item.get("occurrenceDateTime"))
        same_day = service_date is not None and when is not None and as_date(when) == service_date
        if not (same_encounter or same_day):
            continue
        for c in codings(item.get("code")):
            if (
                c.get("system") == SYSTEM_CPT
                and isinstance(c.get("code"), str)
                and rules.is_em(c["code"])
            ):
                codes.append(c["code"])
    return sorted(set(codes))
