"""fastjson writes exactly what json.dumps writes, byte for byte, and fails where it fails."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_injection import fastjson

SCALARS = (st.none() | st.booleans() | st.text(max_size=12)
           | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from([1e-05, 5e-05, 0.0001, 1e-07, 1e16, 1e22, 1.5e300, 5e-324, -0.0, 12.34, 0.1]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_dumps_writes_what_json_writes(value):
    assert fastjson.dumps(value) == json.dumps(value, separators=(",", ":"))


def test_floats_finite_lets_null_through_only_when_told():
    assert fastjson.dumps({"a": None, "b": float("nan")}) == '{"a":null,"b":NaN}'
    assert fastjson.dumps({"a": None, "b": 1.5}, floats_finite=True) == '{"a":null,"b":1.5}'


@pytest.mark.parametrize("value", [
    {"a": 1e-05}, [5e-05, 1e-07], {"x": "caf\u00e9", "y": "\x7f"}, [2**64], [-(2**63) - 1], {"n": float("inf")},
    {"n": float("nan")}, [None, -float("inf")], {"t": (1, 2)}, {"s": "\ud800"}, "10.00001", [1e16, 1e22, -0.0],
])
def test_what_orjson_writes_otherwise_is_written_by_json(value):
    assert fastjson.dumps(value) == json.dumps(value, separators=(",", ":"))


def test_unknown_types_fail_as_in_json():
    from decimal import Decimal
    with pytest.raises(TypeError):
        fastjson.dumps({"a": Decimal(1)})


def test_report_entries_hold_one_float():
    """ReportWriter passes floats_finite=True after checking estimated_usd: no other float may appear."""
    from fhir_injection import decide
    from fhir_injection.context import Context
    from fhir_injection.report import decision_entry
    from fhir_injection.rules import load_rules
    from builders import admin, world

    def floats(value, path=""):
        if isinstance(value, float):
            yield path
        elif isinstance(value, dict):
            for k, v in value.items():
                yield from floats(v, f"{path}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                yield from floats(v, f"{path}[{i}]")

    rules = load_rules()
    for a in (admin(), admin(id="x", status="not-done"), admin(id="y", dosage=None)):
        entry = decision_entry(decide(a, Context(world()), rules), "Claim/c", "Task/t")
        assert list(floats(entry)) == [".estimated_usd"]
