"""Route vocabulary as data: every route coding real systems send, the reviewed
route texts, and which gaps an administration that is no 96372 still gets.

Each test: the clean ketorolac IM injection of builders.py, one change, one consequence.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from fhir_injection import MappingError, load_rules
from tests.builders import (
    SNOMED,
    V2_ROUTE,
    V3_ROUTE,
    admin,
    decide_one,
    dosage,
    gap,
    gap_codes,
    route,
    world,
)

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
NCI_SYSTEMS = (
    "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl",
    "http://ncimeta.nci.nih.gov",
    "urn:oid:2.16.840.1.113883.3.26.1.1",
)


def with_route(value, **changes) -> dict:
    return admin(dosage=dosage(route=value, **changes))


# ----------------------------------------------------------------------------- coded routes


@pytest.mark.parametrize(
    "system,code",
    [
        (SNOMED, "263887005"),  # Subcutaneous (qualifier value): HL7 IG and FHIR R4 examples
        (SNOMED, "255559005"),  # Intramuscular (qualifier value)
        *[(s, "C38299") for s in NCI_SYSTEMS],  # FDA SPL SUBCUTANEOUS, each system real data uses
        *[(s, "C28161") for s in NCI_SYSTEMS],  # FDA SPL INTRAMUSCULAR
    ],
)
def test_qualifier_value_and_fda_sc_im_routes_bill_96372(system, code):
    d = decide_one(with_route(route(system, code)))
    assert (d.outcome, d.procedure, gap_codes(d)) == ("claim", "96372", [])


@pytest.mark.parametrize(
    "system,code",
    [
        (SNOMED, "255560000"),  # Intravenous (qualifier value), as in the FHIR R4 examples
        (SNOMED, "47625008"),
        (SNOMED, "418114005"),  # intravenous central
        (V2_ROUTE, "IV"),
        (V3_ROUTE, "IVINJ"),
        (NCI_SYSTEMS[1], "C38276"),  # INTRAVENOUS under Oracle's system
    ],
)
def test_intravenous_without_rate_or_duration_is_a_push(system, code):
    d = decide_one(with_route(route(system, code)))
    assert (d.outcome, d.procedure) == ("not-96372", "96374")
    assert gap(d, "route-not-sc-im").severity == "info"


@pytest.mark.parametrize(
    "system,code",
    [
        (SNOMED, "26643006"),
        (SNOMED, "260548002"),
        (V3_ROUTE, "PO"),
        (V2_ROUTE, "PO"),
        (NCI_SYSTEMS[0], "C38288"),  # oral
        (SNOMED, "6064005"),
        (SNOMED, "45890007"),
        (SNOMED, "37161004"),
        (SNOMED, "447694001"),
        (V3_ROUTE, "TRNSDERM"),
        (V2_ROUTE, "TP"),
        (NCI_SYSTEMS[2], "C38216"),  # topical, transdermal, ...
    ],
)
def test_routes_that_are_no_injection_bill_nothing(system, code):
    d = decide_one(with_route(route(system, code)))
    assert (d.outcome, d.procedure, d.lines) == ("not-billable", None, ())
    assert gap_codes(d) == ["route-not-sc-im"]


def test_intrathecal_and_subconjunctival_are_no_96372_and_no_guess():
    for system, code in [
        (SNOMED, "72607000"),
        (SNOMED, "372476004"),
        (V3_ROUTE, "SCINJ"),
        (NCI_SYSTEMS[0], "C38298"),
    ]:
        d = decide_one(with_route(route(system, code)))
        assert (d.outcome, d.procedure) == ("not-96372", None), (system, code)


def test_every_routes_row_names_a_category_the_engine_knows_and_a_source():
    rules = load_rules()
    rows = list(csv.DictReader((MAPPINGS / "routes.csv").open(encoding="utf-8")))
    assert len(rows) == len(rules.routes)
    for row in rows:
        assert rules.routes[(row["system"], row["code"])] == row["route"]
        assert row["source"] and row["display"]
    # the value-set concepts that matter for billing are all there
    for code in (
        "34206005",
        "78421000",
        "47625008",
        "26643006",
        "6064005",
        "37161004",
        "45890007",
        "46713006",
        "447694001",
        "372449004",
        "255560000",
        "263887005",
    ):
        assert (SNOMED, code) in rules.routes, code


# ----------------------------------------------------------------------------- route text


@pytest.mark.parametrize(
    "text", ["Intramuscular", "IM", "  intramuscular ", "INTRAMUSCULAR INJECTION"]
)
def test_an_unambiguous_im_text_bills_with_a_warning(text):
    d = decide_one(with_route({"text": text}))
    assert (d.outcome, d.procedure) == ("claim", "96372")
    g = gap(d, "route-from-text")
    assert g.severity == "warning" and g.field == "MedicationAdministration.dosage.route"
    assert gap_codes(d) == ["route-from-text"]


def test_the_route_text_is_not_echoed_in_the_message():
    d = decide_one(with_route({"text": "INTRAMUSCULAR INJECTION"}))
    assert "INTRAMUSCULAR INJECTION" not in gap(d, "route-from-text").message  # codes and ids only


@pytest.mark.parametrize("text", ["Subcutaneous", "SubQ", "subcut", "SC", "SQ"])
def test_an_unambiguous_sc_text_bills_with_a_warning(text):
    d = decide_one(with_route({"text": text}))
    assert (d.outcome, d.procedure, gap_codes(d)) == ("claim", "96372", ["route-from-text"])


@pytest.mark.parametrize(
    "text", ["Injection", "shot", "IM or SC", "Intramuscular, left deltoid", "I.M.", "inj"]
)
def test_any_other_text_stays_a_missing_route(text):
    d = decide_one(with_route({"text": text}))
    assert d.outcome == "held"
    assert gap_codes(d) == ["missing-route"]
    assert "reviewed list" in gap(d, "missing-route").message


def test_text_is_used_only_when_no_coding_is_known():
    known = decide_one(
        with_route({"coding": [{"system": SNOMED, "code": "34206005"}], "text": "IM"})
    )
    assert gap_codes(known) == []  # the code decides; the text is not even looked at
    unknown = decide_one(
        with_route(
            {
                "coding": [{"system": "https://ehr.example/route", "code": "9"}],
                "text": "Intramuscular",
            }
        )
    )
    assert (unknown.outcome, gap_codes(unknown)) == ("claim", ["route-from-text"])
    assert "no route code is known" in gap(unknown, "route-from-text").message.lower()


def test_text_iv_push_gives_the_push_code_with_the_warning():
    d = decide_one(with_route({"text": "IV Push"}))
    assert (d.outcome, d.procedure) == ("not-96372", "96374")
    assert sorted(gap_codes(d)) == ["route-from-text", "route-not-sc-im"]


def test_text_oral_bills_nothing_and_opens_no_task():
    d = decide_one(with_route({"text": "PO"}))
    assert (d.outcome, d.procedure, gap_codes(d)) == ("not-billable", None, ["route-not-sc-im"])


# ----------------------------------------------------------------------------- gaps that still matter


def test_oral_with_unmapped_drug_no_dose_no_site_gets_only_the_explanation():
    """rw-sqr-ma-2: an oral tablet is billed by nobody, so no J3490, dose, site, performer noise."""
    a = admin(
        medicationCodeableConcept={
            "coding": [
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": "313782",
                    "display": "Acetaminophen 325 MG Oral Tablet",
                }
            ]
        },
        dosage={"route": route(SNOMED, "26643006"), "dose": {"value": 2, "unit": "TAB"}},
        performer=None,
    )
    d = decide_one(a, world(consent=False))
    assert (d.outcome, d.procedure, d.drug, d.units) == ("not-billable", None, None, None)
    assert gap_codes(d) == ["route-not-sc-im"]
    assert d.actionable_gaps == ()


def test_a_not_96372_keeps_the_drug_line_gaps_but_not_the_96372_documentation_gaps():
    a = admin(
        medicationCodeableConcept={"text": "some unlisted drug"},
        dosage={
            "route": route(V3_ROUTE, "IARTINJ"),
            "dose": {"value": 40, "unit": "mg", "code": "mg"},
        },
        performer=None,
    )
    d = decide_one(a, world(consent=False))
    assert (d.outcome, d.procedure) == ("not-96372", "20610")
    # unmapped drug: the J3490 line of the 20610 claim needs review, and its NDC (CGS Medicare NOC
    # instructions: a J3490 line is priced from the drug's name, NDC and dose, whatever code goes with
    # it); site, performer, consent are what a 96372 claim needs, and this is none
    assert sorted(gap_codes(d)) == ["missing-ndc", "route-not-sc-im", "unmapped-medication"]


def test_a_not_96372_with_no_dose_says_so():
    a = admin(dosage={"route": route(SNOMED, "47625008")})
    d = decide_one(a)
    assert (d.procedure, sorted(gap_codes(d))) == ("96374", ["missing-dose", "route-not-sc-im"])


def test_every_gap_has_a_scope_and_explanations_are_kept_everywhere():
    rules = load_rules()
    for code, g in rules.gaps.items():
        assert g.raised_for in ("every", "billed", "96372"), code
        if g.severity == "info" and code != "missing-consent":
            assert g.raised_for == "every", code
    # consent is info (policy, not a payer rule) but asked only of a 96372, as when it was a warning
    assert rules.gaps["missing-consent"].raised_for == "96372"
    assert rules.gaps["missing-site"].raised_for == "96372"
    assert rules.gaps["unmapped-medication"].raised_for == "billed"
    assert rules.gaps["route-from-text"].raised_for == "billed"


# ----------------------------------------------------------------------------- broken tables


@pytest.fixture
def mappings(tmp_path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    return target


def _row_of(path: Path, needle: str) -> int:
    return next(
        n
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if needle in line
    )


def test_a_route_text_row_with_an_unknown_route_names_file_and_row(mappings):
    path = mappings / "route_text.csv"
    path.write_text(
        path.read_text(encoding="utf-8").replace("\nsubq,subcutaneous,", "\nsubq,under-skin,"),
        encoding="utf-8",
    )
    with pytest.raises(MappingError) as info:
        load_rules(mappings)
    assert (info.value.file, info.value.row) == ("route_text.csv", _row_of(path, "subq,under-skin"))
    assert "route" in str(info.value)


def test_a_repeated_route_text_names_its_row(mappings):
    path = mappings / "route_text.csv"
    path.write_text(
        path.read_text(encoding="utf-8") + "INTRAMUSCULAR,intramuscular,again\n", encoding="utf-8"
    )
    with pytest.raises(MappingError, match="duplicate") as info:
        load_rules(mappings)
    assert info.value.file == "route_text.csv"
    assert info.value.row == len(path.read_text(encoding="utf-8").splitlines())


def test_a_bad_gap_scope_is_refused(mappings):
    path = mappings / "gaps.codesystem.json"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            '"valueCode": "billed"', '"valueCode": "sometimes"', 1
        ),
        encoding="utf-8",
    )
    with pytest.raises(MappingError, match="raised-for") as info:
        load_rules(mappings)
    assert info.value.file == "gaps.codesystem.json"
