"""report.html in a real headless Chromium: no console errors, the headline numbers are
report.json's, the charts are drawn, the worklist filters, sorts and pages exactly, server links
point at the right resources, and hostile text in the data runs no script."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from fhir_injection import cli
from fhir_injection.bundled import demo_config, demo_dir
from fhir_injection.config import load_config
from fhir_injection.decision.model import ACTIONABLE_OUTCOMES
from fhir_injection.jobs.offline import run_folder
from tests.browser import driver, open_report, severe
from tests.builders import rules

pytestmark = pytest.mark.browser

SOURCE = "https://ehr.example.org/fhir"
TARGET = "https://billing.example.org/fhir"
SENTINEL = "window.__pwned"
SCRIPT = f"<script>{SENTINEL}=1</script>"
IMG = f'"><img src=x onerror="{SENTINEL}=1">'
SVG = f'<svg onload="{SENTINEL}=1">'
JS_URL = f"javascript:{SENTINEL}=1//"


@pytest.fixture(scope="module")
def browser():
    b = driver()
    try:
        yield b
    finally:
        b.quit()


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The demo clinic through the offline job, twice (so the trends have two runs)."""
    out = tmp_path_factory.mktemp("demo") / "out"
    run_folder(demo_dir(), out, rules(), load_config(demo_config()), "2026-11-29T10:00:00Z")
    run_folder(demo_dir(), out, rules(), load_config(demo_config()), "2026-11-30T10:00:00Z")
    return out


