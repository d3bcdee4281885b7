"""Synthea 3.3 (fixtures/synthea): the drugs Synthea gives are mapped, and no
anti-neoplastic is held or billed as 96372 (chemotherapy administration codes instead)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.builders import rules
from tests.realworld.measure import measure

SYNTHEA = Path(__file__).resolve().parents[2] / "fixtures" / "synthea"


@pytest.fixture(scope="module", params=["bulk", "bundles"])
def report(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"drugs-{request.param}")
    figures = measure(SYNTHEA / request.param, keep=out)
    rows = json.loads((out / "report.json").read_text(encoding="utf-8"))["administrations"]
    return request.param, figures, rows


def test_unmapped_drugs_are_under_5_percent_of_injectable_administrations(report):
    name, figures, rows = report
    injectable = figures["dose_forms"]["injectable"]
    unmapped = sum(
        1
        for r in rows
        if r["hcpcs"] == "J3490" or any(g["code"] == "unmapped-medication" for g in r["gaps"])
    )
    assert injectable > 0 and unmapped / injectable < 0.05, (name, unmapped, injectable)
    if name == "bulk":  # epoetin alfa, the corpus' most given drug, is J0885 by code
        assert sum(1 for r in rows if r["hcpcs"] == "J0885") == 2365


def test_no_antineoplastic_is_held_or_billed_as_96372(report):
    name, _, rows = report
    drugs = rules().drugs
    chemo = [
        r for r in rows if r["hcpcs"] and drugs[r["hcpcs"]].drug_class.startswith("antineoplastic")
    ]
    assert chemo, name  # the corpus gives oxaliplatin, doxorubicin, docetaxel, leuprolide...
    assert [r["procedure"] for r in chemo if r["procedure"] == "96372"] == [], name
    assert {r["procedure"] for r in chemo} <= {"96401", "96402", "96413", "96409", None}, name
