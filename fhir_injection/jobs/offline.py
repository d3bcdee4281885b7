"""The offline job: Bulk Data folder in, ``Claim.ndjson``, ``Task.ndjson`` and ``report.json`` out."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .. import fastjson
from ..fhir.resources import reference_of
from ..sinks.claims import build_claim, build_task
from ..decision.isolate import decide_isolated
from ..sinks.report import ReportWriter
from ..decision.rules import Config, Rules
from ..errors import RecordProblem, describe_failure
from ..sources.folder import iter_folder_checked
from ..sources.spool import Spool

log = logging.getLogger("fhir_injection")

OUTPUT_FILES = ("Claim.ndjson", "Task.ndjson", "report.json")


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


def _atomic_files(target: Path):
    """Open the outputs as temporary files; they replace the old ones only when the run completes."""
    target.mkdir(parents=True, exist_ok=True)
    handles = {name: open(target / f".{name}.partial", "w", encoding="utf-8") for name in OUTPUT_FILES}

    def commit():
        for name, fh in handles.items():
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            os.replace(target / f".{name}.partial", target / name)

    def abort():
        for name, fh in handles.items():
            fh.close()
            try:
                os.unlink(target / f".{name}.partial")
            except OSError:
                pass

    return handles, commit, abort


def run_folder(source: str | Path, target: str | Path, rules: Rules, config: Config, created: str,
               progress: Callable[[str], None] | None = None) -> RunResult:
    """Decide every administration in ``source``; write Claims, Tasks and the report to ``target``."""
    target = Path(target)
    handles, commit, abort = _atomic_files(target)
    try:
        report = ReportWriter(handles["report.json"], meta={"generated": created, "source": str(source),
                                                            "mappings": rules.directory})

        def on_problem(problem: RecordProblem) -> None:
            log.warning("skipped %s", problem)
            report.problem(problem)

        with Spool(directory=str(target)) as spool:
            spool.add_all(iter_folder_checked(source, on_problem), on_problem)
            done = 0
            for patient_id in spool.patients():
                admins, ctx = spool.for_patient(patient_id)
                for decision in decide_isolated(admins, ctx, rules, config, on_problem):
                    try:
                        claim = build_claim(decision, config, created)
                        task = build_task(decision, config, rules, created)
                    except Exception as exc:  # noqa: BLE001
                        on_problem(RecordProblem(decision.administration, None, "no Claim or Task could be built "
                                                 f"({describe_failure(exc)}); skipped"))
                        continue
                    if claim:
                        handles["Claim.ndjson"].write(fastjson.dumps(claim) + "\n")
                    if task:
                        handles["Task.ndjson"].write(fastjson.dumps(task) + "\n")
                    report.add(decision, reference_of(claim) if claim else None,
                               claim["status"] if claim else None, reference_of(task) if task else None)
                    done += 1
                    if progress and done % 5000 == 0:
                        progress(f"{done} administrations decided")
            summary = report.close()
        commit()
    except BaseException:
        abort()
        raise
    return RunResult(summary, target / "report.json", report.summary.errors, report.summary.text())