@pytest.fixture(scope="module")
def report(demo) -> dict:
    return json.loads((demo / "report.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def server_page(demo, report) -> Path:
    """The demo's report as if a sync had pulled it from SOURCE and posted to TARGET."""
    saved = copy.deepcopy(report)
    saved["source"], saved["target"] = SOURCE, TARGET
    path = demo / "server-report.json"
    path.write_text(json.dumps(saved), encoding="utf-8")
    assert cli.main(["report", str(path), "--html", str(demo / "server.html")]) == 0
    return demo / "server.html"


def expected_rows(report: dict, gap: str | None = None) -> list[tuple[str, str]]:
    return sorted(
        (e["administration"].split("/", 1)[1], g["code"])
        for e in report["administrations"]
        if e["outcome"] in ACTIONABLE_OUTCOMES
        for g in e["gaps"]
        if g["severity"] in ("error", "warning") and (gap is None or g["code"] == gap)
    )


def table_rows(browser) -> list[list[str]]:
    return [
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in browser.find_elements(By.CSS_SELECTOR, "#worklist tbody tr")
    ]


def all_pages(browser) -> list[list[str]]:
    rows = table_rows(browser)
    nxt = browser.find_element(By.ID, "p-next")
    while nxt.is_enabled():
        nxt.click()
        rows += table_rows(browser)
    return rows


# ----------------------------------------------------------------------------- the demo page


def test_the_demo_page_draws_without_console_errors(browser, demo):
    ready = open_report(browser, demo / "report.html")
    assert ready["chartErrors"] == 0
    assert ready["charts"] == ready["chartsExpected"] == 7  # five of this run, two trends
    assert severe(browser) == []


def test_the_headline_numbers_are_report_json_summary(browser, demo, report):
    open_report(browser, demo / "report.html")
    s = report["summary"]
    shown = {
        i: browser.find_element(By.ID, i).text
        for i in (
            "h-administrations",
            "h-billable",
            "h-held",
            "h-claims-active",
            "h-claims-draft",
            "h-tasks",
        )
    }
    assert shown == {
        "h-administrations": f"{s['administrations']:,}",
        "h-billable": f"${s['estimated_billable_usd']:,.2f}",
        "h-held": f"${s['estimated_held_usd']:,.2f}",
        "h-claims-active": f"{s['claims']['active']:,}",
        "h-claims-draft": f"{s['claims']['draft']:,}",
        "h-tasks": f"{s['tasks']:,}",
    }
    assert browser.find_element(By.ID, "d-held").text == "+0.00 since previous run"


def test_every_chart_is_drawn_with_one_mark_per_value(browser, demo):
    open_report(browser, demo / "report.html")
    data = json.loads(browser.find_element(By.ID, "report-data").get_attribute("textContent"))
    for name, spec in data["charts"].items():
        chart = browser.find_element(By.ID, f"chart-{name}")
        assert chart.find_elements(By.TAG_NAME, "svg"), name
        n = len(spec["data"]["values"])
        assert n > 0, name
        if spec["mark"]["type"] == "bar":
            bars = chart.find_elements(By.CSS_SELECTOR, "g.mark-rect.role-mark path")
            assert len(bars) == n, name
        else:  # lines with a point per value
            points = chart.find_elements(By.CSS_SELECTOR, "g.mark-symbol.role-mark path")
            assert len(points) == n, name
            assert chart.find_elements(By.CSS_SELECTOR, "g.mark-line.role-mark path"), name
        title = chart.find_element(By.CSS_SELECTOR, "g.role-title text").text
        assert title == spec["title"]


def test_the_worklist_pages_through_exactly_the_actionable_gaps(browser, demo, report):
    open_report(browser, demo / "report.html")
    expected = expected_rows(report)
    assert len(expected) > 50  # more than one page
    assert len(table_rows(browser)) == 50
    rows = all_pages(browser)
    assert sorted((r[1], r[4]) for r in rows) == expected
    assert browser.find_element(By.ID, "f-count").text == f"{len(expected)} of {len(expected)} gaps"


@pytest.mark.parametrize("gap", ["missing-site", "units-over-mue", "em-same-day"])
def test_filtering_by_a_gap_code_shows_exactly_its_rows(browser, demo, report, gap):
    open_report(browser, demo / "report.html")
    Select(browser.find_element(By.ID, "f-gap")).select_by_value(gap)
    rows = all_pages(browser)
    assert rows and {r[4] for r in rows} == {gap}
    assert sorted((r[1], r[4]) for r in rows) == expected_rows(report, gap)
    Select(browser.find_element(By.ID, "f-severity")).select_by_value("error")
    errors = all_pages(browser)
    assert all(r[3] == "error" and r[4] == gap for r in errors)
    assert len(errors) == sum(
        1
        for e in report["administrations"]
        if e["outcome"] in ACTIONABLE_OUTCOMES
        for g in e["gaps"]
        if g["code"] == gap and g["severity"] == "error"
    )


def test_clicking_a_header_sorts_the_rows(browser, demo):
    open_report(browser, demo / "report.html")
    header = browser.find_element(By.CSS_SELECTOR, '#worklist th[data-col="10"]')
    header.click()
    amounts = [float(r[10]) for r in all_pages(browser)]
    assert amounts == sorted(amounts)
    open_report(browser, demo / "report.html")
    header = browser.find_element(By.CSS_SELECTOR, '#worklist th[data-col="0"]')
    header.click()
    header.click()  # descending
    dates = [r[0] for r in all_pages(browser)]
    assert dates == sorted(dates, reverse=True)
    assert header.get_attribute("aria-sort") == "descending"


def test_the_folder_run_page_has_no_server_links(browser, demo):
    open_report(browser, demo / "report.html")
    assert browser.find_elements(By.CSS_SELECTOR, "#worklist a") == []


def test_server_links_point_at_the_administration_and_the_task(browser, server_page, report):
    open_report(browser, server_page)
    assert severe(browser) == []
    tasks = {e["administration"].split("/", 1)[1]: e["task"] for e in report["administrations"]}
    seen = 0
    for tr in browser.find_elements(By.CSS_SELECTOR, "#worklist tbody tr"):
        cells = tr.find_elements(By.TAG_NAME, "td")
        admin_link = cells[1].find_element(By.TAG_NAME, "a")
        admin_id = admin_link.text
        assert admin_link.get_attribute("href") == f"{SOURCE}/MedicationAdministration/{admin_id}"
        task_link = cells[11].find_element(By.TAG_NAME, "a")
        assert tasks[admin_id] == f"Task/{task_link.text}"
        assert task_link.get_attribute("href") == f"{TARGET}/{tasks[admin_id]}"
        assert admin_link.get_attribute("rel") == "noopener noreferrer"
        seen += 1
    assert seen == 50


# ----------------------------------------------------------------------------- hostile data


def hostile(report: dict, source: str, target: str) -> dict:
    saved = copy.deepcopy(report)
    saved["source"], saved["target"] = source, target
    held = [e for e in saved["administrations"] if e["outcome"] == "held"]
    held[0]["administration"] = f"MedicationAdministration/{IMG}"
    held[0]["performer"] = SCRIPT
    held[0]["gaps"][0]["message"] = f"{SCRIPT} then {IMG} and {SVG}"
    held[0]["task"] = f"Task/{JS_URL}"
    held[1]["hcpcs"] = SVG
    held[1]["gaps"][0]["field"] = IMG
    held[1]["gaps"].append(
        {"code": SCRIPT, "severity": "error", "message": IMG, "field": SVG, "rule": ""}
    )
    return saved


@pytest.mark.parametrize("source, target", [(JS_URL, "javascript:alert(1)"), (SOURCE, TARGET)])
def test_hostile_text_shows_as_text_and_runs_no_script(
    browser, demo, report, tmp_path, source, target
):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(hostile(report, source, target)), encoding="utf-8")
    assert cli.main(["report", str(path), "--html", str(tmp_path / "r.html")]) == 0
    open_report(browser, tmp_path / "r.html")
    browser.find_element(By.ID, "f-text").send_keys("__pwned")
    total = len(expected_rows(report)) + 1  # the hostile gap code added one row
    WebDriverWait(browser, 10).until(
        lambda b: b.find_element(By.ID, "f-count").text != f"{total} of {total} gaps"
    )
    rows = table_rows(browser)
    texts = " | ".join(" ".join(r) for r in rows)
    assert SCRIPT in texts and IMG.strip() in texts and SVG in texts  # shown, as text
    # the filter <option> of the hostile gap code is text too
    assert SCRIPT in [
        o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#f-gap option")
    ]
    assert (
        browser.find_elements(By.CSS_SELECTOR, "#worklist img, #worklist svg, #worklist script")
        == []
    )
    assert browser.execute_script(f"return typeof {SENTINEL}") == "undefined"
    for link in browser.find_elements(By.TAG_NAME, "a"):
        assert re.match(r"https?://", link.get_attribute("href")), link.get_attribute("href")
    if source == SOURCE:  # an id that is markup is one URL-encoded path segment
        hrefs = {
            a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#worklist a")
        }
        assert f"{SOURCE}/MedicationAdministration/{quote(IMG, safe='')}" in hrefs
        assert f"{TARGET}/Task/{quote(JS_URL, safe='')}" in hrefs
    else:
        assert browser.find_elements(By.CSS_SELECTOR, "#worklist a") == []
    assert severe(browser) == []
