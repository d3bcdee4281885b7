"""The diagnosis tables: ICD-10-CM ranges that make a rule (cancer, ESRD on dialysis), and the NDC
unit of measure rules (NCPDP) of the drug line."""

from __future__ import annotations

from pathlib import Path

from ..decision.rules import NDC_UNIT_BASES, NDC_UNITS
from .table import _Table


def icd_key(code: str) -> str:
    """An ICD-10-CM code as the range tables compare it: upper case, no dot."""
    return code.replace(".", "").strip().upper()


def _diagnosis_groups(d: Path) -> dict[str, tuple[tuple[tuple[str, str, str], ...], ...]]:
    """diagnosis_groups.csv: rule -> its groups of code ranges (every group must match)."""
    t = _Table(
        d, "diagnosis_groups.csv", ("rule", "group", "system", "code_from", "code_to", "source")
    )
    rules: dict[str, dict[int, list[tuple[str, str, str]]]] = {}
    for n, r in t.rows():
        rule = t.require(n, r, "rule")
        group = t.require(n, r, "group")
        if not group.isdigit():
            raise t.error(n, f"column 'group' is '{group}', expected a whole number")
        lo, hi = icd_key(t.require(n, r, "code_from")), icd_key(t.require(n, r, "code_to"))
        if len(lo) != len(hi) or lo > hi:
            raise t.error(n, f"range {lo}-{hi} must run upwards between codes of one length")
        rules.setdefault(rule, {}).setdefault(int(group), []).append(
            (t.require(n, r, "system"), lo, hi)
        )
    return {rule: tuple(tuple(groups[g]) for g in sorted(groups)) for rule, groups in rules.items()}


def _ndc_units(d: Path) -> dict[tuple[str, str], str]:
    """ndc_units.csv: the NDC unit of measure (NCPDP: UN, ML, GR, F2) by the product's strength
    kind, its dose form, or the dose's unit, tried in that order."""
    t = _Table(d, "ndc_units.csv", ("basis", "value", "ndc_unit", "source"))
    units: dict[tuple[str, str], str] = {}
    seen: dict = {}
    for n, r in t.rows():
        key = (t.choice(n, r, "basis", set(NDC_UNIT_BASES)), t.require(n, r, "value").lower())
        t.unique(seen, key, n)
        units[key] = t.choice(n, r, "ndc_unit", NDC_UNITS)
    return units
