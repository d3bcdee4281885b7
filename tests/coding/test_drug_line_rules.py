"""The NDC and ESA rules on every drug line the engine writes, whatever administration code goes with it.

Both rules are about the drug line, not the 96372:
- Medicaid: the Deficit Reduction Act of 2005 (SSA s1927(a)(7); 42 CFR 447.520) has states require the
  NDC on claims for physician-administered drugs, "drugs that are infused or injected" (MACPAC), with
  the NDC's quantity and unit of measure (South Dakota Medicaid's NDC page); vaccines are excepted from
  the rebate and so from the NDC requirement (Medi-Cal PAD manual). An IV push (96374) or an infusion
  (96365) of ketorolac or ceftriaxone needs the NDC on its drug line as a 96372's does.
- Not-otherwise-classified codes: CGS Medicare Part B, "Not Otherwise Classified (NOC) Drugs:
  Clarification on Required Information" (2014, updated 2015): J3490/J3590/J9999 carry the drug's
  name, NDC and exact dosage, or are returned unprocessable, for every payer that prices them so.
- ESAs: CMS CR 5699 (Transmittal 1412, 2008-01-11; MLN Matters MM5699) applies to "all claims requesting
  payment for the administration of ESAs": EA, EB or EC on the ESA line and the most recent hemoglobin
  or hematocrit; epoetin is given by IV push as well as subcutaneously (Epogen label). ESRD on dialysis:
  the ESA is a renal dialysis service in the ESRD PPS bundle (42 CFR 413.171), whatever the route.

The E/M-same-day (CMS CR 3631: the 96372 and the E/M billed with it) and self-administered-drug rules
stay on the 96372: IOM 100-02 ch.15 s50.2 has MACs presume, absent evidence to the contrary, that drugs
given intravenously are not usually self-administered (a SAD list entry is about the SC injection).
No Claim is written for another administration code: its gaps open a Task.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from fhir_injection import Config
from fhir_injection.sinks.claims import build_claim, build_task
from tests.builders import (
    CREATED,
    CVX,
    ICD10,
    NDC,
    RXNORM,
    SNOMED,
    admin,
    decide_one,
    dosage,
    dose,
    gap,
    gap_codes,
    line,
    med,
    replace_resource,
    route,
    rules,
    world,
)

IV = route(SNOMED, "47625008")
IM = route(SNOMED, "78421000")
KETOROLAC_INGREDIENT = med(RXNORM, "35827", "ketorolac")  # no NDC
KETOROLAC_NDC = med(NDC, "00409379601", "ketorolac 30 mg/mL")  # 30 mg is 1 mL of it
CEFTRIAXONE_1G = med(RXNORM, "1665021")  # one 1 g powder vial (packages.csv), no NDC
MYSTERY = {
    "coding": [{"system": RXNORM, "code": "999999", "display": "mystery drug"}]
}  # no row: J3490
MYSTERY_NDC = {"coding": [*MYSTERY["coding"], {"system": NDC, "code": "00002759701"}]}
LOINC = "http://loinc.org"


def _given(medication, amount, unit, how, payer="medicare", resources=None, reasons=None):
    """One administration: ``how`` is "im" (96372), "push" (IV, one instant: 96374) or "infusion"
    (IV over 90 minutes: 96365)."""
    changes = {}
    if how == "infusion":
        changes = {
            "effectiveDateTime": None,
            "effectivePeriod": {
                "start": "2026-10-05T09:30:00-05:00",
                "end": "2026-10-05T11:00:00-05:00",
            },
        }
    if reasons is not None:
        changes["reasonCode"] = [{"coding": [{"system": ICD10, "code": c}]} for c in reasons]
    a = admin(
        medicationCodeableConcept=medication,
        dosage=dosage(route=IM if how == "im" else IV, dose=dose(amount, unit)),
        **changes,
    )
    return decide_one(a, resources if resources is not None else world(payer=payer))


PROCEDURE = {"im": "96372", "push": "96374", "infusion": "96365"}


def _task_says(d, code):
    task = build_task(d, Config(), rules(), CREATED)
    return task is not None and code in task["description"]


# ----------------------------------------------------------------------------- Medicaid NDC


@pytest.mark.parametrize("how", ["push", "infusion"])
def test_medicaid_ketorolac_without_an_ndc_is_missing_ndc_on_an_iv_push_or_infusion(how):
    d = _given(KETOROLAC_INGREDIENT, 30, "mg", how, payer="medicaid")
    assert (d.outcome, d.procedure) == ("not-96372", PROCEDURE[how]), gap_codes(d)
    assert [(x.kind, x.code, x.ndc) for x in d.lines] == [("drug", "J1885", None)]
    g = gap(d, "missing-ndc")
    assert g.severity == "error" and g.message.startswith("medicaid requires the NDC.")
    assert _task_says(d, "missing-ndc")  # no Claim for the code: the gap opens a Task
    assert build_claim(d, Config(), CREATED) is None


def test_medicaid_ketorolac_96372_without_an_ndc_is_still_held_for_it():
    d = _given(KETOROLAC_INGREDIENT, 30, "mg", "im", payer="medicaid")
    assert (d.outcome, d.procedure) == ("held", "96372")
    assert gap(d, "missing-ndc").message.startswith("medicaid requires the NDC.")


@pytest.mark.parametrize("how", ["im", "push", "infusion"])
def test_medicaid_with_the_ndc_has_its_quantity_and_unit_on_the_line_whatever_the_code(how):
    """NDC 00409-3796-01 is ketorolac 30 mg/mL: 30 mg is 1 mL (N4 00409379601 ML1), J1885 x 2."""
    d = _given(KETOROLAC_NDC, 30, "mg", how, payer="medicaid")
    assert d.procedure == PROCEDURE[how] and "missing-ndc" not in gap_codes(d)
    drug = line(d, "drug")
    assert (drug.code, drug.quantity, drug.ndc, drug.ndc_quantity, drug.ndc_unit) == (
        "J1885",
        2,
        "00409379601",
        Decimal(1),
        "ML",
    )


@pytest.mark.parametrize("how", ["push", "infusion"])
def test_medicaid_ceftriaxone_1_g_without_an_ndc_is_missing_ndc(how):
    d = _given(CEFTRIAXONE_1G, 1, "g", how, payer="medicaid")
    assert (d.outcome, d.procedure, line(d, "drug").code) == ("not-96372", PROCEDURE[how], "J0696")
    assert "missing-ndc" in gap_codes(d)


@pytest.mark.parametrize("payer", ["medicare", "commercial"])
def test_payers_that_do_not_require_the_ndc_raise_nothing_on_an_iv_push(payer):
    d = _given(KETOROLAC_INGREDIENT, 30, "mg", "push", payer=payer)
    assert d.procedure == "96374" and "missing-ndc" not in gap_codes(d)


def test_a_medicaid_vaccine_has_no_drug_line_and_no_missing_ndc():
    """Vaccines are outside the Medicaid drug rebate and its NDC requirement; the product is a CPT code."""
    d = decide_one(
        admin(medicationCodeableConcept={"coding": [{"system": CVX, "code": "140"}]}),
        world(payer="medicaid"),
    )
    assert d.lines == () and "missing-ndc" not in gap_codes(d)


# ----------------------------------------------------------------------------- NOC codes, every payer


@pytest.mark.parametrize("payer", ["medicare", "commercial"])
@pytest.mark.parametrize("how", ["push", "infusion"])
def test_a_j3490_line_without_the_ndc_is_missing_ndc_whatever_the_code_and_payer(how, payer):
    d = _given(MYSTERY, 30, "mg", how, payer=payer)
    assert (d.outcome, d.procedure) == ("not-96372", PROCEDURE[how])
    drug = line(d, "drug")
    assert (drug.code, drug.quantity, drug.text) == (
        "J3490",
        1,
        "mystery drug 30 mg",
    )  # CGS: name and dose
    assert "J3490 is a not-otherwise-classified code" in gap(d, "missing-ndc").message
    assert _task_says(d, "missing-ndc")


@pytest.mark.parametrize("how", ["im", "push", "infusion"])
def test_a_j3490_line_with_the_ndc_carries_name_ndc_and_dose(how):
    d = _given(MYSTERY_NDC, 30, "mg", how, payer="commercial")
    assert d.procedure == PROCEDURE[how] and "missing-ndc" not in gap_codes(d)
    drug = line(d, "drug")
    assert (drug.code, drug.ndc, drug.text) == ("J3490", "00002759701", "mystery drug 30 mg")


def test_a_j9999_chemotherapy_line_without_the_ndc_is_missing_ndc():
    """CGS names J9999 with J3490/J3590: teniposide (Q2017, deleted 2025-12-31, no successor) given on a
    2026 date is J9999 under chemotherapy administration 96401, and needs its NDC like any NOC line."""
    teniposide = {
        "coding": [
            {"system": RXNORM, "code": "313213", "display": "5 ML teniposide 10 MG/ML Injection"}
        ]
    }
    d = _given(teniposide, 100, "mg", "im", payer="commercial")
    assert (d.outcome, d.procedure, line(d, "drug").code) == ("not-96372", "96401", "J9999")
    assert "J9999 is a not-otherwise-classified code" in gap(d, "missing-ndc").message
    with_ndc = {"coding": [*teniposide["coding"], {"system": NDC, "code": "00002759701"}]}
    assert "missing-ndc" not in gap_codes(_given(with_ndc, 100, "mg", "im", payer="commercial"))


def test_a_j3490_96372_without_the_ndc_is_still_held():
    d = _given(MYSTERY, 30, "mg", "im", payer="commercial")
    assert (d.outcome, d.procedure) == ("held", "96372") and "missing-ndc" in gap_codes(d)


# ----------------------------------------------------------------------------- ESAs (CMS CR 5699)


def hgb(id, when, value, code="718-7"):
    return {
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": when,
        "valueQuantity": {
            "value": value,
            "unit": "g/dL",
            "system": "http://unitsofmeasure.org",
            "code": "g/dL",
        },
    }


EPOGEN_4000 = med(RXNORM, "205923", "1 ML Epoetin Alfa 4000 UNT/ML Injection [Epogen]")
LABS = [
    hgb("h-old", "2026-08-01T08:00:00-05:00", 9.1),
    hgb("h-new", "2026-10-01T08:00:00-05:00", 9.6),
    hgb("h-after", "2026-10-06T08:00:00-05:00", 11.0),
]


def _epoetin(how, codes, observations=(), payer="medicare"):
    resources = replace_resource(world(payer=payer), "Encounter", diagnosis=None) + list(
        observations
    )
    return _given(EPOGEN_4000, 4000, "[iU]", how, resources=resources, reasons=codes)


def _esa_modifiers(d):
    return [m for m in line(d, "drug").modifiers if m in ("EA", "EB", "EC")]


@pytest.mark.parametrize("how", ["im", "push", "infusion"])
def test_cr5699_ckd_anemia_is_ec_with_the_latest_hemoglobin_whatever_the_code(how):
    """CR 5699's 'neither' example: anemia in CKD stage 4 not on dialysis (D63.1 after N18.4)."""
    d = _epoetin(how, ["D63.1", "N18.4"], LABS)
    assert (d.procedure, d.drug) == (PROCEDURE[how], "J0885"), gap_codes(d)
    assert _esa_modifiers(d) == ["EC"]
    assert (d.lab.observation, d.lab.value) == ("Observation/h-new", Decimal("9.6"))
    assert "missing-esa-lab" not in gap_codes(d)
    assert [c.code for c in d.diagnoses] == ["N18.4", "D63.1"]


