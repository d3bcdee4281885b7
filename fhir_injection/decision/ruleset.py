"""The rule types the engine reads: plain, frozen data loaded from ``mappings/``.

:class:`Rules` holds every rule table, keyed for the engine's look-ups; :class:`Config`
holds the run-time choices a billing team makes. Loading and validating the files is
:mod:`fhir_injection.rules`' job: nothing here opens a file, so the engine stays pure.
"""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

__all__ = [
    "BASIS_FACTS",
    "BASIS_KINDS",
    "CONTAINERS",
    "CodeChange",
    "CombinationCode",
    "CodeStart",
    "DOSE_FORM_OUTCOMES",
    "DRUG_CLASSES",
    "DoseForm",
    "DoseFormCategory",
    "Drug",
    "DrugByDiagnosis",
    "DrugCode",
    "DrugFamily",
    "ESA_READINGS",
    "EsaLab",
    "FILING_UNITS",
    "FamilyMember",
    "Fee",
    "FilingLimit",
    "GAP_SCOPES",
    "GapType",
    "Hydration",
    "INFUSION_KINDS",
    "IV_ONLY_CATEGORY",
    "IV_ROUTES",
    "Infusion",
    "IvSignals",
    "IvTextPhrase",
    "MODIFIER_LINES",
    "MODIFIER_USES",
    "Modifier",
    "NDC_UNITS",
    "NDC_UNIT_BASES",
    "NameRule",
    "NdcCrosswalk",
    "OUTCOMES",
    "PACKAGE_KINDS",
    "PAYER_CODE_TYPES",
    "PAYER_TYPES",
    "PLACE_ELEMENTS",
    "PLACE_SETTINGS",
    "Package",
    "PayerCode",
    "PayerRule",
    "Procedure",
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
    "Vaccine",
    "credential_key",
    "normal_text",
    "parse_filing_limit",
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
#: the unit of a filing limit (mappings/filing_limits.csv, [filing_limits] in the configuration)
FILING_UNITS = {"d": "days", "m": "months"}
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


@dataclass(frozen=True)
class Drug:
    hcpcs: str
    description: str
    unit_amount: Decimal | None
    unit: str | None
    drug_class: str
    single_dose: bool
    self_administered: bool
    names: tuple[str, ...]
    unit_status: str = "parsed"  # see UNIT_STATUSES
    #: drugs.csv single_dose "varies": single- and multi-dose containers exist (epoetin: preservative-
    #: free single-dose vials, benzyl alcohol multi-dose vials); only the container decides JW/JZ
    varies: bool = False


@dataclass(frozen=True)
class Modifier:
    """A CPT or HCPCS modifier the engine puts on by rule (mappings/modifiers.csv): JW, JZ, GY,
    EA-EC, 59/XU, 25."""

    code: str
    use: str  # one of MODIFIER_USES
    lines: frozenset[str]  # of MODIFIER_LINES
    effective: date | None  # the first service date it is put on; None: any date
    payer_types: frozenset[str] = frozenset()  # the payer types whose claims it goes on

    def in_force(self, when: date | None) -> bool:
        """On the service date ``when`` (unknown: today's rules, so in force)."""
        return self.effective is None or when is None or when >= self.effective


@dataclass(frozen=True)
class DrugCode:
    """A product or ingredient code (RxNorm, NDC) that names a HCPCS drug."""

    hcpcs: str
    display: str
    # Strength of the product, e.g. 30 mg per 1 mL; None when not a solution.
    strength: tuple[Decimal, str, Decimal, str] | None
    salt: str | None = None  # the salt or ester the product is (acetate, decanoate...), if known


@dataclass(frozen=True)
class FamilyMember:
    """One code of a drug family (drug_families.csv): its salt and the largest dose it bills once."""

    hcpcs: str
    salt: str
    salt_words: tuple[str, ...]  # words of a product name that say this salt (salt, brands)
    size: Decimal | None  # the member's size in ``unit`` ("80 mg", "up to 125 mg"); None: any
    unit: str | None


@dataclass(frozen=True)
class DrugFamily:
    """HCPCS codes of one ingredient that differ by salt or size: the product and dose choose."""

    name: str
    members: tuple[FamilyMember, ...]  # by salt, then size ascending

    @property
    def salts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.salt for m in self.members))


