"""A Task only where a person can act for billing.

The rule has one owner, ``Decision.actionable_gaps``: the errors and warnings of a service the practice
bills: a 96372 that bills (``claim``) or is blocked (``held``), or another code it bills itself
(``not-96372``: an infusion, an implant, whose drug line needs the same documentation). Both sinks open
Tasks from it (``build_task`` for the folder, the poster's ``_plan_task`` for a server): inpatient,
not given, oral, a duplicate or a void open none. The report still lists every decision with all its gaps, and on a server a
Task that is open and no longer actionable is completed (a void's is cancelled).
"""

from __future__ import annotations

import json

import pytest

from fhir_injection import Config, build_task, run_folder
from fhir_injection.decision.model import Decision, Gap
from tests.builders import (
    CREATED,
    RXNORM,
    V2_ROUTE,
    V3_ROUTE,
    admin,
    decide_many,
    decide_one,
    dosage,
    med,
    route,
    rules,
    world,
)
from tests.fakefhir import instant
from tests.fakesync import batch_entries, sync

NO_SITE = dosage(site=None)  # a warning (missing-site)
NO_DOSE = dosage(dose=None)  # an error (missing-dose)


def task(d):
    return build_task(d, Config(), rules(), CREATED)


def codes(t: dict) -> list[str]:
    return [i["type"]["coding"][0]["code"] for i in t["input"]]


# ----------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(
    "outcome,opens",
    [
        ("claim", True),
        ("held", True),
        ("not-96372", True),
        ("not-billable", False),
        ("void", False),
    ],
)
def test_only_a_billed_decision_has_actionable_gaps(outcome, opens):
    gaps = (
        Gap("missing-site", "warning", "m", "f", "r"),
        Gap("missing-dose", "error", "m", "f", "r"),
        Gap("vaccine", "info", "m", "f", "r"),
    )
    d = Decision("MedicationAdministration/x", None, outcome, None, gaps)
    assert [g.code for g in d.actionable_gaps] == (
        ["missing-site", "missing-dose"] if opens else []
    )


def test_info_gaps_are_never_actionable():
    d = Decision(
        "MedicationAdministration/x",
        None,
        "claim",
        "96372",
        (Gap("em-same-day", "info", "m", "f", "r"),),
    )
    assert d.actionable_gaps == ()


# ----------------------------------------------------------------------------- administrations that open a Task


def test_a_claim_with_a_warning_opens_a_routine_task():
    d = decide_one(admin(dosage=NO_SITE))
    assert d.outcome == "claim"
    t = task(d)
    assert t["priority"] == "routine" and codes(t) == ["missing-site"]


def test_a_held_injection_opens_an_urgent_task():
    d = decide_one(admin(dosage=NO_DOSE))
    assert d.outcome == "held"
    assert task(d)["priority"] == "urgent" and "missing-dose" in codes(task(d))


def test_the_fifth_injection_of_a_day_held_by_the_mue_opens_a_task():
    # products whose container size is known (Medicare's JW/JZ needs it for single-dose drugs)
    drugs = [("1665461", 30), ("1740467", 4), ("3264", 4), ("11248", 1), ("992460", 25)]
    admins = [
        admin(
            id=f"m{i}",
            effectiveDateTime=f"2026-10-05T09:{10 + i}:00-05:00",
            medicationCodeableConcept=med(RXNORM, rx),
            dosage=dosage(dose={"value": amt, "unit": "mg"}),
        )
        for i, (rx, amt) in enumerate(drugs)
    ]
    fifth = decide_many(admins)[-1]
    assert fifth.outcome == "held" and codes(task(fifth)) == ["units-over-mue"]


# ----------------------------------------------------------------------------- administrations that do not


@pytest.mark.parametrize(
    "label,a,w",
    [
        # inpatient: inside the DRG payment, whatever is missing (here the patient: an error)
        ("inpatient", admin(subject=None), world(encounter_class="IMP")),
        ("emergency", admin(subject=None), world(encounter_class="EMER")),
        # a coded oral route: nothing to bill, whatever else is undocumented
        ("oral", admin(dosage=dosage(route=route(V3_ROUTE, "PO"), site=None, dose=None)), world()),
        # a vaccine with no site
        (
            "vaccine",
            admin(
                medicationCodeableConcept=med("http://hl7.org/fhir/sid/cvx", "140"), dosage=NO_SITE
            ),
            world(),
        ),
        # not given
        ("not given", admin(status="not-done", subject=None), world()),
        # no route, and an oral tablet (its dose form)
        (
            "tablet",
            admin(
                medicationCodeableConcept={"text": "Acetaminophen 325 MG Oral Tablet"},
                dosage=dosage(route=None, site=None, dose=None),
                performer=None,
            ),
            world(),
        ),
    ],
)
def test_no_task_where_nobody_can_act_for_billing(label, a, w):
    d = decide_one(a, w)
    assert d.outcome in ("not-96372", "not-billable"), (label, d.outcome)
    assert task(d) is None
    assert d.gaps  # the decision keeps its gaps for the report


