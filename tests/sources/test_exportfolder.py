"""Export folders as exporters really write them.

A Bulk Data download holds more than ``<Type>.ndjson`` records: ``manifest.json``, the kick-off
``parameters.json``, ``deleted/`` (transaction Bundles of ``DELETE Type/id`` entries), ``error/``
(OperationOutcomes), files of types the adapter never reads. SMART Fetch adds numbered run
folders, ``<Type>.referenced``/``.searched`` files, ``log.ndjson`` and ``.metadata``. Each test
sets up one such shape next to a clean world (tests/builders.py) and checks the one consequence;
``fixtures/realworld/export-folder-full`` is checked against its ``records`` expectations.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import pytest
import responses

from fhir_injection import Config, load_rules, run_folder
from fhir_injection.decision.engine import decide_deleted
from fhir_injection.errors import RecordProblem
from fhir_injection.sources.exportfolder import ExportFolder
from fhir_injection.sources.exportnotes import EXCERPT, Deletion
from fhir_injection.sources.spool import Spool
from tests.builders import admin, dosage, dose, world
from tests.builders import rules as load_bundled_rules

ROOT = Path(__file__).resolve().parents[2]
FULL = ROOT / "fixtures" / "realworld" / "export-folder-full"
EXPECTED = json.loads((ROOT / "fixtures" / "realworld" / "expected.json").read_text())["cases"]
MA = "MedicationAdministration"
CREATED = "2026-11-30T12:00:00Z"


def ndjson(resources) -> str:
    return "".join(json.dumps(r) + "\n" for r in resources)


def write_world(folder: Path, admins: list[dict] | None = None, patients=("p1",)) -> None:
    """The clean world as one file per type (and the administrations, if given)."""
    folder.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, dict] = {}
    for p in patients:
        for r in world(patient=p):
            by_type.setdefault(r["resourceType"], {})[r["id"]] = r
    for rtype, found in by_type.items():
        (folder / f"{rtype}.ndjson").write_text(ndjson(found.values()))
    if admins is not None:
        (folder / f"{MA}.ndjson").write_text(ndjson(admins))


def deleted_bundle(*urls: str, method: str = "DELETE") -> dict:
    """One line of a Bulk Data ``deleted`` file (the IG's example shape)."""
    return {
        "resourceType": "Bundle",
        "id": "del",
        "meta": {"lastUpdated": "2026-10-09T20:55:00Z"},
        "type": "transaction",
        "entry": [{"request": {"method": method, "url": u}} for u in urls],
    }


def run(source: Path, tmp_path: Path) -> tuple[dict, dict, list[dict], object]:
    """The offline job: (report entries by administration, report, Claims, result)."""
    out = tmp_path.parent / f"{tmp_path.name}-out"
    result = run_folder(source, out, load_rules(), Config(), CREATED)
    report = json.loads((out / "report.json").read_text())
    claims = [json.loads(line) for line in (out / "Claim.ndjson").read_text().splitlines() if line]
    return {e["administration"]: e for e in report["administrations"]}, report, claims, result


def listed(report: dict) -> dict[str, dict]:
    return {f["file"]: f for f in report["input"]["files"]}


def read_folder(folder: Path) -> tuple[list, list[RecordProblem], ExportFolder]:
    problems: list[RecordProblem] = []
    export = ExportFolder(folder, problems.append)
    records = list(export.records())
    return records, problems, export


# ----------------------------------------------------------------------------- export-folder-full


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    return run(FULL, tmp_path_factory.mktemp("full"))


def test_full_export_records_expectations(full):
    """expected.json 'records' of export-folder-full, one by one."""
    _, report, _, result = full
    errors = {e["record"]: e for e in report["errors"]}
    for expect in EXPECTED["export-folder-full"]["records"]:
        if expect["expected"].startswith("reported"):
            assert expect["record"] in errors, (expect, report["errors"])
        else:
            assert not any(
                e["record"].startswith(expect["record"].split(":")[0]) for e in report["errors"]
            )
    assert list(errors) == ["error/OperationOutcome.ndjson:1"]  # the only error of the run
    assert result.exit_code == 1  # the export itself says records may be missing


def test_the_export_error_is_reported_with_its_code_and_text(full):
    _, report, _, _ = full
    (error,) = report["errors"]
    assert error["field"] == "OperationOutcome.issue"
    assert "(error, processing)" in error["message"]
    assert "MedicationAdministration export for Patient/rw-exp-pat-2 timed out" in error["message"]


def test_manifest_and_parameters_are_listed_not_errors(full):
    _, report, _, _ = full
    files = listed(report)
    assert files["manifest.json"] == {
        "file": "manifest.json",
        "role": "manifest",
        "transactionTime": "2026-10-09T21:00:00Z",
        "output": 8,
        "deleted": 1,
        "error": 1,
    }
    assert files["parameters.json"]["role"] == "skipped"
    assert "Parameters" in files["parameters.json"]["reason"]


def test_the_unread_type_is_skipped_unopened_and_read_files_are_counted(full):
    _, report, _, _ = full
    files = listed(report)
    assert files["DiagnosticReport.ndjson"] == {
        "file": "DiagnosticReport.ndjson",
        "role": "skipped",
        "type": "DiagnosticReport",
        "reason": "a resource type this adapter never reads; not opened",
    }
    assert files[f"{MA}.ndjson"] == {
        "file": f"{MA}.ndjson",
        "role": "records",
        "type": MA,
        "records": 1,
        "errors": 0,
    }
    assert files["deleted/Bundle.ndjson"]["deleted"] == {MA: 1}
    assert files["error/OperationOutcome.ndjson"] == {
        "file": "error/OperationOutcome.ndjson",
        "role": "error",
        "records": 1,
        "errors": 1,
    }
    assert report["summary"]["files"] == {
        "deleted": 1,
        "error": 1,
        "manifest": 1,
        "records": 7,
        "skipped": 2,
    }


def test_the_deleted_administration_is_a_void_naming_its_deletion(full):
    entries, _, claims, result = full
    void = entries[f"{MA}/rw-exp-ma-2"]
    assert void["outcome"] == "void" and void["procedure"] is None and void["gaps"] == []
    assert void["claim"] is None and void["task"] is None
    assert void["deleted_in"] == "deleted/Bundle.ndjson:1 entry[0]"
    assert [c["supportingInfo"][0]["valueReference"]["reference"] for c in claims] == [
        f"{MA}/rw-exp-ma-1"
    ]
    assert (
        "Files: 7 of records, 1 of deletions, 1 of export errors, 1 manifest, 2 not read"
        in result.text
    )


# ----------------------------------------------------------------------------- types never read


def test_a_file_of_a_type_never_read_is_not_opened(tmp_path):
    """Not gzip at all: reading it would be an error; it is decided by its name and never opened."""
    write_world(tmp_path, [admin()])
    (tmp_path / "DiagnosticReport.ndjson.gz").write_bytes(b"not gzip at all")
    (tmp_path / "ExplanationOfBenefit.003.ndjson").write_text("{truncated\n")
    records, problems, export = read_folder(tmp_path)
    assert problems == []
    assert {f["file"]: f["role"] for f in export.files}["DiagnosticReport.ndjson.gz"] == "skipped"
    assert {f["file"]: f.get("type") for f in export.files}[
        "ExplanationOfBenefit.003.ndjson"
    ] == "ExplanationOfBenefit"
    assert f"{MA}/ma1" in {f"{r['resourceType']}/{r['id']}" for r, *_ in records}


def test_a_name_that_names_no_type_is_still_read_line_by_line(tmp_path):
    (tmp_path / "export.ndjson").write_text(
        ndjson([admin(), world()[0], {"resourceType": "DiagnosticReport", "id": "o"}])
    )
    records, problems, export = read_folder(tmp_path)
    assert problems == []
    assert sorted(r["resourceType"] for r, *_ in records) == [MA, "Patient"]
    (entry,) = export.files
    assert entry["role"] == "records" and "type" not in entry and entry["records"] == 2
    assert "names no resource type" in entry["reason"]


def test_file_names_exporters_write_are_read_by_their_type(tmp_path):
    """bulk-data-client's standard names (1.Patient.ndjson) and SMART Fetch's hydrated files."""
    w = world()
    (tmp_path / "1.Patient.ndjson").write_text(
        ndjson([r for r in w if r["resourceType"] == "Patient"])
    )
    with gzip.open(tmp_path / "Practitioner.referenced.ndjson.gz", "wt") as fh:
        fh.write(ndjson([r for r in w if r["resourceType"] == "Practitioner"]))
    records, problems, export = read_folder(tmp_path)
    assert problems == []
    assert sorted(f"{r['resourceType']}/{r['id']}" for r, *_ in records) == [
        "Patient/p1",
        "Practitioner/doctor",
        "Practitioner/nurse",
    ]
    assert {f["file"]: f["type"] for f in export.files} == {
        "1.Patient.ndjson": "Patient",
        "Practitioner.referenced.ndjson.gz": "Practitioner",
    }


def test_a_file_in_a_used_type_holding_another_type_is_still_refused(tmp_path):
    (tmp_path / f"{MA}.ndjson").write_text(ndjson([world()[0], admin()]))
    records, problems, _ = read_folder(tmp_path)
    assert [(p.record, p.field) for p in problems] == [(f"{MA}.ndjson:1", "resourceType")]
    assert [r["id"] for r, *_ in records] == ["ma1"]


# ----------------------------------------------------------------------------- files not understood


def test_every_file_not_read_is_listed_with_its_reason(tmp_path):
    write_world(tmp_path, [admin()])
    (tmp_path / "README.txt").write_text("notes")
    (tmp_path / ".DS_Store").write_bytes(b"\0\1")
    (tmp_path / f"{MA}.ndjson.gz.tmp").write_bytes(b"half written")
    (tmp_path / "attachments").mkdir()  # any other folder is read (test_folder_nested.py)
    (tmp_path / ".git").mkdir()
    (tmp_path / "log.ndjson").write_text(
        '{"exportId": "x", "eventId": "kickoff", "eventDetail": {}}\n'
    )
    (tmp_path / "Bundle.ndjson").write_text(
        json.dumps({"resourceType": "Bundle", "type": "collection"}) + "\n"
    )
    entries, report, _, result = run(tmp_path, tmp_path)
    assert report["errors"] == [] and result.exit_code == 0
    files = listed(report)
    reasons = {
        name: files[name]["reason"]
        for name in (
            "README.txt",
            ".DS_Store",
            f"{MA}.ndjson.gz.tmp",
            ".git",
            "log.ndjson",
            "Bundle.ndjson",
        )
    }
    assert all(files[name]["role"] == "skipped" for name in reasons)
    assert reasons["README.txt"].startswith("not understood") and reasons[".DS_Store"].startswith(
        "not understood"
    )
    assert reasons[f"{MA}.ndjson.gz.tmp"].startswith("not understood")
    assert "hidden folder" in reasons[".git"] and report["input"]["folders"] == ["attachments/"]
    assert "log" in reasons["log.ndjson"]
    assert "Bundles outside deleted/" in reasons["Bundle.ndjson"]
    assert entries[f"{MA}/ma1"]["outcome"] == "claim"


def test_input_is_a_new_key_and_the_old_ones_stay(tmp_path):
    write_world(tmp_path, [admin()])
    _, report, _, result = run(tmp_path, tmp_path)
    assert list(report) == [
        "generated",
        "source",
        "mappings",
        "administrations",
        "errors",
        "notices",
        "input",
        "summary",
    ]
    assert report["notices"] == []
    assert report["input"]["roles"] == {"records": 9}  # with the encounter's Location
    assert "Files:" not in result.text  # a folder of records only: nothing more to say


# ----------------------------------------------------------------------------- deleted/


def test_a_deleted_administration_is_a_void_and_no_claim(tmp_path):
    write_world(tmp_path, [admin(id="kept")])
    (tmp_path / "deleted").mkdir()
    (tmp_path / "deleted" / "Bundle.ndjson").write_text(ndjson([deleted_bundle(f"{MA}/gone")]))
    entries, report, claims, result = run(tmp_path, tmp_path)
    assert entries[f"{MA}/gone"]["outcome"] == "void"
    assert entries[f"{MA}/gone"]["patient"] is None  # no record of it in this export
    assert entries[f"{MA}/kept"]["outcome"] == "claim"
    assert len(claims) == 1 and report["errors"] == [] and result.exit_code == 0
    assert report["summary"]["outcomes"]["void"] == 1


def test_a_record_in_the_same_export_as_its_deletion_is_kept(tmp_path):
    """Bulk Data output holds what exists at transactionTime: a record there was (re)written after
    the deletion listed beside it."""
    write_world(tmp_path, [admin(id="back")])
    (tmp_path / "deleted").mkdir()
    (tmp_path / "deleted" / "Bundle.001.ndjson").write_text(ndjson([deleted_bundle(f"{MA}/back")]))
    entries, _, claims, _ = run(tmp_path, tmp_path)
    assert entries[f"{MA}/back"]["outcome"] == "claim" and "deleted_in" not in entries[f"{MA}/back"]
    assert len(claims) == 1


def test_absolute_and_versioned_delete_urls_are_understood(tmp_path):
    (tmp_path / "deleted").mkdir()
    (tmp_path / "deleted" / "Bundle.ndjson").write_text(
        ndjson(
            [
                deleted_bundle(
                    f"https://ehr.example.org/fhir/{MA}/a1", f"{MA}/a2/_history/3", "Patient/p9"
                )
            ]
        )
    )
    _, problems, export = read_folder(tmp_path)
    assert problems == []
    assert sorted(export.deletions) == [(MA, "a1"), (MA, "a2"), ("Patient", "p9")]
    assert export.files[0]["deleted"] == {MA: 2, "Patient": 1}


@pytest.mark.parametrize(
    "entry,field",
    [
        ({"request": {"method": "PUT", "url": f"{MA}/a1"}}, "request.method"),
        ({"request": {"method": "DELETE", "url": f"{MA}?identifier=x|1"}}, "request.url"),
        ({"request": {"method": "DELETE", "url": f"{MA}/bad id!"}}, "request.url"),
        ({"request": {"method": "DELETE"}}, "request.url"),
        ({"fullUrl": "urn:uuid:1"}, "request.method"),
        ("junk", "request.method"),
    ],
)
def test_a_bad_delete_entry_is_reported_alone(tmp_path, entry, field):
    (tmp_path / "deleted").mkdir()
    bundle = deleted_bundle(f"{MA}/ok")
    bundle["entry"].insert(0, entry)
    (tmp_path / "deleted" / "Bundle.ndjson").write_text(ndjson([bundle]))
    _, problems, export = read_folder(tmp_path)
    assert [(p.record, p.field) for p in problems] == [("deleted/Bundle.ndjson:1 entry[0]", field)]
    assert list(export.deletions) == [(MA, "ok")]


def test_a_deleted_file_line_that_is_no_bundle_is_reported(tmp_path):
    (tmp_path / "deleted").mkdir()
    (tmp_path / "deleted" / "Bundle.ndjson").write_text(
        json.dumps(admin())
        + "\n{broken\n"
        + json.dumps({"resourceType": "Bundle", "entry": {}})
        + "\n"
    )
    _, problems, _ = read_folder(tmp_path)
    assert [(p.record, p.field) for p in problems] == [
        ("deleted/Bundle.ndjson:1", "resourceType"),
        ("deleted/Bundle.ndjson:2", None),
        ("deleted/Bundle.ndjson:3", "Bundle.entry"),
    ]


def test_deletions_of_a_type_never_read_are_not_opened(tmp_path):
    """SMART Fetch writes deleted/Bundle.<Type>.ndjson.gz per type: the name decides."""
    (tmp_path / "deleted").mkdir()
    (tmp_path / "deleted" / "Bundle.DiagnosticReport.ndjson.gz").write_bytes(b"not gzip")
    with gzip.open(tmp_path / "deleted" / f"Bundle.{MA}.ndjson.gz", "wt") as fh:
        fh.write(ndjson([deleted_bundle(f"{MA}/x")]))
    _, problems, export = read_folder(tmp_path)
    assert problems == []
    assert list(export.deletions) == [(MA, "x")]
    roles = {f["file"]: (f["role"], f.get("type")) for f in export.files}
    assert roles == {
        "deleted/Bundle.DiagnosticReport.ndjson.gz": ("skipped", "DiagnosticReport"),
        f"deleted/Bundle.{MA}.ndjson.gz": ("deleted", None),
    }


# ----------------------------------------------------------------------------- error/


def test_only_errors_of_an_error_file_are_reported_and_long_text_is_cut(tmp_path):
    (tmp_path / "error").mkdir()
    long_text = "Export of DiagnosticReport failed: " + "x" * 500
    outcomes = [
        {
            "resourceType": "OperationOutcome",
            "issue": [
                {"severity": "information", "code": "informational", "diagnostics": "done"},
                {"severity": "warning", "code": "too-costly", "diagnostics": "slow"},
            ],
        },
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "fatal", "code": "exception", "diagnostics": long_text}],
        },
        {"resourceType": "OperationOutcome", "issue": [{"code": "processing"}]},
        {"resourceType": "OperationOutcome"},
        admin(),
    ]
    (tmp_path / "error" / "OperationOutcome.001.ndjson").write_text(ndjson(outcomes))
    _, problems, export = read_folder(tmp_path)
    where = "error/OperationOutcome.001.ndjson"
    assert [(p.record, p.field) for p in problems] == [
        (f"{where}:2", "OperationOutcome.issue"),
        (f"{where}:3", "OperationOutcome.issue"),
        (f"{where}:4", "OperationOutcome.issue"),
        (f"{where}:5", "resourceType"),
    ]
    cut = problems[0].message.split(": ", 1)[1]
    assert len(cut) == EXCERPT and cut.endswith("…") and "(fatal, exception)" in problems[0].message
    assert "no diagnostics given" in problems[1].message and "(processing)" in problems[1].message
    assert export.files[0] == {
        "file": where,
        "role": "error",
        "records": 4,
        "errors": 4,
        "notes": 2,
    }


