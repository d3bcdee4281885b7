"""The ``export`` pull: a Bulk Data ``$export`` of the source, decided like a folder, posted by sync.

``sync --source URL --pull export`` runs a system-level export of the types the decision reads
(:class:`~.bulk.BulkExport`) into a spool folder next to the state file
(``<state>.export/``), reads it with :class:`~.exportfolder.ExportFolder` into a
:class:`~.spool.Spool`, and hands the sync whole patients at a time, about a page's worth of
administrations each. What each page's administrations point to is filled into the run's
:class:`~.resolver.Resolver` from the spool, so the usual :func:`~.resolver.gather` asks the server
only for what the export lacks (resources outside the patients' compartment, and, after an
incremental export, whatever did not change); the Claims and Tasks go through the usual
exactly-once writer. Administrations the export's ``deleted`` files list become voids
(:meth:`ExportPull.withdrawn`).

State (the source's entry of the state file): the export's status URL while the server works (a
killed run resumes it), then ``downloaded`` (the folder is complete: a run killed while posting
reads it again rather than exporting again), and only when every page is posted the manifest's
``transactionTime`` as the next ``_since``.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import OnProblem
from ..fhir.client import FhirClient, Lookup
from ..fhir.resources import FOUND_BY_PATIENT, USED_TYPES, identifiers_of, token_matches
from .base import Pull, PullOptions, pull
from .bulk import BulkExport, ExportRequest
from .exportfolder import ExportFolder
from .resolver import Resolver
from .spool import Spool

__all__ = ["EXPORT_TYPES", "ExportPull", "fill_resolver"]

log = logging.getLogger("fhir_injection.sync")

# The types the decision reads, in the kick-off's _type (one comma-joined parameter).
EXPORT_TYPES = tuple(sorted(USED_TYPES))


@pull
class ExportPull(Pull):
    """Pages of administrations from a Bulk Data export of the source (see the module)."""

    name = "export"
    ordered = False  # pages come by patient: the sync's mark moves only when the run completes

    @classmethod
    def for_run(
        cls,
        client: FhirClient,
        resolver: Resolver,
        options: PullOptions,
        on_problem: OnProblem,
        state: dict[str, Any],
        progress: Callable[[str], None] | None,
    ) -> ExportPull:
        """The export a sync run asks for (it reads ``page_size``, ``state_path``, ``full``,
        ``since`` and ``max_poll_wait``; its state comes by :meth:`bind`)."""
        return cls(client, resolver, options, on_problem)

    def __init__(
        self, client: FhirClient, resolver: Resolver, options: PullOptions, on_problem: OnProblem
    ):
        self.client = client
        self.resolver = resolver
        self.options = options
        self.on_problem = on_problem
        self.page_size = max(1, int(options.page_size))
        self.folder = Path(options.state_path + ".export")
        self.memory: dict[str, Any] = {}
        self.save: Callable[[], None] = lambda: None
        self._withdrawn: list[tuple[str, str | None, str]] = []
        self.progress: Callable[[str], None] = lambda message: log.info("%s", message)

    def bind(self, memory: dict[str, Any], save: Callable[[], None]) -> None:
        """The source's state-file entry and how to save it (the sync's own state file)."""
        self.memory, self.save = memory, save

    def withdrawn(self) -> list[tuple[str, str | None, str]]:
        """Administrations deleted at the source, to void now: (id, patient id, where read)."""
        out, self._withdrawn = self._withdrawn, []
        return out

    def request(self, since: str | None) -> ExportRequest:
        return ExportRequest("system", types=EXPORT_TYPES, since=since)

    def pages(
        self,
        since: str | None,
        recent: Mapping[str, list],
        mark: Callable[[], str | None],
        numbered_from: int = 0,
    ) -> Iterator[list[dict]]:
        """Export (or resume, or reuse a finished download), then yield whole patients a page at a
        time, then the voids; at the end keep the export's time as the next ``_since``."""
        exporter = BulkExport(
            self.client,
            self.memory,
            self.save,
            progress=self.progress,
            max_poll_wait=float(self.options.max_poll_wait),
        )
        key = self.request(None).key
        job = self.memory.setdefault("exports", {}).setdefault(key, {})
        if self.options.full:
            export_since = None
        elif self.options.since:
            export_since = self.options.since
        else:
            export_since = job.get("since")
        done = job.get("downloaded")
        if not (done and (self.folder / "manifest.json").is_file()):
            if not job.get("status_url") and self.folder.exists():
                shutil.rmtree(self.folder)  # a download of an export that is gone
            result = exporter.run(self.request(export_since), self.folder, advance=False)
            self.progress(result.summary())
            done = result.manifest.transaction_time
            export_since = result.request_since
            job = self.memory["exports"][key]
            job.update(downloaded=done, downloaded_since=export_since)
            self.save()
        else:
            export_since = job.get("downloaded_since")
            log.info("reading the export downloaded by an interrupted run (as of %s)", done)
        complete = export_since is None  # a full export holds every patient's whole compartment
        folder = ExportFolder(self.folder, self.on_problem)
        with Spool(directory=str(self.folder.parent)) as spool:
            spool.add_all(folder.records(), self.on_problem)
            self._withdrawn = spool.apply_deletions(folder.deletions.values())
            page: list[dict] = []
            for patient_id in spool.patients():
                admins, _ = spool.for_patient(patient_id)
                page += admins
                if len(page) >= self.page_size:
                    self._fill(spool, page, complete)
                    yield page
                    page = []
            if page:
                self._fill(spool, page, complete)
                yield page
            if self._withdrawn:
                yield []  # the sync takes withdrawn() with this (empty) page
        job = self.memory["exports"][key]
        job.update(since=done)
        job.pop("downloaded", None)
        job.pop("downloaded_since", None)
        self.save()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _fill(self, spool: Spool, admins: list[dict], complete: bool) -> None:
        fill_resolver(self.resolver, spool, admins, complete)


