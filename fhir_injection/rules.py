"""Load and validate the billing rules in ``mappings/``.

Every table is a CSV file a billing analyst can open in a spreadsheet; every row
carries its ``source``. Loading checks each row and raises :class:`MappingError`
naming the file and the row (1-based, counting the header as row 1) — a broken
rule table must stop a run before it produces a single wrong claim.

The loaded :class:`~fhir_injection.decision.rules.Rules` object is immutable plain data
(its types live in :mod:`fhir_injection.decision.rules`); the engine reads it. One loader
per table, each naming its file. The run's TOML configuration is :mod:`fhir_injection.config`.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Literal, overload

from .bundled import mappings_dir
from .decision.elements import name_key
from .decision.rules import (
    DOSE_FORM_OUTCOMES,
    DRUG_CLASSES,
    GAP_SCOPES,
    INFUSION_KINDS,
    IV_ROUTES,
    PAYER_CODE_TYPES,
    PAYER_TYPES,
    REQUIRED_GAPS,
    ROUTES,
    SC_IM,
    SETTINGS,
    SEVERITIES,
    SYSTEM_NDC,
    TECHNIQUES,
    UNITS,
    VACCINE_GROUPS,
    DoseForm,
    DoseFormCategory,
    Drug,
    DrugCode,
    Fee,
    GapType,
    Hydration,
    Infusion,
    IvSignals,
    NameRule,
    PayerCode,
    PayerRule,
    Procedure,
    Rules,
    Setting,
    Site,
    Vaccine,
    normal_text,
)
from .errors import MappingError

DEFAULT_DIR = mappings_dir()  # the wheel's copy, or mappings/ in a source checkout


class _Table:
    """Reads one CSV, checking its header; yields (row_number, row)."""

    def __init__(self, directory: Path, name: str, columns: tuple[str, ...]):
        self.name = name
        self.path = directory / name
        self.columns = columns

    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        if not self.path.is_file():
            raise MappingError(self.name, None, "file is missing")
        with self.path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = tuple(reader.fieldnames or ())
            missing = [c for c in self.columns if c not in header]
            if missing:
                raise MappingError(self.name, 1, f"header lacks column(s) {', '.join(missing)}")
            for number, row in enumerate(reader, start=2):
                if None in row:
                    raise MappingError(
                        self.name, number, "more values than header columns (unquoted comma?)"
                    )
                row = {k: (v or "").strip() for k, v in row.items()}
                if not any(row.values()):
                    continue
                if not row.get("source"):
                    raise MappingError(
                        self.name, number, "column 'source' is empty: every rule names its source"
                    )
                yield number, row

    def error(self, row: int, message: str) -> MappingError:
        return MappingError(self.name, row, message)

    def require(self, row: int, values: dict[str, str], column: str) -> str:
        value = values[column]
        if not value:
            raise self.error(row, f"column '{column}' is empty")
        return value

    def choice(self, row: int, values: dict[str, str], column: str, allowed) -> str:
        value = values[column]
        if value not in allowed:
            raise self.error(
                row, f"column '{column}' is '{value}', expected one of {', '.join(sorted(allowed))}"
            )
        return value

    def yes_no(self, row: int, values: dict[str, str], column: str) -> bool:
        return self.choice(row, values, column, {"yes", "no"}) == "yes"

    @overload
    def decimal(
        self, row: int, values: dict[str, str], column: str, required: Literal[True] = ...
    ) -> Decimal: ...
    @overload
    def decimal(
        self, row: int, values: dict[str, str], column: str, required: bool
    ) -> Decimal | None: ...
    def decimal(
        self, row: int, values: dict[str, str], column: str, required: bool = True
    ) -> Decimal | None:
        raw = values[column]
        if not raw and not required:
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise self.error(row, f"column '{column}' is '{raw}', not a number") from None
        if not value.is_finite() or value <= 0:
            raise self.error(row, f"column '{column}' must be a positive number, got '{raw}'")
        return value

    def unique(self, seen: dict, key, row: int) -> None:
        if key in seen:
            raise self.error(row, f"duplicate key {key} (first at row {seen[key]})")
        seen[key] = row


def _names(raw: str) -> tuple[str, ...]:
    return tuple(n.strip().lower() for n in raw.split("|") if n.strip())


def _by_length(pairs: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(pairs, key=lambda p: (-len(p[0]), p[0])))


def load_rules(directory: str | Path | None = None) -> Rules:
    """Load every table from ``directory`` (default: the bundled ``mappings/``).

    The tables load in this order, so that with several files broken the first error is always
    the same one; drug_codes.csv is checked against drugs.csv.
    """
    d = Path(directory) if directory else DEFAULT_DIR
    if not d.is_dir():
        raise MappingError(str(d), None, "mappings directory not found")
    drugs, drug_names = _drugs(d)
    drug_codes = _drug_codes(d, drugs)
    vaccines, vaccine_names = _vaccines(d)
    vaccine_admin = _vaccine_admin(d)
    routes = _routes(d)
    route_text = _route_text(d)
    procedures = _procedures(d)
    infusions = _infusions(d)
    iv_signals = _iv_methods(d)
    hydration = _hydration(d)
    antineoplastic = _antineoplastic(d)
    sites = _sites(d)
    laterality = _laterality(d)
    settings = _settings(d)
    encounter_types, encounter_type_ranges, encounter_type_texts = _encounter_types(d)
    payers = _payers(d)
    payer_codes, payer_code_prefixes = _payer_codes(d)
    payer_names, payer_name_prefixes = _payer_names(d)
    payer_identifiers = _payer_identifiers(d)
    em_ranges = _evaluation_management(d)
    fees = _fee_schedule(d)
    gaps, gap_url = _load_gaps(d / "gaps.codesystem.json")
    dose_form_categories = _dose_form_categories(d)
    dose_forms, dose_form_names = _dose_forms(d, dose_form_categories)
    for route, proc in procedures.items():  # checked after the gaps, as it always was
        if route in SC_IM and proc.code is None:
            raise MappingError("procedures.csv", None, f"route '{route}' needs a procedure code")
        if route in IV_ROUTES and proc.outcome != "not-96372":
            raise MappingError("procedures.csv", None, f"route '{route}' must be not-96372")

    freeze = MappingProxyType
    return Rules(
        directory=str(d),
        drugs=freeze(drugs),
        drug_codes=freeze(drug_codes),
        drug_names=_by_length(drug_names),
        vaccines=freeze(vaccines),
        vaccine_names=_by_length(vaccine_names),
        vaccine_admin=freeze(vaccine_admin),
        routes=freeze(routes),
        route_text=freeze(route_text),
        infusions=freeze(infusions),
        iv_signals=iv_signals,
        hydration=hydration,
        procedures=freeze(procedures),
        antineoplastic=freeze(antineoplastic),
        sites=freeze(sites),
        laterality=freeze(laterality),
        settings=freeze(settings),
        payers=freeze(payers),
        payer_codes=freeze(payer_codes),
        payer_code_prefixes=freeze(payer_code_prefixes),
        payer_names=freeze(payer_names),
        payer_name_prefixes=payer_name_prefixes,
        payer_identifiers=freeze(payer_identifiers),
        encounter_types=freeze(encounter_types),
        encounter_type_ranges=freeze(encounter_type_ranges),
        encounter_type_texts=freeze(encounter_type_texts),
        em_ranges=tuple(em_ranges),
        fees=freeze(fees),
        gaps=freeze(gaps),
        gap_codesystem_url=gap_url,
        dose_forms=freeze(dose_forms),
        dose_form_names=freeze(dose_form_names),
        dose_form_name_words=tuple(
            sorted({len(name.split()) for name in dose_form_names}, reverse=True)
        ),
        dose_form_categories=freeze(dose_form_categories),
    )


def _drugs(d: Path) -> tuple[dict[str, Drug], list[tuple[str, str]]]:
    """drugs.csv: the HCPCS drug codes, and (name, hcpcs) for matching a drug by name."""
    t = _Table(
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
        per_item = cls in ("unclassified", "device")  # J3490 and devices: no dose-based unit
        amount = t.decimal(n, r, "unit_amount", required=not per_item)
        unit = t.choice(n, r, "unit", UNITS | ({""} if per_item else set())) or None
        drugs[code] = Drug(
            code,
            t.require(n, r, "description"),
            amount,
            unit,
            cls,
            t.yes_no(n, r, "single_dose"),
            t.yes_no(n, r, "self_administered"),
            _names(r["names"]),
        )
        names.extend((name, code) for name in drugs[code].names)
    if "J3490" not in drugs:
        raise MappingError("drugs.csv", None, "J3490 (unclassified drugs) must be listed")
    return drugs, names


def _drug_codes(d: Path, drugs: dict[str, Drug]) -> dict[tuple[str, str], DrugCode]:
    """drug_codes.csv: RxNorm/NDC/other codes -> HCPCS drug (one of ``drugs``), with the strength."""
    t = _Table(
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
            "source",
        ),
    )
    drug_codes: dict[tuple[str, str], DrugCode] = {}
    seen: dict = {}
    for n, r in t.rows():
        key = (t.require(n, r, "system"), t.require(n, r, "code"))
        t.unique(seen, key, n)
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
        drug_codes[key] = DrugCode(hcpcs, r["display"], strength)
    return drug_codes


def _vaccines(d: Path) -> tuple[dict[str, Vaccine], list[tuple[str, str]]]:
    """vaccines.csv: CVX codes, and (name, cvx) for matching a vaccine by name."""
    t = _Table(
        d, "vaccines.csv", ("cvx", "display", "product_code", "vaccine_group", "names", "source")
    )
    vaccines: dict[str, Vaccine] = {}
    names: list[tuple[str, str]] = []
    seen: dict = {}
    for n, r in t.rows():
        cvx = t.require(n, r, "cvx")
        t.unique(seen, cvx, n)
        vaccines[cvx] = Vaccine(
            cvx,
            r["display"],
            t.require(n, r, "product_code"),
            t.choice(n, r, "vaccine_group", VACCINE_GROUPS),
            _names(r["names"]),
        )
        names.extend((name, cvx) for name in vaccines[cvx].names)
    return vaccines, names


def _vaccine_admin(d: Path) -> dict[tuple[str, str], str]:
    """vaccine_admin.csv: (payer type, vaccine group) -> the administration code billed for a vaccine."""
    t = _Table(
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


def _routes(d: Path) -> dict[tuple[str, str], str]:
    """routes.csv: route codings -> route."""
    t = _Table(d, "routes.csv", ("system", "code", "display", "route", "source"))
    routes: dict[tuple[str, str], str] = {}
    seen: dict = {}
    for n, r in t.rows():
        key = (t.require(n, r, "system"), t.require(n, r, "code"))
        t.unique(seen, key, n)
        routes[key] = t.choice(n, r, "route", ROUTES)
    return routes


def _route_text(d: Path) -> dict[str, str]:
    """route_text.csv: the reviewed route texts that say one route and nothing else -> route.

    Matched on the whole text, case and spacing aside; any other text is never guessed from.
    """
    t = _Table(d, "route_text.csv", ("text", "route", "source"))
    texts: dict[str, str] = {}
    seen: dict = {}
    for n, r in t.rows():
        text = normal_text(t.require(n, r, "text"))
        t.unique(seen, text, n)
        texts[text] = t.choice(n, r, "route", ROUTES)
    return texts


def _infusions(d: Path) -> dict[tuple[str, str], Infusion]:
    """infusions.csv: (kind, technique) -> the IV push or infusion code, its time limits and add-on."""
    t = _Table(
        d,
        "infusions.csv",
        (
            "kind",
            "technique",
            "procedure_code",
            "description",
            "min_minutes",
            "max_minutes",
            "addon_code",
            "addon_over_minutes",
            "source",
        ),
    )
    infusions: dict[tuple[str, str], Infusion] = {}
    seen: dict = {}
    for n, r in t.rows():
        key = (t.choice(n, r, "kind", INFUSION_KINDS), t.choice(n, r, "technique", TECHNIQUES))
        t.unique(seen, key, n)
        minutes = {}
        for column in ("min_minutes", "max_minutes", "addon_over_minutes"):
            raw = r[column]
            if raw and not (raw.isdigit() and int(raw) > 0):
                raise t.error(n, f"column '{column}' is '{raw}', not a whole number of minutes")
            minutes[column] = int(raw) if raw else None
        addon = r["addon_code"] or None
        if (addon is None) != (minutes["addon_over_minutes"] is None):
            raise t.error(n, "addon_code and addon_over_minutes go together")
        infusions[key] = Infusion(
            key[0],
            key[1],
            t.require(n, r, "procedure_code"),
            r["description"],
            minutes["min_minutes"],
            minutes["max_minutes"],
            addon,
            minutes["addon_over_minutes"],
        )
    for key in (("therapeutic", "push"), ("therapeutic", "infusion")):
        if key not in infusions:
            raise MappingError("infusions.csv", None, f"no row for {key[0]} {key[1]}")
    if infusions[("therapeutic", "push")].max_minutes is None:
        raise MappingError("infusions.csv", None, "the therapeutic push row needs max_minutes")
    return infusions


def _iv_methods(d: Path) -> IvSignals:
    """iv_methods.csv: method codes and texts that say push or infusion; duration extensions."""
    t = _Table(
        d, "iv_methods.csv", ("kind", "system", "code", "text", "technique", "display", "source")
    )
    codes: dict[tuple[str, str], str] = {}
    texts: dict[str, str] = {}
    extensions: set[str] = set()
    seen: dict = {}
    for n, r in t.rows():
        kind = t.choice(n, r, "kind", {"method-code", "method-text", "duration-extension"})
        technique = t.choice(n, r, "technique", TECHNIQUES)
        if kind == "method-code":
            key: tuple = (t.require(n, r, "system"), t.require(n, r, "code"))
            t.unique(seen, key, n)
            codes[key] = technique
        elif kind == "method-text":
            text = normal_text(t.require(n, r, "text"))
            t.unique(seen, text, n)
            texts[text] = technique
        else:
            if technique != "infusion":
                raise t.error(n, "a duration extension says infusion")
            extensions.add(t.require(n, r, "system"))
    return IvSignals(MappingProxyType(codes), MappingProxyType(texts), frozenset(extensions))


_NAME_WORDS = re.compile(r"[a-z0-9][a-z0-9\-]*")


def _hydration(d: Path) -> Hydration:
    """hydration.csv: the products (codes) and names (word sequences) that are hydration fluid."""
    t = _Table(d, "hydration.csv", ("kind", "system", "code", "name", "display", "source"))
    codes: set[tuple[str, str]] = set()
    names: list[str] = []
    for n, r in t.rows():
        if t.choice(n, r, "kind", {"code", "name"}) == "code":
            codes.add((t.require(n, r, "system"), t.require(n, r, "code")))
        else:
            words = " ".join(_NAME_WORDS.findall(t.require(n, r, "name").lower()))
            if not words:
                raise t.error(n, "column 'name' has no words")
            names.append(words)
    return Hydration(
        frozenset(codes),
        frozenset(system for system, _ in codes),
        tuple(sorted(set(names), key=lambda w: (-len(w), w))),
    )


def _procedures(d: Path) -> dict[str, Procedure]:
    """procedures.csv: route -> the procedure billed for it (one row per route)."""
    t = _Table(d, "procedures.csv", ("route", "procedure_code", "description", "outcome", "source"))
    procedures: dict[str, Procedure] = {}
    seen: dict = {}
    for n, r in t.rows():
        route = t.choice(n, r, "route", ROUTES)
        t.unique(seen, route, n)
        procedures[route] = Procedure(
            r["procedure_code"] or None,
            r["description"],
            t.choice(n, r, "outcome", {"claim", "not-96372", "not-billable"}),
        )
    for route in sorted(ROUTES - procedures.keys()):
        raise MappingError("procedures.csv", None, f"no row for route '{route}'")
    return procedures


def _dose_form_categories(d: Path) -> dict[str, DoseFormCategory]:
    """dose_form_categories.csv: what a dose form category means when no route is given."""
    t = _Table(
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


def _dose_forms(
    d: Path, categories: dict[str, DoseFormCategory]
) -> tuple[dict[tuple[str, str], DoseForm], dict[str, DoseForm]]:
    """dose_forms.csv: Medication.form codings (match ``code``) and the RxNorm dose form names a
    product's name ends in (match ``name``), each with its category in dose_form_categories.csv."""
    t = _Table(d, "dose_forms.csv", ("match", "system", "code", "display", "category", "source"))
    by_code: dict[tuple[str, str], DoseForm] = {}
    by_name: dict[str, DoseForm] = {}
    seen: dict = {}
    for n, r in t.rows():
        match = t.choice(n, r, "match", {"code", "name"})
        category = t.choice(n, r, "category", categories.keys())
        name = t.require(n, r, "display")
        form = DoseForm(name, category)
        if match == "code":
            key = (t.require(n, r, "system"), t.require(n, r, "code"))
            t.unique(seen, key, n)
            by_code[key] = form
            continue
        if r["system"] or r["code"]:
            raise t.error(n, "a 'name' row has no system or code: the name is in column 'display'")
        words = " ".join(name.lower().split())
        t.unique(seen, ("name", words), n)
        by_name[words] = form
    return by_code, by_name


