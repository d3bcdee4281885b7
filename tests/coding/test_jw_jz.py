"""JW and JZ on every Medicare drug line, whatever administration code goes with the drug.

CMS, "Discarded Drugs and Biologicals: JW Modifier and JZ Modifier Policy" FAQ, and the Medicare
Claims Processing Manual (IOM 100-04) ch.17 s40: the policy covers every drug separately payable
under Part B from a single-dose container or single-use package; it names no administration code.
An IV push (96374, chemotherapy 96409), an infusion (96365) or an SC/IM chemotherapy code (96401)
bills the same drug line as a 96372 does, with the same JW line or JZ. Multiple-dose containers take
neither; drugs that are not separately paid (inside a facility's payment) and the vaccines of SSA
s1861(s)(10) (influenza, pneumococcal, hepatitis B, COVID-19: the FAQ exempts them) take neither.

Examples:
- IOM 100-04 ch.17 s40: a single-use vial labelled 100 units, 95 units given and 5 discarded: the 95
  units on one line, the 5 on another with JW. Here in infliximab (J1745, per 10 mg): 950 mg from ten
  100 mg vials, an infusion.
- First Coast (JF Part B) JZ page, from the same FAQ: infliximab 400 mg from four 100 mg single-dose
  vials, nothing discarded: J1745-JZ x 40.
- CGS Medicare "JW and JZ Modifier Guidelines" (2023): ceftriaxone 500 mg from a 1 g single-dose vial
  = J0696 x 2 plus J0696-JW x 2; the whole 1 g = J0696-JZ x 4.

The NDC rows used are CMS's (mappings/ndc_hcpcs.csv, the October 2025 ASP NDC-HCPCS crosswalk);
where a kind is given to one by the practice's [containers] profile below, it is a test
configuration, as in test_jw_jz_container_profile.py.
"""

from __future__ import annotations

import pytest

from fhir_injection import Config
from fhir_injection.sinks.claims import CONTAINER_EXTENSION, build_claim, build_task
from fhir_injection.sinks.report import decision_entry
from tests.builders import (
    CREATED,
    NDC,
    RXNORM,
    SNOMED,
    UCUM,
    admin,
    decide_one,
    dosage,
    dose,
    gap_codes,
    line,
    med,
    route,
    rules,
    world,
)

IV = route(SNOMED, "47625008")
IM = route(SNOMED, "78421000")
CEFTRIAXONE_1G = med(RXNORM, "1665021")  # one 1 g powder vial, single-dose (packages.csv)
INFLIXIMAB = "57894003001"  # CMS: Janssen (Remicade), J1745 (per 10 mg), one item 100 mg; FDA NDC Directory: single-use vial
INFLIXIMAB_UNBRANDED = (
    "57894016001"  # CMS: Janssen, J1745 (per 10 mg), one item 100 mg; kind not given
)
BORTEZOMIB = "00143909801"  # CMS: J9041 (per 0.1 mg), one item 3.5 mg; drugs.csv: single-dose
EPINEPHRINE_MDV = "42023016801"  # CMS: Endo, J0165 (per 0.1 mg), one item 30 mg, multi-dose


def _iv_push(medication, amount, unit, payer="medicare", config=None, **changes):
    return decide_one(
        admin(
            medicationCodeableConcept=medication,
            dosage=dosage(route=IV, dose=dose(amount, unit)),
            **changes,
        ),
        world(payer=payer),
        config,
    )


def _infusion(medication, amount, unit, start="09:30", end="11:00", config=None):
    return decide_one(
        admin(
            medicationCodeableConcept=medication,
            effectiveDateTime=None,
            effectivePeriod={
                "start": f"2026-10-05T{start}:00-05:00",
                "end": f"2026-10-05T{end}:00-05:00",
            },
            dosage=dosage(route=IV, dose=dose(amount, unit)),
        ),
        world(),
        config,
    )


def _drug_lines(d):
    return [(x.kind, x.code, x.modifiers, x.quantity) for x in d.lines]


