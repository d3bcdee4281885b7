"""One live sync's state, page by page: the mark and overlap window from the state file, the pull,
the sink Claims and Tasks go to, the report, and the administrations whose writes the target
refused (tried again next run). :func:`fhir_injection.jobs.sync.run_sync` drives it: process a
page, post it, then advance the mark.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..clock import format_instant, minus, now, parse_instant
from ..decision.clinical import type_names_payer
from ..decision.engine import decide_deleted
from ..decision.isolate import decide_isolated
from ..decision.model import Decision
from ..decision.practice import Config
from ..decision.ruleset import Rules
from ..errors import (
    RecordProblem,
)
from ..fhir.client import FhirClient
from ..sinks.base import Sink, SinkOptions, sink_named
from ..sinks.html import write_pages
from ..sinks.report import ReportWriter
from ..sinks.trends import append_run, run_line, sync_history_path
from ..sinks.view import ReportView
from ..sources.base import pull_named
from ..sources.choose import choose
from ..sources.resolver import LOOKUP_CHUNK, MA, Resolver, gather, last_updated
from .state import StateFile

if TYPE_CHECKING:
    from .sync import SyncOptions

__all__ = ["MAX_WRITE_RETRIES", "SyncRun", "WORKLIST"]

log = logging.getLogger("fhir_injection.sync")

WORKLIST = "worklist.csv"  # written beside --html
#: runs in which a refused Claim/Task is tried again before it is only reported
MAX_WRITE_RETRIES = 5


class SyncRun:
    """One run's state: the mark and overlap window from the state file, the pull, the writer, the
    report, and the administrations whose writes were refused (tried again next run)."""

    def __init__(
        self,
        source: FhirClient,
        target: FhirClient,
        rules: Rules,
        config: Config,
        options: SyncOptions,
        progress: Callable[[str], None] | None,
    ):
        self.source, self.target, self.rules, self.config, self.options = (
            source,
            target,
            rules,
            config,
            options,
        )
        self.progress = progress
        self.created = options.created or now()
        self.state = StateFile(options.state_path)
        self.entry = self.state.source(source.base_url)
        if options.full:
            self.mark = None
        elif options.since:
            self.mark = format_instant(parse_instant(options.since))
        else:
            self.mark = self.entry.get("mark")
        # id -> [version, lastUpdated] of administrations already posted inside the overlap window
        fresh = options.full or options.since
        self.recent: dict[str, list] = (
            {}
            if fresh
            else {
                k: v
                for k, v in (self.entry.get("recent") or {}).items()
                if isinstance(v, list) and len(v) == 2
            }
        )
        self.since = minus(self.mark, options.overlap_seconds) if self.mark else None
        self.retry: dict[str, int] = (
            {}
            if options.write_to
            else {k: v for k, v in (self.entry.get("retry") or {}).items() if isinstance(v, int)}
        )
        self.resolver = Resolver(
            source,
            chunk_size=LOOKUP_CHUNK,
            payors_needed=lambda coverage: not type_names_payer(coverage, rules),
        )
        self.separate = target.base_url.rstrip("/") != source.base_url.rstrip("/")
        sink_name = options.sink or ("trial" if options.write_to else "server")
        self.poster: Sink = sink_named(sink_name).for_run(
            rules,
            config,
            SinkOptions(
                client=target,
                folder=options.write_to,
                bundle_size=options.bundle_size,
                create_with=options.create_with,
                source_base=source.base_url if self.separate else None,
            ),
        )
        pull_options = options.pull_options()
        self.pull_name, self.pull_reason = choose(source, pull_options, self.since)
        self.pull = pull_named(self.pull_name).for_run(
            source, self.resolver, pull_options, self._problem, self.entry, progress
        )
        self.pull.bind(self.entry, self.state.save)  # a pull with state of its own keeps it there
        if progress:
            progress(f"pull: {self.pull_name} ({self._reason()})")
        self.ordered = self.pull.ordered
        self.pages = self.admins_seen = 0
        self.interrupted = False
        self.started = time.monotonic()
        self.report: ReportWriter
        self.window = ""  # which services the run reads, and why (the summary's "window")

    def _reason(self) -> str:
        """Why this pull, and (the crawl) where its context comes from: the plan before the run,
        what happened after."""
        more = self.pull.context_reason()
        return f"{self.pull_reason}; {more}" if more else self.pull_reason

    def pull_summary(self) -> dict[str, Any]:
        return {
            "strategy": self.pull_name,
            "reason": self._reason(),
            **({"read_only": True} if self.options.write_to else {}),
            **self.pull.summary(),
        }

    def _problem(self, problem: RecordProblem) -> None:
        self.report.problem(problem)

    def open_report(self, fh) -> None:
        self.report = ReportWriter(
            fh,
            view=ReportView() if self.options.html_path else None,
            meta={
                "generated": self.created,
                "source": self.source.base_url,
                "target": self.target.base_url,
                "since": self.since,
                "mapping": self.rules.directory,
            },
        )

    def retry_refused(self) -> None:
        """Administrations whose Claim or Task a server refused in an earlier run: try them again first."""
        if not self.retry:
            return
        again = self.source.read_many(MA, sorted(self.retry), LOOKUP_CHUNK)
        for missing in set(self.retry) - set(again):
            del self.retry[missing]  # deleted at the source since
        if again:
            self.pages += 1
            self.process(list(again.values()))

    def process(self, page_admins: list[dict]) -> None:
        """Decide a page, post it, report it; remember what failed for the next run."""
        withdrawn = self._withdrawn()
        if not page_admins and not withdrawn:
            return
        poster, report = self.poster, self.report
        poster.begin_page()
        decisions: list[Decision] = []
        if page_admins:
            siblings, ctx = gather(
                self.source,
                self.resolver,
                poster,
                page_admins,
                not self.separate,
                self.config,
                self.pull.known_siblings(page_admins),  # the crawl's pages bring their own
            )
            decisions = decide_isolated(
                page_admins + siblings, ctx, self.rules, self.config, report.problem
            )
        deleted_in = {}
        for admin_id, patient_id, where in withdrawn:  # deleted at the source: void its Claim
            decisions.append(decide_deleted(admin_id, patient_id))
            deleted_in[f"{MA}/{admin_id}"] = where
        in_page = {f"{MA}/{a['id']}" for a in page_admins} | set(deleted_in)
        plans, outcome = poster.plan(decisions, self.created, in_page)
        poster.send(plans, outcome)
        for d in decisions:
            if d.administration not in in_page:
                continue
            info = outcome.get(d.administration, {})
            error = info.get("claim_error") or info.get("task_error")
            report.add(
                d,
                info.get("claim"),
                info.get("claim_status"),
                info.get("task"),
                posted={"claim": info.get("claim_action"), "task": info.get("task_action")},
                **({"post_error": error} if error else {}),
                **(
                    {"deleted_in": deleted_in[d.administration]}
                    if d.administration in deleted_in
                    else {}
                ),
            )
            self._count_retry(d, error)
        self.admins_seen += len(page_admins)

    def _withdrawn(self) -> list[tuple[str, str | None, str]]:
        """Administrations the pull found deleted at the source (an export's ``deleted`` files)."""
        return self.pull.withdrawn()

    def _count_retry(self, d: Decision, error: str | None) -> None:
        admin_id = d.administration_id
        if not error:
            self.retry.pop(admin_id, None)
            return
        self.retry[admin_id] = self.retry.get(admin_id, 0) + 1
        if self.retry[admin_id] > MAX_WRITE_RETRIES:
            del self.retry[admin_id]
            self.report.problem(
                RecordProblem(
                    d.administration,
                    None,
                    f"gave up posting after {MAX_WRITE_RETRIES} "
                    "runs; fix the record or the server refusal, then sync with --since",
                )
            )

    def advance(self, page_admins: list[dict]) -> None:
        """The page is safely posted: advance the mark (saved now if pages come oldest first)."""
        for a in page_admins:
            lu = last_updated(a)
            if lu and (self.mark is None or parse_instant(lu) > parse_instant(self.mark)):
                self.mark = lu
            self.recent[a["id"]] = [(a.get("meta") or {}).get("versionId") or lu or "", lu]
        if self.ordered and self.mark:
            self._save_mark()
        if self.progress:
            rate = self.admins_seen / max(time.monotonic() - self.started, 1e-6)
            self.progress(
                f"page {self.pages}: {self.admins_seen} administrations, claims "
                f"{self.poster.claims.created} new/{self.poster.claims.updated} updated, "
                f"{self.requests()} requests, {rate:.0f}/s"
            )

    def _save_mark(self) -> None:
        assert self.mark is not None  # both callers check it
        if self.options.write_to:
            return
        _save_mark(
            self.state, self.entry, self.mark, self.recent, self.options.overlap_seconds, self.retry
        )

    def requests(self) -> int:
        return self.source.stats.requests + (self.target.stats.requests if self.separate else 0)

    def close_report(self, aborted: bool = False) -> dict:
        self.report.summary.extra["pull"] = self.pull_summary()
        self.report.summary.extra["window"] = self.window
        if self.config.as_of is not None:
            self.report.summary.extra["as_of"] = self.config.as_of.isoformat()
        return _close_report(
            self.report,
            self.poster,
            self.source,
            self.target,
            self.separate,
            self.pages,
            self.mark,
            self.interrupted,
            aborted,
        )

    def write_pages(self, summary: dict) -> None:
        """Append the run to the history next to the state file (the trends; the read-only trial
        keeps its own in its folder), and write report.html and worklist.csv when asked
        (``--html``; the trial's folder always gets them)."""
        history = (  # the trial leaves the sync's state (and its history) alone
            Path(self.options.write_to) / "history.jsonl"
            if self.options.write_to
            else sync_history_path(self.options.state_path)
        )
        runs = append_run(history, run_line(summary, self.created))
        if self.options.html_path and self.report.view is not None:
            html = Path(self.options.html_path)
            write_pages(
                self.report.view, self.report.meta, summary, html, html.with_name(WORKLIST), runs
            )

    def finish(self) -> None:
        """Save the state: the mark (unsorted pages: only a whole run moves it) and the retry list.
        The read-only trial saves nothing."""
        if self.options.write_to:
            return
        if self.mark and (self.ordered or not self.interrupted):
            self._save_mark()
        elif self.entry.get("retry", {}) != self.retry:
            self.entry["retry"] = dict(self.retry)
            self.state.save()


def _close_report(
    report: ReportWriter,
    poster: Sink,
    source: FhirClient,
    target: FhirClient,
    separate: bool,
    pages: int,
    mark: str | None,
    interrupted: bool,
    aborted: bool = False,
) -> dict:
    for failure in poster.failures:
        report.problem(RecordProblem(failure["record"], failure["field"], failure["message"]))
    poster.failures.clear()
    http = {
        "requests": source.stats.requests + (target.stats.requests if separate else 0),
        "retries": source.stats.retries + (target.stats.retries if separate else 0),
        "source": source.stats.as_dict(),
        **({"target": target.stats.as_dict()} if separate else {}),
    }
    report.summary.extra.update(
        {
            "pages": pages,
            "http": http,
            "posted": {"claims": poster.claims.as_dict(), "tasks": poster.tasks.as_dict()},
            "mark": mark,
            "interrupted": interrupted,
            **({"aborted": True} if aborted else {}),
        }
    )
    return report.close()


def _save_mark(
    state: StateFile,
    entry: dict,
    mark: str,
    recent: dict[str, list],
    overlap: float,
    retry: dict[str, int] | None = None,
) -> None:
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
