"""Real-world shapes: the decision a certified coder would sign, on data shaped like vendor,
implementation-guide and FHIR-specification examples (``fixtures/realworld``; README there).

``fixtures/realworld/expected.json`` holds the target decision of every administration. Each
(case, administration) in ``ENFORCED`` must match it field by field: outcome, procedure, drug
code and units, modifiers, payer type, service date, place of service, gap codes (and whether
a Task is opened). The consent rule is project configuration, not a coder's call (expected.json
'assumptions'), so ``missing-consent`` is left out of the comparison. A target not yet in
``ENFORCED`` is work still to do; ``test_enforced_targets_are_all_known`` keeps the
list honest, and the last test reports how many targets hold today.

A case whose clinic makes a configuration choice the data cannot carry (its time zone, when every
instant is in UTC and no resource names a zone) has it in ``<case>.config.toml`` beside the case
folder, read as ``--config`` would read it; every other case runs with the default ``Config()``.
The file sits outside the folder: an EHR's export holds no clinic configuration.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_injection import Config, load_config, load_rules, run_folder

ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "realworld"
EXPECTED = json.loads((ROOT / "expected.json").read_text(encoding="utf-8"))["cases"]
IGNORED_GAPS = {"missing-consent"}

#: (case, administration id) whose target decision holds and must keep holding.
ENFORCED: set[tuple[str, str]] = {
    ("oracle-im-contained-utc", "198800301"),
    ("oracle-im-contained-utc", "198800302"),
    ("epic-im-office", "eRwFixtureMA.01eF3"),
    ("route-text-only", "rw-rtx-ma-1"),
    ("route-text-only", "rw-rtx-ma-2"),
    ("spec-iv-infusion-rate", "rw-ivr-ma-1"),
    ("oracle-iv-piggyback-2h", "198800501"),
    ("spec-iv-push", "rw-ivp-ma-1"),
    ("snomed-qualifier-routes", "rw-sqr-ma-1"),
    ("snomed-qualifier-routes", "rw-sqr-ma-2"),
    ("no-route-dose-forms", "rw-syn-ma-1"),
    ("no-route-dose-forms", "rw-syn-ma-2"),
    ("no-route-dose-forms", "rw-syn-ma-3"),
    ("no-route-dose-forms", "rw-syn-ma-4"),
    ("no-route-dose-forms", "rw-syn-ma-5"),
    ("no-route-dose-forms", "rw-syn-ma-6"),
    ("coverage-forms", "rw-cov-ma-1"),
    ("coverage-forms", "rw-cov-ma-2"),
    ("coverage-forms", "rw-cov-ma-3"),
    ("coverage-forms", "rw-cov-ma-4"),
    ("coverage-forms", "rw-cov-ma-5"),
    ("coverage-forms", "rw-cov-ma-6"),
    ("coverage-forms", "rw-cov-ma-7"),
    ("encounter-class-forms", "rw-ecl-ma-1"),
    ("encounter-class-forms", "rw-ecl-ma-2"),
    ("encounter-class-forms", "rw-ecl-ma-3"),
    ("encounter-class-forms", "rw-ecl-ma-4"),
    ("bundle-types", "rw-col-ma-1"),
    ("bundle-types", "rw-ss-ma-1"),
    ("bundle-types", "rw-bat-ma-1"),
    ("export-folder-full", "rw-exp-ma-1"),
    ("transaction-bundle-urnuuid", "bb3e6767-2f26-588a-a477-048edde74516"),
    ("conditional-references", "rw-cnd-ma-1"),
    ("export-folder-full", "rw-exp-ma-2"),
    ("spec-iv-push-shift-period", "rw-ivs-ma-1"),
    ("ig-test-cases-nested", "rw-igt-ma-1"),
    ("ig-test-cases-nested", "rw-igt-ma-2"),
}


def case_config(case: str) -> Config:
    """The clinic's configuration for a case: ``<case>.config.toml`` beside it, else the defaults."""
    path = ROOT / f"{case}.config.toml"
    return load_config(path) if path.is_file() else Config()