def _antineoplastic(d: Path) -> dict[str, str]:
    """antineoplastic.csv: anti-neoplastic drug class -> the procedure billed instead of 96372."""
    t = _Table(d, "antineoplastic.csv", ("drug_class", "procedure_code", "description", "source"))
    antineoplastic = {}
    for n, r in t.rows():
        antineoplastic[
            t.choice(n, r, "drug_class", {"antineoplastic", "antineoplastic-hormonal"})
        ] = t.require(n, r, "procedure_code")
    return antineoplastic


def _sites(d: Path) -> dict[tuple[str, str], Site]:
    """sites.csv: body-site codings, with their display and laterality."""
    t = _Table(d, "sites.csv", ("system", "code", "display", "laterality", "source"))
    sites: dict[tuple[str, str], Site] = {}
    seen: dict = {}
    for n, r in t.rows():
        key = (t.require(n, r, "system"), t.require(n, r, "code"))
        t.unique(seen, key, n)
        sites[key] = Site(
            key[0],
            key[1],
            t.require(n, r, "display"),
            t.choice(n, r, "laterality", {"left", "right", "bilateral", ""}) or None,
        )
    return sites


def _laterality(d: Path) -> dict[tuple[str, str], str]:
    """laterality.csv: laterality qualifier codings -> left, right or bilateral."""
    t = _Table(d, "laterality.csv", ("system", "code", "laterality", "source"))
    laterality = {}
    for n, r in t.rows():
        laterality[(t.require(n, r, "system"), t.require(n, r, "code"))] = t.choice(
            n, r, "laterality", {"left", "right", "bilateral"}
        )
    return laterality


