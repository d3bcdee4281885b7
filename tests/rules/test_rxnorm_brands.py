"""RxNorm breadth: branded drugs (SBD), packs (GPCK/BPCK) and brand names.

Sources: the VSAC expansions shipped in cqframework/ecqm-content-qicore-2025 @db5a7e1
(mappings/build/source/rxnorm_ecqm_2025.csv: RxNorm 285018 "insulin glargine 100 UNT/ML Injectable
Solution [Lantus]", 865098 "... [Humalog]", 1986354 "... [Fiasp]"); CMS HCPCS Level II January 2026
descriptors (J1815 "Injection, insulin, per 5 units", J1812 "Insulin (fiasp), per 5 units", J1040
"methylprednisolone acetate, 80 mg", J1010 "methylprednisolone acetate, 1 mg"); the FHIR R4
specification's Medication example shape (RxNorm 285018 "Lantus 100 units/ml" in a contained
Medication), written anew in fixtures/spec-medications.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from fhir_injection import Config, load_rules, run_folder
from tests.builders import RXNORM, admin, decide_one, dosage, dose, gap, gap_codes, rules

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "mappings" / "build"))
import build_drugs  # noqa: E402

SPEC = ROOT / "fixtures" / "spec-medications"
SC = {
    "coding": [
        {"system": "http://snomed.info/sct", "code": "34206005", "display": "Subcutaneous route"}
    ]
}


@pytest.fixture(scope="module")
def spec_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("spec")
    run_folder(SPEC, out, load_rules(), Config(), "2026-10-08T00:00:00Z")
    report = json.loads((out / "report.json").read_text("utf-8"))
    return {r["administration"].split("/", 1)[1]: r for r in report["administrations"]}


def test_the_spec_lantus_example_is_insulin_per_5_units(spec_report):
    # 20 units of Lantus (RxNorm 285018, an SBD) SC: J1815 "per 5 units" -> 4 units, by code
    r = spec_report["rw-spm-ma-1"]
    assert (r["hcpcs"], r["units"], r["procedure"]) == ("J1815", 4, "96372")
    assert "unmapped-medication" not in {g["code"] for g in r["gaps"]}


def test_a_branded_drug_resolves_to_its_ingredient_strength_and_form():
    row = rules().drug_codes[
        (RXNORM, "865098")
    ]  # insulin lispro 100 UNT/ML Injectable Solution [Humalog]
    assert row.hcpcs == "J1815"
    assert (
        row.strength is not None
        and row.strength[0] == 100
        and row.strength[1:] == ("unit", 1, "mL")
    )
    d = decide_one(
        admin(
            medicationCodeableConcept={"coding": [{"system": RXNORM, "code": "865098"}]},
            dosage=dosage(route=SC, dose=dose(10, "U")),
        )
    )
    assert (d.drug, d.units) == ("J1815", 2)
    assert "unmapped-medication" not in gap_codes(d)


def test_a_brand_with_its_own_code_gets_it(spec_report):
    # Fiasp's SBD names insulin aspart (NovoLog's ingredient, J1815) but CMS gives Fiasp J1812
    assert rules().drug_codes[(RXNORM, "1986354")].hcpcs == "J1812"
    r = spec_report["rw-spm-ma-3"]
    assert (r["hcpcs"], r["units"]) == ("J1812", 1)


@pytest.mark.parametrize(
    "name,expected",
    [
        (
            "{6 (0.8 ML adalimumab 50 MG/ML Auto-Injector [Humira]) } Pack [Humira Pen - Crohn's Disease Starter Pack]",
            (("adalimumab", "Auto-Injector", ("50", "mg", "1", "mL")), "Humira"),
        ),
        (
            "{2 (1 ML medroxyprogesterone acetate 150 MG/ML Prefilled Syringe) } Pack",
            (("medroxyprogesterone acetate", "Prefilled Syringe", ("150", "mg", "1", "mL")), None),
        ),
    ],
)
def test_a_pack_of_one_product_is_that_product(name, expected):
    assert (build_drugs.parse_product(name), build_drugs.brand_of(name)) == expected


@pytest.mark.parametrize(
    "name",
    [
        "{1 (1 ML ketorolac 30 MG/ML Injection) / 1 (2 ML ondansetron 2 MG/ML Injection) } Pack",
        # RxNorm 1803902, in the VSAC extract: two strengths, so no one product (and no HCPCS either way)
        "{1 (3 ML lixisenatide 0.05 MG/ML Pen Injector) / 1 (3 ML lixisenatide 0.1 MG/ML Pen Injector) } Pack",
    ],
)
def test_a_pack_of_two_products_has_no_one_product(name):
    assert build_drugs.parse_pack(name) is None and build_drugs.parse_product(name) is None


def test_a_pack_of_the_same_product_twice_is_that_product():
    name = (
        "{1 (1 ML medroxyprogesterone acetate 150 MG/ML Prefilled Syringe) / "
        "1 (1 ML medroxyprogesterone acetate 150 MG/ML Prefilled Syringe) } Pack"
    )
    assert build_drugs.parse_pack(name) == (
        "medroxyprogesterone acetate",
        "Prefilled Syringe",
        ("150", "mg", "1", "mL"),
    )


@pytest.mark.parametrize(
    "text,hcpcs", [("Lantus", "J1815"), ("Fiasp FlexTouch", "J1812"), ("Tresiba pen", "J1815")]
)
def test_a_brand_in_free_text_matches_by_name(text, hcpcs):
    d = decide_one(
        admin(medicationCodeableConcept={"text": text}, dosage=dosage(route=SC, dose=dose(10, "U")))
    )
    assert (d.drug, d.units) == (hcpcs, 2)
    assert "by drug name only" in gap(d, "unmapped-medication").message


@pytest.mark.parametrize(
    "when,hcpcs,units",
    [("2024-03-15T09:30:00-05:00", "J1040", 1), ("2026-10-05T09:30:00-05:00", "J1010", 80)],
)
def test_a_brand_fixes_the_salt_and_the_service_date_the_code(when, hcpcs, units):
    # Depo-Medrol is methylprednisolone acetate: 80 mg is J1040 x 1 before CMS ended it (2024-03-31),
    # its successor J1010 (per 1 mg) x 80 after; never the sodium succinate codes
    d = decide_one(
        admin(
            medicationCodeableConcept={"text": "Depo-Medrol 80 mg/mL"},
            effectiveDateTime=when,
            dosage=dosage(dose=dose(80, "mg")),
        )
    )
    assert (d.drug, d.units) == (hcpcs, units)
    assert "ambiguous-drug-code" not in gap_codes(d)


def test_the_depo_medrol_fixture_by_text(spec_report):
    r = spec_report["rw-spm-ma-4"]
    assert (r["hcpcs"], r["units"]) == ("J1010", 80)


def test_an_unknown_brand_stays_unmapped(spec_report):
    r = spec_report["rw-spm-ma-5"]
    assert r["hcpcs"] == "J3490"
    assert "unmapped-medication" in {g["code"] for g in r["gaps"]}
    d = decide_one(admin(medicationCodeableConcept={"text": "Zorvantix 10 mg"}))
    assert "No RxNorm, NDC or HCPCS code" in gap(d, "unmapped-medication").message


def test_every_generated_brand_name_has_a_source_row_for_its_code():
    # a brand joins a code's names only from curated/brands.csv or an RxNorm branded drug of that code
    with (ROOT / "mappings" / "drug_codes.csv").open(encoding="utf-8") as fh:
        branded = {
            ((build_drugs.brand_of(r["display"]) or "").lower(), r["hcpcs"])
            for r in csv.DictReader(fh)
        }
    with (ROOT / "mappings" / "build" / "curated" / "brands.csv").open(encoding="utf-8") as fh:
        curated = {(r["brand"].lower(), r["hcpcs"]) for r in csv.DictReader(fh)}
    with (ROOT / "mappings" / "drugs.csv").open(encoding="utf-8") as fh:
        drugs = {r["hcpcs"]: r for r in csv.DictReader(fh)}
    added = [
        (name, code)
        for code, r in drugs.items()
        if "brand names " in r["source"]
        for name in r["source"].split("brand names ", 1)[1].split(" from ", 1)[0].split(", ")
    ]
    assert ("lantus", "J1815") in added and ("kenalog-40", "J3301") in added
    for pair in added:
        assert pair in branded or pair in curated, pair
        assert pair[0] in drugs[pair[1]]["names"].split("|")


@pytest.mark.parametrize(
    "text,hcpcs",
    [("Kenalog-40 40 mg/mL", "J3301"), ("Prolia 60 mg", "J0897"), ("Rocephin 1 g", "J0696")],
)
def test_curated_brands_match_in_free_text(text, hcpcs):
    d = decide_one(admin(medicationCodeableConcept={"text": text}))
    assert d.drug == hcpcs
    assert "by drug name only" in gap(d, "unmapped-medication").message


def _build_with_brands(tmp_path, monkeypatch, rows: str):
    cur = tmp_path / "curated"
    cur.mkdir(exist_ok=True)
    for f in (ROOT / "mappings" / "build" / "curated").iterdir():
        (cur / f.name).write_bytes(f.read_bytes())
    (cur / "brands.csv").write_text("brand,ingredient,hcpcs,salt,source\n" + rows, encoding="utf-8")
    monkeypatch.setattr(build_drugs, "CUR", cur)
    return build_drugs.main(["--check"])


def test_a_family_brand_must_name_its_salt_and_be_a_salt_word(tmp_path, monkeypatch):
    # Medrol is oral methylprednisolone: as an injectable family brand it would need its salt word
    with pytest.raises(SystemExit) as exc:
        _build_with_brands(
            tmp_path, monkeypatch, "Medrol,methylprednisolone acetate,J1030,acetate,a label\n"
        )
    assert "brands.csv row 2 (Medrol)" in str(exc.value) and "salt_words" in str(exc.value)


def test_a_brand_row_without_source_or_with_an_unknown_code_is_refused(tmp_path, monkeypatch):
    with pytest.raises(SystemExit) as exc:
        _build_with_brands(tmp_path, monkeypatch, "Zorvantix,zorvantix,J9998,,a label\n")
    assert "brands.csv row 2 (Zorvantix): hcpcs 'J9998' is not a drug code" in str(exc.value)
    with pytest.raises(SystemExit) as exc:
        _build_with_brands(tmp_path, monkeypatch, "Zorvantix,zorvantix,J3301,,\n")
    assert "brand and source are required" in str(exc.value)


def test_a_brand_rule_overrides_the_ingredient_rule_only_for_its_brand():
    lyumjev = rules().drug_codes[(RXNORM, "2380236")]  # insulin lispro-aabc 100 UNT/ML [Lyumjev]
    humalog = rules().drug_codes[(RXNORM, "865098")]  # insulin lispro 100 UNT/ML [Humalog]
    assert (lyumjev.hcpcs, humalog.hcpcs) == ("J1814", "J1815")


@pytest.mark.parametrize(
    "code,ml,hcpcs,units",
    [
        ("1085756", 1, "J3301", 4),  # Kenalog-40, 40 mg/mL: 1 mL = 40 mg = 4 x "10 mg"
        ("1000128", 1, "J1050", 150),  # 1 ML Depo-Provera 150 MG/ML Injection: J1050 per 1 mg
        ("993456", 1, "J0897", 60),  # Prolia 60 mg/mL: J0897 per 1 mg
    ],
)
def test_branded_codes_of_the_brands_a_clinic_gives_bill_a_dose_in_ml_through_their_strength(
    code, ml, hcpcs, units
):
    d = decide_one(
        admin(
            medicationCodeableConcept={"coding": [{"system": RXNORM, "code": code}]},
            dosage=dosage(dose=dose(ml, "mL")),
        )
    )
    assert (d.drug, d.units) == (hcpcs, units)
    assert "unmapped-medication" not in gap_codes(d)


@pytest.mark.parametrize(
    "code,amount,unit,hcpcs,units",
    [
        (
            "1737244",
            300,
            "mg",
            "J0736",
            1,
        ),  # 2 ML clindamycin 150 MG/ML Injection: J0736 'clindamycin phosphate, 300 mg'
        (
            "1723206",
            1,
            "mL",
            "J0216",
            1,
        ),  # 2 ML alfentanil 0.5 MG/ML Injection: 0.5 mg = J0216 '500 micrograms' x 1
        (
            "2268065",
            12,
            "U",
            "J1815",
            3,
        ),  # Sensor 3 ML insulin glargine 100 UNT/ML Pen Injector [Basaglar]
        (
            "1926332",
            7,
            "U",
            "J1815",
            2,
        ),  # 0.5 UNT Doses 3 ML insulin lispro 100 UNT/ML Pen Injector [Humalog]
    ],
)
def test_clinical_and_branded_drugs_the_breadth_rules_reach(code, amount, unit, hcpcs, units):
    d = decide_one(
        admin(
            medicationCodeableConcept={"coding": [{"system": RXNORM, "code": code}]},
            dosage=dosage(dose=dose(amount, unit)),
        )
    )
    assert (d.drug, d.units) == (hcpcs, units)


def test_a_bare_ingredient_of_a_mostly_oral_drug_is_not_given_the_injection_code():
    # metoprolol tartrate's rule (J0616) is for injectable forms; RxNorm 6918 'metoprolol' (an
    # ingredient, VSAC extract) names no form: never mapped to the injection code
    assert (RXNORM, "6918") not in rules().drug_codes
    assert build_drugs.parse_product("metoprolol") is None


def test_a_referenced_branded_medication_bills_the_ml_dose_through_its_strength(spec_report):
    r = spec_report["rw-spm-ma-6"]  # Medication/rw-spm-med-prolia, RxNorm 993456, 1 mL of 60 mg/mL
    assert (r["hcpcs"], r["units"]) == ("J0897", 60)
    assert "unmapped-medication" not in {g["code"] for g in r["gaps"]}
