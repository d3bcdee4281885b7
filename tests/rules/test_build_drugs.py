"""The generator of mappings/drugs.csv and drug_codes.csv (mappings/build/build_drugs.py):
billing units parsed from the CMS descriptors, and the committed tables are what it builds.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _builder():
    spec = importlib.util.spec_from_file_location(
        "build_drugs", ROOT / "mappings/build/build_drugs.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "descriptor,expected",
    [
        ("Injection, ceftriaxone sodium, per 250 mg", ("parsed", "250", "mg")),
        ("Injection, methylprednisolone sodium succinate, up to 125 mg", ("parsed", "125", "mg")),
        ("Injection, epoetin alfa, (for non-esrd use), 1000 units", ("parsed", "1000", "unit")),
        (
            "Injection, interferon alfa-2b, recombinant, 1 million units",
            ("parsed", "1000000", "unit"),
        ),
        ("Injection, adrenalin, epinephrine, 0.1 mg", ("parsed", "0.1", "mg")),
        ("Injection, cefotaxime sodium, per gm", ("parsed", "1", "g")),
        ("Injection, penicillin g benzathine, 100,000 units", ("parsed", "100000", "unit")),
        (
            "Injection, buprenorphine extended-release (sublocade), less than or equal to 100 mg",
            ("parsed", "100", "mg"),
        ),
        ("Injection, potassium chloride, per 2 meq", ("unparsed", None, None)),
        (
            "Injection, piperacillin sodium/tazobactam sodium, 1 gram/0.125 grams (1.125 grams)",
            ("unparsed", None, None),
        ),
        ("Injection, pegaspargase, per single dose vial", ("per-item", None, None)),
    ],
)
def test_billing_unit_parsed_from_the_descriptor(descriptor, expected):
    status, amount, unit = _builder().parse_unit(descriptor)
    assert (status, amount and _builder().fmt(amount), unit) == expected


def test_the_committed_tables_are_what_the_generator_builds(tmp_path):
    b = _builder()
    for name in ("drugs.csv", "drug_codes.csv"):
        shutil.copy(ROOT / "mappings" / name, tmp_path / name)
    assert b.main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "drugs.csv").write_text("hcpcs\n", encoding="utf-8")
    assert b.main(["--check", "--out", str(tmp_path)]) == 1
