#!/usr/bin/env python3
"""Benchmark of the per-patient crawl (``--pull crawl``): requests per patient, and wall time with
concurrency 4 against 1 through the fault proxy with 50 ms added latency per request.

    python tests/bench/bench_crawl.py --hapi-url http://127.0.0.1:8091/fhir

The server must be our HAPI test server (tests/hapi/run-hapi.sh start); the demo clinic
(fixtures/demo, 116 patients) is loaded into it (PUT by id: loading twice changes nothing). The
proxy (tests/faultproxy.py, no faults) sleeps 50 ms before forwarding each request, as a WAN
round trip to an EHR would cost.

Measured (one JSON line on stdout):

* ``crawl``: for each concurrency, the crawl alone: every patient's
  ``MedicationAdministration?patient=…`` search and its next links, pages taken as they come and
  nothing decided (what ``--concurrency`` speeds up): wall seconds, searches, searches per patient;
* ``trial``: the whole read-only trial (``sync --target DIR``: crawl, look-ups, decisions, files)
  at each concurrency: wall seconds and requests (the look-ups run on the main thread, so the
  speed-up is smaller);
* ``speedup``: crawl wall time at 1 over at 4 (target >= 3), and the trial's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fhir_injection import connect, load_folder  # noqa: E402
from fhir_injection.decision.practice import Config  # noqa: E402
from fhir_injection.jobs.sync import SyncOptions, run_sync  # noqa: E402
from fhir_injection.rules import load_rules  # noqa: E402
from fhir_injection.sources.crawl import CrawlPull  # noqa: E402
from fhir_injection.sources.resolver import Resolver  # noqa: E402
from tests.faultproxy import FaultProxy  # noqa: E402

DEMO = ROOT / "fixtures" / "demo"
LATENCY = 0.05


def crawl_only(url: str, concurrency: int) -> dict:
    client = connect(url)
    client.capabilities()
    pull = CrawlPull(
        client,
        Resolver(client),
        lambda p: None,
        state={},
        cohort_dir=str(DEMO),
        concurrency=concurrency,
    )
    t0 = time.perf_counter()
    admins = sum(len(page) for page in pull.pages(None, {}, lambda: None))
    seconds = time.perf_counter() - t0
    s = pull.stats
    return {
        "seconds": round(seconds, 2),
        "patients": s.done,
        "administrations": admins,
        "searches": s.searches,
        "searches_per_patient": round(s.searches / s.done, 3),
    }


def trial(url: str, concurrency: int, rules) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        client = connect(url)
        options = SyncOptions(
            pull="crawl",
            cohort_dir=str(DEMO),
            concurrency=concurrency,
            write_to=str(Path(tmp) / "out"),
            state_path=str(Path(tmp) / "s.json"),
        )
        t0 = time.perf_counter()
        result = run_sync(client, client, rules, Config(), options)
        seconds = time.perf_counter() - t0
        return {
            "seconds": round(seconds, 2),
            "requests": client.stats.requests,
            "administrations": result.summary["administrations"],
        }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hapi-url", default="http://127.0.0.1:8091/fhir")
    parser.add_argument("--no-load", action="store_true", help="the demo is already loaded")
    args = parser.parse_args()
    if not args.no_load:
        loaded = load_folder(str(DEMO), connect(args.hapi_url))
        print(f"loaded {sum(loaded.loaded.values())} resources", file=sys.stderr)
    rules = load_rules()
    out: dict = {"latency_ms": int(LATENCY * 1000), "crawl": {}, "trial": {}}

    def delay(number: int, method: str, path: str, phase: str) -> None:
        if phase == "received":
            time.sleep(LATENCY)

    with FaultProxy(args.hapi_url, hook=delay) as proxy:
        crawl_only(proxy.url, 4)  # warm-up: HAPI's first searches are slower
        for concurrency in (1, 4):
            out["crawl"][concurrency] = crawl_only(proxy.url, concurrency)
            print(f"crawl c={concurrency}: {out['crawl'][concurrency]}", file=sys.stderr)
        for concurrency in (1, 4):
            out["trial"][concurrency] = trial(proxy.url, concurrency, rules)
            print(f"trial c={concurrency}: {out['trial'][concurrency]}", file=sys.stderr)
    out["speedup"] = {
        "crawl": round(out["crawl"][1]["seconds"] / out["crawl"][4]["seconds"], 2),
        "trial": round(out["trial"][1]["seconds"] / out["trial"][4]["seconds"], 2),
    }
    print(json.dumps(out))
    ok = out["speedup"]["crawl"] >= 3 and out["crawl"][4]["searches_per_patient"] <= 1.2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