def _settings(d: Path) -> dict[tuple[str, str], Setting]:
    """settings.csv: Encounter.class codings -> setting and place of service."""
    t = _Table(
        d, "settings.csv", ("system", "code", "display", "setting", "place_of_service", "source")
    )
    settings: dict[tuple[str, str], Setting] = {}
    seen: dict = {}
    for n, r in t.rows():
        key = (t.require(n, r, "system"), t.require(n, r, "code"))
        t.unique(seen, key, n)
        pos = t.require(n, r, "place_of_service")
        if not (pos.isdigit() and len(pos) == 2):
            raise t.error(n, f"place_of_service '{pos}' must be a two-digit CMS code")
        settings[key] = Setting(t.choice(n, r, "setting", SETTINGS), pos, r["display"])
    return settings


def _payers(d: Path) -> dict[str, PayerRule]:
    """payers.csv: the rules of each payer type (one row each)."""
    t = _Table(
        d,
        "payers.csv",
        (
            "payer_type",
            "distinct_modifier",
            "requires_ndc",
            "jw_jz",
            "pays_99211_with_injection",
            "mue_96372",
            "source",
        ),
    )
    payers: dict[str, PayerRule] = {}
    for n, r in t.rows():
        pt = t.choice(n, r, "payer_type", PAYER_TYPES)
        mue = r["mue_96372"]
        if not mue.isdigit() or int(mue) < 1:
            raise t.error(n, f"mue_96372 '{mue}' must be a whole number of at least 1")
        payers[pt] = PayerRule(
            pt,
            t.choice(n, r, "distinct_modifier", {"59", "XE", "XP", "XS", "XU"}),
            t.yes_no(n, r, "requires_ndc"),
            t.yes_no(n, r, "jw_jz"),
            t.yes_no(n, r, "pays_99211_with_injection"),
            int(mue),
        )
    for pt in sorted(PAYER_TYPES - payers.keys()):
        raise MappingError("payers.csv", None, f"no row for payer_type '{pt}'")
    return payers


