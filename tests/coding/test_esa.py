"""Erythropoiesis-stimulating agents on a Medicare claim (CMS CR 5699, 2008; 42 CFR 413.171):
EA/EB/EC by the anemia's cause (mappings/modifiers.csv uses esa-*, diagnosis_groups.csv rules
esa-chemotherapy and esa-radiotherapy), the most recent hemoglobin (LOINC 718-7) or hematocrit
(4544-3) before the dose on Claim.supportingInfo (mappings/esa_labs.csv), missing-esa-lab without
one, D63.1 after the CKD stage (code_first.csv), and ESRD on dialysis left to the ESRD PPS bundle."""

from __future__ import annotations

from decimal import Decimal

from fhir_injection import build_claim
from fhir_injection.decision.practice import Config
from tests.builders import (
    CREATED,
    ICD10,
    RXNORM,
    admin,
    decide_one,
    dosage,
    dose,
    gap,
    gap_codes,
    line,
    med,
    refused_row,
    replace_resource,
    validate_claim,
    world,
)

LOINC = "http://loinc.org"


def hgb(id, when, value, code="718-7", status="final", patient="p1"):
    return {
        "resourceType": "Observation",
        "id": id,
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": when,
        "valueQuantity": {
            "value": value,
            "unit": "g/dL",
            "system": "http://unitsofmeasure.org",
            "code": "g/dL",
        },
    }


def epoetin(codes, observations=(), payer="medicare"):
    a = admin(
        medicationCodeableConcept=med(
            RXNORM, "205923", "1 ML Epoetin Alfa 4000 UNT/ML Injection [Epogen]"
        ),
        dosage=dosage(dose=dose(4000, "[iU]")),
        reasonCode=[{"coding": [{"system": ICD10, "code": c}]} for c in codes],
    )
    resources = replace_resource(world(payer=payer), "Encounter", diagnosis=None) + list(
        observations
    )
    return decide_one(a, resources)


def esa_modifiers(d):
    """The ESA modifiers on the drug line (JZ may be there too: Epogen 1 mL is single-dose)."""
    return [m for m in line(d, "drug").modifiers if m in ("EA", "EB", "EC")]


LABS = [
    hgb("h-old", "2026-08-01T08:00:00-05:00", 9.1),
    hgb("h-new", "2026-10-01T08:00:00-05:00", 9.6),
    hgb("h-after", "2026-10-06T08:00:00-05:00", 11.0),
]


def test_ckd_anemia_is_ec_the_cr5699_example_of_neither():
    d = epoetin(["D63.1", "N18.4"], LABS)
    assert esa_modifiers(d) == ["EC"]
    assert d.outcome == "claim"


def test_chemotherapy_anemia_is_ea():
    d = epoetin(["D64.81", "C50.911"], LABS)
    assert esa_modifiers(d) == ["EA"]


def test_radiotherapy_anemia_is_eb():
    d = epoetin(["D64.9", "C61", "Y84.2"], LABS)
    assert esa_modifiers(d) == ["EB"]


def test_no_esa_modifier_for_other_payers():
    d = epoetin(["D63.1", "N18.4"], LABS, payer="commercial")
    assert esa_modifiers(d) == []
    assert d.lab is None


def test_d63_1_is_sequenced_after_the_ckd_stage():
    d = epoetin(["D63.1", "N18.4"], LABS)
    assert [c.code for c in d.diagnoses] == ["N18.4", "D63.1"]


def test_the_latest_hemoglobin_before_the_dose_is_on_the_claim():
    d = epoetin(["D63.1", "N18.4"], LABS)
    assert d.lab is not None
    assert (d.lab.observation, d.lab.value, d.lab.code) == (
        "Observation/h-new",
        Decimal("9.6"),
        "718-7",
    )
    claim = build_claim(d, Config(), CREATED)
    info = claim["supportingInfo"][-1]
    assert info["category"]["coding"][0]["code"] == "info"
    assert info["code"]["coding"][0] == {
        "system": LOINC,
        "code": "718-7",
        "display": "Hemoglobin [Mass/volume] in Blood",
    }
    assert info["valueQuantity"] == {"value": 9.6, "unit": "g/dL"}
    assert info["timingDate"] == "2026-10-01"
    drug_item = next(
        i for i in claim["item"] if i["productOrService"]["coding"][0]["code"] == "J0885"
    )
    assert drug_item["informationSequence"] == [info["sequence"]]
    validate_claim(claim)


