"""The offline job: an export folder in (sources.folder, spooled), decided patient by patient, and
``Claim.ndjson``, ``Task.ndjson`` and ``report.json`` out (sinks.folder).

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
from ..decision.rules import Config, Rules
from ..errors import Notice, RecordProblem, describe_failure
from ..sinks.claims import build_claim, build_task
from ..sinks.folder import FolderSink
from ..sources.export import ExportFolder
from ..sources.spool import Spool

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
    sink = FolderSink(
        target, meta={"generated": created, "source": str(source), "mappings": rules.directory}
    )
    try:

        def on_problem(problem: RecordProblem) -> None:
            log.warning("skipped %s", problem)
            sink.problem(problem)

        def on_notice(notice: Notice) -> None:
            log.info("notice: %s", notice)
            sink.notice(notice)

        sink.report.summary.extra.update(folder_window(config))
        folder = ExportFolder(source, on_problem)
        folder.progress = progress
        with Spool(directory=str(sink.target)) as spool:
            spool.add_all(folder.records(), on_problem, on_notice, folder.file_names)
            voids = spool.apply_deletions(folder.deletions.values())
            done = 0
            for patient_id in spool.patients():
                admins, ctx = spool.for_patient(patient_id)
                for decision in decide_isolated(admins, ctx, rules, config, on_problem):
                    try:
                        claim = build_claim(decision, config, created)
                        task = build_task(decision, config, rules, created)
                    except Exception as exc:
                        on_problem(
                            RecordProblem(
                                decision.administration,
                                None,
                                "no Claim or Task could be built "
                                f"({describe_failure(exc)}); skipped",
                            )
                        )
                        continue
                    sink.write(decision, claim, task)
                    done += 1
                    if progress and done % 5000 == 0:
                        progress(f"{done} administrations decided")
            for admin_id, patient_id, where in voids:  # deleted at the source: withdrawn
                sink.write(decide_deleted(admin_id, patient_id), None, None, deleted_in=where)
        sink.report.input = folder.listing()
        summary = sink.commit()
    except BaseException:
        sink.abort()
        raise
    return RunResult(
        summary, sink.target / "report.json", sink.report.summary.errors, sink.report.summary.text()
    )
