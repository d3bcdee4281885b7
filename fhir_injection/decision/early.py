"""Pass 1, the services that are not a 96372 and the decisions that stop early: an IV push or
infusion, a route or service that is not billed, a product that is no injection, a 96372 inside a
facility's payment.
"""

from __future__ import annotations

from .billed_drug import drug_units
from .case import Case, Draft, cached_ref_key, first_decision, key_of
from .drug_tables import DoseFormCategory
from .infusion import iv_service
from .product_form import dose_form
from .ruleset import SC_IM

__all__ = [
    "inside_facility_payment",
    "intravenous_code",
    "not_an_injection",
    "not_an_injection_decision",
    "not_billed",
]


def intravenous_code(c: Case) -> tuple[str | None, str]:
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


def not_billed(c: Case) -> Draft:
    """A route that is no injection (oral, topical, ...) or an IV service that is not reported: nothing
    is billed, so no drug line and no documentation gaps (the engine keeps only the explanation)."""
    decision = first_decision(
        c.key,
        c.version,
        procedure=c.procedure,
        gaps=tuple(c.gaps.items),
        patient=c.patient_ref,
        encounter=cached_ref_key(c.encounter_ref) if c.encounter else None,
        payer_type=c.payer_type,
        service_date=c.when_date.isoformat() if c.when_date else None,
        effective=c.effective if isinstance(c.effective, str) else None,
        setting=c.setting,
        place_of_service=c.pos,
        basis=c.basis_items(),
        medication_text=c.med.text,
    )
    return Draft(c.admin, decision, c.when, None, c.identifiers, c.gaps)


def not_an_injection(c: Case) -> tuple[DoseFormCategory, str] | None:
    """With no route: the category of the product's dose form when it is not an injection (oral,
    transdermal, inhaled, implant, IUD...), with the gap's detail; None when it may be one, or when
    nothing says which."""
    found = dose_form(c.med, c.rules, c.dosage.get("dose")) if c.med.found else None
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


def inside_facility_payment(c: Case) -> Draft:
    """Given in an inpatient stay, a hospital outpatient department or ER: the facility bills it
    (an SC/IM injection as 96372, an IV push or infusion as its own code), so the decision stops
    here, before the route decides any professional administration code."""
    drug, units, _, _ = drug_units(c.med, c.dosage, c.rules, c.when_date)
    med = c.med
    # no route, and the dose form says it is no injection (a tablet on the ward): said so, and no drug
    form = not_an_injection(c) if c.route is None and med.vaccine is None else None
    if form is not None:
        c.gaps.add("dose-form-not-injectable", form[1])
        drug, units = None, None
    injection = (
        c.setting == "facility"
        and c.route in SC_IM
        and med.vaccine is None
        and not (med.drug is not None and med.drug.drug_class in c.rules.antineoplastic)
    )
    where = "encounter" if c.encounter is not None else f"(POS {c.pos})"
    if c.setting == "inpatient":
        c.gaps.add(
            "facility-setting", f"Inpatient {where}: administration is inside the DRG payment"
        )
    else:
        what = "bills 96372" if injection else "bills the administration"
        c.gaps.add(
            "facility-setting",
            f"Hospital outpatient/emergency {where}"
            + (f" (POS {c.pos})" if c.encounter is not None else "")
            + f": the facility {what} on its institutional claim",
        )
    decision = first_decision(
        c.key,
        c.version,
        # inpatient: inside the DRG, no administration code at all; hospital outpatient/ER: the
        # facility bills 96372 on its institutional claim (README decision rules, 96372.md 'Setting')
        procedure="96372" if injection else None,
        gaps=tuple(c.gaps.items),
        patient=c.patient_ref,
        encounter=key_of(c.encounter_ref, c.encounter),
        payer_type=c.payer_type,
        service_date=c.when_date.isoformat() if c.when_date else None,
        setting=c.setting,
        place_of_service=c.pos,
        basis=c.basis_items(),
        drug=drug.hcpcs if drug else None,
        units=units,
        medication_text=c.med.text,
    )
    return Draft(c.admin, decision, c.when, None, c.identifiers, c.gaps)


def not_an_injection_decision(c: Case) -> Draft:
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
    decision = first_decision(
        c.key,
        c.version,
        outcome=c.outcome,
        procedure=c.procedure,
        gaps=tuple(c.gaps.items),
        patient=c.patient_ref,
        encounter=key_of(c.encounter_ref, c.encounter),
        coverage=cached_ref_key(f"Coverage/{coverage['id']}") if coverage else None,
        payer_type=c.payer_type,
        service_date=c.when_date.isoformat() if c.when_date else None,
        effective=effective if isinstance(effective, str) else None,
        setting=c.setting,
        place_of_service=c.pos,
        basis=c.basis_items(),
        drug=drug.hcpcs if drug else None,
        units=units,
        medication_text=med.text,
    )
    return Draft(c.admin, decision, c.when, None, c.identifiers, c.gaps)
