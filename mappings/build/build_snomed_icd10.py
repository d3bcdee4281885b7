#!/usr/bin/env python3
"""Rebuild mappings/snomed_icd10.csv: SNOMED CT diagnoses -> the ICD-10-CM code a claim bills.

    python3 mappings/build/build_snomed_icd10.py          # writes the table and the left-out list
    python3 mappings/build/build_snomed_icd10.py --check  # exit 1 when either committed file differs

Offline, stdlib only. Reads:

* ``curated/snomed_icd10_curated.csv``: hand-curated pairs (VSAC value sets, ICD-10-CM notes), each
  with its source and release. A SNOMED CT code here takes only these rows (curated wins).
* ``source/synthea_condition_code_map.json``: an extract of Synthea's BFD exporter map
  ``src/main/resources/export/condition_code_map.json`` (Apache-2.0; SNOMED CT code -> list of
  {code, description}), the entries for the SNOMED CT codes of the scope in mappings/build/README.md.
  Synthea's list mixes ICD-10-PCS procedure codes, codes without their 7th character and
  descriptions that are not the code's title, so a pair is kept only when:
    1. the SNOMED CT code has one distinct target (several: ambiguous, left out);
    2. the target is an ICD-10-CM code (a letter, two digits; not an ICD-10-PCS code);
    3. ICD-10-CM April 2026 lists it as a complete code (``source/icd10cm_2026_targets.csv``, made by
       extract_icd10cm.py from CMS/NCHS's files);
    4. a person reviewed that the code says what the SNOMED CT concept says
       (``curated/snomed_icd10_review.csv``, decision keep, with the reason; reject rows give why not).
* Writes ``../snomed_icd10.csv`` (every row with source and release) and
  ``snomed_icd10_left_out.csv``: each SNOMED CT code of the extract that got no row, and why.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TABLE = ROOT / "mappings" / "snomed_icd10.csv"
LEFT_OUT = HERE / "snomed_icd10_left_out.csv"
SYNTHEA = HERE / "source" / "synthea_condition_code_map.json"
ICD10CM = HERE / "source" / "icd10cm_2026_targets.csv"
CURATED = HERE / "curated" / "snomed_icd10_curated.csv"
REVIEW = HERE / "curated" / "snomed_icd10_review.csv"

#: where the Synthea map was read (upstream synthetichealth/synthea's snapshot was over the size the
#: fetch tool brings, and its file index holds no copy of this file; this fork's copy is Synthea's)
SYNTHEA_ORIGIN = (
    "Synthea BFD exporter map src/main/resources/export/condition_code_map.json (Apache-2.0), "
    "as stored in github Umbizo/ModSynthea@085492941ccf40a5017daa0364ed824ca35a7f98"
)
SYNTHEA_RELEASE = "Synthea condition_code_map.json @085492941ccf; ICD-10-CM April 1, 2026"
COLUMNS = ("snomed", "snomed_display", "icd10", "icd10_display", "source", "release")
ICD10CM_FORM = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def verdict(snomed: str, targets: list, icd: dict, review: dict) -> tuple | str:
    """(code, ICD-10-CM title, review row) when a coder would sign the pair, else why not."""
    codes = list(dict.fromkeys(t["code"] for t in targets))
    if len(codes) != 1:
        return f"ambiguous: {len(codes)} targets, a coder must choose"
    code = codes[0]
    if not ICD10CM_FORM.match(code):
        return "not an ICD-10-CM diagnosis code (ICD-10-PCS or malformed)"
    found = icd.get(code)
    if found is None or found["in_release"] != "yes":
        return "not a code of ICD-10-CM April 2026 (a 7th character missing?)"
    if found["complete"] != "yes":
        return "not a complete ICD-10-CM code (it has subcodes)"
    seen = review.get(snomed)
    if seen is None:
        return "not reviewed (curated/snomed_icd10_review.csv has no row)"
    if seen["icd10"] != code:
        raise SystemExit(f"snomed_icd10_review.csv: {snomed} reviewed {seen['icd10']}, map says {code}")
    if seen["decision"] != "keep":
        return f"reviewed, rejected: {seen['reason']}"
    return code, found["title"], seen


def build() -> tuple[list[list[str]], list[list[str]]]:
    """(table rows, left-out rows)."""
    curated = _csv(CURATED)
    icd = {r["code"]: r for r in _csv(ICD10CM)}
    review = {r["snomed"]: r for r in _csv(REVIEW)}
    synthea = json.loads(SYNTHEA.read_text(encoding="utf-8"))
    rows = [[r[c] for c in COLUMNS] for r in curated]
    have = {r["snomed"] for r in curated}
    left: list[list[str]] = []
    for snomed, targets in synthea.items():
        if snomed in have:
            codes = "/".join(dict.fromkeys(t["code"] for t in targets))
            left.append([snomed, codes, "a curated row wins (curated/snomed_icd10_curated.csv)"])
            continue
        kept = verdict(snomed, targets, icd, review)
        if isinstance(kept, str):
            left.append([snomed, "/".join(dict.fromkeys(t["code"] for t in targets)), kept])
            continue
        code, title, seen = kept
        said = targets[0]["description"]
        named = "" if said == title else f" (Synthea's description: '{said}')"
        rows.append(
            [
                snomed,
                seen["snomed_display"],
                code,
                title,
                f"{SYNTHEA_ORIGIN}{named}; ICD-10-CM April 2026 lists {code} as a complete code; "
                f"reviewed: {seen['reason']}; SNOMED CT display from {seen['source'].split('display: ')[-1]}",
                SYNTHEA_RELEASE,
            ]
        )
    return rows, left


def _text(header, rows) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 when a committed file is stale")
    a = p.parse_args()
    rows, left = build()
    files = {
        TABLE: _text(COLUMNS, rows),
        LEFT_OUT: _text(("snomed", "synthea_targets", "why_no_row"), left),
    }
    stale = [f for f, text in files.items() if not f.is_file() or f.read_text("utf-8") != text]
    if a.check:
        for f in stale:
            print(f"{f.relative_to(ROOT)} is stale: run {Path(__file__).relative_to(ROOT)}", file=sys.stderr)
        return 1 if stale else 0
    for f, text in files.items():
        f.write_text(text, encoding="utf-8")
    print(f"snomed_icd10.csv: {len(rows)} rows; left out: {len(left)} SNOMED CT codes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
