#!/usr/bin/env python3
"""docs/report.png: the demo clinic's report.html in headless Chromium, 1400 px wide.

    python tests/report_screenshot.py [--out docs/report.png] [--height 2000]

Runs the offline job on the bundled demo twice into a temporary folder (so the trends section
has two runs), opens its report.html from disk and saves the top of the page.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_injection.bundled import DEMO_AS_OF, demo_config, demo_dir  # noqa: E402
from fhir_injection.config import load_config  # noqa: E402
from fhir_injection.jobs.offline import run_folder  # noqa: E402
from fhir_injection.rules import load_rules  # noqa: E402
from tests.browser import driver, open_report, severe  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "report.png"))
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=2000)
    args = ap.parse_args(argv)
    rules = load_rules()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        # as `fhir-injection sync` runs the bundled demo: its practice profile and its as-of day
        config = dataclasses.replace(
            load_config(demo_config()), as_of=date.fromisoformat(DEMO_AS_OF)
        )
        run_folder(demo_dir(), out, rules, config, "2026-11-29T10:00:00Z")
        run_folder(demo_dir(), out, rules, config, "2026-11-30T10:00:00Z")
        browser = driver(args.width, args.height)
        try:
            open_report(browser, out / "report.html")
            problems = severe(browser)
            if problems:
                print(f"console errors: {problems}", file=sys.stderr)
                return 1
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(args.out)
        finally:
            browser.quit()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
