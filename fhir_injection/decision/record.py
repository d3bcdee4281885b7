"""Pass 1, the first steps: what one administration is, from its own record and what it points to
(patient, medication, route, encounter and setting, local time, procedure, coverage and payer).
"""

from __future__ import annotations

from ..fhir.resources import MAPPING, shown_reference
from .case import Case, key_of
from .clinical import active_coverage, payer_type_of, route_of
from .diagnosis_codes import diagnosis_rule_holds, rule_diagnoses
from .early import intravenous_code, not_an_injection
from .elements import as_date
from .localtime import clinic_zone, local
from .medication import crosswalk_entry, resolve_medication
from .product_form import product_dose_form
from .ruleset import IV_ONLY_CATEGORY, IV_ROUTES, SC_IM
from .setting import encounter_and_setting

__all__ = [
    "step_coverage_and_payer",
    "step_crosswalk_release",
    "step_encounter_and_setting",
    "step_local_time",
    "step_medication",
    "step_patient",
    "step_procedure",
    "step_route",
]


def step_patient(c: Case) -> None:
    """The Patient that subject points to."""
    subject = c.refs.subject
    patient = c.ctx.get(subject, "Patient", c.admin)
    c.patient_ref = key_of(subject, patient)
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


def step_medication(c: Case) -> None:
    c.med = resolve_medication(c.admin, c.refs, c.ctx, c.rules)
    if not c.med.found:
        c.gaps.add("missing-medication", c.med.reason)


def step_route(c: Case) -> None:
    c.dosage = value if isinstance(value := c.admin.get("dosage"), MAPPING) else {}
    c.route, c.route_problem, from_text = route_of(c.dosage, c.rules)
    c.iv, c.additional = None, ()
    if from_text and c.route_problem:
        c.gaps.add("route-from-text", c.route_problem[:1].upper() + c.route_problem[1:])


def step_encounter_and_setting(c: Case) -> None:
    """The Encounter the administration names, or the one of the patient's whose period contains it,
    and the setting and place of service from the place (:mod:`.setting`)."""
    encounter_and_setting(c)


def step_local_time(c: Case) -> None:
    """The clinic's zone (:mod:`.localtime`) and the administration's time as its wall time: every
    date taken from an instant (service date, coverage, consent, E/M, the encounter check) is local."""
    c.zone = zone = clinic_zone(c.when, c.encounter, c.encounter_refs, c.ctx, c.config)
    c.local = local(c.when, zone)
    if c.local is None:
        c.known("service_date", "unknown", "effective[x] is missing or not a date")
    elif c.config.timezone:
        c.known("service_date", "practice", f"effective[x] as a day in {c.config.timezone}")
    else:
        c.known("service_date", "record", "effective[x] in its own time zone")


def step_crosswalk_release(c: Case) -> None:
    """The CMS ASP NDC-HCPCS crosswalk release for the date of service (:func:`crosswalk_entry`):
    the medication was read with the newest release that lists its NDC; an older release in force
    on the date of service reads it again (its code, its package), and the basis says which release
    and why."""
    med = c.med
    if med.crosswalk is None or not med.ndc:
        return
    day = as_date(c.local) if c.local is not None else None
    entry, why = crosswalk_entry(c.rules, med.ndc, day)
    if entry is None:
        return
    if entry is not med.crosswalk:
        c.med = resolve_medication(c.admin, c.refs, c.ctx, c.rules, day)
    first, last = entry.release
    c.known(
        "crosswalk_release",
        "rule",
        f"CMS ASP NDC-HCPCS crosswalk {first} to {last} (ndc_hcpcs.csv)"
        + (f": {why}" if why else ": in force on the date of service"),
    )


def step_procedure(c: Case) -> None:
    """96372, or not: a vaccine, a product that is no injection (no route, and its dose form says so),
    an anti-neoplastic drug, a route other than SC/IM (the setting comes later)."""
    med, route, rules, gaps = c.med, c.route, c.rules, c.gaps
    if med.drug is not None and med.drug.hcpcs in rules.drug_by_diagnosis:
        _drug_by_diagnosis(c)
        med = c.med  # a copy with the diagnosis's drug
    procedure: str | None = "96372"
    outcome: str | None = None  # decided at the end for the 96372 path
    # a coded route always decides; the dose form only when there is none (or none that is known)
    form = not_an_injection(c) if route is None and med.vaccine is None else None
    c.not_injection = None
    if med.vaccine is not None:
        procedure, outcome = None, "not-96372"
    elif form is not None and form[0].outcome == "not-billable":  # oral methotrexate too: no 96401
        procedure, outcome, c.not_injection = None, "not-billable", form[0]
        gaps.add("dose-form-not-injectable", form[1])
    elif (
        med.drug is not None
        and med.drug.drug_class in rules.antineoplastic
        and (route in SC_IM or (route is None and form is not None))
    ):
        # SC/IM, or no route and a dose form that is inserted under the skin (a hormonal implant,
        # as goserelin: 96402)
        procedure, outcome = rules.antineoplastic[med.drug.drug_class], "not-96372"
        gaps.add(
            "antineoplastic",
            f"{med.drug.hcpcs} is {med.drug.drug_class.replace('-', ' ')}: bill {procedure}",
        )
    elif med.drug is not None and med.drug.drug_class in rules.antineoplastic and route is None:
        # the chemotherapy administration code follows the route (SC/IM 96401/96402, IV push
        # 96409, infusion 96413): with none documented no code is asserted, and it is held
        procedure, outcome = None, "held"
        sc_im = rules.antineoplastic[med.drug.drug_class]
        gaps.add(
            "antineoplastic",
            f"{med.drug.hcpcs} is {med.drug.drug_class.replace('-', ' ')}: its administration "
            f"code follows the route ({sc_im} SC/IM; IV push or infusion: the chemotherapy codes "
            "of mappings/infusions.csv)",
        )
        gaps.add("missing-route", c.route_problem)
    elif form is not None:
        # an implant or IUD: its insertion code (a hormonal anti-neoplastic implant kept 96402 above)
        procedure, outcome, c.not_injection = form[0].procedure_code, "not-96372", form[0]
        gaps.add("dose-form-not-injectable", form[1])
    elif route in IV_ROUTES:
        procedure, outcome = intravenous_code(c)
    elif route is not None and route not in SC_IM:
        proc = rules.procedures[route]
        procedure, outcome = proc.code, proc.outcome
        gaps.add(
            "route-not-sc-im", f"Route is {route}" + (f": {proc.code} applies" if proc.code else "")
        )
    elif route is None:
        gaps.add("missing-route", c.route_problem)
    if route in SC_IM and med.vaccine is None and procedure is not None:
        conflict = _iv_only(c)
        if conflict is not None:
            # an SC/IM code for a product that can only go into a vein: the record is wrong somewhere
            gaps.add("route-conflicts-dose-form", conflict)
            if outcome == "not-96372":  # a chemotherapy code: not asserted, held like a 96372
                procedure, outcome = None, "held"
    c.procedure, c.outcome = procedure, outcome


