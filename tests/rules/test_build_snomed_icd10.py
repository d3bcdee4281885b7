"""mappings/snomed_icd10.csv as mappings/build/build_snomed_icd10.py builds it: the hand-curated VSAC
pairs, then the pairs of Synthea's BFD exporter map (condition_code_map.json, Apache-2.0) that a coder
would sign: one target, an ICD-10-CM code (not ICD-10-PCS), complete in the April 2026 ICD-10-CM
release (CMS/NCHS), and reviewed against the SNOMED CT concept."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "mappings" / "build" / "build_snomed_icd10.py"


def _module():
    spec = importlib.util.spec_from_file_location("build_snomed_icd10", BUILD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(path):
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_the_committed_table_is_what_the_script_builds():
    done = subprocess.run([sys.executable, str(BUILD), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_row_names_its_source_and_release():
    rows = _rows(ROOT / "mappings" / "snomed_icd10.csv")
    assert rows and all(r["source"] and r["release"] for r in rows)


def test_curated_rows_win_and_stay_as_they_were():
    rows = _rows(ROOT / "mappings" / "snomed_icd10.csv")
    by = {}
    for r in rows:
        by.setdefault(r["snomed"], []).append(r["icd10"])
    assert by["236435004"] == ["N18.6", "Z99.2"]  # VSAC ESRD + the N18.6 use-additional note
    assert by["46177005"] == ["N18.6"] and "VSAC" in next(
        r["source"] for r in rows if r["snomed"] == "46177005"
    )
    assert sum(1 for r in rows if "VSAC" in r["release"]) == 14  # the 13 VSAC pairs and Z99.2


def test_synthea_pairs_a_coder_signs_are_kept_with_the_icd10cm_title():
    rows = {r["snomed"]: r for r in _rows(ROOT / "mappings" / "snomed_icd10.csv")}
    assert (rows["271737000"]["icd10"], rows["271737000"]["icd10_display"]) == (
        "D64.9",
        "Anemia, unspecified",
    )
    assert (rows["431857002"]["icd10"], rows["431857002"]["icd10_display"]) == (
        "N18.4",
        "Chronic kidney disease, stage 4 (severe)",
    )
    assert (
        "Umbizo/ModSynthea@085492941ccf40a5017daa0364ed824ca35a7f98" in rows["271737000"]["source"]
    )


def test_what_synthea_maps_but_a_coder_would_not_sign_is_left_out_with_why():
    why = {
        r["snomed"]: r["why_no_row"]
        for r in _rows(ROOT / "mappings" / "build" / "snomed_icd10_left_out.csv")
    }
    assert why["241929008"].startswith("not a code of ICD-10-CM")  # T78.40X: no 7th character
    assert why["254837009"].startswith("ambiguous: 2 targets")  # female / male breast
    assert why["443165006"].startswith("reviewed, rejected")  # M80.00XD is a subsequent encounter
    assert why["82423001"].startswith("reviewed, rejected")  # chronic pain is G89.29, not R52
    assert why["46177005"].startswith("a curated row wins")


def test_the_rules_on_the_maps_own_bad_entries():
    b = _module()
    icd = {
        "Z86.16": {"in_release": "yes", "complete": "yes", "title": "Personal history of COVID-19"},
        "S89.90": {
            "in_release": "yes",
            "complete": "no",
            "title": "Unspecified injury of lower leg",
        },
    }
    # Synthea: 103746007 -> Z86.16 described "COVID-19": a real code, but not what the concept says;
    # unreviewed, it is not imported
    assert b.verdict(
        "103746007", [{"code": "Z86.16", "description": "COVID-19"}], icd, {}
    ).startswith("not reviewed")
    # 125601008 -> S89.90X, no 7th character: not a code of the release
    assert b.verdict("125601008", [{"code": "S89.90X", "description": "x"}], icd, {}).startswith(
        "not a code of ICD-10-CM"
    )
    assert b.verdict("1", [{"code": "S89.90", "description": "x"}], icd, {}).startswith(
        "not a complete ICD-10-CM code"
    )
    # ICD-10-PCS procedure codes (Synthea maps procedures too)
    for pcs in ("4A1ZXQZ", "D0Y77ZZ", "BH30ZZZ", "0SRC0"):
        assert b.verdict("2", [{"code": pcs, "description": "x"}], icd, {}).startswith(
            "not an ICD-10-CM diagnosis code"
        ), pcs
    review = {
        "103746007": {
            "icd10": "Z86.16",
            "decision": "keep",
            "reason": "r",
            "snomed_display": "d",
            "source": "s",
        }
    }
    assert (
        b.verdict("103746007", [{"code": "Z86.16", "description": "COVID-19"}], icd, review)[0]
        == "Z86.16"
    )