@pytest.mark.parametrize(
    "codes,modifier", [(["D64.81", "C50.911"], "EA"), (["D64.9", "C61", "Y84.2"], "EB")]
)
def test_chemotherapy_and_radiotherapy_anemia_are_ea_and_eb_on_an_iv_push(codes, modifier):
    d = _epoetin("push", codes, LABS)
    assert (d.outcome, d.procedure) == ("not-96372", "96374")
    assert _esa_modifiers(d) == [modifier]


@pytest.mark.parametrize("how", ["push", "infusion"])
def test_no_reading_before_the_dose_is_missing_esa_lab_and_a_task(how):
    d = _epoetin(how, ["D63.1", "N18.4"], [hgb("h-after", "2026-10-06T08:00:00-05:00", 11.0)])
    assert (d.outcome, d.procedure) == ("not-96372", PROCEDURE[how])
    g = gap(d, "missing-esa-lab")
    assert g.severity == "error" and "before the dose" in g.message
    assert d.lab is None and _task_says(d, "missing-esa-lab")


def test_the_96372_without_a_reading_is_still_held():
    d = _epoetin("im", ["D63.1", "N18.4"])
    assert (d.outcome, d.procedure) == ("held", "96372") and "missing-esa-lab" in gap_codes(d)


@pytest.mark.parametrize("how", ["im", "push", "infusion"])
def test_esrd_on_dialysis_is_the_dialysis_facilitys_bundle_whatever_the_code(how):
    """42 CFR 413.171: an ESA for ESRD on dialysis (N18.6 with Z99.2) is paid in the ESRD PPS bundle."""
    d = _epoetin(how, ["N18.6", "Z99.2"], LABS)
    assert d.outcome == "not-billable" and d.lines == () and d.lab is None
    assert "esa-esrd-bundle" in gap_codes(d)
    assert "missing-esa-lab" not in gap_codes(d) and build_claim(d, Config(), CREATED) is None