def test_an_operation_outcome_file_outside_error_is_an_error_file(tmp_path):
    (tmp_path / "OperationOutcome.ndjson").write_text(
        ndjson(
            [
                {
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "not-found"}],
                }
            ]
        )
    )
    _, problems, export = read_folder(tmp_path)
    assert [p.record for p in problems] == ["OperationOutcome.ndjson:1"]
    assert export.files[0]["role"] == "error"


# ----------------------------------------------------------------------------- the manifest


def manifest(output, deleted=(), error=()) -> dict:
    def items(pairs):
        return [{"type": t, "url": f"https://files.example.org/x/{name}"} for t, name in pairs]

    return {
        "transactionTime": "2026-10-09T21:00:00Z",
        "request": "https://ehr.example.org/fhir/$export",
        "requiresAccessToken": True,
        "output": items(output),
        "deleted": items(deleted),
        "error": items(error),
    }


def test_the_manifest_gives_the_type_of_files_named_by_the_server(tmp_path):
    """bulk-data-client keeps the URL's file name: the manifest says what each file holds."""
    write_world(tmp_path)
    (tmp_path / "f8a1c2").write_text(ndjson([admin()]))
    (tmp_path / "e77b0d").write_text("{not even json\n")  # error file, listed as such
    (tmp_path / "dr-1").write_bytes(b"\0never opened")
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            manifest(
                [(MA, "f8a1c2"), ("DiagnosticReport", "dr-1")],
                error=[("OperationOutcome", "e77b0d")],
            )
        )
    )
    records, problems, export = read_folder(tmp_path)
    assert [(p.record, p.field) for p in problems] == [("e77b0d:1", None)]
    assert f"{MA}/ma1" in {f"{r['resourceType']}/{r['id']}" for r, *_ in records}
    roles = {f["file"]: (f["role"], f.get("type")) for f in export.files}
    assert roles["f8a1c2"] == ("records", MA)
    assert roles["dr-1"] == ("skipped", "DiagnosticReport")
    assert roles["e77b0d"] == ("error", None)


