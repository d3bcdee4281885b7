"""Folders of folders of Bundles, and one resource in two files.

Implementation guides keep their test cases as one folder per case holding Bundle ``.json`` files
(HL7 cqf-recommendations ``input/tests/...``, Synthea's ``fhir/`` output split by a converter);
``--source`` reads every file of every folder, recursively, and lists each in the report's
``input`` with its path. The same resource may come in an NDJSON file and in a Bundle: it is read
once; only copies whose content differs besides ``meta.versionId``/``meta.lastUpdated`` are a
*notice* (the report's ``notices``, naming the resource and both files, never its patient), not a
record error.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path

from fhir_injection import Config, load_rules, run_folder
from tests.builders import admin, world

MA = "MedicationAdministration"
CREATED = "2026-11-30T12:00:00Z"


def bundle(resources: list[dict], btype: str = "collection") -> dict:
    return {
        "resourceType": "Bundle",
        "type": btype,
        "entry": [
            {"fullUrl": f"http://example.org/fhir/{r['resourceType']}/{r['id']}", "resource": r}
            for r in resources
        ],
    }


def write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, list):
        path.write_text("".join(json.dumps(r) + "\n" for r in data))
    else:
        path.write_text(json.dumps(data))


def run(source: Path, tmp_path: Path, progress=None) -> tuple[dict, dict, object]:
    target = tmp_path / "out"
    result = run_folder(source, target, load_rules(), Config(), CREATED, progress=progress)
    report = json.loads((target / "report.json").read_text())
    return {e["administration"]: e for e in report["administrations"]}, report, result


def test_a_folder_of_case_folders_of_bundles_is_read_recursively(tmp_path):
    src = tmp_path / "tests"
    for n, patient in enumerate(("p1", "p2", "p3"), start=1):
        case = src / f"case-{n}" / ("input" if n == 3 else "")  # one case one level deeper
        write(case / "context.json", bundle(world(patient=patient)))
        write(case / "administration.json", admin(id=f"ma{n}", patient=patient))
    said: list[str] = []
    entries, report, result = run(src, tmp_path, progress=said.append)
    assert sorted(entries) == [f"{MA}/ma1", f"{MA}/ma2", f"{MA}/ma3"]
    assert all(e["outcome"] == "claim" for e in entries.values())
    assert report["errors"] == [] and result.exit_code == 0
    files = {f["file"]: f for f in report["input"]["files"]}
    assert set(files) == {
        "case-1/administration.json",
        "case-1/context.json",
        "case-2/administration.json",
        "case-2/context.json",
        "case-3/input/administration.json",
        "case-3/input/context.json",
    }
    assert files["case-1/context.json"]["records"] == len(world())
    assert report["input"]["folders"] == ["case-1/", "case-2/", "case-3/", "case-3/input/"]
    # progress names each folder with what it held: paths and counts, no content
    assert "read case-3/input/: 2 records" in said and "read case-3/: no files" in said
    assert "Testperson" not in " ".join(said) and "Testperson" not in json.dumps(report["input"])


def test_a_link_back_to_a_folder_already_read_is_not_read_again(tmp_path):
    src = tmp_path / "tests"
    write(src / "case-1" / "all.json", bundle([*world(), admin()]))
    os.symlink(src, src / "case-1" / "loop")
    entries, report, _ = run(src, tmp_path)
    assert list(entries) == [f"{MA}/ma1"] and report["errors"] == []
    files = {f["file"]: f for f in report["input"]["files"]}
    assert (
        files["case-1/loop/"]["role"] == "skipped"
        and "already read" in files["case-1/loop/"]["reason"]
    )


def test_an_identical_resource_in_an_ndjson_and_a_bundle_is_read_once_without_a_notice(tmp_path):
    src = tmp_path / "export"
    write(src / f"{MA}.ndjson", [admin()])
    write(src / "Patient.ndjson", [world()[0]])
    copy_ = admin()
    copy_["meta"] = {"versionId": "3", "lastUpdated": "2026-10-06T08:00:00Z"}  # meta alone differs
    write(
        src / "bundles" / "visit.json",
        bundle([r for r in world() if r["resourceType"] != "Patient"] + [copy_, world()[0]]),
    )
    entries, report, result = run(src, tmp_path)
    assert list(entries) == [f"{MA}/ma1"] and entries[f"{MA}/ma1"]["outcome"] == "claim"
    assert report["notices"] == [] and report["errors"] == [] and result.exit_code == 0
    assert "notices" not in report["summary"] and "Notices" not in result.text


def test_a_differing_copy_is_one_notice_naming_the_resource_and_both_files(tmp_path):
    src = tmp_path / "export"
    write(src / f"{MA}.ndjson", [admin()])
    later = admin()
    later["dosage"]["dose"]["value"] = 60  # the Bundle's copy says 60 mg
    write(src / "bundles" / "visit.json", bundle([*world(), later]))
    entries, report, result = run(src, tmp_path)
    assert report["errors"] == [] and result.exit_code == 0  # not a record error
    assert report["notices"] == [
        {
            "record": f"{MA}/ma1",
            "files": [f"{MA}.ndjson", "bundles/visit.json"],
            "message": f"is in {MA}.ndjson and in bundles/visit.json with different content (besides "
            "meta.versionId/lastUpdated); the copy in bundles/visit.json is used",
        }
    ]
    assert entries[f"{MA}/ma1"]["units"] == 4  # 60 mg of ketorolac, J1885 per 15 mg: the later copy
    assert (
        report["summary"]["notices"] == 1
        and "Notices: 1 (see 'notices' in the report)" in result.text
    )
    # the notice names the resource, never its patient
    assert "p1" not in json.dumps(report["notices"]) and "Testperson" not in json.dumps(
        report["notices"]
    )


def test_of_two_differing_copies_the_newer_version_is_used_whichever_file_comes_last(tmp_path):
    src = tmp_path / "export"
    newer = admin()
    newer["meta"] = {"versionId": "2"}
    newer["dosage"]["dose"]["value"] = 60
    older = copy.deepcopy(admin())
    older["meta"] = {"versionId": "1"}
    write(src / f"{MA}.ndjson", [newer])
    write(src / "z" / "old.json", bundle([*world(), older]))
    entries, report, _ = run(src, tmp_path)
    assert entries[f"{MA}/ma1"]["units"] == 4
    assert [n["record"] for n in report["notices"]] == [f"{MA}/ma1"]
    assert report["notices"][0]["message"].endswith(f"the copy in {MA}.ndjson is used")


def test_the_notice_reaches_the_log_without_the_record(tmp_path, caplog):
    src = tmp_path / "export"
    write(src / f"{MA}.ndjson", [admin()])
    other = admin()
    other["note"] = [{"text": "patient Testperson anxious"}]
    write(src / "b" / "x.json", bundle([*world(), other]))
    with caplog.at_level(logging.INFO, logger="fhir_injection"):
        run(src, tmp_path)
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert f"{MA}/ma1" in logged and "Testperson" not in logged


def test_the_realworld_ig_test_cases_folder_reads_every_case_without_errors_or_notices(tmp_path):
    # fixtures/realworld/ig-test-cases-nested: its 'records' expectations in expected.json
    source = Path(__file__).resolve().parents[2] / "fixtures" / "realworld" / "ig-test-cases-nested"
    entries, report, _result = run(source, tmp_path)
    assert sorted(entries) == [f"{MA}/rw-igt-ma-1", f"{MA}/rw-igt-ma-2"]
    assert (
        report["errors"] == [] and report["notices"] == []
    )  # rw-igt-org twice, meta alone differs
    files = {f["file"]: f["role"] for f in report["input"]["files"]}
    assert files == {
        "README.txt": "skipped",
        "case-1-fentanyl-patch/context.json": "records",
        "case-1-fentanyl-patch/input/administration.json": "records",
        "case-2-ketorolac-im/bundles/administration.json": "records",
        "case-2-ketorolac-im/bundles/context.json": "records",
    }
