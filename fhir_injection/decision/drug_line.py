"""The HCPCS drug line of a decision: whether it is written (:func:`writes_drug_line`), the NDC
it needs, JW or JZ on a single-dose container (CMS JW/JZ policy) with the line of the units
discarded, the line itself, and where its container came from.
"""

from __future__ import annotations

import dataclasses

from .billed_drug import container_units, ndc_quantity
from .case import Case, replace
from .drug_tables import Drug, Package
from .model import Line
from .ruleset import SYSTEM_HCPCS
from .units import DoseError

__all__ = [
    "apply_jw_jz",
    "container_basis",
    "drug_lines",
    "line_package",
    "require_ndc",
    "writes_drug_line",
]


def writes_drug_line(c: Case) -> bool:
    """Whether the decision carries the administration's HCPCS drug line: on a 96372 (its outcome
    still open), and on another administration code the practice bills itself (``not-96372`` with
    its code: an IV push 96374, an infusion 96365, chemotherapy 96401/96409/96413, an
    intra-articular 20610...), whose drug is the same separately payable Part B drug whatever code
    goes with it (CMS JW/JZ policy, IOM 100-04 ch.17 s40). None where the drug is not separately
    billed by the practice: a facility's or inpatient administration, one not billed, hydration
    fluid (no drug line), a vaccine (its product is a CPT code of the vaccine gap, no drug line; CMS
    JW/JZ FAQ: the modifiers are not required for the vaccines of SSA s1861(s)(10)), a device
    inserted whole (those decisions stop before this step), or a code not asserted (no route)."""
    if c.drug is None or c.med.vaccine is not None:
        return False
    return c.outcome is None or (c.outcome == "not-96372" and c.procedure is not None)


def require_ndc(c: Case, drug: Drug) -> None:
    """The NDC a drug line needs, whatever its administration code: a payer that wants it on every
    physician-administered drug line (Medicaid: Deficit Reduction Act 2005, SSA s1927(a)(7), 42 CFR
    447.520; payers.csv requires_ndc), and every payer on a not-otherwise-classified code (J3490,
    J3590, J9999: CGS Medicare NOC instructions, priced from the drug's name, NDC and dose)."""
    if not c.med.found or c.med.ndc is not None:
        return
    if c.payer.requires_ndc:
        c.gaps.add("missing-ndc", f"{c.payer_type} requires the NDC")
    elif drug.unit_status == "noc":
        c.gaps.add(
            "missing-ndc",
            f"{drug.hcpcs} is a not-otherwise-classified code: the payer prices it from the "
            "drug's name, NDC and dose on the line, and returns it without the NDC",
        )


def apply_jw_jz(c: Case, drug: Drug) -> None:
    """JW or JZ on a single-dose container (the container's kind from packages.csv or the CMS ASP
    crosswalk's NDC row, else drugs.csv; a drug whose products come in both kinds, drugs.csv
    "varies", only by its container; a separately payable Part B drug of the crosswalk that
    drugs.csv does not call single-dose, only by its container: unknown is a gap): the
    waste-line modifier (JW) on a line of its own for the units discarded (the containers opened
    less the dose), the nothing-discarded one (JZ) when nothing is, each from its effective date
    (mappings/modifiers.csv); with the container's size or kind unknown, a gap instead of a guess.
    The practice's [containers] profile (:func:`_practice_container`) gives the kind where no NDC
    row does, before drugs.csv's code-level single_dose; never the size."""
    package = c.med.package
    container = package.container if package is not None else None
    practice = _practice_container(c, drug) if container is None else None
    if practice is not None:
        container = practice[0]
    if container is not None:
        if container != "single-dose":
            return
    elif not (drug.single_dose or drug.varies):
        if drug.unit_amount is not None and drug.hcpcs in c.rules.crosswalk_hcpcs:
            # a separately payable Part B drug (the CMS ASP crosswalk lists its code): JW/JZ apply
            # to it from a single-dose container, and nothing says which kind this one was
            c.gaps.add(
                "missing-package-size",
                f"{drug.hcpcs} is a separately payable Part B drug (CMS ASP NDC-HCPCS crosswalk) "
                + (
                    f"and the container ({package.amount} {package.unit}, {package.source}) is "
                    if package is not None
                    else "and its container is "
                )
                + "not known to be single-dose or multi-dose (the container decides JW/JZ)",
            )
        return
    if drug.unit_amount is None:
        return  # billed per item (J3490, devices): nothing to divide
    if package is None:
        c.gaps.add(
            "missing-package-size",
            f"{drug.hcpcs} is single-dose ({practice[1]}) and its size is not known (no "
            "packages.csv, crosswalk or Medication.amount size): JW units cannot be worked out"
            if practice is not None
            else f"{drug.hcpcs} comes in single-dose and multi-dose containers and the one used is "
            "not known (the container decides JW/JZ)"
            if drug.varies
            else f"{drug.hcpcs} comes in single-dose containers of a size not known",
        )
        return
    if container is None and drug.varies:
        c.gaps.add(
            "missing-package-size",
            f"The container ({package.amount} {package.unit}, {package.source}) is not known to be "
            f"single-dose or multi-dose, and {drug.hcpcs} comes in both",
        )
        return
    if c.units is None or c.dose is None:
        return  # the dose is missing: its own gap says so, and no JW/JZ can be worked out
    try:
        opened = container_units(drug, package, c.dose, c.med.strength)
    except DoseError as exc:
        c.gaps.add(
            "missing-package-size",
            f"The container ({package.amount} {package.unit}, {package.source}): {exc}",
        )
        return
    modifiers = c.rules.modifiers
    c.discarded = max(0, opened - c.units)
    if c.discarded:
        if modifiers["waste-line"].in_force(c.when_date):
            c.waste = c.discarded
    elif (jz := modifiers["nothing-discarded"]).in_force(c.when_date):
        c.modifiers.append(jz.code)


