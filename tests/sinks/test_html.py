"""report.html: the page's numbers are report.json's, hostile data stays text, the page
is self-contained, and `fhir-injection report` renders a saved report.json."""

from __future__ import annotations

import base64
import copy
import csv
import hashlib
import html
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from fhir_injection import cli
from fhir_injection.bundled import demo_config, demo_dir
from fhir_injection.config import load_config
from fhir_injection.decision.model import ACTIONABLE_OUTCOMES
from fhir_injection.decision.practice import Config
from fhir_injection.jobs.offline import run_folder
from fhir_injection.sinks.html import load_report, page_context, render_html, script_json
from fhir_injection.sinks.view import server_base, view_of_entries
from fhir_injection.sinks.worklist import resource_url
from tests.builders import admin, dosage, rules, world

# the demo clinic's administrations, counted from its file (the generator grows with each issue)
DEMO_ADMINISTRATIONS = sum(
    1 for line in (demo_dir() / "MedicationAdministration.ndjson").open() if line.strip()
)

CREATED = "2026-11-30T10:00:00Z"
SCRIPT = "<script>window.__pwned=1</script>"
IMG = '"><img src=x onerror="window.__pwned=1">'
JS_URL = "javascript:window.__pwned=1//"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "out"
    run_folder(demo_dir(), out, rules(), load_config(demo_config()), CREATED)
    return out


def report_of(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text(encoding="utf-8"))