def test_a_manifest_listing_more_files_than_the_folder_holds_is_reported(tmp_path):
    write_world(tmp_path, [admin()])
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            manifest(
                [
                    (MA, f"{MA}.ndjson"),
                    (MA, f"{MA}.2.ndjson"),
                    ("DiagnosticReport", "DiagnosticReport.ndjson"),
                ],
                deleted=[("Bundle", "Bundle.ndjson")],
            )
        )
    )
    _, problems, _ = read_folder(tmp_path)
    assert [(p.record, p.field) for p in problems] == [
        ("manifest.json", "output"),
        ("manifest.json", "deleted"),
    ]
    assert "lists 2 MedicationAdministration file(s); 1 found" in problems[0].message


def test_a_manifest_that_is_not_json_is_reported(tmp_path):
    write_world(tmp_path, [admin()])
    (tmp_path / "manifest.json").write_text("{")
    records, problems, export = read_folder(tmp_path)
    assert [(p.record, p.field) for p in problems] == [("manifest.json", None)]
    assert (
        len(records) > 0
        and {f["file"]: f["role"] for f in export.files}["manifest.json"] == "manifest"
    )


def test_a_manifest_under_another_name_is_no_record_error(tmp_path):
    (tmp_path / "export-manifest.json").write_text(json.dumps(manifest([(MA, "x")])))
    _, problems, export = read_folder(tmp_path)
    assert problems == [] and export.files[0]["role"] == "manifest"


