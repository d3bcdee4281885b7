"""The 96372 decision: a pure function of administrations and what they point to.

No HTTP, no files, no clock. :func:`decide_all` takes a patient's (or several
patients') MedicationAdministrations and a :class:`~fhir_injection.context.Context`
and returns one :class:`~fhir_injection.model.Decision` each. Rules come from
``mappings/`` through :class:`~fhir_injection.rules.Rules`; choices from
:class:`~fhir_injection.rules.Config`.

The decision runs in two passes:

1. per administration: status, medication, route, setting, dose, site, time,
   performer, diagnosis, consent, coverage, E/M — everything that needs only the
   administration and its references;
2. per patient and service date: duplicates, the distinct-procedure modifier on
   the 2nd and later injection, and the MUE limit.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timezone
from functools import lru_cache
from collections.abc import Mapping
from typing import Iterable, Sequence

from ..fhir.resources import ref_key, split_reference
from .context import Context
from .model import MAPPING, Coding, Decision, Gap, Line
from .rules import (
    SC_IM, SYSTEM_CPT, SYSTEM_CVX, SYSTEM_HCPCS, SYSTEM_HCPCS_ALIASES, SYSTEM_ICD10CM, SYSTEM_NDC, Config, Drug, DrugCode, Rules, Vaccine,
)
from .units import (
    MAX_DOSE, DoseError, billing_units, convert, ndc11, quantity_amount, ratio_strength, unit_of,
)

__all__ = ["decide", "decide_all"]

BILLED_STATUSES = {"completed"}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
NO_CLAIM_BLOCKERS = ("missing-patient", "missing-coverage")


# ----------------------------------------------------------------------------- helpers


def _list(value) -> list:
    """A list element as a list; anything else (a wrongly typed element) as empty."""
    return value if isinstance(value, list) else []


def _codings(concept) -> list[Mapping]:
    if not isinstance(concept, MAPPING):
        return []
    return [c for c in _list(concept.get("coding")) if isinstance(c, MAPPING)]


def _concept_text(concept) -> str | None:
    if not isinstance(concept, MAPPING):
        return None
    if isinstance(concept.get("text"), str) and concept["text"].strip():
        return concept["text"].strip()
    for c in _codings(concept):
        if isinstance(c.get("display"), str) and c["display"].strip():
            return c["display"].strip()
    return None


def _parse_time(value) -> datetime | date | None:
    return _parse_text_time(value) if isinstance(value, str) else None


@lru_cache(maxsize=4096)  # the same instants come back: a patient's consent, coverage and encounters
def _parse_text_time(value: str) -> datetime | date | None:
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        if len(value) in (4, 7):
            return None  # year or year-month: not a service date
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _as_date(value: datetime | date) -> date:
    return value.date() if isinstance(value, datetime) else value


def _cmp(a: datetime | date, b: datetime | date) -> int:
    """-1, 0 or 1; dates when either side has no time, and wall times when only one has a zone."""
    if isinstance(a, datetime):
        if isinstance(b, datetime):
            if (a.tzinfo is None) != (b.tzinfo is None):
                a, b = a.replace(tzinfo=None), b.replace(tzinfo=None)
            return (a > b) - (a < b)
        a = a.date()
    elif isinstance(b, datetime):
        b = b.date()
    return (a > b) - (a < b)


def _within(moment: datetime | date, start, end) -> bool:
    """Whether ``moment`` lies in [start, end]; compares dates when either side has no time."""
    if start is not None and _cmp(moment, start) < 0:
        return False
    if end is not None and _cmp(moment, end) > 0:
        return False
    return True


_WORD = re.compile(r"[a-z0-9][a-z0-9\-]*")


def _name_match(text: str | None, names: Sequence[tuple[str, str]]) -> str | None:
    """The value of the longest name that occurs in ``text`` on word boundaries."""
    if not text:
        return None
    haystack = " " + " ".join(_WORD.findall(text.lower())) + " "
    for name, value in names:
        if f" {name} " in haystack:
            return value
    return None


class _Medication:
    """What the engine could learn about the drug given (a plain class: one is made per administration)."""

    __slots__ = ("found", "reason", "codings", "text", "strength", "ndc", "vaccine", "drug", "drug_code",
                 "by_name")

    def __init__(self):
        self.found = False  # a medication[x] was present and resolvable
        self.reason: str | None = None  # why it is missing
        self.codings: list[Mapping] = []
        self.text: str | None = None
        self.strength: tuple | None = None
        self.ndc: str | None = None
        self.vaccine: Vaccine | None = None
        self.drug: Drug | None = None
        self.drug_code: DrugCode | None = None
        self.by_name = False


def _resolve_medication(admin: Mapping, ctx: Context, rules: Rules) -> _Medication:
    med = _Medication()
    concept = admin.get("medicationCodeableConcept")
    reference = admin.get("medicationReference")
    resource = None
    if isinstance(concept, MAPPING):
        med.found = True
        med.codings = _codings(concept)
        med.text = _concept_text(concept)
    elif isinstance(reference, MAPPING):
        ref = reference.get("reference")
        if isinstance(ref, str) and ref.startswith("#"):
            for contained in _list(admin.get("contained")):
                if (isinstance(contained, MAPPING) and contained.get("resourceType") == "Medication"
                        and contained.get("id") == ref[1:]):
                    resource = contained
                    break
            if resource is None:
                med.reason = f"medicationReference '{ref}' names no contained Medication"
        else:
            resource = ctx.get(ref, "Medication")
            if resource is None:
                pair = split_reference(ref)
                med.reason = (f"medicationReference points to {pair[0]}/{pair[1]}, which does not exist"
                              if pair else "medicationReference has no usable reference")
        if resource is not None:
            med.found = True
            med.codings = _codings(resource.get("code"))
            med.text = _concept_text(resource.get("code")) or _concept_text(reference.get("display") and
                                                                             {"text": reference["display"]})
            for ingredient in _list(resource.get("ingredient")):
                if not isinstance(ingredient, MAPPING):
                    continue
                med.codings.extend(_codings(ingredient.get("itemCodeableConcept")))
                med.text = med.text or _concept_text(ingredient.get("itemCodeableConcept"))
                med.strength = med.strength or ratio_strength(ingredient.get("strength"))
    else:
        med.reason = "no medicationCodeableConcept or medicationReference"
    if not med.found:
        return med

    for c in med.codings:
        system, code = c.get("system"), c.get("code")
        if not isinstance(code, str):
            continue
        if system == SYSTEM_CVX and code in rules.vaccines:
            med.vaccine = med.vaccine or rules.vaccines[code]
        elif system == SYSTEM_CVX and code.lstrip("0") in {k.lstrip("0") for k in rules.vaccines}:
            med.vaccine = med.vaccine or next(v for k, v in rules.vaccines.items() if k.lstrip("0") == code.lstrip("0"))
        if system == SYSTEM_NDC:
            normal = ndc11(code)
            med.ndc = med.ndc or normal
            code = normal or code
        if system in SYSTEM_HCPCS_ALIASES and code in rules.drugs and med.drug is None:
            med.drug = rules.drugs[code]
        hit = rules.drug_codes.get((system, code))
        if hit and med.drug_code is None:
            med.drug_code = hit
    if med.drug is None and med.drug_code is not None:
        med.drug = rules.drugs[med.drug_code.hcpcs]
    if med.drug_code is not None and med.drug_code.strength and not med.strength:
        med.strength = med.drug_code.strength
    if med.vaccine is None and med.drug is None:
        names = " ".join(filter(None, [med.text] + [c.get("display") for c in med.codings
                                                   if isinstance(c.get("display"), str)]))
        cvx = _name_match(names, rules.vaccine_names)
        if cvx:
            med.vaccine = rules.vaccines[cvx]
            med.by_name = True
        else:
            hcpcs = _name_match(names, rules.drug_names)
            if hcpcs:
                med.drug = rules.drugs[hcpcs]
                med.by_name = True
    return med


def _route(dosage: Mapping, rules: Rules) -> tuple[str | None, str | None]:
    """(route, problem): route from the first known coding, else why none."""
    concept = dosage.get("route")
    codings = _codings(concept)
    for c in codings:
        hit = rules.routes.get((c.get("system"), c.get("code")))
        if hit:
            return hit, None
    if codings:
        shown = ", ".join(f"{c.get('system')}|{c.get('code')}" for c in codings[:3])
        return None, f"route code(s) {shown} are not in mappings/routes.csv"
    if _concept_text(concept):
        return None, "the route is text only; it is not guessed from text"
    return None, "no dosage.route"


def _site(dosage: Mapping, rules: Rules) -> tuple[tuple[Coding, ...], str | None, str | None]:
    """(codings for Claim.item.bodySite, display text, problem)."""
    concept = dosage.get("site")
    codings = [c for c in _codings(concept) if c.get("system") and c.get("code")]
    if not codings:
        if _concept_text(concept):
            return (), None, "the site is text only"
        return (), None, "no dosage.site"
    laterality = None
    display = None
    out = []
    for c in codings:
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
    text = display or _concept_text(concept)
    if text and laterality and laterality not in text.lower():
        text = f"{text} ({laterality})"
    return tuple(out), text, None


def _icd10(concepts: Iterable) -> list[Coding]:
    out = []
    for concept in concepts:
        for c in _codings(concept):
            if c.get("system") == SYSTEM_ICD10CM and isinstance(c.get("code"), str) and c["code"]:
                out.append(Coding(SYSTEM_ICD10CM, c["code"], c.get("display")))
    return out


def _conditions_icd10(refs, ctx: Context) -> list[Coding]:
    """ICD-10-CM codes of the Conditions that ``refs`` (a list of References) point to."""
    found = []
    for r in _list(refs):
        if isinstance(r, MAPPING):
            cond = ctx.get(r.get("reference"), "Condition")
            if cond:
                found.extend(_icd10([cond.get("code")]))
    return found


def _rank(diagnosis: Mapping):
    return diagnosis.get("rank") if isinstance(diagnosis.get("rank"), int) else 99


def _diagnoses(admin: Mapping, encounter: Mapping | None, ctx: Context) -> list[Coding]:
    """ICD-10-CM codes: the administration's reason first, else the encounter's."""
    codes = _icd10(_list(admin.get("reasonCode"))) + _conditions_icd10(admin.get("reasonReference"), ctx)
    if not codes and encounter:
        diag = [d for d in _list(encounter.get("diagnosis")) if isinstance(d, MAPPING)]
        diag.sort(key=_rank)
        codes = _conditions_icd10([d.get("condition") for d in diag], ctx)
        codes += (_icd10(_list(encounter.get("reasonCode")))
                  + _conditions_icd10(encounter.get("reasonReference"), ctx))
    unique: dict[str, Coding] = {}
    for c in codes:
        unique.setdefault(c.code, c)
    return list(unique.values())[:12]


def _period(resource: Mapping, element: str = "period"):
    period = resource.get(element)
    if not isinstance(period, MAPPING):
        return None, None
    return _parse_time(period.get("start")), _parse_time(period.get("end"))


def _active_consent(consents: list[Mapping], when) -> Mapping | None:
    for consent in consents:
        if consent.get("status") != "active":
            continue
        provision = consent.get("provision") if isinstance(consent.get("provision"), MAPPING) else {}
        if provision.get("type") == "deny":
            continue
        start, end = _period(provision)
        given = _parse_time(consent.get("dateTime"))
        if when is not None:
            if not _within(when, start, end):
                continue
            if given is not None and not _within(when, given, None):
                continue
        return consent
    return None


def _active_coverage(coverages: list[Mapping], when) -> Mapping | None:
    usable = []
    for cov in coverages:
        if cov.get("status") != "active":
            continue
        start, end = _period(cov)
        if when is not None and not _within(when, start, end):
            continue
        usable.append(cov)
    usable.sort(key=lambda c: (c.get("order") if isinstance(c.get("order"), int) else 99, c.get("id") or ""))
    return usable[0] if usable else None


def _payer_type(coverage: Mapping, rules: Rules) -> str:
    for c in _codings(coverage.get("type")):
        system, code = c.get("system"), c.get("code")
        if not isinstance(code, str):
            continue
        for p_system, p_code, match, payer_type in rules.payer_codes:
            if system == p_system and (code == p_code if match == "exact" else code.startswith(p_code)):
                return payer_type
    return "commercial"


def _em_codes(encounter: Mapping | None, charge_items: list[Mapping], service_date: date | None,
              rules: Rules) -> list[str]:
    codes = []
    if encounter:
        for concept in _list(encounter.get("type")):
            for c in _codings(concept):
                if c.get("system") == SYSTEM_CPT and isinstance(c.get("code"), str) and rules.is_em(c["code"]):
                    codes.append(c["code"])
    enc_key = f"Encounter/{encounter.get('id')}" if encounter else None
    for item in charge_items:
        if item.get("status") in ("entered-in-error", "not-billable", "aborted"):
            continue
        context = item.get("context") if isinstance(item.get("context"), MAPPING) else {}
        same_encounter = enc_key and ref_key(context.get("reference")) == enc_key
        when = _parse_time(item.get("occurrenceDateTime"))
        same_day = service_date is not None and when is not None and _as_date(when) == service_date
        if not (same_encounter or same_day):
            continue
        for c in _codings(item.get("code")):
            if c.get("system") == SYSTEM_CPT and isinstance(c.get("code"), str) and rules.is_em(c["code"]):
                codes.append(c["code"])
    return sorted(set(codes))


def _drug_units(med: _Medication, dosage: Mapping, rules: Rules):
    """(HCPCS drug, billing units, dose, [(gap code, detail)]) for the drug line."""
    problems: list[tuple[str, str]] = []
    units = None
    drug = med.drug
    if med.found and drug is None and med.vaccine is None:
        drug = rules.drugs["J3490"]
        problems.append(("unmapped-medication", "No RxNorm, NDC or HCPCS code of the drug is in mappings/: J3490"))
    elif med.by_name and drug is not None:
        problems.append(("unmapped-medication", f"Matched to {drug.hcpcs} by drug name only, not by code"))
    dose = quantity_amount(dosage.get("dose"))
    dim = unit_of(dose[1]) if dose else None
    implausible = dim is not None and dose[0] * dim[1] > MAX_DOSE
    if med.found and med.vaccine is None:
        if dose is None:
            problems.append(("missing-dose", "dosage.dose has no value with a unit"))
        elif implausible:
            problems.append(("missing-dose", f"Dose {dose[0]} {dose[1]} is implausible"))
        elif drug is not None and drug.unit_amount is not None:
            try:
                units = _billing_units(dose[0], dose[1], drug.unit_amount, drug.unit, med.strength)
            except DoseError as exc:
                problems.append(("missing-dose", str(exc)[:1].upper() + str(exc)[1:]))
        elif unit_of(dose[1]) is None or dose[0] <= 0:
            problems.append(("missing-dose", "dosage.dose is not a positive amount in a known unit"))
        elif drug is not None:
            units = 1  # unclassified (J3490): one unit; the amount travels as the NDC quantity
    if implausible:
        dose = None  # never carried onto a Claim (NDC quantity, drug text)
    return drug, units, dose, problems


#: billing_units for the usual few doses of each drug, worked out once (a dose error is not kept:
#: it is raised again each time, with its own message)
_billing_units = lru_cache(maxsize=4096)(billing_units)


# ----------------------------------------------------------------------------- pass 1


class _Gaps:
    def __init__(self, rules: Rules, config: Config):
        self.rules, self.config, self.items = rules, config, []

    def add(self, code: str, detail: str | None = None, severity: str | None = None) -> None:
        gap_type = self.rules.gaps[code]
        message = gap_type.definition if not detail else f"{detail}. {gap_type.definition}"
        sev = severity or self.config.severity.get(code, gap_type.severity)
        self.items.append(Gap(code, sev, message, gap_type.field, gap_type.source))

    def has(self, code: str) -> bool:
        return any(g.code == code for g in self.items)


@dataclass
class _Draft:
    """Pass-1 result for one administration; pass 2 adds the same-day rules."""

    admin: Mapping
    decision: Decision
    when: datetime | date | None
    duplicate_key: tuple | None
    identifiers: tuple[str, ...]
    gaps: _Gaps


def _administration_key(admin: Mapping) -> str:
    return f"MedicationAdministration/{admin.get('id')}"


def replace(record, **changes):
    """``dataclasses.replace`` for the engine's frozen records (no ``__post_init__``, every field set
    by ``__init__``): a copy of the instance's fields with ``changes``, without a call through
    ``__init__``; several times quicker, and the engine makes one or more per administration."""
    copy = object.__new__(type(record))
    vars(copy).update(vars(record), **changes)
    return copy


def _first(key: str, version, **changes) -> Decision:
    """The decision of an administration that stops early (void, not given, inside a facility's payment)."""
    return Decision(administration=key, version=version, **{"outcome": "not-billable", "procedure": None, **changes})


def _decide_one(admin: Mapping, ctx: Context, rules: Rules, config: Config) -> _Draft:
    gaps = _Gaps(rules, config)
    key = _administration_key(admin)
    meta = admin.get("meta") if isinstance(admin.get("meta"), MAPPING) else {}
    version = meta.get("versionId")
    status = admin.get("status")
    effective = admin.get("effectiveDateTime")
    if effective is None and isinstance(admin.get("effectivePeriod"), MAPPING):
        effective = admin["effectivePeriod"].get("start")
    when = _parse_time(effective)
    identifiers = tuple(sorted(f"{i.get('system')}|{i.get('value')}" for i in _list(admin.get("identifier"))
                               if isinstance(i, MAPPING) and i.get("value")))

    if status == "entered-in-error":
        return _Draft(admin, _first(key, version, outcome="void"), when, None, (), gaps)
    if status not in BILLED_STATUSES:
        gaps.add("not-administered", f"Status is '{status}'" if isinstance(status, str) else "Status is missing")
        return _Draft(admin, _first(key, version, gaps=tuple(gaps.items)), when, None, (), gaps)

    # Patient
    subject = admin.get("subject") if isinstance(admin.get("subject"), MAPPING) else {}
    patient = ctx.get(subject.get("reference"), "Patient")
    patient_ref = ref_key(subject.get("reference")) if patient else None
    if patient is None:
        gaps.add("missing-patient", "MedicationAdministration.subject points to no Patient"
                 if subject.get("reference") else "MedicationAdministration.subject is missing")
    patient_id = patient.get("id") if patient else None

    # Medication
    med = _resolve_medication(admin, ctx, rules)
    if not med.found:
        gaps.add("missing-medication", med.reason)

    # Route
    dosage = admin.get("dosage") if isinstance(admin.get("dosage"), MAPPING) else {}
    route, route_problem = _route(dosage, rules)

    # Encounter and setting
    context_ref = (admin.get("context") or {}).get("reference") if isinstance(admin.get("context"), MAPPING) else None
    encounter = ctx.get(context_ref, "Encounter")
    setting, pos = "office", "11"
    if encounter is None:
        gaps.add("missing-encounter", "MedicationAdministration.context points to no Encounter"
                 if context_ref else "MedicationAdministration.context is missing")
    else:
        enc_class = encounter.get("class") if isinstance(encounter.get("class"), MAPPING) else {}
        found = rules.settings.get((enc_class.get("system"), enc_class.get("code")))
        if found:
            setting, pos = found.setting, found.place_of_service
        if setting == "virtual":
            gaps.add("missing-encounter", "The linked encounter is virtual (class VR): no injection is given in a "
                                          "virtual visit; link the in-person encounter")
            setting, pos = "office", "11"

    # Procedure: vaccine, anti-neoplastic, route, setting
    procedure: str | None = "96372"
    outcome: str | None = None  # decided below for the 96372 path
    if med.vaccine is not None:
        procedure, outcome = None, "not-96372"
    elif med.drug is not None and med.drug.drug_class in rules.antineoplastic and route in (SC_IM | {None}):
        procedure, outcome = rules.antineoplastic[med.drug.drug_class], "not-96372"
        gaps.add("antineoplastic", f"{med.drug.hcpcs} is {med.drug.drug_class.replace('-', ' ')}: bill {procedure}")
        if route is None:
            gaps.add("missing-route", route_problem)
    elif route is not None and route not in SC_IM:
        proc = rules.procedures[route]
        procedure, outcome = proc.code, proc.outcome
        gaps.add("route-not-sc-im", f"Route is {route}" + (f": {proc.code} applies" if proc.code else ""))
    elif route is None:
        gaps.add("missing-route", route_problem)

    # Coverage and payer (needed for vaccine codes too)
    when_date = _as_date(when) if when is not None else None
    coverage = _active_coverage(ctx.for_patient("Coverage", patient_id), when)
    payer_type = _payer_type(coverage, rules) if coverage else None
    payer = rules.payer(payer_type)
    if med.vaccine is not None:
        v = med.vaccine
        procedure = (rules.vaccine_admin.get((payer_type or "commercial", v.group))
                     or rules.vaccine_admin.get((payer_type or "commercial", "*"))
                     or rules.vaccine_admin[("*", "*")])
        gaps.add("vaccine", f"CVX {v.cvx} ({v.display}, product {v.product_code}): bill {procedure}")

    if outcome is None and setting in ("inpatient", "facility"):
        drug, units, _, _ = _drug_units(med, dosage, rules)
        facts = dict(drug=drug.hcpcs if drug else None, units=units, medication_text=med.text)
    if outcome is None and setting == "inpatient":
        gaps.add("facility-setting", "Inpatient encounter: administration is inside the DRG payment")
        return _Draft(admin, _first(key, version, procedure="96372", gaps=tuple(gaps.items), patient=patient_ref,
                                    encounter=ref_key(context_ref), setting=setting, place_of_service=pos,
                                    **facts),
                      when, None, identifiers, gaps)
    if outcome is None and setting == "facility":
        gaps.add("facility-setting", f"Hospital outpatient/emergency encounter (POS {pos}): the facility "
                                     "bills 96372 on its institutional claim")
        return _Draft(admin, _first(key, version, procedure="96372", gaps=tuple(gaps.items), patient=patient_ref,
                                    encounter=ref_key(context_ref), setting=setting, place_of_service=pos,
                                    **facts),
                      when, None, identifiers, gaps)

    # Time
    if when is None:
        gaps.add("missing-time", "effective[x] is missing" if effective is None
                 else "effective[x] is not a full date or date-time")
    elif encounter is not None:
        start, end = _period(encounter)
        if (start or end) and not _within(when, start, end):
            gaps.add("time-outside-encounter")

    # Dose and drug line
    drug, units, dose, drug_gaps = _drug_units(med, dosage, rules)
    for code, detail in drug_gaps:
        gaps.add(code, detail)

    # Site
    body_site, site_text, site_problem = _site(dosage, rules)
    if site_problem:
        gaps.add("missing-site", site_problem[:1].upper() + site_problem[1:])

    # Performer
    performer_ref = None
    for p in _list(admin.get("performer")):
        actor = p.get("actor") if isinstance(p, MAPPING) and isinstance(p.get("actor"), MAPPING) else {}
        found = ctx.get(actor.get("reference"))
        if found and found.get("resourceType") in ("Practitioner", "PractitionerRole"):
            performer_ref = ref_key(actor["reference"])
            break
    if performer_ref is None:
        gaps.add("missing-performer", "performer.actor points to no Practitioner"
                 if admin.get("performer") else "No performer")

    # Diagnosis, consent, coverage
    diagnoses = _diagnoses(admin, encounter, ctx)
    if not diagnoses:
        gaps.add("missing-diagnosis")
    if patient_id and _active_consent(ctx.for_patient("Consent", patient_id), when) is None:
        gaps.add("missing-consent")
    if patient_id and coverage is None:
        gaps.add("missing-coverage")

    # Payer-specific rules for the 96372 path
    modifiers: list[str] = []
    if outcome is None:
        em = _em_codes(encounter, ctx.for_patient("ChargeItem", patient_id), when_date, rules)
        if em:
            detail = f"E/M {', '.join(em)} on the same encounter or day: put modifier 25 on the E/M"
            if "99211" in em and not payer.pays_99211_with_injection:
                detail += f"; {payer_type} pays no 99211 with an injection: drop the 99211 and bill 96372"
            gaps.add("em-same-day", detail)
        if drug is not None and drug.self_administered and payer_type == "medicare":
            gaps.add("self-administered-drug", f"{drug.hcpcs} is on the self-administered drug list")
        if payer.requires_ndc and med.found and med.ndc is None:
            gaps.add("missing-ndc", f"{payer_type} requires the NDC")
        if drug is not None and drug.single_dose and payer.jw_jz and config.jw_jz:
            modifiers.append("JZ")

    lines: list[Line] = []
    if outcome is None and drug is not None:
        fee_admin = rules.fee("96372", setting)
        lines.append(Line("administration", SYSTEM_CPT, "96372", rules.procedures["subcutaneous"].description,
                          (), 1, fee_admin.amount if fee_admin else None))
        fee_drug = rules.fee(drug.hcpcs, setting)
        text = None
        if drug.hcpcs == "J3490":
            text = " ".join(filter(None, [med.text, f"{dose[0]} {dose[1]}" if dose else None])) or None
        ndc_qty, ndc_unit = None, None
        if med.ndc and dose:
            dim = unit_of(dose[1])
            strength_dims = tuple(unit_of(u) for u in (med.strength[1], med.strength[3])) if med.strength else ()
            if dim and dim[0] == "volume":
                ndc_qty, ndc_unit = dose[0] * dim[1], "ML"
            elif dim and dim[0] == "mass" and [d and d[0] for d in strength_dims] == ["mass", "volume"]:
                # a solution (e.g. 30 mg/mL): the NDC package unit is mL, not grams
                ndc_qty, ndc_unit = convert(dose[0], dose[1], "mL", med.strength), "ML"
            elif dim and dim[0] == "mass":
                ndc_qty, ndc_unit = dose[0] * dim[1] / 1000, "GR"
            else:
                ndc_qty, ndc_unit = dose[0], "UN"
        lines.append(Line("drug", SYSTEM_HCPCS, drug.hcpcs, drug.description, tuple(modifiers), units,
                          fee_drug.amount if fee_drug and fee_drug.per == "unit" else None,
                          med.ndc, ndc_qty, ndc_unit, text))
    elif outcome is None:
        fee_admin = rules.fee("96372", setting)
        lines.append(Line("administration", SYSTEM_CPT, "96372", rules.procedures["subcutaneous"].description,
                          (), 1, fee_admin.amount if fee_admin else None))

    # Billing provider: the encounter's organisation, else the configured one, else the performer.
    provider = None
    if encounter is not None:
        sp = encounter.get("serviceProvider") if isinstance(encounter.get("serviceProvider"), MAPPING) else {}
        if ctx.get(sp.get("reference"), "Organization"):
            provider = ref_key(sp["reference"])
    provider = provider or config.billing_provider or performer_ref

    decision = Decision(
        administration=key, version=version, outcome=outcome or "claim", procedure=procedure,
        gaps=tuple(gaps.items), lines=tuple(lines), patient=patient_ref, encounter=ref_key(context_ref)
        if encounter else None, coverage=ref_key(f"Coverage/{coverage['id']}") if coverage else None,
        payer_type=payer_type, provider=provider, performer=performer_ref,
        service_date=when_date.isoformat() if when_date else None,
        effective=effective if isinstance(effective, str) else None, setting=setting, place_of_service=pos,
        body_site=body_site, body_site_text=site_text, diagnoses=tuple(diagnoses),
        drug=drug.hcpcs if drug else None, units=units, medication_text=med.text,
    )
    dup_key = None
    if outcome is None and patient_id and effective:
        drug_id = (drug.hcpcs if drug and drug.hcpcs != "J3490" else (med.text or "").lower()) or None
        dup_key = (patient_id, drug_id, str(dose) if dose else None, route, effective)
    return _Draft(admin, decision, when, dup_key, identifiers, gaps)


# ----------------------------------------------------------------------------- pass 2


def _sort_key(draft: _Draft):
    when = draft.when
    def seconds(moment: datetime) -> float:
        try:
            return moment.timestamp()
        except (OverflowError, ValueError, OSError):  # local time of year 1 or 9999: count from UTC
            return (moment.replace(tzinfo=moment.tzinfo or timezone.utc) - _EPOCH).total_seconds()

    if isinstance(when, datetime):
        stamp = when.replace(tzinfo=None).isoformat() if when.tzinfo is None else when.isoformat()
        ordinal = seconds(when)
    elif isinstance(when, date):
        stamp, ordinal = when.isoformat(), seconds(datetime(when.year, when.month, when.day))
    else:
        stamp, ordinal = "", float("inf")
    return (ordinal, stamp, str(draft.admin.get("id")))


def _finish(draft: _Draft, rules: Rules, config: Config) -> Decision:
    d = draft.decision
    gaps = tuple(draft.gaps.items)
    if d.outcome in ("void", "not-billable", "not-96372") or d.procedure != "96372":
        return replace(d, gaps=gaps, claim_status=None)
    outcome = "held" if any(g.severity == "error" for g in gaps) else "claim"
    blocker = next((c for c in NO_CLAIM_BLOCKERS if draft.gaps.has(c)), None)
    if blocker is None and d.provider is None:
        blocker = "no billing provider (Encounter.serviceProvider, configured provider or performer)"
    status = None if blocker else ("active" if outcome == "claim" else "draft")
    return replace(d, outcome=outcome, gaps=gaps, claim_status=status, claim_blocker=blocker)


def decide_all(administrations: Iterable[Mapping], context: Context, rules: Rules,
               config: Config | None = None) -> list[Decision]:
    """Decide every administration; same-day rules apply per patient and service date.

    Pass all of a patient's administrations for the days in question together,
    or the distinct-modifier, duplicate and MUE rules cannot see each other.
    Returns decisions in the order the administrations were given.
    """
    config = config or Config()
    drafts = [_decide_one(a, context, rules, config) for a in administrations]
    order = {id(draft): _sort_key(draft) for draft in drafts}  # each draft's key, worked out once

    def by_time(draft: _Draft):
        return order[id(draft)]

    # Duplicates: same identifier, or same patient/drug/dose/route/time.
    seen: dict = {}
    for draft in sorted(drafts, key=by_time):
        keys = [("key", draft.duplicate_key)] if draft.duplicate_key else []
        keys += [("identifier", i) for i in draft.identifiers]
        if draft.decision.outcome == "void" or not keys:
            continue
        original = next((seen[k] for k in keys if k in seen), None)
        if original is not None and original is not draft:
            draft.gaps = _Gaps(rules, config)
            draft.gaps.add("duplicate", f"Same as {original.decision.administration}")
            draft.decision = replace(draft.decision, outcome="not-billable", procedure=None, lines=(), drug=None, units=None)
            continue
        for k in keys:
            seen.setdefault(k, draft)

    # Same patient, same day: distinct modifier on the 2nd+ injection; MUE.
    by_day: dict[tuple, list[_Draft]] = defaultdict(list)
    for draft in drafts:
        d = draft.decision
        if d.procedure == "96372" and d.outcome == "claim" and d.patient and d.service_date:
            by_day[(d.patient, d.service_date)].append(draft)
    for (_, _), group in by_day.items():
        group.sort(key=by_time)
        for position, draft in enumerate(group):
            d = draft.decision
            payer = rules.payer(d.payer_type)
            if position >= payer.mue_96372:
                draft.gaps.add("units-over-mue", f"Injection {position + 1} of {len(group)} on {d.service_date}; "
                                                 f"MUE is {payer.mue_96372}")
            if position >= 1:
                modifier = config.distinct_modifier.get(d.payer_type or "commercial", payer.distinct_modifier)
                lines = tuple(replace(line, modifiers=line.modifiers + (modifier,))
                              if line.kind == "administration" else line for line in d.lines)
                draft.decision = replace(d, lines=lines)

    return [_finish(draft, rules, config) for draft in drafts]


def decide(administration: Mapping, context: Context, rules: Rules, config: Config | None = None) -> Decision:
    """Decide one administration on its own (no same-day rules across administrations)."""
    return decide_all([administration], context, rules, config)[0]
