"""Malformed and hostile input, through the real command in a subprocess.

Each case of ``tests/badinput/cases.json`` (written by ``tests/badinput/make_corpus.py``) is copied next
to a small good world (``tests/badinput/good``) and run with ``python -m fhir_injection sync``. Every
case must: finish (exit 0, or 1 when records were refused) without a traceback; write a valid
report.json; list each bad record in ``errors`` (naming file:line or Type/id, and the field) or as the
administration's gap; and leave the good administration's Claim exactly as it is without the case.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "badinput"
CASES = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))
GOOD = "MedicationAdministration/good"


def run_sync(
    source: Path, target: Path, *extra: str, timeout: int = 120
) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "fhir_injection",
            *extra,
            "sync",
            "--source",
            str(source),
            "--target",
            str(target),
        ],
        cwd=target.parent,
        env=env,
        capture_output=True,
        timeout=timeout,
    )


def source_for(tmp_path: Path, case: dict | None) -> Path:
    source = tmp_path / "in"
    shutil.copytree(CORPUS / "good", source)
    if case is not None:
        folder = CORPUS / "cases" / case["name"]
        if folder.is_dir():
            shutil.copytree(folder, source, dirs_exist_ok=True, symlinks=True)
        for name, to in case.get("symlinks", {}).items():
            os.symlink(to, source / name)
    return source


def finished(proc: subprocess.CompletedProcess, target: Path) -> tuple[dict, str]:
    stderr = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr[-3000:]
    assert proc.returncode in (0, 1), (proc.returncode, stderr[-3000:])
    report_bytes = (target / "report.json").read_bytes()
    report = json.loads(report_bytes.decode("utf-8"))  # valid UTF-8 and valid JSON
    for name in ("Claim.ndjson", "Task.ndjson"):
        for line in (target / name).read_bytes().decode("utf-8").splitlines():
            json.loads(line, parse_constant=lambda c, name=name: pytest.fail(f"{name} holds {c}"))
    json.loads(report_bytes, parse_constant=lambda c: pytest.fail(f"report.json holds {c}"))
    return report, stderr


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """The good world alone: the good administration's report entry and Claim."""
    tmp = tmp_path_factory.mktemp("baseline")
    proc = run_sync(source_for(tmp, None), tmp / "out")
    report, _ = finished(proc, tmp / "out")
    assert proc.returncode == 0 and report["errors"] == []
    entry = next(e for e in report["administrations"] if e["administration"] == GOOD)
    assert entry["outcome"] == "claim" and entry["claim_status"] == "active" and entry["gaps"] == []
    return entry, good_claim(tmp / "out")


def good_claim(target: Path) -> dict:
    """The good administration's Claim, without its creation time (the run's clock)."""
    claims = [json.loads(line) for line in (target / "Claim.ndjson").read_text().splitlines()]
    found = [c for c in claims if c["supportingInfo"][0]["valueReference"]["reference"] == GOOD]
    assert len(found) == 1
    found[0].pop("created")
    return found[0]


def test_the_corpus_is_big_enough_and_up_to_date(tmp_path):
    assert len(CASES) >= 50
    assert len({c["name"] for c in CASES}) == len(CASES)
    sys.path.insert(0, str(CORPUS))
    try:
        import make_corpus
    finally:
        sys.path.remove(str(CORPUS))
    make_corpus.write(tmp_path)
    assert json.loads((tmp_path / "cases.json").read_text()) == CASES, (
        "run tests/badinput/make_corpus.py"
    )
    for folder in ("good", "cases"):
        for path in sorted((tmp_path / folder).rglob("*")):
            if path.is_file():
                committed = CORPUS / path.relative_to(tmp_path)
                assert committed.read_bytes() == path.read_bytes(), (
                    f"{committed}: run make_corpus.py"
                )


