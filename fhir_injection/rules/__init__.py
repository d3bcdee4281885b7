"""Load and validate the billing rules in ``mappings/``.

Every table is a CSV file a billing analyst can open in a spreadsheet; every row
carries its ``source``. Loading checks each row and raises :class:`MappingError`
naming the file and the row (1-based, counting the header as row 1) — a broken
rule table must stop a run before it produces a single wrong claim.

The loaded :class:`~fhir_injection.decision.ruleset.Rules` object is immutable plain data
(its types live in :mod:`fhir_injection.decision.ruleset`); the engine reads it. One loader
per table, each naming its file, grouped by domain in this package's modules (the CSV reader
is :mod:`.table`). The run's TOML configuration is :mod:`fhir_injection.config`.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..bundled import mappings_dir
from ..decision.ruleset import IV_ROUTES, SC_IM, Rules
from ..errors import MappingError
from .crosswalk import read_ndc_hcpcs
from .diagnoses import (
    read_code_first,
    read_combination_codes,
    read_diagnosis_groups,
    read_ndc_units,
    read_snomed_icd10,
)
from .drugs import (
    read_antineoplastic,
    read_code_changes,
    read_code_starts,
    read_dose_form_categories,
    read_dose_forms,
    read_drug_by_diagnosis,
    read_drug_codes,
    read_drug_families,
    read_drugs,
    read_packages,
    read_vaccine_admin,
    read_vaccines,
)
from .esa_tables import read_esa, read_esa_labs
from .filing_limits import read_filing_limits
from .gaps import load_gaps
from .modifiers import read_modifiers, with_payer_modifiers
from .payers import (
    read_encounter_types,
    read_evaluation_management,
    read_fee_schedule,
    read_payer_codes,
    read_payer_identifiers,
    read_payer_names,
    read_payers,
    read_settings,
)
from .places import read_places, read_places_of_service
from .qualifications import read_participant_types, read_qualification_texts, read_qualifications
from .routes import (
    read_hydration,
    read_infusions,
    read_iv_methods,
    read_laterality,
    read_procedures,
    read_route_text,
    read_routes,
    read_sites,
)

__all__ = ["DEFAULT_DIR", "load_rules"]

DEFAULT_DIR = mappings_dir()  # the wheel's copy, or mappings/ in a source checkout


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
    return _assemble(d, _read_tables(d))


def _read_tables(d: Path) -> dict[str, Any]:
    """Every table of ``d``, read and checked in load order (each reader names its file)."""
    t: dict[str, Any] = {}
    t["drugs"], t["drug_names"] = read_drugs(d)
    t["drug_codes"] = read_drug_codes(d, t["drugs"])
    t["drug_families"] = read_drug_families(d, t["drugs"])
    t["code_changes"] = read_code_changes(d, t["drugs"])
    t["code_starts"] = read_code_starts(d, t["drugs"])
    # diagnosis groups before vaccines.csv, whose medicare_part_b names them
    t["diagnosis_rules"] = read_diagnosis_groups(d)
    t["vaccines"], t["vaccine_names"] = read_vaccines(d, set(t["diagnosis_rules"]))
    t["vaccine_admin"] = read_vaccine_admin(d)
    t["routes"] = read_routes(d)
    t["route_text"] = read_route_text(d)
    t["procedures"] = read_procedures(d)
    t["infusions"] = read_infusions(d)
    t["iv_signals"] = read_iv_methods(d)
    t["hydration"] = read_hydration(d)
    t["antineoplastic"] = read_antineoplastic(d)
    t["sites"] = read_sites(d)
    t["laterality"] = read_laterality(d)
    t["settings"] = read_settings(d)
    t["encounter_types"], t["encounter_type_ranges"], t["encounter_type_texts"] = (
        read_encounter_types(d)
    )
    t["payers"] = read_payers(d)
    t["payer_codes"], t["payer_code_prefixes"] = read_payer_codes(d)
    t["payer_names"], t["payer_name_prefixes"] = read_payer_names(d)
    t["payer_identifiers"] = read_payer_identifiers(d)
    t["em_ranges"] = read_evaluation_management(d)
    t["fees"] = read_fee_schedule(d)
    t["gaps"], t["gap_url"] = load_gaps(d / "gaps.codesystem.json")
    t["dose_form_categories"] = read_dose_form_categories(d)
    t["dose_forms"], t["dose_form_names"] = read_dose_forms(d, t["dose_form_categories"])
    t["packages"] = read_packages(d)
    t["ndc_hcpcs"] = read_ndc_hcpcs(d, t["drugs"])
    t["qualifications"], t["qualification_prefixes"] = read_qualifications(d)
    t["participant_ranks"] = read_participant_types(d)
    t["qualification_texts"] = read_qualification_texts(d)
    t["drug_by_diagnosis"] = read_drug_by_diagnosis(d, t["drugs"], set(t["diagnosis_rules"]))
    t["ndc_units"] = read_ndc_units(d)
    t["modifiers"], t["distinct_modifiers"] = read_modifiers(d)
    t["payers"] = with_payer_modifiers(t["payers"], t["modifiers"], t["distinct_modifiers"])
    t["snomed_icd10"] = read_snomed_icd10(d)
    t["esa"] = read_esa(d, t["drugs"])
    t["esa_labs"] = read_esa_labs(d)
    t["code_first"] = read_code_first(d)
    t["combination_codes"] = read_combination_codes(d)
    for rule in ("esa-chemotherapy", "esa-radiotherapy"):  # the rules EA and EB are chosen by
        if rule not in t["diagnosis_rules"]:
            raise MappingError(
                "diagnosis_groups.csv", None, f"no rows for rule {rule} (modifiers.csv)"
            )
    t["places_of_service"] = read_places_of_service(d)
    t["places"] = read_places(d, t["places_of_service"])
    t["filing_limits"] = read_filing_limits(d)
    for route, proc in t["procedures"].items():  # checked after the gaps, as it always was
        if route in SC_IM and proc.code is None:
            raise MappingError("procedures.csv", None, f"route '{route}' needs a procedure code")
        if route in IV_ROUTES and proc.outcome != "not-96372":
            raise MappingError("procedures.csv", None, f"route '{route}' must be not-96372")
    return t


def _assemble(d: Path, t: dict[str, Any]) -> Rules:
    """The :class:`Rules` of the tables read: read-only views, and the indexes the engine's
    look-ups use (names longest first, the crosswalk's releases)."""
    freeze = MappingProxyType
    return Rules(
        directory=str(d),
        drugs=freeze(t["drugs"]),
        drug_codes=freeze(t["drug_codes"]),
        drug_names=_by_length(t["drug_names"]),
        vaccines=freeze(t["vaccines"]),
        # a name of a product first, whatever its length; a name that says only "a COVID-19
        # vaccine" (no product code: CVX 213) only when no product's name is found
        vaccine_names=_by_length(
            [n for n in t["vaccine_names"] if t["vaccines"][n[1]].product_code]
        )
        + _by_length([n for n in t["vaccine_names"] if not t["vaccines"][n[1]].product_code]),
        vaccine_admin=freeze(t["vaccine_admin"]),
        routes=freeze(t["routes"]),
        route_text=freeze(t["route_text"]),
        infusions=freeze(t["infusions"]),
        iv_signals=t["iv_signals"],
        hydration=t["hydration"],
        procedures=freeze(t["procedures"]),
        antineoplastic=freeze(t["antineoplastic"]),
        sites=freeze(t["sites"]),
        laterality=freeze(t["laterality"]),
        settings=freeze(t["settings"]),
        payers=freeze(t["payers"]),
        payer_codes=freeze(t["payer_codes"]),
        payer_code_prefixes=freeze(t["payer_code_prefixes"]),
        payer_names=freeze(t["payer_names"]),
        payer_name_prefixes=t["payer_name_prefixes"],
        payer_identifiers=freeze(t["payer_identifiers"]),
        encounter_types=freeze(t["encounter_types"]),
        encounter_type_ranges=freeze(t["encounter_type_ranges"]),
        encounter_type_texts=freeze(t["encounter_type_texts"]),
        em_ranges=tuple(t["em_ranges"]),
        fees=freeze(t["fees"]),
        gaps=freeze(t["gaps"]),
        gap_codesystem_url=t["gap_url"],
        drug_families=freeze(t["drug_families"]),
        code_changes=freeze(t["code_changes"]),
        code_starts=freeze(t["code_starts"]),
        dose_forms=freeze(t["dose_forms"]),
        dose_form_names=freeze(t["dose_form_names"]),
        dose_form_name_words=tuple(
            sorted({len(name.split()) for name in t["dose_form_names"]}, reverse=True)
        ),
        dose_form_categories=freeze(t["dose_form_categories"]),
        packages=freeze(t["packages"]),
        ndc_hcpcs=freeze({ndc: entries[-1] for ndc, entries in t["ndc_hcpcs"].items()}),
        ndc_hcpcs_releases=freeze(t["ndc_hcpcs"]),
        crosswalk_releases=tuple(sorted({x.release for xs in t["ndc_hcpcs"].values() for x in xs})),
        crosswalk_hcpcs=frozenset(h for xs in t["ndc_hcpcs"].values() for x in xs for h in x.hcpcs),
        qualifications=freeze(t["qualifications"]),
        qualification_prefixes=freeze(t["qualification_prefixes"]),
        participant_ranks=freeze(t["participant_ranks"]),
        qualification_texts=freeze(t["qualification_texts"]),
        diagnosis_rules=freeze(t["diagnosis_rules"]),
        drug_by_diagnosis=freeze(t["drug_by_diagnosis"]),
        ndc_units=freeze(t["ndc_units"]),
        modifiers=freeze(t["modifiers"]),
        snomed_icd10=freeze(t["snomed_icd10"]),
        esa=freeze(t["esa"]),
        esa_labs=t["esa_labs"],
        code_first=t["code_first"],
        combination_codes=t["combination_codes"],
        places_of_service=freeze(t["places_of_service"]),
        places=freeze(t["places"]),
        filing_limits=freeze(t["filing_limits"]),
    )