def test_no_esa_modifier_or_reading_for_other_payers_on_an_iv_push():
    d = _epoetin("push", ["D63.1", "N18.4"], payer="commercial")
    assert _esa_modifiers(d) == [] and d.lab is None and "missing-esa-lab" not in gap_codes(d)


# ----------------------------------------------------------------------------- 96372-only rules


def test_the_self_administered_drug_rule_stays_on_the_96372():
    """Enoxaparin is on the SAD list as the SC injection the patient gives; an IV bolus is presumed not
    self-administered (IOM 100-02 ch.15 s50.2)."""
    enoxaparin = med(RXNORM, "854235", "0.4 ML enoxaparin sodium 100 MG/ML Prefilled Syringe")
    shot = _given(enoxaparin, 40, "mg", "im")
    push = _given(enoxaparin, 40, "mg", "push")
    assert "self-administered-drug" in gap_codes(shot)
    assert push.procedure == "96374" and "self-administered-drug" not in gap_codes(push)
    assert line(push, "drug").code == line(shot, "drug").code == "J1650"


def test_the_em_same_day_rule_stays_on_the_96372():
    resources = replace_resource(
        world(),
        "Encounter",
        type=[{"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "99213"}]}],
    )
    shot = decide_one(admin(), resources)
    push = decide_one(admin(dosage=dosage(route=IV)), resources)
    assert "em-same-day" in gap_codes(shot)
    assert push.procedure == "96374" and "em-same-day" not in gap_codes(push)
