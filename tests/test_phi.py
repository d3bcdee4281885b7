"""No PHI in anything a run writes: every byte of stdout, stderr (-v), and every file in the target.

The secrets are read from the demo data itself: every Patient's name parts, birth date, telecom and
address values and identifiers, every Coverage's subscriberId and member identifiers, and the free
text (notes, narratives) of the MedicationAdministrations, with a note added to a copy of the demo.
Claims may (and do) carry ``Patient/<id>`` references and codes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "fixtures" / "demo"
NOTE = "Pt states Zebediah-Notetext pain 8/10 after fall at home"
NARRATIVE = '<div xmlns="http://www.w3.org/1999/xhtml">Narrative-Secret for Zebediah</div>'


def _ndjson(path: Path) -> list[dict]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def secrets_of(folder: Path) -> set[str]:
    found: set[str] = set()
    for p in _ndjson(folder / "Patient.ndjson"):
        for name in p.get("name", []):
            found.update(name.get("given", []))
            found.add(name.get("family", ""))
            found.add(name.get("text", ""))
        found.add(p.get("birthDate", ""))
        for element in ("telecom", "address", "identifier", "contact"):
            found.update(s for s in _strings(p.get(element)) if not s.startswith("http"))
    for c in _ndjson(folder / "Coverage.ndjson"):
        found.add(c.get("subscriberId", ""))
        found.update(i.get("value", "") for i in c.get("identifier", []))
        for cls in c.get("class", []):
            found.add(cls.get("value", ""))
    for a in _ndjson(folder / "MedicationAdministration.ndjson"):
        for note in a.get("note", []):
            found.add(note.get("text", ""))
        found.add((a.get("text") or {}).get("div", ""))
        found.add((a.get("dosage") or {}).get("text", ""))
    # "Test" (a given name of every demo patient) is also an ordinary word; check it as a name part only
    return {s for s in found if s and len(s) >= 4 and s != "Test"}


@pytest.fixture(scope="module")
def demo_copy(tmp_path_factory) -> Path:
    """The demo with a nursing note and a narrative on every administration, and a telecom and address
    on every patient."""
    folder = tmp_path_factory.mktemp("demo") / "demo"
    shutil.copytree(DEMO, folder)
    admins = _ndjson(folder / "MedicationAdministration.ndjson")
    for i, a in enumerate(admins):
        a["note"] = [{"text": f"{NOTE} #{i}"}]
        a["text"] = {"status": "generated", "div": NARRATIVE}
    (folder / "MedicationAdministration.ndjson").write_text(
        "".join(json.dumps(a) + "\n" for a in admins)
    )
    patients = _ndjson(folder / "Patient.ndjson")
    for i, p in enumerate(patients):
        p["telecom"] = [{"system": "phone", "value": f"555-01{i:03d}"}]
        p["address"] = [
            {
                "line": [f"{100 + i} Secretaddress Lane"],
                "city": "Phiville",
                "postalCode": f"ZIP{i:04d}Q",
            }
        ]
    (folder / "Patient.ndjson").write_text("".join(json.dumps(p) + "\n" for p in patients))
    return folder


def run(source: Path, target: Path, *pre: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [
            sys.executable,
            *pre,
            "-m",
            "fhir_injection",
            "-v",
            "sync",
            "--source",
            str(source),
            "--target",
            str(target),
        ],
        cwd=target.parent,
        env=env,
        capture_output=True,
        timeout=300,
    )


def everything_written(proc: subprocess.CompletedProcess, target: Path) -> dict[str, bytes]:
    out = {"stdout": proc.stdout, "stderr": proc.stderr}
    for path in sorted(target.rglob("*")):
        if path.is_file():
            out[str(path.relative_to(target))] = path.read_bytes()
    return out


def assert_no_secret(written: dict[str, bytes], secrets: set[str]) -> None:
    leaks = [
        (name, s)
        for name, data in written.items()
        for s in secrets
        if s.encode() in data or json.dumps(s)[1:-1].encode() in data
    ]
    assert not leaks, leaks[:10]


@pytest.mark.parametrize("source", ["demo", "demo-with-notes"])
def test_a_whole_run_over_the_demo_writes_no_phi(tmp_path, demo_copy, source):
    folder = DEMO if source == "demo" else demo_copy
    secrets = secrets_of(folder)
    assert (
        len(secrets) > 300
    )  # names, birth dates, member ids (and notes) of the demo's patients were found
    if source == "demo-with-notes":
        assert any(NOTE in s for s in secrets) and NARRATIVE in secrets and "Phiville" in secrets
    target = tmp_path / "out"
    proc = run(folder, target)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    written = everything_written(proc, target)
    assert set(written) >= {"stdout", "stderr", "Claim.ndjson", "Task.ndjson", "report.json"}
    assert b"INFO" in proc.stderr or proc.stderr == b"" or b"WARNING" in proc.stderr
    assert b"Patient/pat-001" in written["Claim.ndjson"]  # references are fine; they are ids
    assert_no_secret(written, secrets)
    for name in ("Claim.ndjson", "Task.ndjson", "report.json"):  # "Test" only as the given name
        assert b'"Test"' not in written[name]


SITECUSTOMIZE = """
import fhir_injection.decision.engine as engine
_real = engine._decide_one

