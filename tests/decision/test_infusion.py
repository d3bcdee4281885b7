"""fhir_injection/decision/infusion.py: each helper of the IV decision at its edges, with the figures
CPT and mappings/ give.

The behaviour tests are in tests/coding/tests/coding/test_infusions.py (whole administrations through the engine); these
call the helpers directly so a changed boundary, unit or message shows up on its own.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from fhir_injection import load_rules
from fhir_injection.decision import infusion as iv
from fhir_injection.decision.medication import Medication

RULES = load_rules()
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
V2_METHOD = "http://terminology.hl7.org/CodeSystem/v2-0165"
INFUSE_OVER = "https://fhir-ehr.cerner.com/r4/StructureDefinition/infuse-over-time"
SALINE = {"system": RXNORM, "code": "313002"}
KCL = {"system": RXNORM, "code": "204520"}


def qty(value, unit) -> dict:
    return {"value": value, "unit": unit}


def med(*codings, text=None, found=True, drug=None, vaccine=None) -> Medication:
    m = Medication()
    m.found, m.codings, m.text, m.drug, m.vaccine = found, list(codings), text, drug, vaccine
    return m


# ----------------------------------------------------------------------- add-on hours (96366 etc.)


@pytest.mark.parametrize(
    "minutes,hours",
    [
        (0, 0),
        (59, 0),
        (60, 0),
        (61, 0),
        (90, 0),
        (91, 1),
        (120, 1),
        (150, 1),
        (151, 2),
        (180, 2),
        (211, 3),
    ],
)
def test_add_on_hours_count_each_hour_past_the_first_and_a_part_over_30_minutes(minutes, hours):
    assert iv.additional_hours(minutes, 30) == hours


def test_add_on_hours_use_the_table_threshold_not_a_fixed_30():
    assert iv.additional_hours(75, 10) == 1  # 15 minutes past the hour > 10
    assert iv.additional_hours(70, 10) == 0  # exactly 10 is not more than 10


# ----------------------------------------------------------------------------- time quantities


@pytest.mark.parametrize(
    "quantity,minutes",
    [
        (qty(30, "min"), Decimal(30)),
        (qty(2, "h"), Decimal(120)),
        (qty(90, "s"), Decimal("1.5")),
        (qty(1, " Hours "), Decimal(60)),
        (qty(0, "min"), Decimal(0)),
        (qty(3, "hrs"), Decimal(180)),
    ],
)
def test_time_quantities_in_minutes(quantity, minutes):
    assert iv._time_minutes(quantity) == minutes


@pytest.mark.parametrize(
    "quantity", [qty(-5, "min"), qty(1, "d"), qty(1, "wk"), None, {"unit": "min"}]
)
def test_a_negative_unknown_or_empty_time_is_no_time(quantity):
    assert iv._time_minutes(quantity) is None


@pytest.mark.parametrize(
    "quantity,ml",
    [(qty(250, "mL"), Decimal(250)), (qty(1, "L"), Decimal(1000)), (qty(1, "ml"), Decimal(1))],
)
def test_volumes_in_millilitres(quantity, ml):
    assert iv._volume_ml(quantity) == ml


@pytest.mark.parametrize(
    "quantity", [qty(500, "mg"), qty(0, "mL"), qty(-1, "mL"), None, qty(5, "min")]
)
def test_a_mass_a_zero_or_no_volume_is_no_volume(quantity):
    assert iv._volume_ml(quantity) is None


# ----------------------------------------------------------------------------- rates


@pytest.mark.parametrize(
    "dosage,rate",
    [
        ({"rateQuantity": qty(120, "mL/h")}, Decimal(2)),
        ({"rateQuantity": qty(5, "mL/min")}, Decimal(5)),
        ({"rateQuantity": qty(60, " mL / hr ")}, Decimal(1)),
        ({"rateQuantity": qty(2, "L/h")}, Decimal(2000) / 60),
        (
            {"rateRatio": {"numerator": qty(100, "mL"), "denominator": qty(1, "h")}},
            Decimal(100) / 60,
        ),
        ({"rateRatio": {"numerator": qty(50, "mL"), "denominator": qty(10, "min")}}, Decimal(5)),
    ],
)
def test_volume_rates_in_millilitres_per_minute(dosage, rate):
    assert iv._rate_ml_per_min(dosage) == rate


@pytest.mark.parametrize(
    "dosage",
    [
        {"rateQuantity": qty(10, "mg/h")},
        {"rateQuantity": qty(10, "mL/d")},
        {"rateQuantity": qty(0, "mL/h")},
        {"rateQuantity": qty(10, "mL")},
        {"rateQuantity": qty(10, "xx/h")},
        {},
        {"rateRatio": {"numerator": qty(10, "mg"), "denominator": qty(1, "h")}},
        {"rateRatio": {"numerator": qty(10, "mL"), "denominator": qty(1, "d")}},
        {"rateRatio": {"numerator": qty(10, "mL"), "denominator": qty(0, "h")}},
        # a rateRatio is read first: a rateQuantity beside a useless ratio is not used
        {"rateRatio": {"numerator": qty(10, "mg")}, "rateQuantity": qty(60, "mL/h")},
    ],
)
def test_anything_but_a_volume_over_a_time_is_no_rate(dosage):
    assert iv._rate_ml_per_min(dosage) is None


# ----------------------------------------------------------------------------- duration


def period(start: str, end: str) -> dict:
    return {"effectivePeriod": {"start": start, "end": end}}


@pytest.mark.parametrize(
    "end,minutes",
    [
        ("09:15:00", 15),
        ("09:15:29", 15),
        ("09:15:31", 16),
        ("09:00:30", 0),
        ("09:01:30", 2),
        ("09:02:30", 2),
        ("10:00:00", 60),
    ],
)
def test_the_period_gives_whole_minutes_rounded_half_to_even(end, minutes):
    admin = period("2026-10-05T09:00:00-05:00", f"2026-10-05T{end}-05:00")
    assert iv.duration_minutes(admin, {}, RULES) == (minutes, "effectivePeriod")


def test_a_period_with_one_zoned_end_is_read_as_clock_time():
    admin = period("2026-10-05T09:00:00", "2026-10-05T09:40:00-05:00")
    assert iv.duration_minutes(admin, {}, RULES) == (40, "effectivePeriod")


def test_a_period_that_ends_before_it_starts_falls_back_to_the_next_source():
    admin = period("2026-10-05T10:00:00-05:00", "2026-10-05T09:00:00-05:00")
    dosage = {"dose": qty(250, "mL"), "rateQuantity": qty(500, "mL/h")}
    assert iv.duration_minutes(admin, dosage, RULES) == (30, "volume / rate")


def test_a_period_without_an_end_or_only_a_date_gives_no_duration_from_it():
    assert iv.duration_minutes(
        {"effectivePeriod": {"start": "2026-10-05T09:00:00Z"}}, {}, RULES
    ) == (None, "")
    assert iv.duration_minutes(period("2026-10-05", "2026-10-05"), {}, RULES) == (None, "")


def test_the_infuse_over_time_extension_gives_the_duration_after_the_period():
    ext = {"url": INFUSE_OVER, "valueQuantity": qty(45, "min")}
    assert iv.duration_minutes({"extension": [ext]}, {}, RULES) == (45, "infuse-over-time")
    dur = {"url": INFUSE_OVER, "valueDuration": qty(1, "h")}
    assert iv.duration_minutes({"extension": ["junk", dur]}, {}, RULES) == (60, "infuse-over-time")
    with_period = {"extension": [ext], **period("2026-10-05T09:00:00Z", "2026-10-05T09:20:00Z")}
    assert iv.duration_minutes(with_period, {}, RULES) == (20, "effectivePeriod")


def test_an_unlisted_extension_or_one_without_a_time_is_ignored():
    other = {"url": "http://example.org/other", "valueQuantity": qty(45, "min")}
    no_time = {"url": INFUSE_OVER, "valueQuantity": qty(45, "mg")}
    dosage = {"dose": qty(100, "mL"), "rateQuantity": qty(200, "mL/h")}
    assert iv.duration_minutes({"extension": [other, no_time]}, dosage, RULES) == (
        30,
        "volume / rate",
    )


def test_volume_over_rate_needs_both():
    assert iv.duration_minutes({}, {"dose": qty(100, "mL")}, RULES) == (None, "")
    assert iv.duration_minutes({}, {"rateQuantity": qty(100, "mL/h")}, RULES) == (None, "")
    assert iv.duration_minutes(
        {}, {"dose": qty(100, "mL"), "rateQuantity": qty(100, "mL/h")}, RULES
    ) == (60, "volume / rate")


# ----------------------------------------------------------------------------- push or infusion without time


@pytest.mark.parametrize(
    "dosage,route,found",
    [
        (
            {"method": {"coding": [{"system": V2_METHOD, "code": "IVP"}]}},
            "intravenous-infusion",
            ("push", "dosage.method code"),
        ),
        (
            {"method": {"coding": [{"system": V2_METHOD, "code": "IVPB"}]}},
            "intravenous-push",
            ("infusion", "dosage.method code"),
        ),
        (
            {
                "method": {
                    "coding": [{"system": V2_METHOD, "code": "XX"}],
                    "text": "  IV   Piggyback ",
                }
            },
            "intravenous",
            ("infusion", "dosage.method text"),
        ),
        (
            {"method": {"text": "Push"}, "rateQuantity": qty(1, "mL/h")},
            "intravenous",
            ("push", "dosage.method text"),
        ),
        (
            {"method": {"text": "whatever"}, "rateQuantity": qty(1, "mL/h")},
            "intravenous",
            ("infusion", "dosage.rate"),
        ),
        ({"rateRatio": {}}, "intravenous-push", ("infusion", "dosage.rate")),
        ({"route": {"text": "IV Push"}}, "intravenous-infusion", ("push", "dosage.route text")),
        (
            {"route": {"text": "IV piggyback"}},
            "intravenous-push",
            ("infusion", "dosage.route text"),
        ),
        (
            {"route": {"text": "Intramuscular"}},
            "intravenous-infusion",
            ("infusion", "the route code"),
        ),
        ({}, "intravenous-infusion", ("infusion", "the route code")),
        ({}, "intravenous-push", ("push", "the route code")),
        ({}, "intravenous", ("push", "no rate, duration or method")),
    ],
)
def test_without_a_duration_method_rate_route_text_and_route_code_decide_in_that_order(
    dosage, route, found
):
    assert iv._technique_without_time(dosage, route, RULES) == found


# ----------------------------------------------------------------------------- hydration fluid


@pytest.mark.parametrize(
    "medication,hydration",
    [
        (med(SALINE), True),
        (med(SALINE, KCL), True),
        (med(SALINE, {"system": RXNORM, "code": "2193"}), False),
        # codes of other systems are ignored, then the name decides
        (med({"system": "http://example.org", "code": "NS"}, text="Normal saline"), True),
        (med(text="Sodium chloride 0.9% with KCl 20 mEq"), True),
        (med(text="D5 1/2 NS + potassium chloride"), True),
        (med(text="Ceftriaxone in sodium chloride"), False),
        (med(text="dextrose 50%"), False),
        (med(), False),
        (med(SALINE, found=False), False),
        (med(text="saline", found=False), False),
    ],
)
def test_hydration_fluid_is_listed_codes_or_every_part_of_the_name(medication, hydration):
    assert iv.is_hydration(medication, RULES) is hydration


def test_a_mapped_drug_or_vaccine_is_never_hydration():
    drug = next(iter(RULES.drugs.values()))
    assert iv.is_hydration(med(SALINE, drug=drug), RULES) is False
    assert iv.is_hydration(med(SALINE, vaccine=object()), RULES) is False


# ----------------------------------------------------------------------------- the service


def drug_of(drug_class: str):
    return next(d for d in RULES.drugs.values() if d.drug_class == drug_class)


@pytest.mark.parametrize(
    "minutes,medication,expected",
    [
        (
            15,
            med(text="ceftriaxone"),
            ("push", "therapeutic", 15, "96374", 0, "15 min by effectivePeriod"),
        ),
        (
            16,
            med(text="ceftriaxone"),
            ("infusion", "therapeutic", 16, "96365", 0, "16 min by effectivePeriod"),
        ),
        (
            91,
            med(text="ceftriaxone"),
            ("infusion", "therapeutic", 91, "96365", 1, "91 min by effectivePeriod"),
        ),
        (30, med(SALINE), ("infusion", "hydration", 30, None, 0, "30 min by effectivePeriod")),
        (31, med(SALINE), ("infusion", "hydration", 31, "96360", 0, "31 min by effectivePeriod")),
        (
            151,
            med(SALINE),
            ("infusion", "hydration", 151, "96360", 2, "151 min by effectivePeriod"),
        ),
    ],
)
def test_the_iv_service_by_the_clock(minutes, medication, expected):
    h, m = divmod(minutes, 60)
    admin = period("2026-10-05T08:00:00Z", f"2026-10-05T{8 + h:02d}:{m:02d}:00Z")
    s = iv.iv_service(admin, {}, "intravenous", medication, RULES)
    assert (
        s.technique,
        s.kind,
        s.minutes,
        s.row and s.row.code,
        s.addon_units,
        s.basis,
    ) == expected


@pytest.mark.parametrize("drug_class", ["antineoplastic", "antineoplastic-hormonal"])
def test_an_antineoplastic_is_chemotherapy_push_or_infusion(drug_class):
    m = med(text="x", drug=drug_of(drug_class))
    push = iv.iv_service(
        period("2026-10-05T08:00:00Z", "2026-10-05T08:10:00Z"), {}, "intravenous", m, RULES
    )
    assert (push.kind, push.technique, push.row.code) == ("chemotherapy", "push", "96409")
    long = iv.iv_service(
        period("2026-10-05T08:00:00Z", "2026-10-05T09:31:00Z"), {}, "intravenous", m, RULES
    )
    assert (long.row.code, long.addon_units) == ("96413", 1)


def test_without_a_duration_the_service_has_no_minutes_no_add_on_and_the_basis_says_why():
    s = iv.iv_service({}, {"rateQuantity": qty(100, "mL/h")}, "intravenous", med(text="x"), RULES)
    assert (s.technique, s.minutes, s.row.code, s.addon_units, s.basis) == (
        "infusion",
        None,
        "96365",
        0,
        "dosage.rate",
    )


def test_hydration_without_a_duration_is_coded_without_the_31_minute_check():
    s = iv.iv_service({}, {"rateQuantity": qty(100, "mL/h")}, "intravenous", med(SALINE), RULES)
    assert (s.kind, s.row.code, s.addon_units) == ("hydration", "96360", 0)


def test_a_hydration_push_has_no_code():
    s = iv.iv_service(
        period("2026-10-05T08:00:00Z", "2026-10-05T08:05:00Z"),
        {},
        "intravenous",
        med(SALINE),
        RULES,
    )
    assert (s.kind, s.technique, s.row) == ("hydration", "push", None)


def test_the_smallest_rate_and_an_hour_and_a_minute_with_no_threshold():
    assert iv._rate_ml_per_min({"rateQuantity": qty(1, "mL/min")}) == Decimal(1)
    assert iv._rate_ml_per_min({"rateQuantity": qty("0.5", "mL/min")}) == Decimal("0.5")
    assert (
        iv.additional_hours(61, 0) == 1
    )  # one minute past the hour counts when the threshold is 0


def test_a_period_of_no_time_is_zero_minutes_from_the_period():
    assert iv.duration_minutes(
        period("2026-10-05T09:00:00Z", "2026-10-05T09:00:00Z"), {}, RULES
    ) == (0, "effectivePeriod")
