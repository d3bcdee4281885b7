#!/usr/bin/env python3
"""Rebuild mappings/drugs.csv and mappings/drug_codes.csv from the committed source extracts.

    python3 mappings/build/build_drugs.py            # writes mappings/drugs.csv, mappings/drug_codes.csv
    python3 mappings/build/build_drugs.py --check    # exit 1 when the committed tables differ

Offline: reads only mappings/build/source/ (trimmed public sources, see extract_sources.py and the
README) and mappings/build/curated/ (the facts the CMS file cannot give, each with its source).

drugs.csv: one row per HCPCS drug code of the CMS HCPCS Level II file (every J code, the Q drug
codes). The newest release in source/ wins: the January 2026 file (hcpcs2026_drugs.csv) gives the
descriptors and the termination dates; a code it terminates before 2026-01-01 is dropped, unless a
hand-written table still names it (curated/, drug_families.csv, drug_by_diagnosis.csv): then it is
kept, its source saying TERMINATED and by whom it is kept, for a person to replace. Without the 2026
extract the 2020 file is read, less curated/terminated.csv. The billing unit is parsed
from the long descriptor ("per 250 mg", "up to 40 mg", "1000 units", "1 million units", "0.1 ml");
``unit_status`` says how: ``parsed``; ``per-item`` (devices, vaccines, "per vial", "each": billed
once per item); ``unparsed`` (no dose unit this project can bill in: meq, microcuries, a combination
of two amounts; a person must code the units). The class comes from the code range and descriptor
(J9000-J9999 anti-neoplastic; "oral" and "inhalation" descriptors; unclassified / not otherwise
classified codes), then the curated row, which also gives names, single-dose and Medicare SAD.
``single_dose`` is yes, no, or varies (the drug comes in single-dose and multi-dose containers,
epoetin's preservative-free and benzyl alcohol vials: the container decides JW/JZ, packages.csv).

drug_codes.csv: the curated rows (curated/drug_codes_curated.csv: today's verified and unverified
rows, kept as they are), then every RxNorm code of the extracts whose product name matches a rule of
curated/rxnorm_rules.csv (ingredient(s) as written in the RxNorm name, optional dose-form filter),
with the strength read from the name.
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
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

HCPCS_SOURCE = (
    "CMS HCPCS Level II file 2020 (long descriptor) as published in github wamuir/hcpcs "
    "@50425cb {file}; extract mappings/build/source/hcpcs2020_drugs.csv (check current year)"
)
HCPCS2026_SOURCE = (
    "CMS HCPCS Level II file January 2026 (HCPC2026_JAN_ANWEB_01122026, long descriptor) as "
    "published in github jeglass/medicaid-claims-analysis @3cd7d23 {file}; extract "
    "mappings/build/source/hcpcs2026_drugs.csv"
)
#: the first day the 2026 release is in force: a code terminated before it is no longer valid
RELEASE_2026 = "20260101"
#: drugs.csv single_dose: single-dose containers, multi-dose, or both (the container decides)
SINGLE_DOSE = ("yes", "no", "varies")
#: hand-written tables (besides curated/) that need their codes in drugs.csv
USERS = ("drug_families.csv", "drug_by_diagnosis.csv")
VSAC_SOURCE = (
    "RxNorm code and name in VSAC eCQM {value_set} as shipped in github canvas-medical/"
    "canvas-plugins @344f0bc; HCPCS by rule '{rule}' (mappings/build/curated/rxnorm_rules.csv)"
)
ECQM_SOURCE = (
    "RxNorm code and name in VSAC {value_set} as shipped in github cqframework/"
    "ecqm-content-qicore-2025 @db5a7e1; HCPCS by rule '{rule}' (mappings/build/curated/rxnorm_rules.csv)"
)
SYNTHEA_SOURCE = (
    "RxNorm code and name as Synthea 3.3 writes them (fixtures/synthea; github "
    "synthetichealth/synthea); HCPCS by rule '{rule}' (mappings/build/curated/rxnorm_rules.csv)"
)

_NUM = r"(\d[\d,]*(?:\.\d+)?|\.\d+)"
_UNIT_WORDS = {
    "mg": "mg",
    "milligram": "mg",
    "milligrams": "mg",
    "mcg": "mcg",
    "microgram": "mcg",
    "micrograms": "mcg",
    "gm": "g",
    "g": "g",
    "gram": "g",
    "grams": "g",
    "ml": "mL",
    "cc": "mL",
    "unit": "unit",
    "units": "unit",
    "iu": "unit",
    "i.u.": "unit",
    "kiu": "unit",
    "usp units": "unit",
    "usp unit": "unit",
    "million units": "unit",
}
_AMOUNT = re.compile(
    r"(?:(per|up to|less than or equal to)\s+)?" + _NUM + r"\s*"
    r"(million units|usp units?|milligrams?|micrograms?|grams?|units?|mcg|mg|gm|g|ml|cc|kiu|i\.u\.|iu)"
    r"(?![a-z/])",
    re.I,
)
_OTHER_UNITS = re.compile(r"\d\s*(meq|mci|microcurie|millicurie|sq cm|mmol)", re.I)
_PER_ITEM = re.compile(r"\b(per vial|each|per dose|per instillation|per kit|vial)\b", re.I)


def parse_unit(description: str) -> tuple[str, Decimal | None, str | None]:
    """(unit_status, amount, unit) of a HCPCS long descriptor."""
    text = re.sub(r"\([^)]*\)", " ", description)  # "(for esrd on dialysis)", "(1.125 grams)"
    amounts = {
        (Decimal(m.group(2).replace(",", "")), m.group(3).lower()) for m in _AMOUNT.finditer(text)
    }
    if re.search(r"/\s*\d", text) or len(amounts) > 1:
        return "unparsed", None, None  # a combination ("1 gram/0.125 grams"): units need a person
    if not amounts:  # "per gm", "per iu": one of the unit
        bare = re.search(r"\bper (gm|gram|iu|i\.u\.|ml|unit)\b", text, re.I)
        if bare:
            amounts = {(Decimal(1), bare.group(1).lower())}
    if len(amounts) == 1:
        ((value, word),) = amounts
        if word == "million units":
            value *= 1_000_000
        if _OTHER_UNITS.search(text):
            return "unparsed", None, None
        return "parsed", value, _UNIT_WORDS[word]
    if _PER_ITEM.search(text):
        return "per-item", None, None
    return "unparsed", None, None


def drug_class(code: str, description: str) -> str:
    d = description.lower()
    if "unclassified" in d or "not otherwise classified" in d or re.search(r"\bnos$", d):
        return "unclassified"
    if re.search(r"\binhalation\b", d):
        return "inhalation"
    if re.search(r"\boral\b", d) and "parenteral" not in d:
        return "oral"
    if code[:4] == "Q203":
        return "vaccine"
    if code.startswith("J9"):
        return "antineoplastic"
    return "standard"


def fmt(value: Decimal | None) -> str:
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return text


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def users() -> dict[str, list[str]]:
    """HCPCS -> the hand-written tables that name it (curated inputs, families, diagnosis pairs)."""
    named: dict[str, list[str]] = {}
    for path, columns in (
        (CUR / "drugs_curated.csv", ("hcpcs",)),
        (CUR / "drug_codes_curated.csv", ("hcpcs",)),
        (CUR / "rxnorm_rules.csv", ("hcpcs",)),
        (ROOT / "mappings" / USERS[0], ("hcpcs",)),
        (ROOT / "mappings" / USERS[1], ("hcpcs_if", "hcpcs_else")),
    ):
        for r in read(path):
            for column in columns:
                where = named.setdefault(r[column], [])
                if path.name not in where:
                    where.append(path.name)
    return named


def hcpcs_source() -> list[tuple[dict[str, str], str]]:
    """(row, source text) of every code to build: the 2026 release when its extract is there."""
    if (SRC / "hcpcs2026_drugs.csv").is_file():
        named = users()
        out = []
        for r in read(SRC / "hcpcs2026_drugs.csv"):
            source = HCPCS2026_SOURCE.format(file=r["file"])
            if r["terminated"] and r["terminated"] < RELEASE_2026:
                if r["hcpcs"] not in named:
                    continue
                end = f"{r['terminated'][:4]}-{r['terminated'][4:6]}-{r['terminated'][6:]}"
                source += (
                    f"; TERMINATED {end} in this file, kept only because "
                    f"{', '.join(named[r['hcpcs']])} name it (replace it there)"
                )
            out.append((r, source))
        return out
    terminated = {r["hcpcs"] for r in read(CUR / "terminated.csv")}
    return [
        (r, HCPCS_SOURCE.format(file=r["file"]))
        for r in read(SRC / "hcpcs2020_drugs.csv")
        if r["hcpcs"] not in terminated
    ]


def build_drugs() -> tuple[list[list[str]], dict[str, dict]]:
    curated = {r["hcpcs"]: r for r in read(CUR / "drugs_curated.csv")}
    rows: list[list[str]] = []
    table: dict[str, dict] = {}
    source_rows = hcpcs_source()
    codes = {r["hcpcs"] for r, _ in source_rows}
    for r, source in source_rows:
        code = r["hcpcs"]
        desc = r["long_description"]
        c = curated.get(code)
        status, amount, unit = parse_unit(desc)
        cls = drug_class(code, desc)
        noc = cls == "unclassified"  # by CMS's own words, whatever class the curated row gives
        single, sad, names = "no", "no", ""
        if c:
            cls = c["drug_class"] or cls
            single, sad, names = c["single_dose"], c["self_administered"], c["names"]
            if single not in SINGLE_DOSE:
                sys.exit(f"drugs_curated.csv: {code} single_dose '{single}' not one of {SINGLE_DOSE}")
            desc = c["description"] or desc
            source = f"{source}; {c['source']}"
        if noc:
            status, amount, unit = "noc", None, None
        elif cls in ("device", "vaccine"):
            status, amount, unit = "per-item", None, None
        row = [code, desc, fmt(amount), unit or "", cls, single, sad, names, status, source]
        rows.append(row)
        table[code] = {"class": cls, "amount": amount, "unit": unit, "desc": desc}
    # curated rows for codes the HCPCS extract does not have (none today: a check, not a fallback);
    # the 2020 fallback lacks every code created since (successors, biosimilars): named and skipped
    missing = sorted(set(curated) - codes)
    if missing and (SRC / "hcpcs2026_drugs.csv").is_file():
        sys.exit(f"curated/drugs_curated.csv names codes not in the HCPCS extract: {missing}")
    if missing:
        print(f"2020 fallback: curated codes newer than the file, skipped: {missing}", file=sys.stderr)
    rows.sort(key=lambda r: r[0])
    return rows, table


_FORM = re.compile(
    r"\s(Injection|Injectable Solution|Injectable Suspension|Prefilled Syringe|Auto-Injector|"
    r"Pen Injector|Cartridge|Drug Implant|Injectable Foam|Injectable Product)$"
)
#: what an RxNorm name may say before the ingredient: "Sensor" (a connected pen), a dose count
#: ("0.5 UNT Doses"), a duration ("1-Month"), the volume or time ("3 ML", "24 HR")
_LEAD = re.compile(
    r"^(?:Sensor )?(?:\d*\.?\d+ UNT Doses )?(?:\d+-(?:Month|Day) )?(?:(\d*\.?\d+) (ML|HR|ACTUAT) )?"
)
_COMPONENT = re.compile(r"^(.*?)(?: (\d*\.?\d+) (MG|UNT|MCG|MEQ|MMOL|%)(?:/(ML|MG|ACTUAT))?)?$")
_RX_UNITS = {"MG": "mg", "UNT": "unit", "MCG": "mcg"}


_PACK = re.compile(r"^\{(.*)\}\s*Pack(?:\s*\[[^\]]+\])?$")
_PACK_PART = re.compile(r"^\s*(\d+) \((.*)\)\s*$")
_BRAND = re.compile(r"\[([^\]]+)\]$")


def brand_of(name: str) -> str | None:
    """The brand (RxNorm BN) a branded drug names in its trailing brackets ("... [Lantus]"); for a
    pack, its first component's ("{6 (... Auto-Injector [Humira]) } Pack [Humira Pen - ...]":
    Humira), else the pack's own."""
    text = name.strip()
    pack = _PACK.match(text)
    if pack:
        first = _PACK_PART.match(re.split(r"(?<=\)) / (?=\d+ \()", pack.group(1))[0])
        inner = brand_of(first.group(2)) if first else None
        if inner:
            return inner
    m = _BRAND.search(text)
    return m.group(1).strip() if m else None


