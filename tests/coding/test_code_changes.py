"""HCPCS codes CMS ended, billed as their successor by the SERVICE DATE (mappings/code_changes.csv).

Facts from the CMS HCPCS Level II file, January 2026 release (mappings/build/source/hcpcs2026_drugs.csv,
long descriptors and add/termination dates):
  J1040 "Injection, methylprednisolone acetate, 80 mg"                 terminated 2024-03-31
  J1010 "Injection, methylprednisolone acetate, 1 mg"                  added 2024-04-01
  J2930 "Injection, methylprednisolone sodium succinate, up to 125 mg" terminated 2024-03-31
  J2919 "Injection, methylprednisolone sodium succinate, 5 mg"         added 2024-04-01
  J0171 "Injection, adrenalin, epinephrine, 0.1 mg"                    terminated 2025-06-30
  J0165 "Injection, epinephrine, not otherwise specified, 0.1 mg"      added 2025-07-01
  J0169 "Injection, epinephrine (adrenalin), not therapeutically equivalent to j0165, 0.1 mg" added 2025-07-01
  J0886 "Injection, epoetin alfa, 1000 units (for esrd on dialysis)"   terminated 2015-12-31
  Q4081 "Injection, epoetin alfa, 100 units (for esrd on dialysis)"
"""

from __future__ import annotations

import csv
import shutil
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fhir_injection import Config, MappingError, build_claim, load_rules
from fhir_injection.sinks.report import decision_entry
from tests.builders import (
    CREATED,
    ICD10,
    NDC,
    RXNORM,
    admin,
    decide_one,
    dosage,
    dose,
    line,
    med,
    replace_resource,
    rules,
    validate_claim,
    world,
)

ROOT = Path(__file__).resolve().parents[2]
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
CMS = ROOT / "mappings" / "build" / "source" / "hcpcs2026_drugs.csv"
IN_2026 = "2026-10-05T09:30:00-05:00"
DEPO_MEDROL_80 = med(NDC, "00009030602")  # drug_codes.csv: Depo-Medrol 80 mg/mL, salt acetate
SOLU_MEDROL = {
    "coding": [{"system": RXNORM, "code": "6902", "display": "methylprednisolone"}],
    "text": "Solu-Medrol 125 mg",
}
EPINEPHRINE = med(
    RXNORM, "1660014"
)  # 1 ML Epinephrine 1 MG/ML Injection (packages.csv: 1 mL single-dose)
ADRENALIN = med(NDC, "42023015901")  # drug_codes.csv: Adrenalin (epinephrine) 1 mg/mL injection


def cms() -> dict[str, dict]:
    with CMS.open(newline="", encoding="utf-8") as fh:
        return {r["hcpcs"]: r for r in csv.DictReader(fh)}


def table() -> list[dict]:
    with (ROOT / "mappings" / "code_changes.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def ymd(raw: str) -> date:
    return date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))


def given(concept, amount, unit="mg", when=IN_2026, payer="medicare", resources=None):
    # when=None deletes effectiveDateTime (builders.admin)
    a = admin(
        medicationCodeableConcept=concept,
        dosage=dosage(dose=dose(amount, unit)),
        effectiveDateTime=when,
    )
    return decide_one(a, resources or world(payer=payer))


# ------------------------------------------------------------------ the table against the CMS file
def test_every_row_follows_the_cms_file_old_ended_the_day_before_the_successor_starts():
    file = cms()
    for row in table():
        old, new, effective = (
            file[row["old_hcpcs"]],
            file[row["new_hcpcs"]],
            date.fromisoformat(row["effective"]),
        )
        assert old["terminated"], row  # the old code is ended in the file
        assert ymd(old["terminated"]) == effective - timedelta(days=1), row
        assert not new["terminated"], row  # the successor is in force in January 2026
        assert ymd(new["added"]) <= effective, row
        assert (
            "CMS HCPCS Level II file January 2026" in row["source"]
            and old["hcpcs"] in row["source"]
        )