# ----------------------------------------------------------------------------- SMART Fetch runs


def at(admin_id: str, hour: int, **changes) -> dict:
    """An administration of its own hour of 2026-10-05 (the same time would be a duplicate)."""
    return admin(id=admin_id, effectiveDateTime=f"2026-10-05T{hour:02d}:00:00-05:00", **changes)


def smart_fetch(tmp_path: Path) -> Path:
    """A SMART Fetch managed folder: run 001 (full), run 002 (incremental), links at the top."""
    root = tmp_path / "export"
    first, second = root / "001.2026-10-05", root / "002.2026-10-09"
    write_world(first, patients=("p1", "p2"))
    for path in list(first.iterdir()):  # SMART Fetch's names and compression
        with gzip.open(first / f"{path.stem}.001.ndjson.gz", "wt") as fh:
            fh.write(path.read_text())
        path.unlink()
    with gzip.open(first / f"{MA}.001.ndjson.gz", "wt") as fh:
        fh.write(
            ndjson(
                [
                    at("kept", 9),
                    at("changed", 10, dosage=dosage(dose=dose(15, "mg"))),
                    at("gone", 11, patient="p2"),
                ]
            )
        )
    (first / "log.ndjson").write_text('{"exportId": "1", "eventId": "kickoff"}\n')
    (first / ".metadata").write_text(json.dumps({"kind": "output"}))
    second.mkdir()
    with gzip.open(second / f"{MA}.001.ndjson.gz", "wt") as fh:
        fh.write(ndjson([at("changed", 10), at("new", 12)]))
    nurse = [r for r in world() if r["resourceType"] == "Practitioner"]
    with gzip.open(second / "Practitioner.referenced.ndjson.gz", "wt") as fh:
        fh.write(ndjson(nurse))
    with gzip.open(second / "Practitioner.searched.ndjson.gz", "wt") as fh:
        fh.write(ndjson(nurse))
    (second / "deleted").mkdir()
    with gzip.open(second / "deleted" / f"Bundle.{MA}.ndjson.gz", "wt") as fh:
        fh.write(
            ndjson(
                [
                    {
                        "resourceType": "Bundle",
                        "type": "transaction",
                        "entry": [{"request": {"method": "DELETE", "url": f"{MA}/gone"}}],
                    }
                ]
            )
        )
    (second / "log.ndjson").write_text('{"exportId": "2", "eventId": "kickoff"}\n')
    (root / ".metadata").write_text(json.dumps({"kind": "managed"}))
    os.symlink(f"002.2026-10-09/{MA}.001.ndjson.gz", root / f"{MA}.001.ndjson.gz")
    os.symlink("001.2026-10-05/Patient.001.ndjson.gz", root / "Patient.001.ndjson.gz")
    return root