# ----------------------------------------------------------------------------- IV push, 96374


def test_cgs_example_as_an_iv_push_500_mg_of_a_1_g_vial_is_a_jw_line_of_2_units():
    d = _iv_push(CEFTRIAXONE_1G, 500, "mg")
    assert (d.outcome, d.procedure) == ("not-96372", "96374")
    assert _drug_lines(d) == [("drug", "J0696", (), 2), ("waste", "J0696", ("JW",), 2)]
    assert line(d, "drug").discarded == 2 and "missing-package-size" not in gap_codes(d)


def test_cgs_example_as_an_iv_push_the_whole_1_g_vial_is_jz():
    d = _iv_push(CEFTRIAXONE_1G, 1, "g")
    assert (d.outcome, d.procedure) == ("not-96372", "96374")
    assert _drug_lines(d) == [("drug", "J0696", ("JZ",), 4)]
    assert line(d, "drug").discarded == 0


@pytest.mark.parametrize("amount,unit", [(500, "mg"), (1, "g")])
def test_one_drug_line_whatever_the_administration_code(amount, unit):
    """The IV push's drug lines are the 96372's, modifier for modifier and unit for unit; only the
    96372 line and the prices (the estimates are of the Claims written) are the 96372's own."""
    push = _iv_push(CEFTRIAXONE_1G, amount, unit)
    shot = decide_one(
        admin(
            medicationCodeableConcept=CEFTRIAXONE_1G,
            dosage=dosage(route=IM, dose=dose(amount, unit)),
        ),
        world(),
    )
    assert shot.procedure == "96372"
    shot_drug = [
        (x.kind, x.code, x.modifiers, x.quantity, x.discarded, x.ndc) for x in shot.lines[1:]
    ]
    push_drug = [(x.kind, x.code, x.modifiers, x.quantity, x.discarded, x.ndc) for x in push.lines]
    assert push_drug == shot_drug
    assert all(x.unit_price is None for x in push.lines) and push.estimated_amount == 0
    assert push.package == shot.package


def test_lorazepam_iv_push_with_no_container_is_missing_package_size_and_opens_a_task():
    """J2060 is in the CMS crosswalk (separately payable Part B); lorazepam comes in 1 mL single-dose
    and 10 mL multiple-dose vials, and RxNorm 238100 (2 mg/mL) names neither: a gap, never a JZ."""
    d = _iv_push(med(RXNORM, "238100"), 8, "mg")
    assert (d.outcome, d.procedure) == ("not-96372", "96374")
    assert _drug_lines(d) == [("drug", "J2060", (), 4)]
    assert "missing-package-size" in gap_codes(d)
    task = build_task(d, Config(), rules(), CREATED)
    assert task is not None and "missing-package-size" in task["description"]
    assert build_claim(d, Config(), CREATED) is None  # no Claim for another administration code


def test_lorazepam_iv_push_single_dose_by_the_practice_profile_and_medication_amount():
    """The practice stocks 1 mL single-dose vials of 2 mg/mL ([containers] J2060); the record's
    Medication.amount says 1 mL: 2 mg is all of one vial, so JZ."""
    medication = {
        "resourceType": "Medication",
        "id": "lzp",
        "code": {"coding": [{"system": RXNORM, "code": "238100"}]},
        "amount": {
            "numerator": {"value": 1, "unit": "mL", "system": UCUM, "code": "mL"},
            "denominator": {"value": 1},
        },
    }
    config = Config(containers={"J2060": "single-dose"})
    d = decide_one(
        admin(
            medicationCodeableConcept=None,
            medicationReference={"reference": "#lzp"},
            contained=[medication],
            dosage=dosage(route=IV, dose=dose(2, "mg")),
        ),
        world(),
        config,
    )
    assert (d.outcome, d.procedure) == ("not-96372", "96374"), gap_codes(d)
    assert _drug_lines(d) == [("drug", "J2060", ("JZ",), 1)]
    assert d.package.container == "single-dose" and d.package.kind_source == "[containers] J2060"
    entry = decision_entry(d, None, None)
    assert (
        entry["modifiers"] == {"96372": [], "drug": ["JZ"]}
        and entry["package"]["container"] == "single-dose"
    )
    assert {fact: kind for fact, kind, _ in d.basis}["container"] == "practice"