def _payer_codes(
    d: Path,
) -> tuple[dict[tuple[str, str], PayerCode], dict[str, tuple[tuple[str, PayerCode], ...]]]:
    """payer_codes.csv: Coverage.type codings -> payer type; exact codes, and per system the prefixes
    (longest first), so a coding is looked up in one dict and a few prefixes."""
    t = _Table(
        d,
        "payer_codes.csv",
        ("system", "code", "match", "payer_type", "kind", "display", "source"),
    )
    exact: dict[tuple[str, str], PayerCode] = {}
    prefixes: dict[str, list[tuple[str, PayerCode]]] = {}
    seen: dict = {}
    for n, r in t.rows():
        system, code = t.require(n, r, "system"), t.require(n, r, "code")
        match = t.choice(n, r, "match", {"exact", "prefix"})
        t.unique(seen, (system, code, match), n)
        kind = t.choice(n, r, "kind", {"specific", "generic"})
        payer_type = t.choice(n, r, "payer_type", PAYER_CODE_TYPES)
        if payer_type == "unknown" and kind == "specific":
            raise t.error(
                n, "payer_type 'unknown' needs kind 'generic' (a specific code names a payer)"
            )
        found = PayerCode(payer_type, kind == "specific", r["display"])
        if match == "exact":
            exact[(system, code)] = found
        else:
            prefixes.setdefault(system, []).append((code, found))
    return exact, {
        system: tuple(sorted(items, key=lambda p: (-len(p[0]), p[0])))
        for system, items in prefixes.items()
    }


