"""The rows of the drug tables (mappings/drugs.csv, drug_codes.csv, drug_families.csv, vaccines.csv,
packages.csv, ndc_hcpcs.csv, drug_by_diagnosis.csv, code_changes.csv, code_starts.csv, dose_forms.csv,
dose_form_categories.csv, esa_labs.csv): what a drug is billed as, in what container, on what date.
Plain frozen data; :class:`~fhir_injection.decision.ruleset.Rules` holds them keyed for look-ups.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

__all__ = [
    "CodeChange",
    "CodeStart",
    "DoseForm",
    "DoseFormCategory",
    "Drug",
    "DrugByDiagnosis",
    "DrugCode",
    "DrugFamily",
    "EsaLab",
    "FamilyMember",
    "NdcCrosswalk",
    "Package",
    "Vaccine",
]


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
class EsaLab:
    """A laboratory reading a Medicare ESA claim reports (mappings/esa_labs.csv): hemoglobin (LOINC
    718-7) or hematocrit (4544-3), the most recent before the dose (CMS CR 5699)."""

    system: str
    code: str
    display: str
    reading: str  # one of ESA_READINGS
    max_days: int | None  # the oldest reading that counts, in days before the dose; None: any
