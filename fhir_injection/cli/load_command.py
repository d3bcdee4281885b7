"""``fhir-injection load``: upload a Bulk Data folder to a FHIR server (demos, test systems)."""

from __future__ import annotations

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    ld = sub.add_parser(
        "load", help="upload a Bulk Data folder to a FHIR server (demos, test systems)"
    )
    ld.add_argument("--source", required=True, metavar="DIR")
    ld.add_argument("--target", required=True, metavar="URL")
    ld.add_argument(
        "--bundle-size",
        type=int,
        default=200,
        help="entries per transaction (default: %(default)s)",
    )
    ld.add_argument("--ca-bundle", metavar="FILE")
    ld.add_argument("--allow-insecure-http", action="store_true")


def run(args, rules, config) -> int:
    from ..jobs.load import run_load_cli

    return run_load_cli(args)