_APPLIES_TO = {"type-text": (True, False), "payor-name": (False, True), "both": (True, True)}


def _payer_names(d: Path) -> tuple[dict[str, NameRule], tuple[tuple[str, NameRule], ...]]:
    """payer_names.csv: whole names (or their first words) of Coverage.type text and payors -> payer
    type, keyed as the engine reads them (:func:`~fhir_injection.decision.elements.name_key`)."""
    t = _Table(d, "payer_names.csv", ("name", "match", "applies_to", "payer_type", "source"))
    exact: dict[str, NameRule] = {}
    prefixes: list[tuple[str, NameRule]] = []
    seen: dict = {}
    for n, r in t.rows():
        key = name_key(t.require(n, r, "name"))
        if not key:
            raise t.error(n, f"name '{r['name']}' has no letters or digits")
        match = t.choice(n, r, "match", {"exact", "prefix"})
        t.unique(seen, (key, match), n)
        type_text, payor_name = _APPLIES_TO[t.choice(n, r, "applies_to", set(_APPLIES_TO))]
        rule = NameRule(t.choice(n, r, "payer_type", PAYER_TYPES), type_text, payor_name)
        if match == "exact":
            exact[key] = rule
        else:
            prefixes.append((key, rule))
    return exact, tuple(sorted(prefixes, key=lambda p: (-len(p[0]), p[0])))