@dataclass(frozen=True)
class Vaccine:
    cvx: str
    display: str
    product_code: str
    group: str
    names: tuple[str, ...]
    medicare_part_b: bool = True  # False: a Medicare patient's Part D plan covers it
    #: a diagnosis rule (mappings/diagnosis_groups.csv) under which Part B covers it all the same:
    #: ``injury`` for tetanus given to treat a wound (Medicare Benefit Policy Manual ch.15 §50.4.4.2)
    part_b_rule: str | None = None


@dataclass(frozen=True)
class Package:
    """What one container of a product holds (mappings/packages.csv, or Medication.amount)."""

    amount: Decimal
    unit: str
    container: (
        str | None
    )  # single-dose | multi-dose | pharmacy-bulk (ndc_hcpcs.csv only); None: not known
    source: str  # where it was read: "packages.csv" or "Medication.amount"
    display: str | None = None  # the container as packages.csv describes it, for the Claim
    #: who gave ``container`` when no table of the record's product did: the practice's profile key
    #: ("[containers] J2060", "[containers] NDC <ndc>"); None: the table row (or nobody) gave it
    kind_source: str | None = None


@dataclass(frozen=True)
class NdcCrosswalk:
    """An NDC of the CMS ASP NDC-HCPCS crosswalk (mappings/ndc_hcpcs.csv): the HCPCS code(s) CMS
    bills it under, each from its first day (``effective``, in the same order), and one item of its
    package (a vial, a syringe) as a Package in the billing unit (None: not known); ``release``: the
    crosswalk's quarter (first and last day)."""

    ndc: str
    hcpcs: tuple[str, ...]
    effective: tuple[date | None, ...]
    package: Package | None
    release: tuple[date, date]


@dataclass(frozen=True)
class DrugByDiagnosis:
    """A pair of HCPCS codes for one drug, the diagnosis rule choosing between them
    (mappings/drug_by_diagnosis.csv): leuprolide J9217 (cancer) / J1950, epoetin J0886 / J0885."""

    rule: str
    hcpcs_if: str
    hcpcs_else: str


@dataclass(frozen=True)
class CodeChange:
    """A HCPCS code CMS ended and its successor from ``effective`` (mappings/code_changes.csv);
    ``ndc``: the row holds only for that product (a brand with its own code)."""

    old: str
    new: str
    effective: date
    ndc: str | None = None


@dataclass(frozen=True)
class CodeStart:
    """A HCPCS code CMS added on ``added`` and the code its drug was billed with before
    (mappings/code_starts.csv: J2359 olanzapine from 2023-10-01, J3490 before)."""

    code: str
    added: date
    before: str


@dataclass(frozen=True)
class Procedure:
    code: str | None
    description: str
    outcome: str


@dataclass(frozen=True)
class Infusion:
    """An IV administration code (mappings/infusions.csv): push or infusion of one kind of substance."""

    kind: str  # therapeutic | hydration | chemotherapy
    technique: str  # push | infusion
    code: str
    description: str
    min_minutes: int | None  # reported from this many minutes on (hydration: 31)
    max_minutes: int | None  # a push: up to this many minutes (15)
    addon_code: str | None  # each additional hour
    addon_over_minutes: (
        int | None
    )  # an added hour counts when more than this many minutes beyond the hour


@dataclass(frozen=True)
class IvSignals:
    """What says push or infusion besides the duration (mappings/iv_methods.csv)."""

    method_codes: Mapping[tuple[str, str], str]  # (system, code) -> push | infusion
    method_texts: Mapping[str, str]  # normalised text -> push | infusion
    duration_extensions: frozenset[str]  # extension urls whose value is the infusion's duration
    #: phrases of dosage.text (mappings/iv_text.csv), in the table's order
    text_phrases: tuple[IvTextPhrase, ...] = ()


@dataclass(frozen=True)
class IvTextPhrase:
    """A phrase of ``dosage.text`` that says how long an IV ran or that it was a push
    (mappings/iv_text.csv): ``pattern`` is built from the row's words by the loader."""

    phrase: str  # as the table writes it: "over {duration}", "slow iv push"
    pattern: re.Pattern[str]  # groups low, high (a range's upper end), unit for a duration
    technique: str | None  # push | infusion for a technique phrase; None: the duration decides


