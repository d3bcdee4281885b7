"""The drug tables: HCPCS drugs and the codes that name them, vaccines and their administration
codes, anti-neoplastic classes, and dose forms."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from ..decision.drug_tables import (
    CodeChange,
    CodeStart,
    DoseForm,
    DoseFormCategory,
    Drug,
    DrugByDiagnosis,
    DrugCode,
    DrugFamily,
    FamilyMember,
    Package,
    Vaccine,
)
from ..decision.ruleset import (
    CONTAINERS,
    DOSE_FORM_OUTCOMES,
    DRUG_CLASSES,
    PAYER_TYPES,
    SINGLE_DOSE,
    SYSTEM_NDC,
    UNIT_STATUSES,
    UNITS,
    VACCINE_GROUPS,
)
from ..decision.units import ndc11, unit_of
from ..errors import MappingError
from .table import Table, split_names

__all__ = [
    "read_antineoplastic",
    "read_code_changes",
    "read_code_starts",
    "read_dose_form_categories",
    "read_dose_forms",
    "read_drug_by_diagnosis",
    "read_drug_codes",
    "read_drug_families",
    "read_drugs",
    "read_packages",
    "read_vaccine_admin",
    "read_vaccines",
]


def read_drugs(d: Path) -> tuple[dict[str, Drug], list[tuple[str, str]]]:
    """drugs.csv: the HCPCS drug codes, and (name, hcpcs) for matching a drug by name."""
    t = Table(
        d,
        "drugs.csv",
        (
            "hcpcs",
            "description",
            "unit_amount",
            "unit",
            "drug_class",
            "single_dose",
            "self_administered",
            "names",
            "unit_status",
            "source",
        ),
    )
    drugs: dict[str, Drug] = {}
    seen: dict = {}
    names: list[tuple[str, str]] = []
    for n, r in t.rows():
        code = t.require(n, r, "hcpcs")
        t.unique(seen, code, n)
        cls = t.choice(n, r, "drug_class", DRUG_CLASSES)
        status = t.choice(n, r, "unit_status", set(UNIT_STATUSES))
        if cls in ("unclassified", "device", "vaccine") and status == "parsed":
            raise t.error(n, f"a {cls} code is billed per item: unit_status 'per-item'")
        if (cls == "unclassified") != (status == "noc") and cls != "antineoplastic":
            raise t.error(
                n,
                "unit_status 'noc' is for the not-otherwise-classified codes (drug_class "
                "'unclassified', or 'antineoplastic' for J9999) and they have it",
            )
        parsed = status == "parsed"
        amount = t.decimal(n, r, "unit_amount", required=parsed)
        unit = t.choice(n, r, "unit", UNITS | ({""} if not parsed else set())) or None
        if not parsed and (amount is not None or unit is not None):
            raise t.error(n, f"unit_status '{status}' has no unit_amount or unit")
        drugs[code] = Drug(
            code,
            t.require(n, r, "description"),
            amount,
            unit,
            cls,
            (single := t.choice(n, r, "single_dose", set(SINGLE_DOSE))) == "yes",
            t.yes_no(n, r, "self_administered"),
            split_names(r["names"]),
            status,
            single == "varies",
        )
        names.extend((name, code) for name in drugs[code].names)
    for code in ("J3490", "J9999"):  # the successors of the codes CMS deleted without one
        if code not in drugs or drugs[code].unit_status != "noc":
            raise MappingError(
                "drugs.csv",
                None,
                f"{code} (not otherwise classified) must be listed, unit_status noc",
            )
    return drugs, names


def read_drug_codes(d: Path, drugs: dict[str, Drug]) -> dict[tuple[str, str], DrugCode]:
    """drug_codes.csv: RxNorm/NDC/other codes -> HCPCS drug (one of ``drugs``), with the strength."""
    t = Table(
        d,
        "drug_codes.csv",
        (
            "system",
            "code",
            "hcpcs",
            "strength_value",
            "strength_unit",
            "per_value",
            "per_unit",
            "display",
            "salt",
            "source",
        ),
    )
    drug_codes: dict[tuple[str, str], DrugCode] = {}
    seen: dict = {}
    for n, r in t.rows():
        key = t.coding_key(n, r, seen)
        hcpcs = t.require(n, r, "hcpcs")
        if hcpcs not in drugs:
            raise t.error(n, f"hcpcs '{hcpcs}' is not in drugs.csv")
        if key[0] == SYSTEM_NDC and not (key[1].isdigit() and len(key[1]) == 11):
            raise t.error(n, f"NDC '{key[1]}' must be 11 digits (5-4-2, no hyphens)")
        strength = None
        if any(r[c] for c in ("strength_value", "strength_unit", "per_value", "per_unit")):
            strength = (
                t.decimal(n, r, "strength_value"),
                t.choice(n, r, "strength_unit", UNITS),
                t.decimal(n, r, "per_value"),
                t.choice(n, r, "per_unit", UNITS),
            )
        drug_codes[key] = DrugCode(hcpcs, r["display"], strength, r["salt"].lower() or None)
    return drug_codes


def read_drug_families(d: Path, drugs: dict[str, Drug]) -> dict[str, DrugFamily]:
    """drug_families.csv: the HCPCS codes of one ingredient that differ by salt or size -> HCPCS ->
    its family (members by salt, then size ascending)."""
    t = Table(
        d, "drug_families.csv", ("family", "hcpcs", "salt", "salt_words", "size", "unit", "source")
    )
    by_family: dict[str, list[FamilyMember]] = {}
    seen: dict = {}
    for n, r in t.rows():
        family = t.require(n, r, "family").lower()
        hcpcs = t.require(n, r, "hcpcs")
        t.unique(seen, hcpcs, n)
        if hcpcs not in drugs:
            raise t.error(n, f"hcpcs '{hcpcs}' is not in drugs.csv")
        size = t.decimal(n, r, "size", required=False)
        unit = t.choice(n, r, "unit", UNITS | ({""} if size is None else set())) or None
        words = split_names(r["salt_words"])
        salt = t.require(n, r, "salt").lower()
        by_family.setdefault(family, []).append(
            FamilyMember(hcpcs, salt, words or (salt,), size, unit)
        )
    out: dict[str, DrugFamily] = {}
    for family, members in by_family.items():
        if len(members) < 2:
            raise MappingError("drug_families.csv", None, f"family '{family}' has one code only")
        salts = list(dict.fromkeys(m.salt for m in members))
        ordered = sorted(members, key=lambda m: (salts.index(m.salt), m.size is None, m.size or 0))
        fam = DrugFamily(family, tuple(ordered))
        out.update((m.hcpcs, fam) for m in members)
    return out


def read_vaccines(
    d: Path, diagnosis_rules: set[str] | frozenset[str] = frozenset()
) -> tuple[dict[str, Vaccine], list[tuple[str, str]]]:
    """vaccines.csv: CVX codes, and (name, cvx) for matching a vaccine by name.

    ``medicare_part_b`` is yes, no (Part D), or the name of a diagnosis rule of
    diagnosis_groups.csv under which Part B covers it (``injury``: tetanus given for a wound).
    An empty ``product_code`` is a CVX that names no one product (CVX 213, COVID-19 unspecified):
    the administration code is known, a person codes the product."""
    t = Table(
        d,
        "vaccines.csv",
        ("cvx", "display", "product_code", "vaccine_group", "medicare_part_b", "names", "source"),
    )
    vaccines: dict[str, Vaccine] = {}
    names: list[tuple[str, str]] = []
    seen: dict = {}
    part_b_values = {"yes", "no"} | set(diagnosis_rules)
    for n, r in t.rows():
        cvx = t.require(n, r, "cvx")
        t.unique(seen, cvx, n)
        product = r["product_code"]
        if product and not (len(product) == 5 and product.isdigit()):
            raise t.error(n, f"column 'product_code' is '{product}', expected a 5-digit CPT code")
        part_b = t.choice(n, r, "medicare_part_b", part_b_values)
        vaccines[cvx] = Vaccine(
            cvx,
            r["display"],
            product,
            t.choice(n, r, "vaccine_group", VACCINE_GROUPS),
            split_names(r["names"]),
            part_b == "yes",
            part_b if part_b not in ("yes", "no") else None,
        )
        names.extend((name, cvx) for name in vaccines[cvx].names)
    return vaccines, names


def read_vaccine_admin(d: Path) -> dict[tuple[str, str], str]:
    """vaccine_admin.csv: (payer type, vaccine group) -> the administration code billed for a vaccine."""
    t = Table(
        d,
        "vaccine_admin.csv",
        ("payer_type", "vaccine_group", "admin_code", "description", "source"),
    )
    vaccine_admin: dict[tuple[str, str], str] = {}
    seen: dict = {}
    for n, r in t.rows():
        key = (
            t.choice(n, r, "payer_type", PAYER_TYPES | {"*"}),
            t.choice(n, r, "vaccine_group", VACCINE_GROUPS | {"*"}),
        )
        t.unique(seen, key, n)
        vaccine_admin[key] = t.require(n, r, "admin_code")
    if ("*", "*") not in vaccine_admin:
        raise MappingError(
            "vaccine_admin.csv",
            None,
            "needs a default row with payer_type '*' and vaccine_group '*'",
        )
    return vaccine_admin


def read_dose_form_categories(d: Path) -> dict[str, DoseFormCategory]:
    """dose_form_categories.csv: what a dose form category means when no route is given."""
    t = Table(
        d,
        "dose_form_categories.csv",
        ("category", "outcome", "procedure_code", "description", "source"),
    )
    categories: dict[str, DoseFormCategory] = {}
    seen: dict = {}
    for n, r in t.rows():
        category = t.require(n, r, "category")
        t.unique(seen, category, n)
        outcome = t.choice(n, r, "outcome", set(DOSE_FORM_OUTCOMES))
        code = r["procedure_code"] or None
        if outcome == "not-96372" and code is None:
            raise t.error(n, "outcome 'not-96372' needs the procedure_code that applies instead")
        if outcome != "not-96372" and code is not None:
            raise t.error(n, f"procedure_code '{code}' is only for outcome 'not-96372'")
        categories[category] = DoseFormCategory(category, outcome, code, r["description"])
    return categories


def read_dose_forms(
    d: Path, categories: dict[str, DoseFormCategory]
) -> tuple[dict[tuple[str, str], DoseForm], dict[str, DoseForm]]:
    """dose_forms.csv: Medication.form codings (match ``code``) and the RxNorm dose form names a
    product's name ends in (match ``name``), each with its category in dose_form_categories.csv."""
    t = Table(d, "dose_forms.csv", ("match", "system", "code", "display", "category", "source"))
    by_code: dict[tuple[str, str], DoseForm] = {}
    by_name: dict[str, DoseForm] = {}
    seen: dict = {}
    for n, r in t.rows():
        match = t.choice(n, r, "match", {"code", "name"})
        category = t.choice(n, r, "category", categories.keys())
        name = t.require(n, r, "display")
        form = DoseForm(name, category)
        if match == "code":
            key = t.coding_key(n, r, seen)
            by_code[key] = form
            continue
        if r["system"] or r["code"]:
            raise t.error(n, "a 'name' row has no system or code: the name is in column 'display'")
        words = " ".join(name.lower().split())
        t.unique(seen, ("name", words), n)
        by_name[words] = form
    return by_code, by_name