def test_smart_fetch_runs_are_applied_in_order(tmp_path):
    entries, report, claims, result = run(smart_fetch(tmp_path), tmp_path)
    assert (
        report["errors"] == [] and result.exit_code == 0
    )  # no duplicates, logs or metadata as errors
    outcomes = {a.split("/")[1]: e["outcome"] for a, e in entries.items()}
    assert outcomes == {"kept": "claim", "changed": "claim", "new": "claim", "gone": "void"}
    assert entries[f"{MA}/changed"]["units"] == 2  # run 002's 30 mg, not run 001's 15 mg
    assert entries[f"{MA}/gone"]["patient"] == "Patient/p2"  # known from run 001
    assert (
        entries[f"{MA}/gone"]["deleted_in"]
        == f"002.2026-10-09/deleted/Bundle.{MA}.ndjson.gz:1 entry[0]"
    )
    assert len(claims) == 3
    assert report["input"]["runs"] == ["001.2026-10-05", "002.2026-10-09"]


def test_smart_fetch_links_logs_and_metadata_are_listed_not_read(tmp_path):
    _, report, _, _ = run(smart_fetch(tmp_path), tmp_path)
    files = listed(report)
    assert files[f"{MA}.001.ndjson.gz"]["reason"] == (
        f"a link to 002.2026-10-09/{MA}.001.ndjson.gz; read in its run folder"
    )
    assert files["001.2026-10-05/log.ndjson"]["role"] == "skipped"
    assert "metadata" in files[".metadata"]["reason"]
    assert files["002.2026-10-09/Practitioner.searched.ndjson.gz"] == {
        "file": "002.2026-10-09/Practitioner.searched.ndjson.gz",
        "role": "records",
        "type": "Practitioner",
        "records": 2,
        "errors": 0,
    }  # the nurse and the attending doctor


