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

from ..bundled import mappings_dir
from ..decision.ruleset import IV_ROUTES, SC_IM, Rules
from ..errors import MappingError
from .crosswalk import read_ndc_hcpcs
from .diagnoses import read_code_first, read_diagnosis_groups, read_ndc_units, read_snomed_icd10
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
    drugs, drug_names = read_drugs(d)
    drug_codes = read_drug_codes(d, drugs)
    drug_families = read_drug_families(d, drugs)
    code_changes = read_code_changes(d, drugs)
    code_starts = read_code_starts(d, drugs)
    diagnosis_rules = read_diagnosis_groups(
        d
    )  # before vaccines.csv, whose medicare_part_b names them
    vaccines, vaccine_names = read_vaccines(d, set(diagnosis_rules))
    vaccine_admin = read_vaccine_admin(d)
    routes = read_routes(d)
    route_text = read_route_text(d)
    procedures = read_procedures(d)
    infusions = read_infusions(d)
    iv_signals = read_iv_methods(d)
    hydration = read_hydration(d)
    antineoplastic = read_antineoplastic(d)
    sites = read_sites(d)
    laterality = read_laterality(d)
    settings = read_settings(d)
    encounter_types, encounter_type_ranges, encounter_type_texts = read_encounter_types(d)
    payers = read_payers(d)
    payer_codes, payer_code_prefixes = read_payer_codes(d)
    payer_names, payer_name_prefixes = read_payer_names(d)
    payer_identifiers = read_payer_identifiers(d)
    em_ranges = read_evaluation_management(d)
    fees = read_fee_schedule(d)
    gaps, gap_url = load_gaps(d / "gaps.codesystem.json")
    dose_form_categories = read_dose_form_categories(d)
    dose_forms, dose_form_names = read_dose_forms(d, dose_form_categories)
    packages = read_packages(d)
    ndc_hcpcs = read_ndc_hcpcs(d, drugs)
    qualifications, qualification_prefixes = read_qualifications(d)
    participant_ranks = read_participant_types(d)
    qualification_texts = read_qualification_texts(d)
    drug_by_diagnosis = read_drug_by_diagnosis(d, drugs, set(diagnosis_rules))
    ndc_units = read_ndc_units(d)
    modifiers, distinct_modifiers = read_modifiers(d)
    payers = with_payer_modifiers(payers, modifiers, distinct_modifiers)
    snomed_icd10 = read_snomed_icd10(d)
    esa = read_esa(d, drugs)
    esa_labs = read_esa_labs(d)
    code_first = read_code_first(d)
    for rule in ("esa-chemotherapy", "esa-radiotherapy"):  # the rules EA and EB are chosen by
        if rule not in diagnosis_rules:
            raise MappingError(
                "diagnosis_groups.csv", None, f"no rows for rule {rule} (modifiers.csv)"
            )
    places_of_service = read_places_of_service(d)
    places = read_places(d, places_of_service)
    filing_limits = read_filing_limits(d)
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
        # a name of a product first, whatever its length; a name that says only "a COVID-19
        # vaccine" (no product code: CVX 213) only when no product's name is found
        vaccine_names=_by_length([n for n in vaccine_names if vaccines[n[1]].product_code])
        + _by_length([n for n in vaccine_names if not vaccines[n[1]].product_code]),
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
        drug_families=freeze(drug_families),
        code_changes=freeze(code_changes),
        code_starts=freeze(code_starts),
        dose_forms=freeze(dose_forms),
        dose_form_names=freeze(dose_form_names),
        dose_form_name_words=tuple(
            sorted({len(name.split()) for name in dose_form_names}, reverse=True)
        ),
        dose_form_categories=freeze(dose_form_categories),
        packages=freeze(packages),
        ndc_hcpcs=freeze({ndc: entries[-1] for ndc, entries in ndc_hcpcs.items()}),
        ndc_hcpcs_releases=freeze(ndc_hcpcs),
        crosswalk_releases=tuple(sorted({x.release for xs in ndc_hcpcs.values() for x in xs})),
        crosswalk_hcpcs=frozenset(h for xs in ndc_hcpcs.values() for x in xs for h in x.hcpcs),
        qualifications=freeze(qualifications),
        qualification_prefixes=freeze(qualification_prefixes),
        participant_ranks=freeze(participant_ranks),
        qualification_texts=freeze(qualification_texts),
        diagnosis_rules=freeze(diagnosis_rules),
        drug_by_diagnosis=freeze(drug_by_diagnosis),
        ndc_units=freeze(ndc_units),
        modifiers=freeze(modifiers),
        snomed_icd10=freeze(snomed_icd10),
        esa=freeze(esa),
        esa_labs=esa_labs,
        code_first=code_first,
        places_of_service=freeze(places_of_service),
        places=freeze(places),
        filing_limits=freeze(filing_limits),
    )
