"""The offline job and the ``fhir-injection`` command: outputs, report contract, exit codes, no PHI."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fhir_injection import Config, run_folder
from fhir_injection.cli import main
from fhir_injection.errors import EXIT_MAPPINGS, EXIT_OK, EXIT_RECORD_ERRORS, EXIT_USAGE
from tests.builders import (
    CREATED,
    RXNORM,
    admin,
    dosage,
    med,
    rules,
    validate_claim,
    validate_task,
    world,
)

REPO = Path(__file__).resolve().parent.parent
SECRETS = ("Testperson", "1950-02-03", "MEMBER-SECRET-1")
ENTRY_KEYS = {"administration", "outcome", "procedure", "claim", "gaps"}
GAP_KEYS = {"code", "severity", "message"}


def ndjson(resources) -> str:
    return "".join(json.dumps(r) + "\n" for r in resources)


def make_folder(folder: Path, bad_records: bool = True) -> Path:
    """A small Bulk folder: ndjson, numbered gzip ndjson and a Bundle, optionally with broken records."""
    folder.mkdir(parents=True, exist_ok=True)
    w = world()
    patient = [r for r in w if r["resourceType"] == "Patient"]
    rest = [r for r in w if r["resourceType"] != "Patient"]
    (folder / "Patient.ndjson").write_text(ndjson(patient))
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in rest],
    }
    (folder / "context.json").write_text(json.dumps(bundle))
    admins = [
        admin(id="clean"),
        admin(
            id="second",
            effectiveDateTime="2026-10-05T10:00:00-05:00",
            medicationCodeableConcept=med(RXNORM, "1740467"),
            dosage=dosage(dose={"value": 4, "code": "mg"}),
        ),
        admin(
            id="nodose",
            effectiveDateTime="2026-10-05T10:30:00-05:00",
            medicationCodeableConcept=med(RXNORM, "3264"),
            dosage=dosage(dose=None),
        ),
        admin(
            id="dangling",
            context={"reference": "Encounter/ghost"},
            effectiveDateTime="2026-10-06T09:00:00Z",
        ),
        admin(id="void", status="entered-in-error"),
    ]
    (folder / "MedicationAdministration.1.ndjson").write_text(ndjson(admins[:2]))
    text = ndjson(admins[2:])
    if bad_records:
        text = "{broken json\n" + text + '{"resourceType": "MedicationAdministration", "id": 5}\n'
    (folder / "MedicationAdministration.2.ndjson.gz").write_bytes(gzip.compress(text.encode()))
    if bad_records:
        (folder / "Coverage.ndjson.gz").write_text("this is not gzip\n")
        (folder / "Condition.ndjson").write_text(
            json.dumps({"resourceType": "Patient", "id": "wrong"}) + "\n"
        )
    return folder


def read_ndjson(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def by_admin(report: dict) -> dict:
    return {e["administration"].split("/", 1)[1]: e for e in report["administrations"]}


# ----------------------------------------------------------------------------- run_folder


def test_offline_run_writes_valid_claims_tasks_and_the_report(tmp_path):
    source = make_folder(tmp_path / "in")
    result = run_folder(source, tmp_path / "out", rules(), Config(), CREATED)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "Claim.ndjson",
        "Task.ndjson",
        "history.jsonl",
        "report.html",
        "report.json",
        "worklist.csv",
    ]

    claims = read_ndjson(out / "Claim.ndjson")
    for c in claims:
        validate_claim(c)
    tasks = read_ndjson(out / "Task.ndjson")
    for t in tasks:
        validate_task(t)

    report = json.loads((out / "report.json").read_text())
    assert {"administrations", "summary", "errors"} <= set(report)
    for entry in report["administrations"]:
        assert set(entry) >= ENTRY_KEYS
        for g in entry["gaps"]:
            assert set(g) >= GAP_KEYS
    entries = by_admin(report)
    assert set(entries) == {"clean", "second", "nodose", "dangling", "void"}
    assert (entries["clean"]["outcome"], entries["clean"]["procedure"]) == ("claim", "96372")
    assert entries["clean"]["modifiers"] == {"96372": [], "drug": ["JZ"]}
    assert entries["second"]["modifiers"]["96372"] == ["XU"]
    assert entries["nodose"]["outcome"] == "held"
    # dexamethasone by ingredient: a Part B drug (CMS ASP crosswalk) whose container kind is not known
    assert [g["code"] for g in entries["nodose"]["gaps"]] == [
        "missing-dose",
        "missing-package-size",
    ]
    assert entries["nodose"]["modifiers"]["96372"] == [
        "XU"
    ]  # held, but still the 3rd injection that day
    assert entries["dangling"]["outcome"] == "held"
    assert any(
        g["code"] == "missing-encounter" and g["field"] == "MedicationAdministration.context"
        for g in entries["dangling"]["gaps"]
    )
    assert entries["void"]["outcome"] == "void" and entries["void"]["claim"] is None

    claim_refs = {f"Claim/{c['id']}" for c in claims}
    assert {e["claim"] for e in entries.values() if e["claim"]} == claim_refs
    assert entries["clean"]["claim"] in claim_refs and entries["clean"]["claim_status"] == "active"
    assert entries["nodose"]["claim_status"] == "draft"
    task_focus = {t["focus"]["reference"] for t in tasks}
    assert task_focus == {"MedicationAdministration/nodose", "MedicationAdministration/dangling"}

    s = report["summary"]
    assert s["administrations"] == 5
    assert s["outcomes"] == {
        "claim": 2,
        "held": 2,
        "not-96372": 0,
        "not-billable": 0,
        "void": 1,
        "past-filing-limit": 0,
    }
    assert s["tasks"] == 2
    assert s["claims"] == {"active": 2, "draft": 2}
    assert s["gaps"]["missing-dose"] == 1

    # bad records: reported per record, naming the record and the field; the run went on
    errors = report["errors"]
    assert s["record_errors"] == len(errors) == result.problems == 4
    records = {(e["record"].split(" ")[0], e["field"]) for e in errors}
    assert ("MedicationAdministration.2.ndjson.gz:1", None) in records
    assert ("MedicationAdministration.2.ndjson.gz:5", "id") in records
    assert ("Condition.ndjson:1", "resourceType") in records
    assert any(r.startswith("Coverage.ndjson.gz:") for r, _ in records)
    assert result.exit_code == EXIT_RECORD_ERRORS


def test_clean_folder_exits_0(tmp_path):
    result = run_folder(
        make_folder(tmp_path / "in", bad_records=False),
        tmp_path / "out",
        rules(),
        Config(),
        CREATED,
    )
    assert result.problems == 0 and result.exit_code == EXIT_OK


def test_offline_run_is_deterministic(tmp_path):
    source = make_folder(tmp_path / "in")
    run_folder(source, tmp_path / "a", rules(), Config(), CREATED)
    run_folder(source, tmp_path / "b", rules(), Config(), CREATED)
    for name in ("Claim.ndjson", "Task.ndjson"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    ra = json.loads((tmp_path / "a" / "report.json").read_text())
    rb = json.loads((tmp_path / "b" / "report.json").read_text())
    ra.pop("source"), rb.pop("source")
    assert ra == rb


def test_offline_run_leaves_no_temporary_files(tmp_path):
    run_folder(make_folder(tmp_path / "in"), tmp_path / "out", rules(), Config(), CREATED)
    assert not [
        p for p in (tmp_path / "out").iterdir() if p.name.startswith(".") or p.suffix == ".sqlite"
    ]


def test_failed_run_keeps_the_previous_outputs(tmp_path):
    out = tmp_path / "out"
    run_folder(make_folder(tmp_path / "in"), out, rules(), Config(), CREATED)
    before = (out / "Claim.ndjson").read_bytes()
    with pytest.raises(FileNotFoundError):
        run_folder(tmp_path / "absent", out, rules(), Config(), CREATED)
    assert (out / "Claim.ndjson").read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_offline_outputs_and_logs_carry_no_phi(tmp_path, caplog):
    caplog.set_level("DEBUG")
    run_folder(make_folder(tmp_path / "in"), tmp_path / "out", rules(), Config(), CREATED)
    texts = {
        name: (tmp_path / "out" / name).read_text()
        for name in ("Claim.ndjson", "Task.ndjson", "report.json")
    }
    texts["log"] = caplog.text
    for name, text in texts.items():
        for secret in SECRETS:
            assert secret not in text, (name, secret)
    assert "Patient/p1" in texts["Claim.ndjson"]  # references are fine


# ----------------------------------------------------------------------------- the command


def run_cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "fhir_injection.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out
    for code in ("0", "1", "2", "3", "4", "5", "6", "130"):
        assert f"\n  {code} " in out


def test_sync_help(capsys):
    with pytest.raises(SystemExit):
        main(["sync", "--help"])
    out = capsys.readouterr().out
    assert "--source" in out and "--target" in out and "exit codes:" in out


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == EXIT_USAGE


def test_rules_command(capsys):
    assert main(["rules"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "mappings OK" in out
    # the drug tables, counted from what was loaded
    from fhir_injection import load_rules

    r = load_rules()
    assert (
        f"  packages (container size, single/multi-dose): {len(r.packages)}; codes chosen by diagnosis: "
        f"{len(r.drug_by_diagnosis)} (cancer, esrd-dialysis); NDC unit rules: {len(r.ndc_units)}\n"
    ) in out
    assert f"  rendering provider: {len(r.qualifications)} qualification codes" in out
    # modifiers.csv, each use with the modifier and its first service date (CMS JZ policy 2023-07-01)
    # and the ESA modifiers of CMS CR 5699 (from 2008-01-01)
    assert (
        "  modifiers by rule: 25 em-separate, EA esa-chemotherapy from 2008-01-01, EC esa-neither from 2008-01-01, "
        "EB esa-radiotherapy from 2008-01-01, GY excluded-service, JZ nothing-discarded from 2023-07-01, "
        "JW waste-line from 2017-01-01; distinct procedure: commercial 59, medicaid 59, medicare XU, "
        "self-pay 59\n"
    ) in out
    assert len(r.packages) > 20 and len(r.qualifications) > 10 and len(r.participant_ranks) == 4
    # snomed_icd10.csv's coverage: of the VSAC members in diagnosis_groups.csv, ESRD with renal
    # transplant (236436003), metastasis to prostate (94503003) and extension from bladder
    # (369485004) have no ICD-10-CM row
    pairs = sum(len(v) for v in r.snomed_icd10.values())
    assert (
        f"  SNOMED CT diagnoses billed as ICD-10-CM (snomed_icd10.csv): {len(r.snomed_icd10)} concepts, "
        f"{pairs} pairs, "
    ) in out
    assert (
        "SNOMED CT members of diagnosis groups with a row: cancer 9 / 11, esrd-dialysis 3 / 4\n"
        in out
    )


def test_broken_mappings_exit_3_naming_file_and_row(tmp_path, capsys):
    import shutil

    shutil.copytree(REPO / "mappings", tmp_path / "m")
    path = tmp_path / "m" / "routes.csv"
    path.write_text(path.read_text().replace(",subcutaneous,SNOMED", ",subq,SNOMED"))
    assert main(["--mappings", str(tmp_path / "m"), "rules"]) == EXIT_MAPPINGS
    assert "routes.csv, row 2" in capsys.readouterr().err


def test_bad_config_exits_2(tmp_path, capsys):
    (tmp_path / "c.toml").write_text("nonsense = 1\n")
    assert (
        main(["--config", str(tmp_path / "c.toml"), "sync", "--source", str(tmp_path)])
        == EXIT_USAGE
    )
    assert "unknown setting" in capsys.readouterr().err


def test_missing_source_folder_exits_2(tmp_path, capsys):
    assert (
        main(["sync", "--source", str(tmp_path / "absent"), "--target", str(tmp_path / "out")])
        == EXIT_USAGE
    )


def test_sync_folder_in_process(tmp_path, capsys):
    code = main(
        ["sync", "--source", str(make_folder(tmp_path / "in")), "--target", str(tmp_path / "out")]
    )
    assert code == EXIT_RECORD_ERRORS
    out = capsys.readouterr().out
    assert "5 administrations: 2 claim, 2 held" in out
    assert (tmp_path / "out" / "report.json").is_file()


def test_sync_with_config_changes_the_output(tmp_path, capsys):
    (tmp_path / "c.toml").write_text('jw_jz = false\n[distinct_modifier]\nmedicare = "XS"\n')
    code = main(
        [
            "--config",
            str(tmp_path / "c.toml"),
            "sync",
            "--source",
            str(make_folder(tmp_path / "in", bad_records=False)),
            "--target",
            str(tmp_path / "out"),
        ]
    )
    assert code == EXIT_OK
    entries = by_admin(json.loads((tmp_path / "out" / "report.json").read_text()))
    assert entries["clean"]["modifiers"] == {"96372": [], "drug": []}
    assert entries["second"]["modifiers"]["96372"] == ["XS"]


def test_command_in_a_subprocess_exits_1_and_stderr_has_no_phi(tmp_path):
    source = make_folder(tmp_path / "in")
    proc = run_cli(
        "-v", "sync", "--source", str(source), "--target", str(tmp_path / "out"), cwd=tmp_path
    )
    assert proc.returncode == EXIT_RECORD_ERRORS, proc.stderr
    assert "skipped" in proc.stderr  # the bad records are logged ...
    for secret in SECRETS:  # ... by file, line and field only
        assert secret not in proc.stderr and secret not in proc.stdout
        assert secret not in (tmp_path / "out" / "report.json").read_text()
        assert secret not in (tmp_path / "out" / "Task.ndjson").read_text()
        assert secret not in (tmp_path / "out" / "Claim.ndjson").read_text()


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert "fhir-injection" in capsys.readouterr().out