def test_one_run_folder_read_alone_reads_its_hydrated_files(tmp_path):
    """A run folder read as the source once gave missing-performer for every administration."""
    root = smart_fetch(tmp_path)
    first = root / "001.2026-10-05"
    for path in first.glob("Practitioner.*"):
        path.rename(first / "Practitioner.referenced.ndjson.gz")
    entries, report, _, _ = run(first, tmp_path)
    assert report["errors"] == []
    assert all("missing-performer" not in [g["code"] for g in e["gaps"]] for e in entries.values())


def test_a_record_deleted_in_one_run_and_back_in_a_later_one_is_decided(tmp_path):
    root = tmp_path / "export"
    write_world(root / "001.a", [admin(id="x")])
    (root / "001.a" / "deleted").mkdir()
    (root / "001.a" / "deleted" / "Bundle.ndjson").write_text(ndjson([deleted_bundle(f"{MA}/y")]))
    write_world(root / "002.b", [at("y", 10)])
    entries, report, _, _ = run(root, tmp_path)
    assert {a: e["outcome"] for a, e in entries.items()} == {f"{MA}/x": "claim", f"{MA}/y": "claim"}
    assert report["errors"] == []


def test_an_earlier_runs_record_never_replaces_a_later_ones(tmp_path):
    problems: list[RecordProblem] = []
    newer, older = admin(status="completed"), admin(status="not-done", meta={"versionId": "9"})
    with Spool(directory=str(tmp_path)) as spool:
        spool.add_all([(newer, False, 2, 1), (older, False, 1, 2)], problems.append)
        assert [a["status"] for a in spool.for_patient("p1")[0]] == ["completed"]
    assert problems == []


