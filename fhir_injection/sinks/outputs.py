"""The ``folder`` sink, a folder run's outputs: ``Claim.ndjson``, ``Task.ndjson`` and ``report.json``, all or nothing,
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

from ..decision.model import Decision
from ..decision.practice import Config
from ..decision.ruleset import Rules
from ..errors import ConfigError, Notice, RecordProblem, describe_failure
from .base import Sink, SinkOptions, sink
from .claims import build_claim, build_task
from .report import ReportWriter
from .trends import history_text, read_history, run_line
from .view import ReportView

__all__ = ["FolderSink", "OUTPUT_FILES", "PAGE_FILES"]

OUTPUT_FILES = ("Claim.ndjson", "Task.ndjson", "report.json")
PAGE_FILES = ("report.html", "worklist.csv", "history.jsonl")  # rendered at commit


@sink
class FolderSink(Sink):
    """Claims, Tasks and the report of one offline run, committed together or not at all.

    The run writes the report's entries (:attr:`report`) from what :meth:`plan` says; the sink
    closes it and renders the pages at :meth:`commit`.
    """

    name = "folder"

    @classmethod
    def for_run(cls, rules: Rules, config: Config, options: SinkOptions) -> FolderSink:
        """A folder run's sink (it reads ``folder`` and ``meta``, the report's header)."""
        if options.folder is None:
            raise ConfigError("the folder sink needs a folder to write to")
        return cls(options.folder, options.meta, rules, config)

    def __init__(self, target: str | Path, meta: dict[str, Any], rules: Rules, config: Config):
        super().__init__()
        self.rules = rules
        self.config = config
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
        self.summary: dict[str, Any] = {}  # the report's summary, once committed

    def _partial(self, name: str) -> Path:
        return self.target / f".{name}.partial"

    def plan(
        self, decisions: list[Decision], created: str, primary: set[str] | None = None
    ) -> tuple[list[Any], dict[str, dict[str, Any]]]:
        """Write each decision's Claim and Task (when it has them); a decision whose Claim or Task
        cannot be built is left out, with its reason in :attr:`failures`."""
        outcome: dict[str, dict[str, Any]] = {}
        for decision in decisions:
            if primary is not None and decision.administration not in primary:
                continue
            try:
                claim = build_claim(decision, self.config, created)
                task = build_task(decision, self.config, self.rules, created)
            except Exception as exc:
                self.failures.append(
                    {
                        "record": decision.administration,
                        "field": None,
                        "message": "no Claim or Task could be built "
                        f"({describe_failure(exc)}); skipped",
                    }
                )
                continue
            outcome[decision.administration] = self.file(self._handles, claim, task)
        return [], outcome

    def problem(self, problem: RecordProblem) -> None:
        self.report.problem(problem)

    def notice(self, notice: Notice) -> None:
        self.report.notice(notice)

    def commit(self) -> None:
        """Close the report, render the page, the worklist and the history, and put every file in
        place; the report's summary is then :attr:`summary`."""
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
        self.summary = summary

    def abort(self) -> None:
        """Drop the temporary files; the previous outputs stay."""
        for fh in self._handles.values():
            fh.close()
        for name in (*OUTPUT_FILES, *PAGE_FILES):
            with contextlib.suppress(OSError):
                os.unlink(self._partial(name))