def parse_pack(name: str):
    """An RxNorm pack (GPCK/BPCK: "{2 (1 ML ... Prefilled Syringe [Brand]) } Pack [Brand]") whose
    components are all one product: that product, as :func:`parse_product` reads it; else None
    (a pack of different drugs or strengths has no one HCPCS)."""
    m = _PACK.match(name.strip())
    if not m:
        return None
    parts = [_PACK_PART.match(p) for p in re.split(r"(?<=\)) / (?=\d+ \()", m.group(1))]
    if not parts or not all(parts):
        return None
    products = {parse_product(p.group(2)) for p in parts if p}  # type: ignore[union-attr]
    if len(products) != 1 or None in products:
        return None
    return products.pop()


def parse_product(name: str):
    """(ingredient key, dose form, strength tuple or None) of an RxNorm product name, or None."""
    if name.strip().startswith("{"):
        return parse_pack(name)
    text = re.sub(r"\s*\[[^\]]+\]$", "", name.strip())
    m = _FORM.search(text)
    if not m:
        return None
    form = m.group(1)
    text = text[: m.start()]
    text = _LEAD.sub("", text, count=1)
    parts = [p.strip() for p in text.split(" / ")]
    names, strengths = [], []
    for part in parts:
        c = _COMPONENT.match(part)
        if not c:
            return None
        names.append(c.group(1).lower())
        strengths.append(c.groups()[1:])
    strength = None
    if len(strengths) == 1 and strengths[0][0] and strengths[0][2] == "ML":
        value, unit = strengths[0][0], _RX_UNITS.get(strengths[0][1])
        if unit:
            strength = (value, unit, "1", "mL")
    return " / ".join(names), form, strength