def test_a_hematocrit_counts_and_a_preliminary_result_does_not():
    d = epoetin(
        ["D63.1", "N18.4"],
        [
            hgb("hct", "2026-09-20", 29.0, code="4544-3"),
            hgb("prelim", "2026-10-02", 9.9, status="preliminary"),
        ],
    )
    assert (d.lab.reading, d.lab.observation) == ("hematocrit", "Observation/hct")


def test_no_reading_is_missing_esa_lab():
    d = epoetin(["D63.1", "N18.4"], [hgb("h-after", "2026-10-06T08:00:00-05:00", 11.0)])
    g = gap(d, "missing-esa-lab")
    assert g.severity == "error" and "before the dose" in g.message
    assert d.outcome == "held"
    assert "missing-esa-lab" in gap_codes(epoetin(["D63.1", "N18.4"]))


def test_esrd_on_dialysis_is_the_dialysis_facilitys_bundle():
    d = epoetin(["N18.6", "Z99.2"], LABS)
    assert d.outcome == "not-billable"
    assert d.lines == ()
    assert "esa-esrd-bundle" in gap_codes(d)


def test_an_esa_modifier_goes_on_the_drug_line_only(tmp_path):
    err, row = refused_row(
        tmp_path, "modifiers.csv", "esa-neither,drug,", "esa-neither,administration,"
    )
    assert f"modifiers.csv, row {row}" in str(err) and "drug line" in str(err)


def test_no_age_window_the_most_recent_reading_however_old():
    """CMS CR 5699 and Palmetto GBA ('Reporting HCT / HGB Levels for ESAs') ask for 'the most recent'
    hemoglobin or hematocrit and give no age limit for a professional claim (esa_labs.csv max_days
    empty, with the sources searched): a reading from over a year before the 2026-10-05 dose is
    still the one reported, and a newer one wins over it."""
    from tests.builders import rules

    assert all(lab.max_days is None for lab in rules().esa_labs)
    import csv
    from pathlib import Path

    table = Path(__file__).resolve().parents[2] / "mappings" / "esa_labs.csv"
    with table.open(newline="", encoding="utf-8") as fh:
        assert all("no age window" in row["source"] for row in csv.DictReader(fh))
    old = hgb("h-2025", "2025-06-01T08:00:00-05:00", 9.2)
    d = epoetin(["D63.1", "N18.4"], [old])
    assert (d.lab.observation, d.lab.value) == ("Observation/h-2025", Decimal("9.2"))
    assert "missing-esa-lab" not in gap_codes(d)
    d = epoetin(["D63.1", "N18.4"], [old, *LABS])
    assert d.lab.observation == "Observation/h-new"


def test_a_practice_window_in_esa_labs_is_applied(tmp_path):
    """A practice may set max_days (its own rule, a row of the table): a reading older than that is
    not reported and the claim waits for one (missing-esa-lab)."""
    import shutil
    from pathlib import Path

    from fhir_injection import load_rules
    from fhir_injection.decision.context import Context
    from fhir_injection.decision.engine import decide_all

    shutil.copytree(Path(__file__).resolve().parents[2] / "mappings", tmp_path / "m")
    path = tmp_path / "m" / "esa_labs.csv"
    text = path.read_text(encoding="utf-8").replace(",hemoglobin,,", ",hemoglobin,30,")
    path.write_text(text, encoding="utf-8")
    a = admin(
        medicationCodeableConcept=med(
            RXNORM, "205923", "1 ML Epoetin Alfa 4000 UNT/ML Injection [Epogen]"
        ),
        dosage=dosage(dose=dose(4000, "[iU]")),
        reasonCode=[{"coding": [{"system": ICD10, "code": c}]} for c in ["D63.1", "N18.4"]],
    )
    resources = replace_resource(world(payer="medicare"), "Encounter", diagnosis=None)
    far = [*resources, hgb("h-far", "2026-08-01T08:00:00-05:00", 9.1)]
    (d,) = decide_all([a], Context(far), load_rules(tmp_path / "m"))
    assert "missing-esa-lab" in gap_codes(d)
    near = [*resources, hgb("h-near", "2026-09-20T08:00:00-05:00", 9.4)]
    (d,) = decide_all([a], Context(near), load_rules(tmp_path / "m"))
    assert d.lab is not None and d.lab.observation == "Observation/h-near"
