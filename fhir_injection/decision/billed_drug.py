"""The drug as the drug line bills it: the HCPCS code in force on the service date (by salt and
size within a family, mappings/code_changes.csv, code_starts.csv), its billing units from the dose
or the containers opened, and the NDC quantity.

:func:`drug_units` turns the dose into HCPCS billing units; :func:`ndc_quantity` into the NDC
quantity and unit of the drug line.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from functools import lru_cache

from .drug_tables import Drug, DrugFamily, Package
from .medication import Medication, name_words
from .product_form import product_dose_form
from .ruleset import Rules
from .units import MAX_DOSE, DoseError, billing_units, ceiling, convert, quantity_amount, unit_of

__all__ = [
    "container_units",
    "current_code",
    "drug_units",
    "ndc_quantity",
]


def drug_units(
    med: Medication, dosage: Mapping, rules: Rules, when: date | None = None
) -> tuple[Drug | None, int | None, tuple[Decimal, str] | None, list[tuple[str, str]]]:
    """(HCPCS drug, billing units, dose, [(gap code, detail)]) for the drug line, on the service
    date ``when`` (a code CMS ended then is its successor's, in the successor's billing unit)."""
    problems: list[tuple[str, str]] = []
    units = None
    drug = med.drug
    entry = med.crosswalk
    if (
        entry is not None
        and when is not None
        and drug is not None
        and len(entry.hcpcs) == 1
        and drug.hcpcs == entry.hcpcs[0]
        and (first := entry.effective[0]) is not None
        and when < first
    ):
        # the crosswalk's code did not exist on the service date: the code the other codes named
        drug = med.drug_before_crosswalk
    if med.found and drug is None and med.vaccine is None:
        drug = rules.drugs["J3490"]
        problems.append(
            (
                "unmapped-medication",
                "No RxNorm, NDC or HCPCS code of the drug is in mappings/: J3490",
            )
        )
    elif med.by_name and drug is not None:
        problems.append(
            ("unmapped-medication", f"Matched to {drug.hcpcs} by drug name only, not by code")
        )
    dose = quantity_amount(dosage.get("dose"))
    family = rules.drug_families.get(drug.hcpcs) if drug is not None else None
    if family is not None and med.vaccine is None:
        drug, ambiguous = _family_member(med, family, dose, rules)
        if ambiguous:
            problems.append(("ambiguous-drug-code", ambiguous))
    if drug is not None and drug.hcpcs in rules.code_changes:
        drug = current_code(drug, med.ndc, when, rules)
    start = rules.code_starts.get(drug.hcpcs) if drug is not None else None
    if start is not None and when is not None and when < start.added:
        drug = rules.drugs[start.before]  # the code did not exist yet (code_starts.csv)
    implausible = (
        dose is not None and (dim := unit_of(dose[1])) is not None and dose[0] * dim[1] > MAX_DOSE
    )
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
            problems.append(
                ("missing-dose", "dosage.dose is not a positive amount in a known unit")
            )
        elif drug is not None and drug.unit_status == "unparsed":
            problems.append(
                (
                    "missing-dose",
                    f"{drug.hcpcs}'s billing unit ('{drug.description}') is not a mass, volume or "
                    "unit amount: code its units by hand",
                )
            )
        elif drug is not None:
            # unclassified (J3490), per item: one unit; the amount travels as the NDC quantity
            units = 1
    if implausible:
        dose = None  # never carried onto a Claim (NDC quantity, drug text)
    return drug, units, dose, problems


def current_code(drug: Drug, ndc: str | None, when: date | None, rules: Rules) -> Drug:
    """The code in force on the service date ``when`` (mappings/code_changes.csv): an ended code's
    successor from its first day (the product's own, by NDC, before the general one), else the code
    itself. Without a service date, the current code: the successor."""
    for change in rules.code_changes[drug.hcpcs]:
        if change.ndc is not None and change.ndc != ndc:
            continue
        if when is None or when >= change.effective:
            return rules.drugs[change.new]
        return drug
    return drug


def _family_member(
    med: Medication, family: DrugFamily, dose: tuple[Decimal, str] | None, rules: Rules
) -> tuple[Drug | None, str | None]:
    """(the family's code for this product and dose, None) or (None, why it is ambiguous).

    The salt is the mapped product's (drug_codes.csv ``salt``), else the one whose words the
    medication's text or displays name ("methylprednisolone acetate", "Solu-Medrol"); a family of
    one salt needs neither. Within the salt, the smallest size that holds the dose (80 mg of
    methylprednisolone acetate: J1040 x 1, not J1030 x 2); above the largest, the largest.
    """
    salts = family.salts
    code = med.drug_code
    salt = code.salt if code is not None and code.salt in salts else None
    if salt is None and len(salts) > 1:
        names = " ".join(
            filter(
                None,
                [med.text]
                + [c.get("display") for c in med.codings if isinstance(c.get("display"), str)],
            )
        )
        haystack = name_words(names)
        named = [m.salt for m in family.members if any(f" {w} " in haystack for w in m.salt_words)]
        found = tuple(dict.fromkeys(named))
        if len(found) != 1:
            return None, (
                f"{family.name}: the code depends on the salt ("
                + "; ".join(
                    f"{s} " + "/".join(m.hcpcs for m in family.members if m.salt == s)
                    for s in salts
                )
                + ") and "
                + ("the product names more than one" if found else "only the ingredient is known")
            )
        salt = found[0]
    members = [m for m in family.members if m.salt == (salt or salts[0])]
    chosen = members[-1]
    amount = None
    if dose is not None and chosen.unit is not None:
        try:
            amount = convert(dose[0], dose[1], chosen.unit, med.strength)
        except DoseError:
            amount = None  # the units step says why the dose cannot be billed
    if amount is not None:
        chosen = next((m for m in members if m.size is not None and amount <= m.size), chosen)
    elif med.drug is not None and any(m.hcpcs == med.drug.hcpcs for m in members):
        chosen = next(m for m in members if m.hcpcs == med.drug.hcpcs)
    return rules.drugs[chosen.hcpcs], None


#: billing_units for the usual few doses of each drug, worked out once (a dose error is not kept:
#: it is raised again each time, with its own message)
_billing_units = lru_cache(maxsize=4096)(billing_units)


def ndc_quantity(med: Medication, dose, rules: Rules) -> tuple:
    """(quantity, unit) of the NDC on the drug line; (None, None) without NDC or dose.

    The unit (NCPDP billing unit standard, mappings/ndc_units.csv), the first that applies: the
    product's strength (mass or units per volume: a liquid, ML, the volume given); its dose form (an
    RxNorm "Injection" without a per-volume strength is a powder vial: UN, the containers opened);
    the dose's own unit (volume ML, mass GR in grams, units F2).
    """
    if not (med.ndc and dose):
        return None, None
    table = rules.ndc_units
    strength = med.strength
    if strength is not None:
        num, den = unit_of(strength[1]), unit_of(strength[3])
        kind = f"{num[0]}/{den[0]}" if num and den else None
        unit = table.get(("strength", kind)) if kind else None
        if unit == "ML":
            try:
                return convert(dose[0], dose[1], "mL", strength), "ML"
            except DoseError:
                pass  # a dose the strength cannot turn into mL: the dose's own unit below
    form = product_dose_form(med, rules)
    unit = table.get(("dose-form", form[0].name.lower())) if form else None
    if unit == "UN":
        return _containers(med.package, dose), "UN"
    dim = unit_of(dose[1])
    unit = table.get(("dose-unit", dim[0])) if dim else None
    if unit == "ML":
        return dose[0] * dim[1], "ML"  # type: ignore[index]
    if unit == "GR":
        return dose[0] * dim[1] / 1000, "GR"  # type: ignore[index]
    if unit == "F2":
        return dose[0] * dim[1], "F2"  # type: ignore[index]
    return dose[0], "UN"


def _containers(package: Package | None, dose) -> Decimal:
    """How many containers a dose opens (1 when the container's size is not known)."""
    if package is None:
        return Decimal(1)
    try:
        return Decimal(max(1, ceiling(convert(dose[0], dose[1], package.unit) / package.amount)))
    except DoseError:
        return Decimal(1)


def container_units(drug: Drug, package: Package, dose: tuple[Decimal, str], strength) -> int:
    """The billing units of the containers a dose opens: ceil(dose ÷ container) containers of the
    package's size, in the drug's billing unit (a 1 g vial of J0696, per 250 mg: 4). Raises
    :class:`DoseError` when the dose or the container cannot be converted."""
    assert drug.unit_amount is not None and drug.unit is not None
    opened = max(1, ceiling(convert(dose[0], dose[1], package.unit, strength) / package.amount))
    return billing_units(
        package.amount * opened, package.unit, drug.unit_amount, drug.unit, strength
    )