def _payer_identifiers(d: Path) -> dict[tuple[str, str], str]:
    """payer_identifiers.csv: a payor Organization's identifier (system, value) -> payer type."""
    t = _Table(d, "payer_identifiers.csv", ("system", "value", "payer_type", "display", "source"))
    found: dict[tuple[str, str], str] = {}
    seen: dict = {}
    for n, r in t.rows():
        key = (t.require(n, r, "system"), t.require(n, r, "value"))
        t.unique(seen, key, n)
        found[key] = t.choice(n, r, "payer_type", PAYER_TYPES)
    return found


def _encounter_types(
    d: Path,
) -> tuple[
    dict[tuple[str, str], Setting],
    dict[str, tuple[tuple[int, int, Setting], ...]],
    dict[str, Setting],
]:
    """encounter_types.csv: Encounter.type codings (one code or a numeric range, e.g. CPT E/M) and whole
    type texts -> setting and place of service, for an encounter whose class says nothing known."""
    t = _Table(
        d,
        "encounter_types.csv",
        (
            "kind",
            "system",
            "value",
            "value_to",
            "display",
            "setting",
            "place_of_service",
            "source",
        ),
    )
    codes: dict[tuple[str, str], Setting] = {}
    ranges: dict[str, list[tuple[int, int, Setting]]] = {}
    texts: dict[str, Setting] = {}
    seen: dict = {}
    for n, r in t.rows():
        kind = t.choice(n, r, "kind", {"code", "text"})
        value = t.require(n, r, "value")
        pos = t.require(n, r, "place_of_service")
        if not (pos.isdigit() and len(pos) == 2):
            raise t.error(n, f"place_of_service '{pos}' must be a two-digit CMS code")
        setting = Setting(t.choice(n, r, "setting", SETTINGS), pos, r["display"])
        if kind == "text":
            if r["system"] or r["value_to"]:
                raise t.error(n, "a text row has no system and no value_to")
            key = name_key(value)
            t.unique(seen, ("text", key), n)
            texts[key] = setting
            continue
        system = t.require(n, r, "system")
        high = r["value_to"]
        if not high:
            t.unique(seen, (system, value), n)
            codes[(system, value)] = setting
            continue
        if not (value.isdigit() and high.isdigit() and int(value) <= int(high)):
            raise t.error(n, f"range '{value}'-'{high}' must be two numeric codes, low to high")
        t.unique(seen, (system, value, high), n)
        ranges.setdefault(system, []).append((int(value), int(high), setting))
    return codes, {system: tuple(items) for system, items in ranges.items()}, texts


