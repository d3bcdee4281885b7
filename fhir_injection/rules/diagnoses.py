"""The diagnosis tables: ICD-10-CM ranges and SNOMED CT codes that make a rule (cancer, ESRD on
dialysis), the SNOMED CT codes a claim bills as ICD-10-CM, the "code first" order, and the NDC unit
of measure rules (NCPDP) of the drug line."""

from __future__ import annotations

from pathlib import Path

from ..decision.ruleset import (
    NDC_UNIT_BASES,
    NDC_UNITS,
    SYSTEM_ICD10CM,
    SYSTEM_SNOMED,
    CombinationCode,
)
from .table import Table

__all__ = [
    "icd_key",
    "read_code_first",
    "read_combination_codes",
    "read_diagnosis_groups",
    "read_ndc_units",
    "read_snomed_icd10",
]


def icd_key(code: str) -> str:
    """An ICD-10-CM code as the range tables compare it: upper case, no dot."""
    return code.replace(".", "").strip().upper()


def read_diagnosis_groups(d: Path) -> dict[str, tuple[tuple[tuple[str, str, str], ...], ...]]:
    """diagnosis_groups.csv: rule -> its groups of code ranges (every group must match)."""
    t = Table(
        d, "diagnosis_groups.csv", ("rule", "group", "system", "code_from", "code_to", "source")
    )
    rules: dict[str, dict[int, list[tuple[str, str, str]]]] = {}
    for n, r in t.rows():
        rule = t.require(n, r, "rule")
        group = t.require(n, r, "group")
        if not group.isdigit():
            raise t.error(n, f"column 'group' is '{group}', expected a whole number")
        system = t.choice(n, r, "system", {SYSTEM_ICD10CM, SYSTEM_SNOMED})
        lo, hi = icd_key(t.require(n, r, "code_from")), icd_key(t.require(n, r, "code_to"))
        if system == SYSTEM_SNOMED:  # a value set's member: one concept, matched whole
            if lo != hi or not lo.isdigit():
                raise t.error(
                    n, "a SNOMED CT row names one concept id: code_from = code_to, digits"
                )
        elif len(lo) != len(hi) or lo > hi:
            raise t.error(n, f"range {lo}-{hi} must run upwards between codes of one length")
        rules.setdefault(rule, {}).setdefault(int(group), []).append((system, lo, hi))
    return {rule: tuple(tuple(groups[g]) for g in sorted(groups)) for rule, groups in rules.items()}


def read_ndc_units(d: Path) -> dict[tuple[str, str], str]:
    """ndc_units.csv: the NDC unit of measure (NCPDP: UN, ML, GR, F2) by the product's strength
    kind, its dose form, or the dose's unit, tried in that order."""
    t = Table(d, "ndc_units.csv", ("basis", "value", "ndc_unit", "source"))
    units: dict[tuple[str, str], str] = {}
    seen: dict = {}
    for n, r in t.rows():
        key = (t.choice(n, r, "basis", set(NDC_UNIT_BASES)), t.require(n, r, "value").lower())
        t.unique(seen, key, n)
        units[key] = t.choice(n, r, "ndc_unit", NDC_UNITS)
    return units


def read_snomed_icd10(d: Path) -> dict[str, tuple[tuple[str, str], ...]]:
    """snomed_icd10.csv: SNOMED CT concept -> the ICD-10-CM codes (code, display) a claim bills it as,
    in row order (ESRD on dialysis: N18.6, then Z99.2). Built by mappings/build/build_snomed_icd10.py;
    every row names its source and the release (value set expansion, map, ICD-10-CM year) it holds."""
    t = Table(
        d,
        "snomed_icd10.csv",
        ("snomed", "snomed_display", "icd10", "icd10_display", "source", "release"),
    )
    out: dict[str, list[tuple[str, str]]] = {}
    seen: dict = {}
    for n, r in t.rows():
        snomed = t.require(n, r, "snomed")
        if not snomed.isdigit():
            raise t.error(n, f"column 'snomed' is '{snomed}', not a SNOMED CT concept id")
        t.require(n, r, "snomed_display")
        icd = t.require(n, r, "icd10").upper()
        if not (len(icd) >= 3 and icd[0].isalpha() and icd[1:3].isdigit()):
            raise t.error(n, f"column 'icd10' is '{icd}', not an ICD-10-CM code")
        t.require(n, r, "release")
        t.unique(seen, (snomed, icd), n)
        out.setdefault(snomed, []).append((icd, t.require(n, r, "icd10_display")))
    return {k: tuple(v) for k, v in out.items()}


def read_code_first(d: Path) -> tuple[tuple[str, str, str], ...]:
    """code_first.csv: (code, first_from, first_to), codes without dots: the code is sequenced after
    a diagnosis in the range (an ICD-10-CM "code first" note: D63.1 after the CKD stage N18.-)."""
    t = Table(d, "code_first.csv", ("code", "first_from", "first_to", "source"))
    out = []
    for n, r in t.rows():
        code = icd_key(t.require(n, r, "code"))
        lo, hi = icd_key(t.require(n, r, "first_from")), icd_key(t.require(n, r, "first_to"))
        if len(lo) != len(hi) or lo > hi:
            raise t.error(n, f"range {lo}-{hi} must run upwards between codes of one length")
        out.append((code, lo, hi))
    return tuple(out)


def _icd_code(t: Table, n: int, r: dict[str, str], column: str) -> str:
    """An ICD-10-CM code of a row, without its dot: a letter and two digits, then up to four."""
    code = icd_key(t.require(n, r, column))
    if not (3 <= len(code) <= 7 and code[0].isalpha() and code[1:3].isdigit() and code.isalnum()):
        raise t.error(n, f"column '{column}' is '{t.require(n, r, column)}', not an ICD-10-CM code")
    return code


def read_combination_codes(d: Path) -> tuple[CombinationCode, ...]:
    """combination_codes.csv: an unspecified code that, listed with a code in a range, is coded as
    one combination code (ICD-10-CM Official Guidelines I.A.15 "With": D64.9 with N18.1-N18.9 is
    D63.1, the Alphabetic Index's "Anemia, in (due to) (with) chronic kidney disease")."""
    t = Table(
        d,
        "combination_codes.csv",
        ("code", "with_from", "with_to", "becomes", "becomes_display", "source"),
    )
    out = []
    seen: dict = {}
    for n, r in t.rows():
        code = _icd_code(t, n, r, "code")
        lo, hi = _icd_code(t, n, r, "with_from"), _icd_code(t, n, r, "with_to")
        if len(lo) != len(hi) or lo > hi:
            raise t.error(n, f"range {lo}-{hi} must run upwards between codes of one length")
        becomes = _icd_code(t, n, r, "becomes")
        if becomes == code or lo <= code[: len(lo)] <= hi:
            raise t.error(n, f"{code} cannot become {becomes} with {lo}-{hi}: no combination")
        t.unique(seen, (code, lo, hi), n)
        display = t.require(n, r, "becomes_display")
        out.append(CombinationCode(code, lo, hi, becomes, display, r["source"]))
    return tuple(out)