def build_codes(drugs: dict[str, dict]) -> tuple[list[list[str]], dict[str, set[str]]]:
    """drug_codes.csv rows, and brand (lower case) -> the HCPCS codes its branded drugs got."""
    header = [
        "system", "code", "hcpcs", "strength_value", "strength_unit", "per_value", "per_unit",
        "display", "salt", "source",
    ]
    rules: dict[str, list[dict]] = {}
    for r in read(CUR / "rxnorm_rules.csv"):
        if r["hcpcs"] not in drugs:
            sys.exit(f"rxnorm_rules.csv: {r['hcpcs']} ({r['ingredient']}) is not a drug code")
        rules.setdefault(r["ingredient"].lower(), []).append(r)
    brand_rules: dict[str, dict] = {}
    for n, r in enumerate(read(CUR / "brand_rules.csv"), start=2):
        if r["hcpcs"] not in drugs:
            sys.exit(f"brand_rules.csv row {n}: {r['hcpcs']} ({r['brand']}) is not a drug code")
        if not r["source"].strip():
            sys.exit(f"brand_rules.csv row {n}: column 'source' is empty")
        brand_rules[r["brand"].lower()] = r
    out: list[list[str]] = []
    brands: dict[str, set[str]] = {}
    seen: set[tuple[str, str]] = set()
    for r in read(CUR / "drug_codes_curated.csv"):
        if r["hcpcs"] not in drugs:
            sys.exit(f"drug_codes_curated.csv: {r['hcpcs']} is not a drug code")
        out.append([r.get(h, "") for h in header])
        seen.add((r["system"], r["code"]))
    extracts = (
        [
            (r["rxcui"], r["name"], VSAC_SOURCE, r["value_set"].split(" value set ", 1)[-1])
            for r in read(SRC / "rxnorm_vsac_injectables.csv")
        ]
        + [
            (r["rxcui"], r["name"], ECQM_SOURCE, r["value_set"].split(" value set ", 1)[-1])
            for r in read(SRC / "rxnorm_ecqm_2025.csv")
        ]
        + [(r["rxcui"], r["name"], SYNTHEA_SOURCE, "") for r in read(SRC / "rxnorm_synthea.csv")]
    )
    for code, name, template, value_set in extracts:
        if (RXNORM, code) in seen:
            continue
        parsed = parse_product(name)
        if parsed is None:  # an ingredient: no form, no strength
            key, form, strength = name.lower(), None, None
            if re.search(r"\d", key) or name.lstrip().startswith("{"):
                continue
        else:
            key, form, strength = parsed
        brand = brand_of(name)
        for rule in rules.get(key, []):
            if rule["forms"] and (form is None or not re.fullmatch(rule["forms"], form)):
                continue
            seen.add((RXNORM, code))
            s = strength or ("", "", "", "")
            source = template.format(value_set=f"value set {value_set}", rule=rule["ingredient"])
            hcpcs, salt = rule["hcpcs"], rule["salt"]
            by_brand = brand_rules.get(brand.lower()) if brand else None
            if by_brand is not None:  # the brand has its own code (Fiasp J1812, not insulin J1815)
                hcpcs, salt = by_brand["hcpcs"], by_brand["salt"] or salt
                source += f"; brand '{brand}': {hcpcs} by mappings/build/curated/brand_rules.csv"
            out.append([RXNORM, code, hcpcs, *s, name, salt, source])
            if brand:
                brands.setdefault(brand.lower(), set()).add(hcpcs)
            break
    return [header, *out], brands


