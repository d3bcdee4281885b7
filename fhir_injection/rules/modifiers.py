"""Every modifier the engine puts on or names, in one table (mappings/modifiers.csv): JW (the
discarded units' line), JZ (nothing discarded), GY (a statutorily excluded service), EA/EB/EC (the
ESA's anemia cause), the distinct-procedure modifier of a payer type (59, XU) and 25 (the E/M of
the same day); each with the lines it goes on, the payer types whose claims it goes on and the first
service date it applies to. A payer type's ``distinct_modifier`` and ``jw_jz`` are read from here.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

from ..decision.payer_tables import Modifier, PayerRule
from ..decision.ruleset import MODIFIER_LINES, MODIFIER_USES, PAYER_TYPES
from ..errors import MappingError
from .table import Table

__all__ = ["DISTINCT_MODIFIERS", "read_modifiers", "with_payer_modifiers"]

#: the modifiers a second injection of the day may take (NCCI Policy Manual ch.1: 59 or X{EPSU})
DISTINCT_MODIFIERS = {"59", "XE", "XP", "XS", "XU"}
#: uses with one row per payer type (the rest: one row each)
_PER_PAYER = "distinct-procedure"
#: uses the engine applies on Medicare claims only: the self-administered drug exclusion (IOM 100-02
#: ch.15 s50.2) and the ESA step (CMS CR 5699); their rows say so
_MEDICARE_ONLY = {"excluded-service", "esa-chemotherapy", "esa-radiotherapy", "esa-neither"}
#: the lines each use must go on (uses not listed: administration and/or drug)
_LINES = {
    "waste-line": ({"waste"}, "a waste-line modifier goes on the waste line alone: lines 'waste'"),
    "nothing-discarded": (
        {"drug"},
        "a nothing-discarded modifier goes on the drug line: lines 'drug'",
    ),
    "esa-chemotherapy": (
        {"drug"},
        "an ESA modifier (EA, EB, EC) goes on the drug line: lines 'drug'",
    ),
    "esa-radiotherapy": (
        {"drug"},
        "an ESA modifier (EA, EB, EC) goes on the drug line: lines 'drug'",
    ),
    "esa-neither": ({"drug"}, "an ESA modifier (EA, EB, EC) goes on the drug line: lines 'drug'"),
    "distinct-procedure": (
        {"administration"},
        "a distinct-procedure modifier goes on the 96372 line: lines 'administration'",
    ),
    "em-separate": ({"em"}, "modifier 25 goes on the practice's E/M: lines 'em'"),
}


def _payer_types(t: Table, n: int, r: dict[str, str]) -> frozenset[str]:
    text = r["payer_types"].strip()
    if text == "all":
        return frozenset(PAYER_TYPES)
    named = text.split()
    if not named or not set(named) <= PAYER_TYPES or len(set(named)) != len(named):
        raise t.error(
            n,
            f"column 'payer_types' is '{text}', expected 'all' or payer types from "
            f"{', '.join(sorted(PAYER_TYPES))} (space-separated, each once)",
        )
    return frozenset(named)


def _row(t: Table, n: int, r: dict[str, str]) -> Modifier:
    code = t.require(n, r, "modifier")
    if not (len(code) == 2 and (code.isdigit() or (code.isalnum() and code.isupper()))):
        raise t.error(n, f"modifier '{code}' is not a two-character CPT or HCPCS modifier (25, JW)")
    t.require(n, r, "meaning")
    use = t.choice(n, r, "use", set(MODIFIER_USES))
    lines = frozenset(r["lines"].split())
    if not lines or not lines <= set(MODIFIER_LINES):
        raise t.error(
            n,
            f"column 'lines' is '{r['lines']}', expected one or more of "
            f"{', '.join(MODIFIER_LINES)} (space-separated)",
        )
    wanted = _LINES.get(use)
    if wanted is not None and lines != wanted[0]:
        raise t.error(n, wanted[1])
    if wanted is None and not lines <= {"administration", "drug"}:
        raise t.error(n, "an excluded-service modifier has no waste line to go on (no JW/JZ then)")
    if use == _PER_PAYER and code not in DISTINCT_MODIFIERS:
        raise t.error(
            n,
            f"a distinct-procedure modifier is one of {', '.join(sorted(DISTINCT_MODIFIERS))}, "
            f"not '{code}'",
        )
    payer_types = _payer_types(t, n, r)
    if use in _MEDICARE_ONLY and payer_types != {"medicare"}:
        raise t.error(
            n, f"the engine applies {use} on Medicare claims only: payer_types 'medicare'"
        )
    if use == "em-separate" and payer_types != PAYER_TYPES:
        raise t.error(
            n, "the em-same-day gap names modifier 25 whatever the payer: payer_types 'all'"
        )
    effective = None
    if r["effective"]:
        try:
            effective = date.fromisoformat(r["effective"])
        except ValueError:
            raise t.error(
                n, f"column 'effective' is '{r['effective']}', not a date YYYY-MM-DD"
            ) from None
    return Modifier(code, use, lines, effective, payer_types)


def read_modifiers(d: Path) -> tuple[dict[str, Modifier], dict[str, Modifier]]:
    """modifiers.csv: (use -> its modifier, for every use but the distinct procedure; payer type ->
    its distinct-procedure modifier, for every payer type)."""
    t = Table(
        d,
        "modifiers.csv",
        ("modifier", "meaning", "use", "lines", "payer_types", "effective", "source"),
    )
    by_use: dict[str, Modifier] = {}
    distinct: dict[str, Modifier] = {}
    seen: dict = {}
    for n, r in t.rows():
        modifier = _row(t, n, r)
        if modifier.use != _PER_PAYER:
            t.unique(seen, modifier.use, n)
            by_use[modifier.use] = modifier
            continue
        for payer_type in sorted(modifier.payer_types):
            if payer_type in distinct:
                raise t.error(
                    n, f"a second distinct-procedure modifier for payer type '{payer_type}'"
                )
            distinct[payer_type] = modifier
    missing = [use for use in MODIFIER_USES if use != _PER_PAYER and use not in by_use]
    if missing:
        raise MappingError("modifiers.csv", None, f"no row for use(s) {', '.join(missing)}")
    for payer_type in sorted(PAYER_TYPES - distinct.keys()):
        raise MappingError(
            "modifiers.csv", None, f"no distinct-procedure row for payer type '{payer_type}'"
        )
    if by_use["waste-line"].payer_types != by_use["nothing-discarded"].payer_types:
        raise MappingError(
            "modifiers.csv",
            None,
            "JW and JZ go together (CMS JW/JZ policy): the waste-line and nothing-discarded rows "
            "need the same payer_types",
        )
    return by_use, distinct


def with_payer_modifiers(
    payers: dict[str, PayerRule], by_use: dict[str, Modifier], distinct: dict[str, Modifier]
) -> dict[str, PayerRule]:
    """Each payer type's rules with its modifiers: its distinct-procedure modifier, and whether JW
    and JZ go on its claims."""
    jw_jz = by_use["waste-line"].payer_types
    return {
        pt: replace(rule, distinct_modifier=distinct[pt].code, jw_jz=pt in jw_jz)
        for pt, rule in payers.items()
    }