def fill_resolver(
    resolver: Resolver,
    spool: Spool,
    admins: list[dict],
    complete: bool | Callable[[str], bool],
) -> None:
    """Put what these administrations point to into the resolver's cache from an export's spool,
    so the server is asked only for the rest. Patient-scoped searches (coverages, consents, charge
    items) are answered from the spool only when the export holds that type whole (``complete``:
    a full export; or, per type, a function saying which types it holds whole)."""
    whole = complete if callable(complete) else (lambda rtype: bool(complete))
    for _ in range(4):  # the encounters' own references are known once the encounters are
        before = len(resolver.cache), len(resolver.by_patient), len(resolver.by_identifier)
        for lk in resolver.lookups(list[Mapping](admins)):
            _answer(resolver, spool, lk, whole(lk.type))
        after = len(resolver.cache), len(resolver.by_patient), len(resolver.by_identifier)
        if after == before:
            return


def _answer(resolver: Resolver, spool: Spool, lk: Lookup, complete: bool) -> None:
    if lk.param == "_id":
        for rid in lk.values:
            found = spool.get(lk.type, rid)
            if found is not None:
                resolver.remember(found)
        return
    if lk.param == "identifier":
        for text in lk.values:
            token = resolver._asked.get((lk.type, text))
            if token is None:
                continue
            matched = spool.find(lk.type, token)
            if matched:
                for r in matched:
                    resolver.remember(r)
                resolver.by_identifier[(lk.type, token)] = tuple(
                    sorted(
                        f"{lk.type}/{r['id']}"
                        for r in matched
                        if any(token_matches(token, *i) for i in identifiers_of(r))
                    )
                )
                del resolver._asked[(lk.type, text)]
        return
    if not complete or (lk.type, lk.param) not in FOUND_BY_PATIENT:
        return
    for value in lk.values:
        pid = value.split("/", 1)[1]
        found_list = spool.of_patient(lk.type, pid)
        resolver.by_patient[(lk.type, pid)] = list[Mapping](found_list)
        for r in found_list:
            resolver.remember(r)
