"""The drug given: which medication an administration names, its HCPCS drug or CVX vaccine, and its units.

:func:`resolve_medication` reads ``medication[x]`` (a CodeableConcept, a contained Medication or a
referenced one) and maps its codes through ``mappings/``, by name only as a last resort.
:func:`drug_units` turns the dose into HCPCS billing units; :func:`ndc_quantity` into the NDC
quantity and unit of the drug line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from functools import lru_cache

from .. import fastjson
from ..fhir.resources import MAPPING
from .context import AdministrationPointers, Context
from .drug_tables import DoseForm, Drug, DrugCode, DrugFamily, NdcCrosswalk, Package, Vaccine
from .elements import as_list, codings, concept_text
from .ruleset import SYSTEM_CVX, SYSTEM_HCPCS_ALIASES, SYSTEM_NDC, SYSTEM_ORDERABLE_DRUG_FORM, Rules
from .units import (
    MAX_DOSE,
    DoseError,
    billing_units,
    ceiling,
    convert,
    ndc11,
    quantity_amount,
    ratio_strength,
    unit_of,
)

__all__ = [
    "Medication",
    "container_units",
    "crosswalk_entry",
    "current_code",
    "dose_form",
    "drug_units",
    "ndc_quantity",
    "product_dose_form",
    "resolve_medication",
]


class Medication:
    """What the engine could learn about the drug given (a plain class: one is made per administration)."""

    __slots__ = (
        "found",
        "reason",
        "codings",
        "text",
        "strength",
        "ndc",
        "vaccine",
        "drug",
        "drug_code",
        "by_name",
        "form",
        "package",
        "amount",
        "crosswalk",
        "drug_before_crosswalk",
        "derived",
    )

    def __init__(self):
        self.found = False  # a medication[x] was present and resolvable
        self.reason: str | None = None  # why it is missing
        self.codings: list[Mapping] = []
        self.text: str | None = None
        self.strength: tuple | None = None
        self.ndc: str | None = None
        self.vaccine: Vaccine | None = None
        self.drug: Drug | None = None
        self.drug_code: DrugCode | None = None
        self.by_name = False
        self.form: object = None  # Medication.form as written (a CodeableConcept, if anything)
        #: the container (:func:`_map_codes`): an NDC package of packages.csv, else Medication.amount,
        #: else an RxNorm clinical drug of packages.csv
        self.package: Package | None = None
        self.amount: Package | None = None  # Medication.amount (R4: the amount in one container)
        #: the NDC's entry in the CMS ASP NDC-HCPCS crosswalk (mappings/ndc_hcpcs.csv), if listed
        self.crosswalk: NdcCrosswalk | None = None
        #: the drug the other codes named when the crosswalk chose another: the code for service
        #: dates before the crosswalk's code existed (:func:`drug_units`)
        self.drug_before_crosswalk: Drug | None = None
        #: what is worked out from the codes and text alone (the dose form they name), shared by
        #: the copies of one resolved medication (:func:`resolve_medication`)
        self.derived: dict = {}

    def copy(self) -> Medication:
        """A copy whose facts the decision may change (the drug by diagnosis): what
        :func:`resolve_medication` gives may be shared by administrations of one product. The copy
        shares ``derived``."""
        other = Medication.__new__(Medication)
        for name in Medication.__slots__:
            setattr(other, name, getattr(self, name))
        return other


def resolve_medication(
    admin: Mapping,
    refs: AdministrationPointers,
    ctx: Context,
    rules: Rules,
    day: date | None = None,
) -> Medication:
    """The administration's medication[x] (``refs``: what the administration points to); ``day``:
    the date of service, which picks the crosswalk release (:func:`crosswalk_entry`; None: the
    newest release that lists the NDC). Only the undated reading is kept in Context.memo: a dated one
    is the rare re-reading for an older release (:func:`crosswalk_entry`) and must not be served the
    newest release's medication."""
    med = Medication()
    remember = day is None
    concept = admin.get("medicationCodeableConcept")
    element = admin.get("medicationReference")
    if concept is not None and isinstance(concept, MAPPING):  # None: no slow Mapping check
        key = _content_key(concept) if remember else None
        if (known := _memo(ctx, key, rules)) is not None:
            return known
        med.found = True
        med.codings = codings(concept)
        med.text = concept_text(concept)
    elif isinstance(element, MAPPING):
        resource = _referenced(med, admin, refs.medication, ctx)
        if resource is None:
            return med
        display = element.get("display")
        key = (
            _content_key(
                # what _read_medication reads: not the id (one product in many clinics' resources)
                [resource.get(name) for name in _READ_ELEMENTS],
                display if type(display) is str else None,
            )
            if remember
            else None
        )
        if (known := _memo(ctx, key, rules)) is not None:
            return known
        _read_medication(med, resource, element)
    else:
        med.reason = "no medicationCodeableConcept or medicationReference"
        return med
    _map_codes(med, rules, day)
    if med.vaccine is None and med.drug is None:
        _match_by_name(med, rules)
    if key is not None:
        ctx.memo[key] = (rules, med)
    return med