def curated_brands(drugs: dict[str, dict]) -> dict[str, str]:
    """curated/brands.csv: brand (lower case) -> HCPCS, each row checked: a drug code, a source, and
    for a code of a drug family (../drug_families.csv) its salt, whose ``salt_words`` must name the
    brand (so that the brand in free text fixes the salt: Depo-Medrol, methylprednisolone acetate)."""
    families: dict[str, dict] = {r["hcpcs"]: r for r in read(ROOT / "mappings" / USERS[0])}
    out: dict[str, str] = {}
    for n, r in enumerate(read(CUR / "brands.csv"), start=2):
        where = f"brands.csv row {n} ({r['brand']})"
        brand, code = r["brand"].strip().lower(), r["hcpcs"].strip()
        if not brand or not r["source"].strip():
            sys.exit(f"{where}: brand and source are required")
        if code not in drugs:
            sys.exit(f"{where}: hcpcs '{code}' is not a drug code")
        if brand in out and out[brand] != code:
            sys.exit(f"{where}: the brand is listed with {out[brand]} already")
        member = families.get(code)
        if member is not None:
            words = [w.strip().lower() for w in member["salt_words"].split("|")]
            if r["salt"].strip().lower() != member["salt"].lower() or brand not in words:
                sys.exit(
                    f"{where}: {code} is in drug family '{member['family']}': give salt "
                    f"'{member['salt']}' and add '{brand}' to its salt_words in drug_families.csv"
                )
        out[brand] = code
    return out


