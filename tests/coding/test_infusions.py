"""IV push or infusion (CPT hydration, therapeutic and chemotherapy administration codes): a rate, a duration over 15 minutes or an infusion method
means an infusion; therapeutic (96365/96366), hydration (96360/96361) or chemotherapy (96413/96415);
a push (96374, chemotherapy 96409) only for 15 minutes or less. Codes and times: mappings/infusions.csv.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fhir_injection import MappingError, load_rules
from fhir_injection.decision.infusion import additional_hours
from tests.builders import (
    RXNORM,
    SNOMED,
    V3_ROUTE,
    admin,
    decide_one,
    dosage,
    dose,
    gap,
    gap_codes,
    route,
)

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
IV = route(SNOMED, "47625008")
V2_METHOD = "http://terminology.hl7.org/CodeSystem/v2-0165"
ORACLE_INFUSE_OVER = "https://fhir-ehr.cerner.com/r4/StructureDefinition/infuse-over-time"
CEFTRIAXONE = {
    "coding": [{"system": RXNORM, "code": "1665021", "display": "ceftriaxone 1000 MG Injection"}]
}
BORTEZOMIB = {"coding": [{"system": RXNORM, "code": "358258", "display": "bortezomib"}]}
SALINE = {
    "coding": [
        {
            "system": RXNORM,
            "code": "313002",
            "display": "Sodium Chloride 9 MG/ML Injectable Solution",
        }
    ]
}


def iv_admin(minutes: int | None = None, medication=CEFTRIAXONE, **dosage_changes) -> dict:
    """An IV administration of ``medication`` (ceftriaxone 1 g), over ``minutes`` when given."""
    changes = {"medicationCodeableConcept": medication}
    if minutes is not None:
        changes["effectiveDateTime"] = None
        end_h, end_m = divmod(30 + minutes, 60)
        changes["effectivePeriod"] = {
            "start": "2026-10-05T09:30:00-05:00",
            "end": f"2026-10-05T{9 + end_h:02d}:{end_m:02d}:00-05:00",
        }
    return admin(dosage=dosage(**{"route": IV, "dose": dose(1, "g"), **dosage_changes}), **changes)


def addons(d) -> list[tuple[str, int]]:
    return list(d.additional)


# ----------------------------------------------------------------------------- push or infusion


@pytest.mark.parametrize(
    "minutes,procedure", [(2, "96374"), (15, "96374"), (16, "96365"), (35, "96365"), (60, "96365")]
)
def test_the_clock_decides_push_or_infusion(minutes, procedure):
    d = decide_one(iv_admin(minutes))
    assert (d.outcome, d.procedure, addons(d)) == ("not-96372", procedure, [])
    assert d.drug == "J0696" and d.units == 4  # the drug line is kept: 1 g / 250 mg


def test_a_push_method_over_more_than_15_minutes_is_an_infusion():
    d = decide_one(iv_admin(20, method={"coding": [{"system": SNOMED, "code": "420620005"}]}))
    assert d.procedure == "96365"


def test_an_infusion_of_15_minutes_or_less_is_reported_as_a_push():
    d = decide_one(
        iv_admin(10, method={"text": "IV piggyback"}, rateQuantity={"value": 300, "code": "mL/h"})
    )
    assert d.procedure == "96374"


@pytest.mark.parametrize(
    "changes",
    [
        {"rateQuantity": {"value": 100, "unit": "mL/h", "code": "mL/h"}},
        {
            "rateRatio": {
                "numerator": {"value": 50, "code": "mL"},
                "denominator": {"value": 1, "code": "h"},
            }
        },
        {"method": {"text": "Continuous infusion"}},
        {"method": {"text": "IVPB"}},
        {"method": {"coding": [{"system": V2_METHOD, "code": "IVPB"}]}},
        {"route": {"coding": IV["coding"], "text": "IV Piggyback"}},
        {"route": route(V3_ROUTE, "IVCI")},
    ],
)
def test_a_rate_or_an_infusion_method_without_a_duration_is_an_infusion_with_a_warning(changes):
    d = decide_one(iv_admin(None, **changes))
    assert (d.outcome, d.procedure, addons(d)) == ("not-96372", "96365", [])
    assert gap(d, "infusion-time-unknown").severity == "warning"
    assert d.actionable_gaps  # a Task: the coder needs the stop time for add-on hours


@pytest.mark.parametrize(
    "changes",
    [
        {"method": {"coding": [{"system": SNOMED, "code": "420620005"}]}},
        {"method": {"text": "IV Push"}},
        {"route": route(V3_ROUTE, "IVPUSH")},
        {},
    ],
)
def test_no_rate_no_duration_and_no_infusion_method_is_a_push(changes):
    d = decide_one(iv_admin(None, **changes))
    assert (d.procedure, gap_codes(d)) == ("96374", ["route-not-sc-im"])


def test_the_infuse_over_time_extension_gives_the_duration():
    a = iv_admin(None, rateQuantity={"value": 125, "code": "mL/h"})
    a["extension"] = [
        {
            "url": ORACLE_INFUSE_OVER,
            "valueQuantity": {"value": 120.0, "unit": "minutes", "code": "min"},
        }
    ]
    d = decide_one(a)
    assert (d.procedure, addons(d)) == ("96365", [("96366", 1)])
    assert "infusion-time-unknown" not in gap_codes(d)


def test_volume_over_rate_gives_the_duration():
    a = iv_admin(None, medication=SALINE, rateQuantity={"value": 250, "code": "mL/h"})
    a["dosage"]["dose"] = dose(1000, "mL")  # 4 hours
    d = decide_one(a)
    assert (d.procedure, addons(d)) == ("96360", [("96361", 3)])


# ----------------------------------------------------------------------------- what runs in


def test_hydration_fluid_is_96360_with_no_drug_line():
    d = decide_one(iv_admin(45, medication=SALINE))
    assert (d.outcome, d.procedure, d.drug, d.units) == ("not-96372", "96360", None, None)
    assert gap_codes(d) == ["route-not-sc-im"]  # no unmapped-medication: the fluid is known


def test_kcl_in_saline_named_only_in_text_is_hydration():
    med = {"text": "potassium chloride 20 mEq + Sodium Chloride 0.9% 250 mL"}
    d = decide_one(iv_admin(120, medication=med))
    assert (d.procedure, addons(d)) == ("96360", [("96361", 1)])


def test_a_drug_in_saline_is_not_hydration():
    d = decide_one(iv_admin(45, medication={"text": "ceftriaxone 1 g in NS 50 mL"}))
    assert d.procedure == "96365"


def test_hydration_of_30_minutes_or_less_is_not_reported():
    d = decide_one(iv_admin(30, medication=SALINE))
    assert (d.outcome, d.procedure, d.lines) == ("not-billable", None, ())
    assert (
        gap_codes(d) == ["route-not-sc-im"] and "not reported" in gap(d, "route-not-sc-im").message
    )


def test_hydration_needs_31_minutes():
    assert decide_one(iv_admin(31, medication=SALINE)).procedure == "96360"


@pytest.mark.parametrize(
    "minutes,procedure,extra",
    [(10, "96409", []), (60, "96413", []), (150, "96413", [("96415", 1)])],
)
def test_an_antineoplastic_drug_gets_the_chemotherapy_codes(minutes, procedure, extra):
    a = iv_admin(minutes, medication=BORTEZOMIB)
    a["dosage"]["dose"] = dose(2.6, "mg")
    d = decide_one(a)
    assert (d.outcome, d.procedure, addons(d)) == ("not-96372", procedure, extra)
    assert (d.drug, d.units) == ("J9041", 26)


# ----------------------------------------------------------------------------- add-on hours


@pytest.mark.parametrize(
    "minutes,hours",
    [(30, 0), (60, 0), (90, 0), (91, 1), (120, 1), (150, 1), (151, 2), (181, 2), (211, 3)],
)
def test_an_added_hour_counts_past_30_minutes_beyond_the_hour(minutes, hours):
    assert additional_hours(minutes, 30) == hours


def test_a_two_hour_infusion_shows_one_added_hour_in_the_report():
    from fhir_injection.sinks.report import decision_entry

    d = decide_one(iv_admin(120))
    entry = decision_entry(d, None, None)
    assert (entry["procedure"], entry["additional_procedures"]) == (
        "96365",
        [{"code": "96366", "units": 1}],
    )
    assert decision_entry(decide_one(), None, None)["additional_procedures"] == []


# ----------------------------------------------------------------------------- the tables


def test_the_shipped_infusion_table():
    rules = load_rules()
    got = {k: (v.code, v.addon_code) for k, v in rules.infusions.items()}
    assert got == {
        ("therapeutic", "push"): ("96374", None),
        ("therapeutic", "infusion"): ("96365", "96366"),
        ("hydration", "infusion"): ("96360", "96361"),
        ("chemotherapy", "push"): ("96409", None),
        ("chemotherapy", "infusion"): ("96413", "96415"),
    }
    assert rules.infusions[("therapeutic", "push")].max_minutes == 15
    assert rules.infusions[("hydration", "infusion")].min_minutes == 31


@pytest.fixture
def mappings(tmp_path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    return target


def _edit(path: Path, old: str, new: str) -> int:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return next(
        n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if new in line
    )


@pytest.mark.parametrize(
    "name,old,new,message",
    [
        ("infusions.csv", "hydration,infusion,96360", "hydration,drip,96360", "technique"),
        (
            "infusions.csv",
            'Intravenous infusion, hydration; initial, 31 minutes to 1 hour",31,',
            'Intravenous infusion, hydration; initial, 31 minutes to 1 hour",half an hour,',
            "min_minutes",
        ),
        ("infusions.csv", ",96366,30,", ",96366,,", "addon"),
        (
            "iv_methods.csv",
            "method-text,,,drip,infusion",
            "method-text,,,drip,trickle",
            "technique",
        ),
        (
            "iv_methods.csv",
            "method-code,http://terminology.hl7.org/CodeSystem/v2-0165,IVP,,push",
            "method-code,http://terminology.hl7.org/CodeSystem/v2-0165,,,push",
            "code",
        ),
        ("hydration.csv", "name,,,saline,", "fluid,,,saline,", "kind"),
    ],
)
def test_a_broken_row_names_file_and_row(mappings, name, old, new, message):
    row = _edit(mappings / name, old, new)
    with pytest.raises(MappingError) as info:
        load_rules(mappings)
    assert (info.value.file, info.value.row) == (name, row)
    assert message in str(info.value)


def test_the_therapeutic_rows_are_required(mappings):
    path = mappings / "infusions.csv"
    path.write_text(
        "\n".join(
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if not line.startswith("therapeutic,push")
        )
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(MappingError, match="therapeutic push") as info:
        load_rules(mappings)
    assert info.value.file == "infusions.csv"
