"""Payer type from every form a Coverage takes: NAHDO SOPT, HL7 v3 ActCode,
coverage-selfpay, Coverage.type text, and the payor Organization's identifier or name; self-pay;
a generic public type that cannot tell Medicare from Medicaid. Precedence is docs/decision-rules.md, "Payer type".

Each test changes one thing in the clean Medicare ``world()`` and asserts the one consequence.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from fhir_injection import Config, Context, MappingError, decide, load_rules
from fhir_injection.decision.clinical import type_names_payer
from fhir_injection.decision.elements import name_key
from fhir_injection.decision.model import Decision, Line
from fhir_injection.sinks.claims import build_claim
from fhir_injection.sinks.report import Summary
from tests.builders import (
    ACT,
    RXNORM,
    SOPT,
    admin,
    decide_many,
    decide_one,
    dosage,
    dose,
    gap,
    gap_codes,
    line,
    med,
    replace_resource,
    validate_claim,
    world,
)

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
SELFPAY = "http://terminology.hl7.org/CodeSystem/coverage-selfpay"
SOPT_OID = "urn:oid:2.16.840.1.113883.3.221.5"
SOPT_PHDSC = "http://phdsc.org/standards/payer-typology.asp"


def coverage(type_=None, payor=None, organization_name=None, organization_identifier=None):
    """The clean world with its Coverage typed ``type_`` (None: no type), its payor Reference set to
    ``payor`` (default: Organization/payer) and that Organization's name/identifier changed."""
    w = replace_resource(
        world(),
        "Coverage",
        type=type_,
        payor=[payor] if payor is not None else [{"reference": "Organization/payer"}],
    )
    for r in w:
        if r["resourceType"] == "Organization" and r["id"] == "payer":
            r["name"] = organization_name or "Demo Payer"
            if organization_identifier:
                r["identifier"] = [organization_identifier]
    return w


def coded(system, code, text=None):
    concept = {"coding": [{"system": system, "code": code}]}
    if text:
        concept["text"] = text
    return concept


def payer_of(w) -> str | None:
    return decide_one(admin(), w).payer_type


# ----------------------------------------------------------------------------- coded types


@pytest.mark.parametrize("system", [SOPT, SOPT_OID, SOPT_PHDSC])
def test_sopt_is_read_under_each_of_its_system_uris(system):
    assert payer_of(coverage(coded(system, "1"))) == "medicare"
    assert payer_of(coverage(coded(system, "2"))) == "medicaid"


@pytest.mark.parametrize(
    "code,payer_type",
    [
        ("121", "medicare"),
        ("25", "medicaid"),
        ("311", "commercial"),
        ("4", "commercial"),
        ("81", "self-pay"),
        ("82", "self-pay"),
        ("95", "commercial"),
    ],
)
def test_sopt_subcodes_take_their_family(code, payer_type):
    assert payer_of(coverage(coded(SOPT, code))) == payer_type


def test_sopt_7_managed_care_unspecified_is_refined_by_the_payor():
    # SOPT 7 is for managed care that cannot be told public or private: the payor may say
    assert payer_of(coverage(coded(SOPT, "7"))) == "commercial"
    assert payer_of(coverage(coded(SOPT, "7"), organization_name="Texas Medicaid")) == "medicaid"


def test_v3_publicpol_with_a_medicare_payor_is_medicare_with_jz():
    d = decide_one(
        admin(),
        coverage(coded(ACT, "PUBLICPOL"), organization_name="Medicare Part B (fixture payer)"),
    )
    assert d.payer_type == "medicare"
    assert line(d, "drug").modifiers == ("JZ",)  # ketorolac J1885 is single-dose
    assert d.outcome == "claim" and gap_codes(d) == []


def test_v3_publicpol_alone_cannot_tell_the_payer_and_is_held():
    d = decide_one(admin(), coverage(coded(ACT, "PUBLICPOL"), payor={"display": "Government"}))
    assert d.payer_type is None
    g = gap(d, "unknown-payer-type")
    assert g.severity == "error" and "PUBLICPOL" in g.message
    assert d.outcome == "held" and d.claim_status == "draft"  # a draft Claim to the Coverage
    assert line(d, "drug").modifiers == ()  # no JZ on a guess
    assert d.coverage == "Coverage/cov-p1"


@pytest.mark.parametrize("code", ["SUBSIDIZ", "SUBSIDMC", "SUBSUPP", "MANDPOL", "ENDRENAL"])
def test_other_generic_public_program_codes_need_the_payor_too(code):
    assert "unknown-payer-type" in gap_codes(decide_one(admin(), coverage(coded(ACT, code))))


