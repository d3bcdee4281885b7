"""Epoetin alfa comes in single-dose (preservative-free) and multiple-dose (benzyl alcohol) vials
(Epogen label, DailyMed setid 1f2d0b28-9cc5-4523-80b8-637fdaf3f7a5): a code-level "single-dose" made
a multi-dose vial get JW/JZ. drugs.csv single_dose "varies" (curated input, generator, loader): the
container decides, and without a known container a Medicare claim is held (missing-package-size),
as for a single-dose drug of unknown size. The CMS JW/JZ rule applied: 3,000 Units from a 4,000
Units single-dose vial = J0885 x 3 + J0885-JW x 1; 4,000 Units = J0885-JZ x 4.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fhir_injection import MappingError, load_rules
from tests.builders import (
    NDC,
    RXNORM,
    UCUM,
    admin,
    decide_one,
    dosage,
    dose,
    gap,
    gap_codes,
    line,
    med,
    world,
)

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "mappings"
EPOGEN_4000_SDV = med(RXNORM, "205923", "1 ML Epoetin Alfa 4000 UNT/ML Injection [Epogen]")
EPOGEN_MDV = med(NDC, "55513028310", "Epogen 10,000 Units/mL 2 mL multiple-dose vial")
J0885 = med("http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "J0885")


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


def _given(medication, units, payer="medicare"):
    return decide_one(
        admin(medicationCodeableConcept=medication, dosage=dosage(dose=dose(units, "[iU]"))),
        [*world(payer=payer), HEMOGLOBIN],
    )


def test_j0885_and_the_products_of_both_kinds_are_varies_in_the_curated_input_and_the_table():
    curated = {
        r["hcpcs"]: r["single_dose"]
        for r in csv.DictReader(
            (MAPPINGS / "build" / "curated" / "drugs_curated.csv").open(encoding="utf-8")
        )
    }
    assert {
        c: curated[c] for c in ("J0885", "J1020", "J1030", "J1040", "J1010", "J1650")
    } == dict.fromkeys(("J0885", "J1020", "J1030", "J1040", "J1010", "J1650"), "varies")
    for code in (
        "Q4081",
        "Q5105",
        "Q5106",
    ):  # ESRD epoetin and Retacrit: the same two kinds of vial
        assert curated[code] == "varies" and load_rules(MAPPINGS).drugs[code].varies, code
    drug = load_rules(MAPPINGS).drugs["J0885"]
    assert (drug.single_dose, drug.varies) == (False, True)
    assert (
        load_rules(MAPPINGS).drugs["J0696"].varies is False
    )  # ceftriaxone vials: single-dose only


def test_a_single_dose_vial_with_waste_gets_a_jw_line():
    d = _given(EPOGEN_4000_SDV, 3000)
    assert d.outcome == "claim", gap_codes(d)
    drug, waste = line(d, "drug"), line(d, "waste")
    assert (drug.code, drug.quantity, drug.modifiers) == ("J0885", 3, ("EC",))  # EC: CR 5699
    assert (waste.code, waste.quantity, waste.modifiers) == ("J0885", 1, ("JW",))


def test_the_whole_single_dose_vial_gets_jz():
    d = _given(EPOGEN_4000_SDV, 4000)
    assert (line(d, "drug").quantity, line(d, "drug").modifiers, line(d, "waste")) == (
        4,
        ("JZ", "EC"),
        None,
    )


def test_a_multiple_dose_vial_gets_neither_jw_nor_jz():
    d = _given(EPOGEN_MDV, 8000)
    assert d.outcome == "claim", gap_codes(d)
    assert (line(d, "drug").code, line(d, "drug").quantity, line(d, "drug").modifiers) == (
        "J0885",
        8,
        ("EC",),
    )
    assert line(d, "waste") is None and d.package.container == "multi-dose"


def test_no_container_known_for_medicare_is_held_with_missing_package_size():
    d = _given(J0885, 4000)
    assert d.outcome == "held"
    assert gap(d, "missing-package-size").message.startswith(
        "J0885 comes in single-dose and multi-dose containers and the one used is not known "
        "(the container decides JW/JZ). "
    )


def test_no_container_known_is_no_gap_for_a_payer_without_jw_jz():
    d = _given(J0885, 4000, payer="commercial")
    assert d.outcome == "claim" and "missing-package-size" not in gap_codes(d)


def test_a_container_of_known_size_but_unknown_kind_is_a_gap_for_a_varies_drug():
    a = admin(
        medicationCodeableConcept=None,
        medicationReference={"reference": "#m"},
        contained=[
            {
                "resourceType": "Medication",
                "id": "m",
                "code": J0885,
                "amount": {"numerator": {"value": 1, "unit": "mL", "system": UCUM, "code": "mL"}},
            }
        ],
        dosage=dosage(dose=dose(4000, "[iU]")),
    )
    d = decide_one(a)
    assert d.outcome == "held"
    assert "not known to be single-dose or multi-dose" in gap(d, "missing-package-size").message


@pytest.fixture
def mappings(tmp_path):
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    return target


def test_the_loader_reports_a_single_dose_value_outside_yes_no_varies_with_file_and_row(mappings):
    path = mappings / "drugs.csv"
    text = path.read_text()
    old = ",1000,unit,standard,varies,no,epoetin alfa"
    assert old in text
    path.write_text(text.replace(old, ",1000,unit,standard,sometimes,no,epoetin alfa", 1))
    row = next(
        n for n, ln in enumerate(path.read_text().splitlines(), start=1) if ln.startswith("J0885,")
    )
    with pytest.raises(MappingError) as err:
        load_rules(mappings)
    assert err.value.file == "drugs.csv" and err.value.row == row
    assert "column 'single_dose' is 'sometimes', expected one of no, varies, yes" in str(err.value)


def test_the_generator_refuses_a_curated_single_dose_value_outside_yes_no_varies(
    tmp_path, monkeypatch
):
    spec = importlib.util.spec_from_file_location(
        "build_drugs_s5", MAPPINGS / "build" / "build_drugs.py"
    )
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    cur = tmp_path / "curated"
    shutil.copytree(MAPPINGS / "build" / "curated", cur)
    path = cur / "drugs_curated.csv"
    path.write_text(
        path.read_text().replace("J0885,standard,varies,", "J0885,standard,sometimes,", 1)
    )
    monkeypatch.setattr(build, "CUR", cur)
    with pytest.raises(SystemExit) as err:
        build.build_drugs()
    assert "J0885 single_dose 'sometimes'" in str(err.value)


def test_the_committed_drug_tables_are_the_generators_output():
    run = subprocess.run(
        [sys.executable, str(MAPPINGS / "build" / "build_drugs.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr


def test_packages_rows_for_epoetin_vials_say_their_kind_and_whether_they_are_verified():
    rows = {
        (r["system"], r["code"]): r
        for r in csv.DictReader((MAPPINGS / "packages.csv").open(encoding="utf-8"))
    }
    sdv = rows[(RXNORM, "205923")]
    assert (sdv["package_amount"], sdv["package_unit"], sdv["container"]) == (
        "4000",
        "unit",
        "single-dose",
    )
    for ndc in ("55513028310", "55513047810"):
        row = rows[("http://hl7.org/fhir/sid/ndc", ndc)]
        assert (row["package_amount"], row["container"]) == ("20000", "multi-dose")
        assert "UNVERIFIED NDC" in row["source"]
    # no NDC row claims a check it did not have
    for (system, _), row in rows.items():
        if system == "http://hl7.org/fhir/sid/ndc":
            assert "NOT verified against the FDA NDC Directory" in row["source"]


EXPECTED = json.loads((ROOT / "fixtures" / "demo-expected.json").read_text())


def _demo_case(text: str) -> dict:
    (case,) = [c for c in EXPECTED["administrations"].values() if text in (c.get("scenario") or "")]
    return case


def test_the_demo_clinic_has_the_three_epoetin_container_cases():
    mdv = _demo_case("epoetin 8,000 Units from a 10,000 Units/mL 2 mL multiple-dose vial")
    assert (
        mdv["outcome"],
        mdv["hcpcs"],
        mdv["units"],
        mdv["modifiers"]["drug"],
        mdv["jw_units"],
    ) == ("claim", "J0885", 8, ["EC"], None)
    sdv = _demo_case("JW: epoetin 3,000 Units from a 4,000 Units single-dose vial")
    assert (sdv["outcome"], sdv["units"], sdv["jw_units"]) == ("claim", 3, 1)
    unknown = _demo_case("epoetin for Medicare, container not known")
    assert (unknown["outcome"], unknown["gaps"]) == ("held", ["missing-package-size"])
