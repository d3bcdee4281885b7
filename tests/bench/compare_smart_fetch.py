#!/usr/bin/env python3
"""Our Bulk Data client side by side with SMART Fetch (``smart-fetch`` on PyPI) on one server.

    python tests/bench/compare_smart_fetch.py --fhir-url http://127.0.0.1:8092/fhir --out /tmp/cmp

The server must hold the demo (``fhir-injection load --source fixtures/demo --target URL``) and
``smart-fetch`` must be on PATH. SMART Fetch's fixed type list has no MedicationAdministration
(nor Coverage, Practitioner, Organization, Medication), so the tools are compared on the context
types both can export: Patient, Encounter, Condition.

1. Each tool runs a system-level ``$export`` of those types through its own counting proxy
   (tests/faultproxy.py, no faults): requests and wall time. Both honour HAPI's ``Retry-After:
   120``; ours also runs with ``--max-poll-wait 2`` (what our tests use).
2. Interoperation: our full export (every type the decision reads) is decided by ``sync --source
   DIR`` as it is, and again with its Patient, Encounter and Condition files replaced by SMART
   Fetch's output folder's files (and its ``log.ndjson`` and ``.metadata``): the decisions must be
   the same, administration by administration.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from faultproxy import FaultProxy  # noqa: E402

TYPES = "Patient,Encounter,Condition"
KEYS = ("outcome", "procedure", "hcpcs", "units", "payer_type", "service_date", "diagnoses")
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def timed(cmd: list[str], url: str) -> dict:
    """Run ``cmd`` (with ``{url}`` replaced by a counting proxy's URL): requests, seconds."""
    with FaultProxy(url) as proxy:
        proxy_url = proxy.url
        args = [a.replace("{url}", proxy_url) for a in cmd]
        t0 = time.monotonic()
        run = subprocess.run(args, capture_output=True, text=True, env=ENV, timeout=1800)
        seconds = time.monotonic() - t0
        requests = proxy.counts["forwarded"] + proxy.injected
    if run.returncode != 0:
        raise SystemExit(f"{args[0]} failed ({run.returncode}):\n{run.stderr[-3000:]}")
    return {"requests": requests, "seconds": round(seconds, 1)}


def decisions(report: Path) -> dict[str, tuple]:
    data = json.loads(report.read_text(encoding="utf-8"))
    return {
        d["administration"]: (
            *tuple(json.dumps(d.get(k), sort_keys=True) for k in KEYS),
            json.dumps(d.get("modifiers"), sort_keys=True),
            tuple(sorted(g["code"] for g in d.get("gaps") or [])),
        )
        for d in data["administrations"]
    }


def decide(folder: Path, out: Path) -> dict[str, tuple]:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "fhir_injection",
            "sync",
            "--source",
            str(folder),
            "--target",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    if run.returncode not in (0, 1):
        raise SystemExit(f"sync --source {folder} failed:\n{run.stderr[-3000:]}")
    return decisions(out / "report.json")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fhir-url", required=True)
    p.add_argument("--out", required=True, type=Path)
    a = p.parse_args()
    out: Path = a.out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    ours = [sys.executable, "-m", "fhir_injection", "export", "--source", "{url}", "--type", TYPES]
    result: dict = {"types": TYPES}
    result["ours_default_cap"] = timed(
        [*ours, "--target", str(out / "ours"), "--state", str(out / "s1.json")], a.fhir_url
    )
    result["ours_poll_2s"] = timed(
        [
            *ours,
            "--target",
            str(out / "ours-2"),
            "--state",
            str(out / "s2.json"),
            "--max-poll-wait",
            "2",
        ],
        a.fhir_url,
    )
    result["smart_fetch"] = timed(
        ["smart-fetch", "bulk", "--fhir-url", "{url}", "--type", TYPES, str(out / "sf")], a.fhir_url
    )
    version = subprocess.run(["smart-fetch", "--version"], capture_output=True, text=True)
    result["smart_fetch_version"] = (version.stdout or version.stderr).strip()

    # Interoperation: SMART Fetch's context files in place of ours, decided as they are.
    full = out / "full"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fhir_injection",
            "export",
            "--source",
            a.fhir_url,
            "--target",
            str(full),
            "--state",
            str(out / "s3.json"),
            "--max-poll-wait",
            "2",
        ],
        check=True,
        capture_output=True,
        env=ENV,
        timeout=1800,
    )
    mixed = out / "mixed"
    shutil.copytree(full, mixed)
    (mixed / "manifest.json").unlink()  # it lists our files, which are replaced
    for t in TYPES.split(","):
        for f in mixed.glob(f"*.{t}.ndjson.gz"):
            f.unlink()
    for f in (out / "sf").iterdir():
        if f.is_file():
            shutil.copy2(f, mixed / f.name)
    theirs, own = decide(mixed, out / "decided-mixed"), decide(full, out / "decided-full")
    differ = sorted(k for k in own if own.get(k) != theirs.get(k))
    result["interop"] = {
        "administrations": len(own),
        "same_decisions": len(own) - len(differ),
        "different": differ[:10],
        "smart_fetch_files": sorted(f.name for f in (out / "sf").iterdir()),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