def read_antineoplastic(d: Path) -> dict[str, str]:
    """antineoplastic.csv: anti-neoplastic drug class -> the procedure billed instead of 96372."""
    t = Table(d, "antineoplastic.csv", ("drug_class", "procedure_code", "description", "source"))
    antineoplastic = {}
    for n, r in t.rows():
        antineoplastic[
            t.choice(n, r, "drug_class", {"antineoplastic", "antineoplastic-hormonal"})
        ] = t.require(n, r, "procedure_code")
    return antineoplastic


def read_packages(d: Path) -> dict[tuple[str, str], Package]:
    """packages.csv: what one container of a product (RxNorm clinical drug, NDC package) holds."""
    t = Table(
        d,
        "packages.csv",
        ("system", "code", "package_amount", "package_unit", "container", "display", "source"),
    )
    packages: dict[tuple[str, str], Package] = {}
    seen: dict = {}
    for n, r in t.rows():
        key = t.coding_key(n, r, seen)
        if key[0] == SYSTEM_NDC and not (key[1].isdigit() and len(key[1]) == 11):
            raise t.error(n, f"NDC '{key[1]}' must be 11 digits (5-4-2, no hyphens)")
        amount = t.decimal(n, r, "package_amount")
        unit = t.require(n, r, "package_unit")
        if unit_of(unit) is None:
            raise t.error(n, f"package_unit '{unit}' is not a known mass, volume or unit code")
        packages[key] = Package(
            amount,
            unit,
            t.choice(n, r, "container", CONTAINERS),
            "packages.csv",
            r["display"] or None,
        )
    return packages


