"""filing_limits.csv: how long after the date of service each payer type takes a claim."""

from __future__ import annotations

from pathlib import Path

from ..decision.payer_tables import FilingLimit, parse_filing_limit
from ..decision.ruleset import PAYER_TYPES
from .table import Table

__all__ = ["read_filing_limits"]


def read_filing_limits(d: Path) -> dict[str, FilingLimit | None]:
    """filing_limits.csv: one row per payer type; ``limit`` is days (``180d``), months (``12m``)
    or ``none``. Every payer type has a row, so a claim's limit is never guessed."""
    t = Table(d, "filing_limits.csv", ("payer_type", "limit", "source"))
    limits: dict[str, FilingLimit | None] = {}
    last = 1
    for n, r in t.rows():
        last = n
        pt = t.choice(n, r, "payer_type", PAYER_TYPES)
        if pt in limits:
            raise t.error(n, f"payer type '{pt}' has a row already")
        try:
            limits[pt] = parse_filing_limit(t.require(n, r, "limit"))
        except ValueError as exc:
            raise t.error(n, str(exc)) from None
    missing = sorted(PAYER_TYPES - set(limits))
    if missing:
        raise t.error(last + 1, f"no row for payer type(s) {', '.join(missing)}")
    return limits
