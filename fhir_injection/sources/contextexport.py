"""The crawl's context from a Bulk Data ``$export``: the cohort and what administrations point to.

Oracle Health and Epic refuse population searches of MedicationAdministration and do not export
it either (``../shared/domain/real-world.md``), but they do export the context: Patient, Encounter,
Coverage, Condition and the rest at Group level. So the crawl (``--pull auto`` where the population
search is refused, or ``--pull crawl`` with ``--group ID`` or a server that lists a Group-level
``$export``) first runs a Group (``--group``) or Patient-level export of :data:`CONTEXT_TYPES`;
its Patients are the crawl's cohort (unless ``--patients``/``--cohort`` give one), and each crawl
page's look-ups are answered from it first (:func:`~.exportpull.fill_resolver`), so the server is
asked only for what the export lacked.

State (the source's entry of the state file, under ``exports``): the status URL while the server
works (a killed run resumes that export), ``downloaded`` once the folder is complete (a run killed
while crawling reads the same folder again), and when a crawl has gone through the whole cohort
the manifest's ``transactionTime`` as the next ``_since`` (incremental: then Patient-scoped
look-ups go to the server, as unchanged resources are not in the export).

When the server refuses the export (400/403/404/405/422/501, an OperationOutcome instead of a
202, a failed job, or a 429 whose ``Retry-After`` is longer than we wait: Epic exports a group once
a day) the crawl goes on with look-ups by reference and the reason says so.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import BulkExportError, FatalNetworkError, OnProblem
from ..fhir.client import FhirClient
from ..fhir.resources import USED_TYPES
from .bulk import MAX_POLL_WAIT, BulkExport, ExportRequest, ExportResult
from .exportfolder import ExportFolder
from .exportpull import fill_resolver
from .resolver import MA, Resolver
from .spool import Spool

log = logging.getLogger("fhir_injection.sync")

# What a crawl page needs besides the administrations (no vendor exports those).
CONTEXT_TYPES = tuple(sorted(USED_TYPES - {MA}))
# A kick-off answered with one of these: the server does not offer this export to us.
REFUSED = (400, 403, 404, 405, 406, 422, 429, 501)


def export_listed(client: FhirClient, rtype: str | None = None) -> bool:
    """Does the CapabilityStatement list an ``export`` operation (system level when ``rtype`` is
    None, else on that resource type)?"""
    for rest in client.capabilities().get("rest") or []:
        if rtype is None:
            ops = rest.get("operation") or []
        else:
            ops = [
                o
                for r in rest.get("resource") or []
                if r.get("type") == rtype
                for o in r.get("operation") or []
            ]
        if any(isinstance(o, dict) and o.get("name") == "export" for o in ops):
            return True
    return False


def plan_request(
    client: FhirClient, group: str | None, auto: bool
) -> tuple[ExportRequest | None, str]:
    """The context export to run (or None) and why, without a request to the server.

    ``--group ID``: that Group. Otherwise a Patient-level export where the CapabilityStatement
    lists one (``auto``), or lists a Group-level export (``--pull crawl``: we know of no group, and
    a server exporting groups usually exports all patients too)."""
    if group:
        return ExportRequest("group", group=group, types=CONTEXT_TYPES), f"Group/{group}/$export"
    group_level = export_listed(client, "Group")
    if group_level or (auto and (export_listed(client, "Patient") or export_listed(client))):
        return ExportRequest("patient", types=CONTEXT_TYPES), "Patient/$export"
    if auto:
        return None, "the CapabilityStatement lists no $export: context by look-ups"
    return None, ""


class ContextExport:
    """One crawl's context export: run or resume it, read it, feed the resolver, finish it."""

    def __init__(
        self,
        client: FhirClient,
        request: ExportRequest,
        folder: Path,
        on_problem: OnProblem,
        *,
        full: bool = False,
        progress: Callable[[str], None] | None = None,
        max_poll_wait: float = MAX_POLL_WAIT,
    ):
        self.client = client
        self.request = request
        self.folder = folder
        self.on_problem = on_problem
        self.full = full
        self.progress = progress or (lambda message: log.info("%s", message))
        self.max_poll_wait = max_poll_wait
        self.memory: dict[str, Any] = {}
        self.save: Callable[[], None] = lambda: None
        self.spool: Spool | None = None
        self.used = ""  # what the crawl's context came from, for the report
        self.outcome = ""  # what happened to the export, for the reason
        self.since: str | None = None  # the export's _since (None: a full export)
        self.result: ExportResult | None = None
        self._whole: set[str] = set()

    def bind(self, memory: dict[str, Any], save: Callable[[], None]) -> None:
        self.memory, self.save = memory, save

    def _job(self) -> dict[str, Any]:
        return self.memory.setdefault("exports", {}).setdefault(self.request.key, {})

    def open(self) -> bool:
        """Export (or resume, or reuse an interrupted run's download) and read the folder into a
        spool; False, with :attr:`outcome` saying why, when the server refused the export.

        A kick-off refused with a 400 whose OperationOutcome names some of our types (HAPI: "types
        [Medication, Location] are invalid for this type of export") is sent again once without
        them, and the types the server takes are kept for the next runs."""
        path = self.request.path
        allowed = (self.memory.get("context_types") or {}).get(path)
        if isinstance(allowed, list) and allowed:
            self._use_types(tuple(t for t in self.request.types if t in allowed))
        job = self._job()
        done = job.get("downloaded")
        if done and (self.folder / "manifest.json").is_file():
            self.since = job.get("downloaded_since")
            self.outcome = f"context from {path} (downloaded by an interrupted run, as of {done})"
        else:
            result = self._export(job)
            if result is None:
                return False
            self.result = result
            self.progress(result.summary())
            self.since = result.request_since
            job = self._job()
            job.update(downloaded=result.manifest.transaction_time, downloaded_since=self.since)
            self.save()
            kind = f"incremental since {self.since}" if self.since else "full"
            self.outcome = f"context from {path} ({kind})"
        self.used = path
        self._read()
        return True

    def _use_types(self, types: tuple[str, ...]) -> None:
        self.request = ExportRequest(self.request.level, group=self.request.group, types=types)

    def _export(self, job: dict[str, Any]) -> ExportResult | None:
        path = self.request.path
        if not job.get("status_url") and self.folder.exists():
            shutil.rmtree(self.folder)  # a download of an export that is gone
        since = None if self.full else job.get("since")
        exporter = BulkExport(
            self.client,
            self.memory,
            self.save,
            progress=self.progress,
            max_poll_wait=self.max_poll_wait,
        )
        for attempt in range(2):
            request = self.request
            try:
                return exporter.run(
                    ExportRequest(
                        request.level, group=request.group, types=request.types, since=since
                    ),
                    self.folder,
                    advance=False,
                )
            except (BulkExportError, FatalNetworkError) as exc:
                named = [
                    t
                    for t in request.types
                    if re.search(rf"(?<![A-Za-z]){t}(?![A-Za-z])", exc.outcome or "")
                ]
                if attempt == 0 and exc.status == 400 and 0 < len(named) < len(request.types):
                    exports = self.memory.get("exports") or {}
                    if not exports.get(request.key):
                        exports.pop(request.key, None)  # nothing of that request to keep
                    self._use_types(tuple(t for t in request.types if t not in named))
                    self.memory.setdefault("context_types", {})[path] = list(self.request.types)
                    self.save()
                    self.progress(
                        f"context: {path} does not export {', '.join(named)}; "
                        "exporting the other types"
                    )
                    since = None if self.full else self._job().get("since")
                    continue
                if not self._refused(exc):
                    raise
                shutil.rmtree(self.folder, ignore_errors=True)
                self.outcome = f"{path} refused ({self._why(exc)}): context by look-ups"
                self.used = "look-ups"
                self.progress(f"context: {self.outcome}")
                return None
        return None  # not reached: the second attempt returns or raises

    @staticmethod
    def _refused(exc: FatalNetworkError) -> bool:
        if isinstance(exc, BulkExportError) and exc.status is None:
            return exc.job_over  # no 202, or a failed job: the server will not give it to us
        return exc.status in REFUSED or (isinstance(exc, BulkExportError) and exc.job_over)

    @staticmethod
    def _why(exc: FatalNetworkError) -> str:
        if exc.status == 429:
            return "HTTP 429 with a Retry-After longer than we wait: an export once a day?"
        if exc.status is not None:
            return f"HTTP {exc.status}"
        return "no export started" if "did not start" in str(exc) else "the export failed"

    def _read(self) -> None:
        folder = ExportFolder(self.folder, self.on_problem)
        self.spool = Spool(directory=str(self.folder.parent))
        self.spool.add_all(folder.records(), self.on_problem)
        errors = (self.folder / "error").is_dir() and any((self.folder / "error").iterdir())
        # a full export without error files holds each exported patient's coverages etc. whole
        self._whole = set() if self.since or errors else set(self.request.types)

    def patients(self) -> list[str]:
        """The ids of the exported Patients (the crawl's cohort), in id order."""
        if self.spool is None:
            return []
        return [str(r["id"]) for r in self.spool.of_type("Patient") if r.get("id")]

    def fill(self, resolver: Resolver, admins: list[dict]) -> None:
        """Answer what these administrations need from the export before the server is asked."""
        if self.spool is not None and admins:
            fill_resolver(resolver, self.spool, admins, lambda rtype: rtype in self._whole)

    def finish(self) -> None:
        """The crawl went through the whole cohort: the export's time is the next ``_since``."""
        job = self._job()
        if job.get("downloaded"):
            job["since"] = job.pop("downloaded")
            job.pop("downloaded_since", None)
            self.save()
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()
            self.spool = None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"context_from": self.used, "context_export": self.request.path}
        if self.result is not None:
            out["export"] = {
                "files": self.result.files,
                "records": dict(sorted(self.result.lines.items())),
                "seconds": round(self.result.seconds, 1),
                "polls": self.result.polls,
                "since": self.since,
            }
        return out


__all__ = ["CONTEXT_TYPES", "ContextExport", "REFUSED", "export_listed", "plan_request"]
