"""The setting and payer tables: encounter class and type -> setting, payer types and their rules,
E/M code ranges, and the fee schedule."""

from __future__ import annotations

from pathlib import Path

from ..decision.elements import name_key
from ..decision.payer_tables import Fee, NameRule, PayerCode, PayerRule
from ..decision.ruleset import PAYER_CODE_TYPES, PAYER_TYPES, SETTINGS, Setting
from ..errors import MappingError
from .places import place_setting
from .table import Table

__all__ = [
    "read_encounter_types",
    "read_evaluation_management",
    "read_fee_schedule",
    "read_payer_codes",
    "read_payer_identifiers",
    "read_payer_names",
    "read_payers",
    "read_settings",
]


def read_settings(d: Path) -> dict[tuple[str, str], Setting]:
    """settings.csv: Encounter.class codings -> setting and place of service."""
    t = Table(
        d, "settings.csv", ("system", "code", "display", "setting", "place_of_service", "source")
    )
    settings: dict[tuple[str, str], Setting] = {}
    seen: dict = {}
    for n, r in t.rows():
        key = t.coding_key(n, r, seen)
        settings[key] = place_setting(t, n, r)
    return settings


def read_payers(d: Path) -> dict[str, PayerRule]:
    """payers.csv: the rules of each payer type (one row each). Its modifiers (``distinct_modifier``,
    ``jw_jz``) are rows of modifiers.csv, filled in by :func:`.modifiers.with_payer_modifiers`;
    until then none and False."""
    t = Table(
        d,
        "payers.csv",
        ("payer_type", "requires_ndc", "pays_99211_with_injection", "mue_96372", "source"),
    )
    payers: dict[str, PayerRule] = {}
    for n, r in t.rows():
        pt = t.choice(n, r, "payer_type", PAYER_TYPES)
        mue = r["mue_96372"]
        if not mue.isdigit() or int(mue) < 1:
            raise t.error(n, f"mue_96372 '{mue}' must be a whole number of at least 1")
        payers[pt] = PayerRule(
            pt,
            "",
            t.yes_no(n, r, "requires_ndc"),
            False,
            t.yes_no(n, r, "pays_99211_with_injection"),
            int(mue),
        )
    for pt in sorted(PAYER_TYPES - payers.keys()):
        raise MappingError("payers.csv", None, f"no row for payer_type '{pt}'")
    return payers


def read_payer_codes(
    d: Path,
) -> tuple[dict[tuple[str, str], PayerCode], dict[str, tuple[tuple[str, PayerCode], ...]]]:
    """payer_codes.csv: Coverage.type codings -> payer type; exact codes, and per system the prefixes
    (longest first), so a coding is looked up in one dict and a few prefixes."""
    t = Table(
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


def read_payer_names(d: Path) -> tuple[dict[str, NameRule], tuple[tuple[str, NameRule], ...]]:
    """payer_names.csv: whole names (or their first words) of Coverage.type text and payors -> payer
    type, keyed as the engine reads them (:func:`~fhir_injection.decision.elements.name_key`)."""
    t = Table(d, "payer_names.csv", ("name", "match", "applies_to", "payer_type", "source"))
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


def read_payer_identifiers(d: Path) -> dict[tuple[str, str], str]:
    """payer_identifiers.csv: a payor Organization's identifier (system, value) -> payer type."""
    t = Table(d, "payer_identifiers.csv", ("system", "value", "payer_type", "display", "source"))
    found: dict[tuple[str, str], str] = {}
    seen: dict = {}
    for n, r in t.rows():
        key = t.coding_key(n, r, seen, "value")
        found[key] = t.choice(n, r, "payer_type", PAYER_TYPES)
    return found


def read_encounter_types(
    d: Path,
) -> tuple[
    dict[tuple[str, str], Setting],
    dict[str, tuple[tuple[int, int, Setting], ...]],
    dict[str, Setting],
]:
    """encounter_types.csv: Encounter.type codings (one code or a numeric range, e.g. CPT E/M) and whole
    type texts -> setting and place of service, for an encounter whose class says nothing known."""
    t = Table(
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
        setting = place_setting(t, n, r)
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


def read_evaluation_management(d: Path) -> list[tuple[int, int]]:
    """evaluation_management.csv: the CPT code ranges that are E/M visits."""
    t = Table(d, "evaluation_management.csv", ("code_from", "code_to", "description", "source"))
    em_ranges = []
    for n, r in t.rows():
        lo, hi = r["code_from"], r["code_to"]
        if not (lo.isdigit() and hi.isdigit() and int(lo) <= int(hi)):
            raise t.error(n, f"code range '{lo}'-'{hi}' must be two 5-digit CPT codes, low to high")
        em_ranges.append((int(lo), int(hi)))
    return em_ranges


def read_fee_schedule(d: Path) -> dict[tuple[str, str], Fee]:
    """fee_schedule.csv: (code, setting) -> fee per service or per unit."""
    t = Table(d, "fee_schedule.csv", ("code", "setting", "amount_usd", "per", "year", "source"))
    fees: dict[tuple[str, str], Fee] = {}
    seen: dict = {}
    for n, r in t.rows():
        key = (t.require(n, r, "code"), t.choice(n, r, "setting", SETTINGS | {"*"}))
        t.unique(seen, key, n)
        fees[key] = Fee(t.decimal(n, r, "amount_usd"), t.choice(n, r, "per", {"service", "unit"}))
    return fees