def _boom(admin, ctx, rules, config):
    if admin.get("id") in ("ma-0003", "ma-0100"):
        patient = ctx.get((admin.get("subject") or {}).get("reference"), "Patient")
        raise ValueError(f"cannot decide {admin!r} for {patient!r}")
    return _real(admin, ctx, rules, config)

engine._decide_one = _boom
"""


def test_an_exception_inside_the_run_prints_no_phi(tmp_path, demo_copy):
    """The engine raising with the resource and its patient in the message: the run goes on, and neither
    the report nor the terminal quotes them."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "boom.py").write_text(SITECUSTOMIZE)
    target = tmp_path / "out"
    env_runner = (
        f"import sys; sys.path.insert(0, {str(hook)!r}); import boom, runpy; "
        "runpy.run_module('fhir_injection', run_name='__main__')"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            env_runner,
            "-v",
            "sync",
            "--source",
            str(demo_copy),
            "--target",
            str(target),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()[-3000:]
    assert proc.returncode == 1
    report = json.loads((target / "report.json").read_text())
    failed = {e["record"] for e in report["errors"]}
    assert failed == {"MedicationAdministration/ma-0003", "MedicationAdministration/ma-0100"}
    assert all("ValueError" in e["message"] for e in report["errors"])
    every = len((demo_copy / "MedicationAdministration.ndjson").read_text().splitlines())
    assert report["summary"]["administrations"] == every - 2  # everything else was decided
    assert_no_secret(
        everything_written(proc, target), secrets_of(demo_copy) | {"resourceType': 'Patient"}
    )


def test_an_unexpected_crash_outside_the_records_prints_no_phi(tmp_path, demo_copy):
    """Even a failure the pipeline cannot isolate (here: writing the report) ends without a traceback."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "boom2.py").write_text("""
import fhir_injection.sinks.report as report
def _boom(self, *a, **k):
    raise RuntimeError("patient Demo-Patient-001 born 1973-02-12 member DEMO-5-343497051")
report.ReportWriter.close = _boom
""")
    target = tmp_path / "out"
    runner = (
        f"import sys; sys.path.insert(0, {str(hook)!r}); import boom2, runpy; "
        "runpy.run_module('fhir_injection', run_name='__main__')"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-c", runner, "sync", "--source", str(demo_copy), "--target", str(target)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert b"Traceback" not in proc.stderr
    assert proc.returncode == 70
    assert b"internal error (RuntimeError" in proc.stderr
    for secret in (b"Demo-Patient-001", b"1973-02-12", b"DEMO-5-343497051"):
        assert secret not in proc.stderr and secret not in proc.stdout
    assert not target.exists() or not [p for p in target.iterdir() if p.name.startswith(".")]
