"""The rule types the engine reads: plain, frozen data loaded from ``mappings/``.

:class:`Rules` holds every rule table, keyed for the engine's look-ups, and this module the
vocabularies the tables are checked against; the types of the tables' rows are in ``drug_tables``,
``payer_tables`` and ``procedure_tables``. The run-time choices a billing team makes are
``practice.Config``. Loading and validating the files is :mod:`fhir_injection.rules`' job: nothing
here opens a file, so the engine stays pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from .drug_tables import (
    CodeChange,
    CodeStart,
    DoseForm,
    DoseFormCategory,
    Drug,
    DrugByDiagnosis,
    DrugCode,
    DrugFamily,
    EsaLab,
    NdcCrosswalk,
    Package,
    Vaccine,
)
from .payer_tables import Fee, FilingLimit, Modifier, NameRule, PayerCode, PayerRule
from .procedure_tables import Hydration, Infusion, IvSignals, Procedure

__all__ = [
    "BASIS_FACTS",
    "BASIS_KINDS",
    "CONTAINERS",
    "CombinationCode",
    "DOSE_FORM_OUTCOMES",
    "DRUG_CLASSES",
    "ESA_READINGS",
    "GAP_SCOPES",
    "GapType",
    "INFUSION_KINDS",
    "IV_ONLY_CATEGORY",
    "IV_ROUTES",
    "MODIFIER_LINES",
    "MODIFIER_USES",
    "NDC_UNITS",
    "NDC_UNIT_BASES",
    "OUTCOMES",
    "PACKAGE_KINDS",
    "PAYER_CODE_TYPES",
    "PAYER_TYPES",
    "PLACE_ELEMENTS",
    "PLACE_SETTINGS",
    "QUALIFICATION_ROLES",
    "QUALIFICATION_TEXT_ROLES",
    "REQUIRED_GAPS",
    "ROUTES",
    "Rules",
    "SAD_POLICIES",
    "SC_IM",
    "SETTINGS",
    "SEVERITIES",
    "SINGLE_DOSE",
    "SYSTEM_CPT",
    "SYSTEM_CVX",
    "SYSTEM_HCPCS",
    "SYSTEM_HCPCS_ALIASES",
    "SYSTEM_ICD10CM",
    "SYSTEM_LOINC",
    "SYSTEM_NDC",
    "SYSTEM_ORDERABLE_DRUG_FORM",
    "SYSTEM_POS",
    "SYSTEM_SNOMED",
    "Setting",
    "Site",
    "TECHNIQUES",
    "UNITS",
    "UNIT_STATUSES",
    "VACCINE_GROUPS",
    "credential_key",
    "normal_text",
]

ROUTES = {
    "subcutaneous",
    "intramuscular",
    "intravenous",
    "intravenous-push",
    "intravenous-infusion",
    "intra-arterial",
    "intradermal",
    "intra-articular",
    "intralesional",
    "intravitreal",
    "oral",
    "non-injection",
    "other",
}
SC_IM = frozenset({"subcutaneous", "intramuscular"})
#: route categories whose code (push or infusion; therapeutic, hydration or chemotherapy) comes from
#: mappings/infusions.csv, not procedures.csv
IV_ROUTES = frozenset({"intravenous", "intravenous-push", "intravenous-infusion"})
INFUSION_KINDS = {"therapeutic", "hydration", "chemotherapy"}
TECHNIQUES = {"push", "infusion"}
#: which administrations a gap is raised for: every one (an explanation), every billed one (96372 or
#: another code: the drug line and the service itself), or only 96372 services
GAP_SCOPES = {"every", "billed", "96372"}
DRUG_CLASSES = {
    "standard",
    "vaccine",
    "antineoplastic",
    "antineoplastic-hormonal",
    "unclassified",
    "device",  # an implant system or IUD: billed once per item inserted, whatever the dose
    "oral",  # a J code for a drug taken by mouth (J8xxx, oral immunosuppressives): never an injection
    "inhalation",  # an inhalation solution given through DME (J76xx): never an injection
}
#: how drugs.csv's billing unit was read from the HCPCS descriptor: ``parsed`` (unit_amount + unit),
#: ``per-item`` (devices, vaccines, "per vial": one unit an item), ``noc`` (a "not otherwise
#: classified" code such as J3490 or J9999: one unit a line, and the line names the drug and dose,
#: as payers ask for the claim's note), ``unparsed`` (meq, "per 2 meq", combinations: no unit this
#: project bills in; a person codes the units)
UNIT_STATUSES = ("parsed", "per-item", "noc", "unparsed")
OUTCOMES = ("claim", "held", "not-96372", "not-billable", "void", "past-filing-limit")
#: Where each fact a claim line depends on came from (README "Where every fact comes from"):
#: ``record`` read from the FHIR record, ``rule`` derived from it by a row of mappings/ (with its
#: source), ``practice`` given by the practice's configuration, ``unknown`` (a gap, never a default).
BASIS_KINDS = ("record", "rule", "practice", "unknown")
#: The facts report.json gives the basis of, per administration.
BASIS_FACTS = (
    "place_of_service",
    "rendering_provider",
    "service_date",
    "container",
    "diagnosis",
    "crosswalk_release",
)
SETTINGS = {"office", "home", "facility", "inpatient", "virtual"}
#: what a code of mappings/settings.csv, encounter_types.csv or places.csv may say: a setting, or
#: ``unplaced``: the kind of visit (ambulatory, outpatient) and not where it was, so the place of
#: service is still to be found (Location.type, Organization.type, the practice's profile)
PLACE_SETTINGS = SETTINGS | {"unplaced"}
#: the elements a row of mappings/places.csv is read from, in the order the engine reads them
PLACE_ELEMENTS = (
    "MedicationAdministration.category",
    "Encounter.hospitalization",
    "Location.type",
    "Location.physicalType",
    "Organization.type",
)
PAYER_TYPES = {"medicare", "medicaid", "commercial", "self-pay"}
#: what a Coverage.type coding may say: a payer type, or "unknown" (a generic code such as v3 PUBLICPOL
#: that says "public" and nothing about which program)
PAYER_CODE_TYPES = PAYER_TYPES | {"unknown"}
SEVERITIES = ("error", "warning", "info")
UNITS = {"mg", "mcg", "g", "mL", "unit"}
#: a vaccine's group (mappings/vaccines.csv): the administration code of vaccine_admin.csv is chosen by it
VACCINE_GROUPS = {"influenza", "pneumococcal", "hepatitis-b", "covid-19", "tetanus", "other"}
CONTAINERS = {"single-dose", "multi-dose"}
#: the kinds an NDC row of the CMS crosswalk table may give (mappings/ndc_hcpcs.csv, from the FDA NDC
#: Directory): the two above and a pharmacy bulk package (USP <1>: many single doses, for pharmacy
#: admixture only), which is not a single-dose container for JW/JZ (mappings/build/README.md)
PACKAGE_KINDS = CONTAINERS | {"pharmacy-bulk"}
#: drugs.csv single_dose: yes (single-dose containers), no (multi-dose, or JW/JZ never apply), varies
#: (the product comes in both: the container decides, mappings/packages.csv)
SINGLE_DOSE = ("yes", "no", "varies")
#: what a row of mappings/modifiers.csv is for: the JW line of the discarded units, the JZ that says
#: nothing was discarded, the GY of a statutorily excluded service (a Medicare self-administered drug)
MODIFIER_USES = (
    "waste-line",
    "nothing-discarded",
    "excluded-service",
    # the Medicare ESA modifiers by the anemia's cause (CMS CR 5699): EA, EB, EC
    "esa-chemotherapy",
    "esa-radiotherapy",
    "esa-neither",
    # the 2nd and later 96372 of a patient's day (59, XU): one row per payer type
    "distinct-procedure",
    # the E/M on the day of the injection (25): named in the em-same-day gap, on no line of ours
    "em-separate",
)
#: the claim lines a modifier goes on (modifiers.csv ``lines``); ``em``: the practice's E/M line
MODIFIER_LINES = ("administration", "drug", "waste", "em")
#: what a practitioner's qualification makes them for billing (mappings/qualifications.csv)
QUALIFICATION_ROLES = {"eligible", "auxiliary"}
#: what a qualification text makes someone (mappings/qualification_text.csv): as the codings, or
#: ``other``: reviewed, and it names no role of its own (a PhD, an APRN whose role is not said)
QUALIFICATION_TEXT_ROLES = {"eligible", "auxiliary", "other"}
NDC_UNITS = {"UN", "ML", "GR", "F2"}
#: what a row of mappings/ndc_units.csv is matched on, in the order they are tried
NDC_UNIT_BASES = ("strength", "dose-form", "dose-unit")
SAD_POLICIES = ("hold", "gy")
#: what a dose form category means when the route is missing: ``held`` (it could be an injection, the
#: route decides: missing-route), or not an injection at all (another code applies, or nothing to bill)
DOSE_FORM_OUTCOMES = ("held", "not-96372", "not-billable")
#: the dose form category (mappings/dose_form_categories.csv) of a product for intravenous use only:
#: documented SC or IM, the route contradicts the product (gap route-conflicts-dose-form)
IV_ONLY_CATEGORY = "intravenous"

SYSTEM_CPT = "http://www.ama-assn.org/go/cpt"
SYSTEM_HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
SYSTEM_HCPCS_ALIASES = frozenset(
    {SYSTEM_HCPCS, "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"}
)
SYSTEM_NDC = "http://hl7.org/fhir/sid/ndc"
SYSTEM_ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SYSTEM_SNOMED = "http://snomed.info/sct"
SYSTEM_LOINC = "http://loinc.org"
#: what an esa_labs.csv reading is (837P MEA02 R1 hemoglobin, R2 hematocrit)
ESA_READINGS = ("hemoglobin", "hematocrit")
SYSTEM_CVX = "http://hl7.org/fhir/sid/cvx"
SYSTEM_ORDERABLE_DRUG_FORM = "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm"
SYSTEM_POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"


def normal_text(text: str) -> str:
    """Text as the reviewed lists hold it: lower case, single spaces, no outer space."""
    return " ".join(text.lower().split())


_NOT_LETTER_OR_DIGIT = re.compile(r"[^0-9a-z]+")


def credential_key(text: str) -> str:
    """A credential as mappings/qualification_text.csv is matched on: its letters and digits, lower
    case, with nothing between them ("M.D." and "md" are "md", "PA-C" is "pac", "CMA (AAMA)" is
    "cmaaama", "Registered  Nurse" is "registerednurse")."""
    return _NOT_LETTER_OR_DIGIT.sub("", text.casefold())


@dataclass(frozen=True)
class Site:
    system: str
    code: str
    display: str
    laterality: str | None


@dataclass(frozen=True)
class Setting:
    setting: str  # one of PLACE_SETTINGS
    place_of_service: str  # "" for an unplaced one
    display: str


@dataclass(frozen=True)
class GapType:
    code: str
    severity: str
    field: str
    definition: str
    source: str
    raised_for: str = "96372"  # every | billed | 96372 (GAP_SCOPES)


@dataclass(frozen=True)
class Rules:
    """Every table from mappings/, keyed for the engine's look-ups."""

    directory: str
    drugs: Mapping[str, Drug]
    drug_codes: Mapping[tuple[str, str], DrugCode]  # (system, code)
    drug_names: tuple[tuple[str, str], ...]  # (lower-case name, hcpcs), longest first
    vaccines: Mapping[str, Vaccine]  # cvx
    vaccine_names: tuple[tuple[str, str], ...]  # (lower-case name, cvx), longest first
    vaccine_admin: Mapping[tuple[str, str], str]  # (payer_type|*, group|*) -> code
    routes: Mapping[tuple[str, str], str]  # (system, code) -> route
    route_text: Mapping[str, str]  # normalised text on the reviewed list -> route
    infusions: Mapping[tuple[str, str], Infusion]  # (kind, technique) -> IV code
    iv_signals: IvSignals
    hydration: Hydration
    procedures: Mapping[str, Procedure]  # route -> procedure
    antineoplastic: Mapping[str, str]  # drug_class -> procedure code
    sites: Mapping[tuple[str, str], Site]
    laterality: Mapping[tuple[str, str], str]
    settings: Mapping[tuple[str, str], Setting]
    payers: Mapping[str, PayerRule]
    payer_codes: Mapping[tuple[str, str], PayerCode]  # (system, code) exact
    payer_code_prefixes: Mapping[str, tuple[tuple[str, PayerCode], ...]]  # system -> longest first
    payer_names: Mapping[str, NameRule]  # name_key of the whole name
    payer_name_prefixes: tuple[
        tuple[str, NameRule], ...
    ]  # name_key of the first words, longest first
    payer_identifiers: Mapping[
        tuple[str, str], str
    ]  # payor (identifier system, value) -> payer type
    encounter_types: Mapping[tuple[str, str], Setting]  # Encounter.type (system, code)
    encounter_type_ranges: Mapping[str, tuple[tuple[int, int, Setting], ...]]  # system -> ranges
    encounter_type_texts: Mapping[str, Setting]  # name_key of a whole Encounter.type text
    em_ranges: tuple[tuple[int, int], ...]
    fees: Mapping[tuple[str, str], Fee]  # (code, setting|*) -> fee
    gaps: Mapping[str, GapType]
    gap_codesystem_url: str
    dose_forms: Mapping[tuple[str, str], DoseForm]  # (system, code) of a Medication.form coding
    dose_form_names: Mapping[str, DoseForm]  # lower-case name a product's name ends in -> form
    dose_form_name_words: tuple[int, ...]  # the word counts of those names, most first
    dose_form_categories: Mapping[str, DoseFormCategory]
    packages: Mapping[tuple[str, str], Package] = field(default_factory=dict)  # (system, code)
    qualifications: Mapping[tuple[str, str], str] = field(default_factory=dict)  # -> role
    qualification_prefixes: Mapping[str, tuple[tuple[str, str], ...]] = field(
        default_factory=dict
    )  # system -> ((prefix, role), ...), longest first
    participant_ranks: Mapping[tuple[str, str], int] = field(default_factory=dict)
    #: credential_key of a qualification text -> (role of QUALIFICATION_TEXT_ROLES, its meaning)
    qualification_texts: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    #: rule -> its groups; each group ((system, code_from, code_to), ...): the rule holds when every
    #: group has a diagnosis in one of its ranges (codes without dots, upper case)
    diagnosis_rules: Mapping[str, tuple[tuple[tuple[str, str, str], ...], ...]] = field(
        default_factory=dict
    )
    drug_by_diagnosis: Mapping[str, DrugByDiagnosis] = field(default_factory=dict)  # either code
    ndc_units: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (basis, value) -> unit
    #: HCPCS -> the family it belongs to (drug_families.csv); empty for a drug alone in its family
    drug_families: Mapping[str, DrugFamily] = field(default_factory=dict)
    #: 11-digit NDC -> its CMS ASP NDC-HCPCS crosswalk entry (ndc_hcpcs.csv) of the newest release
    #: that lists it (a decision takes the release in force on its date: :func:`crosswalk_entry`)
    ndc_hcpcs: Mapping[str, NdcCrosswalk] = field(default_factory=dict)
    #: 11-digit NDC -> its entry in each crosswalk release that lists it, oldest first
    ndc_hcpcs_releases: Mapping[str, tuple[NdcCrosswalk, ...]] = field(default_factory=dict)
    #: the crosswalk releases ndc_hcpcs.csv holds (first day, last day), oldest first
    crosswalk_releases: tuple[tuple[date, date], ...] = ()
    #: the HCPCS codes the crosswalk lists (any release): separately payable Part B drugs, to which
    #: JW/JZ apply when they come from a single-dose container (CMS JW/JZ policy)
    crosswalk_hcpcs: frozenset[str] = frozenset()
    #: ended HCPCS -> its successors (code_changes.csv), product (ndc) rows first
    code_changes: Mapping[str, tuple[CodeChange, ...]] = field(default_factory=dict)
    #: HCPCS added by CMS on a date -> its first day and the code billed before (code_starts.csv)
    code_starts: Mapping[str, CodeStart] = field(default_factory=dict)
    #: use (MODIFIER_USES) -> the modifier put on for it (modifiers.csv): every use has one
    modifiers: Mapping[str, Modifier] = field(default_factory=dict)
    #: SNOMED CT code -> the ICD-10-CM codes (code, display) it is billed as (snomed_icd10.csv)
    snomed_icd10: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    #: HCPCS of an erythropoiesis-stimulating agent (esa.csv) -> True for a code "for ESRD on dialysis"
    esa: Mapping[str, bool] = field(default_factory=dict)
    esa_labs: tuple[EsaLab, ...] = ()  # the readings a Medicare ESA claim carries (esa_labs.csv)
    #: (code, first_from, first_to): a code sequenced after a code in the range (code_first.csv),
    #: codes without dots, upper case
    code_first: tuple[tuple[str, str, str], ...] = ()
    #: a combination code the classification presumes (combination_codes.csv): an unspecified code
    #: listed with a code in a range is coded as one code (D64.9 with N18.1-N18.9: D63.1)
    combination_codes: tuple[CombinationCode, ...] = ()
    #: CMS place of service code -> its setting and name (places_of_service.csv)
    places_of_service: Mapping[str, Setting] = field(default_factory=dict)
    #: (element, system, code) -> the setting and place of service it names (places.csv; the
    #: Encounter.hospitalization rows have system "" and the element's child as code)
    places: Mapping[tuple[str, str, str], Setting] = field(default_factory=dict)
    #: payer type -> its filing limit (filing_limits.csv); None: no limit (self-pay)
    filing_limits: Mapping[str, FilingLimit | None] = field(default_factory=dict)

    def fee(self, code: str, setting: str | None) -> Fee | None:
        """The fee for ``code`` in ``setting`` (None: the setting is unknown, only a '*' row applies)."""
        return (setting and self.fees.get((code, setting))) or self.fees.get((code, "*"))

    def payer(self, payer_type: str | None) -> PayerRule:
        return self.payers[payer_type or "commercial"]

    def is_em(self, code: str) -> bool:
        if not code.isdigit():
            return False
        n = int(code)
        return any(lo <= n <= hi for lo, hi in self.em_ranges)


