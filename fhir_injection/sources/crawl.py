"""The per-patient crawl: ``MedicationAdministration?patient=<id>&effective-time=ge…`` for a cohort.

For EHRs that refuse a population search of administrations (Oracle Health answers
MedicationAdministration searches only with ``patient`` or ``_id``; Epic reads them per patient).
The cohort comes from ``--patients FILE`` (one Patient id a line, ``#`` comments), from the
Patient resources of an export folder (``--cohort DIR``), or from the server itself where it
allows it: the patients of ``Encounter?_lastUpdated=ge…`` (else ``Encounter?date=ge…``), else
``Patient?_lastUpdated=ge…``, together with every patient an earlier run crawled.

Each patient is one search (plus its next links) run on a bounded thread pool over the one shared
retry loop (:mod:`fhir_injection.fhir.http`, which waits out 429 with ``Retry-After``); the run
gets one page a patient, in cohort order. The per-patient window (the latest ``effective`` seen)
is kept in the state file under the source's ``crawl`` entry: the next run asks from the start of
the UTC day before ``window − overlap``, so a patient's other administrations of the same days come
along and the same-day rules see them (those already posted at the same version are handed to the
run as siblings, not decided again). A patient the server refuses (403) or does not know (404) is
reported by id and the crawl goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..clock import format_instant, minus, parse_instant
from ..errors import ConfigError, FatalNetworkError, OnProblem, PagingExpired, RecordProblem
from ..fhir.client import FhirClient
from ..fhir.resources import patient_id_of
from .base import Page, Pull, PullOptions, pull
from .cohort import cohort_from_folder, read_patient_file
from .contextexport import ContextExport, plan_request
from .records import check_resource, check_shape
from .resolver import MA, PAGE_INCLUDES, Resolver, last_updated

__all__ = [
    "CrawlPage",
    "CrawlPull",
    "CrawlStats",
    "DEFAULT_CONCURRENCY",
    "EFFECTIVE",
    "PATIENTS_PER_PAGE",
    "PATIENT_STATUSES",
    "effective_of",
    "eta_text",
    "window_start",
]

log = logging.getLogger("fhir_injection.sync")

DEFAULT_CONCURRENCY = 4
# statuses that mean "this patient", not "this server": reported by id, the crawl goes on
PATIENT_STATUSES = (400, 403, 404, 410)
EFFECTIVE = "effective-time"
PATIENTS_PER_PAGE = 50  # whole patients a page at most (their look-ups go together)


class CrawlPage(list):
    """One patient's new administrations; ``siblings``: the same days' ones already posted."""

    siblings: list[dict]
    patient: str

    def __init__(self, admins: list[dict], siblings: list[dict], patient: str):
        super().__init__(admins)
        self.siblings = siblings
        self.patient = patient


def effective_of(admin: Mapping) -> datetime | None:
    """When an administration happened (``effectiveDateTime`` or ``effectivePeriod.start``), as an
    aware datetime; None when it has no time with a zone."""
    value = admin.get("effectiveDateTime")
    if not isinstance(value, str):
        period = admin.get("effectivePeriod")
        value = period.get("start") if isinstance(period, Mapping) else None
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        return parse_instant(value)
    except ConfigError:
        return None


def window_start(window: str, overlap: float) -> str:
    """The ``effective-time=ge`` bound for a patient last seen at ``window``: the start of the UTC
    day before ``window − overlap`` (a clinic's day in any zone is inside it), with a time component
    (Oracle wants one)."""
    moment = parse_instant(minus(window, overlap))
    day = datetime(moment.year, moment.month, moment.day, tzinfo=UTC) - timedelta(days=1)
    return day.isoformat().replace("+00:00", "Z")


@dataclass
class CrawlStats:
    """What the crawl did, for the report and the progress line (ids and counts only)."""

    total: int = 0
    done: int = 0
    searches: int = 0  # the crawl's own requests: first pages and next links
    administrations: int = 0
    cohort_from: str = ""
    bad: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cohort_from": self.cohort_from,
            "patients": self.total,
            "done": self.done,
            "searches": self.searches,
            "searches_per_patient": round(self.searches / self.done, 2) if self.done else None,
            "administrations": self.administrations,
            "bad_patients": list(self.bad),
        }


def eta_text(done: int, total: int, elapsed: float) -> str:
    """``m:ss`` left at the rate so far, ``?`` before the first patient is done."""
    if done <= 0 or total <= done:
        return "?" if done <= 0 else "0:00"
    left = elapsed / done * (total - done)
    minutes, seconds = divmod(round(left), 60)
    return f"{minutes}:{seconds:02d}"


@pull
class CrawlPull(Pull):
    """One page a patient from ``MedicationAdministration?patient=<id>&effective-time=ge…``."""

    name = "crawl"
    ordered = True  # every page is a whole patient: the state may be saved after each

    @classmethod
    def for_run(
        cls,
        client: FhirClient,
        resolver: Resolver,
        options: PullOptions,
        on_problem: OnProblem,
        state: dict[str, Any],
        progress: Callable[[str], None] | None,
    ) -> CrawlPull:
        """The crawl a sync run asks for (it reads every field of ``options`` but ``full`` alone).

        The context comes from a Bulk Data export (:mod:`.contextexport`) with ``--group``, under
        ``--pull auto``, or where the server lists a Group-level export; not in the read-only
        trial (it runs no export job on the server)."""
        context, plan = None, ""
        if options.read_only:
            plan = "read-only trial: context by look-ups" if options.pull == "auto" else ""
        else:
            request, plan = plan_request(client, options.group, options.pull == "auto")
            if request is not None:
                context = ContextExport(
                    client,
                    request,
                    Path(options.state_path + ".context"),
                    on_problem,
                    full=options.fresh,
                    progress=progress,
                    max_poll_wait=float(options.max_poll_wait),
                )
                plan = f"context from {plan}, administrations by crawl"
        crawl = cls(
            client,
            resolver,
            on_problem,
            state=state,
            page_size=options.page_size,
            overlap_seconds=options.overlap_seconds,
            concurrency=options.concurrency,
            patients_file=options.patients_file,
            cohort_dir=options.cohort_dir,
            fresh=options.fresh,
            since=options.since,
            progress=progress,
        )
        crawl.context = context
        crawl.context_plan = plan
        return crawl

    def __init__(
        self,
        client: FhirClient,
        resolver: Resolver,
        on_problem: OnProblem,
        state: dict,
        page_size: int = 500,
        overlap_seconds: float = 300,
        concurrency: int = DEFAULT_CONCURRENCY,
        patients_file: str | None = None,
        cohort_dir: str | None = None,
        fresh: bool = False,
        since: str | None = None,
        progress: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if concurrency < 1:
            raise ConfigError("--concurrency must be 1 or more")
        self.client = client
        self.resolver = resolver
        self.on_problem = on_problem
        self.page_size = page_size
        self.overlap = overlap_seconds
        self.concurrency = concurrency
        self.patients_file = patients_file
        self.cohort_dir = cohort_dir
        self.fresh = fresh
        self.since = since
        self.progress = progress
        self.clock = clock
        crawl = state.setdefault("crawl", {})
        self.windows: dict[str, str] = crawl.setdefault("patients", {})
        if fresh:
            self.windows.clear()
        self.stats = CrawlStats()
        self._lock = threading.Lock()
        self.context: ContextExport | None = None  # the context from a Bulk Data export
        self.context_plan = ""  # what the context will come from, for the first progress line

    def bind(self, memory: dict[str, Any], save: Callable[[], None]) -> None:
        """The source's state-file entry and how to save it (the context export's status URL)."""
        if self.context is not None:
            self.context.bind(memory, save)

    def known_siblings(self, page: Page) -> list[dict] | None:
        """A crawl page brings the same days' administrations already posted (its ``siblings``)."""
        return page.siblings if isinstance(page, CrawlPage) else None

    def context_reason(self) -> str:
        """What the context came from, once the crawl has run (the plan before)."""
        if self.context is not None and self.context.outcome:
            tail = (
                ""
                if self.context.spool is None and self.context.used == "look-ups"
                else (", administrations by crawl")
            )
            return self.context.outcome + tail
        return self.context_plan

    # -- the cohort ------------------------------------------------------

    def cohort(self, since: str | None) -> list[str]:
        """Who to crawl, in a fixed order; ``stats.cohort_from`` says where the list came from."""
        if self.patients_file:
            self.stats.cohort_from = "patients file"
            return read_patient_file(self.patients_file)
        if self.cohort_dir:
            self.stats.cohort_from = "export folder"
            return cohort_from_folder(self.cohort_dir, self.on_problem)
        if self.context is not None and self.context.spool is not None:
            self.stats.cohort_from = self.context.request.path
            return list(dict.fromkeys([*sorted(self.windows), *self.context.patients()]))
        found, how = self._cohort_from_server(since)
        self.stats.cohort_from = how
        return list(dict.fromkeys([*sorted(self.windows), *found]))

    def _cohort_from_server(self, since: str | None) -> tuple[list[str], str]:
        tries: list[tuple[str, list[tuple[str, str]]]] = []
        if since and self.client.supports_search_param("Encounter", "_lastUpdated"):
            tries.append(("Encounter", [("_lastUpdated", f"ge{since}")]))
        if since and self.client.supports_search_param("Encounter", "date"):
            tries.append(("Encounter", [("date", f"ge{since}")]))
        if not since:
            tries.append(("Encounter", []))
        if self.client.supports_search_param("Patient", "_lastUpdated") and since:
            tries.append(("Patient", [("_lastUpdated", f"ge{since}")]))
        elif not since:
            tries.append(("Patient", []))
        refused: list[str] = []
        for rtype, params in tries:
            query = [*params, ("_count", str(self.page_size))]
            try:
                ids: list[str] = []
                for resource, mode in self.client.search(rtype, query):
                    if mode != "match" or resource.get("resourceType") != rtype:
                        continue
                    pid = resource.get("id") if rtype == "Patient" else patient_id_of(resource)
                    if pid:
                        ids.append(str(pid))
            except FatalNetworkError as exc:
                if exc.status not in (400, 403, 422):
                    raise
                refused.append(f"{rtype} HTTP {exc.status}")
                continue
            where = "&".join(k for k, _ in params) or "all"
            return list(dict.fromkeys(ids)), f"{rtype} search ({where})"
        if self.windows:
            return [], "patients of earlier runs (population searches refused)"
        raise ConfigError(
            "the server allows no population search to find the cohort ("
            + ", ".join(refused or ["no Encounter or Patient search"])
            + "): give it with --patients FILE or --cohort DIR (a Group $export's folder), or "
            "--group ID (the sync exports the Group's Patients)"
        )

    # -- the pages -------------------------------------------------------

    def _params(self, patient: str) -> list[tuple[str, str]]:
        params = [("patient", patient), ("_count", str(self.page_size))]
        window = self.windows.get(patient)
        if window is None and self.since:
            window = format_instant(parse_instant(self.since))
        if window and self.client.supports_search_param(MA, EFFECTIVE):
            params.append((EFFECTIVE, f"ge{window_start(window, self.overlap)}"))
        for include in PAGE_INCLUDES:
            if self.client.supports_include(MA, include):
                params.append(("_include", include))
        return params

    def _fetch(self, patient: str) -> tuple[str, list[dict] | None, FatalNetworkError | None]:
        """One patient's entries (matches and includes), following next links; runs on a worker.

        Returns (patient, entries, None) or (patient, None, the error) for a patient the server
        refuses; any other failure is raised (the run stops, the state keeps what was posted)."""
        entries: list[dict] = []
        for _attempt in range(3):
            entries = []
            try:
                for bundle in self.client.search_pages(MA, self._params(patient)):
                    with self._lock:
                        self.stats.searches += 1
                    entries.extend(e for e in bundle.get("entry") or [] if isinstance(e, dict))
                return patient, entries, None
            except PagingExpired:
                continue  # the server forgot the search: ask this patient again
            except FatalNetworkError as exc:
                if exc.status in PATIENT_STATUSES:
                    return patient, None, exc
                raise
        raise FatalNetworkError(f"the server kept expiring the paging links of {MA} searches")

    def pages(
        self,
        since: str | None,
        recent: Mapping[str, list],
        mark: Callable[[], str | None],
        numbered_from: int = 0,
    ) -> Iterator[list[dict]]:
        """Pages of whole patients, in cohort order: consecutive patients share a page up to
        ``page_size`` administrations or :data:`PATIENTS_PER_PAGE` patients, so the look-ups and
        writes of a page are batched as the search path's are. The patients' windows move once the
        run has posted their page (when the next page is asked for)."""
        if self.context is not None:
            self.context.open()
        patients = self.cohort(since)
        self.stats.total = len(patients)
        started = self.clock()
        ahead = max(2 * self.concurrency, PATIENTS_PER_PAGE)  # fetched and waiting: bounded
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="crawl")
        todo = iter(enumerate(patients))
        running: dict[Future, int] = {}
        ready: dict[int, tuple[str, list[dict] | None, FatalNetworkError | None]] = {}
        order = 0
        group: list[CrawlPage] = []

        def submit() -> None:
            while len(running) + len(ready) < ahead:
                item = next(todo, None)
                if item is None:
                    return
                running[pool.submit(self._fetch, item[1])] = item[0]

        try:
            submit()
            while running or ready:
                if order not in ready:
                    finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    for fut in finished:
                        ready[running.pop(fut)] = fut.result()
                    continue
                patient, entries, error = ready.pop(order)
                order += 1
                submit()
                if error is not None:
                    self._bad(patient, error)
                    self.stats.done += 1
                    self._show(started)
                    continue
                group.append(self._page(patient, entries or [], recent))
                if sum(len(p) for p in group) >= self.page_size or len(group) >= PATIENTS_PER_PAGE:
                    yield from self._emit(group, started)
                    group = []
            if group:
                yield from self._emit(group, started)
            if self.context is not None:
                self.context.finish()  # the whole cohort crawled: the next export is incremental
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if self.context is not None:
                self.context.close()

    def _emit(self, group: list[CrawlPage], started: float) -> Iterator[CrawlPage]:
        page = CrawlPage(
            [a for p in group for a in p],
            [s for p in group for s in p.siblings],
            ",".join(p.patient for p in group),
        )
        self.stats.administrations += len(page)
        if self.context is not None:
            self.context.fill(self.resolver, [*page, *page.siblings])
        yield page
        for part in group:  # posted: the windows move
            self._seen(part.patient, list(part) + part.siblings)
        self.stats.done += len(group)
        self._show(started)

    def _page(self, patient: str, entries: list[dict], recent: Mapping[str, list]) -> CrawlPage:
        admins: list[dict] = []
        siblings: list[dict] = []
        for e in entries:
            resource = e.get("resource")
            mode = (e.get("search") or {}).get("mode", "match")
            where = (
                f"{resource.get('resourceType', '?')}/{resource.get('id')}"
                if isinstance(resource, dict)
                else f"Patient/{patient} crawl entry"
            )
            problem = check_resource(resource, where)
            if problem is None and isinstance(resource, dict):
                problem = check_shape(resource, where)
            if problem or not isinstance(resource, dict):
                if problem:
                    self.on_problem(problem)
                continue
            if resource["resourceType"] != MA or mode != "match":
                self.resolver.remember(resource)
                continue
            version = (resource.get("meta") or {}).get("versionId") or last_updated(resource) or ""
            if (recent.get(resource["id"]) or [None])[0] == version:
                siblings.append(resource)  # posted at this version: context for the same-day rules
            else:
                admins.append(resource)
        return CrawlPage(admins, siblings, patient)

    def _seen(self, patient: str, admins: list[dict]) -> None:
        """The patient's page is posted: move its window to the latest administration seen."""
        latest = max((t for a in admins if (t := effective_of(a)) is not None), default=None)
        old = self.windows.get(patient)
        if latest is not None and (old is None or latest > parse_instant(old)):
            self.windows[patient] = format_instant(latest.astimezone(UTC))

    def _bad(self, patient: str, error: FatalNetworkError) -> None:
        self.stats.bad.append({"patient": patient, "status": error.status})
        log.warning("crawl: Patient/%s refused (HTTP %s); going on", patient, error.status)
        self.on_problem(
            RecordProblem(
                f"Patient/{patient}",
                None,
                f"crawl: the server answered HTTP {error.status} to this patient's "
                f"{MA} search; skipped this run",
            )
        )

    def _show(self, started: float) -> None:
        if not self.progress:
            return
        s = self.stats
        self.progress(
            f"crawl: {s.done}/{s.total} patients, {s.searches} searches "
            f"({self.client.stats.requests} requests in all), {s.administrations} administrations, "
            f"ETA {eta_text(s.done, s.total, self.clock() - started)}"
        )

    def summary(self) -> dict[str, Any]:
        """For the report's ``pull`` entry."""
        return {
            **self.stats.as_dict(),
            **(self.context.summary() if self.context is not None else {}),
        }
