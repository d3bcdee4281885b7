"""The offline job: an export folder in (sources.folder, spooled), decided patient by patient, and
``Claim.ndjson``, ``Task.ndjson`` and ``report.json`` out (sinks.folder)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..sinks.claims import build_claim, build_task
from ..decision.engine import decide_all
from ..sinks.folder import FolderSink
from ..decision.rules import Config, Rules
from ..errors import RecordProblem
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




def describe_failure(exc: BaseException) -> str:
    """An unexpected exception as its type and innermost frame: enough to find the bug, and never its
    message, which may quote a record (PHI)."""
    tb, last = exc.__traceback__, None
    while tb is not None:
        last, tb = tb, tb.tb_next
    where = f" at {Path(last.tb_frame.f_code.co_filename).name}:{last.tb_lineno}" if last else ""
    return f"{type(exc).__name__}{where}"


def decide_isolated(admins: list, ctx, rules: Rules, config: Config, on_problem) -> list:
    """decide_all for one patient; an administration the engine fails on is reported, not fatal.

    The others are still decided together, so the same-day rules still see each other.
    """
    try:
        return decide_all(admins, ctx, rules, config)
    except Exception:  # noqa: BLE001 - one bad record must not stop the run
        pass
    usable = []
    for admin in admins:
        try:
            decide_all([admin], ctx, rules, config)
            usable.append(admin)
        except Exception as exc:  # noqa: BLE001
            on_problem(RecordProblem(f"MedicationAdministration/{admin.get('id')}", None,
                                     f"could not be decided ({describe_failure(exc)}); skipped"))
    try:
        if len(usable) < len(admins):
            return decide_all(usable, ctx, rules, config)
    except Exception:  # noqa: BLE001
        pass
    for admin in usable:  # each alone is fine, together they fail: none is decided on a guess
        on_problem(RecordProblem(f"MedicationAdministration/{admin.get('id')}", None,
                                 "could not be decided with the patient's other administrations; skipped"))
    return []


def run_folder(source: str | Path, target: str | Path, rules: Rules, config: Config, created: str,
               progress: Callable[[str], None] | None = None) -> RunResult:
    """Decide every administration in ``source``; write Claims, Tasks and the report to ``target``."""
    sink = FolderSink(target, meta={"generated": created, "source": str(source), "mappings": rules.directory})
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
                    except Exception as exc:  # noqa: BLE001
                        on_problem(RecordProblem(decision.administration, None, "no Claim or Task could be built "
                                                 f"({describe_failure(exc)}); skipped"))
                        continue
                    sink.write(decision, claim, task)
                    done += 1
                    if progress and done % 5000 == 0:
                        progress(f"{done} administrations decided")
        summary = sink.commit()
    except BaseException:
        sink.abort()
        raise
    return RunResult(summary, sink.target / "report.json", sink.report.summary.errors, sink.report.summary.text())
