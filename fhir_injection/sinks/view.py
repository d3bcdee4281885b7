"""The billing team's view of one run, aggregated in Python from ``report.json``'s entries.

:class:`ReportView` is fed one report entry at a time (by :class:`~.report.ReportWriter` while a
run writes them, or from a saved ``report.json`` by :func:`view_of_report`), so a run of 100,000
administrations keeps only the sums and the coder worklist in memory, never the entries. Its
totals are computed the way the report's ``summary`` computes them (held = ``held`` outcomes;
billable = ``claim`` outcomes not to a self-pay patient; lost = ``past-filing-limit``), and a test
holds them equal. The worklist is sorted by the days left to the payer's filing limit.

The worklist is one row per gap a person can act on: an error or warning gap of an administration
whose service the practice bills (``claim``, ``held`` or ``not-96372``), the same gaps a Task is
opened for. Like the report, it holds ids and codes, never a person's name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from ..decision.model import ACTIONABLE_OUTCOMES, CENT
from ..decision.ruleset import OUTCOMES

__all__ = [
    "NONE_LABEL",
    "ReportView",
    "SEVERITY_ORDER",
    "TOP",
    "WorklistRow",
    "by_day",
    "server_base",
    "top",
    "view_of_entries",
]

NONE_LABEL = "(none)"
TOP = 15  # bars per chart of held dollars; the rest are summed as one "others" bar
SEVERITY_ORDER = {"error": 0, "warning": 1}


@dataclass(frozen=True)
class WorklistRow:
    """One gap to fix: what, where (FHIR element), how bad, for whom, and its resources."""

    service_date: str
    administration: str  # "MedicationAdministration/<id>"
    outcome: str
    severity: str
    gap: str
    field: str
    message: str
    clinician: str  # the performer reference, or ""
    payer_type: str
    hcpcs: str
    estimated_usd: float
    task: str  # "Task/<id>", or ""
    claim: str  # "Claim/<id>", or ""
    days_left: int | None = None  # to the payer's filing limit; None: no limit known
    filing_deadline: str = ""  # YYYY-MM-DD, or ""


def _usd(value: Any) -> Decimal:
    """A report amount as exact cents (the report writes floats rounded to cents)."""
    try:
        return Decimal(str(value)).quantize(CENT) if value is not None else Decimal(0)
    except ArithmeticError:
        return Decimal(0)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def server_base(url: Any) -> str | None:
    """A server's base URL fit for links: ``http``/``https`` with a host, else None (a folder
    path, ``javascript:``, ``data:``...)."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    if any(c in url for c in "\"'<>\\ \t\r\n`"):
        return None
    return url.strip().rstrip("/")