def test_blue_button_shape_subsidiz_with_cms_as_payor_is_medicare():
    # CMS Blue Button 2.0 types Medicare Part A/B/C/D Coverages SUBSIDIZ, issued by CMS
    w = coverage(
        coded(ACT, "SUBSIDIZ"), organization_name="Centers for Medicare & Medicaid Services"
    )
    assert payer_of(w) == "medicare"


@pytest.mark.parametrize("code", ["MCPOL", "HMO", "PPO", "POS", "EHCPOL", "HIP"])
def test_private_kinds_of_coverage_are_commercial_unless_the_payor_says(code):
    assert payer_of(coverage(coded(ACT, code))) == "commercial"


def test_managed_care_with_a_medicaid_payor_is_medicaid_and_needs_the_ndc():
    w = coverage(coded(ACT, "MCPOL"), organization_name="Texas Medicaid")
    d = decide_one(admin(medicationCodeableConcept=med(RXNORM, "35827")), w)  # no NDC on it
    assert d.payer_type == "medicaid"
    assert "missing-ndc" in gap_codes(d) and d.outcome == "held"


# ----------------------------------------------------------------------------- text and names


@pytest.mark.parametrize(
    "text,payer_type",
    [
        ("Medicare", "medicare"),
        ("MEDICARE", "medicare"),
        (" medicare ", "medicare"),
        ("Medicaid", "medicaid"),
        ("Dual Eligible", "medicare"),
        ("Private", "commercial"),
    ],
)
def test_type_text_on_the_list_names_the_payer(text, payer_type):
    assert payer_of(coverage({"text": text})) == payer_type


@pytest.mark.parametrize(
    "text", ["Medicare Advantage", "Humana Medicare", "Not Medicare", "Medicaid pending"]
)
def test_type_text_is_matched_whole_never_by_a_word_inside_it(text):
    assert payer_of(coverage({"text": text})) == "commercial"


def test_a_coding_no_table_knows_is_read_by_its_display():
    w = coverage(
        {
            "coding": [
                {
                    "system": "urn:oid:1.2.840.114350.1.13.99999.1",
                    "code": "2",
                    "display": "Medicaid",
                }
            ]
        }
    )
    assert payer_of(w) == "medicaid"


@pytest.mark.parametrize("where", ["organization", "display"])
def test_payor_only_coverage_takes_the_payor_name(where):
    if where == "organization":
        w = coverage(None, organization_name="Medicare")
    else:
        w = coverage(None, payor={"display": "Medicare"})
    assert payer_of(w) == "medicare"


def test_payor_name_prefix_row_matches_the_first_words_only():
    assert payer_of(coverage(None, organization_name="Medicare Part B - Novitas JL")) == "medicare"
    assert payer_of(coverage(None, organization_name="Medicare Partners of Ohio")) == "commercial"


def test_a_payor_only_coverage_the_tables_do_not_know_is_commercial_as_before():
    assert payer_of(coverage(None, organization_name="Fictional Blue Plan")) == "commercial"


def test_state_medicaid_and_named_state_programs_are_medicaid():
    assert payer_of(coverage(None, organization_name="Ohio Medicaid")) == "medicaid"
    assert payer_of(coverage(None, payor={"display": "Medi-Cal"})) == "medicaid"


def test_type_text_only_row_does_not_apply_to_payor_names():
    # 'Self' is a registration financial class, not a payer's name
    assert payer_of(coverage({"text": "Self"})) == "self-pay"
    assert payer_of(coverage(None, organization_name="Self")) == "commercial"


# ----------------------------------------------------------------------------- precedence


def test_a_specific_sopt_code_beats_the_payor_name():
    assert payer_of(coverage(coded(SOPT, "5"), organization_name="Medicare")) == "commercial"


def test_type_text_beats_the_payor_name():
    assert payer_of(coverage({"text": "Medicaid"}, organization_name="Medicare")) == "medicaid"


def test_payor_name_beats_a_generic_code():
    assert payer_of(coverage(coded(ACT, "PUBLICPOL"), organization_name="Medicaid")) == "medicaid"
    assert payer_of(coverage(coded(ACT, "PPO"), organization_name="Medicare")) == "medicare"


def test_the_first_specific_coding_decides():
    w = coverage(
        {
            "coding": [
                {"system": ACT, "code": "PUBLICPOL"},
                {"system": SOPT, "code": "2"},
                {"system": SOPT, "code": "1"},
            ]
        }
    )
    assert payer_of(w) == "medicaid"


def _with_identifiers(tmp_path, rows: str) -> object:
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    with (target / "payer_identifiers.csv").open("a", encoding="utf-8") as fh:
        fh.write(rows)
    return load_rules(target)


