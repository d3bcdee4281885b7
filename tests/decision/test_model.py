"""The decision's data classes (fhir_injection/decision/model.py), built as ``dataclasses`` would build them.

``quick_init`` replaces the dataclass ``__init__`` of Gap, Coding, Line and Decision. It runs when those
classes are defined (at import), so the tests apply it here to classes made inside each test and check
that it gives what ``dataclasses`` would: positional and keyword arguments, defaults, a fresh default
from each factory, a TypeError for a missing argument, and an equal, frozen instance.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from fhir_injection import Decision, Gap, Line
from fhir_injection.decision.model import Coding, quick_init


def _twins():
    """The same class twice: once with quick_init's __init__, once with the dataclass's."""

    def make():
        @dataclass(frozen=True)
        class Sample:
            a: int
            b: str = "x"
            c: list = field(default_factory=list)
            d: dict = field(default_factory=dict, compare=False)

        return Sample

    return quick_init(make()), make()


@pytest.mark.parametrize(
    "args,kwargs",
    [
        ((1,), {}),
        ((1, "y"), {}),
        ((1, "y", [2], {"k": 1}), {}),
        ((), {"a": 1, "c": [3]}),
        ((2,), {"d": {"z": 0}, "b": "q"}),
    ],
)
def test_quick_init_takes_the_arguments_the_dataclass_init_takes(args, kwargs):
    quick, plain = _twins()
    q, p = quick(*args, **kwargs), plain(*args, **kwargs)
    assert dataclasses.asdict(q) == dataclasses.asdict(p)
    assert (q.a, q.b, q.c, q.d) == (p.a, p.b, p.c, p.d)


def test_quick_init_calls_each_factory_for_each_instance():
    quick, _ = _twins()
    first, second = quick(1), quick(1)
    assert first.c == [] and first.d == {}
    assert first.c is not second.c and first.d is not second.d
    assert first == second


def test_quick_init_needs_the_fields_without_defaults():
    quick, _ = _twins()
    with pytest.raises(TypeError):
        quick()
    with pytest.raises(TypeError):
        quick(1, "y", [], {}, "one too many")


def test_quick_init_keeps_the_instance_frozen_and_names_its_init():
    quick, _ = _twins()
    sample = quick(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample.a = 2
    assert quick.__init__.__qualname__ == f"{quick.__qualname__}.__init__"


def test_a_gap_as_a_dict_names_every_part():
    message, where, rule = (
        "No dosage.site. The site is not coded.",
        "MedicationAdministration.dosage.site",
        "Payers",
    )
    g = Gap("missing-site", "warning", message, where, rule)
    assert g.as_dict() == {
        "code": "missing-site",
        "severity": "warning",
        "message": message,
        "field": where,
        "rule": rule,
    }


def test_a_coding_leaves_out_what_it_does_not_have():
    assert Coding("http://snomed.info/sct", "7771000", "Left").as_fhir() == {
        "system": "http://snomed.info/sct",
        "code": "7771000",
        "display": "Left",
    }
    assert Coding(None, "LD").as_fhir() == {"code": "LD"}
    assert Coding("http://x", None, "").as_fhir() == {"system": "http://x"}


def test_a_line_is_priced_only_with_a_price_and_a_quantity():
    assert Line("drug", "s", "J1885", None, quantity=2, unit_price=Decimal("0.30")).net == Decimal(
        "0.60"
    )
    assert Line("drug", "s", "J1885", None, quantity=None, unit_price=Decimal("0.30")).net is None
    assert Line("drug", "s", "J1885", None, quantity=2).net is None
    assert (
        Line("administration", "s", "96372", None).quantity == 1
    )  # one service unless told otherwise


def test_a_decision_sums_its_priced_lines_and_lists_its_actionable_gaps():
    lines = (
        Line("administration", "s", "96372", None, unit_price=Decimal("15.36")),
        Line("drug", "s", "J1885", None, quantity=2, unit_price=Decimal("0.30")),
        Line("drug", "s", "J3490", None),
    )
    gaps = (
        Gap("vaccine", "info", "m", "f", "r"),
        Gap("missing-site", "warning", "m", "f", "r"),
        Gap("missing-dose", "error", "m", "f", "r"),
    )
    d = Decision("MedicationAdministration/ma-7", None, "claim", "96372", gaps=gaps, lines=lines)
    assert d.estimated_amount == Decimal("15.96")
    assert [g.code for g in d.actionable_gaps] == ["missing-site", "missing-dose"]
    assert d.administration_id == "ma-7"
    assert Decision("MedicationAdministration/ma-7", None, "void", None).estimated_amount == 0
