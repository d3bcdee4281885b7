"""The dose form decides what a product can be when the route is missing.

An administration with no route (or only one that is not known) is held as a possible 96372 with
``missing-route`` (docs/decision-rules.md) unless its product's dose form says it is no injection:
``Medication.form`` (SNOMED CT dose forms, HL7 v3 orderableDrugForm) or the RxNorm dose form its
name ends in ("Acetaminophen 325 MG Oral Tablet"). Oral, topical, transdermal, rectal, inhaled...
products are ``not-billable``; an implant or an IUD is ``not-96372`` with its insertion code and the
device on its own line. All get the info gap ``dose-form-not-injectable``, no Task, and count toward
neither the same-day rules nor the held dollars. A coded route always decides.
"""

from __future__ import annotations

import csv
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from fhir_injection import Config, MappingError, build_task, load_rules
from fhir_injection.sinks.report import Summary
from tests.builders import (
    CREATED,
    CVX,
    RXNORM,
    SNOMED,
    V3_ROUTE,
    admin,
    decide_many,
    decide_one,
    dosage,
    gap,
    gap_codes,
    line,
    med,
    route,
    rules,
    world,
)

V3_FORM = "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm"
MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


def no_route(name: str | None = None, coding: dict | None = None, **changes) -> dict:
    """An administration with no dosage.route whose medication is ``name`` (text) or ``coding``."""
    concept: dict = {}
    if coding:
        concept["coding"] = [coding]
    if name:
        concept["text"] = name
    return admin(medicationCodeableConcept=concept, dosage=dosage(route=None), **changes)


def with_medication(medication: dict, **changes) -> tuple[dict, list[dict]]:
    """An administration with no route that points to ``medication`` (a Medication resource)."""
    a = admin(
        medicationCodeableConcept=None,
        medicationReference={"reference": f"Medication/{medication['id']}"},
        dosage=dosage(route=None),
        **changes,
    )
    return a, [*world(), medication]


# ----------------------------------------------------------------------------- the RxNorm name's dose form


@pytest.mark.parametrize(
    "name,category",
    [
        ("Acetaminophen 325 MG Oral Tablet", "oral"),
        ("Amoxicillin 500 MG Oral Capsule", "oral"),
        ("sodium fluoride 0.0272 MG/MG Oral Gel", "oral"),
        ("ondansetron 4 MG Disintegrating Oral Tablet", "oral"),
        ("nitroglycerin 0.4 MG Sublingual Tablet", "oral"),
        ("Aspirin 81 MG Chewable Tablet", "oral"),
        (
            "168 HR Ethinyl Estradiol 0.00146 MG/HR / norelgestromin 0.00625 MG/HR Transdermal System",
            "transdermal",
        ),
        ("120 ACTUAT Fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler", "inhaled"),
        ("albuterol 0.83 MG/ML Inhalation Solution", "inhaled"),
        ("fluticasone propionate 0.05 MG/ACTUAT Metered Dose Nasal Spray", "nasal"),
        ("hydrocortisone 10 MG/ML Topical Cream", "topical"),
        ("acetaminophen 650 MG Rectal Suppository", "rectal"),
        ("timolol 5 MG/ML Ophthalmic Solution", "ophthalmic"),
        ("ethinyl estradiol 0.015 MG/DAY / etonogestrel 0.12 MG/DAY Vaginal Ring", "vaginal"),
    ],
)
def test_a_product_whose_name_ends_in_a_non_injection_form_is_not_billable(name, category):
    d = decide_one(no_route(name))
    assert d.outcome == "not-billable" and d.procedure is None
    assert gap_codes(d) == ["dose-form-not-injectable"]
    g = gap(d, "dose-form-not-injectable")
    assert g.severity == "info" and g.field == "MedicationAdministration.medication[x]"
    assert f"({category})" in g.message and "product's name" in g.message
    assert d.lines == () and d.drug is None and d.units is None and d.claim_status is None
    assert (d.patient, d.encounter, d.coverage) == (
        "Patient/p1",
        "Encounter/e-p1",
        "Coverage/cov-p1",
    )
    assert build_task(d, Config(), rules(), CREATED) is None