def test_another_code_the_practice_bills_opens_a_task_for_what_its_drug_line_lacks():
    """An IV push (96374) with no dose: the J-code's units cannot be counted, so someone must act."""
    d = decide_one(admin(dosage=dosage(route=route(V2_ROUTE, "IV"), dose=None)))
    assert (d.outcome, d.procedure) == ("not-96372", "96374")
    assert codes(task(d)) == ["missing-dose"]


def test_a_void_opens_no_task():
    d = decide_one(admin(status="entered-in-error", dosage=NO_SITE))
    assert d.outcome == "void" and task(d) is None


# ----------------------------------------------------------------------------- the offline job


def _write_folder(path, resources: list[dict]) -> None:
    """A Bulk-style folder of ``resources``, each (type, id) once."""
    by_type: dict[str, dict[str, dict]] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], {}).setdefault(r["id"], r)
    for rtype, items in by_type.items():
        (path / f"{rtype}.ndjson").write_text("".join(json.dumps(r) + "\n" for r in items.values()))


def test_the_offline_job_writes_tasks_only_for_actionable_decisions_and_reports_every_gap(tmp_path):
    resources = (
        world()
        + world(patient="p2", encounter_class="IMP")
        + [
            admin(id="fix-me", dosage=NO_SITE, effectiveDateTime="2026-10-05T09:30:00-05:00"),
            admin(
                id="tablet",
                dosage=dosage(route=None, site=None),
                effectiveDateTime="2026-10-05T09:40:00-05:00",
                medicationCodeableConcept={"text": "Acetaminophen 325 MG Oral Tablet"},
            ),
            admin(
                id="oral",
                dosage=dosage(route=route(V3_ROUTE, "PO"), site=None),
                effectiveDateTime="2026-10-05T09:50:00-05:00",
            ),
            admin(
                id="inpatient",
                patient="p2",
                performer=None,
                effectiveDateTime="2026-10-05T09:30:00-05:00",
            ),
        ]
    )
    source, target = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    _write_folder(source, resources)
    run_folder(source, target, rules(), Config(), CREATED)
    report = json.loads((target / "report.json").read_text())
    tasks = [json.loads(x) for x in (target / "Task.ndjson").read_text().splitlines() if x]
    assert [t["focus"]["reference"] for t in tasks] == ["MedicationAdministration/fix-me"]
    entries = {e["administration"].split("/")[1]: e for e in report["administrations"]}
    assert {k: (e["outcome"], e["task"] is not None) for k, e in entries.items()} == {
        "fix-me": ("claim", True),
        "tablet": ("not-billable", False),
        "oral": ("not-billable", False),
        "inpatient": ("not-billable", False),
    }
    # every decision is still reported with its gaps, warnings included
    assert [g["code"] for g in entries["oral"]["gaps"]] == [
        "route-not-sc-im"
    ]  # only what explains it
    assert [g["code"] for g in entries["inpatient"]["gaps"]] == ["facility-setting"]
    assert report["summary"]["tasks"] == 1 and report["errors"] == []


# ----------------------------------------------------------------------------- the live sync


def test_an_open_task_no_longer_actionable_is_completed_on_the_server(
    rsps, server, tmp_path, sleeps
):
    for r in world():
        server.put(r, last_updated=instant(0))
    server.put(admin(id="ma1", dosage=NO_SITE), last_updated=instant(1), version="1")
    # an oral administration with the same missing site: never a Task
    server.put(
        admin(
            id="ma2",
            dosage=dosage(route=route(V3_ROUTE, "PO"), site=None),
            effectiveDateTime="2026-10-05T09:45:00-05:00",
        ),
        last_updated=instant(2),
        version="1",
    )
    server.clock = 2
    first = sync(tmp_path, sleeps)
    assert first.tasks.created == 1
    (opened,) = server.all("Task")
    assert (
        opened["focus"]["reference"] == "MedicationAdministration/ma1"
        and opened["status"] == "requested"
    )
    rsps.calls.reset()

    # the encounter turns out to be an inpatient stay: nothing to bill, nothing to act on
    encounter = next(r for r in world(encounter_class="IMP") if r["resourceType"] == "Encounter")
    server.put(encounter)
    server.put(admin(id="ma1", dosage=NO_SITE))  # a new version, so the sync decides it again
    second = sync(tmp_path, sleeps)

    done = [e for e in batch_entries(rsps) if e["request"]["url"] == f"Task/{opened['id']}"]
    assert len(done) == 1 and done[0]["resource"]["status"] == "completed"
    assert (
        done[0]["resource"]["businessStatus"]["text"]
        == "no billing action needed: outcome not-billable"
    )
    assert second.tasks.completed == 1 and second.tasks.created == 0
    assert server.get("Task", opened["id"])["status"] == "completed"
    assert len(server.all("Task")) == 1
