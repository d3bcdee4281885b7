"""The container on the Claim: R4 Claim.item.detail has no element for the package
size, so the drug line's NDC detail (which carries the NDC quantity and unit qualifier, as an
837P's LIN/CTP segments do) and the JW line carry the extension
``urn:fhir-injection:StructureDefinition/container``: what one container holds (UCUM), single- or
multi-dose, the billing units discarded, where the size was read. The CMS example: ceftriaxone
500 mg from a 1 g single-dose vial = J0696 x 2 + J0696-JW x 2 (2 units discarded).
"""

from __future__ import annotations

from fhir_injection import Config, build_claim
from tests.builders import (
    CREATED,
    NDC,
    RXNORM,
    UCUM,
    admin,
    contained_admin,
    decide_one,
    dosage,
    dose,
    gap_codes,
    med,
    validate_claim,
    world,
)

URL = "urn:fhir-injection:StructureDefinition/container"
#: the NDC and the RxNorm clinical drug, whose dose form (Injection, a powder) makes the NDC unit UN;
#: the NDC's 1 g vial (4 billable units of 250 mg) is the CMS ASP NDC-HCPCS crosswalk's (ndc_hcpcs.csv)
CEFTRIAXONE_NDC = {
    "coding": [
        {"system": NDC, "code": "00143985725", "display": "Ceftriaxone sodium 1 g vial"},
        {"system": RXNORM, "code": "1665021", "display": "ceftriaxone 1000 MG Injection"},
    ]
}
EPOGEN_MDV = med(NDC, "55513028310", "Epogen 10,000 Units/mL 2 mL multiple-dose vial")


#: the latest hemoglobin, which a Medicare ESA claim carries (CMS CR 5699; tests/coding/test_esa.py)
HEMOGLOBIN = {
    "resourceType": "Observation",
    "id": "hgb",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2026-10-01",
    "valueQuantity": {"value": 9.8, "unit": "g/dL"},
}


def _claim(medication, amount, unit, payer="medicare"):
    d = decide_one(
        admin(medicationCodeableConcept=medication, dosage=dosage(dose=dose(amount, unit))),
        [*world(payer=payer), HEMOGLOBIN],
    )
    claim = build_claim(d, Config(), CREATED)
    validate_claim(claim)  # fhir.resources R4B: the extension is a valid Claim extension
    return d, claim


def _parts(extensions) -> dict:
    (ext,) = [e for e in extensions if e["url"] == URL]
    return {
        p["url"]: next(v for k, v in p.items() if k.startswith("value")) for p in ext["extension"]
    }


def test_cms_example_the_drug_lines_ndc_detail_carries_the_1_g_single_dose_vial_and_2_units_discarded():
    d, claim = _claim(CEFTRIAXONE_NDC, 500, "mg")
    assert d.outcome == "claim", gap_codes(d)
    drug = claim["item"][1]
    (detail,) = drug["detail"]
    assert detail["productOrService"]["coding"][0]["code"] == "00143985725"
    assert detail["quantity"] == {"value": 1.0, "unit": "UN"}  # the NDC quantity: one powder vial
    assert _parts(detail["extension"]) == {
        "amount": {"value": 1000.0, "unit": "mg", "system": UCUM, "code": "mg"},
        "kind": "single-dose",
        "discarded": 2,
        "source": "ndc_hcpcs.csv",
        "description": "Ceftriaxone (Hikma Pharmaceuticals USA Inc.)",
    }
    assert "extension" not in drug  # on the detail, next to the NDC it describes


def test_the_jw_line_carries_the_container_and_its_discarded_units():
    _, claim = _claim(CEFTRIAXONE_NDC, 500, "mg")
    waste = claim["item"][2]
    assert waste["modifier"][0]["coding"][0]["code"] == "JW" and "detail" not in waste
    parts = _parts(waste["extension"])
    assert (parts["amount"]["value"], parts["kind"], parts["discarded"]) == (
        1000.0,
        "single-dose",
        2,
    )
    assert waste["quantity"] == {"value": parts["discarded"]}


def test_nothing_discarded_jz_says_zero_units_discarded():
    _, claim = _claim(CEFTRIAXONE_NDC, 1, "g")
    drug = claim["item"][1]
    assert drug["modifier"][0]["coding"][0]["code"] == "JZ"
    assert _parts(drug["detail"][0]["extension"])["discarded"] == 0


def test_a_multiple_dose_vial_has_its_kind_and_no_discarded_units():
    d, claim = _claim(EPOGEN_MDV, 8000, "[iU]")
    assert d.outcome == "claim", gap_codes(d)
    # no JW/JZ; EC, a Medicare ESA for an anemia not from chemotherapy or radiotherapy (CMS CR 5699)
    assert [i.get("modifier") for i in claim["item"]] == [
        None,
        [
            {
                "coding": [
                    {
                        "system": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
                        "code": "EC",
                    }
                ]
            }
        ],
    ]
    detail = claim["item"][1]["detail"][0]
    assert detail["quantity"] == {"value": 0.8, "unit": "ML"}  # 8,000 Units at 10,000 Units/mL
    parts = _parts(detail["extension"])
    # drug "units" have no one UCUM code (USP or international by product): text only; HAPI refuses [U]
    assert parts["amount"] == {"value": 20000.0, "unit": "unit"}
    assert parts["kind"] == "multi-dose" and "discarded" not in parts


def test_without_an_ndc_the_drug_item_itself_carries_the_container():
    _d, claim = _claim(med(RXNORM, "1665021", "ceftriaxone 1000 MG Injection"), 500, "mg")
    drug = claim["item"][1]
    assert "detail" not in drug
    assert _parts(drug["extension"])["discarded"] == 2


def test_medication_amount_gives_a_size_without_a_kind():
    a = contained_admin(strength=(30, "mg", 1, "mL"), dose_ml=1)
    a["contained"][0]["amount"] = {
        "numerator": {"value": 2, "unit": "mL", "system": UCUM, "code": "mL"},
        "denominator": {"value": 1},
    }
    claim = build_claim(decide_one(a), Config(), CREATED)
    validate_claim(claim)
    parts = _parts(claim["item"][1]["extension"])
    assert parts == {
        "amount": {"value": 2.0, "unit": "mL", "system": UCUM, "code": "mL"},
        "discarded": 2,
        "source": "Medication.amount",
    }


def test_a_commercial_claim_has_the_container_but_no_discarded_units_as_jw_jz_are_not_worked_out():
    _, claim = _claim(CEFTRIAXONE_NDC, 500, "mg", payer="commercial")
    assert len(claim["item"]) == 2
    parts = _parts(claim["item"][1]["detail"][0]["extension"])
    assert parts["kind"] == "single-dose" and "discarded" not in parts


def test_no_container_known_no_extension_and_never_on_the_administration_line():
    _, claim = _claim(med(RXNORM, "11248", "cyanocobalamin"), 1000, "ug")
    assert all(
        "extension" not in i and all("extension" not in x for x in i.get("detail", []))
        for i in claim["item"]
    )
    _, claim = _claim(CEFTRIAXONE_NDC, 500, "mg")
    assert "extension" not in claim["item"][0]
