"""Pass 1, the erythropoiesis-stimulating agent step of a Medicare ESA drug line, whatever the
administration code that goes with it (a 96372, an IV push 96374, an infusion 96365: CMS CR 5699
is about the ESA's line and names none; 42 CFR 413.171): an ESA "for ESRD on dialysis" is in the
dialysis facility's ESRD PPS bundle, not billed by the office; any other ESA line carries EA, EB or
EC by the anemia's cause and the most recent hemoglobin or hematocrit before the dose. Codes,
modifiers and readings are mappings/ rows (esa.csv, modifiers.csv, diagnosis_groups.csv,
esa_labs.csv)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from ..fhir.resources import MAPPING
from .case import Case
from .diagnosis_codes import diagnosis_rule_holds
from .drug_line import writes_drug_line
from .elements import as_date, codings, parse_time
from .model import EsaReading

__all__ = ["latest_reading", "step_esa"]

#: Observation statuses whose value is a result (FHIR R4 ObservationStatus)
_RESULT_STATUSES = ("final", "amended", "corrected")


def step_esa(c: Case) -> None:
    """The ESA rules of a Medicare drug line (a drug esa.csv lists; other payers: nothing), on every
    drug line the engine writes (:func:`.drug_line.writes_drug_line`): the ESRD bundle makes the
    administration not billable whatever its code, as the drug is the dialysis facility's."""
    drug = c.drug
    if drug is None or not writes_drug_line(c) or c.payer_type != "medicare":
        return
    esrd = c.rules.esa.get(drug.hcpcs)
    if esrd is None:
        return
    if esrd:
        c.outcome = "not-billable"
        c.gaps.add(
            "esa-esrd-bundle",
            f"{drug.hcpcs} is the code for ESRD on dialysis (the patient's diagnoses say ESRD on "
            "dialysis, or the product is coded so)",
        )
        return
    if c.diagnoses or c.coded_diagnoses:  # without any diagnosis missing-diagnosis holds it
        rules = c.rules.diagnosis_rules
        if diagnosis_rule_holds(c.coded_diagnoses, rules["esa-chemotherapy"]):
            use = "esa-chemotherapy"
        elif diagnosis_rule_holds(c.coded_diagnoses, rules["esa-radiotherapy"]):
            use = "esa-radiotherapy"
        else:
            use = "esa-neither"
        modifier = c.rules.modifiers[use]
        if modifier.in_force(c.when_date):
            c.modifiers.append(modifier.code)
    c.lab, problem = latest_reading(c)
    if c.lab is None:
        c.gaps.add("missing-esa-lab", problem)


def latest_reading(c: Case) -> tuple[EsaReading | None, str]:
    """The most recent hemoglobin or hematocrit (esa_labs.csv) taken before the dose, with a
    value; else None and what the record has instead."""
    labs = {(lab.system, lab.code): lab for lab in c.rules.esa_labs}
    when = c.when
    best: tuple[datetime | date, EsaReading] | None = None
    seen = 0
    for obs in c.ctx.for_patient("Observation", c.patient_id):
        lab = next(
            (
                labs[key]
                for x in codings(obs.get("code"))
                if (key := (x.get("system"), x.get("code"))) in labs
            ),
            None,
        )
        if lab is None or obs.get("status") not in _RESULT_STATUSES:
            continue
        seen += 1
        written = obs.get("effectiveDateTime")
        if written is None and isinstance(obs.get("effectivePeriod"), MAPPING):
            written = obs["effectivePeriod"].get("start")
        taken = parse_time(written)
        if taken is None or when is None or not _before(taken, when):
            continue
        if lab.max_days is not None and (as_date(when) - as_date(taken)).days > lab.max_days:
            continue
        quantity = obs.get("valueQuantity")
        if not isinstance(quantity, MAPPING):
            continue
        try:
            value = Decimal(str(quantity.get("value")))
        except InvalidOperation:
            continue
        if not value.is_finite():
            continue
        unit = quantity.get("unit") or quantity.get("code")
        reading = EsaReading(
            f"Observation/{obs.get('id')}",
            lab.system,
            lab.code,
            lab.display,
            lab.reading,
            value,
            unit if isinstance(unit, str) else None,
            str(written),
        )
        if best is None or _before(best[0], taken):
            best = (taken, reading)
    if best is not None:
        return best[1], ""
    names = " or ".join(f"{lab.reading} ({lab.system}|{lab.code})" for lab in c.rules.esa_labs)
    if seen:
        return None, (
            f"The patient's {seen} {names} Observation(s) are none of them a result with a value "
            "taken before the dose"
        )
    return None, f"No {names} Observation for the patient"


def _before(a: datetime | date, b: datetime | date) -> bool:
    """Whether ``a`` is at or before ``b``; a date alone is compared as a date."""
    if (
        isinstance(a, datetime)
        and isinstance(b, datetime)
        and (a.tzinfo is None) == (b.tzinfo is None)
    ):
        return a <= b
    return as_date(a) <= as_date(b)
