"""The drug given: which medication an administration names, and its HCPCS drug or CVX vaccine.

:func:`resolve_medication` reads ``medication[x]`` (a CodeableConcept, a contained Medication or a
referenced one) and maps its codes through ``mappings/`` (and the CMS ASP NDC-HCPCS crosswalk,
:func:`crosswalk_entry`), by name only as a last resort. The product's dose form is
``product_form``'s; the code in force, its billing units and the NDC quantity are ``billed_drug``'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal

from .. import fastjson
from ..fhir.resources import MAPPING
from .context import AdministrationPointers, Context
from .drug_tables import Drug, DrugCode, NdcCrosswalk, Package, Vaccine
from .elements import as_list, codings, concept_text
from .ruleset import SYSTEM_CVX, SYSTEM_HCPCS_ALIASES, SYSTEM_NDC, Rules
from .units import (
    ndc11,
    quantity_amount,
    ratio_strength,
    unit_of,
)

__all__ = [
    "Medication",
    "crosswalk_entry",
    "name_words",
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


def name_words(text: str) -> str:
    """``text``'s words (letters, digits and hyphens), lower case, each between single spaces (with
    one space before the first and after the last): a name occurs on word boundaries when
    ``f" {name} "`` is in it."""
    return " " + " ".join(_WORD.findall(text.lower())) + " "


def _name_match(text: str | None, names: Sequence[tuple[str, str]]) -> str | None:
    """The value of the longest name that occurs in ``text`` on word boundaries."""
    if not text:
        return None
    haystack = name_words(text)
    for name, value in names:
        if f" {name} " in haystack:
            return value
    return None
