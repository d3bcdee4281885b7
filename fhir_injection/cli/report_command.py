"""``fhir-injection report``: a saved report.json as report.html (and worklist.csv)."""

from __future__ import annotations

from pathlib import Path

from ..errors import EXIT_OK, ConfigError

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
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


def run(args) -> int:
    from ..sinks.html import load_report, write_pages
    from ..sinks.trends import read_history

    meta, view, summary = load_report(args.report_json)
    history_file = (
        Path(args.history) if args.history else Path(args.report_json).with_name("history.jsonl")
    )
    if args.history and not history_file.is_file():
        raise ConfigError(f"history file {history_file} does not exist")
    write_pages(view, meta, summary, args.html, args.csv, read_history(history_file))
    print(f"Wrote {args.html}" + (f" and {args.csv}" if args.csv else ""))
    return EXIT_OK
