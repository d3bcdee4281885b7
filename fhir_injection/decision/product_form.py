"""The dose form of the product given (mappings/dose_forms.csv): from ``Medication.form``, the
dose form name a product's name ends in, or the dose's unit, never a guess from a word inside a
name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..fhir.resources import MAPPING
from .drug_tables import DoseForm
from .elements import codings
from .medication import Medication
from .ruleset import SYSTEM_ORDERABLE_DRUG_FORM, Rules

__all__ = [
    "dose_form",
    "product_dose_form",
]


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
