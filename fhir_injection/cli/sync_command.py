"""``fhir-injection sync``: decide administrations and write or post Claims, Tasks and a report."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..bundled import DEMO_AS_OF, demo_config
from ..clock import now, today
from ..decision.practice import parse_as_of
from ..errors import ConfigError
from ..sources import pull_names
from .shared import EXIT_CODES, REPO_DEMO, is_url

__all__ = ["add_parser", "demo_profile", "run"]

log = logging.getLogger("fhir_injection")


def add_parser(sub) -> None:
    """``sync``'s options in --help order: what is read and how, then outputs, then the server."""
    s = sub.add_parser(
        "sync",
        help="decide administrations and write or post Claims, Tasks and a report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXIT_CODES,
        description="Read administrations from a Bulk Data folder or a FHIR server, decide "
        "each one, and write Claim.ndjson, Task.ndjson and report.json to a "
        "folder, or post Claims and Tasks to a FHIR server exactly once.",
    )
    s.add_argument(
        "--source",
        default=None,
        metavar="DIR|URL",
        help="Bulk Data folder or FHIR base URL (default: the bundled demo clinic)",
    )
    s.add_argument(
        "--target",
        default=None,
        metavar="DIR|URL",
        help="output folder or FHIR base URL (default: ./out for a folder source, "
        "the source server for a URL source); a folder with a URL source is the read-only "
        "trial: pull and decide, write Claim.ndjson, Task.ndjson and report.json, post nothing",
    )
    s.add_argument(
        "--pull",
        choices=("auto", *pull_names()),
        default="auto",
        help="how a server source is read: search = MedicationAdministration?_lastUpdated "
        "across all patients; crawl = one search per patient; export = a Bulk Data $export "
        "(system level); auto = probe once, search where the server allows it, else the "
        "context (and cohort) from a Group or Patient $export and the administrations by crawl "
        "(default: %(default)s)",
    )
    s.add_argument(
        "--patients",
        metavar="FILE",
        help="the crawl's cohort: one Patient id a line (# comments allowed)",
    )
    s.add_argument(
        "--cohort",
        metavar="DIR",
        help="the crawl's cohort: the Patient resources of an export folder (e.g. a Group $export)",
    )
    s.add_argument(
        "--group",
        metavar="ID",
        help="the crawl's context and cohort from Group/ID/$export (auto and crawl; without it "
        "a Patient-level export where the server lists one)",
    )
    s.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="the crawl's patient searches in flight at once (default: %(default)s)",
    )
    _output_options(s)
    _server_options(s)


def _output_options(s) -> None:
    """Where the report goes, and which changes a run reads (state file, --since, --as-of)."""
    s.add_argument(
        "--report",
        metavar="FILE",
        help="where to write report.json for a server target (default: ./report.json)",
    )
    s.add_argument(
        "--html",
        metavar="FILE",
        help="for a server target: also write the billing team's report.html here, with "
        "worklist.csv beside it (a folder target always gets both)",
    )
    s.add_argument(
        "--state",
        metavar="FILE",
        default=".fhir-injection-state.json",
        help="incremental state file for server sources (default: %(default)s)",
    )
    s.add_argument(
        "--since", metavar="INSTANT", help="ignore the state file; pull changes from this time"
    )
    s.add_argument(
        "--full",
        action="store_true",
        help="ignore the state file; pull everything (a first sync without it reads only the "
        "filing window: the longest payer filing limit before --as-of, plus a margin)",
    )
    s.add_argument(
        "--as-of",
        metavar="DATE",
        help="the day treated as today for filing limits (YYYY-MM-DD; default: as_of in the "
        f"config, else today's date; the bundled demo: {DEMO_AS_OF})",
    )


def _server_options(s) -> None:
    """How a server is talked to: pages, Bundles, creates, polls, retries, TLS; and --every."""
    s.add_argument(
        "--page-size",
        type=int,
        default=500,
        help="search page size; servers clamp it to their maximum (default: %(default)s)",
    )
    s.add_argument(
        "--bundle-size",
        type=int,
        default=100,
        help="entries per posted Bundle (default: %(default)s)",
    )
    s.add_argument(
        "--create-with",
        choices=("auto", "put", "post"),
        default="auto",
        help="how new Claims and Tasks are created: put = PUT to our stable id (one write, "
        "the fastest), post = conditional create on the business identifier (for servers that "
        "assign ids), auto = put where the server takes client ids, falling back to post "
        "(default: %(default)s)",
    )
    s.add_argument(
        "--max-poll-wait",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="--pull export: the longest wait between checks of the export's status, whatever "
        "the server's Retry-After asks (default: %(default)s)",
    )
    s.add_argument(
        "--every", metavar="INTERVAL", help="repeat every INTERVAL (e.g. 15m, 1h) until stopped"
    )
    s.add_argument(
        "--max-retry-seconds",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up on a request the server keeps failing (429, 500, 502-504, dropped "
        "connections) after retrying for this long; the run then exits 4 "
        "(default: 120)",
    )
    s.add_argument(
        "--ca-bundle", metavar="FILE", help="CA certificates to trust (TLS is always verified)"
    )
    s.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow plain http:// to hosts other than loopback (not for PHI)",
    )


def _as_of(args, config, demo: bool):
    """The config with the day the run treats as today: --as-of, else the config's ``as_of``,
    else (the bundled demo) its own day, else the clock's date in the clinic's time zone."""
    from dataclasses import replace

    if getattr(args, "as_of", None):
        return replace(config, as_of=parse_as_of(args.as_of))
    if config.as_of is not None:
        return config
    return replace(config, as_of=parse_as_of(DEMO_AS_OF) if demo else today(config.zone))


def _is_demo(source: str) -> bool:
    try:
        return REPO_DEMO.is_dir() and Path(source).resolve() == REPO_DEMO.resolve()
    except OSError:
        return False


def run(args, rules, config) -> int:
    source = args.source
    if source is None:
        if not REPO_DEMO.is_dir():
            raise ConfigError(
                "no --source given and the bundled demo (fixtures/demo) is not installed"
            )
        source = str(REPO_DEMO)
    config = _as_of(args, config, not is_url(source) and _is_demo(source))
    if is_url(source):
        from ..jobs.sync import run_sync_cli

        return run_sync_cli(args, rules, config)
    target = args.target or "out"
    if is_url(target):
        raise ConfigError(
            "posting a folder's decisions to a server: load the folder with "
            "'fhir-injection load' and then sync from the server"
        )
    from ..jobs.offline import run_folder

    if not Path(source).is_dir():
        raise ConfigError(f"source folder {source} does not exist")
    result = run_folder(source, target, rules, config, now(), progress=lambda m: log.info("%s", m))
    print(result.text)
    print(
        f"Wrote {Path(target) / 'Claim.ndjson'}, Task.ndjson, report.json, report.html "
        "and worklist.csv"
    )
    return result.exit_code


def demo_profile(args) -> Path | None:
    """The bundled demo's practice profile (fixtures/demo-practice/practice.toml: its sites are offices) for a
    sync of the demo without --config; None otherwise."""
    if args.command != "sync":
        return None
    source = getattr(args, "source", None)
    if source is not None and (is_url(source) or Path(source).resolve() != REPO_DEMO.resolve()):
        return None
    log.info("the bundled demo: its practice profile %s", demo_config())
    return demo_config()
