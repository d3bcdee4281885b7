"""fixtures/README.md says what the committed demo holds, and cannot drift from it.

The scenario table is written by fixtures/generate_demo.py from demo-expected.json; the resource
table is written by hand. Both are checked against demo-expected.json, which the demo tests check
against the fixtures themselves.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "fixtures" / "README.md"
EXPECTED = json.loads((ROOT / "fixtures" / "demo-expected.json").read_text(encoding="utf-8"))


def _generator():
    spec = importlib.util.spec_from_file_location(
        "generate_demo", ROOT / "fixtures" / "generate_demo.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("generate_demo", module)  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_the_scenario_table_is_the_one_the_generator_writes_from_the_expected_outcomes():
    text = README.read_text(encoding="utf-8")
    assert _generator().scenario_table(EXPECTED) in text


def test_every_administration_is_counted_once_in_the_table():
    text = README.read_text(encoding="utf-8")
    block = text[text.index("<!-- scenarios: written") : text.index("<!-- scenarios: end -->")]
    rows = [
        line.split(" | ")
        for line in block.splitlines()
        if line.startswith("| ") and "---" not in line
    ]
    counted = sum(int(cells[4]) for cells in rows[1:])
    assert counted == len(EXPECTED["administrations"]) == sum(EXPECTED["counts"].values())
    total = re.search(r"Totals by outcome: (.*) \((\d+) in all\)\.", block)
    assert int(total.group(2)) == counted
    assert dict(part.rsplit(" ", 1) for part in total.group(1).split(", ")) == {
        k: str(v) for k, v in EXPECTED["counts"].items()
    }


def test_the_resource_table_gives_the_committed_counts():
    text = README.read_text(encoding="utf-8")
    counts = EXPECTED["resource_counts"]
    for resource_type, n in counts.items():
        if resource_type in ("Practitioner", "PractitionerRole"):
            continue
        found = re.search(rf"^\| {resource_type} \| (\d+) \|", text, re.M)
        assert found is not None and int(found.group(1)) == n, resource_type
    both = re.search(r"^\| Practitioner / PractitionerRole \| (\d+) / (\d+) \|", text, re.M)
    assert (int(both.group(1)), int(both.group(2))) == (
        counts["Practitioner"],
        counts["PractitionerRole"],
    )


def test_a_stale_table_is_replaced_by_the_generator(tmp_path):
    generator = _generator()
    readme = tmp_path / "README.md"
    readme.write_text(
        f"before\n{generator.README_BEGIN}\n| old | table |\n{generator.README_END}\nafter\n",
        encoding="utf-8",
    )
    generator.write_readme_table(readme, EXPECTED)
    text = readme.read_text(encoding="utf-8")
    assert "| old | table |" not in text
    assert text.startswith("before\n") and text.endswith("\nafter\n")
    assert generator.scenario_table(EXPECTED) in text
