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
from .crosswalk import _ndc_hcpcs
from .diagnoses import _code_first, _diagnosis_groups, _ndc_units, _snomed_icd10
from .drugs import (
    _antineoplastic,
    _code_changes,
    _code_starts,
    _dose_form_categories,
    _dose_forms,
    _drug_by_diagnosis,
    _drug_codes,
    _drug_families,
    _drugs,
    _packages,
    _vaccine_admin,
    _vaccines,
)
from .esa_tables import _esa, _esa_labs
from .filing_limits import _filing_limits
from .gaps import _load_gaps
from .modifiers import _modifiers, with_payer_modifiers
from .payers import (
    _encounter_types,
    _evaluation_management,
    _fee_schedule,
    _payer_codes,
    _payer_identifiers,
    _payer_names,
    _payers,
    _settings,
)
from .places import _places, _places_of_service
from .qualifications import _participant_types, _qualification_texts, _qualifications
from .routes import (
    _hydration,
    _infusions,
    _iv_methods,
    _laterality,
    _procedures,
    _route_text,
    _routes,
    _sites,
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
    drugs, drug_names = _drugs(d)
    drug_codes = _drug_codes(d, drugs)
    drug_families = _drug_families(d, drugs)
    code_changes = _code_changes(d, drugs)
    code_starts = _code_starts(d, drugs)
    diagnosis_rules = _diagnosis_groups(d)  # before vaccines.csv, whose medicare_part_b names them
    vaccines, vaccine_names = _vaccines(d, set(diagnosis_rules))
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
    packages = _packages(d)
    ndc_hcpcs = _ndc_hcpcs(d, drugs)
    qualifications, qualification_prefixes = _qualifications(d)
    participant_ranks = _participant_types(d)
    qualification_texts = _qualification_texts(d)
    drug_by_diagnosis = _drug_by_diagnosis(d, drugs, set(diagnosis_rules))
    ndc_units = _ndc_units(d)
    modifiers, distinct_modifiers = _modifiers(d)
    payers = with_payer_modifiers(payers, modifiers, distinct_modifiers)
    snomed_icd10 = _snomed_icd10(d)
    esa = _esa(d, drugs)
    esa_labs = _esa_labs(d)
    code_first = _code_first(d)
    for rule in ("esa-chemotherapy", "esa-radiotherapy"):  # the rules EA and EB are chosen by
        if rule not in diagnosis_rules:
            raise MappingError(
                "diagnosis_groups.csv", None, f"no rows for rule {rule} (modifiers.csv)"
            )
    places_of_service = _places_of_service(d)
    places = _places(d, places_of_service)
    filing_limits = _filing_limits(d)
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
