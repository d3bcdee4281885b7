"""``fhir-injection export``: a Bulk Data ``$export`` of a FHIR server into a standard export folder.

The folder (``<n>.<Type>.ndjson.gz`` files, ``error/``, ``deleted/`` and ``manifest.json``) is what
``fhir-injection sync --source DIR`` reads. The export's status URL and, once done, its
``transactionTime`` (the next ``_since``) are kept in the state file under the server's URL, so a
killed run resumes the same export, and the next run is incremental unless ``--full``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import EXIT_OK, EXIT_RECORD_ERRORS, ConfigError
from ..fhir.connection import ClientOptions, make_client
from ..sources.bulk import BulkExport, ExportRequest
from .state import StateFile, StateLock

__all__ = ["MARKER", "request_from", "run_export_cli"]

MARKER = ".fhir-injection-export"  # in a target folder while a download into it is unfinished


def _split(values: list[str] | None) -> tuple[str, ...]:
    return tuple(t.strip() for v in values or [] for t in v.split(",") if t.strip())


def request_from(args, since: str | None) -> ExportRequest:
    if args.group and args.patient_level:
        raise ConfigError("use --group ID or --patient-level, not both")
    level = "group" if args.group else "patient" if args.patient_level else "system"
    return ExportRequest(
        level,
        group=args.group or None,
        types=_split(args.type),
        since=since,
        type_filters=tuple(args.type_filter or ()),
    )


def _check_target(target: Path, key: str) -> None:
    """The target must be empty, or hold an unfinished download of this same export."""
    if not target.exists():
        return
    if not target.is_dir():
        raise ConfigError(f"--target {target} is not a folder")
    marker = target / MARKER
    entries = [p for p in target.iterdir()]
    if not entries:
        return
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == key:
        return
    raise ConfigError(
        f"--target {target} is not empty; give a new folder for each export "
        "(an incremental export holds only what changed)"
    )


def run_export_cli(args) -> int:
    client = make_client(
        args.source,
        "FHIR_",
        ClientOptions(args.ca_bundle, args.allow_insecure_http, args.max_retry_seconds),
    )
    target = Path(args.target)
    if args.concurrency < 1:
        raise ConfigError("--concurrency must be 1 or more")
    with StateLock(args.state):
        state = StateFile(args.state)
        entry = state.source(client.base_url)
        exporter = BulkExport(
            client,
            entry,
            state.save,
            concurrency=args.concurrency,
            max_poll_wait=args.max_poll_wait,
            progress=_progress,
        )
        key = request_from(args, None).key
        if args.full:
            since = None
        elif args.since:
            since = args.since
        else:
            since = exporter.next_since(request_from(args, None))
            if since:
                _progress(f"incremental export: changes since {since} (--full for everything)")
        request = request_from(args, since)
        _check_target(target, key)
        target.mkdir(parents=True, exist_ok=True)
        (target / MARKER).write_text(key, encoding="utf-8")
        result = exporter.run(request, target)
        (target / MARKER).unlink()
    print(result.summary())
    print(f"Wrote {target} (manifest.json and {result.files} files)")
    return EXIT_RECORD_ERRORS if result.errors else EXIT_OK


def _progress(message: str) -> None:
    sys.stderr.write(f"fhir-injection: {message}\n")  # one write: downloads report in parallel
    sys.stderr.flush()