@dataclass(frozen=True)
class CombinationCode:
    """An ICD-10-CM combination the classification presumes (mappings/combination_codes.csv;
    Official Guidelines I.A.15 "With"): ``code`` listed with a code from ``with_from`` to
    ``with_to`` is coded ``becomes`` (D64.9 with N18.1-N18.9: D63.1). Codes without dots."""

    code: str
    with_from: str
    with_to: str
    becomes: str
    becomes_display: str
    source: str


REQUIRED_GAPS = (
    "missing-medication",
    "unmapped-medication",
    "missing-dose",
    "missing-route",
    "missing-site",
    "missing-time",
    "missing-performer",
    "missing-diagnosis",
    "missing-consent",
    "missing-coverage",
    "missing-encounter",
    "route-not-sc-im",
    "vaccine",
    "antineoplastic",
    "facility-setting",
    "not-administered",
    "time-outside-encounter",
    "em-same-day",
    "units-over-mue",
    "self-administered-drug",
    "duplicate",
    "missing-ndc",
    "missing-patient",
    "missing-billing-provider",
    "unknown-payer-type",
    "self-pay",
    "unknown-setting",
    "route-from-text",
    "infusion-time-unknown",
    "dose-form-not-injectable",
    "missing-package-size",
    "missing-rendering-provider",
    "rendering-provider-by-role",
    "vaccine-part-d",
    "ambiguous-drug-code",
    "diagnosis-not-icd10",
    "missing-esa-lab",
    "esa-esrd-bundle",
    "route-conflicts-dose-form",
    "past-filing-limit",
)