def _targets() -> list[tuple[str, str]]:
    return [
        (case, a["administration"].split("/", 1)[1])
        for case, body in EXPECTED.items()
        for a in body["administrations"]
    ]


@pytest.fixture(scope="module")
def decided(tmp_path_factory) -> dict[str, dict]:
    """Each case through the offline job: report entries by administration id, and the Tasks."""
    rules, out = load_rules(), {}
    for case in EXPECTED:
        target = tmp_path_factory.mktemp(case)
        run_folder(ROOT / case, target, rules, case_config(case), "2026-11-30T12:00:00Z")
        report = json.loads((target / "report.json").read_text(encoding="utf-8"))
        tasks = {
            json.loads(line)["focus"]["reference"]
            for line in (target / "Task.ndjson").read_text(encoding="utf-8").splitlines()
            if line
        }
        out[case] = {
            "entries": {e["administration"]: e for e in report["administrations"]},
            "tasks": tasks,
            "errors": report["errors"],
        }
    return out


def _as_decided(entry: dict | None, has_task: bool) -> dict:
    if entry is None:
        return {"outcome": "(not in the report)"}
    # a Task opened only for an ignored gap is not one the coder's target is about
    actionable = any(
        g["severity"] in ("error", "warning") and g["code"] not in IGNORED_GAPS
        for g in entry.get("gaps", [])
    )
    return {
        "outcome": entry["outcome"],
        "procedure": entry.get("procedure"),
        "hcpcs": entry.get("hcpcs"),
        "units": entry.get("units"),
        "payer_type": entry.get("payer_type"),
        "service_date": entry.get("service_date"),
        "place_of_service": entry.get("place_of_service"),
        "modifiers": {k: sorted(v) for k, v in (entry.get("modifiers") or {}).items()},
        "gaps": sorted(g["code"] for g in entry.get("gaps", []) if g["code"] not in IGNORED_GAPS),
        "task": has_task and actionable,
    }


def _as_expected(target: dict) -> dict:
    return {
        "outcome": target["outcome"],
        "procedure": target["procedure"],
        "hcpcs": target["hcpcs"],
        "units": target["units"],
        "payer_type": target["payer_type"],
        "service_date": target["service_date"],
        "place_of_service": target["place_of_service"],
        "modifiers": {k: sorted(v) for k, v in (target.get("modifiers") or {}).items()},
        "gaps": sorted(g["code"] for g in target["gaps"] if g["code"] not in IGNORED_GAPS),
        "task": target["task"],
    }


def _compare(decided: dict, case: str, admin_id: str) -> tuple[dict, dict]:
    target = next(
        a
        for a in EXPECTED[case]["administrations"]
        if a["administration"] == f"MedicationAdministration/{admin_id}"
    )
    got = decided[case]
    ref = target["administration"]
    mine = _as_decided(got["entries"].get(ref), ref in got["tasks"])
    want = _as_expected(target)
    if want["outcome"] in ("not-billable", "void") or mine["outcome"] in ("not-billable", "void"):
        # nothing is billed: what the report says of drug codes and modifiers is not a coder's decision
        for key in ("hcpcs", "units", "modifiers", "payer_type", "place_of_service"):
            mine.pop(key, None)
            want.pop(key, None)
    return mine, want


@pytest.mark.parametrize("case,admin_id", sorted(ENFORCED))
def test_target_decision_holds(decided, case, admin_id):
    mine, want = _compare(decided, case, admin_id)
    assert mine == want, f"{case} {admin_id}: {EXPECTED[case]}"


def test_enforced_targets_are_all_known():
    assert set(_targets()) >= ENFORCED


def test_progress_on_the_real_world_targets(decided, capsys):
    """Reports (never fails on) the targets not enforced yet, so the work left is visible in CI logs."""
    holding = [t for t in _targets() if _compare(decided, *t)[0] == _compare(decided, *t)[1]]
    missing = sorted(set(_targets()) - set(holding))
    with capsys.disabled():
        print(
            f"\nreal-world targets holding: {len(holding)} of {len(_targets())}; "
            f"not yet: {', '.join(f'{c}/{a}' for c, a in missing) or 'none'}"
        )
    assert set(holding) >= ENFORCED
