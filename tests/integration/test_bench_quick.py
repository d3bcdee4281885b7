"""Keeps the benchmarks (tests/bench/) working. Shape only: nothing here asserts on a time."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "tests" / "bench" / "bench.py"


def _bench(*args: str, timeout: int = 600) -> dict:
    proc = subprocess.run(
        [sys.executable, str(BENCH), *args],
        capture_output=True,
        text=True,
        cwd=str(ROOT),
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout  # one JSON line, progress goes to stderr
    return json.loads(lines[0])


def test_generator_is_deterministic_and_exact(tmp_path):
    sys.path.insert(0, str(ROOT / "tests" / "bench"))
    from generate import generate

    a = generate(400, tmp_path / "a", seed=7)
    b = generate(400, tmp_path / "b", seed=7)
    assert a == b and a["administrations"] == 400 and a["clinics"] == 2
    for f in (tmp_path / "a").glob("*.ndjson"):
        assert f.read_bytes() == (tmp_path / "b" / f.name).read_bytes(), f.name
    ids = [
        json.loads(line)["id"]
        for line in (tmp_path / "a" / "MedicationAdministration.ndjson").open()
    ]
    assert len(set(ids)) == 400


def test_quick_offline_json_line():
    out = _bench("--quick", "--offline-only", "--offline-n", "300")
    assert {"mode", "date", "machine", "offline", "profile", "bench_s"} <= set(out)
    (offline,) = out["offline"]
    assert offline["n"] == 300
    assert {"wall_s", "cpu_s", "per_s", "per_cpu_s", "peak_rss_mb", "outcomes"} <= set(offline)
    assert sum(offline["outcomes"].values()) == 300
    assert {"share_by_area", "top_own_time"} <= set(out["profile"])
    assert "hapi" not in out


@pytest.mark.hapi
def test_quick_against_hapi_ours_equals_baseline(fhir_base_url):
    # fhirpy is in the test extra: CI has it, so a missing fhirpy fails here instead of skipping.
    assert importlib.util.find_spec("fhirpy"), "the baseline needs fhirpy: pip install -e '.[test]'"
    out = _bench(
        "--quick",
        "--isolated",
        "--hapi-url",
        fhir_base_url,
        "--offline-n",
        "300",
        "--no-profile",
        "--hapi-n",
        "300",
        timeout=1200,
    )
    hapi = out["hapi"]
    assert hapi["claims_equal"] is True and hapi["claims"]["ours"] > 0
    for kind in ("full", "incremental"):
        assert {"ours_requests", "baseline_requests", "ours_per_1000", "baseline_per_1000"} <= set(
            hapi["http"][kind]
        )
    assert {"ours_s", "baseline_s", "speedup", "hapi_floor_s", "ours_over_floor"} <= set(
        hapi["sync"]
    )
