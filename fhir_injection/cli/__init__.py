"""The ``fhir-injection`` command: the top-level options, then one module per command.

Each command is a module here with ``add_parser(sub)`` (its options, in ``--help`` order) and
``run``: :mod:`.sync_command`, :mod:`.load_command`, :mod:`.report_command`,
:mod:`.export_command` and :mod:`.rules_command`. :func:`main` parses, loads the rules and the
configuration the command needs, runs it, and turns an error into its exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .._version import __version__
from ..config import load_config
from ..errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    FhirInjectionError,
)
from ..rules import load_rules
from . import export_command, load_command, report_command, rules_command, sync_command
from .shared import EXIT_CODES

__all__ = ["COMMANDS", "DESCRIPTION", "main"]

#: the commands in --help order; a command's module adds its parser and runs it
COMMANDS = {
    "sync": sync_command,
    "load": load_command,
    "report": report_command,
    "export": export_command,
    "rules": rules_command,
}

DESCRIPTION = """Turn documented subcutaneous/intramuscular injections (FHIR R4
MedicationAdministration) into CPT 96372 + HCPCS drug Claims, flag the
documentation gaps that would block or risk billing, and write a report.

Typical use:
  fhir-injection sync                                   # the bundled demo clinic -> ./out/
  fhir-injection sync --source export/ --target out/    # a Bulk Data export folder
  fhir-injection sync --source https://ehr/fhir --target https://billing/fhir
  fhir-injection sync --source https://ehr/fhir --target trial/ --pull crawl --patients ids.txt
  fhir-injection sync --source https://ehr/fhir --group 123     # Oracle, Epic: export + crawl
  fhir-injection load --source fixtures/demo --target http://127.0.0.1:8080/fhir
  fhir-injection report out/report.json --html report.html   # a saved report as a page
  fhir-injection rules                                  # check mappings/ and list its tables
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fhir-injection",
        description=DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"fhir-injection {__version__}")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="log each step (ids only, never PHI)"
    )
    p.add_argument("--mappings", metavar="DIR", help="rule tables (default: the bundled mappings/)")
    p.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file: gap severities, modifiers, identifiers, time zone (see docs/configuration.md)",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    for command in COMMANDS.values():
        command.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    if args.command is None:
        _parser().print_help()
        return EXIT_USAGE
    try:
        command = COMMANDS[args.command]
        if command in (rules_command, report_command):  # they read no rules or configuration
            return command.run(args)
        rules = load_rules(args.mappings)
        config = load_config(args.config or sync_command.demo_profile(args), rules)
        return command.run(args, rules, config)
    except KeyboardInterrupt:
        print("fhir-injection: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except FhirInjectionError as exc:
        print(f"fhir-injection: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the target folder cannot be written, the disk is full, ...
        where = f": {exc.filename}" if exc.filename else ""
        print(f"fhir-injection: {exc.strerror or type(exc).__name__}{where}", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:
        from ..errors import describe_failure

        print(
            f"fhir-injection: internal error ({describe_failure(exc)}); outputs were not changed",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
