"""The Python API page's examples run as written, and the counts the page quotes are what they give.

The page (docs/python-api.md) is what an integration engineer copies; an example that no longer runs,
or a count that drifted after the demo changed, is a documentation bug.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "python-api.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)


def _run(code: str, cwd: Path) -> dict:
    namespace: dict = {}
    here = os.getcwd()
    os.chdir(cwd)
    try:
        exec(compile(code, str(PAGE), "exec"), namespace)
    finally:
        os.chdir(here)
    return namespace


def test_the_page_has_the_two_examples():
    blocks = _blocks()
    assert any("decide_bundle(" in b for b in blocks)
    assert any("run_folder(" in b for b in blocks)


def test_demo_in_memory_gives_the_counts_the_page_quotes():
    text = PAGE.read_text(encoding="utf-8")
    quoted = re.search(r"\((\d+)\s+administrations:\s*(.*?)\)", text, re.S)
    assert quoted, "the page quotes the demo's outcome counts"
    expected = {k: int(n) for n, k in re.findall(r"(\d+) `([a-z0-9-]+)`", quoted.group(2))}
    code = next(b for b in _blocks() if "decide_bundle(" in b and "fixtures/demo" in b)
    code = code.replace("for d in decide_bundle(", "decisions = []\nfor d in decide_bundle(", 1)
    code = code.replace(
        "    claim = build_claim(", "    decisions.append(d)\n    claim = build_claim(", 1
    )
    ns = _run(code, ROOT)
    outcomes = Counter(d.outcome for d in ns["decisions"])
    assert sum(outcomes.values()) == int(quoted.group(1))
    assert {k: outcomes.get(k, 0) for k in expected} == expected
    assert sum(expected.values()) == int(quoted.group(1)), "every outcome the demo has is quoted"


def test_offline_example_writes_the_folder(tmp_path):
    code = next(b for b in _blocks() if "run_folder(" in b)
    code = code.replace(
        'run_folder("fixtures/demo", "out"',
        f'run_folder("{ROOT / "fixtures" / "demo"}", "{tmp_path / "out"}"',
    )
    code = code.replace('load_config("fixtures/', f'load_config("{ROOT}/fixtures/')
    ns = _run(code, tmp_path)
    result = ns["result"]
    assert result.exit_code in (0, 1)
    for name in ("Claim.ndjson", "Task.ndjson", "report.json", "report.html", "worklist.csv"):
        assert (tmp_path / "out" / name).is_file(), name
    assert sum(result.summary["outcomes"].values()) == 454