def data_block(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert m, "no data block"
    return json.loads(m.group(1))


def markup(page: str) -> str:
    """The page without the contents of its scripts (the vendored libraries hold HTML snippets)."""
    return re.sub(r"<script>.*?</script>", "<script></script>", page, flags=re.S)


def actionable_gaps(report: dict) -> list[tuple[str, str]]:
    return [
        (e["administration"], g["code"])
        for e in report["administrations"]
        if e["outcome"] in ACTIONABLE_OUTCOMES
        for g in e["gaps"]
        if g["severity"] in ("error", "warning")
    ]


# ----------------------------------------------------------------------------- the numbers


def test_the_views_sums_equal_report_json_summary(demo_run):
    report = report_of(demo_run)
    s = report["summary"]
    totals = view_of_entries(report["administrations"]).totals()
    assert totals["administrations"] == s["administrations"] == DEMO_ADMINISTRATIONS
    assert totals["outcomes"] == s["outcomes"]
    assert totals["claims"] == s["claims"]
    assert totals["tasks"] == s["tasks"]
    assert totals["gaps"] == s["gaps"]
    for key in ("estimated_billable_usd", "estimated_held_usd", "estimated_self_pay_usd"):
        assert totals[key] == s[key], key


def test_held_dollars_by_clinician_drug_and_day_each_add_up_to_the_held_total(demo_run):
    report = report_of(demo_run)
    view = view_of_entries(report["administrations"])
    held = Decimal(str(report["summary"]["estimated_held_usd"]))
    for table in (view.held_by_clinician, view.held_by_drug, view.held_by_day):
        assert sum(table.values(), Decimal(0)) == held
    # by gap: every held administration is counted under each of its error gaps
    expected: dict[str, Decimal] = {}
    for e in report["administrations"]:
        if e["outcome"] == "held":
            for code in {g["code"] for g in e["gaps"] if g["severity"] == "error"}:
                expected[code] = expected.get(code, Decimal(0)) + Decimal(str(e["estimated_usd"]))
    assert view.held_by_gap == expected
    assert view.held_by_clinician["Practitioner/prac-02"] > 0  # the entries carry the performer


def test_report_entries_name_the_performer_by_reference_only(demo_run):
    entries = report_of(demo_run)["administrations"]
    performers = {e["performer"] for e in entries}
    assert None in performers  # the demo has administrations without one
    assert all(
        p is None or re.fullmatch(r"Practitioner(Role)?/[A-Za-z0-9.-]+", p) for p in performers
    )


def test_the_headline_of_the_page_shows_the_summary(demo_run):
    page = (demo_run / "report.html").read_text(encoding="utf-8")
    s = report_of(demo_run)["summary"]

    def shown(id_: str) -> str:
        m = re.search(rf'id="{id_}">([^<]*)<', page)
        assert m, id_
        return m.group(1)

    assert shown("h-administrations") == f"{s['administrations']:,}"
    assert shown("h-billable") == f"${s['estimated_billable_usd']:,.2f}"
    assert shown("h-held") == f"${s['estimated_held_usd']:,.2f}"
    assert shown("h-claims-active") == f"{s['claims']['active']:,}"
    assert shown("h-claims-draft") == f"{s['claims']['draft']:,}"
    assert shown("h-tasks") == f"{s['tasks']:,}"


def test_the_worklist_holds_one_row_per_actionable_gap_errors_first(demo_run):
    report = report_of(demo_run)
    data = data_block((demo_run / "report.html").read_text(encoding="utf-8"))
    S = data["strings"]
    rows = [(S[r[1]], S[r[4]]) for r in data["rows"]]
    assert sorted(rows) == sorted(actionable_gaps(report))
    severities = [S[r[3]] for r in data["rows"]]
    assert severities == sorted(severities, key=["error", "warning"].index)
    with open(demo_run / "worklist.csv", encoding="utf-8-sig", newline="") as fh:
        csv_rows = list(csv.DictReader(fh))
    assert [(r["administration"], r["gap"]) for r in csv_rows] == rows
    assert all(r["administration_url"] == "" for r in csv_rows)  # a folder run has no server


def test_the_charts_carry_the_held_sums(demo_run):
    data = data_block((demo_run / "report.html").read_text(encoding="utf-8"))
    charts = data["charts"]
    assert set(charts) >= {"held-gap", "held-clinician", "held-drug", "held-day", "outcomes"}
    held = report_of(demo_run)["summary"]["estimated_held_usd"]
    for name in ("held-clinician", "held-drug", "held-day"):
        total = sum(Decimal(str(v["usd"])) for v in charts[name]["data"]["values"])
        assert total == Decimal(str(held)), name
    outcomes = {v["label"]: v["n"] for v in charts["outcomes"]["data"]["values"]}
    assert outcomes == report_of(demo_run)["summary"]["outcomes"]


# ----------------------------------------------------------------------------- self-contained


def test_the_page_loads_nothing_from_outside_and_only_its_own_scripts_may_run(demo_run):
    page = (demo_run / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"<(script|img|link|iframe)[^>]*\s(src|href)=\"(?!data:)", markup(page))
    assert "<base" not in page
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert len(scripts) == 4  # vega, vega-lite, vega-embed, the page's own
    csp = html.unescape(
        re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page).group(1)
    )
    assert "default-src 'none'" in csp and "connect-src" not in csp  # no fetch, XHR or socket
    allowed = set(re.findall(r"'sha256-([^']+)'", csp))
    hashes = {base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() for s in scripts}
    assert hashes == allowed
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]


