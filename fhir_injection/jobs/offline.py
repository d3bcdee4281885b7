"""The offline job: an export folder in (sources.folder, spooled), decided patient by patient, and
``Claim.ndjson``, ``Task.ndjson`` and ``report.json`` out (sinks.folder)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..decision.isolate import decide_isolated
from ..decision.rules import Config, Rules
from ..errors import RecordProblem, describe_failure
from ..sinks.claims import build_claim, build_task
from ..sinks.folder import FolderSink
from ..sources.folder import iter_folder_checked
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

        with Spool(directory=str(sink.target)) as spool:
            spool.add_all(iter_folder_checked(source, on_problem), on_problem)
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
        summary = sink.commit()
    except BaseException:
        sink.abort()
        raise
    return RunResult(
        summary, sink.target / "report.json", sink.report.summary.errors, sink.report.summary.text()
    )
