"""Synthea 3.3 output (fixtures/synthea; README there: version, seed, command), decided as a billing
team would want: data this project did not write.

The figures come from ``tests/realworld/measure.py`` (the same script docs/real-world.md's
table is made with). What is pinned is what real data must give: nothing that cannot be an
injection is held or billed as 96372, no outcome ``claim`` without a Claim, no Task where nobody can
act for billing, an export folder's own files are not record errors, and a per-patient Bundle's
``urn:uuid:`` and conditional references resolve.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.realworld.measure import NON_INJECTION_FORMS, measure

SYNTHEA = Path(__file__).resolve().parents[2] / "fixtures" / "synthea"


@pytest.fixture(scope="module", params=["bulk", "bundles"])
def figures(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    return request.param, measure(SYNTHEA / request.param, keep=out), out


def test_no_product_that_cannot_be_an_injection_is_held_or_billed_as_96372(figures):
    name, f, _ = figures
    assert f["dose_forms"].get("non-injection", 0) > 0, name  # the corpus does hold such products
    assert f["non_injection_as_96372"] == 0 and f["non_injection_held_usd"] == 0.0, name
    # each one is told apart by its dose form (implants and IUDs too: 11981 / 58300)
    assert f["gaps"].get("dose-form-not-injectable", 0) == f["dose_forms"]["non-injection"], name


def test_no_claim_outcome_without_a_claim_and_no_record_errors(figures):
    name, f, _ = figures
    assert f["claim_without_claim"] == 0, name
    assert f["record_errors"] == 0 and f["exit_code"] == 0, (name, f["record_error_kinds"])


def test_tasks_only_for_what_a_person_can_act_on(figures):
    """A Task for every held 96372 (it lacks route, dose, coverage...), none for the rest."""
    name, f, out = figures
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    with_task = {e["administration"] for e in report["administrations"] if e["task"]}
    billed = {
        e["administration"]
        for e in report["administrations"]
        if e["outcome"] in ("claim", "held", "not-96372")
        and any(g["severity"] in ("error", "warning") for g in e["gaps"])
    }
    assert with_task == billed, name
    assert f["tasks_per_100"] < 100, name


def test_bundle_references_resolve(figures):
    """Synthea's per-patient Bundles point with urn:uuid: and conditional references: every
    administration finds its patient and encounter."""
    name, f, _ = figures
    assert "missing-patient" not in f["gaps"] and "missing-encounter" not in f["gaps"], name


def test_the_dose_form_list_of_the_measure_is_the_billing_one():
    """The script's own word list is an outside check: it is not read from mappings/."""
    assert "Oral Tablet" in NON_INJECTION_FORMS and "Drug Implant" in NON_INJECTION_FORMS
