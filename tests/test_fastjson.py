"""fastjson writes exactly what json.dumps writes, byte for byte, and fails where it fails."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_injection import fastjson

SCALARS = (
    st.none()
    | st.booleans()
    | st.text(max_size=12)
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([1e-05, 5e-05, 0.0001, 1e-07, 1e16, 1e22, 1.5e300, 5e-324, -0.0, 12.34, 0.1])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_dumps_writes_what_json_writes(value):
    assert fastjson.dumps(value) == json.dumps(value, separators=(",", ":"))


def test_floats_finite_lets_null_through_only_when_told():
    assert fastjson.dumps({"a": None, "b": float("nan")}) == '{"a":null,"b":NaN}'
    assert fastjson.dumps({"a": None, "b": 1.5}, floats_finite=True) == '{"a":null,"b":1.5}'


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1e-05},
        [5e-05, 1e-07],
        {"x": "caf\u00e9", "y": "\x7f"},
        [2**64],
        [-(2**63) - 1],
        {"n": float("inf")},
        {"n": float("nan")},
        [None, -float("inf")],
        {"t": (1, 2)},
        {"s": "\ud800"},
        "10.00001",
        [1e16, 1e22, -0.0],
    ],
)
def test_what_orjson_writes_otherwise_is_written_by_json(value):
    assert fastjson.dumps(value) == json.dumps(value, separators=(",", ":"))


def test_unknown_types_fail_as_in_json():
    from decimal import Decimal

    with pytest.raises(TypeError):
        fastjson.dumps({"a": Decimal(1)})


def test_report_entries_hold_one_float():
    """ReportWriter passes floats_finite=True after checking estimated_usd: no other float may appear."""
    from fhir_injection import decide
    from fhir_injection.decision.context import Context
    from fhir_injection.rules import load_rules
    from fhir_injection.sinks.report import decision_entry
    from tests.builders import admin, world

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


# ----------------------------------------------------------------------------- reading


def same(a, b) -> bool:
    """Equal with the same types all the way down (1 is not 1.0; NaN is NaN; key order counts)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (a != a and b != b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def read_as_before(raw: bytes):
    """What _read_ndjson did before read_line: decode, then json.loads (None: refused)."""
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return None


def check_line(raw: bytes) -> None:
    value, shallow = fastjson.read_line(raw)
    assert shallow == (raw.count(b"[") + raw.count(b"{") < fastjson.DEEP)
    if value is not fastjson.SLOW:
        assert same(value, read_as_before(raw)), raw


NUMBERS = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False),
    st.from_regex(r"-?(0|[1-9][0-9]{0,22})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
)


@settings(max_examples=500, deadline=None)
@given(VALUES, st.sampled_from(["", "\n", "\r\n", " ", "\t"]))
def test_read_line_reads_what_json_reads(value, end):
    check_line(
        json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass") + end.encode()
    )
    check_line(json.dumps(value).encode() + end.encode())


@settings(max_examples=500, deadline=None)
@given(NUMBERS)
def test_read_line_reads_numbers_as_json_does(number):
    text = number if isinstance(number, str) else json.dumps(number)
    check_line(f'{{"value":{text}}}'.encode())


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40), st.integers(min_value=0, max_value=60))
def test_read_line_on_damaged_lines(junk, at):
    base = b'{"resourceType":"Patient","id":"p1","n":[1,2.5,"x"],"b":true,"z":null}'
    check_line(base[:at] + junk + base[at:])


@pytest.mark.parametrize(
    "raw",
    [
        b"123456789012345678901234567890",
        b'{"a":18446744073709551616}',
        b'{"a":-9223372036854775809}',
        b"NaN",
        b"[Infinity]",
        b"1e999",
        b'["\\ud800"]',
        b'"\xed\xa0\x80"',
        b"\xef\xbb\xbf{}",
        b"{}\x00",
        b"\x0c{}",
        b"01",
        b"[1,]",
        b'{"a":"x\x01"}',
        b"",
        b"[" * 300 + b"]" * 300,
        b'{"a":1,"a":2}',
        b"\xff",
        b'"\\uDFFF"',
        b"0.1234567890123456789",
        b"2.2250738585072011e-308",
        b"1e-400",
    ],
)
def test_read_line_leaves_to_json_what_orjson_reads_otherwise(raw):
    check_line(raw)
