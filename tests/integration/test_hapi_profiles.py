"""The sync against HAPI with the vendor profiles (tests/hapi/README.md, "Vendor profiles").

One HAPI server, three paths on the same database: ``/fhir`` (plain), ``/oracle/fhir`` (Oracle
Health's documented restrictions) and ``/epic/fhir`` (Epic's). The demo is loaded once through the
plain path; then ``sync --pull auto`` runs against each path with its own identifier system, so
each run's Claims and Tasks are told apart on the shared server:

- plain: auto picks the population search;
- oracle and epic: the probe ``MedicationAdministration?_lastUpdated=…`` is refused (400), auto
  says so and crawls the cohort (the demo folder's Patients, as a Group export would give them),
  and posts the same Claims and Tasks as the search path did, exactly once (a second run posts
  nothing);
- the read-only trial against oracle writes the same Claims to files and posts nothing;
- the profiles' Bulk Data rules: Group-level only, MedicationAdministration never in the manifest,
  one Oracle export at a time (429 + Retry-After), Epic's group once a day (429), files behind a
  307 to another port that refuses an Authorization header (403).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests

from fhir_injection import connect, load_folder
from fhir_injection.bundled import DEMO_AS_OF

pytestmark = pytest.mark.hapi

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "fixtures" / "demo"
MA = "MedicationAdministration"


def is_loopback(url: str) -> bool:
    return (urlparse(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


class Env:
    """What the tests share: the URLs, the loaded administrations, the plain search run."""


def run_cli(e: Env, name: str, url: str, *extra: str, config_system: str | None = None):
    """``fhir-injection sync --source url`` with its own identifier system, state and report."""
    system = config_system or f"urn:fhir-injection:test-{e.run}-{name}:claim"
    cfg = e.tmp / f"{name}.toml"
    cfg.write_text(
        f'identifier_system = "{system}"\nas_of = {DEMO_AS_OF}\ndefault_place_of_service = "11"\n',
        encoding="utf-8",
    )
    report = e.tmp / f"report-{name}.json"
    cmd = [
        sys.executable,
        "-m",
        "fhir_injection",
        "--config",
        str(cfg),
        "sync",
        "--source",
        url,
        "--state",
        str(e.tmp / f"state-{name}.json"),
        "--report",
        str(report),
        *extra,
    ]
    t0 = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    print(f"{name}: exit {done.returncode} in {time.monotonic() - t0:.1f}s\n{done.stderr[-1500:]}")
    return done, report, system


def claims_of(url: str, system: str) -> dict[str, tuple]:
    """Our Claims on the server by administration id: (status, item codes, units)."""
    client = connect(url)
    out: dict[str, tuple] = {}
    for resource, mode in client.search("Claim", [("identifier", f"{system}|"), ("_count", "500")]):
        if mode != "match":
            continue
        ident = next(i["value"] for i in resource["identifier"] if i.get("system") == system)
        assert ident not in out, f"two Claims for {ident}"
        items = tuple(
            (c.get("code"), (i.get("quantity") or {}).get("value"))
            for i in resource.get("item") or []
            for c in (i.get("productOrService") or {}).get("coding") or []
        )
        out[ident] = (resource["status"], items)
    return out


def tasks_of(url: str, system: str) -> set[str]:
    client = connect(url)
    return {
        next(i["value"] for i in r["identifier"] if i.get("system") == system + ":task")
        for r, mode in client.search("Task", [("identifier", f"{system}:task|"), ("_count", "500")])
        if mode == "match"
    }


@pytest.fixture(scope="module")
def env(fhir_base_url, oracle_url, epic_url, tmp_path_factory):
    if not is_loopback(fhir_base_url):
        pytest.fail(
            "the vendor profiles are paths of the local HAPI test server (tests/hapi)",
            pytrace=False,
        )
    e = Env()
    e.url, e.oracle, e.epic = fhir_base_url, oracle_url, epic_url
    e.run = uuid.uuid4().hex[:8]
    e.tmp = tmp_path_factory.mktemp("profiles")
    admin = connect(e.url)
    admin.session.request(
        "POST",
        "$expunge",
        json={
            "resourceType": "Parameters",
            "parameter": [{"name": "expungeEverything", "valueBoolean": True}],
        },
    )
    e.load = load_folder(str(DEMO), connect(e.url))
    e.accepted = e.load.loaded[MA]
    done, report, system = run_cli(e, "plain", e.url, "--pull", "auto", "--full")
    assert done.returncode == 0, done.stderr[-3000:]
    e.plain_report = json.loads(report.read_text())
    e.plain_system = system
    e.plain_claims = claims_of(e.url, system)
    e.plain_tasks = tasks_of(e.url, system)
    assert len(e.plain_claims) > 100 and e.plain_tasks
    return e


def test_auto_picks_the_population_search_on_the_plain_server(env):
    pull = env.plain_report["summary"]["pull"]
    assert pull["strategy"] == "search"
    assert pull["reason"].startswith("population search allowed")
    assert env.plain_report["summary"]["administrations"] == env.accepted


@pytest.mark.parametrize("profile", ["oracle", "epic"])
def test_population_search_is_refused_with_an_operation_outcome(env, profile):
    base = getattr(env, profile)
    refused = requests.get(
        f"{base}/{MA}",
        params={"_lastUpdated": "ge2020-01-01T00:00:00Z"},
        headers={"Accept": "application/fhir+json"},
        timeout=30,
    )
    assert refused.status_code == 400
    body = refused.json()
    assert body["resourceType"] == "OperationOutcome"
    assert "requires one of the parameters _id, patient" in body["issue"][0]["diagnostics"]
    patient = json.loads((DEMO / "Patient.ndjson").read_text().splitlines()[0])["id"]
    allowed = requests.get(
        f"{base}/{MA}",
        params={"patient": patient},
        headers={"Accept": "application/fhir+json"},
        timeout=30,
    )
    assert allowed.status_code == 200 and allowed.json()["resourceType"] == "Bundle"
    # the plain path is unchanged
    plain = requests.get(f"{env.url}/{MA}", params={"_count": "1"}, timeout=30)
    assert plain.status_code == 200


@pytest.mark.parametrize("profile", ["oracle", "epic"])
def test_auto_crawls_the_vendor_and_posts_the_search_paths_claims_exactly_once(env, profile):
    # --full: a first crawl's default window is the filing window by effective-time, which an
    # administration with no effective time (the demo's missing-time cases) never matches; the search
    # path's window is by _lastUpdated and finds them. --full reads every administration of the cohort.
    base = getattr(env, profile)
    done, report, system = run_cli(
        env, profile, base, "--pull", "auto", "--cohort", str(DEMO), "--concurrency", "4", "--full"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    body = json.loads(report.read_text())
    pull = body["summary"]["pull"]
    assert pull["strategy"] == "crawl"
    assert pull["reason"] == (
        f"population search refused: {MA}?_lastUpdated=…&_count=… answered "
        "HTTP 400 (the server requires patient); Patient/$export refused (HTTP 400): context "
        "by look-ups"
    )
    assert pull["cohort_from"] == "export folder" and pull["bad_patients"] == []
    assert pull["searches_per_patient"] <= 1.2
    assert "pull: crawl (population search refused" in done.stderr
    assert f"crawl: {pull['patients']}/{pull['patients']} patients" in done.stderr
    assert body["summary"]["administrations"] == env.accepted
    # the same Claims (status, codes, units) and Tasks as the search path, by administration
    assert claims_of(base, system) == env.plain_claims
    assert tasks_of(base, system) == env.plain_tasks

    again, report2, _ = run_cli(
        env, profile, base, "--pull", "auto", "--cohort", str(DEMO), "--full", config_system=system
    )
    assert again.returncode == 0, again.stderr[-3000:]
    posted = json.loads(report2.read_text())["summary"]["posted"]
    assert posted["claims"]["created"] == posted["claims"]["updated"] == 0
    assert posted["tasks"]["created"] == posted["tasks"]["updated"] == 0
    assert claims_of(base, system) == env.plain_claims


def test_without_a_cohort_the_oracle_crawl_says_how_to_give_one(env):
    done, _, _ = run_cli(env, "oracle-nocohort", env.oracle, "--pull", "auto")
    assert done.returncode == 2
    assert "the server allows no population search to find the cohort" in done.stderr
    assert "Encounter HTTP 400" in done.stderr and "--patients FILE or --cohort DIR" in done.stderr


def test_read_only_trial_against_oracle_writes_the_claims_and_posts_nothing(env):
    out = env.tmp / "trial"
    system = f"urn:fhir-injection:test-{env.run}-trial:claim"
    before = requests.get(f"{env.url}/Claim", params={"_summary": "count"}, timeout=30).json()[
        "total"
    ]
    done, _, _ = run_cli(
        env,
        "trial",
        env.oracle,
        "--target",
        str(out),
        "--cohort",
        str(DEMO),
        "--full",
        config_system=system,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    after = requests.get(f"{env.url}/Claim", params={"_summary": "count"}, timeout=30).json()[
        "total"
    ]
    assert after == before
    written = [json.loads(line) for line in (out / "Claim.ndjson").read_text().splitlines()]
    trial = {next(i["value"] for i in c["identifier"]): c["status"] for c in written}
    assert Counter(trial.values()) == Counter(s for s, _ in env.plain_claims.values()), sorted(
        set(trial.items()) ^ {(k, s) for k, (s, _) in env.plain_claims.items()}
    )
    assert {next(i["value"] for i in c["identifier"]) for c in written} == set(env.plain_claims)
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["pull"]["read_only"] is True
    # GET only (the trial posts nothing), and the one 400 is auto's probe
    assert report["summary"]["http"]["source"]["by_status"].keys() == {"200", "400"}
    assert report["summary"]["http"]["source"]["by_status"]["400"] == 1


# ----------------------------------------------------------------------------- Bulk Data rules


def _group(base: str, name: str) -> str:
    patients = [
        json.loads(line)["id"] for line in (DEMO / "Patient.ndjson").read_text().splitlines()[:5]
    ]
    group = {
        "resourceType": "Group",
        "id": name,
        "type": "person",
        "actual": True,
        "member": [{"entity": {"reference": f"Patient/{p}"}} for p in patients],
    }
    put = requests.put(
        f"{base}/Group/{name}",
        json=group,
        headers={"Content-Type": "application/fhir+json"},
        timeout=30,
    )
    assert put.status_code in (200, 201), put.text[:500]
    return name


def _kick_off(base: str, path: str) -> requests.Response:
    return requests.get(
        f"{base}/{path}",
        headers={"Accept": "application/fhir+json", "Prefer": "respond-async"},
        timeout=60,
    )


def test_oracle_export_rules(env):
    base = env.oracle
    assert _kick_off(base, "$export").status_code == 400  # Group level only
    assert _kick_off(base, "Patient/$export").status_code == 400
    group = _group(env.url, f"g-oracle-{env.run}")
    first = _kick_off(base, f"Group/{group}/$export?_type=Patient,{MA},Encounter")
    assert first.status_code == 202, first.text[:500]
    status_url = first.headers["Content-Location"]
    second = _kick_off(base, f"Group/{group}/$export")
    assert second.status_code == 429 and int(second.headers["Retry-After"]) > 0
    assert second.json()["resourceType"] == "OperationOutcome"
    deadline = time.monotonic() + 300
    while True:
        poll = requests.get(status_url, headers={"Accept": "application/json"}, timeout=60)
        if poll.status_code == 200:
            break
        assert poll.status_code == 202 and time.monotonic() < deadline
        time.sleep(2)
    manifest = poll.json()
    types = {o["type"] for o in manifest["output"]}
    assert "Patient" in types and MA not in types
    url = next(o["url"] for o in manifest["output"] if o["type"] == "Patient")
    redirect = requests.get(url, allow_redirects=False, timeout=30)
    assert redirect.status_code == 307
    location = redirect.headers["Location"]
    assert urlparse(location).port != urlparse(base).port
    refused = requests.get(location, headers={"Authorization": "Bearer abc"}, timeout=30)
    assert refused.status_code == 403
    fine = requests.get(location, timeout=30)
    assert fine.status_code == 200
    lines = [json.loads(line) for line in fine.text.splitlines() if line.strip()]
    assert lines and all(r["resourceType"] == "Patient" for r in lines)
    # the export is over: the next kick-off is accepted
    third = _kick_off(base, f"Group/{group}/$export?_type=Patient")
    assert third.status_code == 202
    requests.delete(third.headers["Content-Location"], timeout=30)


def test_epic_exports_a_group_once_a_day(env):
    base = env.epic
    group = _group(env.url, f"g-epic-{env.run}")
    first = _kick_off(base, f"Group/{group}/$export?_type=Patient")
    assert first.status_code == 202
    requests.delete(first.headers["Content-Location"], timeout=30)
    again = _kick_off(base, f"Group/{group}/$export?_type=Patient")
    assert again.status_code == 429
    assert "once a day" in again.json()["issue"][0]["diagnostics"]
    assert int(again.headers["Retry-After"]) > 23 * 3600
    other = _kick_off(base, f"Group/{_group(env.url, f'g-epic2-{env.run}')}/$export?_type=Patient")
    assert other.status_code == 202  # another group is its own
    requests.delete(other.headers["Content-Location"], timeout=30)