def test_payor_identifier_from_the_analysts_table(tmp_path):
    rules = _with_identifiers(
        tmp_path,
        "urn:example:payer-id,12502,medicare,Novitas JL Part B,clinic's clearinghouse list\n",
    )
    ident = {"system": "urn:example:payer-id", "value": "12502"}
    on_org = coverage(None, organization_identifier=ident)
    on_reference = coverage(None, payor={"identifier": ident, "display": "Some plan"})
    for w in (on_org, on_reference):
        assert decide(admin(), Context(w), rules).payer_type == "medicare"
    # an identifier beats the type text ...
    w = coverage({"text": "Medicaid"}, organization_identifier=ident)
    assert decide(admin(), Context(w), rules).payer_type == "medicare"
    # ... but not a specific SOPT code
    w = coverage(coded(SOPT, "2"), organization_identifier=ident)
    assert decide(admin(), Context(w), rules).payer_type == "medicaid"


# ----------------------------------------------------------------------------- self-pay


@pytest.mark.parametrize(
    "type_",
    [
        {"text": "NO_INSURANCE"},
        {"text": "Self-Pay"},
        {"text": "self pay"},
        coded(SELFPAY, "pay"),
        coded(SOPT, "81"),
    ],
)
def test_self_pay_bills_the_patients_self_pay_coverage_with_an_info_gap(type_):
    d = decide_one(admin(), coverage(type_))
    assert d.payer_type == "self-pay"
    assert d.outcome == "claim" and d.claim_status == "active"
    assert d.coverage == "Coverage/cov-p1"  # R4 Claim.insurance: the self-pay Coverage
    assert gap(d, "self-pay").severity == "info"
    assert d.actionable_gaps == ()  # nothing for a person to fix: no Task
    assert line(d, "drug").modifiers == ()  # JW/JZ are Medicare Part B policy


@pytest.mark.parametrize(
    "payor",
    [
        {"reference": "Patient/p1"},
        {"reference": "RelatedPerson/mother"},
        {"type": "RelatedPerson", "display": "Guarantor"},
    ],
)
def test_a_person_as_payor_is_self_pay(payor):
    # R4 Coverage.payor: Organization, or Patient/RelatedPerson for patient-pay agreements
    assert payer_of(coverage(None, payor=payor)) == "self-pay"
    assert (
        payer_of(coverage(coded(SOPT, "1"), payor=payor)) == "medicare"
    )  # a specific type still wins


def test_oracle_payor_only_self_pay_coverage():
    assert payer_of(coverage(None, payor={"display": "SELF PAY"})) == "self-pay"


def test_self_pay_claim_is_a_valid_fhir_claim_to_the_self_pay_coverage():
    d = decide_one(admin(), coverage({"text": "NO_INSURANCE"}))
    claim = build_claim(d, Config(), "2026-10-06T12:00:00Z")
    validate_claim(claim)
    assert claim["insurance"][0]["coverage"]["reference"] == "Coverage/cov-p1"


def test_self_pay_second_injection_of_the_day_takes_59():
    w = coverage({"text": "NO_INSURANCE"})
    a2 = admin(
        id="ma2",
        effectiveDateTime="2026-10-05T10:00:00-05:00",
        medicationCodeableConcept=med(RXNORM, "26225"),
        dosage=dosage(dose=dose(4, "mg")),
    )
    d1, d2 = decide_many([admin(), a2], w)
    assert line(d2, "administration").modifiers == ("59",)
    assert line(d1, "administration").modifiers == ()


def test_self_pay_needs_no_ndc():
    d = decide_one(
        admin(medicationCodeableConcept=med(RXNORM, "35827")), coverage({"text": "NO_INSURANCE"})
    )
    assert "missing-ndc" not in gap_codes(d)


def test_summary_counts_self_pay_dollars_apart_from_payer_billable():
    lines = (Line("administration", "x", "96372", None, (), 1, Decimal("15.36")),)
    summary = Summary()
    summary.add(
        Decision(
            "MedicationAdministration/a", None, "claim", "96372", lines=lines, payer_type="self-pay"
        ),
        "active",
        False,
    )
    summary.add(
        Decision(
            "MedicationAdministration/b", None, "claim", "96372", lines=lines, payer_type="medicare"
        ),
        "active",
        False,
    )
    out = summary.as_dict()
    assert (out["estimated_billable_usd"], out["estimated_self_pay_usd"]) == (15.36, 15.36)
    assert "$15.36 to self-pay patients" in summary.text()


# ----------------------------------------------------------------------------- JZ where Medicare now applies


@pytest.mark.parametrize(
    "w",
    [
        coverage({"text": "Medicare"}),
        coverage(None, organization_name="Medicare"),
        coverage(coded(ACT, "PUBLICPOL"), organization_name="Original Medicare"),
    ],
    ids=["type text", "payor name", "publicpol+payor"],
)
def test_jz_on_single_dose_drugs_wherever_medicare_is_now_recognised(w):
    assert line(decide_one(admin(), w), "drug").modifiers == ("JZ",)
    ondansetron = admin(
        medicationCodeableConcept=med(RXNORM, "26225"), dosage=dosage(dose=dose(4, "mg"))
    )
    assert line(decide_one(ondansetron, w), "drug").modifiers == ()  # multi-dose vial: no JZ


