"""Reading FHIR elements the way the decision needs them: defensively, and never raising on a wrong type.

Lists, CodeableConcepts, and times: a service time is a full date or a date-time; comparisons
fall back to dates when either side has no time, and to wall times when only one has a zone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache

from ..fhir.resources import MAPPING

__all__ = [
    "as_date",
    "as_list",
    "codings",
    "concept_text",
    "name_key",
    "parse_time",
    "period",
    "within",
]


def as_list(value) -> list:
    """A list element as a list; anything else (a wrongly typed element) as empty."""
    return value if isinstance(value, list) else []


def codings(concept) -> list[Mapping]:
    """The codings of a CodeableConcept that are objects."""
    if not isinstance(concept, MAPPING):
        return []
    found = concept.get("coding")
    return [c for c in found if isinstance(c, MAPPING)] if isinstance(found, list) else []


def concept_text(concept) -> str | None:
    """A CodeableConcept's text, else its first coding display."""
    if not isinstance(concept, MAPPING):
        return None
    if isinstance(concept.get("text"), str) and concept["text"].strip():
        return concept["text"].strip()
    for c in codings(concept):
        if isinstance(c.get("display"), str) and c["display"].strip():
            return c["display"].strip()
    return None


_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


@lru_cache(
    maxsize=4096
)  # the same payer and visit names come back administration after administration
def name_key(text: str) -> str:
    """A name as the look-up tables key it: lower case, "&" as "and", every run of punctuation and
    spaces one space ("NO_INSURANCE" and "No Insurance" are one name; so are "Self-Pay" and "self pay")."""
    return " ".join(_NOT_ALNUM.sub(" ", text.lower().replace("&", " and ")).split())


def parse_time(value) -> datetime | date | None:
    """A date or date-time; None for anything else, a year or a year-month included."""
    return _parse_text_time(value) if isinstance(value, str) else None


@lru_cache(
    maxsize=4096
)  # the same instants come back: a patient's consent, coverage and encounters
def _parse_text_time(value: str) -> datetime | date | None:
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        if len(value) in (4, 7):
            return None  # year or year-month: not a service date
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def as_date(value: datetime | date) -> date:
    return value.date() if isinstance(value, datetime) else value


def _cmp(a: datetime | date, b: datetime | date) -> int:
    """-1, 0 or 1; dates when either side has no time, and wall times when only one has a zone."""
    if isinstance(a, datetime):
        if isinstance(b, datetime):
            if (a.tzinfo is None) != (b.tzinfo is None):
                a, b = a.replace(tzinfo=None), b.replace(tzinfo=None)
            return (a > b) - (a < b)
        a = a.date()
    elif isinstance(b, datetime):
        b = b.date()
    return (a > b) - (a < b)


def within(moment: datetime | date, start, end) -> bool:
    """Whether ``moment`` lies in [start, end]; compares dates when either side has no time."""
    if start is not None and _cmp(moment, start) < 0:
        return False
    return not (end is not None and _cmp(moment, end) > 0)


def period(resource: Mapping, element: str = "period"):
    """(start, end) of a Period element, each parsed or None."""
    value = resource.get(element)
    if not isinstance(value, MAPPING):
        return None, None
    return parse_time(value.get("start")), parse_time(value.get("end"))
