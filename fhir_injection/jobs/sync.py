"""Live sync: pull administrations from a FHIR server, decide, post Claims and Tasks exactly once.

One run:

1. read the source's CapabilityStatement (R4 only; which search features exist);
2. search ``MedicationAdministration?_lastUpdated=ge<mark − overlap>&_sort=_lastUpdated``
   page by page, with ``_include`` of encounter/patient/medication where supported;
3. per page, resolve everything else with ``_id`` / ``patient=`` / ``identifier=`` list
   searches, sent together as one batch Bundle per round (two rounds a page, usually),
   with a per-run cache, so requests grow with pages, not administrations;
4. decide (the same pure engine as offline), then reconcile with the target in
   transaction Bundles: new Claims and Tasks by ``PUT`` to their stable id (or a
   conditional create on their business identifier where the server assigns ids),
   changed ones by a version-checked update, voids by status ``cancelled``,
   fixed Tasks by status ``completed``;
5. advance and save the mark only after the page is safely posted.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..fhir.client import FhirClient, make_client
from ..sinks.server import Poster, PostCounts
from ..sources.server import LOOKUP_CHUNK, MA, Resolver, gather, last_updated, search_params
from ..errors import (
    EXIT_INTERRUPTED, EXIT_OK, EXIT_RECORD_ERRORS, ConfigError, FatalNetworkError, NetworkError, PagingExpired,
)
from ..sinks.report import ReportWriter
from ..decision.rules import Config, Rules
from ..decision.isolate import decide_isolated
from ..errors import RecordProblem
from ..sources.records import check_resource, check_shape
from ..clock import format_instant, minus, now, parse_instant
from .state import StateFile, StateLock

log = logging.getLogger("fhir_injection.sync")

DEFAULT_OVERLAP_SECONDS = 300
MAX_WRITE_RETRIES = 5  # runs in which a refused Claim/Task is tried again before it is only reported


@dataclass
class SyncOptions:
    page_size: int = 500
    bundle_size: int = 100
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS
    since: str | None = None
    full: bool = False
    state_path: str = ".fhir-injection-state.json"
    report_path: str = "report.json"
    created: str | None = None  # the run's timestamp; now when None
    create_with: str = "auto"  # new Claims/Tasks: "put" to our stable id, "post" conditional create, or auto




@dataclass
class SyncResult:
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
        return EXIT_RECORD_ERRORS if self.problems or self.claims.failed or self.tasks.failed else EXIT_OK












# ----------------------------------------------------------------------------- pulling







# ----------------------------------------------------------------------------- posting






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










def run_sync(source: FhirClient, target: FhirClient, rules: Rules, config: Config, options: SyncOptions,
             stop: StopFlag | None = None, progress=None) -> SyncResult:
    """One incremental sync from ``source`` to ``target`` (they may be the same server)."""
    stop = stop if stop is not None else StopFlag()  # an unset StopFlag is falsy: keep the caller's
    created = options.created or now()
    source.capabilities()
    if target is not source:
        target.capabilities()
    state = StateFile(options.state_path)
    entry = state.source(source.base_url)
    if options.full:
        mark = None
    elif options.since:
        mark = format_instant(parse_instant(options.since))
    else:
        mark = entry.get("mark")
    # id -> [version, lastUpdated] of administrations already posted inside the overlap window
    recent: dict[str, list] = {k: v for k, v in (entry.get("recent") or {}).items()
                               if isinstance(v, list) and len(v) == 2} if not (options.full or options.since) else {}
    since = minus(mark, options.overlap_seconds) if mark else None
    sorted_search = source.supports_sort(MA, "_lastUpdated")

    resolver = Resolver(source, chunk_size=LOOKUP_CHUNK)
    separate = target.base_url.rstrip("/") != source.base_url.rstrip("/")
    poster = Poster(target, rules, config, options.bundle_size, source.base_url if separate else None,
                    options.create_with)
    report_path = Path(options.report_path)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_report = report_path.with_name(f".{report_path.name}.partial")
    pages = admins_seen = 0
    started = time.monotonic()
    new_mark = mark
    interrupted = False
    problems = 0

    retry: dict[str, int] = {k: v for k, v in (entry.get("retry") or {}).items() if isinstance(v, int)}

    with open(tmp_report, "w", encoding="utf-8") as fh:
        report = ReportWriter(fh, meta={"generated": created, "source": source.base_url,
                                        "target": target.base_url, "since": since, "mapping": rules.directory})

        def process(page_admins: list[dict]) -> None:
            """Decide a page, post it, report it; remember what failed for the next run."""
            nonlocal admins_seen
            poster.begin_page()
            siblings, ctx = gather(source, resolver, poster, page_admins, not separate)
            decisions = decide_isolated(page_admins + siblings, ctx, rules, config, report.problem)
            in_page = {f"{MA}/{a['id']}" for a in page_admins}
            plans, outcome = poster.plan(decisions, created, in_page)
            poster.send(plans, outcome)
            for d in decisions:
                if d.administration not in in_page:
                    continue
                info = outcome.get(d.administration, {})
                error = info.get("claim_error") or info.get("task_error")
                report.add(d, info.get("claim"), info.get("claim_status"), info.get("task"),
                           posted={"claim": info.get("claim_action"), "task": info.get("task_action")},
                           **({"post_error": error} if error else {}))
                admin_id = d.administration_id
                if error:
                    retry[admin_id] = retry.get(admin_id, 0) + 1
                    if retry[admin_id] > MAX_WRITE_RETRIES:
                        del retry[admin_id]
                        report.problem(RecordProblem(d.administration, None, f"gave up posting after "
                                                     f"{MAX_WRITE_RETRIES} runs; fix the record or the server "
                                                     "refusal, then sync with --since"))
                else:
                    retry.pop(admin_id, None)
            admins_seen += len(page_admins)

        try:
            # Administrations whose Claim or Task a server refused in an earlier run: try them again.
            if retry:
                again = source.read_many(MA, sorted(retry), LOOKUP_CHUNK)
                for missing in set(retry) - set(again):
                    del retry[missing]  # deleted at the source since
                if again:
                    pages += 1
                    process(list(again.values()))
            params = search_params(source, since, options.page_size)
            restarts = 0
            while True:
                try:
                    for bundle in source.search_pages(MA, params):
                        pages += 1
                        page_admins, included = [], []
                        for e in bundle.get("entry") or []:
                            resource = e.get("resource")
                            mode = (e.get("search") or {}).get("mode", "match")
                            where = resource.get("resourceType", "?") + "/" + str(resource.get("id")) \
                                if isinstance(resource, dict) else f"page {pages} entry"
                            problem = check_resource(resource, where) or check_shape(resource, where)
                            if problem:
                                report.problem(problem)
                                continue
                            if resource["resourceType"] == MA and mode == "match":
                                version = (resource.get("meta") or {}).get("versionId") or last_updated(resource) or ""
                                if (recent.get(resource["id"]) or [None])[0] == version:
                                    continue  # seen in the overlap window, same version
                                page_admins.append(resource)
                            else:
                                included.append(resource)
                        for r in included:
                            resolver.remember(r)
                        if page_admins:
                            process(page_admins)
                        # The page is safely posted: advance the mark.
                        for a in page_admins:
                            lu = last_updated(a)
                            if lu and (new_mark is None or parse_instant(lu) > parse_instant(new_mark)):
                                new_mark = lu
                            recent[a["id"]] = [(a.get("meta") or {}).get("versionId") or lu or "", lu]
                        if sorted_search and new_mark:
                            _save_mark(state, entry, new_mark, recent, options.overlap_seconds, retry)
                        if progress:
                            rate = admins_seen / max(time.monotonic() - started, 1e-6)
                            progress(f"page {pages}: {admins_seen} administrations, claims {poster.claims.created} "
                                     f"new/{poster.claims.updated} updated, "
                                     f"{source.stats.requests + (target.stats.requests if separate else 0)} "
                                     f"requests, {rate:.0f}/s")
                        if stop:
                            interrupted = True
                            break
                    break
                except PagingExpired:
                    restarts += 1
                    if restarts > 5:
                        raise FatalNetworkError("the server kept expiring the search's paging links")
                    log.warning("paging link expired after %d pages; searching again from the mark", pages)
                    since_again = minus(new_mark, options.overlap_seconds) if new_mark else since
                    params = search_params(source, since_again, options.page_size)
        except BaseException as exc:
            # Keep what was done: the report of the pages posted so far, and the reason the run stopped.
            report.problem(RecordProblem("run", None, f"stopped early: {type(exc).__name__}: {exc}"))
            _close_report(report, poster, source, target, separate, pages, new_mark, interrupted, aborted=True)
            fh.close()
            tmp_report.replace(report_path)
            raise
        summary = _close_report(report, poster, source, target, separate, pages, new_mark, interrupted)
        problems = report.summary.errors
    tmp_report.replace(report_path)
    if new_mark and (sorted_search or not interrupted):  # unsorted pages: only a whole run moves the mark
        _save_mark(state, entry, new_mark, recent, options.overlap_seconds, retry)
    elif entry.get("retry", {}) != retry:
        entry["retry"] = dict(retry)
        state.save()
    return SyncResult(summary, poster.claims, poster.tasks, problems, interrupted, new_mark)


def _close_report(report: ReportWriter, poster: Poster, source: FhirClient, target: FhirClient, separate: bool,
                  pages: int, mark: str | None, interrupted: bool, aborted: bool = False) -> dict:
    for failure in poster.failures:
        report.problem(RecordProblem(failure["record"], failure["field"], failure["message"]))
    poster.failures.clear()
    http = {"requests": source.stats.requests + (target.stats.requests if separate else 0),
            "retries": source.stats.retries + (target.stats.retries if separate else 0),
            "source": source.stats.as_dict(), **({"target": target.stats.as_dict()} if separate else {})}
    report.summary.extra.update({"pages": pages, "http": http, "posted": {
        "claims": poster.claims.as_dict(), "tasks": poster.tasks.as_dict()}, "mark": mark,
        "interrupted": interrupted, **({"aborted": True} if aborted else {})})
    return report.close()


def _save_mark(state: StateFile, entry: dict, mark: str, recent: dict[str, list], overlap: float,
               retry: dict[str, int] | None = None) -> None:
    """Advance the mark; keep only the versions the next run's overlap window can return again,
    and the administrations whose writes the target refused (tried again next run)."""
    if retry is not None:
        entry["retry"] = dict(retry)
    floor = parse_instant(minus(mark, overlap))
    for key in [k for k, (_, lu) in recent.items() if not lu or parse_instant(lu) < floor]:
        del recent[key]
    entry["mark"] = mark
    entry["recent"] = dict(recent)
    entry["updated"] = now()
    state.save()


# ----------------------------------------------------------------------------- CLI glue


def parse_interval(value: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    if not value or value[-1] not in units or not value[:-1].isdigit() or int(value[:-1]) < 1:
        raise ConfigError(f"--every '{value}': use a whole number with s, m or h, e.g. 15m")
    return int(value[:-1]) * units[value[-1]]






def run_sync_cli(args, rules: Rules, config: Config) -> int:
    source = make_client(args.source, "FHIR_", args)
    target_url = args.target or args.source
    if not target_url.startswith(("http://", "https://")):
        raise ConfigError("a server source needs a server target (--target URL); "
                          "to work offline, export to a folder first")
    target = source if target_url.rstrip("/") == args.source.rstrip("/") else make_client(target_url,
                                                                                          "FHIR_TARGET_", args)
    options = SyncOptions(page_size=args.page_size, bundle_size=args.bundle_size, since=args.since,
                          full=args.full, state_path=args.state, report_path=args.report or "report.json",
                          create_with=getattr(args, "create_with", "auto"))
    stop = StopFlag()
    stop.install()
    every = parse_interval(args.every) if args.every else None
    with StateLock(options.state_path):
        while True:
            try:
                result = run_sync(source, target, rules, config, options, stop, progress=_progress_line)
            except NetworkError as exc:
                if not every:
                    raise
                # On a schedule, a server that is down now is tried again next time; the mark is safe.
                log.error("sync failed (%s); next try in %s", exc, args.every)
                print(f"fhir-injection: sync failed: {exc}; next try in {args.every}", file=sys.stderr)
                result = None
            if result is not None:
                print(_summary_text(result.summary), flush=True)
                if result.interrupted or not every or stop:
                    return result.exit_code
            options.full, options.since = False, None
            if stop.event.wait(every):
                return EXIT_INTERRUPTED


def _progress_line(message: str) -> None:
    """One line per page on stderr (ids and counts only), so a long run shows it is moving."""
    print(f"fhir-injection: {message}", file=sys.stderr, flush=True)


def _summary_text(s: Mapping) -> str:
    o = s["outcomes"]
    c, t = s["posted"]["claims"], s["posted"]["tasks"]
    return (f"{s['administrations']} administrations: {o['claim']} claim, {o['held']} held, {o['not-96372']} "
            f"not-96372, {o['not-billable']} not-billable, {o['void']} void\n"
            f"Claims: {c['created']} created, {c['updated']} updated, {c['cancelled']} cancelled, "
            f"{c['unchanged']} unchanged, {c['failed']} failed; Tasks: {t['created']} created, {t['updated']} "
            f"updated, {t['completed']} completed, {t['failed']} failed\n"
            f"Estimated: ${s['estimated_billable_usd']:,.2f} billable, ${s['estimated_held_usd']:,.2f} held\n"
            f"HTTP: {s['http']['requests']} requests over {s['pages']} pages, {s['http']['retries']} retries; "
            f"mark {s['mark']}")


def run_folder_to_server_cli(args, source_dir: str, rules: Rules, config: Config) -> int:
    raise ConfigError("posting a folder's decisions to a server: load the folder with "
                      "'fhir-injection load' and then sync from the server")