class ReportView:
    """Sums and worklist of one run, from its report entries."""

    def __init__(self) -> None:
        self.administrations = 0
        self.outcomes: Counter = Counter({o: 0 for o in OUTCOMES})  # as the summary counts them
        self.claims: Counter = Counter()
        self.tasks = 0
        self.gaps: Counter = Counter()
        self.billable = Decimal(0)
        self.held = Decimal(0)
        self.self_pay = Decimal(0)
        self.lost = Decimal(0)  # past the filing limit
        self.held_by_gap: dict[str, Decimal] = {}
        self.held_by_clinician: dict[str, Decimal] = {}
        self.held_by_drug: dict[str, Decimal] = {}
        self.held_by_day: dict[str, Decimal] = {}
        self.worklist: list[WorklistRow] = []

    def add(self, entry: Mapping[str, Any]) -> None:
        self.administrations += 1
        outcome = _text(entry.get("outcome"))
        self.outcomes[outcome] += 1
        if entry.get("claim") and entry.get("claim_status"):
            self.claims[entry["claim_status"]] += 1
        self.tasks += bool(entry.get("task"))
        gaps = [g for g in entry.get("gaps") or () if isinstance(g, Mapping)]
        for gap in gaps:
            self.gaps[_text(gap.get("code"))] += 1
        usd = _usd(entry.get("estimated_usd"))
        if outcome == "claim" and entry.get("payer_type") == "self-pay":
            self.self_pay += usd
        elif outcome == "claim":
            self.billable += usd
        elif outcome == "held":
            self.held += usd
            blocking = {_text(g.get("code")) for g in gaps if g.get("severity") == "error"}
            for code in blocking or {NONE_LABEL}:
                self.held_by_gap[code] = self.held_by_gap.get(code, Decimal(0)) + usd
            for table, key in (
                (self.held_by_clinician, entry.get("performer")),
                (self.held_by_drug, entry.get("hcpcs")),
                (self.held_by_day, entry.get("service_date")),
            ):
                label = _text(key) or NONE_LABEL
                table[label] = table.get(label, Decimal(0)) + usd
        elif outcome == "past-filing-limit":
            self.lost += usd
        if outcome in ACTIONABLE_OUTCOMES:
            days_left = entry.get("days_left")
            if not isinstance(days_left, int) or isinstance(days_left, bool):
                days_left = None
            for gap in gaps:
                if gap.get("severity") in SEVERITY_ORDER:
                    self.worklist.append(
                        WorklistRow(
                            service_date=_text(entry.get("service_date")),
                            administration=_text(entry.get("administration")),
                            outcome=outcome,
                            severity=_text(gap.get("severity")),
                            gap=_text(gap.get("code")),
                            field=_text(gap.get("field")),
                            message=_text(gap.get("message")),
                            clinician=_text(entry.get("performer")),
                            payer_type=_text(entry.get("payer_type")),
                            hcpcs=_text(entry.get("hcpcs")),
                            estimated_usd=float(usd),
                            task=_text(entry.get("task")),
                            claim=_text(entry.get("claim")),
                            days_left=days_left,
                            filing_deadline=_text(entry.get("filing_deadline")),
                        )
                    )

    def totals(self) -> dict[str, Any]:
        """The figures report.json's ``summary`` also holds, as this view counted them."""
        return {
            "administrations": self.administrations,
            "outcomes": dict(self.outcomes),
            "claims": dict(self.claims),
            "tasks": self.tasks,
            "gaps": dict(self.gaps),
            "estimated_billable_usd": float(self.billable.quantize(CENT)),
            "estimated_held_usd": float(self.held.quantize(CENT)),
            "estimated_self_pay_usd": float(self.self_pay.quantize(CENT)),
            "estimated_lost_to_filing_limit_usd": float(self.lost.quantize(CENT)),
        }

    def sorted_worklist(self) -> list[WorklistRow]:
        """The fewest days left to the filing limit first (none known: last), then errors first,
        then the most dollars, then the oldest service date."""
        return sorted(
            self.worklist,
            key=lambda r: (
                r.days_left is None,
                r.days_left if r.days_left is not None else 0,
                SEVERITY_ORDER.get(r.severity, 9),
                -r.estimated_usd,
                r.service_date,
                r.administration,
                r.gap,
            ),
        )


def top(table: Mapping[str, Decimal], n: int = TOP) -> list[dict[str, Any]]:
    """The ``n`` largest bars (ties by label), the rest summed as one "others" bar."""
    ordered = sorted(table.items(), key=lambda kv: (-kv[1], kv[0]))
    bars = [{"label": k, "usd": float(v.quantize(CENT))} for k, v in ordered[:n]]
    rest = ordered[n:]
    if rest:
        bars.append(
            {
                "label": f"(others: {len(rest)})",
                "usd": float(sum((v for _, v in rest), Decimal(0)).quantize(CENT)),
            }
        )
    return bars


def by_day(table: Mapping[str, Decimal]) -> list[dict[str, Any]]:
    return [{"label": k, "usd": float(v.quantize(CENT))} for k, v in sorted(table.items())]


def view_of_entries(entries: Iterable[Mapping[str, Any]]) -> ReportView:
    view = ReportView()
    for entry in entries:
        if isinstance(entry, Mapping):
            view.add(entry)
    return view
