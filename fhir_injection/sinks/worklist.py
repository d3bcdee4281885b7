"""``worklist.csv``: the coder worklist for teams that work in spreadsheets, one row per gap.

Shaped for Excel: UTF-8 with a byte-order mark (so Excel reads it as UTF-8), CRLF line ends and
RFC 4180 quoting from the csv module. A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or
a carriage return is a formula to a spreadsheet (OWASP "CSV injection"): such a cell gets a
leading ``'`` so it is shown as text. Data from a FHIR server is never trusted to be harmless.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO
from urllib.parse import quote

from .view import WorklistRow

__all__ = ["COLUMNS", "neutralise", "resource_url", "write_worklist"]

COLUMNS = (
    "days_left",
    "filing_deadline",
    "service_date",
    "administration",
    "outcome",
    "severity",
    "gap",
    "field",
    "what_to_fix",
    "clinician",
    "payer_type",
    "hcpcs",
    "estimated_usd",
    "task",
    "claim",
    "administration_url",
    "task_url",
)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """A text cell a spreadsheet will not evaluate."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def resource_url(base: str | None, reference: str) -> str:
    """``base/Type/id`` with the id URL-encoded, or "" without a base or a ``Type/id``."""
    if not base or "/" not in reference:
        return ""
    rtype, rid = reference.split("/", 1)
    if not rtype.isalpha() or not rid:
        return ""
    return f"{base}/{rtype}/{quote(rid, safe='')}"


def write_worklist(
    fh: IO[str],
    rows: Iterable[WorklistRow],
    source_base: str | None = None,
    target_base: str | None = None,
) -> int:
    """Write the worklist to ``fh`` (opened with ``newline=""`` and ``encoding="utf-8-sig"``);
    returns the number of rows. Links need the server bases (validated by ``server_base``)."""
    writer = csv.writer(fh, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    n = 0
    for r in rows:
        cells = [
            "" if r.days_left is None else str(r.days_left),
            r.filing_deadline,
            r.service_date,
            r.administration,
            r.outcome,
            r.severity,
            r.gap,
            r.field,
            r.message,
            r.clinician,
            r.payer_type,
            r.hcpcs,
            f"{r.estimated_usd:.2f}",
            r.task,
            r.claim,
            resource_url(source_base, r.administration),
            resource_url(target_base, r.task),
        ]
        writer.writerow([neutralise(c) for c in cells])
        n += 1
    return n