def _practice_container(c: Case, drug: Drug) -> tuple[str, str] | None:
    """The container kind the practice's profile (Config.containers, README "Configuration"
    [containers]) gives the drug line, and the key that gave it, in words: the NDC's before the
    HCPCS code's. None when the profile names neither."""
    profile = c.config.containers
    if not profile:
        return None
    if c.med.ndc is not None and c.med.ndc in profile:
        return profile[c.med.ndc], f"[containers] NDC {c.med.ndc}"
    if drug.hcpcs in profile:
        return profile[drug.hcpcs], f"[containers] {drug.hcpcs}"
    return None


def drug_lines(c: Case) -> tuple[Line, ...]:
    """The drug line, and the JW line of the units discarded when there are any (none: no drug)."""
    drug = c.drug
    if drug is None:
        return ()
    drug_line = _drug_line(c, drug)
    if not c.waste:
        return (drug_line,)
    waste = replace(
        drug_line,
        kind="waste",
        modifiers=(c.rules.modifiers["waste-line"].code,),
        quantity=c.waste,
        ndc=None,
        ndc_quantity=None,
        ndc_unit=None,
    )  # discarded: the drug line's, which is the waste (a waste line only while JW is in force)
    return (drug_line, waste)


def _drug_line(c: Case, drug: Drug) -> Line:
    """The HCPCS drug line: billing units, the NDC with its quantity, and for J3490 the drug's name
    and dose. Priced (fee_schedule.csv) on a 96372 Claim only: the estimates are of the Claims the
    engine writes, and another administration code's own fee is not estimated either."""
    dose, med = c.dose, c.med
    fee = c.rules.fee(drug.hcpcs, c.setting) if c.outcome is None else None
    text = None
    if drug.unit_status == "noc":  # J3490, J9999: the payer reads the drug from the line's note
        text = " ".join(filter(None, [med.text, f"{dose[0]} {dose[1]}" if dose else None])) or None
    ndc_qty, ndc_unit = ndc_quantity(med, dose, c.rules)
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
        c.discarded,
    )


def container_basis(c: Case) -> None:
    """Where the drug line's container (its size and single- or multi-dose kind) came from."""
    package, drug = c.med.package, c.drug
    if drug is None or not writes_drug_line(c):
        return
    practice = (
        _practice_container(c, drug) if package is None or package.container is None else None
    )
    if practice is not None:  # the practice's profile gave the kind; the size is the record's
        kind, key = practice
        size = (
            f"{package.amount} {package.unit} ({package.source})"
            if package is not None
            else "size not known"
        )
        c.known("container", "practice", f"{kind} ({key}), {size}")
    elif package is not None:
        kind = "record" if package.source == "Medication.amount" else "rule"
        what = package.container or "kind not known"
        c.known("container", kind, f"{package.amount} {package.unit}, {what} ({package.source})")
    elif drug.varies:
        c.known("container", "unknown", f"{drug.hcpcs} comes in both kinds; none named")
    elif drug.single_dose:
        c.known("container", "rule", f"{drug.hcpcs} single-dose, size not known (drugs.csv)")
    else:
        c.known("container", "rule", f"{drug.hcpcs} multi-dose or not a container (drugs.csv)")


def line_package(c: Case) -> Package | None:
    """The container the drug line's dose came from, as the Claim and the report show it: the
    record's or a table's, with the kind the practice's profile ([containers]) gives where none of
    them did (:func:`_practice_container`, the basis ``practice``), and the key that gave it."""
    package, drug = c.med.package, c.drug
    if package is None or package.container is not None or drug is None:
        return package
    practice = _practice_container(c, drug)
    if practice is None:
        return package
    return dataclasses.replace(package, container=practice[0], kind_source=practice[1])
