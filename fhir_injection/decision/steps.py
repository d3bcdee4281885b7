"""Pass 1 of the decision, step by step: what one administration is, from its own record and what
it points to.

:func:`~fhir_injection.decision.engine._decide_one` runs these steps in order (the order of the
gaps). Each reads the facts earlier steps set on the :class:`_Case` and sets its own; the names
stay private to the decision package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from functools import lru_cache

from ..fhir.resources import ref_key, shown_reference
from .clinical import (
    active_consent,
    active_coverage,
    body_site,
    diagnoses,
    em_codes,
    payer_type_of,
    route_of,
    setting_of,
)
from .context import AdministrationPointers, Context, EncounterPointers
from .elements import as_date, parse_time, period, within
from .infusion import IvService, iv_service
from .localtime import clinic_zone, effective_of, local
from .medication import Medication, dose_form, drug_units, ndc_quantity, resolve_medication
from .model import MAPPING, Coding, Decision, Gap, Line
from .rules import (
    IV_ROUTES,
    SC_IM,
    SYSTEM_CPT,
    SYSTEM_HCPCS,
    Config,
    DoseFormCategory,
    Drug,
    PayerRule,
    Rules,
)

#: ref_key of a reference the engine has resolved (so always text), worked out once: the same patients,
#: encounters, clinicians and clinics come back for administration after administration
_ref_key = lru_cache(maxsize=1024)(ref_key)


def _key_of(reference, found: Mapping | None) -> str | None:
    """``Type/id`` of the resource ``reference`` resolved to, for a Claim or Task to point to: the
    literal reference normalised, or the found resource's own type and id (a conditional or a
    Bundle reference). None when nothing was found or it is contained (only its container can
    point to it)."""
    if found is None:
        return None
    key = _ref_key(reference)
    if key is not None:
        return key
    if reference.startswith("#"):
        return None
    return f"{found.get('resourceType')}/{found.get('id')}"


class _Gaps:
    items: list[Gap]

    def __init__(self, rules: Rules, config: Config):
        self.rules, self.config, self.items = rules, config, []

    def add(self, code: str, detail: str | None = None, severity: str | None = None) -> None:
        gap_type = self.rules.gaps[code]
        message = gap_type.definition if not detail else f"{detail}. {gap_type.definition}"
        sev = severity or self.config.severity.get(code, gap_type.severity)
        self.items.append(Gap(code, sev, message, gap_type.field, gap_type.source))

    def has(self, code: str) -> bool:
        # A loop, not any(...): no generator is made per call on the hot path.
        for gap in self.items:  # noqa: SIM110
            if gap.code == code:
                return True
        return False


@dataclass
class _Draft:
    """Pass-1 result for one administration; pass 2 adds the same-day rules."""

    admin: Mapping
    decision: Decision
    when: datetime | date | None
    duplicate_key: tuple | None
    identifiers: tuple[str, ...]
    gaps: _Gaps


def replace(record, **changes):
    """``dataclasses.replace`` for the engine's frozen records (no ``__post_init__``, every field set
    by ``__init__``): a copy of the instance's fields with ``changes``, without a call through
    ``__init__``; several times quicker, and the engine makes one or more per administration."""
    copy = object.__new__(type(record))
    vars(copy).update(vars(record), **changes)
    return copy


def _first(key: str, version, **changes) -> Decision:
    """The decision of an administration that stops early (void, not given, inside a facility's payment)."""
    return Decision(
        administration=key,
        version=version,
        **{"outcome": "not-billable", "procedure": None, **changes},
    )


class _Case:
    """One administration being decided: its inputs, and the facts the steps have found so far.

    Each step of :func:`_decide_one` reads what earlier steps set and sets its own facts; a plain
    slotted class, as one is made per administration.
    """

    __slots__ = (
        "admin",
        "ctx",
        "rules",
        "config",
        "gaps",  # the inputs, and the gaps found so far
        "key",
        "version",
        "effective",
        "when",
        "identifiers",
        "refs",  # the administration
        # the steps' facts, in step order
        "patient_ref",
        "patient_id",
        "med",
        "dosage",
        "route",
        "route_problem",
        "iv",
        "additional",
        "encounter_ref",
        "encounter",
        "encounter_refs",
        "zone",
        "local",
        "setting",
        "pos",
        "procedure",
        "outcome",
        "not_injection",
        "when_date",
        "coverage",
        "payer_type",
        "payer",
        "drug",
        "units",
        "dose",
        "body_site",
        "site_text",
        "performer",
        "diagnoses",
        "modifiers",
        "lines",
        "provider",
    )
    # the slots' types (annotations only: no class attribute to clash with a slot)
    admin: Mapping
    ctx: Context
    rules: Rules
    config: Config
    gaps: _Gaps
    key: str
    version: str | None
    effective: object  # effective[x] as written; only a str is carried onto the Decision
    when: datetime | date | None
    identifiers: tuple[str, ...]
    refs: AdministrationPointers
    patient_ref: str | None
    patient_id: str | None
    med: Medication
    dosage: Mapping
    route: str | None
    route_problem: str | None
    iv: IvService | None  # set for an intravenous route
    additional: tuple[tuple[str, int], ...]  # add-on codes and units (IV infusion hours)
    encounter_ref: str | None
    encounter: Mapping | None
    encounter_refs: EncounterPointers | None
    zone: tzinfo | None  # the clinic's zone the dates are read in (None: each as written)
    local: datetime | date | None  # when, as the clinic's wall time
    setting: str | None  # None: the encounter says nothing known (gap unknown-setting)
    pos: str | None
    procedure: str | None
    outcome: str | None
    not_injection: DoseFormCategory | None  # no route, and the dose form is not an injection
    when_date: date | None
    coverage: Mapping | None
    payer_type: str | None
    payer: PayerRule
    drug: Drug | None
    units: int | None
    dose: tuple[Decimal, str] | None
    body_site: tuple[Coding, ...]
    site_text: str | None
    performer: str | None
    diagnoses: list[Coding]
    modifiers: list[str]
    lines: tuple[Line, ...]
    provider: str | None

    def __init__(self, admin: Mapping, ctx: Context, rules: Rules, config: Config):
        self.admin, self.ctx, self.rules, self.config = admin, ctx, rules, config
        self.gaps = _Gaps(rules, config)
        self.key = f"MedicationAdministration/{admin.get('id')}"
        meta = admin.get(
            "meta"
        )  # usually absent: None is not asked whether it is a Mapping (a slow check)
        self.version = (
            meta.get("versionId") if meta is not None and isinstance(meta, MAPPING) else None
        )
        self.effective = effective = effective_of(admin)
        self.when = parse_time(effective)
        items = admin.get("identifier")
        self.identifiers = (
            ()
            if not isinstance(items, list)
            else tuple(
                sorted(
                    [
                        f"{i.get('system')}|{i.get('value')}"
                        for i in items
                        if isinstance(i, MAPPING) and i.get("value")
                    ]
                )
            )
        )


def _patient(c: _Case) -> None:
    """The Patient that subject points to."""
    subject = c.refs.subject
    patient = c.ctx.get(subject, "Patient", c.admin)
    c.patient_ref = _key_of(subject, patient)
    if patient is None:
        why = c.ctx.resolve(subject, "Patient", c.admin)[1]
        c.gaps.add("missing-patient", f"MedicationAdministration.subject {why}")
    elif c.patient_ref is None:
        c.gaps.add(
            "missing-patient",
            f"MedicationAdministration.subject {shown_reference(subject)} is a contained "
            "Patient, which a Claim cannot point to",
        )
        patient = None
    c.patient_id = patient.get("id") if patient else None


def _medication(c: _Case) -> None:
    c.med = resolve_medication(c.admin, c.refs, c.ctx, c.rules)
    if not c.med.found:
        c.gaps.add("missing-medication", c.med.reason)


def _route(c: _Case) -> None:
    c.dosage = value if isinstance(value := c.admin.get("dosage"), MAPPING) else {}
    c.route, c.route_problem, from_text = route_of(c.dosage, c.rules)
    c.iv, c.additional = None, ()
    if from_text and c.route_problem:
        c.gaps.add("route-from-text", c.route_problem[:1].upper() + c.route_problem[1:])


def _encounter_and_setting(c: _Case) -> None:
    """The Encounter that context points to, and from its class the setting and place of service."""
    reference = c.encounter_ref = c.refs.encounter
    encounter = c.encounter = c.ctx.get(reference, "Encounter", c.admin)
    c.encounter_refs = None
    c.setting, c.pos = "office", "11"
    if encounter is None:
        why = c.ctx.resolve(reference, "Encounter", c.admin)[1]
        c.gaps.add("missing-encounter", f"MedicationAdministration.context {why}")
        return
    c.encounter_refs = EncounterPointers(encounter)
    found, problem = setting_of(encounter, c.rules)
    if found is None:
        # not known is not the office: the place of service is a claim field a person must set
        c.gaps.add("unknown-setting", problem)
        c.setting = c.pos = None
        return
    c.setting, c.pos = found.setting, found.place_of_service
    if c.setting == "virtual":
        c.gaps.add(
            "missing-encounter",
            "The linked encounter is virtual (class VR): no injection is given in a "
            "virtual visit; link the in-person encounter",
        )
        c.setting, c.pos = "office", "11"


def _local_time(c: _Case) -> None:
    """The clinic's zone (:mod:`.localtime`) and the administration's time as its wall time: every
    date taken from an instant (service date, coverage, consent, E/M, the encounter check) is local."""
    c.zone = zone = clinic_zone(c.when, c.encounter, c.encounter_refs, c.ctx, c.config)
    c.local = local(c.when, zone)


def _procedure(c: _Case) -> None:
    """96372, or not: a vaccine, a product that is no injection (no route, and its dose form says so),
    an anti-neoplastic drug, a route other than SC/IM (the setting comes later)."""
    med, route, rules, gaps = c.med, c.route, c.rules, c.gaps
    procedure: str | None = "96372"
    outcome: str | None = None  # decided at the end for the 96372 path
    # a coded route always decides; the dose form only when there is none (or none that is known)
    form = _not_an_injection(c) if route is None and med.vaccine is None else None
    c.not_injection = None
    if med.vaccine is not None:
        procedure, outcome = None, "not-96372"
    elif form is not None and form[0].outcome == "not-billable":  # oral methotrexate too: no 96401
        procedure, outcome, c.not_injection = None, "not-billable", form[0]
        gaps.add("dose-form-not-injectable", form[1])
    elif (
        med.drug is not None
        and med.drug.drug_class in rules.antineoplastic
        and route in (SC_IM | {None})
    ):
        procedure, outcome = rules.antineoplastic[med.drug.drug_class], "not-96372"
        gaps.add(
            "antineoplastic",
            f"{med.drug.hcpcs} is {med.drug.drug_class.replace('-', ' ')}: bill {procedure}",
        )
        if route is None:
            gaps.add("missing-route", c.route_problem)
    elif form is not None:
        # an implant or IUD: its insertion code (a hormonal anti-neoplastic implant kept 96402 above)
        procedure, outcome, c.not_injection = form[0].procedure_code, "not-96372", form[0]
        gaps.add("dose-form-not-injectable", form[1])
    elif route in IV_ROUTES:
        procedure, outcome = _intravenous(c)
    elif route is not None and route not in SC_IM:
        proc = rules.procedures[route]
        procedure, outcome = proc.code, proc.outcome
        gaps.add(
            "route-not-sc-im", f"Route is {route}" + (f": {proc.code} applies" if proc.code else "")
        )
    elif route is None:
        gaps.add("missing-route", c.route_problem)
    c.procedure, c.outcome = procedure, outcome


def _intravenous(c: _Case) -> tuple[str | None, str]:
    """(procedure, outcome) of an IV administration: push or infusion, of a drug, fluid or chemotherapy."""
    iv = c.iv = iv_service(c.admin, c.dosage, c.route or "intravenous", c.med, c.rules)
    what = f"IV {iv.kind} {iv.technique} ({iv.basis})"
    row = iv.row
    if row is None:
        c.gaps.add("route-not-sc-im", f"Route is intravenous: {what} is not reported")
        return None, "not-billable"
    if iv.addon_units:
        c.additional = ((row.addon_code, iv.addon_units),)  # type: ignore[assignment]
    more = f" + {row.addon_code} x {iv.addon_units}" if iv.addon_units else ""
    c.gaps.add("route-not-sc-im", f"Route is intravenous: {what}: {row.code}{more} applies")
    if iv.technique == "infusion" and iv.minutes is None:
        c.gaps.add(
            "infusion-time-unknown",
            f"{row.code} (initial hour) only; {iv.basis} says infusion but no duration is documented",
        )
    return row.code, "not-96372"


def _not_billed(c: _Case) -> _Draft:
    """A route that is no injection (oral, topical, ...) or an IV service that is not reported: nothing
    is billed, so no drug line and no documentation gaps (the engine keeps only the explanation)."""
    decision = _first(
        c.key,
        c.version,
        procedure=c.procedure,
        gaps=tuple(c.gaps.items),
        patient=c.patient_ref,
        encounter=_ref_key(c.encounter_ref) if c.encounter else None,
        payer_type=c.payer_type,
        service_date=c.when_date.isoformat() if c.when_date else None,
        effective=c.effective if isinstance(c.effective, str) else None,
        setting=c.setting,
        place_of_service=c.pos,
        medication_text=c.med.text,
    )
    return _Draft(c.admin, decision, c.when, None, c.identifiers, c.gaps)


def _not_an_injection(c: _Case) -> tuple[DoseFormCategory, str] | None:
    """With no route: the category of the product's dose form when it is not an injection (oral,
    transdermal, inhaled, implant, IUD...), with the gap's detail; None when it may be one, or when
    nothing says which."""
    found = dose_form(c.med, c.rules) if c.med.found else None
    if found is None:
        return None
    form, where = found
    category = c.rules.dose_form_categories[form.category]
    if category.outcome == "held":
        return None
    detail = f"No route; the dose form in {where} is '{form.name}' ({form.category})"
    if category.procedure_code:
        detail += f": {category.procedure_code} applies"
    return category, detail


def _coverage_and_payer(c: _Case) -> None:
    """The Coverage in force on the day and its payer type (a vaccine's administration code depends on it)."""
    when, rules = c.local, c.rules
    c.when_date = as_date(when) if when is not None else None
    coverage = c.coverage = active_coverage(c.ctx.for_patient("Coverage", c.patient_id), when)
    payer_type = None
    if coverage:
        payer_type, how = payer_type_of(coverage, c.ctx, rules)
        if payer_type is None:
            c.gaps.add("unknown-payer-type", f"{how} says only what kind of coverage it is")
        elif payer_type == "self-pay":
            c.gaps.add("self-pay", f"From {how}")
    c.payer_type = payer_type
    c.payer = rules.payer(payer_type)
    if c.med.vaccine is not None:
        v = c.med.vaccine
        c.procedure = (
            rules.vaccine_admin.get((payer_type or "commercial", v.group))
            or rules.vaccine_admin.get((payer_type or "commercial", "*"))
            or rules.vaccine_admin[("*", "*")]
        )
        c.gaps.add(
            "vaccine", f"CVX {v.cvx} ({v.display}, product {v.product_code}): bill {c.procedure}"
        )


def _inside_facility_payment(c: _Case) -> _Draft:
    """An inpatient or hospital outpatient 96372: the facility bills it, so the decision stops here."""
    drug, units, _, _ = drug_units(c.med, c.dosage, c.rules)
    if c.setting == "inpatient":
        c.gaps.add(
            "facility-setting", "Inpatient encounter: administration is inside the DRG payment"
        )
    else:
        c.gaps.add(
            "facility-setting",
            f"Hospital outpatient/emergency encounter (POS {c.pos}): the facility "
            "bills 96372 on its institutional claim",
        )
    decision = _first(
        c.key,
        c.version,
        # inpatient: inside the DRG, no administration code at all; hospital outpatient/ER: the
        # facility bills 96372 on its institutional claim (README decision rules, 96372.md 'Setting')
        procedure=None if c.setting == "inpatient" else "96372",
        gaps=tuple(c.gaps.items),
        patient=c.patient_ref,
        encounter=_key_of(c.encounter_ref, c.encounter),
        payer_type=c.payer_type,
        service_date=c.when_date.isoformat() if c.when_date else None,
        setting=c.setting,
        place_of_service=c.pos,
        drug=drug.hcpcs if drug else None,
        units=units,
        medication_text=c.med.text,
    )
    return _Draft(c.admin, decision, c.when, None, c.identifiers, c.gaps)


def _not_an_injection_decision(c: _Case) -> _Draft:
    """A product that is no injection (no route, and its dose form says so): the decision stops here.

    Nothing of the 96372 path applies: no dose, site or performer gaps, no same-day rules (no
    duplicate key, no 96372), nothing held. An implant or IUD names its insertion code and the
    device, one unit, when mappings/ know the product as a device.
    """
    drug, units, med = None, None, c.med
    if c.outcome == "not-96372":
        if med.drug is not None and med.drug.drug_class == "device":
            drug, units = med.drug, 1
            if med.by_name:
                c.gaps.add(
                    "unmapped-medication", f"Matched to {drug.hcpcs} by drug name only, not by code"
                )
        else:
            c.gaps.add(
                "unmapped-medication",
                "No device code (drugs.csv class 'device') of this product in mappings/: "
                "no device line",
            )
    coverage, effective = c.coverage, c.effective
    decision = _first(
        c.key,
        c.version,
        outcome=c.outcome,
        procedure=c.procedure,
        gaps=tuple(c.gaps.items),
        patient=c.patient_ref,
        encounter=_key_of(c.encounter_ref, c.encounter),
        coverage=_ref_key(f"Coverage/{coverage['id']}") if coverage else None,
        payer_type=c.payer_type,
        service_date=c.when_date.isoformat() if c.when_date else None,
        effective=effective if isinstance(effective, str) else None,
        setting=c.setting,
        place_of_service=c.pos,
        drug=drug.hcpcs if drug else None,
        units=units,
        medication_text=med.text,
    )
    return _Draft(c.admin, decision, c.when, None, c.identifiers, c.gaps)


def _time(c: _Case) -> None:
    if c.when is None:
        c.gaps.add(
            "missing-time",
            "effective[x] is missing"
            if c.effective is None
            else "effective[x] is not a full date or date-time",
        )
    elif c.encounter is not None and c.local is not None:  # local is None only when when is
        start, end = period(c.encounter)
        if (start or end) and not within(c.local, start, end):
            c.gaps.add("time-outside-encounter")


def _dose_and_drug(c: _Case) -> None:
    if c.iv is not None and c.iv.kind == "hydration":
        # hydration fluid: the infusion code is the service; no drug line is suggested
        c.drug, c.units, c.dose = None, None, None
        return
    c.drug, c.units, c.dose, problems = drug_units(c.med, c.dosage, c.rules)
    for code, detail in problems:
        c.gaps.add(code, detail)


def _site(c: _Case) -> None:
    c.body_site, c.site_text, problem = body_site(c.dosage, c.rules)
    if problem:
        c.gaps.add("missing-site", problem[:1].upper() + problem[1:])


_CLINICIANS = ("Practitioner", "PractitionerRole")


def _performer(c: _Case) -> None:
    """The first performer.actor that points to a Practitioner or PractitionerRole a Claim can
    point to; a contained one documents who gave it (no gap) but is no care team member."""
    c.performer = None
    documented = False
    for reference in c.refs.performers:
        found = c.ctx.get(reference, None, c.admin)
        if found is not None and found.get("resourceType") in _CLINICIANS:
            c.performer = _key_of(reference, found)
            if c.performer is not None:
                return
            documented = True
    if documented:
        return
    if not c.refs.performers:
        c.gaps.add("missing-performer", "No performer")
        return
    reasons = []
    for reference in c.refs.performers:
        found, why = c.ctx.resolve(reference, None, c.admin)
        if found is not None:
            why = f"{shown_reference(reference)} points to a {found.get('resourceType')}"
        reasons.append(f"MedicationAdministration.performer.actor {why}")
    c.gaps.add("missing-performer", "; ".join(reasons))


def _diagnosis_consent_coverage(c: _Case) -> None:
    c.diagnoses = diagnoses(c.admin, c.refs, c.encounter, c.encounter_refs, c.ctx)
    if not c.diagnoses:
        c.gaps.add("missing-diagnosis", _unresolved_conditions(c))
    if c.patient_id and active_consent(c.ctx.for_patient("Consent", c.patient_id), c.local) is None:
        c.gaps.add("missing-consent")
    if c.patient_id and c.coverage is None:
        c.gaps.add("missing-coverage")


def _unresolved_conditions(c: _Case) -> str | None:
    """The Condition references behind a missing diagnosis that resolve to nothing, and why."""
    where = [("MedicationAdministration.reasonReference", c.refs.reasons, c.admin)]
    if c.encounter is not None and c.encounter_refs is not None:
        where.append(("Encounter.diagnosis.condition", c.encounter_refs.diagnoses, c.encounter))
        where.append(("Encounter.reasonReference", c.encounter_refs.reasons, c.encounter))
    reasons = []
    for element, references, container in where:
        for reference in references:
            found, why = c.ctx.resolve(reference, "Condition", container)
            if found is None:
                reasons.append(f"{element} {why}")
    return "; ".join(reasons) or None


def _payer_rules(c: _Case) -> None:
    """The payer's rules on the 96372 path: E/M the same day, self-administered drug, NDC, JZ."""
    c.modifiers = []
    if c.outcome is not None:
        return
    drug, payer, payer_type = c.drug, c.payer, c.payer_type
    em = em_codes(
        c.encounter, c.ctx.for_patient("ChargeItem", c.patient_id), c.when_date, c.rules, c.zone
    )
    if em:
        detail = f"E/M {', '.join(em)} on the same encounter or day: put modifier 25 on the E/M"
        if "99211" in em and not payer.pays_99211_with_injection:
            detail += (
                f"; {payer_type} pays no 99211 with an injection: drop the 99211 and bill 96372"
            )
        c.gaps.add("em-same-day", detail)
    if drug is not None and drug.self_administered and payer_type == "medicare":
        c.gaps.add("self-administered-drug", f"{drug.hcpcs} is on the self-administered drug list")
    if payer.requires_ndc and c.med.found and c.med.ndc is None:
        c.gaps.add("missing-ndc", f"{payer_type} requires the NDC")
    if drug is not None and drug.single_dose and payer.jw_jz and c.config.jw_jz:
        c.modifiers.append("JZ")


def _lines(c: _Case) -> None:
    """On the 96372 path: the administration line, and the drug line when there is a drug."""
    if c.outcome is not None:
        c.lines = ()
        return
    fee = c.rules.fee("96372", c.setting)
    administration = Line(
        "administration",
        SYSTEM_CPT,
        "96372",
        c.rules.procedures["subcutaneous"].description,
        (),
        1,
        fee.amount if fee else None,
    )
    drug = c.drug
    c.lines = (administration, _drug_line(c, drug)) if drug is not None else (administration,)


def _drug_line(c: _Case, drug: Drug) -> Line:
    """The HCPCS drug line: billing units, the NDC with its quantity, and for J3490 the drug's name and dose."""
    dose, med = c.dose, c.med
    fee = c.rules.fee(drug.hcpcs, c.setting)
    text = None
    if drug.hcpcs == "J3490":
        text = " ".join(filter(None, [med.text, f"{dose[0]} {dose[1]}" if dose else None])) or None
    ndc_qty, ndc_unit = ndc_quantity(med, dose)
    return Line(
        "drug",
        SYSTEM_HCPCS,
        drug.hcpcs,
        drug.description,
        tuple(c.modifiers),
        c.units,
        fee.amount if fee and fee.per == "unit" else None,
        med.ndc,
        ndc_qty,
        ndc_unit,
        text,
    )


def _billing_provider(c: _Case) -> None:
    """The encounter's organisation, else the configured one, else the performer.

    A 96372 with none of them cannot be billed (a Claim needs its provider): the
    ``missing-billing-provider`` gap says why each one is not there.
    """
    provider = None
    if c.encounter_refs is not None:  # made exactly when the encounter was found
        reference = c.encounter_refs.provider
        found = c.ctx.get(reference, "Organization", c.encounter)
        provider = _key_of(reference, found)
    c.provider = provider or c.config.billing_provider or c.performer
    if c.provider is None and c.outcome is None:
        c.gaps.add("missing-billing-provider", _no_provider_reason(c))


def _no_provider_reason(c: _Case) -> str:
    """Why neither the encounter's organisation, a configured provider nor the performer is there."""
    if c.encounter is None or c.encounter_refs is None:
        clinic = "there is no Encounter to name its serviceProvider"
    else:
        reference = c.encounter_refs.provider
        found, why = c.ctx.resolve(reference, "Organization", c.encounter)
        if found is not None:  # resolved, so contained (only the Encounter can point to it)
            why = f"{shown_reference(reference)} is contained in the Encounter, which a Claim cannot point to"
        clinic = f"Encounter.serviceProvider {why}"
    performer = (
        "no performer"
        if not c.refs.performers
        else "no performer.actor is a Practitioner a Claim can point to"
    )
    return f"{clinic[:1].upper()}{clinic[1:]}; no billing_provider is configured; {performer}"


def _decision(c: _Case) -> _Draft:
    """The pass-1 Decision, and the key pass 2 finds duplicates by (patient, drug, dose, route, time:
    the instant, however its offset is written)."""
    coverage, when_date, drug, effective = c.coverage, c.when_date, c.drug, c.effective
    decision = Decision(
        administration=c.key,
        version=c.version,
        outcome=c.outcome or "claim",
        procedure=c.procedure,
        gaps=tuple(c.gaps.items),
        additional=c.additional,
        lines=c.lines,
        patient=c.patient_ref,
        encounter=_key_of(c.encounter_ref, c.encounter),
        coverage=_ref_key(f"Coverage/{coverage['id']}") if coverage else None,
        payer_type=c.payer_type,
        provider=c.provider,
        performer=c.performer,
        service_date=when_date.isoformat() if when_date else None,
        effective=effective if isinstance(effective, str) else None,
        setting=c.setting,
        place_of_service=c.pos,
        body_site=c.body_site,
        body_site_text=c.site_text,
        diagnoses=tuple(c.diagnoses),
        drug=drug.hcpcs if drug else None,
        units=c.units,
        medication_text=c.med.text,
    )
    dup_key = None
    if c.outcome is None and c.patient_id and effective:
        drug_id = (
            drug.hcpcs if drug and drug.hcpcs != "J3490" else (c.med.text or "").lower()
        ) or None
        moment = c.when if c.when is not None else effective  # equal instants are equal datetimes
        dup_key = (c.patient_id, drug_id, str(c.dose) if c.dose else None, c.route, moment)
    return _Draft(c.admin, decision, c.when, dup_key, c.identifiers, c.gaps)
