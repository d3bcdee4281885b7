"""fhir_injection/decision/early.py: the decisions that stop early carry
every fact the report and the coder need — who, when, where, which code and why — and nothing of the
96372 path.

Each case is one change from the clean Medicare office world of tests/builders.py; the expected
decision lists every field that is set (the rest must stay empty), and each gap's own detail (the
part of the message before the gap's definition).
"""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal

import pytest

from tests.builders import RXNORM, SNOMED, admin, decide_one, dosage, dose, route, world

IV = route(SNOMED, "47625008")
ORAL = route(SNOMED, "26643006")
SALINE = {"coding": [{"system": RXNORM, "code": "313002"}]}
WHO = {
    "administration": "MedicationAdministration/ma1",
    "patient": "Patient/p1",
    "encounter": "Encounter/e-p1",
    "payer_type": "medicare",
    "service_date": "2026-10-05",
}
OFFICE = {"setting": "office", "place_of_service": "11", "effective": "2026-10-05T09:30:00-05:00"}
# what a decision that went through the whole case (coverage, provider, site, diagnosis) knows
FULL_CASE = {
    "coverage": "Coverage/cov-p1",
    "provider": "Organization/clinic",
    "performer": "Practitioner/nurse",
    "body_site": (
        {
            "system": "http://terminology.hl7.org/CodeSystem/v2-0163",
            "code": "LD",
            "display": "Left deltoid",
        },
    ),
    "body_site_text": "Left deltoid",
    "diagnoses": (
        {
            "system": "http://hl7.org/fhir/sid/icd-10-cm",
            "code": "M54.50",
            "display": "Low back pain, unspecified",
        },
    ),
}

# the drug line of an administration code other than 96372, as on a 96372 (CMS 'JW Modifier and JZ
# Modifier Policy' FAQ; IOM 100-04 ch.17 s40: every separately payable Part B drug from a single-dose
# container, whatever code goes with it): ketorolac 30 mg from the 30 mg single-dose item of its NDC
# (CMS ASP NDC-HCPCS crosswalk), all of it, so JZ and 0 discarded; no Claim is written for the other
# code, so the line is not priced
KETOROLAC_LINE = {
    "lines": (
        {
            "kind": "drug",
            "system": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
            "code": "J1885",
            "display": "Injection, ketorolac tromethamine, per 15 mg",
            "modifiers": ("JZ",),
            "quantity": 2,
            "unit_price": None,
            "ndc": "00409379501",
            "ndc_quantity": Decimal("0.03"),
            "ndc_unit": "GR",
            "text": None,
            "discarded": 0,
        },
    ),
    "package": {
        "amount": Decimal("30"),
        "unit": "mg",
        "container": "single-dose",
        "source": "ndc_hcpcs.csv",
        "display": "Ketorolac Tromethamine (Pfizer Inc)",
        "kind_source": None,
    },
}


def fields(decision) -> dict:
    """The decision's set fields (the basis and the filing limit have their own tests: test_basis.py,
    tests/coding/test_filing_limits.py), gaps as (code, detail) with the detail cut before the definition."""
    own_tests = ("gaps", "extra", "basis", "filing_limit", "filing_deadline", "days_left")
    out = {
        k: v
        for k, v in asdict(decision).items()
        if v not in (None, (), {}, []) and k not in own_tests
    }
    out["gaps"] = [(g.code, g.message.split(". ")[0]) for g in decision.gaps]
    return out


def period(start: str, end: str) -> dict:
    return {
        "effectiveDateTime": None,
        "effectivePeriod": {
            "start": f"2026-10-05T{start}:00-05:00",
            "end": f"2026-10-05T{end}:00-05:00",
        },
    }


def no_route(name: str, coding: dict | None = None) -> dict:
    concept: dict = {"text": name}
    if coding:
        concept["coding"] = [coding]
    return admin(medicationCodeableConcept=concept, dosage=dosage(route=None))


ROUTE_GAP = "route-not-sc-im"
FORM_GAP = "dose-form-not-injectable"


