"""The bundled demo clinic, run offline, gives what its generator meant for every administration.

fixtures/demo-expected.json is written by fixtures/generate_demo.py from how it built each
scenario, not from running the engine, so a rule that drifts shows up here by name.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.task import Task

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = json.loads((ROOT / "fixtures" / "demo-expected.json").read_text())


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-out")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "fhir_injection",
            "sync",
            "--source",
            str(ROOT / "fixtures" / "demo"),
            "--target",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    report = json.loads((out / "report.json").read_text())
    claims = [json.loads(line) for line in (out / "Claim.ndjson").read_text().splitlines()]
    tasks = [json.loads(line) for line in (out / "Task.ndjson").read_text().splitlines()]
    return run, report, claims, tasks


def test_the_demo_is_big_enough_and_covers_every_outcome_and_gap(rules):
    admins = EXPECTED["administrations"]
    assert len(admins) >= 300
    assert len({a for a in admins}) == len(admins)
    assert EXPECTED["resource_counts"]["Patient"] >= 80
    assert set(EXPECTED["counts"]) == {
        "claim",
        "held",
        "not-96372",
        "not-billable",
        "void",
        "past-filing-limit",
    }
    assert set(EXPECTED["gap_counts"]) == set(rules.gaps)


def test_every_administration_gets_its_intended_outcome(demo):
    run, report, _, _ = demo
    assert run.returncode == 0, run.stderr[-2000:]
    got = {a["administration"]: a for a in report["administrations"]}
    assert set(got) == set(EXPECTED["administrations"])
    wrong = []
    for ref, want in EXPECTED["administrations"].items():
        g = got[ref]
        seen = (
            g["outcome"],
            g["procedure"],
            sorted(x["code"] for x in g["gaps"]),
            g["hcpcs"],
            g["units"],
            g["modifiers"],
        )
        meant = (
            want["outcome"],
            want["procedure"],
            want["gaps"],
            want["hcpcs"],
            want["units"],
            want["modifiers"],
        )
        if "additional_procedures" in want:  # IV infusions: the add-on hour codes (96366, 96361)
            seen += (g["additional_procedures"],)
            meant += (want["additional_procedures"],)
        seen += (g["jw_units"],)  # the JW line's units (None: no JW line)
        meant += (want["jw_units"],)
        for key in ("rendering", "diagnoses"):  # the rendering provider, the diagnosis order
            if key in want:
                seen += (g[key],)
                meant += (want[key],)
        if seen != meant:
            wrong.append((ref, want.get("scenario"), meant, seen))
    assert wrong == []


def test_the_ndc_unit_cases_carry_their_ndc_quantity_and_unit(demo):
    """NCPDP billing units on the Claim's NDC detail (a powder vial is counted in vials, UN)."""
    _, _report, claims, _ = demo
    by_admin = {c["supportingInfo"][0]["valueReference"]["reference"]: c for c in claims}
    cases = {
        ref: want["ndc_detail"]
        for ref, want in EXPECTED["administrations"].items()
        if "ndc_detail" in want
    }
    assert cases
    for ref, (quantity, unit) in cases.items():
        [detail] = [d for item in by_admin[ref]["item"] for d in item.get("detail", [])]
        assert detail["quantity"] == {"value": quantity, "unit": unit}


def test_jw_lines_are_claim_items_of_their_own(demo):
    """The discarded units of a single-dose container (CMS JW modifier policy): the same code, modifier JW, its units."""
    _, _report, claims, _ = demo
    by_admin = {c["supportingInfo"][0]["valueReference"]["reference"]: c for c in claims}
    with_jw = {
        ref: want
        for ref, want in EXPECTED["administrations"].items()
        if want["jw_units"] and want["outcome"] != "past-filing-limit"
    }  # past its limit: no Claim
    assert with_jw
    for ref, want in with_jw.items():
        items = by_admin[ref]["item"]
        assert len(items) == 3
        drug, waste = items[1], items[2]
        assert (
            waste["productOrService"]["coding"][0]["code"]
            == drug["productOrService"]["coding"][0]["code"]
        )
        assert [m["coding"][0]["code"] for m in waste["modifier"]] == ["JW"]
        assert waste["quantity"] == {"value": want["jw_units"]}


def test_outcome_counts_and_the_summary_agree(demo):
    _, report, claims, tasks = demo
    counts = Counter(a["outcome"] for a in report["administrations"])
    assert dict(counts) == EXPECTED["counts"]
    assert report["summary"]["outcomes"] == EXPECTED["counts"]
    assert report["summary"]["claims"] == dict(sorted(Counter(c["status"] for c in claims).items()))
    assert report["summary"]["tasks"] == len(tasks)
    assert report["errors"] == []


def test_claims_match_outcomes_and_are_valid_fhir(demo):
    _, report, claims, tasks = demo
    by_admin = {a["administration"]: a for a in report["administrations"]}
    for claim in claims:
        Claim.model_validate(claim)
        admin = by_admin[claim["supportingInfo"][0]["valueReference"]["reference"]]
        assert claim["status"] == {"claim": "active", "held": "draft"}[admin["outcome"]]
        assert admin["claim"] == f"Claim/{claim['id']}"
    for task in tasks:
        Task.model_validate(task)
        admin = by_admin[task["focus"]["reference"]]
        assert any(g["severity"] != "info" for g in admin["gaps"])
    # every billable administration has an active Claim
    assert sum(a["outcome"] == "claim" for a in report["administrations"]) == sum(
        c["status"] == "active" for c in claims
    )


def test_the_terminal_summary_is_what_a_billing_lead_reads(demo):
    run, _report, _, _ = demo
    first = run.stdout.splitlines()[0]
    c = EXPECTED["counts"]
    assert first == (
        f"{len(EXPECTED['administrations'])} administrations: {c['claim']} claim, {c['held']} held, "
        f"{c['not-96372']} not-96372, {c['not-billable']} not-billable, {c['void']} void, "
        f"{c['past-filing-limit']} past the filing limit"
    )
    assert "Estimated: $" in run.stdout and "Top gaps:" in run.stdout