def test_a_multi_dose_vial_by_iv_push_takes_neither():
    d = _iv_push(med(NDC, EPINEPHRINE_MDV), 0.1, "mg")
    assert (d.outcome, d.procedure) == ("not-96372", "96374")
    assert _drug_lines(d) == [("drug", "J0165", (), 1)]
    assert line(d, "drug").discarded is None and "missing-package-size" not in gap_codes(d)


def test_a_multi_dose_kind_from_the_practice_takes_neither():
    d = _iv_push(med(RXNORM, "238100"), 8, "mg", config=Config(containers={"J2060": "multi-dose"}))
    assert _drug_lines(d) == [("drug", "J2060", (), 4)] and "missing-package-size" not in gap_codes(
        d
    )


def test_other_payers_take_neither_on_an_iv_push():
    d = _iv_push(CEFTRIAXONE_1G, 500, "mg", payer="commercial")
    assert _drug_lines(d) == [("drug", "J0696", (), 2)]


def test_jw_jz_off_in_the_configuration_is_off_for_every_code():
    d = _iv_push(CEFTRIAXONE_1G, 500, "mg", config=Config(jw_jz=False))
    assert _drug_lines(d) == [("drug", "J0696", (), 2)]


# ----------------------------------------------------------------------------- infusion, 96365


def test_iom_example_as_an_infusion_95_units_given_5_discarded():
    """IOM 100-04 ch.17 s40: 100 units in single-use vials, 95 given, 5 discarded: 95 on one line,
    5 on a JW line. Infliximab 950 mg from ten 100 mg vials (J1745 per 10 mg: 100 units opened)."""
    d = _infusion(
        med(NDC, INFLIXIMAB), 950, "mg", config=Config(containers={INFLIXIMAB: "single-dose"})
    )
    assert (d.outcome, d.procedure) == ("not-96372", "96365"), gap_codes(d)
    assert _drug_lines(d) == [("drug", "J1745", (), 95), ("waste", "J1745", ("JW",), 5)]
    entry = decision_entry(d, None, None)
    assert entry["jw_units"] == 5 and entry["units"] == 95


def test_first_coast_example_infliximab_400_mg_from_four_100_mg_vials_is_jz_times_40():
    d = _infusion(
        med(NDC, INFLIXIMAB), 400, "mg", config=Config(containers={INFLIXIMAB: "single-dose"})
    )
    assert (d.outcome, d.procedure) == ("not-96372", "96365"), gap_codes(d)
    assert _drug_lines(d) == [("drug", "J1745", ("JZ",), 40)]


def test_an_infusion_whose_container_kind_is_unknown_is_missing_package_size():
    """Janssen's unbranded infliximab by its NDC, no profile: the crosswalk gives the 100 mg size, and
    neither it nor the FDA NDC Directory extract gives the kind."""
    d = _infusion(med(NDC, INFLIXIMAB_UNBRANDED), 400, "mg")
    assert (d.outcome, d.procedure) == ("not-96372", "96365")
    assert "missing-package-size" in gap_codes(d)
    assert _drug_lines(d) == [("drug", "J1745", (), 40)]


def test_hydration_has_no_drug_line_and_no_jw_jz():
    d = _infusion({"coding": [{"system": RXNORM, "code": "313002"}]}, 1000, "mL", end="11:00")
    assert d.procedure == "96360" and d.lines == () and "missing-package-size" not in gap_codes(d)


# ----------------------------------------------------------------------------- chemotherapy


