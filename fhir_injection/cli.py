"""The ``fhir-injection`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ._version import __version__
from .bundled import DEMO_AS_OF, demo_config, demo_dir
from .clock import now, today
from .config import load_config
from .decision.practice import parse_as_of
from .decision.ruleset import SYSTEM_SNOMED
from .errors import (
    EXIT_AUTH,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_MAPPINGS,
    EXIT_OK,
    EXIT_RECORD_ERRORS,
    EXIT_SERVER,
    EXIT_USAGE,
    ConfigError,
    FhirInjectionError,
)
from .rules import load_rules
from .sources import pull_names

log = logging.getLogger("fhir_injection")


REPO_DEMO = demo_dir()  # the wheel's copy, or fixtures/demo in a source checkout

EXIT_CODES = f"""exit codes:
  {EXIT_OK}    finished; every record processed (documentation gaps are not failures)
  {EXIT_RECORD_ERRORS}    finished, but some records could not be read or posted (listed in the report)
  {EXIT_USAGE}    bad command line or config file
  {EXIT_MAPPINGS}    a mappings/ file is invalid (the message names the file and row)
  {EXIT_SERVER}    the FHIR server could not be reached, kept failing, or refused the request
  {EXIT_AUTH}    authentication failed
  {EXIT_LOCKED}    another sync holds the state file's lock
  {EXIT_INTERNAL}   an unexpected internal error (the outputs are unchanged; the message names no record)
  {EXIT_INTERRUPTED}  stopped by Ctrl-C / SIGTERM (the state file keeps the last safe mark)
