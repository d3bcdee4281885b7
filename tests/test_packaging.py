"""The wheel works away from the repository.

Builds the wheel once into a temporary folder, installs it into a new virtual environment
(which borrows the dependencies of the environment running the tests, so nothing is
downloaded; the package itself must come from the wheel, which the tests assert), and runs ``fhir-injection rules``
and the demo sync from an empty directory. tests/packaging/check-wheel.sh does the same for
CI in an environment holding nothing but the wheel and its declared dependencies.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import fhir_injection
from fhir_injection import bundled

ROOT = Path(__file__).resolve().parent.parent
PIP = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]


def _run(*cmd, cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [str(c) for c in cmd],
        cwd=str(cwd),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    if importlib.util.find_spec("build"):  # the release tool, when installed
        _run(sys.executable, "-m", "build", "--wheel", "--outdir", dist, ROOT, cwd=ROOT)
    else:  # pip builds the same wheel through the same backend
        _run(*PIP, "wheel", "--no-deps", "-w", dist, ROOT, cwd=ROOT)
    (whl,) = dist.glob("fhir_injection-*.whl")
    return whl


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A new environment holding the wheel; its dependencies are those of the environment running
    the tests (a .pth file lists its site-packages, so nothing is downloaded). The venv's own
    site-packages is searched first, so fhir_injection comes from the wheel."""
    env = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", "--without-pip", env, cwd=env)
    purelib = _run(
        env / "bin" / "python",
        "-c",
        "import sysconfig; print(sysconfig.get_path('purelib'))",
        cwd=env,
    )
    ours = [
        *site.getsitepackages(),
        *([site.getusersitepackages()] if site.ENABLE_USER_SITE else []),
    ]
    Path(purelib.stdout.strip(), "_test_dependencies.pth").write_text("\n".join(ours) + "\n")
    _run(*PIP, "--python", env / "bin" / "python", "install", "--no-deps", wheel, cwd=env)
    return env


PROBE = """
import json, importlib.metadata as m, fhir_injection as f, fhir_injection.bundled as b
where = [f.__file__, str(b.mappings_dir()), str(b.demo_dir())]
print(json.dumps([*where, f.__version__, m.version("fhir-injection")]))
"""


def _counts(out: Path) -> tuple[dict, int]:
    claims = collections.Counter(
        json.loads(line)["status"] for line in (out / "Claim.ndjson").open() if line.strip()
    )
    tasks = sum(1 for line in (out / "Task.ndjson").open() if line.strip())
    return dict(claims), tasks


def test_wheel_holds_the_package_the_rule_tables_the_demo_and_py_typed(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in (ROOT / "mappings").iterdir():
        if f.name == "build":  # the drug tables' generator and its sources: not needed at run time
            assert not any(n.startswith("fhir_injection/mappings/build") for n in names)
            continue
        assert f"fhir_injection/mappings/{f.name}" in names, f.name
    for f in (ROOT / "fixtures" / "demo").iterdir():
        assert f"fhir_injection/demo/{f.name}" in names, f.name
    assert {
        "fhir_injection/py.typed",
        "fhir_injection/__init__.py",
        "fhir_injection/bundled.py",
    } <= names
    assert not [
        n
        for n in names
        if n.startswith(("tests/", "fixtures/", "mappings/")) or "generate_demo" in n
    ]
    (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    meta = zipfile.ZipFile(wheel).read(meta_name).decode()
    assert f"\nVersion: {fhir_injection.__version__}\n" in meta  # one version: __init__.py's
    for line in (
        "Classifier: Typing :: Typed",
        "Classifier: Intended Audience :: Healthcare Industry",
        "License-Expression: Apache-2.0",
        "Project-URL: Source, https://github.com/",
    ):
        assert line in meta, line


def test_installed_wheel_runs_rules_and_the_demo_from_an_empty_directory(venv, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    py, exe = venv / "bin" / "python", venv / "bin" / "fhir-injection"
    probe = _run(py, "-c", PROBE, cwd=empty)
    module, mappings, demo, version, dist_version = json.loads(probe.stdout)
    inside = str(venv.resolve()) + os.sep
    assert module.startswith(inside) and mappings.startswith(inside) and demo.startswith(inside), (
        probe.stdout
    )
    assert (
        Path(mappings) == Path(module).parent / "mappings"
        and Path(demo) == Path(module).parent / "demo"
    )
    assert version == dist_version == fhir_injection.__version__

    rules = _run(exe, "rules", cwd=empty)
    assert rules.stdout.startswith(f"mappings OK: {mappings}\n"), rules.stdout
    sync = _run(exe, "sync", cwd=empty)
    assert sorted(p.name for p in (empty / "out").iterdir()) == [
        "Claim.ndjson",
        "Task.ndjson",
        "history.jsonl",
        "report.html",  # its template and the vendored chart library come from the wheel
        "report.json",
        "worklist.csv",
    ]
    page = (empty / "out" / "report.html").read_text(encoding="utf-8")
    administrations = json.loads((empty / "out" / "report.json").read_text())["summary"]
    assert (
        "vegaEmbed" in page
        and f'id="h-administrations">{administrations["administrations"]}<' in page
    )

    # The same as a run from this checkout.
    ref = _run(
        sys.executable, "-m", "fhir_injection", "sync", "--target", tmp_path / "ref", cwd=ROOT
    )
    assert _counts(empty / "out") == _counts(tmp_path / "ref")
    assert _counts(empty / "out") == (
        {"active": 256, "draft": 107},
        148,
    )  # the demo clinic's known outcome (fixtures/demo-expected.json: its claims, held and Tasks)
    assert sync.stdout.splitlines()[:2] == ref.stdout.splitlines()[:2]
    ref_rules = _run(sys.executable, "-m", "fhir_injection", "rules", cwd=ROOT)
    assert rules.stdout.splitlines()[1:] == ref_rules.stdout.splitlines()[1:]


def test_a_source_checkout_uses_its_top_level_folders():
    # This test session imports the package from the checkout (python -m pytest puts it first).
    assert Path(fhir_injection.__file__).resolve().parent == ROOT / "fhir_injection"
    assert not (ROOT / "fhir_injection" / "mappings").exists()
    assert bundled.mappings_dir() == ROOT / "mappings"
    assert bundled.demo_dir() == ROOT / "fixtures" / "demo"


def test_user_agent_names_the_package_version():
    from fhir_injection.fhir.http import HttpSession

    assert (
        HttpSession("https://fhir.example.org/fhir").user_agent
        == f"fhir-injection/{fhir_injection.__version__}"
    )