def test_bortezomib_iv_push_is_96409_with_a_jw_line_of_the_rest_of_the_3_5_mg_vial():
    """2.5 mg (1.3 mg/m2 x 1.9 m2) from a 3.5 mg single-dose vial: J9041 x 25 + J9041-JW x 10."""
    d = _iv_push(med(NDC, BORTEZOMIB), 2.5, "mg")
    assert (d.outcome, d.procedure) == ("not-96372", "96409"), gap_codes(d)
    assert _drug_lines(d) == [("drug", "J9041", (), 25), ("waste", "J9041", ("JW",), 10)]


def test_bortezomib_sc_is_96401_with_the_same_jw_line():
    d = decide_one(
        admin(
            medicationCodeableConcept=med(NDC, BORTEZOMIB),
            dosage=dosage(route=IM, dose=dose(2.5, "mg")),
        ),
        world(),
    )
    assert (d.outcome, d.procedure) == ("not-96372", "96401")
    assert _drug_lines(d) == [("drug", "J9041", (), 25), ("waste", "J9041", ("JW",), 10)]


def test_bortezomib_the_whole_vial_is_jz():
    d = _iv_push(med(NDC, BORTEZOMIB), 3.5, "mg")
    assert _drug_lines(d) == [("drug", "J9041", ("JZ",), 35)]


# ----------------------------------------------------------------------------- not separately paid


def test_a_hospital_outpatient_iv_push_is_the_facilitys_no_drug_line():
    d = decide_one(
        admin(
            medicationCodeableConcept=CEFTRIAXONE_1G, dosage=dosage(route=IV, dose=dose(500, "mg"))
        ),
        world(encounter_class="EMER"),
    )
    assert d.outcome == "not-billable" and d.lines == ()


def test_a_part_b_influenza_vaccine_has_no_drug_line_and_no_jw_jz():
    """CMS JW/JZ FAQ: the modifiers are not required for the vaccines of SSA s1861(s)(10)."""
    d = decide_one(
        admin(
            medicationCodeableConcept={
                "coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]
            }
        ),
        world(),
    )
    assert (d.outcome, d.procedure) == ("not-96372", "G0008")
    assert d.lines == () and "missing-package-size" not in gap_codes(d)


# ----------------------------------------------------------------------------- the Claim's container


def test_the_claim_shows_the_kind_the_practice_profile_gives():
    """A 96372 of ondansetron whose NDC the crosswalk sizes (4 mg) but does not call single- or
    multi-dose; the practice's [containers] says single-dose: the Claim's container extension shows
    the kind, and that the practice gave it."""
    ondansetron = "00641607825"
    d = decide_one(
        admin(medicationCodeableConcept=med(NDC, ondansetron), dosage=dosage(dose=dose(1, "mg"))),
        world(),
        Config(containers={ondansetron: "single-dose"}),
    )
    assert d.outcome == "claim", gap_codes(d)
    claim = build_claim(d, Config(), CREATED)
    assert claim is not None
    waste = next(
        i
        for i in claim["item"]
        if i.get("modifier", [{}])[0].get("coding", [{}])[0].get("code") == "JW"
    )
    drug = claim["item"][1]
    for where in (drug["detail"][0], waste):
        (extension,) = where["extension"]
        assert extension["url"] == CONTAINER_EXTENSION
        parts = {p["url"]: p for p in extension["extension"]}
        assert parts["kind"]["valueCode"] == "single-dose"
        assert parts["kind-source"]["valueString"] == f"practice [containers] NDC {ondansetron}"
        assert parts["source"]["valueString"] == "ndc_hcpcs.csv"  # the size is the crosswalk's
    assert {p["url"]: p for p in waste["extension"][0]["extension"]}["discarded"][
        "valueUnsignedInt"
    ] == 3


def test_a_table_kind_has_no_kind_source():
    d = decide_one(
        admin(medicationCodeableConcept=CEFTRIAXONE_1G, dosage=dosage(dose=dose(500, "mg"))),
        world(),
    )
    claim = build_claim(d, Config(), CREATED)
    assert claim is not None
    parts = {p["url"] for p in claim["item"][1]["extension"][0]["extension"]}
    assert "kind" in parts and "kind-source" not in parts
