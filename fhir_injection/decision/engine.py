"""The 96372 decision: a pure function of administrations and what they point to.

No HTTP, no files, no clock. :func:`decide_all` takes a patient's (or several
patients') MedicationAdministrations and a :class:`~fhir_injection.decision.context.Context`
and returns one :class:`~fhir_injection.decision.model.Decision` each. Rules come from
``mappings/`` through :class:`~fhir_injection.decision.ruleset.Rules`; choices from
:class:`~fhir_injection.decision.practice.Config`.

The decision runs in two passes:

1. per administration (:func:`_decide_one`): status, patient, medication, route, setting,
   procedure, coverage, time, dose, site, performer, diagnosis, consent, E/M — everything that
   needs only the administration and its references, one step function each, in that order
   (the order of the gaps), in :mod:`.record`, :mod:`.early` and :mod:`.billing`, on one
   :class:`~.case.Case`. The steps read the record through :mod:`.medication` (the drug and
   its units), :mod:`.clinical` (route, site, diagnoses, consent, coverage, E/M) and
   :mod:`.elements` (lists, codes, times), and follow references through the pointer views
   of :mod:`.context`. A void, a not-given, a facility one, and a product that is no injection
   (no route, and its dose form says so: :func:`.early.not_an_injection_decision`) stop early;
2. per patient and service date (the clinic's local day, :mod:`.localtime`): duplicates, the
   distinct-procedure modifier on the 2nd and later injection, and the MUE limit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime

from .billing import (
    draft_decision,
    step_billing_provider,
    step_diagnosis_consent_coverage,
    step_dose_and_drug,
    step_lines,
    step_payer_rules,
    step_performer,
    step_rendering,
    step_site,
    step_time,
)
from .case import Case, Draft, Gaps, first_decision, replace
from .context import AdministrationPointers, Context
from .early import inside_facility_payment, not_an_injection_decision, not_billed
from .esa import step_esa
from .filing import apply_filing_limit
from .model import Decision
from .practice import Config
from .record import (
    step_coverage_and_payer,
    step_crosswalk_release,
    step_encounter_and_setting,
    step_local_time,
    step_medication,
    step_patient,
    step_procedure,
    step_route,
)
from .ruleset import Rules

__all__ = ["BILLED_STATUSES", "NO_CLAIM_BLOCKERS", "decide", "decide_all", "decide_deleted"]

#: Without any of these no Claim can be formed (Claim.patient, .insurance and .provider are
#: required). A 96372 with one is ``held`` whatever severity the gap was configured to: an outcome
#: ``claim`` always has an active Claim.
NO_CLAIM_BLOCKERS = (
    "missing-patient",
    "missing-coverage",
    "missing-billing-provider",
)

BILLED_STATUSES = {"completed"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# ----------------------------------------------------------------------------- pass 1


def _decide_one(admin: Mapping, ctx: Context, rules: Rules, config: Config) -> Draft:
    """Pass 1 for one administration: its steps in order; a void, not given or facility one stops early."""
    c = Case(admin, ctx, rules, config)
    status = admin.get("status")
    if status == "entered-in-error":
        return Draft(
            admin, first_decision(c.key, c.version, outcome="void"), c.when, None, (), c.gaps
        )
    if status not in BILLED_STATUSES:
        c.gaps.add(
            "not-administered",
            f"Status is '{status}'" if isinstance(status, str) else "Status is missing",
        )
        return Draft(
            admin,
            first_decision(c.key, c.version, gaps=tuple(c.gaps.items)),
            c.when,
            None,
            (),
            c.gaps,
        )
    c.refs = AdministrationPointers(admin)
    step_patient(c)
    step_medication(c)
    step_route(c)
    step_encounter_and_setting(c)
    step_local_time(c)
    step_crosswalk_release(c)
    if c.setting in ("inpatient", "facility"):
        # the setting before the route: whatever was given in a hospital stay, its outpatient
        # department or ER, the facility bills (96372.md 'Setting'), an IV infusion as a 96372
        step_coverage_and_payer(c, vaccine=False)
        return inside_facility_payment(c)
    step_procedure(c)
    step_coverage_and_payer(c)
    if c.not_injection is not None:  # no route, and the dose form is no injection
        return not_an_injection_decision(c)
    if c.outcome == "not-billable":
        return not_billed(c)
    step_time(c)
    step_dose_and_drug(c)
    step_site(c)
    step_performer(c)
    step_diagnosis_consent_coverage(c)
    step_payer_rules(c)
    step_esa(c)
    step_lines(c)
    step_billing_provider(c)
    step_rendering(c)
    return draft_decision(c)


# ----------------------------------------------------------------------------- pass 2


def _sort_key(draft: Draft):
    when = draft.when
    if isinstance(when, datetime):
        stamp = when.replace(tzinfo=None).isoformat() if when.tzinfo is None else when.isoformat()
        ordinal = _seconds(when)
    elif isinstance(when, date):
        stamp, ordinal = when.isoformat(), _seconds(datetime(when.year, when.month, when.day))
    else:
        stamp, ordinal = "", float("inf")
    return (ordinal, stamp, str(draft.admin.get("id")))


def _seconds(moment: datetime) -> float:
    try:
        return moment.timestamp()
    except (OverflowError, ValueError, OSError):  # local time of year 1 or 9999: count from UTC
        return (moment.replace(tzinfo=moment.tzinfo or UTC) - _EPOCH).total_seconds()


#: the gap scopes (mappings/gaps.codesystem.json 'raised-for') kept for an outcome that is no 96372
_KEPT = {"not-96372": ("every", "billed"), "not-billable": ("every",), "void": ("every",)}


def _finish(draft: Draft, rules: Rules, config: Config) -> Decision:
    d = draft.decision
    gaps = tuple(draft.gaps.items)
    if d.outcome in ("void", "not-billable", "not-96372") or d.procedure != "96372":
        # not a 96372 service: keep the explanation, and for another code the gaps of what it bills
        kept = _KEPT.get(d.outcome, ("every", "billed"))
        gaps = tuple(g for g in gaps if rules.gaps[g.code].raised_for in kept)
        return apply_filing_limit(replace(d, gaps=gaps, claim_status=None), rules, config)
    blocker = next((c for c in NO_CLAIM_BLOCKERS if draft.gaps.has(c)), None)
    if blocker is None:  # pass 1 gave each missing piece its gap; a safety net all the same
        for code, value in (
            ("missing-patient", d.patient),
            ("missing-coverage", d.coverage),
            ("missing-billing-provider", d.provider),
        ):
            if value is None:
                blocker = code
                break
    held = blocker is not None or any(g.severity == "error" for g in gaps)
    outcome = "held" if held else "claim"
    status = None if blocker else ("active" if outcome == "claim" else "draft")
    decided = replace(d, outcome=outcome, gaps=gaps, claim_status=status, claim_blocker=blocker)
    return apply_filing_limit(decided, rules, config)


def decide_all(
    administrations: Iterable[Mapping], context: Context, rules: Rules, config: Config | None = None
) -> list[Decision]:
    """Decide every administration; same-day rules apply per patient and service date.

    Pass all of a patient's administrations for the days in question together,
    or the distinct-modifier, duplicate and MUE rules cannot see each other.
    Returns decisions in the order the administrations were given.
    """
    config = config or Config()
    drafts = [_decide_one(a, context, rules, config) for a in administrations]
    order = {id(draft): _sort_key(draft) for draft in drafts}  # each draft's key, worked out once

    def by_time(draft: Draft):
        return order[id(draft)]

    _duplicates(drafts, by_time, rules, config)
    _same_day(drafts, by_time, rules, config)
    return [_finish(draft, rules, config) for draft in drafts]


def _duplicates(drafts: list[Draft], by_time, rules: Rules, config: Config) -> None:
    """Same patient and identifier, or same patient/drug/dose/route/time: the later one is not
    billable. Another patient's dose is never a duplicate (a decision over several patients, as a
    server page is, finds what one patient's alone would)."""
    seen: dict = {}
    for draft in sorted(drafts, key=by_time):
        keys: list[tuple] = [("key", draft.duplicate_key)] if draft.duplicate_key else []
        patient = draft.decision.patient
        keys += [("identifier", patient, i) for i in draft.identifiers]
        if draft.decision.outcome == "void" or not keys:
            continue
        original = next((seen[k] for k in keys if k in seen), None)
        if original is not None and original is not draft:
            draft.gaps = Gaps(rules, config)
            draft.gaps.add("duplicate", f"Same as {original.decision.administration}")
            draft.decision = replace(
                draft.decision,
                outcome="not-billable",
                procedure=None,
                lines=(),
                drug=None,
                units=None,
            )
            continue
        for k in keys:
            seen.setdefault(k, draft)


