"""The offline job: an export folder in (sources.folder, spooled), decided patient by patient, and
``Claim.ndjson``, ``Task.ndjson`` and ``report.json`` out (the ``folder`` sink, :mod:`fhir_injection.sinks.outputs`).

Administrations the export's ``deleted/`` files delete are voids (no Claim; the report names the
deletion), and the report's ``input`` lists every file of the folder with what was done with it
(folders of folders are read recursively). One resource in two files with different content is a
notice (the report's ``notices``), not a record error."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..decision.engine import decide_deleted
from ..decision.isolate import decide_isolated
from ..decision.model import Decision
from ..decision.practice import Config
from ..decision.ruleset import Rules
from ..errors import Notice, RecordProblem
from ..sinks.base import SinkOptions
from ..sinks.outputs import FolderSink
from ..sources.exportfolder import ExportFolder
from ..sources.spool import Spool

__all__ = ["RunResult", "folder_window", "run_folder"]

log = logging.getLogger("fhir_injection")


@dataclass
class RunResult:
    summary: dict[str, Any]
    report_path: Path
    problems: int
    text: str = ""  # the terminal summary a billing lead reads

    @property
    def exit_code(self) -> int:
        from ..errors import EXIT_OK, EXIT_RECORD_ERRORS

        return EXIT_RECORD_ERRORS if self.problems else EXIT_OK


def folder_window(config: Config) -> dict[str, Any]:
    """What a folder run reads (all of it) and the day filing limits are counted to."""
    if config.as_of is None:
        return {"window": "every service in the folder; no as-of day, so no filing limit judged"}
    return {
        "as_of": config.as_of.isoformat(),
        "window": f"every service in the folder, as of {config.as_of.isoformat()} (services past "
        "their payer's filing limit are reported as past-filing-limit, not billed)",
    }


def run_folder(
    source: str | Path,
    target: str | Path,
    rules: Rules,
    config: Config,
    created: str,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Decide every administration in ``source``; write Claims, Tasks and the report to ``target``."""
    sink = FolderSink.for_run(
        rules,
        config,
        SinkOptions(
            folder=target,
            meta={"generated": created, "source": str(source), "mappings": rules.directory},
        ),
    )
    report = sink.report
    try:

        def on_problem(problem: RecordProblem) -> None:
            log.warning("skipped %s", problem)
            report.problem(problem)

        def on_notice(notice: Notice) -> None:
            log.info("notice: %s", notice)
            report.notice(notice)

        def write(decisions: list[Decision], deleted_in: dict[str, str]) -> int:
            """Hand the sink a patient's decisions; report what it did. Returns how many."""
            plans, outcome = sink.plan(decisions, created)
            sink.send(plans, outcome)
            for failure in sink.failures:
                on_problem(RecordProblem(failure["record"], failure["field"], failure["message"]))
            sink.failures.clear()
            for d in decisions:
                if d.administration not in outcome:
                    continue
                info = outcome[d.administration]
                report.add(
                    d,
                    info["claim"],
                    info["claim_status"],
                    info["task"],
                    **(
                        {"deleted_in": deleted_in[d.administration]}
                        if d.administration in deleted_in
                        else {}
                    ),
                )
            return len(outcome)

        report.summary.extra.update(folder_window(config))
        folder = ExportFolder(source, on_problem)
        folder.progress = progress
        with Spool(directory=str(Path(target))) as spool:
            spool.add_all(folder.records(), on_problem, on_notice, folder.file_names)
            voids = spool.apply_deletions(folder.deletions.values())
            done = 0
            for patient_id in spool.patients():
                admins, ctx = spool.for_patient(patient_id)
                before = done
                done += write(decide_isolated(admins, ctx, rules, config, on_problem), {})
                if progress and done // 5000 > before // 5000:
                    progress(f"{done // 5000 * 5000} administrations decided")
            for admin_id, patient_id, where in voids:  # deleted at the source: withdrawn
                void = decide_deleted(admin_id, patient_id)
                write([void], {void.administration: where})
        report.input = folder.listing()
        sink.commit()
    except BaseException:
        sink.abort()
        raise
    return RunResult(
        sink.summary, Path(target) / "report.json", report.summary.errors, report.summary.text()
    )
