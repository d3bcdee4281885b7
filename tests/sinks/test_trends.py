"""Trends across runs: one history line per run, next to a sync's state file or in a
folder target, and the page's change since the previous run."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import responses

from fhir_injection.decision.practice import Config
from fhir_injection.fhir.client import FhirClient
from fhir_injection.fhir.http import HttpSession
from fhir_injection.jobs.offline import run_folder
from fhir_injection.jobs.sync import SyncOptions, run_sync
from fhir_injection.sinks import trends
from fhir_injection.sinks.trends import append_run, delta, read_history, run_line, sync_history_path
from tests.builders import admin, dosage, rules, world
from tests.fakefhir import BASE, FakeFhir, instant


def summary(held: float, gaps: dict, administrations: int = 10, billable: float = 100.0) -> dict:
    return {
        "administrations": administrations,
        "estimated_held_usd": held,
        "estimated_billable_usd": billable,
        "tasks": 3,
        "gaps": gaps,
        "outcomes": {},
    }


def test_append_and_the_change_since_the_previous_run(tmp_path):
    path = tmp_path / "h.jsonl"
    runs = append_run(path, run_line(summary(50.0, {"missing-site": 4, "missing-dose": 1}), "t1"))
    assert delta(runs) is None  # one run: nothing to compare
    runs = append_run(
        path, run_line(summary(30.5, {"missing-site": 1, "vaccine": 2}, 12, 130.0), "t2")
    )
    assert [r["time"] for r in runs] == ["t1", "t2"] == [r["time"] for r in read_history(path)]
    change = delta(runs)
    assert change == {
        "previous": "t1",
        "administrations": 2,
        "estimated_held_usd": -19.5,
        "estimated_billable_usd": 30.0,
        "gaps": {"missing-site": -3, "vaccine": 2, "missing-dose": -1},  # largest change first
    }
    line = json.loads(path.read_text().splitlines()[0])
    assert set(line) == {
        "time",
        "administrations",
        "estimated_held_usd",
        "estimated_billable_usd",
        "tasks",
        "gaps",
    }


def test_unreadable_lines_are_skipped_and_the_file_is_trimmed(tmp_path, monkeypatch):
    path = tmp_path / "h.jsonl"
    path.write_text(
        'not json\n{"time": 1}\n[]\n' + json.dumps(run_line(summary(1.0, {}), "t0")) + "\n"
    )
    assert [r["time"] for r in read_history(path)] == ["t0"]
    assert read_history(tmp_path / "missing.jsonl") == []
    monkeypatch.setattr(trends, "KEEP", 3)
    for i in range(1, 7):
        runs = append_run(path, run_line(summary(float(i), {}), f"t{i}"))
    assert [r["time"] for r in runs] == ["t4", "t5", "t6"]  # past 2 * KEEP, the last KEEP stay
    assert [r["time"] for r in read_history(path)] == ["t4", "t5", "t6"]


def write_folder(folder: Path, resources: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, list] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(r)
    for rtype, items in by_type.items():
        (folder / f"{rtype}.ndjson").write_text("".join(json.dumps(r) + "\n" for r in items))
    return folder


def test_a_folder_target_keeps_its_history_and_the_page_shows_the_change(tmp_path):
    out = tmp_path / "out"
    clean = [admin("ma1"), admin("ma2", effectiveDateTime="2026-10-05T10:00:00-05:00")]
    first = run_folder(
        write_folder(tmp_path / "a", [*world(), *clean]),
        out,
        rules(),
        Config(),
        "2026-11-01T00:00:00Z",
    )
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "First recorded run" in page and 'id="d-held"' not in page
    held = admin("ma3", effectiveDateTime="2026-10-05T10:30:00-05:00", dosage=dosage(dose=None))
    second = run_folder(
        write_folder(tmp_path / "b", [*world(), *clean, held]),
        out,
        rules(),
        Config(),
        "2026-11-02T00:00:00Z",
    )
    runs = read_history(out / "history.jsonl")
    assert [r["time"] for r in runs] == ["2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"]
    assert runs[1]["estimated_held_usd"] == second.summary["estimated_held_usd"] > 0
    assert runs[1]["gaps"] == second.summary["gaps"]
    page = (out / "report.html").read_text(encoding="utf-8")
    change = second.summary["estimated_held_usd"] - first.summary["estimated_held_usd"]
    assert re.search(r'id="d-held">\+' + re.escape(f"{change:,.2f}") + " since previous run<", page)
    assert "Since the previous run (2026-11-01T00:00:00Z)" in page
    assert re.search(r"<td>missing-dose</td><td class=\"num up\">\+1</td>", page)
    charts = json.loads(re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1))[
        "charts"
    ]
    assert [v["usd"] for v in charts["trend-held"]["data"]["values"]] == [
        r["estimated_held_usd"] for r in runs
    ]


def test_a_failed_folder_run_leaves_the_history_and_the_page_as_they_were(tmp_path, monkeypatch):
    out = tmp_path / "out"
    source = write_folder(tmp_path / "a", [*world(), admin("ma1")])
    run_folder(source, out, rules(), Config(), "2026-11-01T00:00:00Z")
    before = {p: (out / p).read_bytes() for p in ("history.jsonl", "report.html", "worklist.csv")}

    def boom(*a, **k):
        raise RuntimeError("render failed")

    import fhir_injection.sinks.html as html_module

    monkeypatch.setattr(html_module, "render_html", boom)
    with pytest.raises(RuntimeError):
        run_folder(source, out, rules(), Config(), "2026-11-02T00:00:00Z")
    assert {p: (out / p).read_bytes() for p in before} == before
    assert not [p.name for p in out.iterdir() if p.name.endswith(".partial")]


# ----------------------------------------------------------------------------- a sync


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_a_sync_appends_to_the_history_beside_its_state_and_writes_the_page_with_html(
    rsps, tmp_path
):
    server = FakeFhir().install(rsps)
    for r in world():
        server.put(r, last_updated=instant(0))
    server.put(admin("ma1"), last_updated=instant(10), version="1")
    server.clock = 10
    client = FhirClient(HttpSession(BASE, sleep=lambda s: None, clock=lambda: 0.0))
    html = tmp_path / "pages" / "billing.html"

    def sync(created: str):
        options = SyncOptions(
            state_path=str(tmp_path / "state.json"),
            report_path=str(tmp_path / "report.json"),
            created=created,
            html_path=str(html),
        )
        return run_sync(client, client, rules(), Config(), options)

    first = sync("2026-11-01T00:00:00Z")
    server.put(
        admin("ma2", effectiveDateTime="2026-10-05T10:00:00-05:00", dosage=dosage(dose=None)),
        last_updated=instant(20),
        version="1",
    )
    server.clock = 20
    second = sync("2026-11-01T00:15:00Z")
    history = sync_history_path(tmp_path / "state.json")
    assert history == tmp_path / "state.json.history.jsonl"
    runs = read_history(history)
    assert [r["time"] for r in runs] == ["2026-11-01T00:00:00Z", "2026-11-01T00:15:00Z"]
    assert runs[0]["estimated_held_usd"] == first.summary["estimated_held_usd"] == 0
    assert runs[1]["estimated_held_usd"] == second.summary["estimated_held_usd"] > 0
    page = html.read_text(encoding="utf-8")
    assert 'id="d-held">+' in page
    with open(html.with_name("worklist.csv"), encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    dose_rows = [r for r in rows if r["gap"] == "missing-dose"]
    assert len(dose_rows) == 1
    assert dose_rows[0]["administration_url"] == f"{BASE}/MedicationAdministration/ma2"
    assert dose_rows[0]["task_url"] == f"{BASE}/{dose_rows[0]['task']}"
    assert dose_rows[0]["task"].startswith("Task/")


def test_a_sync_without_html_still_keeps_its_history(rsps, tmp_path):
    server = FakeFhir().install(rsps)
    for r in world():
        server.put(r, last_updated=instant(0))
    server.put(admin("ma1"), last_updated=instant(10), version="1")
    server.clock = 10
    client = FhirClient(HttpSession(BASE, sleep=lambda s: None, clock=lambda: 0.0))
    (tmp_path / "s").mkdir()
    options = SyncOptions(
        state_path=str(tmp_path / "s" / "state.json"),
        report_path=str(tmp_path / "report.json"),
        created="2026-11-01T00:00:00Z",
    )
    result = run_sync(client, client, rules(), Config(), options)
    (line,) = read_history(tmp_path / "s" / "state.json.history.jsonl")
    assert line["administrations"] == result.summary["administrations"] == 1
    assert not list(tmp_path.glob("*.html")) and not (tmp_path / "worklist.csv").exists()


def test_sync_html_on_the_command_line_writes_the_page_and_the_worklist_beside_it(
    rsps, tmp_path, monkeypatch, capsys
):
    import signal

    from fhir_injection import cli
    from fhir_injection.jobs import sync as sync_module

    server = FakeFhir().install(rsps)
    for r in world():
        server.put(r, last_updated=instant(0))
    server.put(admin("ma1", dosage=dosage(dose=None)), last_updated=instant(10), version="1")
    server.clock = 10
    monkeypatch.setattr(
        sync_module,
        "make_client",
        lambda url, prefix, args: FhirClient(
            HttpSession(BASE, sleep=lambda s: None, clock=lambda: 0.0)
        ),
    )
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        code = cli.main(
            ["sync", "--source", BASE, "--state", str(tmp_path / "state.json"),
             "--report", str(tmp_path / "report.json"), "--html", str(tmp_path / "web" / "r.html")]
        )  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    assert code == 0, capsys.readouterr().err
    page = (tmp_path / "web" / "r.html").read_text(encoding="utf-8")
    assert 'id="h-held">$' in page and 'id="h-administrations">1<' in page
    with open(tmp_path / "web" / "worklist.csv", encoding="utf-8-sig", newline="") as fh:
        (row,) = [r for r in csv.DictReader(fh) if r["gap"] == "missing-dose"]
    assert row["administration_url"] == f"{BASE}/MedicationAdministration/ma1"
    assert len(read_history(tmp_path / "state.json.history.jsonl")) == 1
