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
sys.path.insert(0, str(ROOT))

from tests.faultproxy import FaultProxy  # noqa: E402

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
    p.add_argument(
        "--vendor",
        choices=("oracle", "epic"),
        help="compare on the HAPI vendor profile's path (…/<vendor>/fhir) instead: Group exports "
        "and crawls (see vendor())",
    )
    p.add_argument("--group", default="bench-clinic", help="--vendor: the Group to export")
    a = p.parse_args()
    out: Path = a.out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    if a.vendor:
        print(json.dumps(vendor(a.fhir_url, a.vendor, a.group, out), indent=1))
        return
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


# ----------------------------------------------------------------------------- vendor profiles

LATENCY = 0.05  # the crawl comparison: a WAN round trip to an EHR, as bench_crawl.py


def counted(cmd: list[str], url: str, latency: float = 0.0) -> dict:
    """``timed`` with ``latency`` seconds added before each request is forwarded."""

    def delay(number: int, method: str, path: str, phase: str) -> None:
        if phase == "received" and latency:
            time.sleep(latency)

    with FaultProxy(url, hook=delay) as proxy:
        args = [x.replace("{url}", proxy.url) for x in cmd]
        t0 = time.monotonic()
        run = subprocess.run(args, capture_output=True, text=True, env=ENV, timeout=1800)
        seconds = time.monotonic() - t0
        count = proxy.counts["forwarded"] + proxy.injected
    if run.returncode not in (0, 1):
        raise SystemExit(f"{args[0]} failed ({run.returncode}):\n{run.stderr[-3000:]}")
    return {"requests": count, "seconds": round(seconds, 1), "stderr_tail": run.stderr[-300:]}


def swap_in(base: Path, replacement: Path, into: Path) -> Path:
    """``base`` (a full export folder) with its Patient, Encounter and Condition files replaced by
    every file of ``replacement`` (another tool's output folder, as it is)."""
    shutil.copytree(base, into)
    (into / "manifest.json").unlink()
    for t in TYPES.split(","):
        for f in into.glob(f"*.{t}.ndjson.gz"):
            f.unlink()
    for f in replacement.iterdir():
        if f.is_file() and f.name != "manifest.json":  # ours lists only its own files
            shutil.copy2(
                f, into / f"theirs-{f.name}" if (into / f.name).exists() else into / f.name
            )
    return into


def same(own: dict, theirs: dict) -> dict:
    differ = sorted(k for k in own if own.get(k) != theirs.get(k))
    return {
        "administrations": len(own),
        "same_decisions": len(own) - len(differ),
        "different": differ[:10],
    }


def vendor(plain_url: str, profile: str, group: str, out: Path) -> dict:
    """Side by side on a vendor profile of our HAPI test server (``…/oracle/fhir``, ``…/epic/fhir``;
    the demo loaded): what a user of each tool runs against Oracle Health or Epic.

    * export: our ``export --group`` vs ``smart-fetch bulk --group``, Patient, Encounter and
      Condition (SMART Fetch has no MedicationAdministration, Coverage, Practitioner, Organization
      or Medication in its type list; the vendors export no MedicationAdministration at all);
    * crawl, through a proxy adding 50 ms a request: our read-only trial ``sync --pull crawl
      --patients`` (MedicationAdministration by patient, then the context by batched look-ups: all
      a decision needs) vs ``smart-fetch crawl --id-file`` of Patient, Encounter and Condition (its
      per-patient searches of the context types; it cannot read administrations);
    * interoperation: a full export of the plain path with its Patient, Encounter and Condition
      files replaced by each tool's output folder, decided by ``sync --source DIR`` as it is.

    Epic exports a group once a day: each export here uses its own Group.
    """
    base = plain_url[: -len("/fhir")] + f"/{profile}/fhir"
    import requests as http

    patients = [
        json.loads(x)["id"]
        for x in (ROOT / "fixtures" / "demo" / "Patient.ndjson").read_text().splitlines()
        if x.strip()
    ]
    known = {
        r["resource"]["id"]
        for r in http.get(
            f"{plain_url}/Patient", params={"_count": "1000", "_elements": "id"}, timeout=60
        )
        .json()
        .get("entry", [])
    }
    patients = [p for p in patients if p in known]

    def new_group(name: str) -> str:
        body = {
            "resourceType": "Group",
            "id": name,
            "type": "person",
            "actual": True,
            "member": [{"entity": {"reference": f"Patient/{p}"}} for p in patients],
        }
        put = http.put(
            f"{plain_url}/Group/{name}",
            json=body,
            headers={"Content-Type": "application/fhir+json"},
            timeout=60,
        )
        put.raise_for_status()
        return name

    stamp = str(int(time.time()))
    ids = out / "patients.txt"
    ids.write_text("".join(p + "\n" for p in patients))
    fi = [sys.executable, "-m", "fhir_injection"]
    result: dict = {"profile": profile, "types": TYPES, "patients": len(patients)}
    result["export"] = {
        "ours": counted(
            [
                *fi,
                "export",
                "--source",
                "{url}",
                "--group",
                new_group(f"{group}-o1-{stamp}"),
                "--type",
                TYPES,
                "--target",
                str(out / "ours"),
                "--state",
                str(out / "s1.json"),
            ],
            base,
        ),
        "ours_poll_2s": counted(
            [
                *fi,
                "export",
                "--source",
                "{url}",
                "--group",
                new_group(f"{group}-o2-{stamp}"),
                "--type",
                TYPES,
                "--target",
                str(out / "ours-2"),
                "--state",
                str(out / "s2.json"),
                "--max-poll-wait",
                "2",
            ],
            base,
        ),
        "smart_fetch": counted(
            [
                "smart-fetch",
                "bulk",
                "--fhir-url",
                "{url}",
                "--group",
                new_group(f"{group}-sf-{stamp}"),
                "--type",
                TYPES,
                str(out / "sf-bulk"),
            ],
            base,
        ),
    }
    result["crawl"] = {
        "latency_ms": int(LATENCY * 1000),
        "ours_trial": counted(
            [
                *fi,
                "sync",
                "--source",
                "{url}",
                "--target",
                str(out / "trial"),
                "--pull",
                "crawl",
                "--patients",
                str(ids),
            ],
            base,
            LATENCY,
        ),
        "smart_fetch": counted(
            [
                "smart-fetch",
                "crawl",
                "--fhir-url",
                "{url}",
                "--id-file",
                str(ids),
                "--type",
                TYPES,
                str(out / "sf-crawl"),
            ],
            base,
            LATENCY,
        ),
    }
    version = subprocess.run(["smart-fetch", "--version"], capture_output=True, text=True)
    result["smart_fetch_version"] = (version.stdout or version.stderr).strip()
    # Interoperation: the rest of the data from a plain-path export (the vendors export no
    # administrations); the context types from each tool, decided as they are.
    full = out / "full"
    subprocess.run(
        [
            *fi,
            "export",
            "--source",
            plain_url,
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
    own = decide(swap_in(full, out / "ours-2", out / "mixed-ours"), out / "decided-ours")
    result["interop"] = {
        "smart_fetch_bulk": same(
            own, decide(swap_in(full, out / "sf-bulk", out / "mixed-sfb"), out / "decided-sfb")
        ),
        "smart_fetch_crawl": same(
            own, decide(swap_in(full, out / "sf-crawl", out / "mixed-sfc"), out / "decided-sfc")
        ),
        "ours_crawl_trial": same(own, decisions(out / "trial" / "report.json")),
        "smart_fetch_files": sorted(f.name for f in (out / "sf-crawl").iterdir()),
    }
    return result


if __name__ == "__main__":
    main()
