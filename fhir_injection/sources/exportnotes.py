"""What an export says besides its resources: ``deleted/`` (the resources deleted since the last
export, as ``DELETE Type/id`` entries of transaction Bundles, Bulk Data v2) and ``error/``
(OperationOutcomes about what the exporter could not export). A bad line is a
:class:`RecordProblem` naming the file and line; an error's own words are cut to
:data:`EXCERPT` characters on one line, never the OperationOutcome itself (PHI).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import RecordProblem
from ..fhir.resources import FHIR_TYPE_NAMES, MAPPING, USED_TYPES, split_reference
from .ndjson import json_lines
from .records import valid_id

__all__ = ["EXCERPT", "Deletion", "read_deleted", "read_errors"]

EXCERPT = 200  # characters of an export error's diagnostics that are reported


@dataclass(frozen=True)
class Deletion:
    """A ``DELETE Type/id`` entry of a ``deleted/`` file: in which run, and where it was read."""

    type: str
    id: str
    run: int
    where: str


def _excerpt(text: object) -> str:
    """An export error's own words, on one line and cut to :data:`EXCERPT` characters."""
    if not isinstance(text, str) or not text.strip():
        return "no diagnostics given"
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT else flat[: EXCERPT - 1] + "…"


def read_deleted(
    path: Path,
    rel: str,
    run: int,
    problem: Callable[[RecordProblem], None],
    deletions: dict[tuple[str, str], Deletion],
) -> tuple[int, Counter]:
    """A Bulk Data ``deleted`` file: each line a transaction Bundle of ``DELETE Type/id`` entries,
    each used type's kept in ``deletions`` (a later run's over an earlier one's). (Bundles read,
    entries by type.)"""
    bundles = 0
    by_type: Counter = Counter()
    for where, bundle in json_lines(path, rel, problem):
        if not isinstance(bundle, MAPPING) or bundle.get("resourceType") != "Bundle":
            problem(
                RecordProblem(
                    where, "resourceType", "a deleted file holds Bundles; this line is skipped"
                )
            )
            continue
        bundles += 1
        entries = bundle.get("entry")
        if not isinstance(entries, list):
            problem(RecordProblem(where, "Bundle.entry", "not a list; skipped"))
            continue
        for index, entry in enumerate(entries):
            at = f"{where} entry[{index}]"
            request = entry.get("request") if isinstance(entry, MAPPING) else None
            request = request if isinstance(request, MAPPING) else {}
            if request.get("method") != "DELETE":
                problem(RecordProblem(at, "request.method", "is not DELETE; the entry is skipped"))
                continue
            pair = split_reference(request.get("url"))
            if pair is None or pair[0] not in FHIR_TYPE_NAMES or not valid_id(pair[1]):
                problem(
                    RecordProblem(
                        at, "request.url", "is not Type/id of a resource; the entry is skipped"
                    )
                )
                continue
            by_type[pair[0]] += 1
            if pair[0] in USED_TYPES:
                old = deletions.get(pair)
                if old is None or old.run < run:
                    deletions[pair] = Deletion(pair[0], pair[1], run, at)
    return bundles, by_type


def read_errors(path: Path, rel: str, problem: Callable[[RecordProblem], None]) -> tuple[int, int]:
    """Bulk Data ``error`` files: OperationOutcomes about what the export could not do.

    Each issue of severity fatal or error (or none) is reported as an error naming the file and
    line, with its code and its diagnostics (else ``details.text``). PHI: these describe export
    failures and are written by the exporting server ("timed out", "Patient/123 not
    accessible"), normally ids and codes; the text is still the server's free text, so only
    its first 200 characters, on one line, are reported (report ``errors`` and the warning
    log), never the OperationOutcome itself. Warnings and information are only counted.
    (OperationOutcomes read, warnings and information.)
    """
    outcomes = notes = 0
    for where, outcome in json_lines(path, rel, problem):
        if not isinstance(outcome, MAPPING) or outcome.get("resourceType") != "OperationOutcome":
            problem(
                RecordProblem(
                    where,
                    "resourceType",
                    "an error file holds OperationOutcomes; this line is skipped",
                )
            )
            continue
        outcomes += 1
        issues = outcome.get("issue")
        issues = [i for i in issues if isinstance(i, MAPPING)] if isinstance(issues, list) else []
        if not issues:
            problem(
                RecordProblem(
                    where, "OperationOutcome.issue", "the exporter reported an error (no issue)"
                )
            )
        for issue in issues:
            severity, code = issue.get("severity"), issue.get("code")
            if severity in ("warning", "information"):
                notes += 1
                continue
            details = issue.get("details")
            text = issue.get("diagnostics") or (
                details.get("text") if isinstance(details, MAPPING) else None
            )
            label = ", ".join(str(v) for v in (severity, code) if isinstance(v, str)) or "no code"
            problem(
                RecordProblem(
                    where,
                    "OperationOutcome.issue",
                    f"the exporter reported an export error ({label}): {_excerpt(text)}",
                )
            )
    return outcomes, notes