# ----------------------------------------------------------------------------- engine helpers


def test_names_are_compared_without_case_punctuation_or_extra_spaces():
    assert name_key("NO_INSURANCE") == name_key("No  insurance") == "no insurance"
    assert (
        name_key("Centers for Medicare & Medicaid Services")
        == "centers for medicare and medicaid services"
    )


def test_type_names_payer_says_when_the_live_sync_may_skip_the_payor(rules):
    assert type_names_payer({"type": coded(SOPT, "1")}, rules)
    assert type_names_payer({"type": coded(SELFPAY, "pay")}, rules)
    assert not type_names_payer({"type": coded(ACT, "PUBLICPOL")}, rules)
    assert not type_names_payer({"type": {"text": "Medicare"}}, rules)
    assert not type_names_payer({}, rules)


def test_live_resolver_asks_for_the_payor_only_when_the_type_does_not_name_the_payer():
    from fhir_injection.sources.resolver import Resolver

    sopt = {
        "resourceType": "Coverage",
        "id": "c1",
        "beneficiary": {"reference": "Patient/p1"},
        "type": coded(SOPT, "1"),
        "payor": [{"reference": "Organization/mcr"}],
    }
    payor_only = {
        "resourceType": "Coverage",
        "id": "c2",
        "beneficiary": {"reference": "Patient/p2"},
        "payor": [{"reference": "Organization/blue"}],
    }
    admins = [admin(id="a1", patient="p1"), admin(id="a2", patient="p2")]
    rules = load_rules()

    class NoServer:
        def capabilities(self):
            return {}

    resolver = Resolver(NoServer(), payors_needed=lambda cov: not type_names_payer(cov, rules))
    resolver.by_patient.update({("Coverage", "p1"): [sopt], ("Coverage", "p2"): [payor_only]})
    refs, _, _ = resolver._references(admins)
    assert "Organization/blue" in refs and "Organization/mcr" not in refs


def test_gap_messages_name_codes_never_the_payor_or_member():
    w = coverage(coded(ACT, "PUBLICPOL"), payor={"display": "Government of Somewhere"})
    for g in decide_one(admin(), w).gaps:
        assert "Somewhere" not in g.message and "MEMBER-SECRET-1" not in g.message


# ----------------------------------------------------------------------------- the tables


@pytest.fixture
def mappings(tmp_path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    return target


def _append(directory: Path, name: str, row: str) -> int:
    path = directory / name
    text = path.read_text(encoding="utf-8")
    path.write_text(text + row + "\n", encoding="utf-8")
    return len(text.splitlines()) + 1


@pytest.mark.parametrize(
    "name,row,message",
    [
        ("payer_codes.csv", "https://nahdo.org/sopt,123,exact,medicare,definite,x,src", "kind"),
        (
            "payer_codes.csv",
            "https://nahdo.org/sopt,123,exact,unknown,specific,x,src",
            "needs kind 'generic'",
        ),
        (
            "payer_codes.csv",
            "https://nahdo.org/sopt,123,exact,martian,specific,x,src",
            "payer_type",
        ),
        ("payer_codes.csv", "https://nahdo.org/sopt,1,prefix,medicare,specific,x,src", "duplicate"),
        ("payer_names.csv", "Medicare Blue,exact,everywhere,medicare,src", "applies_to"),
        (
            "payer_names.csv",
            "MEDICARE,exact,both,medicare,src",
            "duplicate",
        ),  # same name once normalised
        ("payer_names.csv", "Medicare Blue,exact,both,unknown,src", "payer_type"),
        ("payer_names.csv", "---,exact,both,medicare,src", "no letters"),
        ("payer_names.csv", "Medicare Blue,exact,both,medicare,", "source"),
        ("payer_identifiers.csv", "urn:x,1,medicare,x,", "source"),
        ("payer_identifiers.csv", "urn:x,1,gold,x,src", "payer_type"),
        ("payers.csv", "gold,no,yes,4,src", "payer_type"),
    ],
)
def test_broken_payer_row_names_file_and_row(mappings, name, row, message):
    number = _append(mappings, name, row)
    with pytest.raises(MappingError) as info:
        load_rules(mappings)
    assert (info.value.file, info.value.row) == (name, number)
    assert message in str(info.value)


def test_payers_csv_has_a_self_pay_row_with_its_reasons(rules):
    rule = rules.payer("self-pay")
    assert (rule.distinct_modifier, rule.requires_ndc, rule.jw_jz) == ("59", False, False)
