"""Live sync: pull administrations from a FHIR server, decide, post Claims and Tasks exactly once.

One run:

1. read the source's CapabilityStatement (R4 only; which search features exist);
2. pull pages of administrations with a pull of :mod:`fhir_injection.sources` (``--pull``):
   ``search`` = ``MedicationAdministration?_lastUpdated=ge<mark − overlap>&_sort=_lastUpdated``
   with ``_include`` of encounter/patient/medication where supported; ``crawl`` = one search per
   patient of a cohort (:mod:`fhir_injection.sources.crawl`); ``auto`` probes once and takes the
   search where the server allows it (the report's ``summary.pull`` says which ran and why);
3. per page, resolve everything else with ``_id`` / ``patient=`` / ``identifier=`` list
   searches, sent together as one batch Bundle per round (two rounds a page, usually),
   with a per-run cache, so requests grow with pages, not administrations;
4. decide (the same pure engine as offline), then reconcile with the target in
   transaction Bundles: new Claims and Tasks by ``PUT`` to their stable id (or a
   conditional create on their business identifier where the server assigns ids),
   changed ones by a version-checked update, voids by status ``cancelled``,
   fixed Tasks by status ``completed``;
5. advance and save the mark only after the page is safely posted.

With a folder target (``options.write_to``) the run is the read-only trial: GET only, the Claims
and Tasks written to files (the ``trial`` sink, :mod:`fhir_injection.sinks.trial`), the state
file left alone; a server target is the ``server`` sink (:mod:`fhir_injection.sinks.poster`).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..clock import format_instant
from ..decision.practice import Config
from ..decision.ruleset import Rules
from ..errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RECORD_ERRORS,
    ConfigError,
    NetworkError,
    RecordProblem,
)
from ..fhir.client import FhirClient
from ..fhir.connection import ClientOptions, make_client
from ..sinks.base import PostCounts
from ..sinks.report import summary_text
from ..sources.base import PullOptions
from .state import StateFile, StateLock
from .syncrun import SyncRun

__all__ = [
    "DEFAULT_OVERLAP_SECONDS",
    "FIRST_SYNC_MARGIN_DAYS",
    "StopFlag",
    "SyncOptions",
    "SyncResult",
    "longest_filing_limit",
    "parse_interval",
    "run_sync",
    "run_sync_cli",
]

log = logging.getLogger("fhir_injection.sync")

DEFAULT_OVERLAP_SECONDS = 300
#: a first sync reads services from this many days before the longest filing limit starts: time
#: zones, documentation entered a little late, and the services lost lately (reported as such)
FIRST_SYNC_MARGIN_DAYS = 31


@dataclass
class SyncOptions:
    """What one sync does: the options of ``fhir-injection sync`` as fields (docs/pulling.md).

    ``pull`` names a pull (``search``, ``crawl``, ``export``) or ``auto``: a library caller gets
    ``search`` unless it asks, the command ``auto``. ``state_path`` keeps the mark between runs
    (``since`` and ``full`` override it); ``write_to`` makes the run a read-only trial into a folder.
    """

    page_size: int = 500
    bundle_size: int = 100
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS
    since: str | None = None
    full: bool = False
    state_path: str = ".fhir-injection-state.json"
    report_path: str = "report.json"
    created: str | None = None  # the run's timestamp; now when None
    create_with: str = (
        "auto"  # new Claims/Tasks: "put" to our stable id, "post" conditional create, or auto
    )
    # how administrations are pulled from the source: a pull of fhir_injection.sources, or "auto"
    # (probe once: population search where the server allows it, else the per-patient crawl;
    # the CLI's default). Library callers get the search unless they ask.
    pull: str = "search"
    patients_file: str | None = None  # the crawl's cohort: one Patient id a line
    cohort_dir: str | None = None  # the crawl's cohort: the Patients of an export folder
    concurrency: int = 4  # the crawl's parallel patient searches
    write_to: str | None = None  # the read-only trial: Claims, Tasks, report to this folder
    html_path: str | None = None  # report.html for the billing team (worklist.csv beside it)
    max_poll_wait: float = 120.0  # the export pull: the longest wait between status checks
    group: str | None = None  # the crawl's context: Group/<id>/$export (else Patient level)
    # where the Claims and Tasks go: a sink of fhir_injection.sinks by name; None: the target
    # server ("server"), or the read-only trial's folder ("trial") when write_to is set
    sink: str | None = None

    def pull_options(self) -> PullOptions:
        """What the run's pull is given (read once the run's window is set)."""
        return PullOptions(
            page_size=self.page_size,
            overlap_seconds=self.overlap_seconds,
            since=self.since,
            full=self.full,
            pull=self.pull,
            patients_file=self.patients_file,
            cohort_dir=self.cohort_dir,
            concurrency=self.concurrency,
            group=self.group,
            read_only=bool(self.write_to),
            state_path=str(self.state_path),
            max_poll_wait=float(self.max_poll_wait),
        )


@dataclass
class SyncResult:
    """What a sync did: report.json's ``summary``, the Claims and Tasks posted, the records it could
    not read or post (``problems``), whether a signal stopped it, and the mark it saved."""

    summary: dict[str, Any]
    claims: PostCounts
    tasks: PostCounts
    problems: int
    interrupted: bool = False
    mark: str | None = None

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return (
            EXIT_RECORD_ERRORS
            if self.problems or self.claims.failed or self.tasks.failed
            else EXIT_OK
        )


# ----------------------------------------------------------------------------- the run


class StopFlag:
    """Set by SIGTERM/SIGINT: the page in hand is finished, then the run stops."""

    def __init__(self):
        self.event = threading.Event()

    def __bool__(self) -> bool:
        return self.event.is_set()

    def install(self) -> None:
        def handler(signum, frame):
            log.warning("signal %s: finishing the page in hand, then stopping", signum)
            self.event.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def run_sync(
    source: FhirClient,
    target: FhirClient,
    rules: Rules,
    config: Config,
    options: SyncOptions,
    stop: StopFlag | None = None,
    progress=None,
) -> SyncResult:
    """One incremental sync from ``source`` to ``target`` (they may be the same server)."""
    stop = stop if stop is not None else StopFlag()  # an unset StopFlag is falsy: keep the caller's
    source.capabilities()
    if target is not source:
        target.capabilities()
    window = _first_sync_window(options, source.base_url, rules, config)
    if options.write_to:  # the read-only trial: a full pull, GET only, files out, no state saved
        source.read_only = True
        options.report_path = str(Path(options.write_to) / "report.json")
        if not options.html_path:  # a folder target gets the billing team's page, as offline
            options.html_path = str(Path(options.write_to) / "report.html")
        if not options.since:
            options.full = True
    run = SyncRun(source, target, rules, config, options, progress)
    run.window = window
    if progress:  # after the pull's own line: which services the run reads
        progress(f"window: {window}")
    report_path = Path(options.report_path)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_report = report_path.with_name(f".{report_path.name}.partial")
    with open(tmp_report, "w", encoding="utf-8") as fh:
        run.open_report(fh)
        try:
            run.retry_refused()
            for page_admins in run.pull.pages(run.since, run.recent, lambda: run.mark, run.pages):
                run.pages += 1
                run.process(page_admins)
                run.advance(page_admins)
                if stop:
                    run.interrupted = True
                    break
        except BaseException as exc:
            # Keep what was done: the report of the pages posted so far, and the reason the run stopped.
            run.report.problem(
                RecordProblem("run", None, f"stopped early: {type(exc).__name__}: {exc}")
            )
            run.close_report(aborted=True)
            fh.close()
            tmp_report.replace(report_path)
            run.poster.abort()
            raise
        summary = run.close_report()
    run.poster.commit()
    tmp_report.replace(report_path)
    run.finish()
    run.write_pages(summary)
    return SyncResult(
        summary,
        run.poster.claims,
        run.poster.tasks,
        run.report.summary.errors,
        run.interrupted,
        run.mark,
    )


def longest_filing_limit(rules: Rules, config: Config) -> tuple[str, int] | None:
    """(payer type, days) of the longest filing limit in force (a month counted as 31 days);
    None when no payer type has one."""
    limits = {**rules.filing_limits, **config.filing_limits}
    spans = [(limit.longest_days(), pt, limit.text) for pt, limit in limits.items() if limit]
    if not spans:
        return None
    days, payer_type, text = max(spans)
    return f"{payer_type} {text}", days


def _first_sync_window(options: SyncOptions, base_url: str, rules: Rules, config: Config) -> str:
    """Which services the run reads, as the summary says it. A first sync (no state for this source;
    the read-only trial keeps none) without ``--full`` or ``--since`` reads only the filing window:
    changes since the longest filing limit plus a margin before the as-of day, which is set as
    ``options.since`` (the search's ``_lastUpdated``, the export's ``_since``, the crawl's
    ``effective-time`` lower bound). A service is documented after it is given, so nothing inside
    the window is left out; older ones could only be past their limit."""
    if options.full:
        return "everything (--full)"
    if options.since:
        return f"changes since {options.since} (--since)"
    entry = {} if options.write_to else StateFile(options.state_path).source(base_url)
    if entry.get("mark") or entry.get("exports") or (entry.get("crawl") or {}).get("patients"):
        return f"changes since the last sync (state file {options.state_path})"
    longest = longest_filing_limit(rules, config)
    if config.as_of is None or longest is None:
        why = "no as-of day" if config.as_of is None else "no payer type has a filing limit"
        return f"everything (first sync; {why}, so no filing window)"
    limit, days = longest
    start = datetime.combine(config.as_of, datetime.min.time(), UTC) - timedelta(
        days=days + FIRST_SYNC_MARGIN_DAYS
    )
    options.since = format_instant(start)
    return (
        f"first sync: changes since {start.date().isoformat()}, the filing window (the longest "
        f"filing limit, {limit}, + {FIRST_SYNC_MARGIN_DAYS} days before as-of "
        f"{config.as_of.isoformat()}); --full reads everything"
    )


# ----------------------------------------------------------------------------- CLI glue


def parse_interval(value: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    if not value or value[-1] not in units or not value[:-1].isdigit() or int(value[:-1]) < 1:
        raise ConfigError(f"--every '{value}': use a whole number with s, m or h, e.g. 15m")
    return int(value[:-1]) * units[value[-1]]


def run_sync_cli(args, rules: Rules, config: Config) -> int:
    connection = ClientOptions(args.ca_bundle, args.allow_insecure_http, args.max_retry_seconds)
    source = make_client(args.source, "FHIR_", connection)
    target_url = args.target or args.source
    folder = None if target_url.startswith(("http://", "https://")) else target_url
    target = (
        source
        if folder or target_url.rstrip("/") == args.source.rstrip("/")
        else make_client(target_url, "FHIR_TARGET_", connection)
    )
    options = SyncOptions(
        page_size=args.page_size,
        bundle_size=args.bundle_size,
        since=args.since,
        full=args.full,
        state_path=args.state,
        report_path=args.report or "report.json",
        create_with=args.create_with,
        html_path=args.html,
        pull=args.pull,
        max_poll_wait=args.max_poll_wait or 120.0,
        patients_file=args.patients,
        cohort_dir=args.cohort,
        concurrency=args.concurrency,
        group=args.group,
        write_to=folder,
    )
    if folder and args.every:
        raise ConfigError("the read-only trial (a folder --target) runs once: drop --every")
    stop = StopFlag()
    stop.install()
    every = parse_interval(args.every) if args.every else None
    with StateLock(options.state_path):
        while True:
            try:
                result = run_sync(
                    source, target, rules, config, options, stop, progress=_progress_line
                )
            except NetworkError as exc:
                if not every:
                    raise
                # On a schedule, a server that is down now is tried again next time; the mark is safe.
                log.error("sync failed (%s); next try in %s", exc, args.every)
                print(
                    f"fhir-injection: sync failed: {exc}; next try in {args.every}", file=sys.stderr
                )
                result = None
            if result is not None:
                print(summary_text(result.summary), flush=True)
                if result.interrupted or not every or stop:
                    return result.exit_code
            options.full, options.since = False, None
            if stop.event.wait(every):
                return EXIT_INTERRUPTED


def _progress_line(message: str) -> None:
    """One line per page on stderr (ids and counts only), so a long run shows it is moving."""
    print(f"fhir-injection: {message}", file=sys.stderr, flush=True)
