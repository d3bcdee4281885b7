"""Reading a Bulk Data folder: ndjson, numbered ndjson, gzip, Bundles; bad records reported, never fatal."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from fhir_injection import decide_bundle
from fhir_injection.errors import RecordProblem
from fhir_injection.sources.folder import iter_folder, iter_folder_checked
from fhir_injection.sources.records import check_resource
from fhir_injection.sources.spool import Spool
from tests.builders import admin, world


def ndjson(resources) -> str:
    return "".join(json.dumps(r) + "\n" for r in resources)


def read(folder: Path):
    problems: list[RecordProblem] = []
    resources = list(iter_folder(folder, problems.append))
    return resources, problems


def keys(resources):
    return [f"{r['resourceType']}/{r['id']}" for r in resources]


def test_all_file_forms(tmp_path):
    w = world()
    by_type = {}
    for r in w:
        by_type.setdefault(r["resourceType"], []).append(r)
    (tmp_path / "Patient.ndjson").write_text(ndjson(by_type.pop("Patient")))
    (tmp_path / "MedicationAdministration.1.ndjson").write_text(ndjson([admin(id="a1")]))
    (tmp_path / "MedicationAdministration.2.ndjson.gz").write_bytes(
        gzip.compress(ndjson([admin(id="a2")]).encode())
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for rs in by_type.values() for r in rs],
    }
    (tmp_path / "world.json").write_text(json.dumps(bundle))
    (tmp_path / "single.json").write_text(json.dumps(admin(id="a3")))
    (tmp_path / "README.txt").write_text("not FHIR")
    resources, problems = read(tmp_path)
    assert problems == []
    assert sorted(keys(resources)) == sorted(
        [
            "MedicationAdministration/a1",
            "MedicationAdministration/a2",
            "MedicationAdministration/a3",
        ]
        + [f"{r['resourceType']}/{r['id']}" for r in w]
    )


def test_files_are_read_in_name_order(tmp_path):
    (tmp_path / "MedicationAdministration.2.ndjson").write_text(ndjson([admin(id="b")]))
    (tmp_path / "MedicationAdministration.1.ndjson").write_text(ndjson([admin(id="a")]))
    assert keys(read(tmp_path)[0]) == ["MedicationAdministration/a", "MedicationAdministration/b"]


def test_unused_types_are_dropped(tmp_path):
    (tmp_path / "DiagnosticReport.ndjson").write_text(
        ndjson([{"resourceType": "DiagnosticReport", "id": "o1"}])
    )
    resources, problems = read(tmp_path)
    assert resources == [] and problems == []


def test_bad_json_line_is_reported_with_file_and_line_and_the_rest_is_read(tmp_path):
    text = json.dumps(admin(id="a1")) + "\n{not json\n\n" + json.dumps(admin(id="a2")) + "\n"
    (tmp_path / "MedicationAdministration.ndjson").write_text(text)
    resources, problems = read(tmp_path)
    assert keys(resources) == ["MedicationAdministration/a1", "MedicationAdministration/a2"]
    assert len(problems) == 1
    assert problems[0].record == "MedicationAdministration.ndjson:2"
    assert "not valid JSON" in problems[0].message


@pytest.mark.parametrize(
    "line,field",
    [
        ("[1, 2]", None),
        ('{"id": "x"}', "resourceType"),
        ('{"resourceType": 5, "id": "x"}', "resourceType"),
        ('{"resourceType": "MedicationAdministration", "id": 7}', "id"),
        ('{"resourceType": "MedicationAdministration", "id": "bad id!"}', "id"),
        ('{"resourceType": "Patient", "id": "p9"}', "resourceType"),  # wrong type in this file
    ],
)
def test_wrong_types_are_reported_per_record_naming_the_field(tmp_path, line, field):
    (tmp_path / "MedicationAdministration.ndjson").write_text(
        line + "\n" + json.dumps(admin()) + "\n"
    )
    resources, problems = read(tmp_path)
    assert keys(resources) == ["MedicationAdministration/ma1"]
    assert [p.field for p in problems] == [field]
    assert problems[0].record.startswith("MedicationAdministration.ndjson:1")


def test_gzip_that_is_not_gzip(tmp_path):
    (tmp_path / "MedicationAdministration.ndjson.gz").write_text(ndjson([admin()]))
    (tmp_path / "Patient.ndjson").write_text(ndjson([world()[0]]))
    resources, problems = read(tmp_path)
    assert keys(resources) == ["Patient/p1"]
    assert len(problems) == 1
    assert problems[0].record.startswith("MedicationAdministration.ndjson.gz:")
    assert "not valid gzip" in problems[0].message


def test_truncated_gzip_keeps_what_was_read(tmp_path):
    data = gzip.compress(ndjson([admin(id=f"a{i}") for i in range(50)]).encode())
    (tmp_path / "MedicationAdministration.ndjson.gz").write_bytes(data[: len(data) - 20])
    resources, problems = read(tmp_path)
    assert len(problems) == 1 and "gzip" in problems[0].message
    assert len(resources) < 50


def test_invalid_utf8(tmp_path):
    (tmp_path / "MedicationAdministration.ndjson").write_bytes(
        b'{"resourceType": "Medication\xff"}\n'
    )
    resources, problems = read(tmp_path)
    assert resources == [] and "UTF-8" in problems[0].message


def test_bundle_problems(tmp_path):
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": admin(id="ok")},
            {"fullUrl": "urn:x"},
            {"resource": {"resourceType": "Patient"}},
            "junk",
        ],
    }
    (tmp_path / "b.json").write_text(json.dumps(bundle))
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "list.json").write_text("[]")
    (tmp_path / "entries.json").write_text(json.dumps({"resourceType": "Bundle", "entry": {}}))
    resources, problems = read(tmp_path)
    assert keys(resources) == ["MedicationAdministration/ok"]
    records = sorted((p.record, p.field) for p in problems)
    assert records == sorted(
        [
            ("b.json entry[1]", "resource"),
            ("b.json entry[2] (Patient)", "id"),
            ("b.json entry[3]", "resource"),
            ("broken.json", None),
            ("list.json", None),
            ("entries.json", "Bundle.entry"),
        ]
    )


def test_missing_folder():
    with pytest.raises(FileNotFoundError):
        list(iter_folder("/nonexistent/folder", lambda p: None))


def test_check_resource_accepts_a_clean_resource():
    assert check_resource(admin(), "x") is None
    assert str(RecordProblem("f:1", "id", "bad")) == "f:1 id: bad"


def test_problem_messages_carry_no_record_content(tmp_path):
    secret = dict(world()[0], id="not valid id with Testperson")
    (tmp_path / "Patient.ndjson").write_text(ndjson([secret]) + '{"name": "Testperson", \n')
    _, problems = read(tmp_path)
    assert len(problems) == 2
    assert all("Testperson" not in str(p) for p in problems)


# ----------------------------------------------------------------------------- the spool


def test_spool_keeps_the_newer_version_and_groups_by_patient(tmp_path):
    old = dict(admin(id="a1"), meta={"versionId": "1"}, status="in-progress")
    new = dict(admin(id="a1"), meta={"versionId": "2"})
    problems = []
    with Spool(directory=str(tmp_path)) as spool:
        others = [
            r
            for r in world(patient="p2")
            if r["resourceType"] not in ("Organization", "Practitioner", "Location")
        ]
        spool.add_all([new, old, *world(), *others], problems.append)
        assert list(spool.patients()) == ["p1"]
        admins, ctx = spool.for_patient("p1")
        assert [a["meta"]["versionId"] for a in admins] == ["2"]
        assert ctx.get("Organization/clinic") is not None  # resolved lazily from the spool
        assert ctx.for_patient("Coverage", "p1")[0]["id"] == "cov-p1"
        assert ctx.for_patient("Coverage", "p2") == []
    assert problems == []


def test_spool_reports_the_same_id_twice_with_the_same_version(tmp_path):
    problems = []
    with Spool(directory=str(tmp_path)) as spool:
        spool.add_all([admin(), admin()], problems.append)
    assert [(p.record, p.field) for p in problems] == [("MedicationAdministration/ma1", "id")]


def test_spool_checks_every_possible_repeat(tmp_path, monkeypatch):
    """With a filter that sees every id as a possible repeat (one slot), each is checked against the
    stored rows and the result is the same."""
    older = dict(admin(id="a1"), meta={"versionId": "1"}, status="in-progress")
    (tmp_path / "MedicationAdministration.ndjson").write_text(
        ndjson([admin(id="a1", meta={"versionId": "2"}), older, admin(id="a2"), admin(id="a2")])
    )
    (tmp_path / "Patient.ndjson").write_text(
        ndjson(r for r in world() if r["resourceType"] == "Patient")
    )
    problems: list[RecordProblem] = []
    records = list(iter_folder_checked(tmp_path, problems.append))
    assert all(how == json.dumps(r).encode() + b"\n" for r, how in records)
    results = []
    for bits in (1 << 24, 8):
        monkeypatch.setattr("fhir_injection.sources.spool._SEEN_BITS", bits)
        found: list[RecordProblem] = []
        with Spool(directory=str(tmp_path)) as spool:
            spool.add_all(records, found.append)
            admins, _ = spool.for_patient("p1")
            results.append(([(a["id"], a.get("meta")) for a in admins], spool.counts, found))
    assert results[0] == results[1]
    assert results[0][0] == [("a1", {"versionId": "2"}), ("a2", None)]
    assert [(p.record, p.field) for p in results[0][2]] == [("MedicationAdministration/a2", "id")]


def test_spool_gives_back_what_it_was_given(tmp_path):
    """Shallow records (marshal) and deep ones or Bundle entries (JSON) come back equal, whatever they hold."""
    odd = dict(
        admin(id="odd"),
        note=[{"text": "\ud800 caf\u00e9"}],
        x=[10**40, -0.0, float("inf"), None, True],
    )
    deep = dict(admin(id="deep"), x=[[[[[[["down"]]]]]]])
    problems: list[RecordProblem] = []
    with Spool(directory=str(tmp_path)) as spool:
        spool.add_all(
            [(odd, True), (deep, False), (admin(id="line"), json.dumps(admin(id="line")).encode())],
            problems.append,
        )
        admins, _ = spool.for_patient("p1")
    assert problems == []
    assert [json.dumps(a) for a in admins] == [
        json.dumps(deep),
        json.dumps(admin(id="line")),
        json.dumps(odd),
    ]


def test_spool_deletes_its_file(tmp_path):
    with Spool(directory=str(tmp_path)) as spool:
        path = Path(spool.path)
        assert path.exists()
    assert not path.exists()


# ----------------------------------------------------------------------------- decide_bundle


def test_decide_bundle_from_a_bundle_and_from_a_list():
    resources = [*world(), admin(id="a1"), admin(id="a2", status="not-done")]
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }
    from_bundle = decide_bundle(bundle)
    from_list = decide_bundle(resources)
    assert [(d.administration, d.outcome) for d in from_bundle] == [
        ("MedicationAdministration/a1", "claim"),
        ("MedicationAdministration/a2", "not-billable"),
    ]
    assert from_bundle == from_list


@pytest.mark.parametrize(
    "path",
    [p for p, _ in __import__("fhir_injection.sources.records", fromlist=["x"])._MA_SHAPE]
    + ["dosage.dose.value"],
)
@pytest.mark.parametrize(
    "value", ["x", 1, 2.5, True, None, [], {}, [{}], float("nan"), 10**30, {"a": 1}]
)
def test_check_shape_quick_yes_agrees_with_the_full_walk(path, value):
    """check_shape's quick pass for plain dicts says yes only where the full, ordered walk (which any
    other mapping, here a read-only view, takes) finds nothing."""
    from types import MappingProxyType

    from fhir_injection.sources.records import check_shape

    resource = admin()
    *parents, last = path.split(".")
    node = resource
    for part in parents:
        node = node.setdefault(part, {}) if isinstance(node, dict) else node
    if isinstance(node, dict):
        node[last] = value
    quick = check_shape(resource, "x:1")
    full = check_shape(MappingProxyType(resource), "x:1")
    assert (quick and (quick.record, quick.field, quick.message)) == (
        full and (full.record, full.field, full.message)
    )