# ----------------------------------------------------------------------------- the spool


def test_the_same_record_in_two_files_is_no_conflict_but_in_one_file_it_is(tmp_path):
    problems: list[RecordProblem] = []
    with Spool(directory=str(tmp_path)) as spool:
        spool.add_all([(admin(), False, 0, 1), (admin(), False, 0, 2)], problems.append)
    assert problems == []
    with Spool(directory=str(tmp_path)) as spool:
        spool.add_all([(admin(), False, 0, 1), (admin(), False, 0, 1)], problems.append)
    assert [(p.record, p.field) for p in problems] == [(f"{MA}/ma1", "id")]


def test_deletions_remove_earlier_runs_records_only(tmp_path):
    records = [(r, False, 1, 1) for r in world()] + [
        (admin(id="a"), False, 1, 2),
        (admin(id="b"), False, 2, 3),
    ]
    deletions = [
        Deletion(MA, "a", 2, "d:1"),
        Deletion(MA, "b", 2, "d:2"),
        Deletion(MA, "c", 2, "d:3"),
        Deletion("Encounter", "e-p1", 2, "d:4"),
        Deletion("Patient", "nobody", 2, "d:5"),
    ]
    with Spool(directory=str(tmp_path)) as spool:
        spool.add_all(records, lambda p: pytest.fail(str(p)))
        assert spool.get("Encounter", "e-p1") is not None  # cached, then deleted
        voids = spool.apply_deletions(deletions)
        assert voids == [("a", "p1", "d:1"), ("c", None, "d:3")]
        assert spool.get("Encounter", "e-p1") is None
        assert [a["id"] for a in spool.for_patient("p1")[0]] == ["b"]
        assert spool.counts[MA] == 1 and spool.counts["Encounter"] == 0