def test_script_json_cannot_end_its_script_element():
    text = script_json({"a": "</script><script>alert(1)</script>", "b": "<!-- \u2028 &"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><script>alert(1)</script>", "b": "<!-- \u2028 &"}


# ----------------------------------------------------------------------------- hostile data


def hostile_report(demo_run: Path) -> dict:
    """The demo's report with hostile text where a server's data reaches the report."""
    report = copy.deepcopy(report_of(demo_run))
    report["source"] = JS_URL
    report["target"] = "javascript:alert(1)"
    held = [e for e in report["administrations"] if e["outcome"] == "held"]
    first, second = held[0], held[1]
    first["administration"] = f"MedicationAdministration/{IMG}"
    first["performer"] = SCRIPT
    first["hcpcs"] = '=HYPERLINK("http://evil.example/","x")'
    first["payer_type"] = "@SUM(1+1)"
    first["gaps"][0]["message"] = f"{SCRIPT} {IMG}"
    first["gaps"][0]["code"] = "missing-route"
    first["task"] = "Task/" + JS_URL
    second["performer"] = JS_URL
    second["gaps"][0]["field"] = f"-2+3 {SCRIPT}"
    return report


def test_hostile_text_is_only_text_in_the_page(demo_run, tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(hostile_report(demo_run)), encoding="utf-8")
    meta, view, summary = load_report(path)
    page = render_html(page_context(view, meta, summary))
    # nothing of the data is markup: the only tags are the template's
    assert "<img" not in markup(page)
    assert page.count("<script") == 5  # the data block, three vendored libraries, the page's own
    head = page.split('id="report-data">', 1)[0]
    assert SCRIPT not in head and IMG not in head
    assert "<code>javascript:window.__pwned=1//</code>" in head  # the source, as text, no link
    assert "href=" not in head.split("<body>", 1)[1]  # links are made only by the page's script
    data = data_block(page)
    assert data["sourceBase"] is None and data["targetBase"] is None  # no links to javascript:
    assert SCRIPT in data["strings"] and f"MedicationAdministration/{IMG}" in data["strings"]


def test_hostile_gap_codes_in_the_filter_are_escaped(demo_run, tmp_path):
    report = hostile_report(demo_run)
    report["administrations"][0]["gaps"].append(
        {"code": SCRIPT, "severity": "error", "message": "m", "field": "f", "rule": "r"}
    )
    report["administrations"][0]["outcome"] = "held"
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report), encoding="utf-8")
    meta, view, summary = load_report(path)
    page = render_html(page_context(view, meta, summary))
    head = page.split('id="report-data">', 1)[0]
    assert SCRIPT not in head
    assert '<option value="&lt;script&gt;window.__pwned=1&lt;/script&gt;">' in head