def _iv_only(c: Case) -> str | None:
    """Why the product is for intravenous use only (its dose form's category, IV_ONLY_CATEGORY), or None."""
    found = product_dose_form(c.med, c.rules) if c.med.found else None
    if found is None or found[0].category != IV_ONLY_CATEGORY:
        return None
    form, where = found
    return (
        f"Route is {c.route}, but the dose form in {where} is '{form.name}' (intravenous use only)"
    )


def _drug_by_diagnosis(c: Case) -> None:
    """A drug whose code depends on why it is given (mappings/drug_by_diagnosis.csv): leuprolide for
    cancer J9217 (96402) else J1950 (96372); epoetin alfa for ESRD on dialysis J0886 else J0885.
    Without any diagnosis the product's own code stays (and missing-diagnosis says why)."""
    assert c.med.drug is not None
    pair = c.rules.drug_by_diagnosis[c.med.drug.hcpcs]
    found = c.diagnoses_read().coded
    if found:  # ICD-10-CM or SNOMED CT (diagnosis_groups.csv lists both)
        holds = diagnosis_rule_holds(found, c.rules.diagnosis_rules[pair.rule])
        c.med = c.med.copy()  # the resolved medication is shared by the product's administrations
        c.med.drug = c.rules.drugs[pair.hcpcs_if if holds else pair.hcpcs_else]


def step_coverage_and_payer(c: Case, vaccine: bool = True) -> None:
    """The Coverage in force on the day and its payer type (a vaccine's administration code depends
    on it; not worked out when ``vaccine`` is False: a facility bills it)."""
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
    if vaccine and c.med.vaccine is not None:
        _vaccine(c, payer_type)


def _vaccine(c: Case, payer_type: str | None) -> None:
    """A vaccine's administration code (vaccine_admin.csv: payer type and group, then any payer and
    the group, then the payer type, then the default) and, for a Medicare patient, whether Part B
    covers it: by its group, or by a diagnosis rule (a tetanus vaccine given for an injury, MBPM
    ch.15 §50.4.4.2); otherwise it is Part D, never a Part B claim."""
    v, rules = c.med.vaccine, c.rules
    assert v is not None
    payer = payer_type or "commercial"
    admin_codes = rules.vaccine_admin
    c.procedure = (
        admin_codes.get((payer, v.group))
        or admin_codes.get(("*", v.group))
        or admin_codes.get((payer, "*"))
        or admin_codes[("*", "*")]
    )
    product = f"product {v.product_code}" if v.product_code else "product not named by the record"
    why = ""
    if payer_type == "medicare" and not v.medicare_part_b:
        found = []
        if v.part_b_rule is not None:
            codes = c.diagnoses_read()
            found = rule_diagnoses(codes.codes, rules.diagnosis_rules[v.part_b_rule])
        if not found:
            # Part D: billed to the patient's drug plan, never on a Part B claim
            c.procedure, c.outcome = None, "not-billable"
            c.gaps.add("vaccine", f"CVX {v.cvx} ({v.display}, {product})")
            routine = (
                f"; no {v.part_b_rule} diagnosis on the administration or its encounter, so it is "
                "routine"
                if v.part_b_rule
                else ""
            )
            c.gaps.add("vaccine-part-d", f"CVX {v.cvx} ({v.display}){routine}")
            return
        c.lead_diagnoses = tuple(found)
        shown = ", ".join(str(d.code) for d in found)
        why = f"; Medicare Part B: given for the {v.part_b_rule} {shown}, the diagnosis pointed to"
    if not v.product_code:
        why += "; code the product (CPT) from the vial, its NDC or lot"
    c.gaps.add("vaccine", f"CVX {v.cvx} ({v.display}, {product}): bill {c.procedure}{why}")
