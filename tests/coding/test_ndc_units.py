"""NDC units of measure: NCPDP billing unit standard, mappings/ndc_units.csv.

ML for liquids (a product with a per-volume strength: the volume given), UN for each (a powder vial:
the vials opened), GR for solids by weight, F2 for international units. Before, a powder vial of
ceftriaxone went out as grams.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from fhir_injection import MappingError, load_rules
from tests.builders import NDC, RXNORM, admin, decide_one, dosage, dose, line, world

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
CEFTRIAXONE_VIAL = {
    "coding": [
        {
            "system": NDC,
            "code": "00143985725",  # CMS ASP crosswalk: a 1 g vial (4 units of 250 mg)
            "display": "Ceftriaxone sodium 1 g single-dose vial",
        },
        {"system": RXNORM, "code": "1665021", "display": "ceftriaxone 1000 MG Injection"},
    ]
}


def ndc_of(medication, amount, unit, payer="medicaid"):
    d = decide_one(
        admin(medicationCodeableConcept=medication, dosage=dosage(dose=dose(amount, unit))),
        world(payer=payer),
    )
    drug = line(d, "drug")
    return drug.ndc_quantity, drug.ndc_unit


def test_a_powder_vial_is_counted_in_vials():
    assert ndc_of(CEFTRIAXONE_VIAL, 500, "mg") == (Decimal(1), "UN")  # not 0.5 GR
    assert ndc_of(CEFTRIAXONE_VIAL, 1, "g") == (Decimal(1), "UN")
    assert ndc_of(CEFTRIAXONE_VIAL, 1500, "mg") == (Decimal(2), "UN")  # two 1 g vials


def test_a_powder_vial_of_unknown_size_counts_one():
    powder = {
        "coding": [{"system": NDC, "code": "12345678901"}],
        "text": "cefazolin 1000 MG Injection",
    }
    assert ndc_of(powder, 500, "mg") == (Decimal(1), "UN")


def test_a_liquid_is_in_ml_from_its_strength():
    ketorolac = {
        "coding": [{"system": RXNORM, "code": "1665461"}, {"system": NDC, "code": "00409379601"}]
    }
    assert ndc_of(ketorolac, 15, "mg") == (Decimal("0.5"), "ML")
    assert ndc_of(ketorolac, 1, "mL") == (Decimal(1), "ML")


def test_international_units_are_f2():
    epoetin = {"coding": [{"system": NDC, "code": "59676031001"}], "text": "epoetin alfa"}
    assert ndc_of(epoetin, 4000, "[iU]") == (Decimal(4000), "F2")


def test_a_mass_without_strength_or_dose_form_is_in_grams():
    assert ndc_of({"coding": [{"system": NDC, "code": "12345678901"}]}, 250, "mg") == (
        Decimal("0.25"),
        "GR",
    )


def test_a_broken_ndc_unit_row_is_reported_with_file_and_row(tmp_path):
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    path = target / "ndc_units.csv"
    path.write_text(path.read_text().replace("dose-unit,activity,F2,", "dose-unit,activity,IU,"))
    with pytest.raises(MappingError) as err:
        load_rules(target)
    assert err.value.file == "ndc_units.csv" and "column 'ndc_unit' is 'IU'" in str(err.value)
    path.write_text(path.read_text().replace("dose-unit,activity,IU,", "dose-units,activity,F2,"))
    with pytest.raises(MappingError, match="column 'basis' is 'dose-units'"):
        load_rules(target)
