"""Pass 1, the billing steps of a 96372: time, dose and drug, site, performer, diagnosis, consent
and coverage, the payer's rules, the Claim lines, the billing provider, and the pass-1 decision.
The drug line's own parts (its NDC, JW/JZ, the line and its container) are ``drug_line``'s.
"""

from __future__ import annotations

from ..fhir.resources import shown_reference
from .billed_drug import drug_units
from .case import Case, Draft, cached_ref_key, key_of, replace
from .clinical import active_consent, body_site, consent_missing, em_codes
from .clinicians import rendering_provider
from .diagnosis_codes import code_first_order, combine_codes, diagnosis_groups_of
from .drug_line import (
    apply_jw_jz,
    container_basis,
    drug_lines,
    line_package,
    require_ndc,
    writes_drug_line,
)
from .elements import period, within
from .model import Decision, Line
from .payer_tables import Modifier
from .ruleset import SYSTEM_CPT

__all__ = [
    "draft_decision",
    "step_billing_provider",
    "step_diagnosis_consent_coverage",
    "step_dose_and_drug",
    "step_lines",
    "step_payer_rules",
    "step_performer",
    "step_rendering",
    "step_site",
    "step_time",
]


def step_time(c: Case) -> None:
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


def step_dose_and_drug(c: Case) -> None:
    if c.iv is not None and c.iv.kind == "hydration":
        # hydration fluid: the infusion code is the service; no drug line is suggested
        c.drug, c.units, c.dose = None, None, None
        return
    c.drug, c.units, c.dose, problems = drug_units(c.med, c.dosage, c.rules, c.when_date)
    for code, detail in problems:
        c.gaps.add(code, detail)


def step_site(c: Case) -> None:
    c.body_site, c.site_text, problem = body_site(c.dosage, c.rules)
    if problem:
        c.gaps.add("missing-site", problem[:1].upper() + problem[1:])


_CLINICIANS = ("Practitioner", "PractitionerRole")


def step_performer(c: Case) -> None:
    """The first performer.actor that points to a Practitioner or PractitionerRole a Claim can
    point to; a contained one documents who gave it (no gap) but is no care team member."""
    c.performer = c.performer_found = None
    documented = False
    for reference in c.refs.performers:
        found = c.ctx.get(reference, None, c.admin)
        if found is not None and found.get("resourceType") in _CLINICIANS:
            c.performer = key_of(reference, found)
            if c.performer is not None:
                c.performer_found = found
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


def step_diagnosis_consent_coverage(c: Case) -> None:
    found = c.diagnoses_read()
    c.diagnoses, c.coded_diagnoses = found.codes, found.coded
    if c.lead_diagnoses:  # the injury a Part B tetanus vaccine was given for comes first
        lead = c.lead_diagnoses
        c.diagnoses = list(lead) + [d for d in c.diagnoses if d not in lead]
    c.diagnoses, combined = combine_codes(c.diagnoses, c.rules)  # D64.9 with N18.4: D63.1
    c.diagnoses = code_first_order(c.diagnoses, c.rules)  # D63.1 after the CKD stage
    if not c.diagnoses:
        if found.unmapped:
            c.gaps.add("diagnosis-not-icd10", _snomed_only(c, found.unmapped, found.other))
        else:
            c.gaps.add("missing-diagnosis", _what_is_there(c, found.other))
        c.known(
            "diagnosis",
            "unknown",
            "only in SNOMED CT ("
            + ", ".join(str(coding.code) for coding, _ in found.unmapped[:4])
            + "): no ICD-10-CM code and no snomed_icd10.csv row"
            if found.unmapped
            else "no ICD-10-CM diagnosis on the administration or encounter",
        )
    else:
        own = [(coding, True) for coding, is_own in found.unmapped if is_own]
        if own:  # the administration's own reason cannot be put on the claim
            c.gaps.add("diagnosis-not-icd10", _snomed_only(c, own, []))
        shown = ", ".join(str(d.code) for d in c.diagnoses)
        becomes = {rule.becomes for rule in c.rules.combination_codes} if combined else set()
        mapped = [
            d
            for d in c.diagnoses
            if d.code not in found.written and str(d.code).replace(".", "").upper() not in becomes
        ]
        if not combined and not mapped:
            c.known("diagnosis", "record", f"ICD-10-CM {shown} (reasons, encounter)")
        else:
            how = ([", from SNOMED CT (snomed_icd10.csv)"] if mapped else []) + (
                [": " + "; ".join(combined)] if combined else []
            )
            c.known("diagnosis", "rule", f"ICD-10-CM {shown}" + "".join(how))
    if c.patient_id:
        consents = c.ctx.for_patient("Consent", c.patient_id)
        if active_consent(consents, c.local) is None:
            c.gaps.add("missing-consent", consent_missing(consents, c.local))
    if c.patient_id and c.coverage is None:
        c.gaps.add("missing-coverage")


