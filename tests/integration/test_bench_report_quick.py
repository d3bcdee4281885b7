"""Keeps tests/bench/report_bench.py working at a small N. Shape only: no time is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.browser
def test_report_bench_prints_one_json_line_of_figures(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "bench" / "report_bench.py"), "--n", "800",
         "--loads", "1", "--work", str(tmp_path / "work")],
        capture_output=True, text=True, cwd=str(ROOT), timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = proc.stdout.strip().splitlines()
    figures = json.loads(line)
    assert figures["administrations"] == 800
    assert figures["rows_on_first_page"] == 50  # 800 administrations have more than 50 gaps to fix
    assert figures["worklist_rows"] > 50 and figures["report_html_mb"] > 0.8
    assert figures["browser_first_table_page_ms"] > 0 and figures["browser_all_charts_ms"] > 0
    assert not (tmp_path / "work").exists()  # removed without --keep