def read_drug_by_diagnosis(
    d: Path, drugs: dict[str, Drug], rules: set[str]
) -> dict[str, DrugByDiagnosis]:
    """drug_by_diagnosis.csv: HCPCS pairs chosen by a diagnosis rule of diagnosis_groups.csv,
    keyed by both codes (either one mapped from the product is swapped for the right one)."""
    t = Table(d, "drug_by_diagnosis.csv", ("rule", "hcpcs_if", "hcpcs_else", "source"))
    pairs: dict[str, DrugByDiagnosis] = {}
    for n, r in t.rows():
        rule = t.choice(n, r, "rule", rules)
        pair = DrugByDiagnosis(rule, t.require(n, r, "hcpcs_if"), t.require(n, r, "hcpcs_else"))
        for code in (pair.hcpcs_if, pair.hcpcs_else):
            if code not in drugs:
                raise t.error(n, f"hcpcs '{code}' is not in drugs.csv")
            if code in pairs:
                raise t.error(n, f"hcpcs '{code}' is already in a pair")
            pairs[code] = pair
    return pairs


def read_code_changes(d: Path, drugs: dict[str, Drug]) -> dict[str, tuple[CodeChange, ...]]:
    """code_changes.csv: a HCPCS code CMS ended -> its successor(s) by service date (a product's
    own successor, by NDC, before the general one)."""
    t = Table(d, "code_changes.csv", ("old_hcpcs", "new_hcpcs", "ndc", "effective", "source"))
    out: dict[str, list[CodeChange]] = {}
    seen: dict = {}
    for n, r in t.rows():
        old, new = t.require(n, r, "old_hcpcs"), t.require(n, r, "new_hcpcs")
        for column, code in (("old_hcpcs", old), ("new_hcpcs", new)):
            if code not in drugs:
                raise t.error(n, f"{column} '{code}' is not in drugs.csv")
        if old == new:
            raise t.error(n, f"new_hcpcs '{new}' is old_hcpcs")
        ndc = None
        if r["ndc"]:
            ndc = ndc11(r["ndc"])
            if ndc is None:
                raise t.error(n, f"column 'ndc' is '{r['ndc']}', not an NDC")
        try:
            effective = date.fromisoformat(t.require(n, r, "effective"))
        except ValueError:
            raise t.error(
                n, f"column 'effective' is '{r['effective']}', not a date YYYY-MM-DD"
            ) from None
        t.unique(seen, (old, ndc), n)
        out.setdefault(old, []).append(CodeChange(old, new, effective, ndc))
    for old, changes in out.items():
        if all(c.ndc is not None for c in changes):
            raise MappingError("code_changes.csv", None, f"'{old}' has only product (ndc) rows")
    chained = {c.new for cs in out.values() for c in cs} & set(out)
    if chained:
        raise MappingError(
            "code_changes.csv", None, f"successor(s) {', '.join(sorted(chained))} also ended"
        )
    return {old: tuple(sorted(cs, key=lambda c: c.ndc is None)) for old, cs in out.items()}


def read_code_starts(d: Path, drugs: dict[str, Drug]) -> dict[str, CodeStart]:
    """code_starts.csv: a HCPCS code CMS added on a date -> the code its drug was billed with
    before that date (the HCPCS file's added date; a not-otherwise-classified code, usually)."""
    t = Table(d, "code_starts.csv", ("hcpcs", "added", "before_hcpcs", "source"))
    out: dict[str, CodeStart] = {}
    for n, r in t.rows():
        code, before = t.require(n, r, "hcpcs"), t.require(n, r, "before_hcpcs")
        t.require(n, r, "source")
        for column, value in (("hcpcs", code), ("before_hcpcs", before)):
            if value not in drugs:
                raise t.error(n, f"{column} '{value}' is not in drugs.csv")
        if code == before:
            raise t.error(n, f"before_hcpcs '{before}' is hcpcs")
        if code in out:
            raise t.error(n, f"hcpcs '{code}' is already listed")
        try:
            added = date.fromisoformat(t.require(n, r, "added"))
        except ValueError:
            raise t.error(n, f"column 'added' is '{r['added']}', not a date YYYY-MM-DD") from None
        out[code] = CodeStart(code, added, before)
    return out