#: the elements of a Medication resource :func:`_read_medication` reads
_READ_ELEMENTS = ("code", "form", "amount", "ingredient")


def _content_key(medication: object, display: str | None = None) -> tuple | None:
    """What a medication is resolved from, as a memo key: the CodeableConcept, or the elements of the
    Medication resource that are read and the reference's display (the text of a Medication that
    has none), as JSON; None when it cannot be written as JSON. A clinic names the same few
    products administration after administration: their codes are mapped once a run."""
    try:
        return ("medication", fastjson.orjson.dumps(medication), display)
    except (TypeError, AttributeError):  # a value JSON cannot hold; no orjson
        return None


def _memo(ctx: Context, key: tuple | None, rules: Rules) -> Medication | None:
    """The medication resolved from the same content before (Context.memo), or None. It is shared:
    a step that changes a fact of it changes a :meth:`Medication.copy`."""
    if key is None:
        return None
    entry = ctx.memo.get(key)
    return entry[1] if entry is not None and entry[0] is rules else None


def _referenced(med: Medication, admin: Mapping, ref, ctx: Context) -> Mapping | None:
    """The Medication that medicationReference names: contained (``#id``) or in ``ctx``; else sets the reason."""
    if isinstance(ref, str) and ref.startswith("#"):
        for contained in as_list(admin.get("contained")):
            if (
                isinstance(contained, MAPPING)
                and contained.get("resourceType") == "Medication"
                and contained.get("id") == ref[1:]
            ):
                return contained
        med.reason = f"medicationReference '{ref}' names no contained Medication"
        return None
    resource = ctx.get(ref, "Medication", admin)
    if resource is None:
        med.reason = (
            f"medicationReference {ctx.resolve(ref, 'Medication', admin)[1]}"
            if ref is not None
            else "medicationReference has no usable reference"  # e.g. a display alone
        )
    return resource


def _read_medication(med: Medication, resource: Mapping, element: Mapping) -> None:
    """Codes, text and strength of a Medication resource (its own code, then its ingredients')."""
    med.found = True
    med.form = resource.get("form")
    med.amount = _amount(resource.get("amount"))
    med.codings = codings(resource.get("code"))
    med.text = concept_text(resource.get("code")) or concept_text(
        element.get("display") and {"text": element["display"]}
    )
    for ingredient in as_list(resource.get("ingredient")):
        if not isinstance(ingredient, MAPPING):
            continue
        med.codings.extend(codings(ingredient.get("itemCodeableConcept")))
        med.text = med.text or concept_text(ingredient.get("itemCodeableConcept"))
        med.strength = med.strength or ratio_strength(ingredient.get("strength"))


