#!/usr/bin/env python3
"""How big report.html gets and how fast a browser shows it, at N administrations.

    python tests/bench/report_bench.py [--n 100000] [--work /tmp/report-bench] [--keep]

1. generates N administrations (tests/bench/generate.py, the demo clinic's mix);
2. runs the offline job on them (it writes report.json, report.html, worklist.csv);
3. renders the page again from the saved report.json (`fhir-injection report`'s path);
4. opens report.html from disk in headless Chromium (Selenium), five times, and measures the
   time from the start of navigation to the first page of the worklist drawn, and to every
   chart drawn (the page records both with performance.now()), and the wall time of
   driver.get() until both are done.

Prints one JSON line (progress on stderr). Not a test: nothing here asserts on a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "bench"))

from generate import generate  # noqa: E402

from fhir_injection.clock import now  # noqa: E402
from fhir_injection.decision.practice import Config  # noqa: E402
from fhir_injection.jobs.offline import run_folder  # noqa: E402
from fhir_injection.rules import load_rules  # noqa: E402
from fhir_injection.sinks.html import load_report, write_pages  # noqa: E402
from tests.browser import driver, open_report, severe  # noqa: E402


def say(message: str) -> None:
    print(f"report-bench: {message}", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--work", default="/tmp/fhir-injection-report-bench")
    ap.add_argument("--loads", type=int, default=5, help="browser loads to time (median reported)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args(argv)
    work = Path(args.work)
    source, out = work / "in", work / "out"
    if out.exists():
        shutil.rmtree(out)
    t = time.perf_counter()
    generate(args.n, source)
    say(f"generated {args.n} administrations in {time.perf_counter() - t:.1f} s")

    rules = load_rules()
    t = time.perf_counter()
    result = run_folder(source, out, rules, Config(), now())
    offline_s = time.perf_counter() - t
    say(f"offline job with report.html: {offline_s:.1f} s")

    t = time.perf_counter()
    meta, view, summary = load_report(out / "report.json")
    loaded_s = time.perf_counter() - t
    t = time.perf_counter()
    write_pages(view, meta, summary, work / "again.html", work / "again.csv")
    render_s = time.perf_counter() - t
    say(f"report command: read + sum {loaded_s:.2f} s, render {render_s:.2f} s")

    page = out / "report.html"
    browser = driver(1400, 1000)
    loads = []
    try:
        for _ in range(args.loads):
            t = time.perf_counter()
            ready = open_report(browser, page, timeout=120)
            wall = time.perf_counter() - t
            assert ready["chartErrors"] == 0 and not severe(browser), severe(browser)
            rows = len(browser.find_elements("css selector", "#worklist tbody tr"))
            loads.append(
                {
                    "table_ms": ready["tableMs"],
                    "charts_ms": ready["chartsMs"],
                    "wall_s": wall,
                    "rows_on_page": rows,
                }
            )
    finally:
        browser.quit()
    worklist_rows = len(view.worklist)
    figures = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        "administrations": result.summary["administrations"],
        "worklist_rows": worklist_rows,
        "offline_job_s": round(offline_s, 1),
        "offline_per_s": round(result.summary["administrations"] / offline_s),
        "report_json_mb": round((out / "report.json").stat().st_size / 1e6, 1),
        "report_html_mb": round(page.stat().st_size / 1e6, 2),
        "worklist_csv_mb": round((out / "worklist.csv").stat().st_size / 1e6, 2),
        "report_command_read_s": round(loaded_s, 2),
        "report_command_render_s": round(render_s, 2),
        "browser_first_table_page_ms": round(statistics.median(x["table_ms"] for x in loads)),
        "browser_all_charts_ms": round(statistics.median(x["charts_ms"] for x in loads)),
        "browser_wall_s": round(statistics.median(x["wall_s"] for x in loads), 2),
        "rows_on_first_page": loads[0]["rows_on_page"],
    }
    print(json.dumps(figures))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