def test_the_dose_form_is_read_from_the_coding_display_and_past_a_brand():
    d = decide_one(
        no_route(
            coding={
                "system": RXNORM,
                "code": "209459",
                "display": "acetaminophen 500 MG Oral Tablet [Tylenol]",
            }
        )
    )
    assert (
        d.outcome == "not-billable"
        and "'Oral Tablet'" in gap(d, "dose-form-not-injectable").message
    )


def test_a_dose_form_word_inside_a_name_is_not_read():
    # the form must end the name: "Oral" in the middle says nothing, so the route stays missing
    d = decide_one(no_route("Oral Tablet crushed in 30 mL water"))
    assert d.outcome == "held" and "missing-route" in gap_codes(d)


@pytest.mark.parametrize(
    "name",
    [
        "1 ML medroxyprogesterone acetate 150 MG/ML Injection",
        "ketorolac tromethamine 30 MG/ML Injectable Solution",
        "1 ML Epoetin Alfa 4000 UNT/ML Injection [Epogen]",
        "0.4 ML Enoxaparin sodium 100 MG/ML Prefilled Syringe",
        "1 ML adalimumab 40 MG/ML Auto-Injector",
        "3 ML insulin glargine 100 UNT/ML Pen Injector",
        "3 ML insulin lispro 100 UNT/ML Cartridge",
        "medroxyprogesterone acetate 150 MG/ML Injectable Suspension",
    ],
)
def test_an_injectable_form_with_no_route_stays_held_with_missing_route(name):
    d = decide_one(no_route(name))
    assert d.outcome == "held" and d.procedure == "96372"
    assert "missing-route" in gap_codes(d) and "dose-form-not-injectable" not in gap_codes(d)
    assert build_task(d, Config(), rules(), CREATED) is not None


def test_a_product_with_no_known_dose_form_stays_held():
    d = decide_one(no_route("zzz compound"))
    assert d.outcome == "held" and "missing-route" in gap_codes(d)


# ----------------------------------------------------------------------------- implants and IUDs


@pytest.mark.parametrize(
    "code,display,procedure,hcpcs",
    [
        ("389221", "Etonogestrel 68 MG Drug Implant", "11981", "J7307"),
        ("807283", "Mirena 52 MG Intrauterine System", "58300", "J7298"),
        ("1605257", "Liletta 52 MG Intrauterine System", "58300", "J7297"),
        ("1856546", "Kyleena 19.5 MG Intrauterine System", "58300", "J7296"),
    ],
)
def test_an_implant_or_iud_is_its_insertion_code_with_the_device_once(
    code, display, procedure, hcpcs
):
    d = decide_one(no_route(display, coding={"system": RXNORM, "code": code, "display": display}))
    assert (d.outcome, d.procedure, d.drug, d.units) == ("not-96372", procedure, hcpcs, 1)
    assert gap_codes(d) == ["dose-form-not-injectable"]
    assert f"{procedure} applies" in gap(d, "dose-form-not-injectable").message
    assert (
        d.payer_type == "medicare" and d.service_date == "2026-10-05" and d.place_of_service == "11"
    )
    assert d.lines == () and d.claim_status is None  # no 96372 Claim; the report names the codes
    assert build_task(d, Config(), rules(), CREATED) is None


def test_an_implant_matched_by_brand_name_only_is_flagged():
    d = decide_one(no_route("Nexplanon 68 MG Drug Implant"))
    assert (d.procedure, d.drug, d.units) == ("11981", "J7307", 1)
    assert "by drug name only" in gap(d, "unmapped-medication").message


def test_an_implant_with_no_device_code_gets_no_device_line():
    # testosterone pellets: the name matches J1071 (a dose-billed drug, not a device): no device line
    d = decide_one(no_route("testosterone 75 MG Drug Implant"))
    assert (d.outcome, d.procedure, d.drug, d.units) == ("not-96372", "11981", None, None)
    assert "no device line" in gap(d, "unmapped-medication").message