def brand_names(
    rows: list[list[str]], brands: dict[str, set[str]], curated: dict[str, str]
) -> list[list[str]]:
    """drugs.csv rows with brand names added to ``names`` (name matching): each brand of
    curated/brands.csv, and each brand whose RxNorm branded drugs all got one HCPCS; a brand another
    code already names is left to that code (a curated one may not be: the build stops)."""
    taken: dict[str, str] = {}
    for r in rows:
        for name in filter(None, (n.strip().lower() for n in r[7].split("|"))):
            taken[name] = r[0]
    found = {brand: codes for brand, codes in brands.items() if len(codes) == 1}
    for brand, code in curated.items():
        if brand in found and found[brand] != {code}:
            sys.exit(f"brands.csv: {brand} is {code} there, {found[brand]} by its branded drugs")
        if taken.get(brand, code) != code:
            sys.exit(f"brands.csv: {brand} is {code} there, {taken[brand]} in drugs_curated.csv")
        found[brand] = {code}
    add: dict[str, list[str]] = {}
    for brand, codes in sorted(found.items()):
        (code,) = codes
        if brand not in taken:
            add.setdefault(code, []).append(brand)
    out = []
    for r in rows:
        extra = add.get(r[0])
        if extra:
            r = list(r)
            r[7] = "|".join(filter(None, [r[7], *extra]))
            r[9] += (
                "; brand names " + ", ".join(extra) + " from mappings/build/curated/brands.csv "
                "and the RxNorm branded drugs ('... [Brand]') drug_codes.csv maps to this code "
                "(their rows give the sources)"
            )
        out.append(r)
    return out


def render(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    ap.add_argument("--out", type=Path, default=ROOT / "mappings")
    a = ap.parse_args(argv)
    rows, table = build_drugs()
    header = [
        "hcpcs", "description", "unit_amount", "unit", "drug_class", "single_dose",
        "self_administered", "names", "unit_status", "source",
    ]
    codes, brands = build_codes(table)
    rows = brand_names(rows, brands, curated_brands(table))
    files = {"drugs.csv": render([header, *rows]), "drug_codes.csv": render(codes)}
    stale = []
    for name, text in files.items():
        path = a.out / name
        if a.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale: {', '.join(stale)} (run mappings/build/build_drugs.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