"""

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


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


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

    _sync_parser(sub)
    _load_parser(sub)
    _report_parser(sub)
    from .jobs.export import add_export_parser

    add_export_parser(sub)
    sub.add_parser("rules", help="validate mappings/ and print what it holds")
    return p


# One function over 80 lines on purpose: a flat list of add_argument calls in --help order, which
# reads as the help does; cut in parts it would only be harder to check against `sync --help`.
def _sync_parser(sub) -> None:
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


def _load_parser(sub) -> None:
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


def _report_parser(sub) -> None:
    r = sub.add_parser(
        "report",
        help="render a saved report.json as report.html (and worklist.csv) for the billing team",
        description="Render a saved report.json as one self-contained HTML page: headline "
        "figures, charts of held dollars, trends and the coder worklist.",
    )
    r.add_argument("report_json", metavar="REPORT.json", help="a report.json of an earlier run")
    r.add_argument("--html", required=True, metavar="OUT.html", help="the page to write")
    r.add_argument("--csv", metavar="OUT.csv", help="also write the worklist as CSV here")
    r.add_argument(
        "--history",
        metavar="FILE",
        help="run history for the trends (default: history.jsonl beside REPORT.json, if there)",
    )


def _run_report(args) -> int:
    from .sinks.html import load_report, write_pages
    from .sinks.trends import read_history

    meta, view, summary = load_report(args.report_json)
    history_file = (
        Path(args.history) if args.history else Path(args.report_json).with_name("history.jsonl")
    )
    if args.history and not history_file.is_file():
        raise ConfigError(f"history file {history_file} does not exist")
    write_pages(view, meta, summary, args.html, args.csv, read_history(history_file))
    print(f"Wrote {args.html}" + (f" and {args.csv}" if args.csv else ""))
    return EXIT_OK


def _run_rules(args) -> int:
    rules = load_rules(args.mappings)
    print(f"mappings OK: {rules.directory}")
    print(
        f"  drugs (HCPCS): {len(rules.drugs)}; drug codes (RxNorm/NDC): {len(rules.drug_codes)}; "
        f"vaccines (CVX): {len(rules.vaccines)}"
        + "".join(
            f"; Medicare Part B by diagnosis ({rule}): "
            + ", ".join(sorted(v.cvx for v in rules.vaccines.values() if v.part_b_rule == rule))
            for rule in sorted({v.part_b_rule for v in rules.vaccines.values() if v.part_b_rule})
        )
    )
    print(
        f"  routes: {len(rules.routes)} codes, {len(rules.route_text)} reviewed texts; "
        f"IV codes: {len(rules.infusions)}; sites: {len(rules.sites)}; settings: {len(rules.settings)}; "
        f"payer types: {', '.join(sorted(rules.payers))}"
    )
    print(
        f"  encounter types: {len(rules.encounter_types) + len(rules.encounter_type_texts)} "
        f"(+ {sum(len(r) for r in rules.encounter_type_ranges.values())} code ranges); "
        f"payer codes: {len(rules.payer_codes)} "
        f"(+ {sum(len(p) for p in rules.payer_code_prefixes.values())} prefixes); "
        f"payer names: {len(rules.payer_names) + len(rules.payer_name_prefixes)}; "
        f"payer identifiers: {len(rules.payer_identifiers)}"
    )
    print(
        f"  dose forms: {len(rules.dose_forms)} codes, {len(rules.dose_form_names)} RxNorm names "
        f"in {len(rules.dose_form_categories)} categories"
    )
    print(f"  fee schedule rows: {len(rules.fees)}; gap codes: {len(rules.gaps)}")
    print("  drug coverage (HCPCS codes by class: reachable from an RxNorm/NDC code / all):")
    for cls, (reached, total) in _drug_coverage(rules).items():
        print(f"    {cls:<24}{reached:>5} / {total}")
    print(
        f"  drug families (salt/size chosen by product and dose): {len(rules.drug_families)} codes"
    )
    print(
        f"  packages (container size, single/multi-dose): {len(rules.packages)}; "
        f"codes chosen by diagnosis: {len(rules.drug_by_diagnosis)} "
        f"({', '.join(sorted({p.rule for p in rules.drug_by_diagnosis.values()}))}); "
        f"NDC unit rules: {len(rules.ndc_units)}"
    )
    crosswalk = rules.ndc_hcpcs
    print(
        f"  CMS ASP NDC-HCPCS crosswalk: {len(rules.crosswalk_releases)} release(s), "
        f"{len(crosswalk)} NDCs, {len(rules.crosswalk_hcpcs)} distinct HCPCS; the release in force "
        "on the date of service decides (after the newest release's last day: the newest)"
    )
    for release in rules.crosswalk_releases:
        entries = [
            x for xs in rules.ndc_hcpcs_releases.values() for x in xs if x.release == release
        ]
        print(
            f"    {release[0]} to {release[1]}: {len(entries)} NDCs, "
            f"{sum(len(x.hcpcs) for x in entries)} rows, "
            f"{len({h for x in entries for h in x.hcpcs})} distinct HCPCS; "
            f"container size known: {sum(x.package is not None for x in entries)} NDCs, "
            "container kind known: "
            f"{sum(x.package is not None and x.package.container is not None for x in entries)}"
            " NDCs"
        )
    concepts, pairs, targets, members = _snomed_coverage(rules)
    print(
        f"  SNOMED CT diagnoses billed as ICD-10-CM (snomed_icd10.csv): {concepts} concepts, "
        f"{pairs} pairs, {targets} ICD-10-CM codes; SNOMED CT members of diagnosis groups "
        "with a row: "
        + (", ".join(f"{rule} {hit} / {total}" for rule, (hit, total) in members.items()) or "none")
    )
    prefixes = sum(len(p) for p in rules.qualification_prefixes.values())
    print(
        f"  rendering provider: {len(rules.qualifications)} qualification codes "
        f"(+ {prefixes} prefixes), {len(rules.participant_ranks)} participant types"
    )
    by_rule = ", ".join(
        f"{m.code} {use}" + (f" from {m.effective}" if m.effective else "")
        for use, m in sorted(rules.modifiers.items())
    )
    distinct = ", ".join(f"{pt} {rules.payer(pt).distinct_modifier}" for pt in sorted(rules.payers))
    print(f"  modifiers by rule: {by_rule}; distinct procedure: {distinct}")
    limits = ", ".join(
        f"{pt} {limit.text if limit else 'none'}"
        for pt, limit in sorted(rules.filing_limits.items())
    )
    print(f"  filing limits (from the date of service): {limits}")
    return EXIT_OK


def _snomed_coverage(rules) -> tuple[int, int, int, dict[str, tuple[int, int]]]:
    """(SNOMED CT concepts with an ICD-10-CM row, pairs, distinct ICD-10-CM codes, diagnosis rule ->
    (its SNOMED CT members with a row, all its SNOMED CT members))."""
    table = rules.snomed_icd10
    members: dict[str, tuple[int, int]] = {}
    for rule, groups in sorted(rules.diagnosis_rules.items()):
        codes = {lo for group in groups for system, lo, _ in group if system == SYSTEM_SNOMED}
        if codes:
            members[rule] = (sum(c in table for c in codes), len(codes))
    return (
        len(table),
        sum(len(v) for v in table.values()),
        len({code for v in table.values() for code, _ in v}),
        members,
    )


def _drug_coverage(rules) -> dict[str, tuple[int, int]]:
    """drug class -> (codes reachable from a mapped RxNorm/NDC code, directly or through their
    salt/size family, all codes); "total" last."""
    mapped = {c.hcpcs for c in rules.drug_codes.values()}
    reached = mapped | {
        m.hcpcs for h in mapped if h in rules.drug_families for m in rules.drug_families[h].members
    }
    out: dict[str, tuple[int, int]] = {}
    for drug in rules.drugs.values():
        hit, total = out.get(drug.drug_class, (0, 0))
        out[drug.drug_class] = (hit + (drug.hcpcs in reached), total + 1)
    out = dict(sorted(out.items(), key=lambda kv: -kv[1][1]))
    out["total"] = (sum(h for h, _ in out.values()), len(rules.drugs))
    return out


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


def _run_sync(args, rules, config) -> int:
    source = args.source
    if source is None:
        if not REPO_DEMO.is_dir():
            raise ConfigError(
                "no --source given and the bundled demo (fixtures/demo) is not installed"
            )
        source = str(REPO_DEMO)
    config = _as_of(args, config, not _is_url(source) and _is_demo(source))
    if _is_url(source):
        from .jobs.sync import run_sync_cli

        return run_sync_cli(args, rules, config)
    target = args.target or "out"
    if _is_url(target):
        raise ConfigError(
            "posting a folder's decisions to a server: load the folder with "
            "'fhir-injection load' and then sync from the server"
        )
    from .jobs.offline import run_folder

    if not Path(source).is_dir():
        raise ConfigError(f"source folder {source} does not exist")
    result = run_folder(source, target, rules, config, now(), progress=lambda m: log.info("%s", m))
    print(result.text)
    print(
        f"Wrote {Path(target) / 'Claim.ndjson'}, Task.ndjson, report.json, report.html "
        "and worklist.csv"
    )
    return result.exit_code


def _demo_profile(args) -> Path | None:
    """The bundled demo's practice profile (fixtures/demo-practice/practice.toml: its sites are offices) for a
    sync of the demo without --config; None otherwise."""
    if args.command != "sync":
        return None
    source = getattr(args, "source", None)
    if source is not None and (_is_url(source) or Path(source).resolve() != REPO_DEMO.resolve()):
        return None
    log.info("the bundled demo: its practice profile %s", demo_config())
    return demo_config()


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
        if args.command == "rules":
            return _run_rules(args)
        if args.command == "report":
            return _run_report(args)
        rules = load_rules(args.mappings)
        config = load_config(args.config or _demo_profile(args), rules)
        if args.command == "sync":
            return _run_sync(args, rules, config)
        if args.command == "export":
            from .jobs.export import run_export_cli

            return run_export_cli(args)
        if args.command == "load":
            from .jobs.load import run_load_cli

            return run_load_cli(args)
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
        from .errors import describe_failure

        print(
            f"fhir-injection: internal error ({describe_failure(exc)}); outputs were not changed",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
