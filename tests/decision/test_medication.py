"""The drug code chosen by the product's salt and the dose (mappings/drug_families.csv),
a gap instead of a guess when only the ingredient is known, and the drug tables' breadth.

Examples follow the CMS HCPCS descriptors of each family: methylprednisolone acetate "20 mg" /
"40 mg" / "80 mg" (J1020/J1030/J1040), sodium succinate "up to 40 mg" / "up to 125 mg"
(J2920/J2930), haloperidol "up to 5 mg" (J1630) / decanoate "per 50 mg" (J1631), testosterone
cypionate / enanthate "1 mg" (J1071/J3121).
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from fhir_injection import load_rules
from fhir_injection.errors import MappingError
from tests.builders import (
    ICD10,
    NDC,
    RXNORM,
    admin,
    decide_one,
    dosage,
    dose,
    gap,
    gap_codes,
    med,
    replace_resource,
    rules,
    world,
)

ROOT = Path(__file__).resolve().parents[2]
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"


#: a service date before CMS ended the methylprednisolone size codes (2024-03-31): the family rule
#: (drug_families.csv) decides; from 2024-04-01 the successors J1010/J2919 do (tests/coding/test_code_changes.py)
OLD = "2024-03-15T09:30:00-05:00"


def given(concept: dict, amount, unit: str = "mg", when: str | None = None):
    extra = {"effectiveDateTime": when} if when else {}
    return decide_one(
        admin(medicationCodeableConcept=concept, dosage=dosage(dose=dose(amount, unit)), **extra)
    )


def named(text: str, code: str = "6902", display: str = "methylprednisolone") -> dict:
    return {"coding": [{"system": RXNORM, "code": code, "display": display}], "text": text}


@pytest.mark.parametrize(
    "mg,hcpcs,units",
    [
        (20, "J1020", 1),
        (40, "J1030", 1),
        (60, "J1040", 1),
        (80, "J1040", 1),
        (160, "J1040", 2),
    ],
)
def test_methylprednisolone_acetate_the_size_that_holds_the_dose(mg, hcpcs, units):
    d = given(named("methylprednisolone acetate injection"), mg, when=OLD)
    assert (d.drug, d.units) == (hcpcs, units)
    assert "ambiguous-drug-code" not in gap_codes(d)


@pytest.mark.parametrize(
    "mg,hcpcs,units", [(40, "J2920", 1), (41, "J2930", 1), (125, "J2930", 1), (250, "J2930", 2)]
)
def test_sodium_succinate_up_to_40_then_up_to_125(mg, hcpcs, units):
    d = given(named("Solu-Medrol 125 mg"), mg, when=OLD)
    assert (d.drug, d.units) == (hcpcs, units)


def test_a_product_code_carries_its_salt_and_a_dose_in_ml_goes_through_its_strength():
    # Depo-Medrol 80 mg/mL NDC row (salt acetate): 1 mL is 80 mg -> J1040 x 1
    d = given(med(NDC, "00009030602"), 1, "mL", when=OLD)
    assert (d.drug, d.units) == ("J1040", 1)


def test_ingredient_only_is_a_gap_not_a_guess():
    d = given(med(RXNORM, "6902", "methylprednisolone"), 80)
    g = gap(d, "ambiguous-drug-code")
    assert g.severity == "error" and g.field == "Medication.code"
    assert "J1020/J1030/J1040" in g.message and "J2920/J2930" in g.message
    assert "only the ingredient is known" in g.message
    assert d.drug is None and d.units is None and d.outcome == "held"


def test_a_name_with_both_salts_is_ambiguous_too():
    d = given(named("methylprednisolone acetate or sodium succinate"), 40)
    assert "the product names more than one" in gap(d, "ambiguous-drug-code").message
    assert d.drug is None


def test_a_dose_that_cannot_be_converted_keeps_the_mapped_code_and_says_why():
    # 2 mL, no strength known: the family cannot compare sizes; the ingredient row's code stays
    d = given(named("methylprednisolone acetate injection"), 2, "mL", when=OLD)
    assert d.drug == "J1030" and d.units is None
    assert "missing-dose" in gap_codes(d)


@pytest.mark.parametrize(
    "code,amount,hcpcs,units",
    [
        ("204416", 5, "J1630", 1),  # haloperidol 5 MG/ML Injectable Solution (the lactate)
        ("204416", 10, "J1630", 2),  # up to 5 mg: 10 mg is two units of the same code
        ("859867", 100, "J1631", 2),  # haloperidol decanoate 50 MG/ML: per 50 mg
    ],
)
def test_haloperidol_lactate_or_decanoate_from_the_product(code, amount, hcpcs, units):
    d = given(med(RXNORM, code), amount)
    assert (d.drug, d.units) == (hcpcs, units)


@pytest.mark.parametrize(
    "text,hcpcs",
    [
        ("testosterone cypionate 200 mg/mL", "J1071"),
        ("testosterone enanthate 200 mg/mL", "J3121"),
        ("Depo-Testosterone", "J1071"),
    ],
)
def test_testosterone_by_its_ester(text, hcpcs):
    d = given(named(text, "10379", "testosterone"), 200)
    assert (d.drug, d.units) == (hcpcs, 200)


def test_testosterone_without_its_ester_is_ambiguous():
    d = given(med(RXNORM, "10379", "testosterone"), 200)
    assert "J1071" in gap(d, "ambiguous-drug-code").message and d.drug is None


@pytest.mark.parametrize(
    "concept,amount,unit,hcpcs,units",
    [
        (med(RXNORM, "205923"), 4000, "[iU]", "J0885", 4),  # Epogen 4000 units: per 1000 units
        (med(RXNORM, "1659263"), 5000, "[iU]", "J1644", 5),  # heparin 5000 units: per 1000 units
        (med(RXNORM, "311034"), 10, "[iU]", "J1815", 2),  # insulin regular 10 units: per 5 units
        (med(RXNORM, "1665060"), 2000, "mg", "J0690", 4),  # cefazolin 2 g: 500 mg
        (med(RXNORM, "1115457"), 3.75, "mg", "J1950", 1),  # leuprolide 3.75 mg depot: per 3.75 mg
        (med(RXNORM, "752899"), 7.5, "mg", "J9217", 1),  # Eligard 7.5 mg
        (med(RXNORM, "1736776"), 85, "mg", "J9263", 170),  # oxaliplatin: 0.5 mg
    ],
)
def test_breadth_rows_bill_the_descriptor_unit(concept, amount, unit, hcpcs, units):
    # leuprolide's code also follows the diagnosis (mappings/drug_by_diagnosis.csv): give each
    # product the diagnosis it is used for (prostate cancer for Eligard, endometriosis for 3.75 mg)
    dx = {"J9217": "C61", "J1950": "N80.0"}.get(hcpcs)
    resources = world()
    if dx:
        resources = replace_resource(
            resources, "Condition", code={"coding": [{"system": ICD10, "code": dx}]}
        )
    d = decide_one(
        admin(medicationCodeableConcept=concept, dosage=dosage(dose=dose(amount, unit))), resources
    )
    assert (d.drug, d.units) == (hcpcs, units)


def test_a_descriptor_without_a_billable_unit_asks_a_person():
    d = given(med(HCPCS, "J3480"), 20, "mg")  # potassium chloride, per 2 meq
    assert rules().drugs["J3480"].unit_status == "unparsed"
    assert d.drug == "J3480" and d.units is None
    assert "code its units by hand" in gap(d, "missing-dose").message


def test_a_per_item_code_is_one_unit():
    d = given(med(HCPCS, "J9266"), 2500, "[iU]")  # pegaspargase, per single dose vial
    assert rules().drugs["J9266"].unit_status == "per-item"
    assert (d.drug, d.units) == ("J9266", 1)


def test_breadth_150_codes_reachable_and_the_named_ones_among_them():
    r = rules()
    mapped = {
        c.hcpcs
        for (system, _), c in r.drug_codes.items()
        if system in (RXNORM, NDC) and r.drugs[c.hcpcs].drug_class != "unclassified"
    }
    # a family's other members are reached from the same codes by salt and dose
    reachable = mapped | {
        m.hcpcs for h in mapped if h in r.drug_families for m in r.drug_families[h].members
    }
    assert len(mapped) >= 150
    assert {
        "J0885",
        "J1644",
        "J1815",
        "J1020",
        "J1030",
        "J1040",
        "J2920",
        "J2930",
        "J1630",
        "J1631",
        "J0690",
        "J1950",
        "J9217",
        "J1071",
        "J3121",
        "J3420",
        "J0696",
        "J1885",
        "J2550",
        "J2405",
        "J1100",
        "J3301",
        "J1050",
        "J0171",
        "J9267",
        "J9178",
        "J9263",
        "J9171",
    } <= reachable


def test_classes_from_the_code_range_and_the_curated_list():
    d = rules().drugs
    assert d["J9045"].drug_class == "antineoplastic"  # carboplatin, J9000-J9999
    assert {d[c].drug_class for c in ("J9217", "J9202", "J3315", "J9395", "J9155", "J9225")} == {
        "antineoplastic-hormonal"
    }
    assert d["J1950"].drug_class == "standard"  # leuprolide 3.75 mg: 96372 for non-cancer use
    assert d["J3490"].drug_class == d["J3590"].drug_class == "unclassified"
    assert (
        d["J9999"].drug_class == "antineoplastic"
    )  # "not otherwise classified, antineoplastic drugs"
    assert {d[c].unit_status for c in ("J3490", "J3590", "J9999", "J7999")} == {"noc"}
    # anti-neoplastics outside J9000-J9999: the curated list says so (biosimilars of J9035/J9355/J9312)
    assert {
        d[c].drug_class for c in ("Q2017", "Q2050", "Q5107", "Q5112", "Q5115", "J0594", "J0894")
    } == {"antineoplastic"}
    assert (
        d["Q5108"].drug_class == d["J3316"].drug_class == "standard"
    )  # pegfilgrastim; Triptodur (puberty)
    assert d["J8522"].drug_class == "oral" and d["J7613"].drug_class == "inhalation"
    assert d["Q2037"].drug_class == "vaccine"
    assert d["J1815"].self_administered and d["J1650"].self_administered
    assert "J1070" not in d  # terminated in 2015 (curated/terminated.csv)


@pytest.fixture()
def mappings(tmp_path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", target)
    return target


def _edit(path: Path, old: str, new: str) -> int:
    text = path.read_text(encoding="utf-8")
    assert old in text
    row = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return row


@pytest.mark.parametrize(
    "name,old,new,message",
    [
        (
            "drug_families.csv",
            "methylprednisolone,J1030,",
            "methylprednisolone,J0000,",
            "not in drugs.csv",
        ),
        (
            "drug_families.csv",
            "J1040,acetate,acetate|depo-medrol,80,mg",
            "J1040,acetate,acetate,80,furlongs",
            "column 'unit'",
        ),
        ("drugs.csv", ",unclassified,no,no,,noc,", ",unclassified,no,no,,parsed,", "per item"),
        (
            "drugs.csv",
            ",unclassified,no,no,,noc,",
            ",unclassified,no,no,,per-item,",
            "unit_status 'noc'",
        ),
        (
            "drugs.csv",
            ',parsed,"CMS HCPCS Level II file',
            ',sometimes,"CMS HCPCS Level II file',
            "unit_status",
        ),
    ],
)
def test_a_broken_drug_row_names_file_and_row(mappings, name, old, new, message):
    row = _edit(mappings / name, old, new)
    with pytest.raises(MappingError) as info:
        load_rules(mappings)
    assert (info.value.file, info.value.row) == (name, row) and message in str(info.value)


def test_a_family_of_one_code_is_refused(mappings):
    path = mappings / "drug_families.csv"
    rows = [
        r for r in csv.reader(path.open()) if not r or r[0] != "testosterone" or r[1] == "J1071"
    ]
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    with pytest.raises(MappingError, match="family 'testosterone' has one code only"):
        load_rules(mappings)


def test_rules_command_shows_drug_coverage_by_class(capsys):
    from fhir_injection.cli import main

    assert main(["rules"]) == 0
    out = capsys.readouterr().out
    lines = {
        ln.split()[0]: ln.split()[1:]
        for ln in out.splitlines()[
            out.splitlines().index(
                "  drug coverage (HCPCS codes by class: reachable from an RxNorm/NDC code / all):"
            )
            + 1 :
        ]
        if ln.startswith("    ")
    }
    reached, total = int(lines["total"][0]), int(lines["total"][2])
    assert total == len(rules().drugs) and reached >= 150
    assert int(lines["antineoplastic"][0]) > 0 and lines["oral"][0] == "0"


# ---- pins for each branch of billed_drug._family_member (mutation testing) ----------------------


def _detail(d, code: str) -> str:
    return gap(d, code).message.split(". ")[0]


def test_the_ambiguity_message_names_each_salt_and_its_codes_exactly():
    d = given(med(RXNORM, "6902", "methylprednisolone"), 80)
    assert _detail(d, "ambiguous-drug-code") == (
        "methylprednisolone: the code depends on the salt (acetate J1020/J1030/J1040; "
        "sodium succinate J2920/J2930) and only the ingredient is known"
    )
    d = given(named("methylprednisolone acetate or sodium succinate"), 40)
    assert _detail(d, "ambiguous-drug-code") == (
        "methylprednisolone: the code depends on the salt (acetate J1020/J1030/J1040; "
        "sodium succinate J2920/J2930) and the product names more than one"
    )


def test_the_unparsed_unit_message_exactly():
    d = given(med(HCPCS, "J3480"), 20, "mg")
    assert _detail(d, "missing-dose") == (
        "J3480's billing unit ('Injection, potassium chloride, per 2 meq') is not a mass, volume or "
        "unit amount: code its units by hand"
    )


def test_a_hcpcs_coded_family_member_is_chosen_again_by_salt_and_dose():
    # no drug_codes.csv row (the HCPCS code itself): the salt from the text, the size from the dose
    d = given({"coding": [{"system": HCPCS, "code": "J1030"}], "text": "Depo-Medrol"}, 80, when=OLD)
    assert (d.drug, d.units) == ("J1040", 1)


def test_the_salt_may_be_named_in_a_display_alone_and_last():
    d = given(
        {"coding": [{"system": RXNORM, "code": "6902", "display": "Methylprednisolone Acetate"}]},
        20,
        when=OLD,
    )
    assert (d.drug, d.units) == ("J1020", 1)
    assert given(named("Methylprednisolone Acetate"), 40, when=OLD).drug == "J1030"


def test_no_dose_keeps_the_mapped_code():
    d = decide_one(
        admin(
            medicationCodeableConcept=named("methylprednisolone acetate"),
            dosage=dosage(dose=None),
            effectiveDateTime=OLD,
        )
    )
    assert d.drug == "J1030" and "missing-dose" in gap_codes(d)


def test_a_dose_in_ml_is_sized_through_the_products_strength():
    # contained Medication: 40 mg/mL, 2 mL given = 80 mg -> J1040 (without the strength: J1030)
    from tests.builders import contained_admin

    a = contained_admin(
        strength=(40, "mg", 1, "mL"),
        dose_ml=2,
        code={"text": "methylprednisolone acetate 40 mg/mL"},
    )
    a["contained"][0]["ingredient"][0]["itemCodeableConcept"]["coding"][0].update(
        code="6902", display="methylprednisolone"
    )
    a["effectiveDateTime"] = OLD
    d = decide_one(a)
    assert (d.drug, d.units) == ("J1040", 1)


def _one_salt_family():
    from decimal import Decimal

    from fhir_injection.decision.drug_tables import DrugFamily, FamilyMember

    return DrugFamily(
        "x",
        (
            FamilyMember("J1030", "acetate", ("acetate",), Decimal(40), "mg"),
            FamilyMember("J1040", "acetate", ("acetate",), Decimal(80), "mg"),
        ),
    )


def test_a_family_of_one_salt_needs_no_name_and_a_foreign_product_salt_is_ignored():
    from decimal import Decimal

    from fhir_injection.decision.billed_drug import _family_member
    from fhir_injection.decision.drug_tables import DrugCode
    from fhir_injection.decision.medication import Medication

    m = Medication()
    m.drug = rules().drugs["J1030"]
    chosen, why = _family_member(m, _one_salt_family(), (Decimal(60), "mg"), rules())
    assert (chosen.hcpcs, why) == ("J1040", None)
    # a product row whose salt is not one of the family's: the names decide (here: ambiguous)
    m.drug = rules().drugs["J1030"]
    m.drug_code = DrugCode("J1030", "x", None, "pamoate")
    fam = rules().drug_families["J1030"]
    chosen, why = _family_member(m, fam, (Decimal(40), "mg"), rules())
    assert chosen is None and "only the ingredient is known" in why


def test_the_salt_may_be_named_in_a_second_codings_display():
    concept = {
        "coding": [
            {"system": RXNORM, "code": "6902", "display": "methylprednisolone"},
            {"system": "urn:oid:2.16.840.1.113883.6.69", "code": "x", "display": "Depo-Medrol"},
        ]
    }
    assert given(concept, 80, when=OLD).drug == "J1040"