# ----------------------------------------------------------------------------- the live sync


def test_a_deleted_administration_cancels_its_posted_claim(tmp_path):
    """The void of a deletion is the decision the poster cancels an earlier Claim for."""
    from fhir_injection.fhir.client import FhirClient
    from fhir_injection.fhir.http import HttpSession
    from fhir_injection.jobs.sync import SyncOptions, run_sync
    from fhir_injection.sinks.poster import Poster
    from tests.fakefhir import FakeFhir

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        server = FakeFhir().install(rsps)
        for r in [*world(), admin()]:
            server.put(r)
        client = FhirClient(
            HttpSession("https://fhir.example.org/fhir", sleep=lambda s: None, clock=lambda: 0.0)
        )
        rules = load_bundled_rules()
        run_sync(
            client,
            client,
            rules,
            Config(),
            SyncOptions(
                state_path=str(tmp_path / "state.json"),
                report_path=str(tmp_path / "r.json"),
                created=CREATED,
            ),
        )
        (claim,) = server.all("Claim")
        assert claim["status"] == "active"
        poster = Poster(client, rules, Config(), bundle_size=10)
        plans, outcome = poster.plan([decide_deleted("ma1")], CREATED)
        poster.send(plans, outcome)
        assert server.get("Claim", claim["id"])["status"] == "cancelled"
        assert outcome[f"{MA}/ma1"]["claim_action"] == "cancel"


# ----------------------------------------------------------------------------- compatibility


def test_the_bad_input_corpus_case_of_an_unknown_type_still_holds(tmp_path):
    shutil.copytree(
        ROOT / "tests" / "badinput" / "cases" / "unknown-type-file-is-ignored", tmp_path / "in"
    )
    _, problems, export = read_folder(tmp_path / "in")
    assert problems == [] and export.files[0]["role"] == "skipped"


def test_a_second_name_for_a_run_folder_is_not_read_twice(tmp_path):
    root = smart_fetch(tmp_path)
    os.symlink("002.2026-10-09", root / "003.latest")
    os.symlink("001.2026-10-05", root / "previous")
    _entries, report, claims, _ = run(root, tmp_path)
    files = listed(report)
    assert report["input"]["runs"] == ["001.2026-10-05", "002.2026-10-09"]
    assert files["003.latest"]["reason"] == "a link to 002.2026-10-09/; read as that run"
    assert files["previous"]["reason"] == "a link to 001.2026-10-05/; read as that run"
    assert report["errors"] == [] and len(claims) == 3


def test_a_file_name_that_is_not_utf8_is_listed_readably(tmp_path):
    write_world(tmp_path, [admin()])
    (tmp_path / os.fsdecode(b"notes-\xff.txt")).write_text("x")
    _, report, _, _ = run(tmp_path, tmp_path)
    assert "notes-\\xff.txt" in listed(report)
    json.dumps(report, ensure_ascii=False).encode("utf-8")  # no lone surrogates left
