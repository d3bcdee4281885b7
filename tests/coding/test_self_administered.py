"""Medicare self-administered drugs (Medicare Benefit Policy Manual ch. 15 s50.2).

IOM 100-02 ch.15 s50.2 and the MACs' SAD exclusion lists (CMS MCD A53020, A53033): a drug usually
self-administered is not covered under Part B, and the administration of an excluded drug is not
covered either. It is never sent as an active Part B claim: held (sad_policy "hold", the default), or
billed with GY (item or service statutorily excluded) on both lines when the practice wants the
denial on file (sad_policy "gy").
"""

from __future__ import annotations

import pytest

from fhir_injection import Config, build_claim
from fhir_injection.config import load_config
from fhir_injection.errors import ConfigError
from tests.builders import (
    CREATED,
    RXNORM,
    admin,
    decide_one,
    dosage,
    dose,
    gap,
    gap_codes,
    line,
    med,
    validate_claim,
    world,
)

ENOXAPARIN_40 = admin(
    medicationCodeableConcept=med(
        RXNORM, "854235", "0.4 ML enoxaparin sodium 100 MG/ML Prefilled Syringe"
    ),
    dosage=dosage(dose=dose(40, "mg")),
)


def test_enoxaparin_for_medicare_is_held_by_default():
    d = decide_one(ENOXAPARIN_40)
    assert d.outcome == "held" and d.claim_status == "draft"
    g = gap(d, "self-administered-drug")
    assert g.severity == "error"
    assert g.message.startswith(
        "J1650 is on the self-administered drug list: held (sad_policy hold)"
    )
    assert line(d, "drug").modifiers == ("JZ",)  # the whole 0.4 mL syringe: JZ, were it billed


def test_with_sad_policy_gy_both_lines_carry_gy_and_the_claim_goes_out_for_the_denial():
    d = decide_one(ENOXAPARIN_40, config=Config(sad_policy="gy"))
    assert d.outcome == "claim" and d.claim_status == "active"
    assert gap(d, "self-administered-drug").severity == "warning"
    assert (
        "billed with GY on both lines (sad_policy gy)" in gap(d, "self-administered-drug").message
    )
    assert (line(d, "administration").modifiers, line(d, "drug").modifiers) == (("GY",), ("GY",))
    assert line(d, "waste") is None  # no JW/JZ on a statutorily excluded drug
    claim = build_claim(d, Config(), CREATED)
    validate_claim(claim)
    hcpcs = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
    assert [i["modifier"] for i in claim["item"]] == [
        [{"coding": [{"system": hcpcs, "code": "GY"}]}]
    ] * 2


def test_gy_keeps_a_configured_severity():
    d = decide_one(
        ENOXAPARIN_40, config=Config(sad_policy="gy", severity={"self-administered-drug": "info"})
    )
    assert gap(d, "self-administered-drug").severity == "info"


def test_gy_and_the_distinct_modifier_of_a_second_injection_both_go_on_the_administration_line():
    from tests.builders import decide_many

    second = dict(ENOXAPARIN_40, id="ma2", effectiveDateTime="2026-10-05T09:45:00-05:00")
    _, d = decide_many([admin(), second], config=Config(sad_policy="gy"))
    assert line(d, "administration").modifiers == ("GY", "XU")


@pytest.mark.parametrize("payer", ["commercial", "medicaid"])
def test_other_payers_cover_it_as_any_drug(payer):
    assert "self-administered-drug" not in gap_codes(decide_one(ENOXAPARIN_40, world(payer=payer)))


def test_sad_policy_is_hold_or_gy(tmp_path):
    assert Config().sad_policy == "hold"
    with pytest.raises(ConfigError, match="sad_policy"):
        Config(sad_policy="bill")
    path = tmp_path / "c.toml"
    path.write_text('sad_policy = "gy"\n')
    assert load_config(path).sad_policy == "gy"
    path.write_text('sad_policy = "deny"\n')
    with pytest.raises(ConfigError, match="sad_policy 'deny' is not one of hold, gy"):
        load_config(path)