def test_a_hormonal_antineoplastic_implant_keeps_its_chemotherapy_code():
    # the drug class decides before the implant default (leuprolide J9217 -> 96402, as a goserelin implant)
    # for cancer (C61): without it leuprolide is J1950, 96372's code (test_hormonal.py)
    d = decide_one(
        no_route(
            "leuprolide 65 MG Drug Implant",
            coding={"system": RXNORM, "code": "42375"},
            reasonCode=[
                {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C61"}]}
            ],
        )
    )
    assert (d.outcome, d.procedure) == ("not-96372", "96402")
    assert "dose-form-not-injectable" not in gap_codes(d)


def test_an_oral_antineoplastic_is_not_chemotherapy_administration():
    # methotrexate tablets name-match J9250; a tablet is swallowed: no 96401
    d = decide_one(no_route("Methotrexate 2.5 MG Oral Tablet"))
    assert (d.outcome, d.procedure) == ("not-billable", None)
    assert gap_codes(d) == ["dose-form-not-injectable"]


# ----------------------------------------------------------------------------- Medication.form


@pytest.mark.parametrize(
    "system,code,category",
    [
        (SNOMED, "421026006", "oral"),  # Oral tablet
        (SNOMED, "385114002", "transdermal"),  # Transdermal patch
        (SNOMED, "422059006", "inhaled"),  # Metered dose inhaler
        (V3_FORM, "TAB", "oral"),
        (V3_FORM, "PATCH", "transdermal"),
        (V3_FORM, "MDINHL", "inhaled"),
        (V3_FORM, "RECSUPP", "rectal"),
    ],
)
def test_a_coded_medication_form_decides(system, code, category):
    a, w = with_medication(
        {
            "resourceType": "Medication",
            "id": "m1",
            "code": {"text": "some product"},
            "form": {"coding": [{"system": system, "code": code}]},
        }
    )
    d = decide_one(a, w)
    assert d.outcome == "not-billable" and gap_codes(d) == ["dose-form-not-injectable"]
    assert "Medication.form" in gap(d, "dose-form-not-injectable").message
    assert f"({category})" in gap(d, "dose-form-not-injectable").message


def test_a_coded_injectable_form_wins_over_the_name():
    a, w = with_medication(
        {
            "resourceType": "Medication",
            "id": "m1",
            "code": {"text": "Acetaminophen 325 MG Oral Tablet"},
            "form": {"coding": [{"system": SNOMED, "code": "385219001"}]},
        }
    )  # Injection solution
    d = decide_one(a, w)
    assert d.outcome == "held" and "missing-route" in gap_codes(d)


def test_a_form_in_text_or_in_an_unknown_system_is_read_by_its_name():
    # Epic sends Medication.form in its own OID: its display is still a dose form name
    for form in (
        {"text": "Transdermal System"},
        {
            "coding": [
                {
                    "system": "urn:oid:1.2.840.114350.1.13.99999.1.7.4.698288.310",
                    "code": "9",
                    "display": "Oral Tablet",
                }
            ]
        },
    ):
        a, w = with_medication(
            {"resourceType": "Medication", "id": "m1", "code": {"text": "x"}, "form": form}
        )
        assert decide_one(a, w).outcome == "not-billable"


def test_a_contained_medication_form_is_read():
    medication = {
        "resourceType": "Medication",
        "id": "c1",
        "code": {"text": "nicotine patch"},
        "form": {"coding": [{"system": V3_FORM, "code": "TPATCH"}]},
    }
    a = admin(
        medicationCodeableConcept=None,
        medicationReference={"reference": "#c1"},
        contained=[medication],
        dosage=dosage(route=None),
    )
    assert decide_one(a).outcome == "not-billable"


# ----------------------------------------------------------------------------- the route decides first


def test_a_coded_route_is_never_overridden_by_the_dose_form():
    # an IM route on a product named like a tablet: the route decides (96372)
    # (the 1 mL ampule 1665461: its container size is known, so JZ can be coded for Medicare)
    a = admin(
        medicationCodeableConcept={
            "coding": [{"system": RXNORM, "code": "1665461"}],
            "text": "ketorolac 10 MG Oral Tablet",
        }
    )
    d = decide_one(a)
    assert (
        d.outcome == "claim"
        and d.procedure == "96372"
        and "dose-form-not-injectable" not in gap_codes(d)
    )
    # an oral route on an injectable: the route decides too (not-billable through procedures.csv 'oral')
    d = decide_one(
        admin(
            dosage=dosage(route=route(V3_ROUTE, "PO")),
            medicationCodeableConcept={"text": "ketorolac 30 MG/ML Injectable Solution"},
        )
    )
    assert d.outcome == "not-billable" and "route-not-sc-im" in gap_codes(d)
    assert "dose-form-not-injectable" not in gap_codes(d)


def test_a_route_in_text_only_is_missing_so_the_dose_form_decides():
    a = no_route("Acetaminophen 325 MG Oral Tablet")
    a["dosage"]["route"] = {"text": "Injection"}  # ambiguous text: no route is read from it
    assert decide_one(a).outcome == "not-billable"


def test_a_vaccine_stays_a_vaccine_whatever_its_form():
    d = decide_one(
        no_route("rotavirus vaccine Oral Suspension", coding={"system": CVX, "code": "140"})
    )
    assert d.outcome == "not-96372" and "vaccine" in gap_codes(d)
    assert "dose-form-not-injectable" not in gap_codes(d)


# ----------------------------------------------------------------------------- same-day rules and dollars


def _injection(i: int, minute: int) -> dict:
    return admin(
        id=f"inj{i}",
        effectiveDateTime=f"2026-10-05T09:{minute:02d}:00-05:00",
        medicationCodeableConcept=med(RXNORM, "1665461"),
    )  # a 1 mL ampule: JZ can be coded


def test_non_injections_do_not_count_toward_the_same_day_rules():
    # two tablets and an implant given first, then four injections: the 1st injection has no distinct
    # modifier, the 4th is within the MUE of 4
    first = [
        no_route(
            "Acetaminophen 325 MG Oral Tablet",
            id="tab1",
            effectiveDateTime="2026-10-05T09:01:00-05:00",
        ),
        no_route(
            "Acetaminophen 325 MG Oral Tablet",
            id="tab2",
            effectiveDateTime="2026-10-05T09:02:00-05:00",
        ),
        no_route(
            "Etonogestrel 68 MG Drug Implant",
            id="imp",
            effectiveDateTime="2026-10-05T09:03:00-05:00",
            coding={"system": RXNORM, "code": "389221"},
        ),
    ]
    decisions = {
        d.administration_id: d
        for d in decide_many(first + [_injection(i, 10 + i) for i in range(4)])
    }
    assert [decisions[f"tab{i}"].outcome for i in (1, 2)] == ["not-billable", "not-billable"]
    assert line(decisions["inj0"], "administration").modifiers == ()
    assert [line(decisions[f"inj{i}"], "administration").modifiers for i in (1, 2, 3)] == [
        ("XU",)
    ] * 3
    assert all(
        d.outcome == "claim" and "units-over-mue" not in gap_codes(d)
        for k, d in decisions.items()
        if k.startswith("inj")
    )


def test_two_identical_tablets_are_not_duplicates_of_injections():
    a = no_route("Acetaminophen 325 MG Oral Tablet", id="t1")
    b = no_route("Acetaminophen 325 MG Oral Tablet", id="t2")
    assert [gap_codes(d) for d in decide_many([a, b])] == [["dose-form-not-injectable"]] * 2


def test_non_injections_are_neither_held_nor_billable_dollars():
    summary = Summary()
    for d in decide_many(
        [
            no_route("Acetaminophen 325 MG Oral Tablet", id="t1"),
            no_route(
                "Mirena 52 MG Intrauterine System",
                id="iud",
                coding={"system": RXNORM, "code": "807283"},
            ),
        ]
    ):
        summary.add(d, None, False)
        assert d.estimated_amount == Decimal(0)
    assert (
        summary.as_dict()["estimated_held_usd"] == 0
        and summary.as_dict()["estimated_billable_usd"] == 0
    )


# ----------------------------------------------------------------------------- the tables


def test_the_bundled_tables_know_the_issue_11_dose_forms():
    r = load_rules()
    by_name = {name: form.category for name, form in r.dose_form_names.items()}
    expected = {
        "oral tablet": "oral",
        "oral capsule": "oral",
        "oral gel": "oral",
        "oral solution": "oral",
        "chewable tablet": "oral",
        "transdermal system": "transdermal",
        "drug implant": "implant",
        "intrauterine system": "intrauterine",
        "metered dose inhaler": "inhaled",
        "inhalation solution": "inhaled",
        "dry powder inhaler": "inhaled",
        "nasal spray": "nasal",
        "topical cream": "topical",
        "rectal suppository": "rectal",
        "ophthalmic solution": "ophthalmic",
        "vaginal ring": "vaginal",
        "injection": "injectable",
        "injectable solution": "injectable",
        "injectable suspension": "injectable",
        "prefilled syringe": "injectable",
        "auto-injector": "injectable",
        "pen injector": "injectable",
        "cartridge": "injectable",
    }
    assert {k: by_name.get(k) for k in expected} == expected
    assert r.dose_forms[(V3_FORM, "TAB")].category == "oral"
    assert r.dose_forms[(SNOMED, "385219001")].category == "injectable"
    cats = r.dose_form_categories
    assert (cats["implant"].outcome, cats["implant"].procedure_code) == ("not-96372", "11981")
    assert (cats["intrauterine"].outcome, cats["intrauterine"].procedure_code) == (
        "not-96372",
        "58300",
    )
    assert cats["injectable"].outcome == "held" and cats["oral"].outcome == "not-billable"
    assert r.drugs["J7307"].drug_class == "device" and r.drugs["J7307"].unit_amount is None


@pytest.fixture
def mappings(tmp_path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    return target


def _edit(directory: Path, name: str, old: str, new: str) -> int:
    """Replace the first ``old`` in ``name``; the 1-based row it is on (the header is row 1)."""
    path = directory / name
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    row = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return row


@pytest.mark.parametrize(
    "name,old,new,message",
    [
        (
            "dose_forms.csv",
            "name,,,Oral Tablet,oral,",
            "name,,,Oral Tablet,swallowed,",
            "column 'category' is 'swallowed'",
        ),
        (
            "dose_forms.csv",
            "name,,,Oral Capsule,oral,",
            "name,,,Oral Tablet,oral,",
            "duplicate key",
        ),
        (
            "dose_forms.csv",
            "name,,,Drug Implant,",
            "name,http://snomed.info/sct,,Drug Implant,",
            "has no system or code",
        ),
        (
            "dose_forms.csv",
            "code,http://snomed.info/sct,421026006,",
            "code,,421026006,",
            "column 'system' is empty",
        ),
        (
            "dose_forms.csv",
            "name,,,Oral Gel,oral,",
            "word,,,Oral Gel,oral,",
            "column 'match' is 'word'",
        ),
        (
            "dose_form_categories.csv",
            "implant,not-96372,11981,",
            "implant,not-96372,,",
            "needs the procedure_code",
        ),
        (
            "dose_form_categories.csv",
            "oral,not-billable,,",
            "oral,not-billable,99999,",
            "only for outcome 'not-96372'",
        ),
        (
            "dose_form_categories.csv",
            "oral,not-billable,,",
            "oral,maybe,,",
            "column 'outcome' is 'maybe'",
        ),
    ],
)
def test_a_broken_dose_form_row_names_its_file_and_row(mappings, name, old, new, message):
    row = _edit(mappings, name, old, new)
    with pytest.raises(MappingError) as info:
        load_rules(mappings)
    assert info.value.file == name and info.value.row == row and message in str(info.value)


def test_a_dose_form_row_without_source_is_refused(mappings):
    path = mappings / "dose_forms.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        table = list(csv.reader(fh))
    table[1][-1] = ""
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(table)
    with pytest.raises(MappingError) as info:
        load_rules(mappings)
    assert (
        info.value.file == "dose_forms.csv" and info.value.row == 2 and "source" in str(info.value)
    )
