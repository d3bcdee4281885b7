"""Filing limits: the last day a payer takes a claim, and what is past it.

A payer type's limit is a row of ``mappings/filing_limits.csv`` (Medicare: 12 months after the
date of service, 42 CFR 424.44), or the practice's ``[filing_limits]``. The day the run treats as
today is :attr:`Config.as_of`, given by the caller: this module never reads the clock. A service
the practice would bill whose deadline is before that day is ``past-filing-limit``: no Claim, no
Task (nobody can fix it), its dollars reported as lost. Without a payer type the limit is the
practice's ``[filing_limits] unknown`` when given, else the longest limit of any payer type that
takes claims (derived from the table: whichever payer it turns out to be, past that day it is past
its limit). Without a service date no limit can be computed: the decision says so (``filing_limit``
"unknown: ...") and is otherwise left as it is (its own gaps, e.g. missing-time, hold it).
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from .case import replace
from .model import ACTIONABLE_OUTCOMES, Decision, Gap
from .payer_tables import FilingLimit
from .practice import Config
from .ruleset import Rules

__all__ = ["apply_filing_limit", "filing_limit"]

_UNKNOWN = object()
#: gaps that put the date of service itself in question: no limit is counted from it
_DATE_IN_QUESTION = ("time-outside-encounter", "missing-time")


def filing_limit(payer_type: str | None, rules: Rules, config: Config, service: date | None = None):
    """The payer type's limit: a FilingLimit, None (no limit: self-pay), or ``_UNKNOWN`` when none
    can be computed. No payer type: the practice's ``[filing_limits] unknown``, else the limit of
    any payer type that ends last for ``service`` (with no service date: ``_UNKNOWN``)."""
    if payer_type is None:
        if "unknown" in config.filing_limits:
            return config.filing_limits["unknown"]
        return _longest(rules, config, service)
    if payer_type in config.filing_limits:
        return config.filing_limits[payer_type]
    return rules.filing_limits.get(payer_type, _UNKNOWN)


def _longest(rules: Rules, config: Config, service: date | None):
    """The limit, of every payer type that has one, whose last day comes last for ``service``."""
    if service is None:
        return _UNKNOWN
    limits = [
        limit
        for payer_type in {*rules.filing_limits, *config.filing_limits} - {"unknown"}
        if (limit := filing_limit(payer_type, rules, config)) is not None and limit is not _UNKNOWN
    ]
    if not limits:
        return _UNKNOWN
    # on a tie the one in months (the federal rules: 42 CFR 424.44, 447.45) is named
    return max(limits, key=lambda limit: (limit.deadline(service), limit.unit == "months"))


def apply_filing_limit(d: Decision, rules: Rules, config: Config) -> Decision:
    """``d`` with its filing limit, deadline and days left; past the limit, ``past-filing-limit``.

    The facts are gathered first and the decision copied once (:func:`~.case.replace` copies
    every field: it ran two or three times per administration)."""
    if d.outcome not in ACTIONABLE_OUTCOMES:
        return d
    service = _date(d.service_date)
    doubt = next((g.code for g in d.gaps if g.code in _DATE_IN_QUESTION), None)
    if doubt is not None:  # a date the record contradicts decides nothing: a person checks it first
        return replace(d, filing_limit=f"unknown: the date of service is in question ({doubt})")
    limit = filing_limit(d.payer_type, rules, config, service)
    if limit is _UNKNOWN:
        return replace(
            d,
            filing_limit="unknown: no date of service"
            if service is None
            else "unknown: no payer type",
        )
    derived = d.payer_type is None and "unknown" not in config.filing_limits
    if limit is None:  # self-pay: no claim-filing limit
        return replace(d, filing_limit="none")
    assert isinstance(limit, FilingLimit)
    if service is None:
        return replace(d, filing_limit="unknown: no date of service")
    deadline = _deadline(limit, service)
    shown = f"{limit.text} (the longest of any payer type)" if derived else limit.text
    if config.as_of is None:  # no day given to count from: nothing is judged past
        return replace(d, filing_limit=shown, filing_deadline=deadline.isoformat())
    days_left = (deadline - config.as_of).days
    if days_left >= 0:
        return replace(
            d, filing_limit=shown, filing_deadline=deadline.isoformat(), days_left=days_left
        )
    payer = d.payer_type or (
        "no payer type known; the longest of any payer type," if derived else "unknown payer type"
    )
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
        d,
        filing_limit=shown,
        filing_deadline=deadline.isoformat(),
        days_left=days_left,
        outcome="past-filing-limit",
        claim_status=None,
        claim_blocker=None,
        gaps=(*d.gaps, gap),
    )


@lru_cache(
    maxsize=4096
)  # the same few payer limits and service days, administration after administration
def _deadline(limit: FilingLimit, service: date) -> date:
    return limit.deadline(service)


def _date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None
