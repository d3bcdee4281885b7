"""The drug tables come from the newest CMS HCPCS Level II release in
mappings/build/source/ (January 2026, hcpcs2026_drugs.csv): its descriptors, its new codes, its
termination dates (a terminated code is dropped unless a hand-written table still names it, and
then its source says so); without that extract the 2020 file is read as before.
"""

from __future__ import annotations

import csv
import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "mappings" / "build"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BUILD / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _drugs() -> dict[str, dict[str, str]]:
    with (ROOT / "mappings" / "drugs.csv").open(newline="", encoding="utf-8") as fh:
        return {r["hcpcs"]: r for r in csv.DictReader(fh)}


def test_codes_added_since_2020_are_there_with_their_billing_unit():
    d = _drugs()
    # methylprednisolone acetate 1 mg (2024-04), leuprolide Camcevi 1 mg (2022), epinephrine NOS
    # 0.1 mg (2025-07), lidocaine 1 mg (2024-10)
    for code, amount, unit in (
        ("J1010", "1", "mg"),
        ("J1952", "1", "mg"),
        ("J0165", "0.1", "mg"),
        ("J2003", "1", "mg"),
        ("J2919", "5", "mg"),
    ):
        assert (d[code]["unit_amount"], d[code]["unit"], d[code]["unit_status"]) == (
            amount,
            unit,
            "parsed",
        ), code
        assert "January 2026" in d[code]["source"] and "TERMINATED" not in d[code]["source"]


def test_descriptors_come_from_the_2026_release():
    d = _drugs()
    assert (
        d["J7516"]["description"] == "Injection, cyclosporine, 250 mg"
    )  # 2020: "Cyclosporin, ..."
    assert d["J9260"]["description"] == "Injection, methotrexate sodium, 50 mg"


def test_a_code_terminated_in_2026_is_dropped_unless_a_hand_written_table_names_it():
    d = _drugs()
    # capecitabine 150 mg (ended 2024-09-30), adenosine 6 mg (ended 2014): nobody names them
    assert "J8520" not in d and "J0150" not in d
    # methylprednisolone acetate 40 mg ended 2024-03-31 but drug_families.csv and the curated
    # inputs still name it: kept, and its source says so for a person to replace
    source = d["J1030"]["source"]
    assert "TERMINATED 2024-03-31" in source and "drug_families.csv" in source
    assert "TERMINATED 2015-12-31" in d["J0886"]["source"]  # drug_by_diagnosis.csv names it


def test_without_the_2026_extract_the_2020_file_is_read(tmp_path, monkeypatch):
    build = _load("build_drugs")
    source = tmp_path / "source"
    shutil.copytree(BUILD / "source", source)
    (source / "hcpcs2026_drugs.csv").unlink()
    monkeypatch.setattr(build, "SRC", source)
    rows, table = build.build_drugs()
    assert len(rows) == 851  # the 2020 file less curated/terminated.csv
    assert "J1952" not in table and "J1070" not in table and "J0150" in table
    assert all("2020" in r[-1] for r in rows)


def _record(
    code: str,
    rec: str,
    long: str,
    short: str = "",
    added: str = "",
    term: str = "",
    action: str = "",
) -> str:
    line = f"{code:<5}00100{rec}{long:<80}{short:<28}".ljust(268)
    line += f"{added:<8}{'':<8}{term:<8}{action:<1}"
    return line.ljust(320)


def test_the_fixed_width_cms_file_is_read_by_its_record_layout():
    extract = _load("extract_sources")
    text = "\n".join(
        [
            _record("A0021", "3", "Ambulance service, outside state per mile"),
            _record(
                "J1010",
                "3",
                "Injection, methylprednisolone acetate, 1 mg",
                "Inj, methylpred",
                added="20240401",
                action="N",
            ),
            _record(
                "J1030",
                "3",
                "Injection, methylprednisolone acetate, 40 mg",
                "Methylpred 40",
                added="19820101",
                term="20240331",
                action="N",
            ),
            _record("J9999", "3", "Not otherwise classified,", "Chemotherapy drug", action="N"),
            _record("J9999", "4", "antineoplastic drugs"),
            _record("Q9950", "3", "Injection, sulfur hexafluoride lipid microspheres, per ml"),
        ]
    )
    rows = {r[0]: r for r in extract.parse_anweb(text)}
    assert set(rows) == {"J1010", "J1030", "J9999"}  # no A code, no contrast agent
    assert rows["J1010"][1:3] == ("Injection, methylprednisolone acetate, 1 mg", "Inj, methylpred")
    assert rows["J1030"][3] == "19820101" and rows["J1030"][5] == "20240331"
    assert rows["J9999"][1] == "Not otherwise classified, antineoplastic drugs"


@pytest.mark.parametrize("table", ["drugs.csv", "drug_codes.csv"])
def test_the_committed_tables_are_what_the_build_makes(tmp_path, table):
    build = _load("build_drugs")
    assert build.main(["--out", str(tmp_path)]) == 0
    assert (tmp_path / table).read_text(encoding="utf-8") == (ROOT / "mappings" / table).read_text(
        encoding="utf-8"
    )