def _amount(ratio) -> Package | None:
    """Medication.amount (an R4 Ratio: the amount in one container, e.g. 10 mL per 1 vial) as a
    Package whose container kind is not known; None unless the numerator has a known unit and the
    denominator, when given, is 1."""
    if ratio is None or not isinstance(ratio, MAPPING):
        return None
    numerator = quantity_amount(ratio.get("numerator"))
    denominator = ratio.get("denominator")
    if denominator is not None:
        per = quantity_amount(denominator) or (
            (v, "1")
            if isinstance(denominator, MAPPING)
            and (v := _plain(denominator.get("value"))) is not None
            else None
        )
        if per is None or per[0] != 1:
            return None
    if numerator is None or numerator[0] <= 0 or unit_of(numerator[1]) is None:
        return None
    return Package(numerator[0], numerator[1], None, "Medication.amount")


def _plain(value) -> Decimal | None:
    """A JSON number as a Decimal (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return Decimal(str(value))


def _map_codes(med: Medication, rules: Rules, day: date | None = None) -> None:
    """The vaccine (CVX), NDC, HCPCS drug and mapped drug code the codings name; the first of each wins.
    An NDC the CMS ASP NDC-HCPCS crosswalk lists under one code decides the drug unless a HCPCS
    coding on the record names it (:func:`_crosswalk`). The container: an NDC package of
    packages.csv, else the crosswalk's item of that NDC, else Medication.amount, else a packages.csv
    row of another code (an RxNorm clinical drug)."""
    ndc_package = other_package = None
    coded = False  # a HCPCS coding on the record named the drug
    packages = rules.packages
    for c in med.codings:
        system, code = c.get("system"), c.get("code")
        if not isinstance(code, str):
            continue
        if system == SYSTEM_CVX and code in rules.vaccines:
            med.vaccine = med.vaccine or rules.vaccines[code]
        elif system == SYSTEM_CVX and code.lstrip("0") in {k.lstrip("0") for k in rules.vaccines}:
            med.vaccine = med.vaccine or next(
                v for k, v in rules.vaccines.items() if k.lstrip("0") == code.lstrip("0")
            )
        if system == SYSTEM_NDC:
            normal = ndc11(code)
            med.ndc = med.ndc or normal
            code = normal or code
        if system in SYSTEM_HCPCS_ALIASES and code in rules.drugs and med.drug is None:
            med.drug = rules.drugs[code]
            coded = True
        # the system as written: one that is not text finds nothing
        hit = rules.drug_codes.get((system, code))  # type: ignore[arg-type]
        if hit and med.drug_code is None:
            med.drug_code = hit
        if packages:
            package = packages.get((system, code))  # type: ignore[arg-type]
            if package is not None:
                if system == SYSTEM_NDC:
                    ndc_package = ndc_package or package
                else:
                    other_package = other_package or package
    if med.drug is None and med.drug_code is not None:
        med.drug = rules.drugs[med.drug_code.hcpcs]
    crosswalk = crosswalk_entry(rules, med.ndc, day)[0] if med.ndc else None
    if crosswalk is not None:
        _crosswalk(med, crosswalk, coded, rules)
    med.package = (
        ndc_package or (crosswalk.package if crosswalk else None) or med.amount or other_package
    )
    if med.drug_code is not None and med.drug_code.strength and not med.strength:
        med.strength = med.drug_code.strength


def crosswalk_entry(rules: Rules, ndc: str, day: date | None) -> tuple[NdcCrosswalk | None, str]:
    """The NDC's entry in the CMS ASP NDC-HCPCS crosswalk release for a service on ``day``, and how
    that release was chosen (empty when the release was in force that day). Among the releases
    that list the NDC: the newest that began on or before ``day``, so no later quarter's code or
    package size is applied to an earlier service; a service after the newest release's last day
    takes the newest (the most current CMS file held; it says so); one before the first release that
    lists the NDC takes that one (the NDC's code and package are still the best known; the code's
    own first day, ``effective``, still guards it). No ``day``: the newest release."""
    entries = rules.ndc_hcpcs_releases.get(ndc)
    if not entries:
        entry = rules.ndc_hcpcs.get(ndc)  # rules built by hand (tests): one release
        return entry, ""
    if day is None:
        return entries[-1], "no date of service: the newest release that lists the NDC"
    chosen = entries[0]
    for entry in entries:
        if entry.release[0] <= day:
            chosen = entry
    first, last = chosen.release
    if first <= day <= last:
        return chosen, ""
    in_force = next((r for r in rules.crosswalk_releases if r[0] <= day <= r[1]), None)
    if day < first:
        if in_force is None:
            return chosen, (
                f"the date of service {day} is before the first release held that lists the NDC: "
                "that release"
            )
        return chosen, (
            f"the release in force on {day} ({in_force[0]} to {in_force[1]}) does not list the "
            "NDC: the first release that does"
        )
    if in_force is not None:
        return chosen, (
            f"the release in force on {day} ({in_force[0]} to {in_force[1]}) does not list the "
            "NDC: the last release that does"
        )
    if day > rules.crosswalk_releases[-1][1]:
        if chosen.release == rules.crosswalk_releases[-1]:
            return chosen, (
                f"the date of service {day} is after the newest release's last day: the newest release"
            )
        return chosen, (
            f"the date of service {day} is after the newest release's last day, and the newest "
            "release does not list the NDC: the last release that does"
        )
    return (
        chosen,
        f"no release held was in force on {day}: the last one before it that lists the NDC",
    )


def _crosswalk(med: Medication, entry: NdcCrosswalk, coded: bool, rules: Rules) -> None:
    """The NDC's code in the CMS ASP NDC-HCPCS crosswalk: it decides the drug when CMS lists the NDC
    under one code and no HCPCS coding on the record names one (the record's own code stands); an
    NDC CMS lists under several codes (Epogen: J0885 and Q4081, by diagnosis) leaves the drug the
    other codes named. The code the other codes named is kept for service dates before the
    crosswalk's code existed (:func:`drug_units`)."""
    med.crosswalk = entry
    if coded or len(entry.hcpcs) != 1:
        return
    chosen = rules.drugs[entry.hcpcs[0]]
    if med.drug is not chosen:
        med.drug_before_crosswalk = med.drug
        med.drug = chosen


def _match_by_name(med: Medication, rules: Rules) -> None:
    """No code mapped: a vaccine, else a drug, named in the text or a display (flagged as by name)."""
    names = " ".join(
        filter(
            None,
            [med.text]
            + [c.get("display") for c in med.codings if isinstance(c.get("display"), str)],
        )
    )
    cvx = _name_match(names, rules.vaccine_names)
    if cvx:
        med.vaccine = rules.vaccines[cvx]
        med.by_name = True
    else:
        hcpcs = _name_match(names, rules.drug_names)
        if hcpcs:
            med.drug = rules.drugs[hcpcs]
            med.by_name = True


_WORD = re.compile(r"[a-z0-9][a-z0-9\-]*")


def _name_match(text: str | None, names: Sequence[tuple[str, str]]) -> str | None:
    """The value of the longest name that occurs in ``text`` on word boundaries."""
    if not text:
        return None
    haystack = " " + " ".join(_WORD.findall(text.lower())) + " "
    for name, value in names:
        if f" {name} " in haystack:
            return value
    return None


def dose_form(med: Medication, rules: Rules, dose: object = None) -> tuple[DoseForm, str] | None:
    """(dose form, where it was read) of the product, or None when nothing says which.

    First a ``Medication.form`` coding in mappings/dose_forms.csv (SNOMED CT, HL7 v3
    orderableDrugForm); then the dose form name (RxNorm, SNOMED CT) that ``Medication.form``'s text
    or displays, the medication's text, or its codings' displays end in ("Acetaminophen 325 MG Oral
    Tablet", "... Injection [Epogen]": a trailing [brand] is left out; "Fentanyl 25micrograms/hour
    patch (product)": a trailing SNOMED CT semantic tag is left out); last the unit of ``dose``
    (``dosage.dose``) when it is an HL7 v3 orderableDrugForm code of the table, coded ("TAB" in
    v3-orderableDrugForm, as the FHIR R4 examples write it) or as the unit alone ("patch", "SUPP").
    Never a guess from a word inside a name.
    """
    form = med.form
    for c in codings(form):
        system, code = c.get("system"), c.get("code")
        hit = rules.dose_forms.get((system, code))  # type: ignore[arg-type]
        if hit is not None:
            return hit, "Medication.form"
    if isinstance(form, MAPPING):
        for text in _texts(form.get("text"), codings(form)):
            hit = _form_by_name(text, rules)
            if hit is not None:
                return hit, "Medication.form"
    for text in _texts(med.text, med.codings):
        hit = _form_by_name(text, rules)
        if hit is not None:
            return hit, "the product's name"
    return _form_by_dose_unit(dose, rules)


def product_dose_form(med: Medication, rules: Rules) -> tuple[DoseForm, str] | None:
    """:func:`dose_form` without a dose: read once for a medication and the copies made of it."""
    derived = med.derived
    if "form" not in derived:
        derived["form"] = dose_form(med, rules)
    return derived["form"]


def _form_by_dose_unit(dose: object, rules: Rules) -> tuple[DoseForm, str] | None:
    """The dose form a dose's unit names: an HL7 v3 orderableDrugForm code of mappings/dose_forms.csv,
    given as the coded unit (system v3-orderableDrugForm) or as the unit alone, in any case."""
    if not isinstance(dose, MAPPING):
        return None
    system, code, unit = dose.get("system"), dose.get("code"), dose.get("unit")
    if system == SYSTEM_ORDERABLE_DRUG_FORM and isinstance(code, str):
        candidates = [code]
    elif system is None:
        candidates = [v for v in (code, unit) if isinstance(v, str)]
    else:
        return None
    for text in candidates:
        for key in (text.strip(), text.strip().upper()):
            hit = rules.dose_forms.get((SYSTEM_ORDERABLE_DRUG_FORM, key))
            if hit is not None:
                return hit, "dosage.dose unit"
    return None


def _texts(text, found: list[Mapping]) -> list[str]:
    """A text and the displays of codings: the strings a dose form name may end one of."""
    out = [text] if isinstance(text, str) else []
    out.extend(c["display"] for c in found if isinstance(c.get("display"), str))
    return out


#: a SNOMED CT fully specified name's semantic tag, at its end in parentheses, lower case:
#: "(product)", "(clinical drug)", "(medicinal product form)", "(qualifier value)" (SNOMED CT
#: Editorial Guide, fully specified name); a name's own words never look like one
_SEMANTIC_TAG = re.compile(r"\s*\([a-z][a-z ]*\)$")


def _form_by_name(text: str, rules: Rules) -> DoseForm | None:
    """The dose form whose name ``text`` ends in (whole words, any case), the longest first."""
    text = _SEMANTIC_TAG.sub("", text.strip())  # SNOMED CT: "... patch (product)"
    if text.endswith("]") and "[" in text:  # RxNorm branded drug: "... Injection [Epogen]"
        text = text[: text.rindex("[")]
    words = text.lower().split()
    names = rules.dose_form_names
    for count in rules.dose_form_name_words:
        if count <= len(words):
            hit = names.get(" ".join(words[-count:]))
            if hit is not None:
                return hit
    return None


def drug_units(
    med: Medication, dosage: Mapping, rules: Rules, when: date | None = None
) -> tuple[Drug | None, int | None, tuple[Decimal, str] | None, list[tuple[str, str]]]:
    """(HCPCS drug, billing units, dose, [(gap code, detail)]) for the drug line, on the service
    date ``when`` (a code CMS ended then is its successor's, in the successor's billing unit)."""
    problems: list[tuple[str, str]] = []
    units = None
    drug = med.drug
    entry = med.crosswalk
    if (
        entry is not None
        and when is not None
        and drug is not None
        and len(entry.hcpcs) == 1
        and drug.hcpcs == entry.hcpcs[0]
        and (first := entry.effective[0]) is not None
        and when < first
    ):
        # the crosswalk's code did not exist on the service date: the code the other codes named
        drug = med.drug_before_crosswalk
    if med.found and drug is None and med.vaccine is None:
        drug = rules.drugs["J3490"]
        problems.append(
            (
                "unmapped-medication",
                "No RxNorm, NDC or HCPCS code of the drug is in mappings/: J3490",
            )
        )
    elif med.by_name and drug is not None:
        problems.append(
            ("unmapped-medication", f"Matched to {drug.hcpcs} by drug name only, not by code")
        )
    dose = quantity_amount(dosage.get("dose"))
    family = rules.drug_families.get(drug.hcpcs) if drug is not None else None
    if family is not None and med.vaccine is None:
        drug, ambiguous = _family_member(med, family, dose, rules)
        if ambiguous:
            problems.append(("ambiguous-drug-code", ambiguous))
    if drug is not None and drug.hcpcs in rules.code_changes:
        drug = current_code(drug, med.ndc, when, rules)
    start = rules.code_starts.get(drug.hcpcs) if drug is not None else None
    if start is not None and when is not None and when < start.added:
        drug = rules.drugs[start.before]  # the code did not exist yet (code_starts.csv)
    implausible = (
        dose is not None and (dim := unit_of(dose[1])) is not None and dose[0] * dim[1] > MAX_DOSE
    )
    if med.found and med.vaccine is None:
        if dose is None:
            problems.append(("missing-dose", "dosage.dose has no value with a unit"))
        elif implausible:
            problems.append(("missing-dose", f"Dose {dose[0]} {dose[1]} is implausible"))
        elif drug is not None and drug.unit_amount is not None:
            try:
                units = _billing_units(dose[0], dose[1], drug.unit_amount, drug.unit, med.strength)
            except DoseError as exc:
                problems.append(("missing-dose", str(exc)[:1].upper() + str(exc)[1:]))
        elif unit_of(dose[1]) is None or dose[0] <= 0:
            problems.append(
                ("missing-dose", "dosage.dose is not a positive amount in a known unit")
            )
        elif drug is not None and drug.unit_status == "unparsed":
            problems.append(
                (
                    "missing-dose",
                    f"{drug.hcpcs}'s billing unit ('{drug.description}') is not a mass, volume or "
                    "unit amount: code its units by hand",
                )
            )
        elif drug is not None:
            # unclassified (J3490), per item: one unit; the amount travels as the NDC quantity
            units = 1
    if implausible:
        dose = None  # never carried onto a Claim (NDC quantity, drug text)
    return drug, units, dose, problems


def current_code(drug: Drug, ndc: str | None, when: date | None, rules: Rules) -> Drug:
    """The code in force on the service date ``when`` (mappings/code_changes.csv): an ended code's
    successor from its first day (the product's own, by NDC, before the general one), else the code
    itself. Without a service date, the current code: the successor."""
    for change in rules.code_changes[drug.hcpcs]:
        if change.ndc is not None and change.ndc != ndc:
            continue
        if when is None or when >= change.effective:
            return rules.drugs[change.new]
        return drug
    return drug


def _family_member(
    med: Medication, family: DrugFamily, dose: tuple[Decimal, str] | None, rules: Rules
) -> tuple[Drug | None, str | None]:
    """(the family's code for this product and dose, None) or (None, why it is ambiguous).

    The salt is the mapped product's (drug_codes.csv ``salt``), else the one whose words the
    medication's text or displays name ("methylprednisolone acetate", "Solu-Medrol"); a family of
    one salt needs neither. Within the salt, the smallest size that holds the dose (80 mg of
    methylprednisolone acetate: J1040 x 1, not J1030 x 2); above the largest, the largest.
    """
    salts = family.salts
    code = med.drug_code
    salt = code.salt if code is not None and code.salt in salts else None
    if salt is None and len(salts) > 1:
        names = " ".join(
            filter(
                None,
                [med.text]
                + [c.get("display") for c in med.codings if isinstance(c.get("display"), str)],
            )
        )
        haystack = " " + " ".join(_WORD.findall(names.lower())) + " "
        named = [m.salt for m in family.members if any(f" {w} " in haystack for w in m.salt_words)]
        found = tuple(dict.fromkeys(named))
        if len(found) != 1:
            return None, (
                f"{family.name}: the code depends on the salt ("
                + "; ".join(
                    f"{s} " + "/".join(m.hcpcs for m in family.members if m.salt == s)
                    for s in salts
                )
                + ") and "
                + ("the product names more than one" if found else "only the ingredient is known")
            )
        salt = found[0]
    members = [m for m in family.members if m.salt == (salt or salts[0])]
    chosen = members[-1]
    amount = None
    if dose is not None and chosen.unit is not None:
        try:
            amount = convert(dose[0], dose[1], chosen.unit, med.strength)
        except DoseError:
            amount = None  # the units step says why the dose cannot be billed
    if amount is not None:
        chosen = next((m for m in members if m.size is not None and amount <= m.size), chosen)
    elif med.drug is not None and any(m.hcpcs == med.drug.hcpcs for m in members):
        chosen = next(m for m in members if m.hcpcs == med.drug.hcpcs)
    return rules.drugs[chosen.hcpcs], None


#: billing_units for the usual few doses of each drug, worked out once (a dose error is not kept:
#: it is raised again each time, with its own message)
_billing_units = lru_cache(maxsize=4096)(billing_units)


def ndc_quantity(med: Medication, dose, rules: Rules) -> tuple:
    """(quantity, unit) of the NDC on the drug line; (None, None) without NDC or dose.

    The unit (NCPDP billing unit standard, mappings/ndc_units.csv), the first that applies: the
    product's strength (mass or units per volume: a liquid, ML, the volume given); its dose form (an
    RxNorm "Injection" without a per-volume strength is a powder vial: UN, the containers opened);
    the dose's own unit (volume ML, mass GR in grams, units F2).
    """
    if not (med.ndc and dose):
        return None, None
    table = rules.ndc_units
    strength = med.strength
    if strength is not None:
        num, den = unit_of(strength[1]), unit_of(strength[3])
        kind = f"{num[0]}/{den[0]}" if num and den else None
        unit = table.get(("strength", kind)) if kind else None
        if unit == "ML":
            try:
                return convert(dose[0], dose[1], "mL", strength), "ML"
            except DoseError:
                pass  # a dose the strength cannot turn into mL: the dose's own unit below
    form = product_dose_form(med, rules)
    unit = table.get(("dose-form", form[0].name.lower())) if form else None
    if unit == "UN":
        return _containers(med.package, dose), "UN"
    dim = unit_of(dose[1])
    unit = table.get(("dose-unit", dim[0])) if dim else None
    if unit == "ML":
        return dose[0] * dim[1], "ML"  # type: ignore[index]
    if unit == "GR":
        return dose[0] * dim[1] / 1000, "GR"  # type: ignore[index]
    if unit == "F2":
        return dose[0] * dim[1], "F2"  # type: ignore[index]
    return dose[0], "UN"


def _containers(package: Package | None, dose) -> Decimal:
    """How many containers a dose opens (1 when the container's size is not known)."""
    if package is None:
        return Decimal(1)
    try:
        return Decimal(max(1, ceiling(convert(dose[0], dose[1], package.unit) / package.amount)))
    except DoseError:
        return Decimal(1)


def container_units(drug: Drug, package: Package, dose: tuple[Decimal, str], strength) -> int:
    """The billing units of the containers a dose opens: ceil(dose ÷ container) containers of the
    package's size, in the drug's billing unit (a 1 g vial of J0696, per 250 mg: 4). Raises
    :class:`DoseError` when the dose or the container cannot be converted."""
    assert drug.unit_amount is not None and drug.unit is not None
    opened = max(1, ceiling(convert(dose[0], dose[1], package.unit, strength) / package.amount))
    return billing_units(
        package.amount * opened, package.unit, drug.unit_amount, drug.unit, strength
    )
