"""IV push or infusion, and which one: the code of an intravenous administration.

CPT: an IV push is an injection, or an infusion of 15 minutes or less; longer is an infusion, whose
code depends on what runs in (therapeutic drug 96365, hydration fluid 96360, chemotherapy 96413), with
an add-on code for each further hour. Every code and time limit comes from ``mappings/infusions.csv``;
what says push or infusion besides the clock (method codes and texts, duration extensions) from
``mappings/iv_methods.csv``; which products are hydration fluid from ``mappings/hydration.csv``.

The duration, in this order: ``effectivePeriod``; an infuse-over-time extension (Oracle Health);
the dose volume over the rate. A known duration decides push or infusion; without one, the method,
a rate, the route text and the route code do, in that order.

``dosage.text`` may give the IV's own time or say push (phrases of ``mappings/iv_text.csv``: "IV
over 2-5 minutes", "slow IV push"). It is read when nothing else gives a duration, and a push it
says outweighs a longer ``effectivePeriod``: the FHIR R4 lorazepam example (0307) charts a 10-hour
period around a push given "IV over 2-5 minutes". A method that says infusion still wins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from ..fhir.resources import MAPPING
from .elements import as_list, codings, parse_time
from .medication import Medication
from .procedure_tables import Infusion
from .ruleset import Rules, normal_text
from .units import quantity_amount, unit_of

__all__ = [
    "ANTINEOPLASTIC",
    "IvService",
    "additional_hours",
    "duration_minutes",
    "is_hydration",
    "iv_service",
    "text_says",
]

#: UCUM time units (and the spellings real data uses) in minutes
_MINUTES: dict[str, Decimal] = {
    "s": Decimal(1) / 60,
    "sec": Decimal(1) / 60,
    "min": Decimal(1),
    "mins": Decimal(1),
    "minute": Decimal(1),
    "minutes": Decimal(1),
    "h": Decimal(60),
    "hr": Decimal(60),
    "hrs": Decimal(60),
    "hour": Decimal(60),
    "hours": Decimal(60),
}
_RATE_UNIT = re.compile(r"^\s*(?P<volume>[a-zA-Z]+)\s*/\s*(?P<time>[a-zA-Z]+)\s*$")
_WORDS = re.compile(r"[a-z0-9][a-z0-9\-]*")
_PARTS = re.compile(r"\s+(?:\+|/|in|with|and)\s+")
ANTINEOPLASTIC = frozenset({"antineoplastic", "antineoplastic-hormonal"})


class IvService:
    """What an IV administration is: technique, kind, duration and the code (None: not reported)."""

    __slots__ = ("technique", "kind", "minutes", "row", "addon_units", "basis")

    def __init__(self, technique, kind, minutes, row, addon_units, basis):
        self.technique: str = technique  # push | infusion
        self.kind: str = kind  # therapeutic | hydration | chemotherapy
        self.minutes: int | None = minutes  # the duration, when the record gives it
        self.row: Infusion | None = row  # the code; None when the service is not reported
        self.addon_units: int = addon_units  # add-on hours (row.addon_code)
        self.basis: str = basis  # what decided push or infusion, for the coder's message


def iv_service(
    admin: Mapping, dosage: Mapping, route: str, med: Medication, rules: Rules
) -> IvService:
    """The IV code of an administration whose route category is intravenous (push, infusion or either)."""
    kind = "therapeutic"
    if med.drug is not None and med.drug.drug_class in ANTINEOPLASTIC:
        kind = "chemotherapy"
    elif is_hydration(med, rules):
        kind = "hydration"
    minutes, duration_from = duration_minutes(admin, dosage, rules)
    # the loader makes sure the therapeutic push row has max_minutes (CPT: 15)
    push = rules.infusions.get((kind, "push")) or rules.infusions[("therapeutic", "push")]
    limit = push.max_minutes or 0
    said = text_says(dosage, rules, limit)
    if said is not None and (minutes is None or (said[0] == "push" and minutes > limit)):
        # the push's own time (or "slow IV push") outweighs a period charted around it (a shift)
        technique, text_minutes, phrase = said
        if technique == "push" and _method_says(dosage, rules) == "infusion":
            technique, basis = _technique_without_time(dosage, route, rules)
        else:
            basis = f"dosage.text '{phrase}'" + (
                f"; effectivePeriod ({minutes} min) is not the push's own time"
                if minutes is not None
                else ""
            )
            minutes = text_minutes
    elif minutes is not None:
        technique = "push" if minutes <= limit else "infusion"
        basis = f"{minutes} min by {duration_from}"
    else:
        technique, basis = _technique_without_time(dosage, route, rules)
    row = rules.infusions.get((kind, technique))
    if row is not None and minutes is not None and row.min_minutes and minutes < row.min_minutes:
        row = None  # e.g. hydration of 30 minutes or less: not reported
    addon_units = 0
    if row is not None and row.addon_code and minutes is not None:
        addon_units = additional_hours(minutes, row.addon_over_minutes or 0)
    return IvService(technique, kind, minutes, row, addon_units, basis)


def additional_hours(minutes: int, over: int) -> int:
    """Add-on hours after the first: each full hour, and a last part of more than ``over`` minutes."""
    extra = minutes - 60
    if extra <= 0:
        return 0
    return extra // 60 + (1 if extra % 60 > over else 0)


def duration_minutes(admin: Mapping, dosage: Mapping, rules: Rules) -> tuple[int | None, str]:
    """(whole minutes, where from) of the administration; (None, '') when the record does not say."""
    effective = admin.get("effectivePeriod")
    if isinstance(effective, MAPPING):
        start, end = parse_time(effective.get("start")), parse_time(effective.get("end"))
        if isinstance(start, datetime) and isinstance(end, datetime):
            if (start.tzinfo is None) != (end.tzinfo is None):
                start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
            seconds = (end - start).total_seconds()
            if seconds >= 0:
                return _whole(Decimal(int(seconds)) / 60), "effectivePeriod"
    if rules.iv_signals.duration_extensions:
        for ext in as_list(admin.get("extension")):
            if isinstance(ext, MAPPING) and ext.get("url") in rules.iv_signals.duration_extensions:
                found = _time_minutes(ext.get("valueQuantity") or ext.get("valueDuration"))
                if found is not None:
                    return _whole(found), "infuse-over-time"
    volume = _volume_ml(dosage.get("dose"))
    rate = _rate_ml_per_min(dosage)
    if volume is not None and rate:
        return _whole(volume / rate), "volume / rate"
    return None, ""


def text_says(dosage: Mapping, rules: Rules, limit: int) -> tuple[str, int | None, str] | None:
    """(push | infusion, whole minutes or None, the phrase as written) that ``dosage.text`` says,
    by the first phrase of mappings/iv_text.csv it holds on whole words: a duration ("IV over 2-5
    minutes": a range counts by its upper end; one that spans ``limit``, the push's longest, says
    neither) or a technique ("slow IV push"); None when it says neither."""
    text = dosage.get("text")
    if not isinstance(text, str) or not rules.iv_signals.text_phrases:
        return None
    flat = normal_text(text).replace("\u2013", "-").replace("\u2014", "-")
    for phrase in rules.iv_signals.text_phrases:
        for m in phrase.pattern.finditer(flat):
            if phrase.technique is not None:
                return phrase.technique, None, m.group(0).strip()
            factor = _MINUTES.get(m["unit"])
            if factor is None:  # "over 2 doses": not a time
                continue
            low = Decimal(m["low"]) * factor
            high = Decimal(m["high"]) * factor if m["high"] else low
            if low > high or (low <= limit < high):
                continue  # "over 10-20 minutes": push or infusion, the text does not say
            top = _whole(high)
            return ("push" if top <= limit else "infusion"), top, m.group(0).strip()
    return None


def _method_says(dosage: Mapping, rules: Rules) -> str | None:
    """Push or infusion by ``dosage.method`` (a code, else its text), or None."""
    signals = rules.iv_signals
    method = dosage.get("method")
    for c in codings(method):
        found = signals.method_codes.get((c.get("system"), c.get("code")))  # type: ignore[arg-type]
        if found:
            return found
    text = method.get("text") if isinstance(method, MAPPING) else None
    return signals.method_texts.get(normal_text(text)) if isinstance(text, str) else None


def _whole(minutes: Decimal) -> int:
    return int(minutes.to_integral_value())


def _time_minutes(quantity) -> Decimal | None:
    found = quantity_amount(quantity)
    if found is None or found[0] < 0:
        return None
    factor = _MINUTES.get(found[1].strip().lower())
    return found[0] * factor if factor is not None else None


def _volume_ml(quantity) -> Decimal | None:
    found = quantity_amount(quantity)
    dim = unit_of(found[1]) if found else None
    if found is None or dim is None or dim[0] != "volume" or found[0] <= 0:
        return None
    return found[0] * dim[1]


def _rate_ml_per_min(dosage: Mapping) -> Decimal | None:
    """mL per minute from rateQuantity ('mL/h') or rateRatio (mL per h); None when not a volume rate."""
    ratio = dosage.get("rateRatio")
    if isinstance(ratio, MAPPING):
        volume = _volume_ml(ratio.get("numerator"))
        per = _time_minutes(ratio.get("denominator"))
        return volume / per if volume and per else None
    found = quantity_amount(dosage.get("rateQuantity"))
    match = _RATE_UNIT.match(found[1]) if found else None
    if found is None or match is None or found[0] <= 0:
        return None
    dim = unit_of(match["volume"])
    per = _MINUTES.get(match["time"].lower())
    if dim is None or dim[0] != "volume" or not per:
        return None
    return found[0] * dim[1] / per


def _technique_without_time(dosage: Mapping, route: str, rules: Rules) -> tuple[str, str]:
    """Push or infusion when the record gives no duration: method, rate, route text, route code."""
    signals = rules.iv_signals
    method = dosage.get("method")
    for c in codings(method):
        found = signals.method_codes.get((c.get("system"), c.get("code")))  # type: ignore[arg-type]
        if found:
            return found, "dosage.method code"
    text = method.get("text") if isinstance(method, MAPPING) else None
    if isinstance(text, str) and (found := signals.method_texts.get(normal_text(text))):
        return found, "dosage.method text"
    if isinstance(dosage.get("rateQuantity"), MAPPING) or isinstance(
        dosage.get("rateRatio"), MAPPING
    ):
        return "infusion", "dosage.rate"
    route_concept = dosage.get("route")
    route_text = route_concept.get("text") if isinstance(route_concept, MAPPING) else None
    if isinstance(route_text, str):
        hint = rules.route_text.get(normal_text(route_text))
        if hint in ("intravenous-push", "intravenous-infusion"):
            return hint.split("-", 1)[1], "dosage.route text"
    if route == "intravenous-infusion":
        return "infusion", "the route code"
    return (
        "push",
        "the route code" if route == "intravenous-push" else "no rate, duration or method",
    )


def is_hydration(med: Medication, rules: Rules) -> bool:
    """The product is hydration fluid: no mapped drug, and its codes (else every part of its name)
    are on mappings/hydration.csv."""
    if not med.found or med.drug is not None or med.vaccine is not None:
        return False
    table = rules.hydration
    coded = [
        (c.get("system"), c.get("code"))
        for c in med.codings
        if c.get("system") in table.systems and isinstance(c.get("code"), str)
    ]
    if coded:
        return all(key in table.codes for key in coded)
    if not med.text or not table.names:
        return False
    parts = [" " + " ".join(_WORDS.findall(part)) + " " for part in _PARTS.split(med.text.lower())]
    return all(any(f" {name} " in part for name in table.names) for part in parts if part.strip())
