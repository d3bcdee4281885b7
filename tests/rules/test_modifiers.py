"""Every modifier as a rule in mappings/modifiers.csv, not a literal in the engine: JW, JZ, GY,
EA-EC, the distinct-procedure modifier of each payer type (59, XU) and 25 on the E/M.

The sources' own examples: CMS "JW Modifier and JZ Modifier Policy" FAQ (and CGS Medicare's JW/JZ
guidelines, 2023): 500 mg of ceftriaxone from a 1 g single-dose vial is J0696 x 2 plus J0696-JW x 2;
the whole vial given is J0696-JZ. JW was required before 2023 (uniform JW policy from 2017-01-01);
JZ is required for dates of service from 2023-07-01, and the engine puts none on before that.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest

from fhir_injection import Config, Context, MappingError, decide, decide_all, load_rules
from tests.builders import (
    CPT,
    RXNORM,
    admin,
    dosage,
    dose,
    gap,
    gap_codes,
    line,
    med,
    replace_resource,
    world,
)

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
CEFTRIAXONE_1G = med(RXNORM, "1665021", "ceftriaxone 1000 MG Injection")
ENOXAPARIN_40 = med(RXNORM, "854235", "0.4 ML enoxaparin sodium 100 MG/ML Prefilled Syringe")


@pytest.fixture(scope="module")
def bundled():
    return load_rules(MAPPINGS)


def _on(day: str, medication, amount, unit, rules, config=None):
    """The administration on ``day`` (YYYY-MM-DD): the encounter, coverage and consent moved with it."""
    year = day[:4]
    text = json.dumps(world()).replace("2026-10-05", day).replace("2026-", f"{year}-")
    text = text.replace("2027-01-01", f"{int(year) + 1}-01-01")
    a = admin(
        medicationCodeableConcept=medication,
        dosage=dosage(dose=dose(amount, unit)),
        effectiveDateTime=f"{day}T09:30:00-05:00",
    )
    return decide(a, Context(json.loads(text)), rules, config)


def test_the_table_has_the_three_modifiers_with_their_lines_and_dates(bundled):
    m = bundled.modifiers
    assert (m["waste-line"].code, m["waste-line"].lines, m["waste-line"].effective) == (
        "JW",
        frozenset({"waste"}),
        date(2017, 1, 1),
    )
    assert (
        m["nothing-discarded"].code,
        m["nothing-discarded"].lines,
        m["nothing-discarded"].effective,
    ) == ("JZ", frozenset({"drug"}), date(2023, 7, 1))
    assert (
        m["excluded-service"].code,
        m["excluded-service"].lines,
        m["excluded-service"].effective,
    ) == ("GY", frozenset({"administration", "drug"}), None)


@pytest.mark.parametrize("day", ["2023-06-30", "2023-07-01", "2026-10-05"])
def test_cms_example_jw_is_on_the_discarded_units_before_and_after_jz_started(bundled, day):
    d = _on(day, CEFTRIAXONE_1G, 500, "mg", bundled)
    assert d.outcome == "claim", gap_codes(d)
    drug, waste = line(d, "drug"), line(d, "waste")
    assert (drug.code, drug.quantity, drug.modifiers) == ("J0696", 2, ())
    assert (waste.code, waste.quantity, waste.modifiers) == ("J0696", 2, ("JW",))


def test_jz_is_not_put_on_a_whole_vial_before_2023_07_01(bundled):
    d = _on("2023-06-30", CEFTRIAXONE_1G, 1, "g", bundled)
    assert d.outcome == "claim", gap_codes(d)
    assert line(d, "drug").modifiers == () and line(d, "waste") is None


def test_jz_is_put_on_a_whole_vial_from_2023_07_01(bundled):
    d = _on("2023-07-01", CEFTRIAXONE_1G, 1, "g", bundled)
    assert d.outcome == "claim", gap_codes(d)
    assert (line(d, "drug").quantity, line(d, "drug").modifiers) == (4, ("JZ",))


@pytest.fixture
def mappings(tmp_path):
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    return target


def _edit(mappings: Path, old: str, new: str) -> int:
    """Replace ``old`` by ``new`` in modifiers.csv; the 1-based row (header = 1) now holding ``new``."""
    path = mappings / "modifiers.csv"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return next(n for n, ln in enumerate(path.read_text().splitlines(), start=1) if new in ln)


def test_the_effective_date_in_the_table_decides_not_the_code(mappings):
    _edit(
        mappings,
        "nothing-discarded,drug,medicare,2023-07-01",
        "nothing-discarded,drug,medicare,2027-01-01",
    )
    d = _on("2026-10-05", CEFTRIAXONE_1G, 1, "g", load_rules(mappings))
    assert line(d, "drug").modifiers == ()


def test_the_codes_come_from_the_table_not_the_engine(mappings):
    # the same rules under other (made-up) modifier codes: the engine spells none of its own
    for old, new in (("JW,Drug", "Q1,Drug"), ("JZ,Zero", "Q2,Zero"), ("GY,", "Q3,")):
        _edit(mappings, old, new)
    rules = load_rules(mappings)
    waste = _on("2026-10-05", CEFTRIAXONE_1G, 500, "mg", rules)
    whole = _on("2026-10-05", CEFTRIAXONE_1G, 1, "g", rules)
    gy = _on("2026-10-05", ENOXAPARIN_40, 40, "mg", rules, Config(sad_policy="gy"))
    assert line(waste, "waste").modifiers == ("Q1",) and line(whole, "drug").modifiers == ("Q2",)
    assert (line(gy, "administration").modifiers, line(gy, "drug").modifiers) == (("Q3",), ("Q3",))
    assert "billed with Q3 on both lines" in gap(gy, "self-administered-drug").message


def test_before_the_waste_line_modifier_starts_no_waste_line_is_billed(mappings):
    _edit(mappings, "waste-line,waste,medicare,2017-01-01", "waste-line,waste,medicare,2027-01-01")
    d = _on("2026-10-05", CEFTRIAXONE_1G, 500, "mg", load_rules(mappings))
    assert d.outcome == "claim" and line(d, "waste") is None
    assert (line(d, "drug").quantity, line(d, "drug").modifiers, line(d, "drug").discarded) == (
        2,
        (),
        2,
    )


def test_the_lines_in_the_table_decide_where_gy_goes(mappings):
    _edit(mappings, "excluded-service,administration drug,", "excluded-service,drug,")
    d = _on("2026-10-05", ENOXAPARIN_40, 40, "mg", load_rules(mappings), Config(sad_policy="gy"))
    assert (line(d, "administration").modifiers, line(d, "drug").modifiers) == ((), ("GY",))
    assert (
        "billed with GY on the drug line (sad_policy gy)"
        in gap(d, "self-administered-drug").message
    )


def test_a_service_date_before_an_excluded_service_modifier_starts_holds_the_drug(mappings):
    _edit(
        mappings,
        "excluded-service,administration drug,medicare,",
        "excluded-service,administration drug,medicare,2030-01-01",
    )
    d = _on("2026-10-05", ENOXAPARIN_40, 40, "mg", load_rules(mappings), Config(sad_policy="gy"))
    assert d.outcome == "held" and "(sad_policy hold)" in gap(d, "self-administered-drug").message


@pytest.mark.parametrize(
    "old,new,message",
    [
        ("JZ,Zero", "JZZ,Zero", "modifier 'JZZ' is not a two-character CPT or HCPCS modifier"),
        (
            "nothing-discarded,drug,medicare,2023-07-01",
            "nothing-discarded,drug,medicare,2023-13-01",
            "column 'effective' is '2023-13-01', not a date YYYY-MM-DD",
        ),
        (
            "waste-line,waste,",
            "waste-line,waste drug,",
            "a waste-line modifier goes on the waste line alone",
        ),
        ("nothing-discarded,drug,", "nothing-discarded,claim,", "column 'lines' is 'claim'"),
        (
            "excluded-service,administration drug,",
            "excluded-service,administration waste,",
            "an excluded-service modifier has no waste line to go on",
        ),
        ("nothing-discarded,drug,", "nothing-left,drug,", "column 'use' is 'nothing-left'"),
        (
            "nothing-discarded,drug,medicare,2023",
            "waste-line,waste,medicare,2023",
            "duplicate key waste-line (first at row 2)",
        ),
    ],
)
def test_a_broken_modifier_row_is_reported_with_file_and_row(mappings, old, new, message):
    row = _edit(mappings, old, new)
    with pytest.raises(MappingError) as err:
        load_rules(mappings)
    assert err.value.file == "modifiers.csv" and err.value.row == row and message in str(err.value)


def test_a_missing_required_modifier_row_is_an_error_at_load(mappings):
    path = mappings / "modifiers.csv"
    path.write_text(
        "\n".join(ln for ln in path.read_text().splitlines() if not ln.startswith("JZ,")) + "\n"
    )
    with pytest.raises(MappingError) as err:
        load_rules(mappings)
    assert err.value.file == "modifiers.csv" and "no row for use(s) nothing-discarded" in str(
        err.value
    )


def test_a_modifier_row_without_a_source_is_reported(mappings):
    path = mappings / "modifiers.csv"
    lines = path.read_text().splitlines()
    gy = next(i for i, ln in enumerate(lines) if ln.startswith("GY,"))
    lines[gy] = lines[gy][: lines[gy].rindex(',"CMS')] + ","
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MappingError) as err:
        load_rules(mappings)
    assert (
        err.value.file == "modifiers.csv" and err.value.row == gy + 1 and "source" in str(err.value)
    )


# ----------------------------------------------------------------------------- one home for modifiers
# CPT Appendix A (59, 25), CMS MLN "Proper Use of Modifiers 59 & -X{EPSU}" (XU for Medicare), CMS
# "JW Modifier and JZ Modifier Policy" (a Part B policy): each a row with its payer types.


def test_every_modifier_the_engine_uses_is_a_row_with_its_payer_types(bundled):
    m = bundled.modifiers
    assert (m["em-separate"].code, m["em-separate"].lines) == ("25", frozenset({"em"}))
    assert m["em-separate"].payer_types == frozenset(
        {"medicare", "medicaid", "commercial", "self-pay"}
    )
    for use in ("waste-line", "nothing-discarded", "excluded-service", "esa-chemotherapy"):
        assert m[use].payer_types == frozenset({"medicare"}), use
    assert {
        pt: bundled.payer(pt).distinct_modifier
        for pt in ("medicare", "medicaid", "commercial", "self-pay")
    } == {"medicare": "XU", "medicaid": "59", "commercial": "59", "self-pay": "59"}
    assert [
        pt for pt in ("medicare", "medicaid", "commercial", "self-pay") if bundled.payer(pt).jw_jz
    ] == ["medicare"]


def test_payers_csv_names_no_modifier():
    header = (MAPPINGS / "payers.csv").read_text().splitlines()[0].split(",")
    assert header == [
        "payer_type",
        "requires_ndc",
        "pays_99211_with_injection",
        "mue_96372",
        "source",
    ]


def _same_day_pair(rules, payer="medicare"):
    first = admin(id="ma1", effectiveDateTime="2026-10-05T09:30:00-05:00")
    second = admin(
        id="ma2",
        effectiveDateTime="2026-10-05T09:45:00-05:00",
        medicationCodeableConcept=ENOXAPARIN_40,
        dosage=dosage(dose=dose(40, "mg")),
    )
    return decide_all([first, second], Context(world(payer=payer)), rules)


def test_the_distinct_procedure_modifier_comes_from_the_table(mappings):
    _edit(mappings, "XU,Unusual", "XS,Unusual")
    rules = load_rules(mappings)
    assert rules.payer("medicare").distinct_modifier == "XS"
    later = next(d for d in _same_day_pair(rules) if d.administration.endswith("/ma2"))
    assert line(later, "administration").modifiers == ("XS",)


def test_modifier_25_in_the_e_m_gap_comes_from_the_table(mappings):
    _edit(
        mappings, '25,"Significant', '57,"Significant'
    )  # any two-digit code: the gap names the row's
    w = replace_resource(
        world(), "Encounter", type=[{"coding": [{"system": CPT, "code": "99213"}]}]
    )
    d = decide(admin(), Context(w), load_rules(mappings))
    assert "put modifier 57 on the E/M" in gap(d, "em-same-day").message


def test_jw_and_jz_go_on_the_payer_types_their_rows_name(mappings):
    _edit(mappings, "waste-line,waste,medicare,", "waste-line,waste,medicare commercial,")
    _edit(
        mappings, "nothing-discarded,drug,medicare,", "nothing-discarded,drug,medicare commercial,"
    )
    rules = load_rules(mappings)
    assert (rules.payer("commercial").jw_jz, rules.payer("medicaid").jw_jz) == (True, False)


@pytest.mark.parametrize(
    "old,new,message",
    [
        (
            "waste-line,waste,medicare,",
            "waste-line,waste,martian,",
            "column 'payer_types' is 'martian'",
        ),
        (
            "excluded-service,administration drug,medicare,",
            "excluded-service,administration drug,all,",
            "the engine applies excluded-service on Medicare claims only",
        ),
        ("em-separate,em,all,", "em-separate,em,medicare,", "payer_types 'all'"),
        ("em-separate,em,", "em-separate,drug,", "modifier 25 goes on the practice's E/M"),
        (
            "distinct-procedure,administration,medicaid commercial self-pay,",
            "distinct-procedure,administration,medicaid commercial self-pay medicare,",
            "a second distinct-procedure modifier for payer type 'medicare'",
        ),
        ("XU,Unusual", "JW,Unusual", "a distinct-procedure modifier is one of 59, XE, XP, XS, XU"),
    ],
)
def test_a_broken_modifier_row_of_the_new_uses_is_reported_with_file_and_row(
    mappings, old, new, message
):
    row = _edit(mappings, old, new)
    with pytest.raises(MappingError) as err:
        load_rules(mappings)
    assert err.value.file == "modifiers.csv" and err.value.row == row and message in str(err.value)


def test_a_payer_type_without_a_distinct_procedure_row_is_an_error_at_load(mappings):
    _edit(
        mappings,
        "distinct-procedure,administration,medicaid commercial self-pay,",
        "distinct-procedure,administration,medicaid commercial,",
    )
    with pytest.raises(MappingError) as err:
        load_rules(mappings)
    assert (
        err.value.file == "modifiers.csv"
        and "no distinct-procedure row for payer type 'self-pay'" in str(err.value)
    )


def test_jw_without_jz_for_a_payer_type_is_an_error_at_load(mappings):
    _edit(mappings, "waste-line,waste,medicare,", "waste-line,waste,medicare medicaid,")
    with pytest.raises(MappingError) as err:
        load_rules(mappings)
    assert err.value.file == "modifiers.csv" and "same payer_types" in str(err.value)
