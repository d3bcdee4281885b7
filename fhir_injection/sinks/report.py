"""The billing report: ``report.json`` (a contract other tools read) and a terminal summary.

``report.json``::

    {"administrations": [{"administration": "MedicationAdministration/<id>",
                          "outcome": "claim"|"held"|"not-96372"|"not-billable"|"void"|
                                     "past-filing-limit",
                          "procedure": "96372"|...|null, "claim": "Claim/<id>"|null,
                          "additional_procedures": [{"code": "96361", "units": 1}] (add-on hours),
                          "performer": "Practitioner/<id>"|null (who gave it),
                          "rendering": "Practitioner/<id>"|null (the rendering provider),
                          "gaps": [{"code", "severity", "message", "field", "rule"}],
                          "basis": {fact: {"from": record|rule|practice|unknown, "how"}},
                          "filing_limit": "12m"|"365d"|"none"|"unknown: ..."|null,
                          "filing_deadline": "YYYY-MM-DD"|null (the payer's last day to file),
                          "days_left": int|null (from the run's as-of day; negative: past), ...}],
     "errors": [{"record", "field", "message"}],
     "notices": [{"record", "files", "message"}],   # not errors: e.g. one resource, two files
     "input": {"files": [{"file", "role", "type", "records", "errors", "reason", ...}],
               "roles": {...}, "runs": [...]},          # folder runs only
     "summary": {...}}

Entries are written as they are decided, so the report never needs the whole
run in memory. Nothing in it names a person: ids and codes only.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from typing import IO, Any

from .. import fastjson
from ..decision.model import CENT, Decision
from ..decision.ruleset import OUTCOMES
from ..errors import Notice, RecordProblem
from .view import ReportView

__all__ = ["ReportWriter", "Summary", "decision_entry", "summary_text"]


def decision_entry(
    decision: Decision, claim_ref: str | None, task_ref: str | None
) -> dict[str, Any]:
    """One report entry. Its only float is ``estimated_usd`` (:class:`ReportWriter` relies on it)."""
    drug = next((line for line in decision.lines if line.kind == "drug"), None)
    admin_line = next((line for line in decision.lines if line.kind == "administration"), None)
    waste = next((line for line in decision.lines if line.kind == "waste"), None)
    package = decision.package
    return {
        "administration": decision.administration,
        "version": decision.version,
        "outcome": decision.outcome,
        "procedure": decision.procedure,
        "additional_procedures": [{"code": code, "units": n} for code, n in decision.additional],
        "claim": claim_ref,
        "claim_status": decision.claim_status if claim_ref else None,
        "task": task_ref,
        "patient": decision.patient,
        "encounter": decision.encounter,
        "service_date": decision.service_date,
        "payer_type": decision.payer_type,
        "place_of_service": decision.place_of_service,
        "performer": decision.performer,
        "rendering": decision.rendering,
        "hcpcs": decision.drug,
        "units": decision.units,
        "jw_units": waste.quantity if waste else None,
        "package": {
            "amount": str(package.amount),
            "unit": package.unit,
            "container": package.container,
            "source": package.source,
        }
        if package is not None
        else None,
        "ndc": drug.ndc if drug else decision.extra.get("ndc"),
        "modifiers": {
            "96372": list(admin_line.modifiers) if admin_line else [],
            "drug": list(drug.modifiers) if drug else [],
        },
        "diagnoses": [d.code for d in decision.diagnoses],
        "estimated_usd": float(decision.estimated_amount.quantize(CENT)),
        "gaps": [g.as_dict() for g in decision.gaps],
        "basis": {fact: {"from": kind, "how": how} for fact, kind, how in decision.basis},
        "filing_limit": decision.filing_limit,
        "filing_deadline": decision.filing_deadline,
        "days_left": decision.days_left,
        **({"no_claim_reason": decision.claim_blocker} if decision.claim_blocker else {}),
    }


class Summary:
    """Counts that grow with the run, not with its size."""

    def __init__(self):
        self.outcomes: Counter = Counter({o: 0 for o in OUTCOMES})
        self.gaps: Counter = Counter()
        self.gap_severity: dict[str, str] = {}
        self.claims: Counter = Counter()
        self.tasks = 0
        self.billable = Decimal(0)
        self.held = Decimal(0)
        self.self_pay = Decimal(0)  # claims to the patient (no insurance): not payer-billable
        self.lost = Decimal(0)  # past the payer's filing limit: never billed, nobody can fix it
        self.errors = 0
        self.notices = 0
        self.administrations = 0
        self.extra: dict[str, Any] = {}

    def add(self, decision: Decision, claim_status: str | None, task: bool) -> None:
        self.administrations += 1
        self.outcomes[decision.outcome] += 1
        for gap in decision.gaps:
            self.gaps[gap.code] += 1
            self.gap_severity[gap.code] = gap.severity
        if claim_status:
            self.claims[claim_status] += 1
        self.tasks += bool(task)
        if decision.outcome == "claim" and decision.payer_type == "self-pay":
            self.self_pay += decision.estimated_amount
        elif decision.outcome == "claim":
            self.billable += decision.estimated_amount
        elif decision.outcome == "held":
            self.held += decision.estimated_amount
        elif decision.outcome == "past-filing-limit":
            self.lost += decision.estimated_amount

    def as_dict(self) -> dict[str, Any]:
        return {
            "administrations": self.administrations,
            "outcomes": dict(self.outcomes),
            "claims": dict(sorted(self.claims.items())),
            "tasks": self.tasks,
            "gaps": dict(sorted(self.gaps.items(), key=lambda kv: (-kv[1], kv[0]))),
            "estimated_billable_usd": float(self.billable.quantize(CENT)),
            "estimated_held_usd": float(self.held.quantize(CENT)),
            "estimated_self_pay_usd": float(self.self_pay.quantize(CENT)),
            "estimated_lost_to_filing_limit_usd": float(self.lost.quantize(CENT)),
            "record_errors": self.errors,
            **({"notices": self.notices} if self.notices else {}),
            **self.extra,
        }

    def text(self) -> str:
        """The few lines a billing lead reads on the terminal (:func:`summary_text`)."""
        # The top gaps as counted (ties in the order first seen), not in the report's order.
        return summary_text(
            {**self.as_dict(), "gaps": dict(self.gaps.most_common(6))}, self.gap_severity
        )


_ROLES = (
    ("records", "of records"),
    ("deleted", "of deletions"),
    ("error", "of export errors"),
    ("manifest", "manifest"),
    ("skipped", "not read"),
)


def summary_text(summary: Mapping[str, Any], severity: Mapping[str, str] | None = None) -> str:
    """The terminal summary of a run, from its report's ``summary``: outcomes, Claims, money, top
    gaps, and for a server target what was posted and what it cost in requests."""
    o = summary["outcomes"]
    claims = summary.get("claims") or {}
    lines = [
        f"{summary['administrations']} administrations: {o['claim']} claim, {o['held']} held, "
        f"{o['not-96372']} not-96372, {o['not-billable']} not-billable, {o['void']} void"
        + (
            f", {o['past-filing-limit']} past the filing limit"
            if o.get("past-filing-limit")
            else ""
        ),
        f"Claims: {', '.join(f'{n} {s}' for s, n in sorted(claims.items())) or 'none'}; "
        f"gap Tasks: {summary.get('tasks', 0)}",
        f"Estimated: ${summary['estimated_billable_usd']:,.2f} billable, "
        f"${summary['estimated_held_usd']:,.2f} held by documentation gaps"
        + (
            f", ${summary['estimated_self_pay_usd']:,.2f} to self-pay patients"
            if summary.get("estimated_self_pay_usd")
            else ""
        )
        + (
            f", ${summary['estimated_lost_to_filing_limit_usd']:,.2f} lost to filing limits"
            if summary.get("estimated_lost_to_filing_limit_usd")
            else ""
        ),
    ]
    if summary.get("window"):  # which services the run read, and why (a first sync's window)
        lines.append(f"Window: {summary['window']}")
    gaps = summary.get("gaps") or {}
    if gaps:
        severity = severity or {}
        top = ", ".join(
            f"{code} {n}" + (f" ({severity[code]})" if code in severity else "")
            for code, n in list(gaps.items())[:6]
        )
        lines.append(f"Top gaps: {top}")
    files = summary.get("files") or {}
    if set(files) - {"records"}:  # the folder held more than record files: say what was done
        lines.append(
            "Files: "
            + ", ".join(f"{files[role]} {words}" for role, words in _ROLES if files.get(role))
            + " (see 'input' in the report)"
        )
    if summary.get("record_errors"):
        lines.append(
            f"Records that could not be read: {summary['record_errors']} (see 'errors' in the report)"
        )
    if summary.get("notices"):
        lines.append(f"Notices: {summary['notices']} (see 'notices' in the report)")
    posted = summary.get("posted")
    if posted:  # a server target: what this run wrote there
        c, t = posted["claims"], posted["tasks"]
        lines.append(
            f"Posted Claims: {c['created']} created, {c['updated']} updated, {c['cancelled']} "
            f"cancelled, {c['unchanged']} unchanged, {c['failed']} failed; Tasks: {t['created']} "
            f"created, {t['updated']} updated, {t['completed']} completed, {t['failed']} failed"
        )
    http = summary.get("http")
    if http:
        pages = summary.get("pages")
        lines.append(
            f"HTTP: {http.get('requests', 0)} requests"
            + (f" over {pages} pages" if pages is not None else "")
            + f", {http.get('retries', 0)} retries"
            + (f"; mark {summary['mark']}" if "mark" in summary else "")
        )
    return "\n".join(lines)


class ReportWriter:
    """Streams ``report.json``: entries first, then errors, then the summary."""

    def __init__(
        self, fh: IO[str], meta: dict[str, Any] | None = None, view: ReportView | None = None
    ):
        self.fh = fh
        self.meta = dict(meta or {})
        self.summary = Summary()
        self.view = view  # the HTML report's sums and worklist, fed entry by entry
        self._first = True
        self._errors: list[dict] = []
        self._notices: list[dict] = []
        self.input: dict[str, Any] | None = None  # what the source folder held (offline runs)
        fh.write("{")
        for key, value in (meta or {}).items():
            fh.write(f"{json.dumps(key)}: {json.dumps(value)},\n")
        fh.write('"administrations": [\n')

    def add(
        self,
        decision: Decision,
        claim_ref: str | None,
        claim_status: str | None,
        task_ref: str | None,
        **extra: Any,
    ) -> None:
        entry = decision_entry(decision, claim_ref, task_ref)
        if claim_status:
            entry["claim_status"] = claim_status
        entry.update(extra)
        finite = not extra and math.isfinite(entry["estimated_usd"])
        self.fh.write(("" if self._first else ",\n") + fastjson.dumps(entry, floats_finite=finite))
        if self.view is not None:
            self.view.add(entry)
        self._first = False
        self.summary.add(decision, claim_status if claim_ref else None, task_ref is not None)

    def problem(self, problem: RecordProblem) -> None:
        self.summary.errors += 1
        if len(self._errors) < 10000:
            self._errors.append(problem.as_dict())

    def notice(self, notice: Notice) -> None:
        self.summary.notices += 1
        if len(self._notices) < 10000:
            self._notices.append(notice.as_dict())

    def close(self) -> dict[str, Any]:
        self.fh.write("\n],\n")
        self.fh.write('"errors": ' + json.dumps(self._errors, indent=None) + ",\n")
        self.fh.write('"notices": ' + json.dumps(self._notices, ensure_ascii=True) + ",\n")
        if self.input is not None:
            self.fh.write('"input": ' + json.dumps(self.input, ensure_ascii=True) + ",\n")
            self.summary.extra["files"] = self.input.get("roles", {})
        summary = self.summary.as_dict()
        if self.summary.errors > len(self._errors):
            summary["errors_not_listed"] = self.summary.errors - len(self._errors)
        self.fh.write('"summary": ' + json.dumps(summary, indent=2) + "\n}\n")
        return summary
