"""More dose-form shapes real data sends, when no route is given (mappings/dose_forms.csv).

- SNOMED CT product names end in the dose form and then a semantic tag: "Fentanyl 25micrograms/hour
  patch (product)" (HL7 cqf-recommendations am-scenario5), "Paracetamol 240mg suppository
  (product)" (FHIR R4 example medicationadministration0313), "... oral tablet (product)".
- The dose's unit is an HL7 v3 orderableDrugForm code: ``1 PATCH`` (am-scenario5), ``2 TAB``
  (FHIR R4 examples 0306/0311), or the unit alone ("patch", "SUPP").

Each is no injection: ``not-billable`` with the info gap ``dose-form-not-injectable``, no Task. A
coded route still decides, and an injectable name or a UCUM unit says nothing.
"""

from __future__ import annotations

import pytest

from fhir_injection import Config, build_task
from tests.builders import CREATED, SNOMED, UCUM, admin, decide_one, dosage, gap, gap_codes, rules

V3_FORM = "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm"


def no_route(concept: dict, dose: dict | None = None) -> dict:
    d = dosage(route=None, dose=dose) if dose is not None else dosage(route=None)
    return admin(medicationCodeableConcept=concept, dosage=d)


def _not_injectable(d, category: str, where: str):
    assert d.outcome == "not-billable" and d.procedure is None
    assert gap_codes(d) == ["dose-form-not-injectable"]
    message = gap(d, "dose-form-not-injectable").message
    assert f"({category})" in message and where in message
    assert build_task(d, Config(), rules(), CREATED) is None


def test_the_cqf_fentanyl_patch_product_is_not_billable():
    # HL7 cqf-recommendations am-scenario5: SNOMED CT 333919005, dose 1 v3 PATCH, no route
    concept = {
        "coding": [
            {
                "system": SNOMED,
                "code": "333919005",
                "display": "Fentanyl 25micrograms/hour patch (product)",
            }
        ]
    }
    d = decide_one(
        no_route(concept, {"value": 1, "unit": "patch", "system": V3_FORM, "code": "PATCH"})
    )
    _not_injectable(d, "transdermal", "product's name")


@pytest.mark.parametrize(
    "display,category",
    [
        (
            "Fentanyl 25 microgram/1 hour prolonged-release transdermal patch (product)",
            "transdermal",
        ),
        (
            "Paracetamol 240mg suppository (product)",
            "suppository",
        ),  # FHIR R4 medicationadministration0313
        ("Paracetamol 500mg oral tablet (product)", "oral"),
        (
            "Fentanyl 25 microgram/1 hour prolonged-release transdermal patch (clinical drug)",
            "transdermal",
        ),
    ],
)
def test_a_snomed_product_name_ends_in_its_dose_form_before_the_semantic_tag(display, category):
    d = decide_one(no_route({"coding": [{"system": SNOMED, "code": "1", "display": display}]}))
    _not_injectable(d, category, "product's name")


@pytest.mark.parametrize(
    "dose,category",
    [
        ({"value": 2, "unit": "TAB", "system": V3_FORM, "code": "TAB"}, "oral"),  # FHIR R4 0306
        ({"value": 1, "unit": "patch", "system": V3_FORM, "code": "PATCH"}, "transdermal"),
        ({"value": 1, "unit": "patch"}, "transdermal"),
        ({"value": 1, "unit": "SUPP"}, "suppository"),
        ({"value": 1, "unit": "Supp"}, "suppository"),
    ],
)
def test_a_dose_in_orderable_drug_form_units_says_the_form(dose, category):
    # a product named by nothing but its ingredient: only the dose unit says what it is
    d = decide_one(no_route({"text": "lorazepam"}, dose))
    _not_injectable(d, category, "dosage.dose unit")


def test_a_ucum_dose_unit_or_an_unknown_unit_says_nothing():
    for dose in (
        {"value": 1, "unit": "mg", "system": UCUM, "code": "mg"},
        {"value": 1, "unit": "puff"},
        {"value": 1, "unit": "TAB", "system": "http://example.org/units", "code": "TAB"},
    ):
        d = decide_one(no_route({"text": "lorazepam"}, dose))
        assert d.outcome == "held" and "missing-route" in gap_codes(d), dose


def test_a_semantic_tag_does_not_make_an_injection_a_non_injection():
    concept = {
        "coding": [
            {
                "system": SNOMED,
                "code": "1",
                "display": "Ketorolac 30mg/1mL solution for injection (product)",
            }
        ]
    }
    d = decide_one(no_route(concept))
    assert d.outcome == "held" and "missing-route" in gap_codes(d)


def test_a_coded_route_still_decides_over_the_product_name_and_dose_unit():
    concept = {
        "coding": [
            {
                "system": SNOMED,
                "code": "333919005",
                "display": "Fentanyl 25micrograms/hour patch (product)",
            }
        ]
    }
    a = admin(
        medicationCodeableConcept=concept,
        dosage=dosage(dose={"value": 1, "unit": "patch", "system": V3_FORM, "code": "PATCH"}),
    )
    d = decide_one(a)  # the route says IM: the record's own route is read, never overridden
    assert "dose-form-not-injectable" not in gap_codes(d)
