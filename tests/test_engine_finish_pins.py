"""Pins for fhir_injection/decision/engine.py (issue 10 item 6): the last step of every decision
(``_finish``: which gaps a service that is not a 96372 keeps, what blocks a Claim), the order of a
patient's day, the void of a deleted administration, and duplicates around a void.

``_finish`` and ``_sort_key`` are called directly with a hand-made pass-1 draft so each rule shows on
its own; everything else goes through ``decide_many``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from builders import admin, decide_many, gap_codes, rules
from fhir_injection.decision.case import Draft, Gaps
from fhir_injection.decision.engine import _finish, _sort_key, decide_deleted
from fhir_injection.decision.model import Decision
from fhir_injection.decision.practice import Config

RULES = rules()
CONFIG = Config()
WHO = {"patient": "Patient/p1", "coverage": "Coverage/c1", "provider": "Organization/clinic"}


def draft(outcome="claim", procedure="96372", gaps=(), when=None, admin_id="a1", **fields) -> Draft:
    found = Gaps(RULES, CONFIG)
    for code in gaps:
        found.add(code)
    decision = Decision(
        administration=f"MedicationAdministration/{admin_id}", version=None, outcome=outcome,
        procedure=procedure, **{**WHO, **fields})
    return Draft({"id": admin_id}, decision, when, None, (), found)


# ----------------------------------------------------------------------------- not a 96372


# route-not-sc-im: info (raised for every administration); missing-dose: raised for what is
# billed; missing-site: raised for a 96372 only
MIXED = ("route-not-sc-im", "missing-dose", "missing-site")


@pytest.mark.parametrize("outcome,procedure,kept", [
    ("not-96372", "96374", ["route-not-sc-im", "missing-dose"]),  # another code: what it bills
    ("held", "96374", ["route-not-sc-im", "missing-dose"]),  # any outcome of another code: the same
    ("not-billable", None, ["route-not-sc-im"]),
    ("void", "96372", ["route-not-sc-im"]),  # a void keeps its code but is no 96372 service
    ("not-96372", "96372", ["route-not-sc-im", "missing-dose"]),
    ("not-billable", "96372", ["route-not-sc-im"]),
])
def test_a_service_that_is_no_96372_keeps_only_the_gaps_raised_for_it(outcome, procedure, kept):
    d = _finish(draft(outcome, procedure, MIXED, claim_status="active"), RULES, CONFIG)
    assert (d.outcome, d.procedure, gap_codes(d), d.claim_status, d.claim_blocker) == (
        outcome, procedure, kept, None, None)


# ----------------------------------------------------------------------------- what blocks a Claim


@pytest.mark.parametrize("missing,blocker", [
    ("patient", "missing-patient"), ("coverage", "missing-coverage"), ("provider", "missing-billing-provider"),
])
def test_a_96372_without_patient_coverage_or_provider_is_held_with_no_claim_even_without_its_gap(
        missing, blocker):
    d = _finish(draft(**{missing: None}), RULES, CONFIG)
    assert (d.outcome, d.claim_status, d.claim_blocker, gap_codes(d)) == ("held", None, blocker, [])


def test_the_first_missing_piece_names_the_blocker():
    d = _finish(draft(patient=None, coverage=None, provider=None), RULES, CONFIG)
    assert d.claim_blocker == "missing-patient"
    d = _finish(draft(coverage=None, provider=None), RULES, CONFIG)
    assert d.claim_blocker == "missing-coverage"


def test_a_blocking_gap_blocks_the_claim_even_when_the_reference_is_there():
    d = _finish(draft(gaps=["missing-coverage"]), RULES, CONFIG)
    assert (d.outcome, d.claim_status, d.claim_blocker) == ("held", None, "missing-coverage")


@pytest.mark.parametrize("gaps,outcome,status", [
    ((), "claim", "active"),
    (("missing-site",), "claim", "active"),  # a warning bills
    (("missing-diagnosis",), "held", "draft"),  # an error holds a draft Claim
])
def test_a_whole_96372_is_a_claim_or_a_held_draft(gaps, outcome, status):
    d = _finish(draft(gaps=gaps), RULES, CONFIG)
    assert (d.outcome, d.claim_status, d.claim_blocker, gap_codes(d)) == (outcome, status, None, list(gaps))


# ----------------------------------------------------------------------------- the day's order


def test_the_day_is_ordered_by_instant_then_time_as_written_then_id():
    zoned = datetime(2026, 10, 5, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
    naive = datetime(2026, 10, 5, 9, 30)
    assert _sort_key(draft(when=zoned)) == (zoned.timestamp(), "2026-10-05T09:30:00-05:00", "a1")
    assert _sort_key(draft(when=naive)) == (naive.timestamp(), "2026-10-05T09:30:00", "a1")
    day = date(2026, 10, 5)
    assert _sort_key(draft(when=day, admin_id="b")) == (datetime(2026, 10, 5).timestamp(), "2026-10-05", "b")
    assert _sort_key(draft(when=None, admin_id="c")) == (float("inf"), "", "c")


def test_an_instant_equal_to_a_naive_time_sorts_by_its_written_form():
    zoned = datetime(2026, 10, 5, 14, 30, tzinfo=UTC)
    naive = datetime.fromtimestamp(zoned.timestamp())  # the same instant, in the machine's local time
    keys = sorted([_sort_key(draft(when=zoned, admin_id="z")), _sort_key(draft(when=naive, admin_id="n"))])
    assert [k[2] for k in keys] == sorted(["z", "n"], key=lambda i: {"z": zoned, "n": naive}[i].isoformat())


# ----------------------------------------------------------------------------- deleted at the source


def test_an_administration_deleted_at_the_source_is_a_void_of_its_patient():
    d = decide_deleted("a1", "p1")
    assert (d.administration, d.version, d.outcome, d.procedure, d.patient, d.gaps) == (
        "MedicationAdministration/a1", None, "void", None, "Patient/p1", ())
    assert decide_deleted("a2").patient is None and decide_deleted("a2", "").patient is None


# ----------------------------------------------------------------------------- duplicates and voids


def test_an_entered_in_error_record_does_not_make_its_replacement_a_duplicate():
    ident = [{"system": "urn:ehr:mar", "value": "42"}]
    voided = admin(id="a", identifier=ident, status="entered-in-error")
    again = admin(id="b", identifier=ident, effectiveDateTime="2026-10-05T09:45:00-05:00")
    first, second = decide_many([voided, again])
    assert first.outcome == "void" and "duplicate" not in gap_codes(second) and second.outcome == "claim"
