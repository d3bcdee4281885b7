#!/usr/bin/env python3
"""How many of the SNOMED CT diagnoses the adapter reads it can bill as ICD-10-CM (mappings/snomed_icd10.csv).

    PYTHONPATH=. python3 tests/realworld/snomed_coverage.py fixtures/synthea/bulk fixtures/realworld/*/

Runs the offline job (``fhir_injection.run_folder``, bundled mappings, default ``Config``) on each
folder and watches every diagnosis read for a claim line (``read_diagnoses`` as the billing step
calls it). A *reading* is one SNOMED CT coding of a diagnosis (the administration's reasons, the
encounter's diagnoses and reasons) for one administration, counted once per administration. It is
*mapped* when snomed_icd10.csv has a row for the code. Prints one JSON line per folder and one for
all: distinct codes (mapped / all), readings (mapped / all, %), and the unmapped codes with their
readings and displays (code-system text only: no patient data).
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

SNOMED = "http://snomed.info/sct"


def coverage(source: str | Path) -> dict[str, Any]:
    """The figures for one folder (see the module docstring)."""
    from fhir_injection import Config, load_rules, run_folder
    from fhir_injection.decision import billing

    rules = load_rules()
    readings: dict[str, set[str]] = {}
    displays: dict[str, str] = {}
    original = billing.read_diagnoses

    def watching(admin, *args, **kwargs):
        found = original(admin, *args, **kwargs)
        seen = readings.setdefault(str(admin.get("id")), set())
        for coding in found.coded:
            if coding.system == SNOMED and coding.code:
                seen.add(coding.code)
                displays.setdefault(coding.code, coding.display or "")
        return found

    logger = logging.getLogger("fhir_injection")
    level = logger.level
    logger.setLevel(logging.ERROR)
    billing.read_diagnoses = watching
    try:
        with tempfile.TemporaryDirectory(prefix="fi-snomed-") as out:
            run_folder(Path(source), Path(out), rules, Config(), "2026-01-01T00:00:00Z")
    finally:
        billing.read_diagnoses = original
        logger.setLevel(level)
    counts = Counter(code for codes in readings.values() for code in codes)
    mapped = {code for code in counts if code in rules.snomed_icd10}
    n, m = sum(counts.values()), sum(counts[c] for c in mapped)
    return {
        "source": str(source),
        "codes": len(counts),
        "codes_mapped": len(mapped),
        "readings": n,
        "readings_mapped": m,
        "readings_mapped_pct": round(100 * m / n, 1) if n else None,
        "unmapped": {
            c: [counts[c], displays[c]] for c, _ in counts.most_common() if c not in mapped
        },
        "counts": dict(counts),
    }


def main(argv: list[str]) -> int:
    total: Counter = Counter()
    for source in argv:
        f = coverage(source)
        total.update(f.pop("counts"))
        print(json.dumps(f))
    from fhir_injection import load_rules

    table = load_rules().snomed_icd10
    n = sum(total.values())
    m = sum(v for c, v in total.items() if c in table)
    print(
        json.dumps(
            {
                "source": "all",
                "codes": len(total),
                "codes_mapped": sum(1 for c in total if c in table),
                "readings": n,
                "readings_mapped": m,
                "readings_mapped_pct": round(100 * m / n, 1) if n else None,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
