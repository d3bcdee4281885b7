"""A FHIR Bulk Data Access (IG 2.0.0) client: kick-off, poll, download, clean up.

:class:`BulkExport` runs one ``$export`` (system, ``Group/<id>`` or ``Patient`` level) on the
adapter's own HTTP layer (:class:`~fhir_injection.fhir.http.HttpSession`: one retry loop, auth,
TLS verified) and writes a standard export folder that :class:`~.exportfolder.ExportFolder` reads:

- kick-off ``GET [base]/…/$export?_type=…&_since=…&_typeFilter=…`` with ``Prefer:
  respond-async`` and ``Accept: application/fhir+json``; 202 and ``Content-Location`` (the status
  URL); a 429 (Oracle: one export per client at a time) or 5xx is waited out by the retry loop;
- polling the status URL: 202 while in progress (``X-Progress`` shown, ``Retry-After`` in seconds
  or as an HTTP date honoured, capped at :data:`MAX_POLL_WAIT`; :data:`DEFAULT_POLL_WAIT` when
  absent), 200 with the manifest when done, 4xx/5xx with an OperationOutcome when it failed;
- the status URL is kept in ``memory`` (the caller's state-file entry) as soon as it is known, so
  a run killed while the server works resumes that export instead of starting another; it is
  forgotten when the export is done, failed, or expired (404/410: a new one is started);
- the manifest (``transactionTime``, ``requiresAccessToken``, ``output``, ``error``,
  ``deleted``) is checked; its files are downloaded in parallel (bounded, default 3), streamed in
  chunks to ``<n>.<Type>.ndjson.gz`` (gzip as sent, or compressed on the way), ``error/`` and
  ``deleted/``, each written to a ``.part`` file and renamed when complete and checked, so a
  resumed run downloads only what is missing; never a whole file in memory;
- ``requiresAccessToken: true``: our token goes with the file request when, and only when, the
  file is on the FHIR server's own origin (another host is refused, see below); false: never. A
  redirect is followed without the Authorization header unless it stays on that origin and is
  not a pre-signed URL (Oracle serves files by a 307 to a pre-signed object-store URL);
- ``manifest.json`` is written last (the files' server URLs without their query strings, which
  can hold a signature, and each file's ``destination``); then the job is ``DELETE``\\ d (one
  export at a time on Oracle) and the manifest's ``transactionTime`` kept as the next ``_since``.

Messages name files by their number, type and URL path, never their contents (no PHI); error files
are reported as counts of OperationOutcome issue codes.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from ..errors import BulkExportError, FatalNetworkError, FhirInjectionError
from ..fhir.client import FhirClient
from ..fhir.urls import redact_url
from .download import scan_gzip, write_stream
from .manifest import Manifest, ManifestFile, write_manifest

log = logging.getLogger("fhir_injection.export")

MAX_POLL_WAIT = 120.0  # seconds: a vendor asked for five hours once; we check again sooner
DEFAULT_POLL_WAIT = 5.0  # when the server sends no Retry-After
DEFAULT_CONCURRENCY = 3
CHUNK = 64 * 1024  # bytes read and written at a time
NDJSON = "application/fhir+ndjson"
LEVELS = ("system", "group", "patient")


@dataclass(frozen=True)
class ExportRequest:
    """What to export: the level (system, group, patient), the group id, ``_type``, ``_since`` and
    ``_typeFilter`` (each filter one parameter)."""

    level: str = "system"
    group: str | None = None
    types: tuple[str, ...] = ()
    since: str | None = None
    type_filters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"export level {self.level!r}: use one of {', '.join(LEVELS)}")
        if (self.level == "group") != bool(self.group):
            raise ValueError("a group export needs a group id (and only a group export has one)")

    @property
    def path(self) -> str:
        """The kick-off path relative to the FHIR base."""
        if self.level == "group":
            return f"Group/{self.group}/$export"
        return "Patient/$export" if self.level == "patient" else "$export"

    def params(self) -> list[tuple[str, str]]:
        """``_type`` comma-joined (some servers refuse it repeated), ``_typeFilter`` repeated."""
        out: list[tuple[str, str]] = [("_outputFormat", NDJSON)]
        if self.types:
            out.append(("_type", ",".join(self.types)))
        if self.since:
            out.append(("_since", self.since))
        out += [("_typeFilter", f) for f in self.type_filters]
        return out

    @property
    def key(self) -> str:
        """What identifies this export in the state file, ``_since`` aside."""
        parts = [self.path]
        if self.types:
            parts.append("_type=" + ",".join(self.types))
        parts += [f"_typeFilter={f}" for f in self.type_filters]
        return "?".join(parts[:1]) + ("?" + "&".join(parts[1:]) if parts[1:] else "")


@dataclass
class ExportResult:
    manifest: Manifest
    folder: Path
    files: int = 0
    bytes: int = 0
    lines: Counter = field(default_factory=Counter)  # records by resource type
    errors: Counter = field(default_factory=Counter)  # OperationOutcome issue codes in error files
    deleted: int = 0  # DELETE entries in deleted files
    resumed: bool = False
    request_since: str | None = None
    polls: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        out = ", ".join(f"{t} {n}" for t, n in sorted(self.lines.items())) or "no records"
        text = (
            f"export as of {self.manifest.transaction_time}: {self.files} files, "
            f"{self.bytes / 1e6:.1f} MB in {self.seconds:.1f} s ({out})"
        )
        if self.deleted:
            text += f"; {self.deleted} deleted"
        if self.errors:
            codes = ", ".join(f"{c} {n}" for c, n in sorted(self.errors.items()))
            text += f"; the server reported export errors: {codes}"
        return text


def _clean(text: str | None, limit: int = 80) -> str:
    """A server's X-Progress text as it may be shown: printable, one line, short."""
    flat = " ".join("".join(c for c in (text or "") if c.isprintable()).split())
    return flat[:limit]


