"""What the record says around the drug: route, body site, consent, coverage and payer, E/M visits, setting.
(The diagnoses are read in ``diagnosis_codes``.)

Each function reads one part of the record (through ``mappings/`` where a code must be known) and
returns plain values; the engine turns them into gaps and lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, tzinfo

from ..fhir.resources import MAPPING, ref_key, split_reference
from .context import Context
from .elements import (
    as_date,
    as_list,
    codings,
    concept_text,
    name_key,
    parse_time,
    period,
    within,
)
from .localtime import local
from .model import Coding
from .payer_tables import NameRule, PayerCode
from .ruleset import SYSTEM_CPT, Rules, Setting, normal_text

__all__ = [
    "DATA_ABSENT_REASON",
    "active_consent",
    "active_coverage",
    "body_site",
    "consent_missing",
    "em_codes",
    "payer_type_of",
    "route_of",
    "setting_of",
    "type_names_payer",
    "type_setting",
]


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


def consent_missing(consents: list[Mapping], when) -> str:
    """What the record has instead of an active, permitting Consent at ``when``: the patient's
    Consents, by id, and why each does not count (patients are named by no more than resource ids)."""
    if not consents:
        return "The patient has no Consent resource"
    said = []
    for consent in consents[:5]:
        ident = f"Consent/{consent.get('id')}"
        provision = value if isinstance(value := consent.get("provision"), MAPPING) else {}
        status = consent.get("status")
        if status != "active":
            said.append(f"{ident} has status {status or '(none)'}")
        elif provision.get("type") == "deny":
            said.append(f"{ident} denies (provision.type deny)")
        else:
            start, _end = period(provision)
            given = parse_time(consent.get("dateTime"))
            if given is not None and when is not None and not within(when, given, None):
                said.append(
                    f"{ident} was given ({consent.get('dateTime')}) after the administration"
                )
            elif start is not None and when is not None and not within(when, start, None):
                said.append(f"{ident} starts after the administration")
            else:
                said.append(f"{ident} ends before the administration")
    more = f" and {len(consents) - 5} more" if len(consents) > 5 else ""
    return "No active, permitting Consent covers the administration: " + "; ".join(said) + more


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


def payer_type_of(coverage: Mapping, ctx: Context, rules: Rules) -> tuple[str | None, str]:
    """(payer type, how it was told) of a Coverage: medicare, medicaid, commercial or self-pay, or
    None when it cannot be told (a generic public type and nothing more).

    Precedence, first that speaks wins (README "Payer type"; tables in mappings/):

    1. a specific Coverage.type coding (payer_codes.csv kind specific: NAHDO SOPT, self-pay "pay");
    2. the payor itself: a Patient or RelatedPerson pays (self-pay), or its identifier
       (payer_identifiers.csv), on the Reference or the payor Organization;
    3. the Coverage.type text, or the display of a coding no table knows (payer_names.csv, whole text);
    4. the payor's name (payer_names.csv): the Organization's name, else the Reference's display;
    5. a generic Coverage.type coding's own payer type (v3 MCPOL: commercial; PUBLICPOL: unknown);
    6. nothing at all: commercial (a plan nobody typed is a commercial plan, as before).
    """
    concept = coverage.get("type")
    generic = None
    texts = []
    for c in codings(concept):
        system, code = c.get("system"), c.get("code")
        found = _payer_code(system, code, rules)
        if found is None:
            if isinstance(c.get("display"), str):
                texts.append(c["display"])
        elif found.specific:
            return found.payer_type, f"Coverage.type {system}|{code}"
        elif generic is None:
            generic = (found.payer_type, f"Coverage.type {system}|{code} ({found.display})")
    payors = _payors(coverage, ctx)
    for reference, organization in payors:
        if _person_pays(reference):
            return "self-pay", "Coverage.payor (a Patient or RelatedPerson pays)"
        for identifiers in (
            [reference.get("identifier")],
            as_list(organization.get("identifier")) if organization else [],
        ):
            for identifier in identifiers:
                if isinstance(identifier, MAPPING):
                    hit = rules.payer_identifiers.get(
                        (identifier.get("system"), identifier.get("value"))  # type: ignore[arg-type]
                    )
                    if hit:
                        return hit, "Coverage.payor identifier"
    if isinstance(concept, MAPPING) and isinstance(concept.get("text"), str):
        texts.insert(0, concept["text"])
    for text in texts:
        rule = _name_rule(text, rules)
        if rule is not None and rule.type_text:
            return rule.payer_type, "Coverage.type text"
    for reference, organization in payors:
        name = organization.get("name") if organization else None
        for candidate in (name, reference.get("display")):
            if isinstance(candidate, str):
                rule = _name_rule(candidate, rules)
                if rule is not None and rule.payor_name:
                    return rule.payer_type, "Coverage.payor name"
    if generic is not None:
        payer_type, how = generic
        return (None if payer_type == "unknown" else payer_type), how
    return "commercial", "no Coverage.type or payor the tables know"


def type_names_payer(coverage: Mapping, rules: Rules) -> bool:
    """Whether a Coverage.type coding names the payer type outright (then the payor is not read)."""
    for c in codings(coverage.get("type")):
        found = _payer_code(c.get("system"), c.get("code"), rules)
        if found is not None and found.specific:
            return True
    return False


def _payer_code(system, code, rules: Rules) -> PayerCode | None:
    """The payer_codes.csv row of a coding: its exact code, else the longest prefix of its system."""
    if not (isinstance(system, str) and isinstance(code, str)):
        return None
    found = rules.payer_codes.get((system, code))
    if found is None:
        for prefix, prefixed in rules.payer_code_prefixes.get(system, ()):
            if code.startswith(prefix):
                return prefixed
    return found


def _payors(coverage: Mapping, ctx: Context) -> list[tuple[Mapping, Mapping | None]]:
    """(the payor Reference, the Organization it resolves to, if any), for each payor."""
    found = []
    for reference in as_list(coverage.get("payor")):
        if isinstance(reference, MAPPING):
            target = reference.get("reference")
            found.append((reference, ctx.get(target, "Organization") if target else None))
    return found


def _person_pays(reference: Mapping) -> bool:
    """Whether a payor Reference is a person: R4 Coverage.payor is Organization, or Patient or
    RelatedPerson for "patient-pay agreements" (FHIR R4 Coverage.payor definition)."""
    pair = split_reference(reference.get("reference"))
    kind = pair[0] if pair else reference.get("type")
    return kind in ("Patient", "RelatedPerson")


def _name_rule(text: str, rules: Rules) -> NameRule | None:
    """The payer_names.csv rule for a whole name, or for its first words (a prefix row)."""
    key = name_key(text)
    rule = rules.payer_names.get(key)
    if rule is None:
        for prefix, candidate in rules.payer_name_prefixes:
            if key == prefix or key.startswith(prefix + " "):
                return candidate
    return rule


def em_codes(
    encounter: Mapping | None,
    charge_items: list[Mapping],
    service_date: date | None,
    rules: Rules,
    zone: tzinfo | None = None,
) -> list[str]:
    """E/M visit codes on the same encounter (its type, its ChargeItems) or the same day (ChargeItems;
    a ChargeItem's instant is read in the clinic's ``zone``, as the service date is)."""
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
        same_day = (
            service_date is not None
            and when is not None
            and as_date(local(when, zone)) == service_date
        )
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


DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"


def setting_of(encounter: Mapping, rules: Rules) -> tuple[Setting | None, str | None]:
    """(setting and place of service, why none) of an Encounter.

    Encounter.class through settings.csv (v3 ActCode, HL7 v2 0004) first; a class no table knows (a
    vendor's own system, a data-absent-reason, none) falls back to Encounter.type: its codings through
    settings.csv (a v2 0004 code in type, as Oracle Health sends) and encounter_types.csv (CPT E/M,
    SNOMED CT encounter types), then its whole text. Nothing known: no setting, never "office".
    """
    enc_class = encounter.get("class")
    enc_class = enc_class if isinstance(enc_class, MAPPING) else {}
    system, code = enc_class.get("system"), enc_class.get("code")
    # the class as written: a system or code that is not text finds nothing
    found = rules.settings.get((system, code))  # type: ignore[arg-type]
    if found is not None:
        return found, None
    for concept in as_list(encounter.get("type")):
        found = type_setting(concept, rules)
        if found is not None:
            return found, None
    absent = _absent_reason(enc_class)
    if isinstance(system, str) and isinstance(code, str):
        why = f"Encounter.class {system}|{code} is in no table (mappings/settings.csv)"
    elif absent:
        why = f"Encounter.class is absent (data-absent-reason '{absent}')"
    elif not enc_class:
        why = "Encounter.class is missing"
    else:
        why = "Encounter.class has no system or no code"
    return None, why + " and Encounter.type names no setting (mappings/encounter_types.csv)"


def type_setting(concept, rules: Rules) -> Setting | None:
    """The setting one Encounter.type CodeableConcept names: a coding first, then its text."""
    for c in codings(concept):
        system, code = c.get("system"), c.get("code")
        if not (isinstance(system, str) and isinstance(code, str)):
            continue
        found = rules.settings.get((system, code)) or rules.encounter_types.get((system, code))
        if found is not None:
            return found
        if code.isdigit():
            number = int(code)
            for low, high, setting in rules.encounter_type_ranges.get(system, ()):
                if low <= number <= high:
                    return setting
    if isinstance(concept, MAPPING):
        text = concept.get("text")
        candidates = [text] if isinstance(text, str) else []
        candidates += [c["display"] for c in codings(concept) if isinstance(c.get("display"), str)]
        for candidate in candidates:
            found = rules.encounter_type_texts.get(name_key(candidate))
            if found is not None:
                return found
    return None


def _absent_reason(element: Mapping) -> str | None:
    """The data-absent-reason code on an element (FHIR R4 extension), if any."""
    for ext in as_list(element.get("extension")):
        if isinstance(ext, MAPPING) and ext.get("url") == DATA_ABSENT_REASON:
            value = ext.get("valueCode")
            return value if isinstance(value, str) else "unknown"
    return None