def _snomed_only(c: Case, unmapped: list, other: list[str]) -> str:
    """Which diagnoses are in SNOMED CT only, and the diagnosis group each falls in (codes and
    displays of a code system: no patient's data)."""
    shown = []
    for coding, own in unmapped[:4]:
        groups = diagnosis_groups_of(coding, c.rules)
        group = f"diagnosis group {', '.join(groups)}" if groups else "in no diagnosis group"
        where = "the administration's reason" if own else "the encounter's"
        shown.append(
            f"SNOMED CT {coding.code} '{coding.display or 'no display'}' ({where}; {group})"
        )
    more = f" and {len(unmapped) - 4} more" if len(unmapped) > 4 else ""
    rest = f"; {'; '.join(other[:3])}" if other else ""
    return f"Only in SNOMED CT, with no ICD-10-CM code: {'; '.join(shown)}{more}{rest}"


def _what_is_there(c: Case, other: list[str]) -> str:
    """What the record holds where a diagnosis should be, for missing-diagnosis: references that do
    not resolve, diagnoses coded in no system a claim can use, or nothing at all."""
    found = [r for r in [_unresolved_conditions(c)] if r] + other[:3]
    if found:
        return "; ".join(found)
    return "The administration names no reason (reasonCode, reasonReference)" + (
        " and its encounter no diagnosis or reason"
        if c.encounter is not None
        else " and no encounter is linked"
    )


def _unresolved_conditions(c: Case) -> str | None:
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


def step_payer_rules(c: Case) -> None:
    """The payer's rules: on the 96372 path E/M the same day and the self-administered drug (both
    about the 96372 itself); on every drug line the engine writes (:func:`writes_drug_line`,
    whatever the administration code) the NDC and JW/JZ. The ESA rules follow (:mod:`.esa`), on
    the same drug lines."""
    c.modifiers = []
    c.waste = 0
    c.discarded = None
    c.sad_gy = False
    if c.outcome is None:
        _administration_payer_rules(c)
    drug = c.drug
    if drug is None or not writes_drug_line(c):
        return
    require_ndc(c, drug)
    if c.payer.jw_jz and c.config.jw_jz and not c.sad_gy:
        apply_jw_jz(c, drug)


def _administration_payer_rules(c: Case) -> None:
    """The 96372 path's own payer rules: E/M the same day (CMS CR 3631, modifier 25 on the E/M;
    no 99211 with a 96372) and the self-administered drug (IOM 100-02 ch.15 s50.2: the drug and
    its 96372 excluded together)."""
    drug, payer, payer_type = c.drug, c.payer, c.payer_type
    em = em_codes(
        c.encounter, c.ctx.for_patient("ChargeItem", c.patient_id), c.when_date, c.rules, c.zone
    )
    if em:
        separate = c.rules.modifiers["em-separate"].code
        detail = (
            f"E/M {', '.join(em)} on the same encounter or day: put modifier {separate} on the E/M"
        )
        if "99211" in em and not payer.pays_99211_with_injection:
            detail += (
                f"; {payer_type} pays no 99211 with an injection: drop the 99211 and bill 96372"
            )
        c.gaps.add("em-same-day", detail)
    if drug is not None and drug.self_administered and payer_type == "medicare":
        detail = f"{drug.hcpcs} is on the self-administered drug list"
        gy = c.rules.modifiers["excluded-service"]
        if c.config.sad_policy == "gy" and gy.in_force(c.when_date):
            # a denial on file: the excluded-service modifier (GY) on its lines, a warning to review
            c.sad_gy = True
            if "drug" in gy.lines:
                c.modifiers.append(gy.code)
            configured = "self-administered-drug" in c.config.severity
            c.gaps.add(
                "self-administered-drug",
                f"{detail}: billed with {gy.code} on {_on_lines(gy)} (sad_policy gy)",
                None if configured else "warning",
            )
        else:
            c.gaps.add("self-administered-drug", f"{detail}: held (sad_policy hold)")


