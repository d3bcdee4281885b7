"""The folder as a sink: ``Claim.ndjson``, ``Task.ndjson`` and ``report.json``, all or nothing,
with the billing team's ``report.html`` and ``worklist.csv`` and the run's line in
``history.jsonl`` (the trends the page shows).

Every file is written as a temporary file beside its final name and renamed into place (after an
fsync) only when the run completes: a run that fails leaves the previous outputs as they were.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from .. import fastjson
from ..decision.model import Decision
from ..errors import Notice, RecordProblem
from ..fhir.resources import reference_of
from .report import ReportWriter
from .trends import history_text, read_history, run_line
from .view import ReportView

OUTPUT_FILES = ("Claim.ndjson", "Task.ndjson", "report.json")
PAGE_FILES = ("report.html", "worklist.csv", "history.jsonl")  # rendered at commit


class FolderSink:
    """Claims, Tasks and the report of one offline run, committed together or not at all."""

    def __init__(self, target: str | Path, meta: dict[str, Any]):
        self.target = Path(target)
        self.target.mkdir(parents=True, exist_ok=True)
        # Open for the sink's life and closed by commit() or abort(), so no with-block.
        self._handles = {
            name: open(  # noqa: SIM115
                self._partial(name), "w", encoding="utf-8"
            )
            for name in OUTPUT_FILES
        }
        self.view = ReportView()
        self.report = ReportWriter(self._handles["report.json"], meta=meta, view=self.view)

    def _partial(self, name: str) -> Path:
        return self.target / f".{name}.partial"

    def write(
        self, decision: Decision, claim: dict | None, task: dict | None, **extra: Any
    ) -> None:
        """One administration: its Claim and Task (when it has them) and its report entry (with
        ``extra`` keys, e.g. ``deleted_in``)."""
        if claim:
            self._handles["Claim.ndjson"].write(fastjson.dumps(claim) + "\n")
        if task:
            self._handles["Task.ndjson"].write(fastjson.dumps(task) + "\n")
        self.report.add(
            decision,
            reference_of(claim) if claim else None,
            claim["status"] if claim else None,
            reference_of(task) if task else None,
            **extra,
        )

    def problem(self, problem: RecordProblem) -> None:
        self.report.problem(problem)

    def notice(self, notice: Notice) -> None:
        self.report.notice(notice)

    def commit(self) -> dict[str, Any]:
        """Close the report, render the page, the worklist and the history, and put every file in
        place; returns the report's summary."""
        from .html import page_context, render_html
        from .worklist import write_worklist

        summary = self.report.close()
        meta = self.report.meta
        runs = read_history(self.target / "history.jsonl")
        runs.append(run_line(summary, str(meta.get("generated") or "")))
        page = render_html(page_context(self.view, meta, summary, runs))
        self._partial("report.html").write_text(page, encoding="utf-8")
        with open(self._partial("worklist.csv"), "w", encoding="utf-8-sig", newline="") as fh:
            write_worklist(fh, self.view.sorted_worklist())  # a folder run has no server to link
        self._partial("history.jsonl").write_text(history_text(runs), encoding="utf-8")
        for fh in self._handles.values():
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        for name in (*OUTPUT_FILES, *PAGE_FILES):
            os.replace(self._partial(name), self.target / name)
        return summary

    def abort(self) -> None:
        """Drop the temporary files; the previous outputs stay."""
        for fh in self._handles.values():
            fh.close()
        for name in (*OUTPUT_FILES, *PAGE_FILES):
            with contextlib.suppress(OSError):
                os.unlink(self._partial(name))