class BulkExport:
    """One Bulk Data export through ``client``; ``memory`` (a state-file entry, a dict) keeps the
    status URL and the next ``_since`` and ``save()`` writes it out."""

    def __init__(
        self,
        client: FhirClient,
        memory: MutableMapping[str, Any] | None = None,
        save: Callable[[], None] = lambda: None,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_poll_wait: float = MAX_POLL_WAIT,
        default_poll_wait: float = DEFAULT_POLL_WAIT,
        max_export_seconds: float = 6 * 3600,
        chunk_size: int = CHUNK,
        progress: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ):
        if concurrency < 1:
            raise ValueError("concurrency must be 1 or more")
        self.client = client
        self.session = client.session
        self.memory = memory if memory is not None else {}
        self.save = save
        self.concurrency = concurrency
        self.max_poll_wait = max_poll_wait
        self.default_poll_wait = default_poll_wait
        self.max_export_seconds = max_export_seconds
        self.chunk_size = chunk_size
        self.progress = progress or (lambda message: log.info("%s", message))
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()

    # -- the state ---------------------------------------------------------------

    def _jobs(self) -> dict[str, Any]:
        return self.memory.setdefault("exports", {})

    def next_since(self, request: ExportRequest) -> str | None:
        """The ``transactionTime`` of this export's last complete run: the next ``_since``."""
        job = self._jobs().get(request.key) or {}
        since = job.get("since")
        return since if isinstance(since, str) else None

    def _remember(self, request: ExportRequest, **values: Any) -> None:
        job = self._jobs().setdefault(request.key, {})
        for k, v in values.items():
            if v is None:
                job.pop(k, None)
            else:
                job[k] = v
        self.save()

    # -- the protocol --------------------------------------------------------------

    def _poll_or_forget(self, request: ExportRequest, status_url: str) -> Manifest | None:
        """Poll the export; a job the server ended (failed, cancelled) is forgotten in the state
        file before the error goes on, so the next run kicks off a new one."""
        try:
            return self.poll(status_url)
        except BulkExportError as exc:
            if exc.job_over:
                self._remember(request, status_url=None, kicked_off=None)
            raise

    def kick_off(self, request: ExportRequest) -> str:
        """Start an export; its status URL (also saved)."""
        resp = self.session.request(
            "GET",
            request.path,
            params=request.params(),
            headers={"Prefer": "respond-async", "Accept": "application/fhir+json"},
        )
        location = resp.headers.get("Content-Location")
        if resp.status_code != 202 or not location:
            raise BulkExportError(
                f"the server did not start an export at {request.path} (HTTP {resp.status_code}"
                + (", no Content-Location" if not location else "")
                + "): it may not support Bulk Data $export"
            )
        location = self.session.url_for(location)  # the same server, or refused
        self._remember(request, status_url=location, kicked_off=self._now_text())
        self.progress(f"export started at {request.path} (status {redact_url(location)})")
        return location

    def poll(self, status_url: str) -> Manifest | None:
        """Wait for the export to finish; its manifest. None when the server has forgotten it
        (404/410: expired, or deleted)."""
        started = self._clock()
        polls = 0
        while True:
            try:
                status, headers, body = self.session.stream(
                    status_url,
                    lambda r: (r.status_code, r.headers, r.content),
                    credentials=True,
                    headers={"Accept": "application/json"},
                )
            except FatalNetworkError as exc:
                if exc.status in (404, 410):
                    return None
                # The job failed (a 4xx, or a 500 with the server's OperationOutcome); or the
                # server could not be reached or stayed busy: then the next run asks again.
                over = exc.status is not None and (
                    (400 <= exc.status < 500 and exc.status != 429)
                    or (exc.status == 500 and bool(exc.outcome))
                )
                raise BulkExportError(
                    f"the export failed: {exc}" if over else f"the export's status: {exc}",
                    job_over=over,
                    status=exc.status,
                    outcome=exc.outcome,
                ) from None
            polls += 1
            self.polls = polls
            if status == 200:
                try:
                    manifest = json.loads(body)
                except ValueError as exc:
                    raise BulkExportError(
                        f"the export's manifest is not usable: not JSON ({type(exc).__name__} "
                        f"at character {getattr(exc, 'pos', '?')} of {len(body)})"
                    ) from None
                return Manifest.parse(manifest)
            if status != 202:
                raise BulkExportError(
                    f"the export's status answered HTTP {status}; expected 202 or 200"
                )
            wait = self._wait_of(headers)
            if self._clock() - started + wait > self.max_export_seconds:
                raise BulkExportError(
                    f"the export did not finish in {self.max_export_seconds:.0f} s; "
                    "run again to keep waiting for the same export"
                )
            shown = _clean(headers.get("X-Progress"))
            self.progress(
                f"export in progress{f' ({shown})' if shown else ''}; next check in {wait:.0f} s"
            )
            self._sleep(wait)

    def _wait_of(self, headers: Mapping[str, str]) -> float:
        value = (headers.get("Retry-After") or "").strip()
        wait: float | None = None
        if value.isdigit():
            wait = float(value)
        elif value:
            try:
                when = email.utils.parsedate_to_datetime(value)
                date = headers.get("Date")
                now = (
                    email.utils.parsedate_to_datetime(date).timestamp()
                    if date
                    else self._wall_clock()
                )
                wait = max(0.0, when.timestamp() - now)
            except (TypeError, ValueError):
                wait = None
        if wait is None:
            wait = self.default_poll_wait
        return max(0.0, min(wait, self.max_poll_wait))

    def delete(self, status_url: str) -> None:
        """Tell the server we are done with the export (it may free its files); failures are logged."""
        try:
            self.session.request("DELETE", status_url, safe_to_retry=True)
        except FatalNetworkError as exc:
            if exc.status in (404, 410):  # HAPI: "already ... completed. Nothing to do."
                log.info("the server had already let the export job go (HTTP %s)", exc.status)
            else:
                log.warning("could not delete the finished export job: %s", exc)
        except FhirInjectionError as exc:
            log.warning("could not delete the finished export job: %s", exc)

    # -- the whole run ----------------------------------------------------------------

    def run(self, request: ExportRequest, target: str | Path, advance: bool = True) -> ExportResult:
        """Kick off (or resume) ``request``, wait, download into ``target``, delete the job.

        ``advance``: keep the manifest's ``transactionTime`` as the next ``_since`` now (the folder
        is the product); False when the caller does so only once it has used the files."""
        target = Path(target)
        target.mkdir(parents=True, exist_ok=True)
        started = self._clock()
        self.polls = 0
        job = self._jobs().get(request.key) or {}
        stored = job.get("status_url")
        status_url = stored if isinstance(stored, str) and stored else ""
        resumed = bool(status_url)
        manifest: Manifest | None = None
        if resumed:
            self.progress(f"resuming the export kicked off {job.get('kicked_off', 'earlier')}")
            manifest = self._poll_or_forget(request, status_url)
            if manifest is None:
                log.warning("the export of the last run has expired (404/410); starting a new one")
                self._remember(request, status_url=None, kicked_off=None)
                resumed = False
        if manifest is None:
            status_url = self.kick_off(request)
            manifest = self._poll_or_forget(request, status_url)
            if manifest is None:
                self._remember(request, status_url=None, kicked_off=None)
                raise BulkExportError("the server forgot the export it had just started (404/410)")
        result = ExportResult(manifest, target, resumed=resumed, request_since=request.since)
        self.download_all(manifest, target, result)
        write_manifest(manifest, target)
        self.delete(status_url)
        self._remember(
            request,
            status_url=None,
            kicked_off=None,
            since=manifest.transaction_time if advance else self.next_since(request),
        )
        result.polls = self.polls
        result.seconds = self._clock() - started
        return result

    # -- downloads ---------------------------------------------------------------------

    def download_all(self, manifest: Manifest, target: Path, result: ExportResult) -> None:
        """Every file of the manifest into ``target``, ``concurrency`` at a time."""
        numbers: Counter = Counter()
        for f in manifest.files:
            numbers[(f.kind, f.type)] += 1
            name = f"{numbers[(f.kind, f.type)]}.{f.type}.ndjson.gz"
            f.local = name if f.kind == "output" else f"{f.kind}/{name}"
        for sub in ("error", "deleted"):
            if any(f.kind == sub for f in manifest.files):
                (target / sub).mkdir(exist_ok=True)
        total = len(manifest.files)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = [
                pool.submit(self._download, f, n, total, manifest.requires_token, target, result)
                for n, f in enumerate(manifest.files, 1)
            ]
            for future in futures:
                future.result()  # the first failure, in file order

    def _download(
        self,
        f: ManifestFile,
        number: int,
        total: int,
        token: bool,
        target: Path,
        result: ExportResult,
    ) -> None:
        final = target / f.local
        label = f"file {number} of {total} ({f.kind} {f.type}, {redact_url(f.url)})"
        if token and not self.session.same_origin(f.url):
            raise BulkExportError(
                f"{label}: the manifest says the files need our access token, but this one is "
                "not on the FHIR server; refusing to send credentials to another host"
            )
        if final.exists():  # downloaded and checked by an earlier, interrupted run
            lines, issues, deleted = scan_gzip(final, label, self.chunk_size)
            self._tally(result, f, final.stat().st_size, lines, issues, deleted)
            return
        part = final.with_name(final.name + ".part")

        def consume(resp: requests.Response) -> tuple[int, int, Counter, int]:
            return write_stream(resp, part, label, self.chunk_size, f.kind)

        try:
            size, lines, issues, deleted = self.session.stream(
                f.url,
                consume,
                credentials=token,
                headers={"Accept": NDJSON, "Accept-Encoding": "gzip"},
            )
        except BulkExportError:
            raise
        except FatalNetworkError as exc:
            raise BulkExportError(
                f"{label}: not downloaded: {exc}", status=exc.status, outcome=exc.outcome
            ) from None
        os.replace(part, final)
        self._tally(result, f, size, lines, issues, deleted)
        self.progress(f"downloaded {label}: {lines} records, {size / 1e6:.1f} MB")

    def _tally(self, result, f: ManifestFile, size: int, lines: int, issues, deleted) -> None:
        with self._lock:
            result.files += 1
            result.bytes += size
            if f.kind == "output":
                result.lines[f.type] += lines
            result.errors.update(issues)
            result.deleted += deleted

    @staticmethod
    def _now_text() -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def origin_of(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


__all__ = [
    "BulkExport",
    "CHUNK",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_POLL_WAIT",
    "ExportRequest",
    "ExportResult",
    "LEVELS",
    "MAX_POLL_WAIT",
    "NDJSON",
    "origin_of",
]
