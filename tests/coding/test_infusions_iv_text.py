"""``dosage.text`` that gives an IV push's own time (mappings/iv_text.csv).

The FHIR R4 example medicationadministration0307 gives lorazepam "0.05 - 0.1mg/kg IV over 2-5
minutes every 15 minutes as needed" with method 'Push' (SNOMED CT 420620005), a rateQuantity of
"4 min" and an effectivePeriod from 04:30 to 14:30: the period is the shift the order ran in, not
the push. CPT: a push is an injection, or an infusion of 15 minutes or less (96374). The text's
time outweighs the period when it says push; otherwise the period keeps deciding.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fhir_injection import MappingError, load_rules
from fhir_injection.decision.infusion import text_says
from tests.builders import (
    RXNORM,
    SNOMED,
    UCUM,
    admin,
    decide_one,
    dosage,
    dose,
    gap,
    refused_row,
    route,
)

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
LORAZEPAM = {
    "coding": [
        {"system": RXNORM, "code": "238100", "display": "lorazepam 2 MG/ML Injectable Solution"}
    ]
}
IV_QUALIFIER = route(SNOMED, "255560000")  # "Intravenous", as 0307 codes it
PUSH_METHOD = {
    "coding": [
        {
            "system": SNOMED,
            "code": "420620005",
            "display": "Push - dosing instruction imperative (qualifier value)",
        }
    ]
}
SHIFT = {"start": "2026-10-05T04:30:00-05:00", "end": "2026-10-05T14:30:00-05:00"}  # 10 hours


def spec_0307(
    text: str | None = "0.05 - 0.1mg/kg IV over 2-5 minutes every 15 minutes as needed",
    period: dict | None = SHIFT,
    **dosage_changes,
) -> dict:
    """The lorazepam administration shaped like FHIR R4 medicationadministration0307."""
    changes = {
        "route": IV_QUALIFIER,
        "method": PUSH_METHOD,
        "dose": dose(7, "mg"),
        "rateQuantity": {"value": 4, "unit": "min", "system": UCUM, "code": "min"},
        "site": None,
        **dosage_changes,
    }
    if text is not None:
        changes["text"] = text
    a = admin(medicationCodeableConcept=LORAZEPAM, dosage=dosage(**changes))
    if period is not None:
        a.pop("effectiveDateTime")
        a["effectivePeriod"] = period
    return a


def test_the_spec_lorazepam_push_is_a_push_not_ten_hours_of_infusion():
    d = decide_one(spec_0307())
    assert (d.outcome, d.procedure, tuple(d.additional)) == ("not-96372", "96374", ())
    assert d.drug == "J2060" and d.units == 4  # 7 mg / 2 mg, rounded up
    message = gap(d, "route-not-sc-im").message
    assert "over 2-5 minutes" in message and "600 min" in message


def test_without_the_text_the_shift_long_period_still_decides():
    # what the record says without the push's own time: 10 hours by effectivePeriod
    d = decide_one(spec_0307(text=None))
    assert d.procedure == "96365" and dict(d.additional) == {"96366": 9}


@pytest.mark.parametrize(
    "text,minutes",
    [
        ("IV push over 3 min", 3),
        ("lorazepam 2 mg IV over 2\u20135 minutes", 5),  # an en dash, as typed in notes
        ("give over 2 to 4 minutes", 4),
        ("ondansetron 4 mg slow IV push", None),
        ("Slow Intravenous Push", None),
    ],
)
def test_a_text_that_says_push_outweighs_a_long_period(text, minutes):
    d = decide_one(spec_0307(text=text, method=None))
    assert d.procedure == "96374" and tuple(d.additional) == ()
    said = text_says({"text": text}, load_rules(), 15)
    assert said is not None and said[0] == "push" and said[1] == minutes


@pytest.mark.parametrize(
    "text",
    [
        "IV every 15 minutes as needed",  # a frequency, not a duration
        "push the button over 2 doses",  # "over" a count, not a time
        "IV over 10-20 minutes",  # a range across the 15-minute line says neither
        "pushover",  # no whole word
    ],
)
def test_a_text_that_does_not_give_the_time_says_nothing(text):
    assert text_says({"text": text}, load_rules(), 15) is None
    d = decide_one(spec_0307(text=text, method=None, rateQuantity=None))
    assert d.procedure == "96365"  # the period's 10 hours stand


def test_a_text_duration_is_read_when_nothing_else_gives_one():
    d = decide_one(
        spec_0307(
            text="ceftriaxone 1 g IV over 30 minutes", period=None, method=None, rateQuantity=None
        )
    )
    assert d.procedure == "96365"
    assert "dosage.text 'over 30 minutes'" in gap(d, "route-not-sc-im").message


def test_a_documented_short_period_is_not_overruled_by_a_longer_text_time():
    # the charted start and stop say 10 minutes: a push, whatever the order's "over 30 minutes"
    period = {"start": "2026-10-05T09:30:00-05:00", "end": "2026-10-05T09:40:00-05:00"}
    d = decide_one(
        spec_0307(text="IV over 30 minutes", period=period, method=None, rateQuantity=None)
    )
    assert d.procedure == "96374"


def test_an_infusion_method_keeps_winning_over_a_push_text():
    d = decide_one(spec_0307(text="slow IV push", method={"text": "IV piggyback"}))
    assert d.procedure == "96365"


def test_the_table_refuses_a_duration_phrase_without_its_placeholder(tmp_path):
    err, row = refused_row(tmp_path, "iv_text.csv", "duration,over {duration},", "duration,over,")
    assert (
        row == 2 and str(err).startswith("iv_text.csv, row 2:") and "'{duration}' once" in str(err)
    )


def test_the_table_refuses_an_example_that_does_not_hold_its_phrase(tmp_path):
    folder = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, folder)
    path = folder / "iv_text.csv"
    text = path.read_text(encoding="utf-8").replace(
        '"lorazepam 2 mg slow IV push"', '"lorazepam 2 mg"'
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError, match=r"iv_text.csv, row 3: the example"):
        load_rules(folder)