def _on_lines(modifier: Modifier) -> str:
    """Where an excluded-service modifier goes, in words ("both lines": the 96372 and the drug; the
    loader allows no other lines, and at least one)."""
    named = [line for line in ("administration", "drug") if line in modifier.lines]
    return "both lines" if len(named) == 2 else f"the {named[0]} line"


def step_lines(c: Case) -> None:
    """On the 96372 path: the administration line, and the drug line when there is a drug; on
    another administration code the practice bills (``not-96372``), the drug line alone (the code is
    the decision's ``procedure``; no Claim is written for it): the same drug line, with JW/JZ and
    the JW line, whatever the administration code (:func:`writes_drug_line`)."""
    if c.outcome is not None:
        c.lines = drug_lines(c) if writes_drug_line(c) else ()
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
    if c.sad_gy:  # the administration of an excluded drug is excluded with it
        gy = c.rules.modifiers["excluded-service"]
        if "administration" in gy.lines:
            administration = replace(administration, modifiers=(gy.code,))
    c.lines = (administration, *drug_lines(c))


def step_billing_provider(c: Case) -> None:
    """The encounter's organisation, else the configured one, else the performer.

    A 96372 with none of them cannot be billed (a Claim needs its provider): the
    ``missing-billing-provider`` gap says why each one is not there.
    """
    provider = None
    if c.encounter_refs is not None:  # made exactly when the encounter was found
        reference = c.encounter_refs.provider
        found = c.ctx.get(reference, "Organization", c.encounter)
        provider = key_of(reference, found)
    c.provider = provider or c.config.billing_provider or c.performer
    if c.provider is None and c.outcome is None:
        c.gaps.add("missing-billing-provider", _no_provider_reason(c))


def step_rendering(c: Case) -> None:
    """The rendering provider of a 96372 (office or home: a facility stopped earlier, as the
    facility bills it): the performer when a physician or NPP gave it; else, incident-to, the
    encounter's supervising practitioner, or the one configured for the clinic's Location or
    Organization; else a gap. Its basis says which (:func:`.clinicians.rendering_provider`)."""
    c.rendering = None
    if c.outcome is not None:
        return
    found = rendering_provider(c)
    c.rendering = found.key
    if found.key is None:
        c.gaps.add("missing-rendering-provider", found.problem)
    elif found.note is not None:
        c.gaps.add("rendering-provider-by-role", found.note)
    c.known("rendering_provider", found.kind, found.how or "no physician or NPP")


def _no_provider_reason(c: Case) -> str:
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


def draft_decision(c: Case) -> Draft:
    """The pass-1 Decision, and the key pass 2 finds duplicates by (patient, drug, dose, route, time:
    the instant, however its offset is written)."""
    coverage, when_date, drug, effective = c.coverage, c.when_date, c.drug, c.effective
    container_basis(c)
    decision = Decision(
        administration=c.key,
        version=c.version,
        outcome=c.outcome or "claim",
        procedure=c.procedure,
        gaps=tuple(c.gaps.items),
        additional=c.additional,
        lines=c.lines,
        patient=c.patient_ref,
        encounter=key_of(c.encounter_ref, c.encounter),
        coverage=cached_ref_key(f"Coverage/{coverage['id']}") if coverage else None,
        payer_type=c.payer_type,
        provider=c.provider,
        performer=c.performer,
        rendering=c.rendering,
        service_date=when_date.isoformat() if when_date else None,
        effective=effective if isinstance(effective, str) else None,
        setting=c.setting,
        place_of_service=c.pos,
        body_site=c.body_site,
        body_site_text=c.site_text,
        diagnoses=tuple(c.diagnoses),
        drug=drug.hcpcs if drug else None,
        units=c.units,
        package=line_package(c) if writes_drug_line(c) else None,
        medication_text=c.med.text,
        basis=c.basis_items(),
        lab=c.lab if writes_drug_line(c) else None,
    )
    dup_key = None
    if c.outcome is None and c.patient_id and effective:
        drug_id = (
            drug.hcpcs if drug and drug.unit_status != "noc" else (c.med.text or "").lower()
        ) or None
        moment = c.when if c.when is not None else effective  # equal instants are equal datetimes
        dup_key = (c.patient_id, drug_id, str(c.dose) if c.dose else None, c.route, moment)
    return Draft(c.admin, decision, c.when, dup_key, c.identifiers, c.gaps)
