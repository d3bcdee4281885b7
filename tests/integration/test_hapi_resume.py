"""``sync --pull auto --group ID`` against the HAPI vendor profiles (Oracle, Epic): the context and
cohort from a Group ``$export``, the administrations by crawl, and runs that are killed.

One module-scoped setup: the server wiped (``$expunge``), the demo loaded, the offline run over the
administrations HAPI accepted (the Claims and Tasks every pull must end with). Then per profile,
through the fault proxy (``tests/faultproxy.py``; 429 with ``Retry-After`` on a share of the
crawl's searches, and export files answered slowly so a download can be caught in the act):

1. a run SIGKILLed while the server builds the export (polling);
2. the next run resumes that export (no second kick-off) and is SIGKILLed during the downloads;
3. the next run downloads the rest and is SIGKILLed during the crawl;
4. the next run ends with every Claim and Task of the offline run on the server exactly once
   (counted by identifier), with the offline statuses; the crawl's 429s were waited out;
5. a rerun writes nothing: Oracle exports again from the manifest's ``transactionTime``
   (incremental); Epic refuses the group's second export of the day (429 with a day-long
   ``Retry-After``), so the context comes by look-ups and the reason says so.

And Oracle's one export at a time: a kick-off while another export is in progress gets 429
``Retry-After: 10``, which the sync waits out. The server is wiped: a loopback test server only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from datetime import date
from pathlib import Path

import pytest
import requests

from fhir_injection import Config, connect, load_folder, run_folder
from fhir_injection.bundled import DEMO_AS_OF
from tests.faultproxy import FaultProxy, assert_exactly_once, posted, sync_command, write_config
from tests.integration.test_hapi_sync import copy_demo, expunge_everything, is_loopback

pytestmark = pytest.mark.hapi

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
MA = "MedicationAdministration"


class Env:
    pass


@pytest.fixture(scope="module")
def env(fhir_base_url, oracle_url, epic_url, rules, tmp_path_factory):
    assert is_loopback(fhir_base_url), "these tests wipe the server: use the local HAPI"
    e = Env()
    e.url, e.oracle, e.epic = fhir_base_url, oracle_url, epic_url
    e.tmp = tmp_path_factory.mktemp("hapi-resume")
    e.run = uuid.uuid4().hex[:8]
    expunge_everything(connect(e.url))
    data = copy_demo(e.tmp / "demo")
    load = load_folder(str(data), connect(e.url))
    refused = {p.record for p in load.problems}
    e.patients = [
        json.loads(x)["id"]
        for x in (data / "Patient.ndjson").read_text().splitlines()
        if x.strip() and f"Patient/{json.loads(x)['id']}" not in refused
    ]
    accepted = copy_demo(e.tmp / "accepted", drop=refused)
    system = "urn:fhir-injection:expected:claim"
    out = e.tmp / "offline"
    config = Config(
        identifier_system=system,
        as_of=date.fromisoformat(DEMO_AS_OF),
        default_place_of_service="11",
    )
    run_folder(accepted, out, rules, config, "2026-11-26T12:00:00Z")
    e.claims = {
        next(i["value"] for i in c["identifier"] if i["system"] == system): c["status"]
        for c in map(json.loads, (out / "Claim.ndjson").read_text().splitlines())
    }
    e.tasks = {
        next(i["value"] for i in t["identifier"] if i["system"] == system + ":task")
        for t in map(json.loads, (out / "Task.ndjson").read_text().splitlines())
    }
    assert len(e.claims) > 100 and e.tasks
    return e


def make_group(e: Env, name: str, patients: list[str]) -> str:
    group = {
        "resourceType": "Group",
        "id": name,
        "type": "person",
        "actual": True,
        "member": [{"entity": {"reference": f"Patient/{p}"}} for p in patients],
    }
    put = requests.put(
        f"{e.url}/Group/{name}",
        json=group,
        headers={"Content-Type": "application/fhir+json"},
        timeout=60,
    )
    assert put.status_code in (200, 201), put.text[:500]
    return name


def killed_at(cmd: list[str], marker: str, timeout: float = 300) -> str:
    """Run the CLI and SIGKILL it as soon as a stderr line contains ``marker``; its stderr so far."""
    proc = subprocess.Popen(
        cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT, env=ENV
    )
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if marker in line:
                os.kill(proc.pid, signal.SIGKILL)
                break
            assert time.monotonic() < deadline, "".join(seen[-20:])
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    text = "".join(seen)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before '{marker}':\n{text[-3000:]}"
    return text


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=600)


def the_job(state: Path) -> dict:
    [source] = json.loads(state.read_text())["sources"].values()
    [job] = [v for v in source["exports"].values() if v]
    return job


def statuses(url: str, system: str) -> dict[str, str]:
    out = {}
    for resource, mode in connect(url).search(
        "Claim", [("identifier", f"{system}|"), ("_count", "500")]
    ):
        if mode == "match":
            out[next(i["value"] for i in resource["identifier"] if i["system"] == system)] = (
                resource["status"]
            )
    return out


@pytest.mark.parametrize("profile", ["oracle", "epic"])
def test_killed_while_polling_downloading_and_crawling_ends_with_each_claim_once(env, profile):
    e = env
    tmp = e.tmp / profile
    tmp.mkdir()
    system = f"urn:fhir-injection:test-{e.run}-{profile}:claim"
    cfg = write_config(tmp / "config.toml", system)
    group = make_group(e, f"resume-{profile}-{e.run}", e.patients)
    state = tmp / "state.json"

    def slow_files(number, method, path, phase):  # a download takes a while: it can be caught
        if phase == "received" and "/Binary/" in path:
            time.sleep(0.4)

    proxy = FaultProxy(
        getattr(e, profile),
        rates={"429": 0.1},
        seed=13,
        hook=slow_files,
        applies_to=lambda method, path: path.split("?")[0].endswith(f"/{MA}"),
    )
    with proxy:
        cmd = sync_command(
            proxy.url,
            tmp,
            cfg,
            "--pull",
            "auto",
            "--group",
            group,
            "--max-poll-wait",
            "2",
            state=state,
        )
        kick_offs = lambda: sum(1 for m, p, _ in proxy.log if p.endswith("/$export"))  # noqa: E731

        # 1. killed while the server builds the export
        err = killed_at(cmd, "export in progress")
        assert f"context from Group/{group}/$export, administrations by crawl" in err
        assert the_job(state)["status_url"]
        started = kick_offs()  # two: HAPI refuses Medication, Location, PractitionerRole at first
        assert "does not export Location, Medication, PractitionerRole" in err

        # 2. resumed (no second kick-off), killed during the downloads
        err = killed_at(cmd, "downloaded file 1 of")
        assert "resuming the export kicked off" in err and kick_offs() == started
        job = the_job(state)
        assert job["status_url"] and "downloaded" not in job
        files = list((tmp / "state.json.context").glob("*.ndjson.gz"))
        manifest_files = int(err.split("downloaded file 1 of ")[1].split(" ")[0])
        assert len(files) < manifest_files

        # 3. the rest downloaded, killed during the crawl (some Claims posted)
        err = killed_at(cmd, "crawl: 5")
        assert kick_offs() == started and "downloaded" in the_job(state)
        assert 0 < sum(posted(e.url, "Claim", system).values()) < len(e.claims)

        # 4. the crawl finishes: each Claim and Task of the offline run exactly once
        done = run(cmd)
        assert done.returncode == 0, done.stderr[-3000:]
        assert kick_offs() == started
        report = json.loads((tmp / "report.json").read_text())
        pull = report["summary"]["pull"]
        assert pull["strategy"] == "crawl" and pull["cohort_from"] == f"Group/{group}/$export"
        assert "downloaded by an interrupted run" in pull["reason"]
        assert proxy.counts["429"] > 0  # the crawl's 429s were waited out
        assert report["summary"]["http"]["retries"] > 0
        assert_exactly_once(e.url, system, e.claims, e.tasks, f"{profile} after three kills")
        assert statuses(e.url, system) == e.claims

        # 5. a rerun writes nothing
        again = run(cmd)
        assert again.returncode == 0, again.stderr[-3000:]
        summary = json.loads((tmp / "report.json").read_text())["summary"]
        posted_now = summary["posted"]
        assert posted_now["claims"]["created"] == posted_now["claims"]["updated"] == 0
        assert posted_now["tasks"]["created"] == posted_now["tasks"]["updated"] == 0
        reason = summary["pull"]["reason"]
        if profile == "oracle":
            assert f"context from Group/{group}/$export (incremental since " in reason
            assert kick_offs() == started + 1  # the types it takes, remembered
        else:  # Epic: a group once a day
            assert f"Group/{group}/$export refused (HTTP 429 with a Retry-After longer" in reason
            assert reason.endswith("context by look-ups")
        assert_exactly_once(e.url, system, e.claims, e.tasks, f"{profile} rerun")


def test_oracle_second_concurrent_export_is_waited_out(env):
    e = env
    tmp = e.tmp / "oracle-429"
    tmp.mkdir()
    system = f"urn:fhir-injection:test-{e.run}-o429:claim"
    cfg = write_config(tmp / "config.toml", system)
    busy = make_group(e, f"busy-{e.run}", e.patients)
    small = make_group(e, f"small-{e.run}", e.patients[:4])
    other = requests.get(
        f"{e.oracle}/Group/{busy}/$export",
        headers={"Accept": "application/fhir+json", "Prefer": "respond-async"},
        timeout=60,
    )
    assert other.status_code == 202
    try:
        done = run(
            sync_command(
                e.oracle,
                tmp,
                cfg,
                "--pull",
                "auto",
                "--group",
                small,
                "--max-poll-wait",
                "2",
                state=tmp / "state.json",
            )
        )
    finally:
        requests.delete(other.headers["Content-Location"], timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "429" in done.stderr and "retrying in" in done.stderr
    summary = json.loads((tmp / "report.json").read_text())["summary"]
    assert summary["http"]["source"]["by_status"]["429"] >= 1
    assert f"context from Group/{small}/$export (full)" in summary["pull"]["reason"]
    assert summary["pull"]["patients"] == 4 and summary["pull"]["export"]["records"]["Patient"] == 4