@pytest.mark.parametrize(
    "case,administration,resources,expected",
    [
        (
            "an oral route bills nothing and keeps who, when and where",
            admin(dosage=dosage(route=ORAL)),
            None,
            {
                **WHO,
                **OFFICE,
                "outcome": "not-billable",
                "medication_text": "ketorolac",
                "gaps": [(ROUTE_GAP, "Route is oral")],
            },
        ),
        (
            "a hydration of 20 minutes is not reported",
            admin(
                medicationCodeableConcept=SALINE,
                dosage=dosage(route=IV, dose=dose(500, "mL")),
                **period("09:30", "09:50"),
            ),
            None,
            {
                **WHO,
                **OFFICE,
                "outcome": "not-billable",
                "gaps": [
                    (
                        ROUTE_GAP,
                        "Route is intravenous: IV hydration infusion (20 min by effectivePeriod) is not reported",
                    )
                ],
            },
        ),
        (
            "an infusion with a rate and no times is its initial code, with a warning",
            admin(dosage=dosage(route=IV, rateQuantity={"value": 100, "code": "mL/h"})),
            None,
            {
                **WHO,
                **OFFICE,
                **FULL_CASE,
                **KETOROLAC_LINE,
                "outcome": "not-96372",
                "procedure": "96365",
                "drug": "J1885",
                "units": 2,
                "medication_text": "ketorolac",
                "gaps": [
                    (
                        ROUTE_GAP,
                        "Route is intravenous: IV therapeutic infusion (dosage.rate): 96365 applies",
                    ),
                    (
                        "infusion-time-unknown",
                        "96365 (initial hour) only; dosage.rate says infusion but no duration is documented",
                    ),
                ],
            },
        ),
        (
            "an infusion of 121 minutes adds one hour",
            admin(dosage=dosage(route=IV), **period("09:30", "11:31")),
            None,
            {
                **WHO,
                **OFFICE,
                **FULL_CASE,
                **KETOROLAC_LINE,
                "outcome": "not-96372",
                "procedure": "96365",
                "additional": (("96366", 1),),
                "drug": "J1885",
                "units": 2,
                "medication_text": "ketorolac",
                "gaps": [
                    (
                        ROUTE_GAP,
                        "Route is intravenous: IV therapeutic infusion (121 min by effectivePeriod): 96365 + 96366 x 1 applies",
                    )
                ],
            },
        ),
        (
            "an infusion of 60 minutes adds nothing",
            admin(dosage=dosage(route=IV), **period("09:30", "10:30")),
            None,
            {
                **WHO,
                **OFFICE,
                **FULL_CASE,
                **KETOROLAC_LINE,
                "outcome": "not-96372",
                "procedure": "96365",
                "drug": "J1885",
                "units": 2,
                "medication_text": "ketorolac",
                "gaps": [
                    (
                        ROUTE_GAP,
                        "Route is intravenous: IV therapeutic infusion (60 min by effectivePeriod): 96365 applies",
                    )
                ],
            },
        ),
        (
            "an inpatient injection is inside the DRG: no administration code, the drug named",
            admin(),
            world(encounter_class="IMP"),
            {
                **WHO,
                "setting": "inpatient",
                "place_of_service": "21",
                "outcome": "not-billable",
                "drug": "J1885",
                "units": 2,
                "medication_text": "ketorolac",
                "gaps": [
                    (
                        "facility-setting",
                        "Inpatient encounter: administration is inside the DRG payment",
                    )
                ],
            },
        ),
        (
            "an emergency department injection is the facility's 96372",
            admin(),
            world(encounter_class="EMER"),
            {
                **WHO,
                "setting": "facility",
                "place_of_service": "23",
                "outcome": "not-billable",
                "procedure": "96372",
                "drug": "J1885",
                "units": 2,
                "medication_text": "ketorolac",
                "gaps": [
                    (
                        "facility-setting",
                        "Hospital outpatient/emergency encounter (POS 23): the facility bills 96372 "
                        "on its institutional claim",
                    )
                ],
            },
        ),
        (
            "an implant known by code is its insertion code and the device once",
            no_route("Etonogestrel 68 MG Drug Implant", {"system": RXNORM, "code": "389221"}),
            None,
            {
                **WHO,
                **OFFICE,
                "coverage": "Coverage/cov-p1",
                "outcome": "not-96372",
                "procedure": "11981",
                "drug": "J7307",
                "units": 1,
                "medication_text": "Etonogestrel 68 MG Drug Implant",
                "gaps": [
                    (
                        FORM_GAP,
                        "No route; the dose form in the product's name is 'Drug Implant' (implant): 11981 applies",
                    )
                ],
            },
        ),
        (
            "an implant known by name only is flagged",
            no_route("Nexplanon 68 MG Drug Implant"),
            None,
            {
                **WHO,
                **OFFICE,
                "coverage": "Coverage/cov-p1",
                "outcome": "not-96372",
                "procedure": "11981",
                "drug": "J7307",
                "units": 1,
                "medication_text": "Nexplanon 68 MG Drug Implant",
                "gaps": [
                    (
                        FORM_GAP,
                        "No route; the dose form in the product's name is 'Drug Implant' (implant): 11981 applies",
                    ),
                    ("unmapped-medication", "Matched to J7307 by drug name only, not by code"),
                ],
            },
        ),
        (
            "an implant with no device code has no device line",
            no_route("testosterone 75 MG Drug Implant"),
            None,
            {
                **WHO,
                **OFFICE,
                "coverage": "Coverage/cov-p1",
                "outcome": "not-96372",
                "procedure": "11981",
                "medication_text": "testosterone 75 MG Drug Implant",
                "gaps": [
                    (
                        FORM_GAP,
                        "No route; the dose form in the product's name is 'Drug Implant' (implant): 11981 applies",
                    ),
                    (
                        "unmapped-medication",
                        "No device code (drugs.csv class 'device') of this product in mappings/: "
                        "no device line",
                    ),
                ],
            },
        ),
        (
            "a tablet bills nothing and has no device gap",
            no_route("Ibuprofen 400 MG Oral Tablet"),
            None,
            {
                **WHO,
                **OFFICE,
                "coverage": "Coverage/cov-p1",
                "outcome": "not-billable",
                "medication_text": "Ibuprofen 400 MG Oral Tablet",
                "gaps": [
                    (
                        FORM_GAP,
                        "No route; the dose form in the product's name is 'Oral Tablet' (oral)",
                    )
                ],
            },
        ),
    ],
)
def test_a_decision_that_stops_early_carries_exactly_its_facts(
    case, administration, resources, expected
):
    assert fields(decide_one(administration, resources)) == expected, case


