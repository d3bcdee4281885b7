"""The per-patient crawl (``--pull crawl``), ``--pull auto``'s probe, and the read-only trial.

The server is the in-memory FakeFhir (``responses``), made to refuse what Oracle Health refuses
where a test needs it: a MedicationAdministration search without ``patient`` or ``_id`` (400 with
an OperationOutcome). Integration against HAPI with the vendor profiles: tests/integration/test_hapi_profiles.py.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from fhir_injection import cli
from fhir_injection.decision.practice import Config
from fhir_injection.errors import EXIT_RECORD_ERRORS, ConfigError
from fhir_injection.fhir.client import FhirClient
from fhir_injection.fhir.http import HttpSession
from fhir_injection.jobs.sync import SyncOptions, run_sync
from fhir_injection.sources.choose import choose_pull
from fhir_injection.sources.cohort import read_patient_file
from fhir_injection.sources.crawl import (
    eta_text,
    window_start,
)
from tests.builders import admin, world
from tests.builders import rules as load_bundled_rules
from tests.fakefhir import BASE, MA, FakeFhir, instant, outcome

CREATED = "2026-10-06T12:00:00Z"


def clinic(server: FakeFhir, patients: int = 6, per_patient: int = 3) -> list[dict]:
    seen = set()
    for i in range(patients):
        for r in world(patient=f"p{i}"):
            if (r["resourceType"], r["id"]) not in seen:
                seen.add((r["resourceType"], r["id"]))
                server.put(r, last_updated=instant(0))
    admins, n = [], 0
    for i in range(patients):
        for k in range(per_patient):
            n += 1
            a = admin(
                id=f"ma{i}-{k}",
                patient=f"p{i}",
                effectiveDateTime=f"2026-10-05T09:{30 + 5 * k:02d}:00-05:00",
            )
            admins.append(server.put(a, last_updated=instant(100 + n), version="1"))
    server.clock = 100 + n
    return admins


def oracle_rules(server: FakeFhir) -> None:
    """Oracle Health: MedicationAdministration searches need patient or _id; no population
    Encounter/Patient search either."""

    def hook(method, path, query):
        if method != "GET":
            return None
        if path == MA and not ({"patient", "_id"} & set(query)):
            return (
                400,
                {"Content-Type": "application/fhir+json"},
                outcome("The patient or _id parameter is required.", "required"),
            )
        if path in ("Encounter", "Patient") and not ({"patient", "_id", "subject"} & set(query)):
            return 400, {"Content-Type": "application/fhir+json"}, outcome("patient is required")
        return None

    server.fail.append(hook)


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def server(rsps) -> FakeFhir:
    return FakeFhir().install(rsps)


def client(sleeps: list[float] | None = None) -> FhirClient:
    sleeps = sleeps if sleeps is not None else []
    return FhirClient(HttpSession(BASE, sleep=sleeps.append, clock=lambda: 0.0))


def patients_file(tmp_path: Path, ids: list[str], text: str = "") -> str:
    path = tmp_path / "patients.txt"
    path.write_text(text + "\n".join(ids) + "\n")
    return str(path)


def crawl(tmp_path: Path, c: FhirClient | None = None, progress=None, **kw):
    c = c or client()
    kw.setdefault("pull", "crawl")
    kw.setdefault("page_size", 50)
    options = SyncOptions(
        state_path=str(tmp_path / "state.json"),
        report_path=str(tmp_path / "report.json"),
        created=CREATED,
        **kw,
    )
    return run_sync(c, c, load_bundled_rules(), Config(), options, None, progress)


def ma_searches(rsps) -> list:
    return [
        c
        for c in rsps.calls
        if c.request.method == "GET" and urlsplit(c.request.url).path.endswith("/" + MA)
    ]


def query_of(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def report(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "report.json").read_text())


def state(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "state.json").read_text())["sources"][BASE]


# --------------------------------------------------------------------------- the crawl


def test_crawl_posts_every_claim_once_with_one_search_per_patient_and_a_rerun_posts_nothing(
    rsps, server, tmp_path
):
    oracle_rules(server)
    admins = clinic(server)
    ids = [f"p{i}" for i in range(6)]

    result = crawl(tmp_path, patients_file=patients_file(tmp_path, ids))

    assert result.exit_code == 0
    assert result.claims.created == len(admins) == 18
    assert {c["identifier"][0]["value"] for c in server.all("Claim")} == {a["id"] for a in admins}
    searches = ma_searches(rsps)
    assert sorted(query_of(c)["patient"][0] for c in searches) == ids  # one each, bare ids
    assert all(set(query_of(c)) & {"patient", "_id"} for c in searches)
    pull = report(tmp_path)["summary"]["pull"]
    assert pull["strategy"] == "crawl" and pull["done"] == pull["patients"] == 6
    assert pull["searches_per_patient"] == 1.0 and pull["cohort_from"] == "patients file"

    again = crawl(tmp_path, patients_file=patients_file(tmp_path, ids))
    assert again.claims.created == again.claims.updated == 0
    assert len(server.all("Claim")) == 18


def test_concurrency_bound_is_respected_and_used(rsps, server, tmp_path):
    clinic(server, patients=12, per_patient=1)
    lock, now_in, peak = threading.Lock(), [0], [0]

    def slow(method, path, query):
        if method == "GET" and path == MA and "patient" in query:
            with lock:
                now_in[0] += 1
                peak[0] = max(peak[0], now_in[0])
            time.sleep(0.05)
            with lock:
                now_in[0] -= 1
        return None

    server.on_request = slow

    result = crawl(
        tmp_path, patients_file=patients_file(tmp_path, [f"p{i}" for i in range(12)]), concurrency=3
    )

    assert result.claims.created == 12
    assert peak[0] == 3  # three in flight at once, never more


def test_a_429_is_waited_out_with_its_retry_after(rsps, server, tmp_path):
    clinic(server, patients=3, per_patient=1)
    told = []

    def busy(method, path, query):
        if path == MA and query.get("patient") == ["p1"] and not told:
            told.append(1)
            return 429, {"Retry-After": "7"}, outcome("too many requests", "throttled")
        return None

    server.fail.append(busy)
    sleeps: list[float] = []

    result = crawl(
        tmp_path, client(sleeps), patients_file=patients_file(tmp_path, ["p0", "p1", "p2"])
    )

    assert sleeps == [7.0]
    assert result.claims.created == 3 and result.summary["http"]["retries"] == 1


def test_next_links_are_followed_within_a_patient(rsps, server, tmp_path):
    admins = clinic(server, patients=2, per_patient=5)

    result = crawl(tmp_path, patients_file=patients_file(tmp_path, ["p0", "p1"]), page_size=2)

    assert result.claims.created == len(admins) == 10
    pages = [c for c in rsps.calls if "_getpages" in c.request.url]
    assert len(pages) == 4  # 5 administrations at 2 a page: 3 pages a patient, 2 of them next links
    assert report(tmp_path)["summary"]["pull"]["searches_per_patient"] == 3.0


def test_the_per_patient_window_is_kept_and_the_next_run_asks_only_from_it(rsps, server, tmp_path):
    clinic(server, patients=2, per_patient=2)
    ids = patients_file(tmp_path, ["p0", "p1"])

    crawl(tmp_path, patients_file=ids)

    windows = state(tmp_path)["crawl"]["patients"]
    assert windows == {"p0": "2026-10-05T14:35:00.000Z", "p1": "2026-10-05T14:35:00.000Z"}
    assert all("effective-time" not in query_of(c) for c in ma_searches(rsps))  # first run: all

    rsps.calls.reset()
    server.put(admin(id="late", patient="p0", effectiveDateTime="2026-10-07T10:00:00-05:00"))
    second = crawl(tmp_path, patients_file=ids)

    bounds = [query_of(c)["effective-time"] for c in ma_searches(rsps)]
    assert bounds == [["ge2026-10-04T00:00:00Z"], ["ge2026-10-04T00:00:00Z"]]
    assert second.claims.created == 1  # only the new one; the day's others came as siblings
    assert state(tmp_path)["crawl"]["patients"]["p0"] == "2026-10-07T15:00:00.000Z"


def test_window_start_is_the_utc_day_before_the_window_less_the_overlap():
    assert window_start("2026-10-05T00:02:00Z", 300) == "2026-10-03T00:00:00Z"
    assert window_start("2026-10-05T23:59:00Z", 300) == "2026-10-04T00:00:00Z"


def test_refused_and_unknown_patients_are_reported_by_id_and_the_crawl_goes_on(
    rsps, server, tmp_path
):
    clinic(server, patients=2, per_patient=1)

    def refuse(method, path, query):
        if path == MA and query.get("patient") == ["ghost"]:
            return 404, {}, outcome("Resource Patient/ghost is not known", "not-found")
        if path == MA and query.get("patient") == ["secret"]:
            return 403, {}, outcome("forbidden", "forbidden")
        return None

    server.fail.append(refuse)

    result = crawl(tmp_path, patients_file=patients_file(tmp_path, ["p0", "ghost", "secret", "p1"]))

    assert result.claims.created == 2
    assert result.exit_code == EXIT_RECORD_ERRORS  # finished; some records could not be read
    body = report(tmp_path)
    assert body["summary"]["pull"]["bad_patients"] == [
        {"patient": "ghost", "status": 404},
        {"patient": "secret", "status": 403},
    ]
    records = {p["record"] for p in body["errors"]}
    assert {"Patient/ghost", "Patient/secret"} <= records


def test_progress_line_counts_patients_requests_and_an_eta_without_phi(rsps, server, tmp_path):
    clinic(server, patients=3, per_patient=1)
    lines: list[str] = []

    crawl(
        tmp_path, patients_file=patients_file(tmp_path, ["p0", "p1", "p2"]), progress=lines.append
    )

    crawl_lines = [m for m in lines if m.startswith("crawl:")]
    assert crawl_lines[-1].startswith("crawl: 3/3 patients, 3 searches (")
    assert "requests in all" in crawl_lines[-1] and crawl_lines[-1].endswith("ETA 0:00")
    assert lines[0] == "pull: crawl (asked for with --pull crawl)"
    assert not any("Testperson" in m or "1950" in m for m in lines)


def test_eta_is_the_rate_so_far_times_what_is_left():
    assert eta_text(0, 10, 5.0) == "?"
    assert eta_text(2, 10, 30.0) == "2:00"
    assert eta_text(10, 10, 30.0) == "0:00"


def test_patient_file_takes_comments_blank_lines_and_references(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("# cohort for October\np1\n\nPatient/p2  # moved\np1\n  p3\n")
    assert read_patient_file(path) == ["p1", "p2", "p3"]
    path.write_text("p1\nsomething else entirely\n")
    with pytest.raises(ConfigError, match="line 2: not a Patient id"):
        read_patient_file(path)


def test_cohort_from_an_export_folders_patients(rsps, server, tmp_path):
    clinic(server, patients=3, per_patient=1)
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "Patient.ndjson").write_text(
        "\n".join(json.dumps(r) for r in (server.get("Patient", "p2"), server.get("Patient", "p0")))
        + "\n"
    )

    result = crawl(tmp_path, cohort_dir=str(folder))

    assert result.claims.created == 2
    assert sorted(query_of(c)["patient"][0] for c in ma_searches(rsps)) == ["p0", "p2"]
    assert report(tmp_path)["summary"]["pull"]["cohort_from"] == "export folder"


def test_cohort_from_an_encounter_search_else_patients_else_a_clear_error(rsps, server, tmp_path):
    clinic(server, patients=2, per_patient=1)
    result = crawl(tmp_path)
    assert result.claims.created == 2
    assert report(tmp_path)["summary"]["pull"]["cohort_from"] == "Encounter search (all)"

    oracle_rules(server)
    with pytest.raises(ConfigError, match="--patients FILE or --cohort DIR"):
        crawl(tmp_path / "fresh")


# --------------------------------------------------------------------------- --pull auto


@pytest.mark.parametrize(
    "answer, allowed, why",
    [
        (
            None,
            True,
            "population search allowed: MedicationAdministration?_lastUpdated=…&_count=… "
            "answered HTTP 200",
        ),
        (
            (400, outcome("The patient parameter is required.")),
            False,
            "answered HTTP 400 (the server requires patient)",
        ),
        ((403, outcome("forbidden", "forbidden")), False, "answered HTTP 403"),
        (
            (200, outcome("Search requires patient")),
            False,
            "answered an OperationOutcome (the server requires patient)",
        ),
        (
            (
                200,
                {
                    "resourceType": "Bundle",
                    "type": "searchset",
                    "entry": [
                        {"resource": outcome("patient is required"), "search": {"mode": "outcome"}}
                    ],
                },
            ),
            False,
            "answered an error outcome (the server requires patient)",
        ),
    ],
)
def test_the_probe_decides_search_or_crawl(rsps, server, answer, allowed, why):
    if answer is not None:
        status, body = answer
        server.fail.append(
            lambda m, p, q: (
                (status, {"Content-Type": "application/fhir+json"}, body) if p == MA else None
            )
        )
    name, reason = choose_pull(client())
    assert name == ("search" if allowed else "crawl")
    assert reason.endswith(why) and reason.startswith(
        "population search allowed" if allowed else "population search refused"
    )
    probes = ma_searches(rsps)
    assert len(probes) == 1 and query_of(probes[0])["_count"] == ["1"]


def test_auto_crawls_where_population_search_is_refused_and_the_report_says_why(
    rsps, server, tmp_path
):
    oracle_rules(server)
    clinic(server, patients=2, per_patient=2)

    result = crawl(tmp_path, pull="auto", patients_file=patients_file(tmp_path, ["p0", "p1"]))

    assert result.claims.created == 4
    pull = report(tmp_path)["summary"]["pull"]
    assert pull["strategy"] == "crawl"
    assert pull["reason"] == (
        "population search refused: MedicationAdministration?_lastUpdated=…"
        "&_count=… answered HTTP 400 (the server requires patient)"
        "; the CapabilityStatement lists no $export: context by look-ups"
    )


def test_auto_searches_where_the_server_allows_it(rsps, server, tmp_path):
    clinic(server, patients=2, per_patient=2)
    result = crawl(tmp_path, pull="auto", patients_file=patients_file(tmp_path, ["p0"]))
    assert result.claims.created == 4  # the whole population, not the one patient of the file
    pull = report(tmp_path)["summary"]["pull"]
    assert pull["strategy"] == "search"
    assert pull["reason"].endswith("the cohort option is for the crawl and was not used")


# --------------------------------------------------------------------------- the read-only trial


@pytest.mark.parametrize("pull", ["search", "crawl"])
def test_read_only_trial_writes_files_and_sends_no_write(rsps, server, tmp_path, monkeypatch, pull):
    if pull == "crawl":
        oracle_rules(server)
    admins = clinic(server, patients=3, per_patient=2)
    server.interactions = ("batch", "transaction")  # batches are POSTs: the trial must not use them
    monkeypatch.chdir(tmp_path)
    ids = patients_file(tmp_path, ["p0", "p1", "p2"])

    code = cli.main(
        [
            "sync",
            "--source",
            BASE,
            "--target",
            "trial",
            "--pull",
            "auto",
            "--patients",
            ids,
            "--state",
            "state.json",
        ]
    )

    assert code == 0
    assert {c.request.method for c in rsps.calls} == {"GET"}
    claims = [
        json.loads(line) for line in (tmp_path / "trial" / "Claim.ndjson").read_text().splitlines()
    ]
    assert sorted(c["identifier"][0]["value"] for c in claims) == sorted(a["id"] for a in admins)
    body = json.loads((tmp_path / "trial" / "report.json").read_text())
    assert body["summary"]["pull"]["strategy"] == pull and body["summary"]["pull"]["read_only"]
    assert len(body["administrations"]) == 6
    assert (tmp_path / "trial" / "Task.ndjson").exists()
    assert server.all("Claim") == [] and not (tmp_path / "state.json").exists()
    # the billing team's page and worklist, as a folder target gets them offline; the trial's
    # history stays in its folder (nothing beside the sync's state file)
    page = (tmp_path / "trial" / "report.html").read_text()
    assert "Injection billing report" in page
    assert (tmp_path / "trial" / "worklist.csv").exists()
    assert len((tmp_path / "trial" / "history.jsonl").read_text().splitlines()) == 1
    assert not (tmp_path / "state.json.history.jsonl").exists()


def test_a_crawl_stopped_after_a_page_resumes_and_every_claim_is_posted_once(
    rsps, server, tmp_path
):
    from fhir_injection.jobs.sync import StopFlag

    admins = clinic(server, patients=5, per_patient=2)
    ids = patients_file(tmp_path, [f"p{i}" for i in range(5)])
    stop = StopFlag()

    def stop_after_two_patients(message: str) -> None:
        if message.startswith("crawl: 2/5"):
            stop.event.set()

    c = client()
    options = SyncOptions(
        pull="crawl",
        patients_file=ids,
        page_size=2,
        created=CREATED,
        state_path=str(tmp_path / "state.json"),
        report_path=str(tmp_path / "r.json"),
    )
    first = run_sync(c, c, load_bundled_rules(), Config(), options, stop, stop_after_two_patients)

    # the line for patient 2 comes when the run asks for patient 3's page: three pages posted,
    # two windows saved (the third patient's page is posted, its window moves when the next is asked)
    assert first.interrupted and first.claims.created == 6
    assert sorted(state(tmp_path)["crawl"]["patients"]) == ["p0", "p1"]

    rest = crawl(tmp_path, patients_file=ids, page_size=2)
    assert rest.claims.created == 4 and rest.claims.updated == 0  # p2 asked again: already there
    values = sorted(c["identifier"][0]["value"] for c in server.all("Claim"))
    assert values == sorted(a["id"] for a in admins)  # each once
