"""Filing limits: the last day a payer takes a claim, and what is past it.

A payer type's limit is a row of ``mappings/filing_limits.csv`` (Medicare: 12 months after the
date of service, 42 CFR 424.44), or the practice's ``[filing_limits]``. The day the run treats as
today is :attr:`Config.as_of`, given by the caller: this module never reads the clock. A service
the practice would bill whose deadline is before that day is ``past-filing-limit``: no Claim, no
Task (nobody can fix it), its dollars reported as lost. Without a service date, or a payer type
(unless the practice configured ``[filing_limits] unknown``), no limit can be computed: the decision
says so (``filing_limit`` "unknown: ...") and is otherwise
left as it is (its own gaps, missing-coverage, unknown-payer-type or missing-time, hold it).
"""

from __future__ import annotations

from datetime import date

from .case import replace
from .model import ACTIONABLE_OUTCOMES, Decision, Gap
from .rules import Config, FilingLimit, Rules

_UNKNOWN = object()


def filing_limit(payer_type: str | None, rules: Rules, config: Config):
    """The payer type's limit: a FilingLimit, None (no limit: self-pay), or ``_UNKNOWN`` when the
    payer type is not known (no limit can be computed)."""
    if (
        payer_type is None
    ):  # only the practice can say which limit to assume: [filing_limits] unknown
        return config.filing_limits.get("unknown", _UNKNOWN)
    if payer_type in config.filing_limits:
        return config.filing_limits[payer_type]
    return rules.filing_limits.get(payer_type, _UNKNOWN)


def apply_filing_limit(d: Decision, rules: Rules, config: Config) -> Decision:
    """``d`` with its filing limit, deadline and days left; past the limit, ``past-filing-limit``."""
    if d.outcome not in ACTIONABLE_OUTCOMES:
        return d
    limit = filing_limit(d.payer_type, rules, config)
    service = _date(d.service_date)
    if limit is _UNKNOWN:
        return replace(d, filing_limit="unknown: no payer type")
    payer = d.payer_type or "unknown payer type"
    if limit is None:  # self-pay: no claim-filing limit
        return replace(d, filing_limit="none")
    assert isinstance(limit, FilingLimit)
    if service is None:
        return replace(d, filing_limit="unknown: no date of service")
    deadline = limit.deadline(service)
    d = replace(d, filing_limit=limit.text, filing_deadline=deadline.isoformat())
    if config.as_of is None:  # no day given to count from: nothing is judged past
        return d
    days_left = (deadline - config.as_of).days
    d = replace(d, days_left=days_left)
    if days_left >= 0:
        return d
    gap_type = rules.gaps["past-filing-limit"]
    detail = (
        f"Service {d.service_date}, {payer} filing limit {limit.text}: last day "
        f"{deadline.isoformat()}, {-days_left} day(s) before {config.as_of.isoformat()}"
    )
    gap = Gap(
        gap_type.code,
        config.severity.get(gap_type.code, gap_type.severity),
        f"{detail}. {gap_type.definition}",
        gap_type.field,
        gap_type.source,
    )
    return replace(
        d, outcome="past-filing-limit", claim_status=None, claim_blocker=None, gaps=(*d.gaps, gap)
    )


def _date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None
