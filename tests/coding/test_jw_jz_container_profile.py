"""The practice's profile of the containers it stocks (docs/configuration.md, [containers]).

CMS (JW and JZ modifier policy, Medicare Claims Processing Manual ch. 17 section 40; JW/JZ FAQ):
a separately payable Part B drug from a single-dose container is billed with JW for the amount
discarded, or JZ when nothing is; a multiple-dose container takes neither. Which kind a product is
the record and our sourced tables say when they can (an NDC row of packages.csv or of the CMS ASP
NDC-HCPCS crosswalk with its container); otherwise the practice, which knows what it stocks, says it
in [containers]: an NDC key before a HCPCS key. The profile gives the kind, never the size.
The NDC rows used are CMS's own (mappings/ndc_hcpcs.csv, October 2025 crosswalk); the kinds given
to them below are test configurations, not facts about the products.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fhir_injection import Config, load_config, load_rules
from fhir_injection.decision.ruleset import SYSTEM_HCPCS as HCPCS
from fhir_injection.errors import ConfigError
from tests.builders import NDC, RXNORM, admin, decide_one, dosage, dose, gap_codes, line, med, world

ROOT = Path(__file__).resolve().parents[2]
ONDANSETRON = "00641607825"  # CMS: Hikma, J2405 (per 1 mg), one item 4 units (4 mg); kind not given
KETOROLAC = "00409379501"  # CMS: Pfizer, J1885 (per 15 mg), one item 2 units (30 mg), single-dose
EPINEPHRINE = "42023016801"  # CMS: Endo, J0165 (per 0.1 mg), one item 30 mg, multi-dose


def _given(medication, amount, unit, containers=None, payer="medicare"):
    config = Config(containers=containers) if containers is not None else None
    return decide_one(
        admin(
            medicationCodeableConcept=medication,
            effectiveDateTime="2026-10-05T09:30:00-05:00",
            dosage=dosage(dose=dose(amount, unit)),
        ),
        world(payer=payer),
        config,
    )


def _basis(d):
    return {fact: (kind, how) for fact, kind, how in d.basis}


def _load(tmp_path, text: str) -> Config:
    path = tmp_path / "practice.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_without_a_profile_the_unknown_kind_is_held():
    d = _given(med(NDC, ONDANSETRON), 4, "mg")
    assert d.outcome == "held" and "missing-package-size" in gap_codes(d)
    assert _basis(d)["container"][0] == "rule"  # the crosswalk's size, kind not known


def test_a_hcpcs_key_multi_dose_lifts_missing_package_size():
    d = _given(med(NDC, ONDANSETRON), 4, "mg", {"J2405": "multi-dose"})
    assert d.outcome == "claim", gap_codes(d)
    assert "missing-package-size" not in gap_codes(d)
    assert line(d, "drug").modifiers == () and [x.kind for x in d.lines].count("waste") == 0
    kind, how = _basis(d)["container"]
    assert kind == "practice"
    assert "multi-dose" in how and "[containers] J2405" in how and "4 mg" in how


def test_an_ndc_key_single_dose_with_the_crosswalk_size_gives_jz_or_jw_units():
    """4 mg vial (4 units of J2405): 4 mg given -> JZ; 1 mg given -> 1 unit and 3 units JW."""
    profile = {ONDANSETRON: "single-dose"}
    full = _given(med(NDC, ONDANSETRON), 4, "mg", profile)
    assert full.outcome == "claim", gap_codes(full)
    assert line(full, "drug").modifiers == ("JZ",) and line(full, "drug").quantity == 4
    part = _given(med(NDC, ONDANSETRON), 1, "mg", profile)
    assert (line(part, "drug").quantity, line(part, "waste").quantity) == (1, 3)
    assert line(part, "waste").modifiers == ("JW",)
    kind, how = _basis(part)["container"]
    assert kind == "practice" and f"[containers] NDC {ONDANSETRON}" in how and "single-dose" in how


def test_an_ndc_key_wins_over_the_hcpcs_key():
    d = _given(med(NDC, ONDANSETRON), 4, "mg", {"J2405": "multi-dose", ONDANSETRON: "single-dose"})
    assert line(d, "drug").modifiers == ("JZ",)
    other = _given(
        med(NDC, ONDANSETRON), 4, "mg", {"J2405": "single-dose", ONDANSETRON: "multi-dose"}
    )
    assert line(other, "drug").modifiers == () and other.outcome == "claim"


def test_a_crosswalk_kind_wins_over_the_profile():
    """The crosswalk's single-dose ketorolac stays single-dose (15 mg of the 30 mg vial: 1 unit and
    1 unit JW), its multi-dose epinephrine stays multi-dose (no JW/JZ), whatever the profile says."""
    d = _given(med(NDC, KETOROLAC), 15, "mg", {KETOROLAC: "multi-dose", "J1885": "multi-dose"})
    assert (line(d, "drug").quantity, line(d, "waste").quantity) == (1, 1)
    assert _basis(d)["container"][0] == "rule"
    product = {"coding": [{"system": NDC, "code": EPINEPHRINE}, {"system": RXNORM, "code": "3992"}]}
    d = _given(product, 0.3, "mg", {EPINEPHRINE: "single-dose", "J0165": "single-dose"})
    assert d.outcome == "claim", gap_codes(d)
    assert line(d, "drug").modifiers == () and [x.kind for x in d.lines].count("waste") == 0
    assert _basis(d)["container"][0] == "rule"


def test_a_single_dose_kind_from_the_profile_without_a_size_is_still_missing_package_size():
    """The HCPCS code alone on the record: no NDC, so no crosswalk or packages.csv size, and no
    Medication.amount: the JW units cannot be worked out, and the gap says the size is missing."""
    d = _given(med(HCPCS, "J2405"), 4, "mg", {"J2405": "single-dose"})
    assert d.outcome == "held"
    gap = next(g for g in d.gaps if g.code == "missing-package-size")
    assert "size is not known" in gap.message and "[containers] J2405" in gap.message
    kind, how = _basis(d)["container"]
    assert kind == "practice" and "size not known" in how


def test_a_multi_dose_kind_from_the_profile_needs_no_size():
    d = _given(med(HCPCS, "J2405"), 4, "mg", {"J2405": "multi-dose"})
    assert d.outcome == "claim", gap_codes(d)
    assert line(d, "drug").modifiers == ()


def test_the_profile_does_not_matter_where_jw_jz_do_not_apply():
    d = _given(med(NDC, ONDANSETRON), 1, "mg", {ONDANSETRON: "single-dose"}, payer="commercial")
    assert line(d, "drug").modifiers == () and [x.kind for x in d.lines].count("waste") == 0


def test_keys_are_normalised_ndcs_and_hcpcs_codes(tmp_path):
    config = _load(
        tmp_path,
        '[containers]\n"0641-6078-25" = "single-dose"\n"J2405" = "multi-dose"\n'
        '"00409-3795-01" = "single-dose"\n',
    )
    assert dict(config.containers) == {
        ONDANSETRON: "single-dose",
        "J2405": "multi-dose",
        KETOROLAC: "single-dose",
    }


@pytest.mark.parametrize(
    "entry,message",
    [
        ('"J2405" = "single-use"', "'J2405'"),  # not a kind
        ('"J2405" = 1', "not single-dose or multi-dose"),
        (
            '"J9998" = "multi-dose"',
            "not in drugs.csv",
        ),  # a HCPCS-shaped code drugs.csv does not hold
        ('"0064160782" = "multi-dose"', "'0064160782'"),  # 10 digits without hyphens: ambiguous
        ('"ondansetron" = "multi-dose"', "not a HCPCS code of drugs.csv"),
        ('"00641-6078-25" = "multi-dose"\n"0641-6078-25" = "single-dose"', "given twice"),
    ],
)
def test_a_bad_key_or_kind_is_a_config_error_naming_the_key(tmp_path, entry, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        _load(tmp_path, f"[containers]\n{entry}\n")
    assert "[containers] key" in str(raised.value)


def test_a_hcpcs_key_is_checked_against_the_tables_given(tmp_path):
    path = tmp_path / "practice.toml"
    path.write_text('[containers]\n"J2405" = "multi-dose"\n', encoding="utf-8")
    rules = load_rules()
    assert load_config(path, rules).containers == {"J2405": "multi-dose"}


def test_a_config_made_in_code_is_checked_too():
    with pytest.raises(ConfigError, match="0641-6078-25"):
        Config(containers={"0641-6078-25": "single-dose"})  # in code: the 11-digit form
    with pytest.raises(ConfigError, match="J2405"):
        Config(containers={"J2405": "multiple"})


def test_the_documented_configuration_example_parses(tmp_path):
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    section = text[text.index("## The configuration file") :]
    block = section[section.index("```toml") + len("```toml") :]
    block = block[: block.index("```")]
    assert "[containers]" in block
    config = _load(tmp_path, block)
    assert config.containers["J3420"] == "multi-dose"
    assert config.containers[KETOROLAC] == "single-dose"
