"""The erythropoiesis-stimulating agent tables: which HCPCS codes are ESAs (and which of them are
"for ESRD on dialysis"), and the hemoglobin or hematocrit readings a Medicare ESA claim carries
(CMS CR 5699)."""

from __future__ import annotations

from pathlib import Path

from ..decision.drug_tables import Drug, EsaLab
from ..decision.ruleset import ESA_READINGS
from .table import Table

__all__ = ["read_esa", "read_esa_labs"]


def read_esa(d: Path, drugs: dict[str, Drug]) -> dict[str, bool]:
    """esa.csv: HCPCS -> whether the code is the one "for ESRD on dialysis"; every code in drugs.csv."""
    t = Table(d, "esa.csv", ("hcpcs", "esrd_dialysis", "source"))
    out: dict[str, bool] = {}
    seen: dict = {}
    for n, r in t.rows():
        hcpcs = t.require(n, r, "hcpcs")
        if hcpcs not in drugs:
            raise t.error(n, f"HCPCS {hcpcs} is not in drugs.csv")
        t.unique(seen, hcpcs, n)
        out[hcpcs] = t.yes_no(n, r, "esrd_dialysis")
    return out


def read_esa_labs(d: Path) -> tuple[EsaLab, ...]:
    """esa_labs.csv: the Observation codes of the readings an ESA claim reports, in row order."""
    t = Table(d, "esa_labs.csv", ("system", "code", "display", "reading", "max_days", "source"))
    out = []
    seen: dict = {}
    for n, r in t.rows():
        system, code = t.coding_key(n, r, seen)
        reading = t.choice(n, r, "reading", set(ESA_READINGS))
        raw = r["max_days"]
        if raw and not raw.isdigit():
            raise t.error(
                n, f"column 'max_days' is '{raw}', expected a whole number of days or empty"
            )
        out.append(
            EsaLab(system, code, t.require(n, r, "display"), reading, int(raw) if raw else None)
        )
    return tuple(out)