def test_the_successors_descriptors_are_the_cms_ones():
    file, r = cms(), rules()
    assert file["J1010"]["long_description"] == "Injection, methylprednisolone acetate, 1 mg"
    assert (
        file["J2919"]["long_description"] == "Injection, methylprednisolone sodium succinate, 5 mg"
    )
    assert (
        file["J0165"]["long_description"]
        == "Injection, epinephrine, not otherwise specified, 0.1 mg"
    )
    assert (
        file["Q4081"]["long_description"]
        == "Injection, epoetin alfa, 100 units (for esrd on dialysis)"
    )
    units = {
        c: (r.drugs[c].unit_amount, r.drugs[c].unit)
        for c in ("J1010", "J2919", "J0165", "J0169", "Q4081")
    }
    assert units == {
        "J1010": (Decimal(1), "mg"),
        "J2919": (Decimal(5), "mg"),
        "J0165": (Decimal("0.1"), "mg"),
        "J0169": (Decimal("0.1"), "mg"),
        "Q4081": (Decimal(100), "unit"),
    }


def test_the_loaded_rules_name_the_successors():
    changes = rules().code_changes
    expected = {
        "J1020": "J1010",
        "J1030": "J1010",
        "J1040": "J1010",
        "J2920": "J2919",
        "J2930": "J2919",
        "J0886": "Q4081",
        "J0135": "J0139",
        "J1170": "J1171",
        "J1940": "J1938",
        "J2310": "J2312",
        "J3370": "J3373",
        "J9070": "J9075",
        "J9250": "J9260",
        "J9340": "J9342",
        # deleted without a successor: the not-otherwise-classified codes (test_deleted_codes.py)
        "J2995": "J3490",
        "J9098": "J9999",
        "J9165": "J9999",
        "Q2017": "J9999",
    }
    assert {old: cs[-1].new for old, cs in changes.items() if old != "J0171"} == expected
    # the Adrenalin product's own code first, then the NOS code for every other epinephrine
    assert [(c.new, c.ndc) for c in changes["J0171"]] == [("J0169", "42023015901"), ("J0165", None)]
    assert {c.effective for c in changes["J1040"] + changes["J2930"]} == {date(2024, 4, 1)}


# ------------------------------------------------------------------ the decision, by service date
def test_methylprednisolone_acetate_80_mg_in_2026_is_j1010_times_80():
    d = given(DEPO_MEDROL_80, 80)
    assert (line(d, "drug").code, line(d, "drug").quantity) == ("J1010", 80)
    assert d.drug == "J1010" and d.units == 80


@pytest.mark.parametrize(
    "when,code,units",
    [
        ("2024-03-31T12:00:00-05:00", "J1040", 1),  # the last day of J1040
        ("2024-04-01T12:00:00-05:00", "J1010", 80),  # the first day of J1010
        ("2023-06-01T12:00:00-05:00", "J1040", 1),
    ],
)
def test_the_service_date_chooses_between_the_ended_code_and_its_successor(when, code, units):
    d = given(DEPO_MEDROL_80, 80, when=when)
    assert (d.drug, d.units) == (code, units)


def test_solu_medrol_125_mg_is_j2919_times_25():
    d = given(SOLU_MEDROL, 125)
    assert (d.drug, d.units) == ("J2919", 25)


def test_epinephrine_0_3_mg_is_j0165_times_3_and_the_jw_units_in_0_1_mg():
    d = given(EPINEPHRINE, Decimal("0.3"))
    assert (line(d, "drug").code, line(d, "drug").quantity) == ("J0165", 3)
    assert (line(d, "waste").code, line(d, "waste").quantity) == (
        "J0165",
        7,
    )  # 1 mg vial = 10 x 0.1 mg


def test_the_adrenalin_product_bills_its_own_code_j0169():
    d = given(ADRENALIN, Decimal("0.3"))
    assert (d.drug, d.units) == ("J0169", 3)
    assert given(ADRENALIN, Decimal("0.3"), when="2025-06-30T12:00:00-05:00").drug == "J0171"


