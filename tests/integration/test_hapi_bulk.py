"""The Bulk Data client against a real HAPI FHIR JPA server (8.8.0, loopback; ``FHIR_BASE_URL``).

One module-scoped setup: the server wiped (``$expunge``), the demo loaded, the offline run over
exactly the administrations HAPI accepted. Then, in file order:

1. ``fhir-injection export`` (CLI) writes a folder; ``sync --source DIR`` on it decides every
   administration as the offline run does;
2. an export killed while HAPI works is resumed by the next run (no second kick-off);
3. ``sync --pull export`` posts the offline run's Claims and Tasks, each once; a second run (an
   incremental export: nothing changed) and a ``--full`` one post nothing new.

The server is wiped, so it must be a loopback test server (the local HAPI of tests/hapi).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from fhir_injection import Config, connect, load_folder, run_folder
from fhir_injection.bundled import DEMO_AS_OF
from tests.integration.test_hapi_sync import (
    by_identifier,
    claim_statuses,
    copy_demo,
    entries,
    expunge_everything,
    is_loopback,
)

pytestmark = pytest.mark.hapi

MA = "MedicationAdministration"
POLL = "2"  # seconds between status checks (HAPI asks for more; its job takes ~20 s here)
KEYS = ("outcome", "procedure", "hcpcs", "units", "modifiers", "payer_type", "service_date")


def decisions(report: Path) -> dict[str, tuple]:
    return {
        k: (
            *(v.get(x) for x in KEYS),
            json.dumps(v.get("modifiers"), sort_keys=True),
            tuple(sorted(g["code"] for g in v.get("gaps") or [])),
        )
        for k, v in entries(report).items()
    }


ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's package, wherever the cwd is


def cli(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fhir_injection", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=ENV,
    )


class Env:
    pass


@pytest.fixture(scope="module")
def env(fhir_base_url, rules, tmp_path_factory):
    assert is_loopback(fhir_base_url), "these tests wipe the server: use the local HAPI"
    e = Env()
    e.url, e.rules = fhir_base_url, rules
    e.tmp = tmp_path_factory.mktemp("hapi-bulk")
    e.system = f"urn:fhir-injection:test-{uuid.uuid4().hex[:10]}:claim"
    e.config = Config(
        identifier_system=e.system,
        as_of=date.fromisoformat(DEMO_AS_OF),
        default_place_of_service="11",
    )
    e.cfg = e.tmp / "config.toml"
    e.cfg.write_text(
        f'identifier_system = "{e.system}"\nas_of = {DEMO_AS_OF}\ndefault_place_of_service = "11"\n',
        encoding="utf-8",
    )
    client = connect(e.url)
    expunge_everything(client)
    data = copy_demo(e.tmp / "demo")
    load = load_folder(str(data), connect(e.url))
    e.refused = {p.record for p in load.problems}
    e.accepted = [
        json.loads(x)["id"]
        for x in (data / f"{MA}.ndjson").read_text().splitlines()
        if x.strip() and f"{MA}/{json.loads(x)['id']}" not in e.refused
    ]
    accepted_dir = copy_demo(e.tmp / "accepted", drop=e.refused)
    e.offline = run_folder(accepted_dir, e.tmp / "offline", rules, e.config, "2026-11-26T12:00:00Z")
    return e


def test_export_folder_gives_the_offline_decisions(env):
    e = env
    folder = e.tmp / "export"
    t0 = time.monotonic()
    run = cli(
        "export",
        "--source",
        e.url,
        "--target",
        str(folder),
        "--state",
        str(e.tmp / "export-state.json"),
        "--max-poll-wait",
        POLL,
        cwd=e.tmp,
    )
    print(run.stderr[-2000:], run.stdout, f"export: {time.monotonic() - t0:.1f} s")
    assert run.returncode == 0, run.stderr[-3000:]
    manifest = json.loads((folder / "manifest.json").read_text())
    types = Counter(f["type"] for f in manifest["output"])
    assert types[MA] >= 1 and types["Patient"] >= 1 and types["Encounter"] >= 1
    assert all((folder / f["destination"]).is_file() for f in manifest["output"])
    state = json.loads((e.tmp / "export-state.json").read_text())
    job = state["sources"][e.url]["exports"]["$export"]
    assert job == {"since": manifest["transactionTime"]}  # no status URL left: the job is done

    out = e.tmp / "from-export"
    sync = cli(
        "--config", str(e.cfg), "sync", "--source", str(folder), "--target", str(out), cwd=e.tmp
    )
    assert sync.returncode == 0, sync.stderr[-3000:]
    ours, offline = decisions(out / "report.json"), decisions(e.offline.report_path)
    assert set(ours) == set(e.accepted) == set(offline)
    assert ours == offline


def test_a_killed_export_is_resumed_not_started_again(env):
    e = env
    state = e.tmp / "kill-state.json"
    cmd = [
        sys.executable,
        "-m",
        "fhir_injection",
        "-v",
        "export",
        "--source",
        e.url,
        "--target",
        str(e.tmp / "killed"),
        "--state",
        str(state),
        "--max-poll-wait",
        POLL,
        "--type",
        "Patient",
    ]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=e.tmp, env=ENV)
    lines = []
    for line in proc.stderr:  # killed once HAPI has the job and we are waiting on it
        lines.append(line)
        if "export in progress" in line or "downloaded" in line:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert any("export in progress" in x for x in lines), "".join(lines)[-2000:]
    saved = json.loads(state.read_text())["sources"][e.url]["exports"]["$export?_type=Patient"]
    status_url = saved["status_url"]
    again = cli(
        "export",
        "--source",
        e.url,
        "--target",
        str(e.tmp / "killed"),
        "--state",
        str(state),
        "--max-poll-wait",
        POLL,
        "--type",
        "Patient",
        cwd=e.tmp,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming the export" in again.stderr
    assert "export started at" not in again.stderr  # no second kick-off
    assert status_url.startswith(e.url)
    files = json.loads((e.tmp / "killed" / "manifest.json").read_text())["output"]
    assert {f["type"] for f in files} == {"Patient"}


def test_sync_pull_export_posts_each_claim_once(env):
    e = env
    state, client = e.tmp / "pull-state.json", connect(e.url)
    base = [
        "--config",
        str(e.cfg),
        "sync",
        "--source",
        e.url,
        "--pull",
        "export",
        "--state",
        str(state),
        "--max-poll-wait",
        POLL,
    ]
    first = cli(*base, "--report", str(e.tmp / "pull-1.json"), cwd=e.tmp)
    print(first.stdout, first.stderr[-2000:])
    assert first.returncode == 0, first.stderr[-3000:]
    claims = by_identifier(client, "Claim", e.system, e.accepted)
    tasks = by_identifier(client, "Task", e.system + ":task", e.accepted)
    offline = e.offline.summary
    assert claim_statuses(claims) == offline["claims"]
    assert len(tasks) == offline["tasks"]
    report = json.loads((e.tmp / "pull-1.json").read_text())["summary"]
    assert report["posted"]["claims"]["created"] == sum(offline["claims"].values())
    assert decisions(e.tmp / "pull-1.json") == decisions(e.offline.report_path)

    second = cli(*base, "--report", str(e.tmp / "pull-2.json"), cwd=e.tmp)  # incremental
    assert second.returncode == 0, second.stderr[-3000:]
    s2 = json.loads((e.tmp / "pull-2.json").read_text())["summary"]
    assert s2["posted"]["claims"]["created"] == s2["posted"]["tasks"]["created"] == 0
    assert s2["posted"]["claims"]["updated"] == 0

    third = cli(*base, "--full", "--report", str(e.tmp / "pull-3.json"), cwd=e.tmp)
    assert third.returncode == 0, third.stderr[-3000:]
    s3 = json.loads((e.tmp / "pull-3.json").read_text())["summary"]
    assert s3["administrations"] == len(e.accepted)  # every one decided again ...
    assert (
        s3["posted"]["claims"]["created"] == s3["posted"]["tasks"]["created"] == 0
    )  # ... none new
    assert s3["posted"]["claims"]["updated"] == 0
    assert by_identifier(client, "Claim", e.system, e.accepted).keys() == claims.keys()
    job = json.loads(state.read_text())["sources"][e.url]["exports"]
    assert all("status_url" not in j and "downloaded" not in j for j in job.values())