@dataclass(frozen=True)
class Hydration:
    """Products that are hydration fluid (mappings/hydration.csv): CPT 96360/96361, no drug line."""

    codes: frozenset[tuple[str, str]]  # (system, code)
    systems: frozenset[str]  # the systems those codes are in
    names: tuple[str, ...]  # word sequences, e.g. "sodium chloride"


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
class DoseForm:
    """A dose form (Medication.form coding, or the RxNorm dose form a product's name ends in)."""

    name: str  # as the table writes it: "Oral Tablet", "Metered dose inhaler"
    category: str  # a row of dose_form_categories.csv: oral, implant, injectable, ...


@dataclass(frozen=True)
class DoseFormCategory:
    """What a dose form category means for billing when no route is given."""

    category: str
    outcome: str  # held | not-96372 | not-billable (DOSE_FORM_OUTCOMES)
    procedure_code: str | None  # the code that applies instead of 96372 (implant 11981, IUD 58300)
    description: str


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
class PayerCode:
    """What a Coverage.type coding says of the payer (payer_codes.csv).

    ``specific`` codes name the payer type outright (NAHDO SOPT 1x Medicare); generic ones say only
    what kind of coverage it is (v3 PUBLICPOL, MCPOL): their ``payer_type`` is used only when neither
    the payor nor the type text says more ("unknown" then: the payer cannot be told).
    """

    payer_type: str
    specific: bool
    display: str


@dataclass(frozen=True)
class NameRule:
    """A whole name (or its first words) that names a payer type (payer_names.csv)."""

    payer_type: str
    type_text: bool  # applies to Coverage.type text
    payor_name: bool  # applies to the payor's name


@dataclass(frozen=True)
class PayerRule:
    """A payer type's rules (mappings/payers.csv); its modifiers come from mappings/modifiers.csv:
    ``distinct_modifier`` (the distinct-procedure row for it), ``jw_jz`` (JW and JZ rows list it)."""

    payer_type: str
    distinct_modifier: str
    requires_ndc: bool
    jw_jz: bool
    pays_99211_with_injection: bool
    mue_96372: int


@dataclass(frozen=True)
class FilingLimit:
    """How long after the date of service a payer type takes a claim (mappings/filing_limits.csv):
    ``amount`` days or months; ``months`` 12 from 2025-10-01 is 2026-10-01, the last day to file."""

    amount: int
    unit: str  # days | months (FILING_UNITS)
    text: str  # as written: "12m", "180d"

    def deadline(self, service: date) -> date:
        """The last day a claim for a service on ``service`` can be filed (``date.max`` when that
        is past the calendar's end: a service dated 9999)."""
        if self.unit == "days":
            try:
                return service + timedelta(days=self.amount)
            except OverflowError:
                return date.max
        months = service.year * 12 + service.month - 1 + self.amount
        year, month = divmod(months, 12)
        if year > date.max.year:
            return date.max
        # the same day of the month; a day the month lacks (29-31) is its last day
        day = min(service.day, monthrange(year, month + 1)[1])
        return date(year, month + 1, day)

    def longest_days(self) -> int:
        """The most days the limit can span (a month counted as 31 days)."""
        return self.amount * (31 if self.unit == "months" else 1)


def parse_filing_limit(text: object) -> FilingLimit | None:
    """``"12m"`` (months), ``"180d"`` (days) or ``"none"`` (no limit: None); ValueError otherwise."""
    raw = text.strip().lower() if isinstance(text, str) else ""
    if raw == "none":
        return None
    number, unit = raw[:-1], raw[-1:]
    if unit not in FILING_UNITS or not number.isdigit() or int(number) < 1:
        raise ValueError(
            f"filing limit {text!r} is not a number of days or months (e.g. '180d', '12m') "
            "or 'none'"
        )
    return FilingLimit(int(number), FILING_UNITS[unit], raw)


@dataclass(frozen=True)
class GapType:
    code: str
    severity: str
    field: str
    definition: str
    source: str
    raised_for: str = "96372"  # every | billed | 96372 (GAP_SCOPES)


@dataclass(frozen=True)
class Fee:
    amount: Decimal
    per: str  # "service" or "unit"


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
class EsaLab:
    """A laboratory reading a Medicare ESA claim reports (mappings/esa_labs.csv): hemoglobin (LOINC
    718-7) or hematocrit (4544-3), the most recent before the dose (CMS CR 5699)."""

    system: str
    code: str
    display: str
    reading: str  # one of ESA_READINGS
    max_days: int | None  # the oldest reading that counts, in days before the dose; None: any


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
