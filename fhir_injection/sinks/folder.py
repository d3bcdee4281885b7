"""The folder as a sink: ``Claim.ndjson``, ``Task.ndjson`` and ``report.json``, all or nothing.

The three files are written as temporary files beside their final names and renamed into place
(after an fsync) only when the run completes: a run that fails leaves the previous outputs as
they were.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from .. import fastjson
from ..decision.model import Decision
from ..errors import RecordProblem
from ..fhir.resources import reference_of
from .report import ReportWriter

OUTPUT_FILES = ("Claim.ndjson", "Task.ndjson", "report.json")


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
        self.report = ReportWriter(self._handles["report.json"], meta=meta)

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

    def commit(self) -> dict[str, Any]:
        """Close the report and put the three files in place; returns the report's summary."""
        summary = self.report.close()
        for name, fh in self._handles.items():
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            os.replace(self._partial(name), self.target / name)
        return summary

    def abort(self) -> None:
        """Drop the temporary files; the previous outputs stay."""
        for name, fh in self._handles.items():
            fh.close()
            with contextlib.suppress(OSError):
                os.unlink(self._partial(name))