def _matches(error: dict, expect: dict) -> bool:
    return (
        expect["record"] in error["record"]
        and ("field" not in expect or error["field"] == expect["field"])
        if expect.get("field") is not None
        else expect["record"] in error["record"]
    )


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_bad_input_case(tmp_path, case, baseline):
    good_entry, good_claim_before = baseline
    target = tmp_path / "out"
    proc = run_sync(source_for(tmp_path, case), target)
    report, stderr = finished(proc, target)
    entries = {e["administration"]: e for e in report["administrations"]}

    # nothing else is lost: the good administration is decided and billed exactly as without the case
    assert entries[GOOD] == good_entry
    assert good_claim(target) == good_claim_before

    errors = list(report["errors"])
    expected_errors = [e for e in case["expect"] if e["in"] == "errors"]
    for expect in expected_errors:
        hit = next((e for e in errors if _matches(e, expect)), None)
        assert hit is not None, (expect, report["errors"])
        assert hit["message"]
        errors.remove(hit)
    assert errors == [], f"unexpected record errors: {errors}"
    assert report["summary"]["record_errors"] == len(report["errors"])
    assert proc.returncode == (1 if expected_errors else 0)
    if expected_errors:
        assert "skipped" in stderr  # each refused record is logged ...

    notices = [n["record"] for n in report["notices"]]  # not errors: the run used every record
    assert notices == [e["record"] for e in case["expect"] if e["in"] == "notices"]
    for expect in case["expect"]:
        if expect["in"] in ("errors", "notices"):
            continue
        entry = entries.get(expect["record"])
        assert entry is not None, (expect["record"], sorted(entries))
        if expect.get("outcome"):
            assert entry["outcome"] == expect["outcome"], entry
        if expect["in"] == "gaps":
            gap = next((g for g in entry["gaps"] if g["code"] == expect["gap"]), None)
            assert gap is not None, (expect["gap"], entry["gaps"])
            assert gap["field"] and gap["message"]
            if entry["outcome"] == "held":
                assert entry["claim_status"] != "active"
        if "version" in expect:
            assert entry["version"] == expect["version"]

    written = (
        proc.stdout
        + proc.stderr
        + b"".join(p.read_bytes() for p in target.iterdir() if p.is_file())
    )
    for secret in case.get("absent", []):  # ... by file, line and field; never by its content
        assert secret.encode() not in written


# ----------------------------------------------------------------------------- generated at test time


def _peak_child_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def test_a_bundle_of_100000_entries(tmp_path, baseline):
    """Completes, keeps the good administration, and reports the junk entries (bounded list)."""
    source = source_for(tmp_path, None)
    entries = []
    for i in range(100_000):
        kind = i % 4
        if kind == 0:
            entries.append(
                {
                    "resource": {
                        "resourceType": "MedicationAdministration",
                        "id": f"big-{i}",
                        "status": "completed",
                        "subject": {"reference": f"Patient/x{i % 997}"},
                        "effectiveDateTime": "2026-10-05T10:00:00Z",
                    }
                }
            )
        elif kind == 1:
            entries.append(
                {"resource": {"resourceType": "Observation", "id": f"o{i}", "status": "final"}}
            )
        elif kind == 2:
            entries.append({"fullUrl": f"urn:uuid:{i}"})
        else:
            entries.append({"resource": {"resourceType": "Patient", "id": f"x{i % 997}"}})
    (source / "big.json").write_text(
        json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries})
    )
    del entries
    started = time.monotonic()
    proc = run_sync(source, tmp_path / "out", timeout=900)
    report, _ = finished(proc, tmp_path / "out")
    assert proc.returncode == 1
    assert report["summary"]["administrations"] == 25_001
    assert (
        report["summary"]["record_errors"] == 25_000 + 25_000 - 997
    )  # entries without resource; duplicates
    assert len(report["errors"]) <= 10_000 and report["summary"]["errors_not_listed"] > 0
    good = next(e for e in report["administrations"] if e["administration"] == GOOD)
    assert good == baseline[0]
    print(
        f"100,000-entry Bundle: {time.monotonic() - started:.1f} s, peak child RSS {_peak_child_rss_mb():.0f} MB"
    )
    assert _peak_child_rss_mb() < 2048


def test_a_line_longer_than_the_limit(tmp_path, baseline):
    from fhir_injection.sources.ndjson import MAX_LINE

    source = source_for(tmp_path, None)
    with open(source / "MedicationAdministration.ndjson", "w") as fh:
        fh.write('{"resourceType":"MedicationAdministration","id":"long","note":[{"text":"')
        fh.write("x" * (MAX_LINE + 10))
        fh.write('"}]}\n')
        fh.write(json.dumps({"resourceType": "MedicationAdministration", "id": "after"}) + "\n")
    proc = run_sync(source, tmp_path / "out")
    report, _ = finished(proc, tmp_path / "out")
    assert [(e["record"], e["field"]) for e in report["errors"]] == [
        ("MedicationAdministration.ndjson:1", None)
    ]
    names = {e["administration"] for e in report["administrations"]}
    assert {GOOD, "MedicationAdministration/after"} <= names
