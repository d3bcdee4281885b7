"""``fhir-injection export``: a Bulk Data ``$export`` of a FHIR server into an export folder."""

from __future__ import annotations

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    from ..sources.bulk import MAX_POLL_WAIT

    e = sub.add_parser(
        "export",
        help="run a Bulk Data $export of a FHIR server into an export folder",
        description="Kick off (or resume) a Bulk Data $export, wait for it, download its files "
        "into a folder that 'sync --source DIR' reads, and delete the job on the server.",
    )
    e.add_argument("--source", required=True, metavar="URL", help="FHIR base URL")
    e.add_argument("--target", required=True, metavar="DIR", help="a new (or empty) folder")
    level = e.add_mutually_exclusive_group()
    level.add_argument("--group", metavar="ID", help="export Group/ID/$export")
    level.add_argument(
        "--patient-level", action="store_true", help="export Patient/$export (all patients)"
    )
    e.add_argument(
        "--type", action="append", metavar="T,...", help="resource types (_type), comma-separated"
    )
    e.add_argument("--since", metavar="INSTANT", help="only what changed since (_since)")
    e.add_argument(
        "--type-filter",
        action="append",
        metavar="Q",
        help="a _typeFilter search, e.g. MedicationAdministration?status=completed (repeatable)",
    )
    e.add_argument("--full", action="store_true", help="ignore the state file's last export time")
    e.add_argument(
        "--state",
        metavar="FILE",
        default=".fhir-injection-state.json",
        help="where the status URL and the next _since are kept (default: %(default)s)",
    )
    e.add_argument(
        "--concurrency",
        type=int,
        default=3,
        help="files downloaded at once (default: %(default)s)",
    )
    e.add_argument(
        "--max-poll-wait",
        type=float,
        default=MAX_POLL_WAIT,
        metavar="SECONDS",
        help="longest wait between status checks, whatever Retry-After asks (default: 120)",
    )
    e.add_argument("--max-retry-seconds", type=float, default=None, metavar="SECONDS")
    e.add_argument("--ca-bundle", metavar="FILE")
    e.add_argument("--allow-insecure-http", action="store_true")


def run(args, rules, config) -> int:
    from ..jobs.export import run_export_cli

    return run_export_cli(args)