def _evaluation_management(d: Path) -> list[tuple[int, int]]:
    """evaluation_management.csv: the CPT code ranges that are E/M visits."""
    t = _Table(d, "evaluation_management.csv", ("code_from", "code_to", "description", "source"))
    em_ranges = []
    for n, r in t.rows():
        lo, hi = r["code_from"], r["code_to"]
        if not (lo.isdigit() and hi.isdigit() and int(lo) <= int(hi)):
            raise t.error(n, f"code range '{lo}'-'{hi}' must be two 5-digit CPT codes, low to high")
        em_ranges.append((int(lo), int(hi)))
    return em_ranges


def _fee_schedule(d: Path) -> dict[tuple[str, str], Fee]:
    """fee_schedule.csv: (code, setting) -> fee per service or per unit."""
    t = _Table(d, "fee_schedule.csv", ("code", "setting", "amount_usd", "per", "year", "source"))
    fees: dict[tuple[str, str], Fee] = {}
    seen: dict = {}
    for n, r in t.rows():
        key = (t.require(n, r, "code"), t.choice(n, r, "setting", SETTINGS | {"*"}))
        t.unique(seen, key, n)
        fees[key] = Fee(t.decimal(n, r, "amount_usd"), t.choice(n, r, "per", {"service", "unit"}))
    return fees


def _load_gaps(path: Path) -> tuple[dict[str, GapType], str]:
    """gaps.codesystem.json: the gap codes (a FHIR CodeSystem), with severity, field and source."""
    name = path.name
    try:
        cs = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MappingError(name, None, "file is missing") from None
    except json.JSONDecodeError as exc:
        raise MappingError(name, exc.lineno, f"not valid JSON: {exc.msg}") from None
    if cs.get("resourceType") != "CodeSystem" or not cs.get("url"):
        raise MappingError(name, None, "must be a FHIR CodeSystem with a url")
    gaps: dict[str, GapType] = {}
    for i, concept in enumerate(cs.get("concept", []), start=1):
        code = concept.get("code")
        props = {
            p.get("code"): p.get("valueCode") or p.get("valueString")
            for p in concept.get("property", [])
        }
        where = f"concept {i} ({code})"
        if not code or code in gaps:
            raise MappingError(name, None, f"{where}: code missing or repeated")
        if props.get("severity") not in SEVERITIES:
            raise MappingError(
                name, None, f"{where}: property severity must be one of {', '.join(SEVERITIES)}"
            )
        if not concept.get("definition") or not props.get("field") or not props.get("source"):
            raise MappingError(
                name, None, f"{where}: needs a definition and the field and source properties"
            )
        scope = props.get("raised-for") or ("every" if props["severity"] == "info" else "96372")
        if scope not in GAP_SCOPES:
            raise MappingError(
                name,
                None,
                f"{where}: property raised-for must be one of {', '.join(sorted(GAP_SCOPES))}",
            )
        gaps[code] = GapType(
            code, props["severity"], props["field"], concept["definition"], props["source"], scope
        )
    missing = [c for c in REQUIRED_GAPS if c not in gaps]
    if missing:
        raise MappingError(name, None, f"lacks gap code(s) {', '.join(missing)}")
    return gaps, cs["url"]
