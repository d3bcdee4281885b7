"""The modifiers the engine puts on by rule: JW (the discarded units' line), JZ (nothing
discarded), GY (a statutorily excluded service), each with the lines it goes on and the first
service date it applies to."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from ..decision.rules import MODIFIER_LINES, MODIFIER_USES, Modifier
from ..errors import MappingError
from .table import _Table


def _modifiers(d: Path) -> dict[str, Modifier]:
    """modifiers.csv: use -> the HCPCS modifier put on for it; one row for every use."""
    t = _Table(d, "modifiers.csv", ("modifier", "meaning", "use", "lines", "effective", "source"))
    out: dict[str, Modifier] = {}
    seen: dict = {}
    for n, r in t.rows():
        code = t.require(n, r, "modifier")
        if not (len(code) == 2 and code.isalnum() and code.isupper()):
            raise t.error(n, f"modifier '{code}' is not a two-character HCPCS modifier")
        t.require(n, r, "meaning")
        use = t.choice(n, r, "use", set(MODIFIER_USES))
        t.unique(seen, use, n)
        lines = frozenset(r["lines"].split())
        if not lines or not lines <= set(MODIFIER_LINES):
            raise t.error(
                n,
                f"column 'lines' is '{r['lines']}', expected one or more of "
                f"{', '.join(MODIFIER_LINES)} (space-separated)",
            )
        if use == "waste-line" and lines != {"waste"}:
            raise t.error(n, "a waste-line modifier goes on the waste line alone: lines 'waste'")
        if use == "nothing-discarded" and lines != {"drug"}:
            raise t.error(n, "a nothing-discarded modifier goes on the drug line: lines 'drug'")
        if use.startswith("esa-") and lines != {"drug"}:
            raise t.error(n, "an ESA modifier (EA, EB, EC) goes on the drug line: lines 'drug'")
        if use == "excluded-service" and "waste" in lines:
            raise t.error(
                n, "an excluded-service modifier has no waste line to go on (no JW/JZ then)"
            )
        effective = None
        if r["effective"]:
            try:
                effective = date.fromisoformat(r["effective"])
            except ValueError:
                raise t.error(
                    n, f"column 'effective' is '{r['effective']}', not a date YYYY-MM-DD"
                ) from None
        out[use] = Modifier(code, use, lines, effective)
    missing = [use for use in MODIFIER_USES if use not in out]
    if missing:
        raise MappingError("modifiers.csv", None, f"no row for use(s) {', '.join(missing)}")
    return out