def test_epinephrine_before_july_2025_is_still_j0171():
    assert given(EPINEPHRINE, Decimal("0.3"), when="2025-06-30T12:00:00-05:00").drug == "J0171"


def _esrd(when):
    resources = replace_resource(world(payer="commercial"), "Encounter", diagnosis=None)
    a = admin(
        medicationCodeableConcept=med(HCPCS, "J0885"),
        dosage=dosage(dose=dose(4000, "[iU]")),
        effectiveDateTime=when,
        reasonCode=[{"coding": [{"system": ICD10, "code": c}]} for c in ("N18.6", "Z99.2")],
    )
    return decide_one(a, resources)


def test_epoetin_4000_units_for_esrd_on_dialysis_is_q4081_times_40():
    assert (_esrd(IN_2026).drug, _esrd(IN_2026).units) == ("Q4081", 40)
    assert (_esrd("2015-06-01T12:00:00-05:00").drug, _esrd("2015-06-01T12:00:00-05:00").units) == (
        "J0886",
        4,
    )


@pytest.mark.parametrize(
    "old,amount,new,units",
    [
        ("J1170", 2, "J1171", 20),  # hydromorphone 2 mg: per 0.1 mg
        ("J1940", 20, "J1938", 20),  # furosemide 20 mg: per 1 mg
        ("J2310", Decimal("0.4"), "J2312", 40),  # naloxone 0.4 mg: per 0.01 mg
        ("J3370", 1000, "J3373", 100),  # vancomycin 1 g: per 10 mg
    ],
)
def test_the_other_ended_codes_bill_their_successor_in_its_unit(old, amount, new, units):
    d = given(med(HCPCS, old), amount, payer="commercial")
    assert (d.drug, d.units) == (new, units)


def test_no_service_date_bills_todays_code():
    d = given(DEPO_MEDROL_80, 80, when=None)
    assert "missing-time" in [g.code for g in d.gaps]
    assert (d.drug, d.units) == ("J1010", 80)


def test_the_claim_and_the_report_carry_the_successor_and_its_fee():
    d = given(DEPO_MEDROL_80, 80, payer="commercial")
    claim = build_claim(d, Config(), CREATED)
    validate_claim(claim)
    item = claim["item"][1]
    assert (
        item["productOrService"]["coding"][0]["code"] == "J1010" and item["quantity"]["value"] == 80
    )
    assert (decision_entry(d, None, None)["hcpcs"], decision_entry(d, None, None)["units"]) == (
        "J1010",
        80,
    )
    assert rules().fee("J1010", "office").amount == Decimal(
        "0.11"
    )  # scaled from J1040's 8.50 per 80 mg
    assert line(d, "drug").net == Decimal("8.80")


# ------------------------------------------------------------------ a broken row names file and row
@pytest.fixture()
def mappings(tmp_path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", target)
    return target


@pytest.mark.parametrize(
    "old,new,message",
    [
        (
            "J1040,J1010,,2024-04-01",
            "J1040,J0000,,2024-04-01",
            "new_hcpcs 'J0000' is not in drugs.csv",
        ),
        ("J1040,J1010,,2024-04-01", "J1040,J1010,,2024-13-01", "column 'effective'"),
        ("J1040,J1010,,2024-04-01", "J1030,J1010,,2024-04-01", "duplicate key"),
        ("J0171,J0169,42023015901,", "J0171,J0169,not-an-ndc,", "not an NDC"),
    ],
)
def test_a_broken_code_change_row_names_file_and_row(mappings, old, new, message):
    path = mappings / "code_changes.csv"
    text = path.read_text(encoding="utf-8")
    assert old in text
    row = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(MappingError) as info:
        load_rules(mappings)
    assert (info.value.file, info.value.row) == ("code_changes.csv", row) and message in str(
        info.value
    )
