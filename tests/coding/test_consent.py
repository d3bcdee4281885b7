"""Consent is organisational policy, not a payer rule: info by default, never a Task by itself.

No payer requires written consent for 96372 (the CPT descriptor; the CMS drug and incident-to rules,
IOM 100-02 ch.15 s50 and s60, name no consent requirement): a practice whose policy wants it worked
raises it with ``[severity] missing-consent``. Its message says which Consents the patient has and why
none counts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_injection import Config, build_task
from fhir_injection.jobs.offline import run_folder
from tests.builders import CREATED, admin, decide_one, gap, replace_resource, rules, world


def write_folder(folder: Path, resources: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, list] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(r)
    for rtype, items in by_type.items():
        (folder / f"{rtype}.ndjson").write_text("".join(json.dumps(r) + "\n" for r in items))
    return folder


def test_the_catalog_says_info_with_its_reason():
    consent = rules().gaps["missing-consent"]
    assert consent.severity == "info"
    assert "No payer requires written consent for 96372" in consent.definition


def test_consent_alone_bills_and_opens_no_task():
    d = decide_one(admin(), world(consent=False))
    assert d.outcome == "claim"
    assert [g.code for g in d.gaps] == ["missing-consent"] and d.actionable_gaps == ()
    assert build_task(d, Config(), rules(), CREATED) is None


def test_a_practice_that_wants_consent_worked_gets_a_task():
    config = Config(severity={"missing-consent": "warning"})
    d = decide_one(admin(), world(consent=False), config)
    task = build_task(d, config, rules(), CREATED)
    assert task is not None
    assert [i["type"]["coding"][0]["code"] for i in task["input"]] == ["missing-consent"]


def test_a_folder_run_writes_no_task_for_consent_alone_and_still_reports_it(tmp_path):
    resources = [*world(consent=False), admin("ma1")]
    out = tmp_path / "out"
    summary = run_folder(
        write_folder(tmp_path / "in", resources), out, rules(), Config(), CREATED
    ).summary
    assert summary["tasks"] == 0 and summary["outcomes"]["claim"] == 1
    assert summary["gaps"] == {"missing-consent": 1}
    assert (out / "Task.ndjson").read_text() == ""
    entry = json.loads((out / "report.json").read_text())["administrations"][0]
    assert entry["gaps"][0]["code"] == "missing-consent" and entry["task"] is None


def test_with_no_consent_the_message_says_the_patient_has_none():
    message = gap(decide_one(admin(), world(consent=False)), "missing-consent").message
    assert message.startswith("The patient has no Consent resource. ")


@pytest.mark.parametrize(
    "change,said",
    [
        ({"status": "inactive"}, "Consent/consent-p1 has status inactive"),
        ({"provision": {"type": "deny"}}, "Consent/consent-p1 denies (provision.type deny)"),
        (
            {"provision": {"period": {"start": "2027-01-01"}}},
            "Consent/consent-p1 starts after the administration",
        ),
        (
            {"provision": {"period": {"start": "2025-01-01", "end": "2025-12-31"}}},
            "Consent/consent-p1 ends before the administration",
        ),
        (
            {"dateTime": "2026-12-01"},
            "Consent/consent-p1 was given (2026-12-01) after the administration",
        ),
    ],
)
def test_the_message_says_which_consent_is_there_and_why_it_does_not_count(change, said):
    d = decide_one(admin(), replace_resource(world(), "Consent", **change))
    message = gap(d, "missing-consent").message
    assert message.startswith(
        "No active, permitting Consent covers the administration: " + said + ". "
    )
    assert "Testperson" not in message and "MEMBER-SECRET" not in message  # resource ids only


def test_consent_is_asked_only_of_a_96372():
    # a vaccine is billed under its own administration code: it keeps only its own gaps
    flu = admin(
        medicationCodeableConcept={
            "coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]
        }
    )
    d = decide_one(flu, world(consent=False))
    assert d.outcome == "not-96372" and "missing-consent" not in [g.code for g in d.gaps]
    assert rules().gaps["missing-consent"].raised_for == "96372"
