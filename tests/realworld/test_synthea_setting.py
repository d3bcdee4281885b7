"""Synthea 3.3 (fixtures/synthea/bulk, data this project did not write): the place of service comes
from the place. Synthea's encounters name a Location with no type and a serviceProvider typed only
'prov' (HL7 organization-type: says nothing of the place), so an ambulatory visit there is not known
to be an office; its inpatient stays are the hospital's; and with no route documented anywhere, no
chemotherapy administration code is asserted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.realworld.measure import measure

BULK = Path(__file__).resolve().parents[2] / "fixtures" / "synthea" / "bulk"


@pytest.fixture(scope="module")
def entries(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthea-setting")
    measure(BULK, keep=out)
    return json.loads((out / "report.json").read_text(encoding="utf-8"))["administrations"]


def test_pos_11_only_where_something_says_the_place_is_an_office(entries):
    office = [e for e in entries if e["place_of_service"] == "11"]
    for e in office:
        assert e["basis"]["place_of_service"]["from"] in ("record", "rule", "practice"), e[
            "administration"
        ]
    # nothing in Synthea says so: its ambulatory visits are held for the place, not billed as office
    assert office == []
    unknown = [e for e in entries if any(g["code"] == "unknown-setting" for g in e["gaps"])]
    assert unknown and all(e["place_of_service"] is None for e in unknown)
    assert all(e["basis"]["place_of_service"]["from"] == "unknown" for e in unknown)


def test_inpatient_and_emergency_doses_get_no_code_of_ours(entries):
    facility = [e for e in entries if e["place_of_service"] in ("21", "22", "23")]
    assert facility  # Synthea has inpatient and emergency encounters with administrations
    for e in facility:
        assert e["outcome"] == "not-billable" and e["claim"] is None, e["administration"]
        assert e["procedure"] in (None, "96372") and not e["additional_procedures"]
    assert all(e["procedure"] is None for e in facility if e["place_of_service"] == "21")


def test_96401_only_with_an_sc_or_im_route(entries):
    """Synthea documents no route: its anti-neoplastics (doxorubicin, oxaliplatin: IV drugs) are
    held for the route, none is a 96401."""
    assert not [e for e in entries if e["procedure"] in ("96401", "96402")]
    chemo = [
        e
        for e in entries
        if any(g["code"] == "antineoplastic" for g in e["gaps"])
        and e["place_of_service"] not in ("21", "22", "23")
    ]
    assert chemo
    for e in chemo:
        assert e["outcome"] == "held" and e["procedure"] is None, e["administration"]
        assert "missing-route" in {g["code"] for g in e["gaps"]}