def test_hostile_text_is_only_text_in_the_csv(demo_run, tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(hostile_report(demo_run)), encoding="utf-8")
    assert (
        cli.main(
            [
                "report",
                str(path),
                "--html",
                str(tmp_path / "r.html"),
                "--csv",
                str(tmp_path / "w.csv"),
            ]
        )
        == 0
    )
    with open(tmp_path / "w.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    bad = next(r for r in rows if r["administration"] == f"MedicationAdministration/{IMG}")
    assert bad["what_to_fix"] == f"{SCRIPT} {IMG}"  # text, unchanged (no formula start)
    assert bad["hcpcs"] == '\'=HYPERLINK("http://evil.example/","x")'
    assert bad["payer_type"] == "'@SUM(1+1)"
    assert bad["administration_url"] == "" and bad["task_url"] == ""  # the bases are not http(s)
    field = next(r["field"] for r in rows if r["field"].startswith("'-2+3"))
    assert field == f"'-2+3 {SCRIPT}"


def test_a_hostile_route_code_from_the_data_reaches_the_page_only_as_data(tmp_path):
    """End to end: a route coding whose code is markup is quoted in the missing-route message."""
    folder = tmp_path / "in"
    folder.mkdir()
    resources = world()
    hostile = admin(
        "h1", dosage=dosage(route={"coding": [{"system": "javascript:x", "code": IMG}]})
    )
    by_type: dict[str, list] = {}
    for r in [*resources, hostile]:
        by_type.setdefault(r["resourceType"], []).append(r)
    for rtype, items in by_type.items():
        (folder / f"{rtype}.ndjson").write_text("".join(json.dumps(r) + "\n" for r in items))
    run_folder(folder, tmp_path / "out", rules(), Config(), CREATED)
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    data = data_block(page)
    assert any(IMG in s for s in data["strings"])  # the message quotes the code...
    assert "<img" not in markup(page)  # ...and the page holds it only escaped inside the JSON block


# ----------------------------------------------------------------------------- links


@pytest.mark.parametrize(
    "url, base",
    [
        ("https://ehr.example.org/fhir/", "https://ehr.example.org/fhir"),
        ("http://127.0.0.1:8080/fhir", "http://127.0.0.1:8080/fhir"),
        ("HTTPS://EHR.example.org/r4", "HTTPS://EHR.example.org/r4"),
        ("javascript:alert(1)", None),
        ("JavaScript://ehr.example.org/%0aalert(1)", None),
        ("data:text/html,<script>alert(1)</script>", None),
        ("/work/fixtures/demo", None),
        ('https://ehr.example.org/fhir"onmouseover=alert(1)', None),
        ("https:///no-host", None),
        (None, None),
    ],
)
def test_links_go_only_to_an_http_or_https_server(url, base):
    assert server_base(url) == base


def test_resource_links_encode_the_id():
    base = "https://ehr.example.org/fhir"
    assert (
        resource_url(base, "MedicationAdministration/ma-1")
        == f"{base}/MedicationAdministration/ma-1"
    )
    assert resource_url(base, 'Task/a b/"<x>?#') == f"{base}/Task/a%20b%2F%22%3Cx%3E%3F%23"
    assert resource_url(base, "javascript:alert(1)") == ""
    assert resource_url(None, "Task/t1") == ""


def test_a_server_run_links_the_administration_to_the_source_and_the_task_to_the_target(demo_run):
    report = report_of(demo_run)
    meta = {"source": "https://ehr.example.org/fhir", "target": "https://billing.example.org/fhir/"}
    ctx = page_context(view_of_entries(report["administrations"]), meta, report["summary"])
    data = data_block(render_html(ctx))
    assert data["sourceBase"] == "https://ehr.example.org/fhir"
    assert data["targetBase"] == "https://billing.example.org/fhir"


# ----------------------------------------------------------------------------- the report command


def test_report_command_renders_a_saved_report(demo_run, tmp_path, capsys):
    out = tmp_path / "page" / "r.html"
    assert (
        cli.main(
            [
                "report",
                str(demo_run / "report.json"),
                "--html",
                str(out),
                "--csv",
                str(tmp_path / "w.csv"),
            ]
        )
        == 0
    )
    assert f"Wrote {out}" in capsys.readouterr().out
    page = out.read_text(encoding="utf-8")
    assert f'id="h-administrations">{DEMO_ADMINISTRATIONS}<' in page
    # the history beside the report (the run's own line) is found without --history
    assert "First recorded run" in page
    assert (tmp_path / "w.csv").read_bytes().startswith(b"\xef\xbb\xbf")


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        (b'{"administrations": [', "is not valid JSON"),
        (b"\xff\xfe not utf-8", "is not valid JSON"),
        (b"[1, 2]", "is not a fhir-injection report.json"),
        (b'{"administrations": [], "summary": {}}', "is not a fhir-injection report.json"),
    ],
)
def test_report_command_refuses_a_missing_or_malformed_report_with_exit_2(
    tmp_path, capsys, content, message
):
    path = tmp_path / "report.json"
    if content is not None:
        path.write_bytes(content)
    assert cli.main(["report", str(path), "--html", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert f"report file {path} {message}" in err
    assert not (tmp_path / "r.html").exists()


def test_report_command_needs_html_and_an_existing_history(demo_run, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["report", str(demo_run / "report.json")])
    assert exc.value.code == 2
    assert "--html" in capsys.readouterr().err
    code = cli.main(
        [
            "report",
            str(demo_run / "report.json"),
            "--html",
            str(tmp_path / "r.html"),
            "--history",
            str(tmp_path / "none.jsonl"),
        ]
    )
    assert code == 2
    assert "history file" in capsys.readouterr().err


def test_report_json_keeps_its_shape_apart_from_the_performer(demo_run):
    entry = report_of(demo_run)["administrations"][0]
    assert list(entry)[:12] == [
        "administration",
        "version",
        "outcome",
        "procedure",
        "additional_procedures",
        "claim",
        "claim_status",
        "task",
        "patient",
        "encounter",
        "service_date",
        "payer_type",
    ]