def test_an_early_decision_keeps_the_time_as_given_and_no_encounter_when_there_is_none():
    a = admin(dosage=dosage(route=ORAL), context=None, effectiveDateTime="2026-10-05")
    d = decide_one(a)
    assert (d.outcome, d.encounter, d.effective, d.service_date) == (
        "not-billable",
        None,
        "2026-10-05",
        "2026-10-05",
    )
    a = admin(
        dosage=dosage(route=ORAL),
        effectiveDateTime=None,
        effectivePeriod={"start": "2026-10-05T09:30:00Z"},
    )
    assert decide_one(a).effective == "2026-10-05T09:30:00Z"  # a period's start, as given


VERSIONED = {"meta": {"versionId": "3"}}


@pytest.mark.parametrize(
    "administration,resources",
    [
        (admin(dosage=dosage(route=ORAL), **VERSIONED), None),
        (
            no_route("Etonogestrel 68 MG Drug Implant", {"system": RXNORM, "code": "389221"})
            | VERSIONED,
            None,
        ),
        (admin(**VERSIONED), world(encounter_class="IMP")),
    ],
)
def test_an_early_decision_keeps_the_version_it_was_made_from(administration, resources):
    assert decide_one(administration, resources).version == "3"


def test_an_early_decision_names_no_encounter_when_the_reference_points_to_nothing():
    d = decide_one(admin(dosage=dosage(route=ORAL), context={"reference": "Encounter/gone"}))
    assert (d.outcome, d.encounter) == ("not-billable", None)


@pytest.mark.parametrize(
    "administration,resources",
    [
        (admin(dosage=dosage(route=ORAL)), None),
        (no_route("Etonogestrel 68 MG Drug Implant", {"system": RXNORM, "code": "389221"}), None),
        (admin(), world(encounter_class="IMP")),
    ],
)
def test_an_early_decision_without_a_time_has_no_service_date(administration, resources):
    d = decide_one({k: v for k, v in administration.items() if k != "effectiveDateTime"}, resources)
    assert (
        d.outcome in ("not-billable", "not-96372")
        and d.service_date is None
        and d.effective is None
    )


def test_an_effective_time_that_is_not_text_is_not_copied():
    d = decide_one(admin(dosage=dosage(route=ORAL), effectiveDateTime=20261005))
    assert (d.outcome, d.effective) == ("not-billable", None)


def test_an_implant_without_coverage_names_no_coverage():
    d = decide_one(
        no_route("Etonogestrel 68 MG Drug Implant", {"system": RXNORM, "code": "389221"}),
        world(coverage=False),
    )
    assert (d.procedure, d.drug, d.coverage) == ("11981", "J7307", None)