def _same_day(drafts: list[Draft], by_time, rules: Rules, config: Config) -> None:
    """Same patient, same day: the distinct modifier on the 2nd and later injection; the MUE limit."""
    by_day: dict[tuple, list[Draft]] = defaultdict(list)
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
                draft.gaps.add(
                    "units-over-mue",
                    f"Injection {position + 1} of {len(group)} on {d.service_date}; "
                    f"MUE is {payer.mue_96372}",
                )
            if position >= 1:
                modifier = config.distinct_modifier.get(
                    d.payer_type or "commercial", payer.distinct_modifier
                )
                lines = tuple(
                    replace(line, modifiers=(*line.modifiers, modifier))
                    if line.kind == "administration"
                    else line
                    for line in d.lines
                )
                draft.decision = replace(d, lines=lines)


def decide(
    administration: Mapping, context: Context, rules: Rules, config: Config | None = None
) -> Decision:
    """Decide one administration on its own (no same-day rules across administrations)."""
    return decide_all([administration], context, rules, config)[0]


def decide_deleted(administration_id: str, patient_id: str | None = None) -> Decision:
    """An administration its source deleted (a Bulk Data ``deleted/`` entry): withdrawn, like one
    entered in error. Its Claim, if one was posted, is cancelled; there is nothing else to decide,
    as the record itself is gone (``patient_id`` when an earlier export held it)."""
    return replace(
        first_decision(f"MedicationAdministration/{administration_id}", None, outcome="void"),
        patient=f"Patient/{patient_id}" if patient_id else None,
    )
