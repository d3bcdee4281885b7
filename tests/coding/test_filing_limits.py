"""Filing limits: a service past its payer's limit is reported, never billed, and opens no Task.

Medicare takes a Part B claim up to 12 months after the date of service (42 CFR 424.44(a)(1), as the
Affordable Care Act s6404 amended it); Medicaid at most 12 months (42 CFR 447.45(d)(1)), states less;
commercial payers by contract. The limits are rows of mappings/filing_limits.csv, the practice's
[filing_limits] override them, and the day counted to is the run's as-of day (never the engine's clock).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from fhir_injection import Config, run_folder
from fhir_injection.bundled import DEMO_AS_OF
from fhir_injection.config import load_config
from fhir_injection.decision.payer_tables import FilingLimit, parse_filing_limit
from fhir_injection.errors import ConfigError
from fhir_injection.sinks.claims import build_claim, build_task
from fhir_injection.sinks.report import ReportWriter
from fhir_injection.sinks.view import ReportView
from fhir_injection.sinks.worklist import write_worklist
from tests.builders import (
    ACT,
    admin,
    decide_many,
    decide_one,
    gap,
    gap_codes,
    refused_row,
    replace_resource,
    rules,
    world,
)

ROOT = Path(__file__).resolve().parents[2]


def world_of(day: str, payer: str = "medicare") -> list[dict]:
    """The builders' office visit moved to ``day`` (YYYY-MM-DD), covered and consented that day."""
    w = world(payer=payer)
    w = replace_resource(
        w, "Encounter", period={"start": f"{day}T09:00:00-05:00", "end": f"{day}T11:00:00-05:00"}
    )
    w = replace_resource(w, "Coverage", period={"start": "2020-01-01", "end": "2030-12-31"})
    return replace_resource(
        w,
        "Consent",
        dateTime="2020-01-01",
        provision={"period": {"start": "2020-01-01", "end": "2030-12-31"}},
    )


def given_on(day: str, **changes) -> dict:
    return admin(effectiveDateTime=f"{day}T09:30:00-05:00", **changes)


# ----------------------------------------------------------------------------- the rule's own example


def test_medicare_12_months_from_the_date_of_service_42_cfr_424_44():
    """Service 2025-10-01: the claim can be filed through 2026-10-01 (12 months); on 2026-10-02 it is late."""
    w = world_of("2025-10-01")
    last_day = decide_one(given_on("2025-10-01"), w, Config(as_of=date(2026, 10, 1)))
    assert (last_day.outcome, last_day.filing_deadline, last_day.days_left) == (
        "claim",
        "2026-10-01",
        0,
    )
    assert last_day.filing_limit == "12m" and last_day.claim_status == "active"

    late = decide_one(given_on("2025-10-01"), w, Config(as_of=date(2026, 10, 2)))
    assert (late.outcome, late.filing_deadline, late.days_left) == (
        "past-filing-limit",
        "2026-10-01",
        -1,
    )
    assert gap_codes(late) == ["past-filing-limit"]
    assert "last day 2026-10-01" in late.gaps[0].message
    assert (
        late.claim_status is None and late.estimated_amount > 0
    )  # its dollars are still counted, as lost


def test_past_the_limit_there_is_no_claim_and_no_task_even_with_gaps_to_fix():
    w = world_of("2025-10-01")
    held = given_on(
        "2025-10-01", dosage={**admin()["dosage"], "dose": None}
    )  # missing-dose: an error
    before = decide_one(held, w, Config(as_of=date(2026, 9, 30)))
    assert before.outcome == "held" and before.days_left == 1
    assert build_task(before, Config(), rules(), "2026-09-30T00:00:00Z") is not None

    after = decide_one(held, w, Config(as_of=date(2026, 10, 2)))
    assert after.outcome == "past-filing-limit"
    assert "missing-dose" in gap_codes(after)  # the report still says what was wrong
    assert after.actionable_gaps == ()
    assert build_task(after, Config(), rules(), "2026-10-02T00:00:00Z") is None
    assert build_claim(after, Config(), "2026-10-02T00:00:00Z") is None


def test_without_an_as_of_day_the_deadline_is_given_and_nothing_is_judged_past():
    d = decide_one(given_on("2020-01-06"), world_of("2020-01-06"))
    assert (d.outcome, d.filing_deadline, d.days_left) == ("claim", "2021-01-06", None)


def test_months_end_on_the_last_day_of_a_shorter_month_and_days_count_from_the_service():
    twelve = parse_filing_limit("12m")
    assert twelve == FilingLimit(12, "months", "12m")
    assert twelve.deadline(date(2024, 2, 29)) == date(2025, 2, 28)
    assert parse_filing_limit("6m").deadline(date(2025, 8, 31)) == date(2026, 2, 28)
    assert parse_filing_limit("90d").deadline(date(2025, 10, 1)) == date(2025, 12, 30)
    assert parse_filing_limit("none") is None
    for bad in ("12", "m", "0d", "-5d", "12y", "", 12):
        with pytest.raises(ValueError):
            parse_filing_limit(bad)


# ----------------------------------------------------------------------------- per payer type


def test_the_shipped_limits_per_payer_type_each_with_its_source():
    limits = rules().filing_limits
    assert {pt: (lim.text if lim else None) for pt, lim in limits.items()} == {
        "medicare": "12m",
        "medicaid": "12m",
        "commercial": "365d",
        "self-pay": None,
    }
    with open(ROOT / "mappings" / "filing_limits.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert "42 CFR 424.44" in next(r["source"] for r in rows if r["payer_type"] == "medicare")
    assert "42 CFR 447.45" in next(r["source"] for r in rows if r["payer_type"] == "medicaid")


def test_a_limit_is_configurable_per_payer_type():
    w = world_of("2025-10-01", payer="commercial")
    shipped = decide_one(given_on("2025-10-01"), w, Config(as_of=date(2026, 1, 5)))
    assert (shipped.outcome, shipped.filing_deadline) == ("claim", "2026-10-01")  # 365 days
    ninety = Config(as_of=date(2026, 1, 5), filing_limits={"commercial": parse_filing_limit("90d")})
    d = decide_one(given_on("2025-10-01"), w, ninety)
    assert (d.outcome, d.filing_deadline, d.days_left) == ("past-filing-limit", "2025-12-30", -6)
    # the Medicare patient is not touched by the commercial limit
    assert decide_one(given_on("2025-10-01"), world_of("2025-10-01"), ninety).outcome == "claim"


def test_the_toml_configuration_sets_limits_and_the_as_of_day(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('as_of = 2026-11-30\n[filing_limits]\nmedicaid = "180d"\ncommercial = "none"\n')
    config = load_config(cfg)
    assert config.as_of == date(2026, 11, 30)
    assert config.filing_limits == {"medicaid": parse_filing_limit("180d"), "commercial": None}


@pytest.mark.parametrize(
    "text, words",
    [
        ('[filing_limits]\nmedicaid = "180"\n', "[filing_limits] medicaid"),
        ('[filing_limits]\ntricare = "90d"\n', "'tricare', not a payer type"),
        ('filing_limits = "90d"\n', "[filing_limits] maps a payer type"),
        ('as_of = "next week"\n', "as_of is 'next week'"),
        ("as_of = 2026-11-30T10:00:00Z\n", "as_of is"),
    ],
)
def test_a_bad_setting_is_refused_with_a_message_naming_it(tmp_path, text, words):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert words in str(err.value) and str(cfg) in str(err.value)


@pytest.mark.parametrize(
    "old, new, words",
    [
        ("medicare,12m,", "medicare,12 months,", "not a number of days or months"),
        ("medicaid,12m,", "medicare,12m,", "has a row already"),
        ("self-pay,none,", "tricare,none,", "column 'payer_type' is 'tricare'"),
    ],
)
def test_a_broken_row_of_filing_limits_csv_names_the_file_and_row(tmp_path, old, new, words):
    error, row = refused_row(tmp_path, "filing_limits.csv", old, new)
    assert error.file == "filing_limits.csv" and error.row == row
    assert words in str(error)


def test_self_pay_has_no_limit_and_an_unknown_payer_type_has_the_longest_of_any():
    self_pay = replace_resource(world_of("2021-03-01"), "Coverage", type={"text": "NO_INSURANCE"})
    d = decide_one(given_on("2021-03-01"), self_pay, Config(as_of=date(2026, 11, 30)))
    assert (d.outcome, d.filing_limit, d.filing_deadline, d.days_left) == (
        "claim",
        "none",
        None,
        None,
    )

    # whatever payer "public" turns out to be, the longest limit in the table (12 months, 42 CFR
    # 424.44 and 447.45) has ended: no claim any payer would take, so no Task for the payer question
    public = replace_resource(
        world_of("2021-03-01"),
        "Coverage",
        type={"coding": [{"system": ACT, "code": "PUBLICPOL"}]},
        payor=[{"display": "Government"}],
    )
    d = decide_one(given_on("2021-03-01"), public, Config(as_of=date(2026, 11, 30)))
    assert d.payer_type is None and d.filing_limit == "12m (the longest of any payer type)"
    assert d.filing_deadline == "2022-03-01" and d.outcome == "past-filing-limit"
    assert "no payer type known" in gap(d, "past-filing-limit").message

    # within the longest limit it is held for its payer, with the days left of that limit
    d = decide_one(given_on("2021-03-01"), public, Config(as_of=date(2021, 12, 1)))
    assert d.outcome == "held" and "unknown-payer-type" in gap_codes(d)
    assert (d.filing_deadline, d.days_left) == ("2022-03-01", 90)

    # the practice may say what to assume instead
    d = decide_one(
        given_on("2021-03-01"),
        public,
        Config(as_of=date(2021, 12, 1), filing_limits={"unknown": parse_filing_limit("90d")}),
    )
    assert d.outcome == "past-filing-limit" and d.filing_limit == "90d"

    # a longer configured limit of one payer type is the longest
    d = decide_one(
        given_on("2021-03-01"),
        public,
        Config(as_of=date(2022, 3, 2), filing_limits={"commercial": parse_filing_limit("18m")}),
    )
    assert d.filing_deadline == "2022-09-01" and d.outcome == "held"


def test_what_is_not_billed_anyway_is_not_past_a_limit():
    w = world_of("2021-03-01")
    oral = decide_one(
        given_on(
            "2021-03-01",
            dosage={
                **admin()["dosage"],
                "route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006"}]},
            },
        ),
        w,
        Config(as_of=date(2026, 11, 30)),
    )
    assert oral.outcome == "not-billable" and oral.filing_deadline is None


# ----------------------------------------------------------------------------- report, worklist, page


def _entries_and_summary(decisions):
    fh, view = io.StringIO(), ReportView()
    writer = ReportWriter(fh, view=view)
    for d in decisions:
        writer.add(d, None, None, None)
    summary = writer.close()
    return json.loads(fh.getvalue()), summary, view


def test_lost_dollars_are_reported_apart_from_held_and_billable():
    w = world_of("2025-10-01")
    late = given_on("2025-10-01", id="late")
    held_late = given_on(
        "2025-10-01", id="held-late", dosage={**admin()["dosage"], "dose": None, "site": None}
    )
    decisions = decide_many([late, held_late], w, Config(as_of=date(2026, 10, 2)))
    assert [d.outcome for d in decisions] == ["past-filing-limit", "past-filing-limit"]
    report, summary, view = _entries_and_summary(decisions)
    lost = sum((d.estimated_amount for d in decisions), Decimal(0))
    assert lost > 0
    assert summary["estimated_lost_to_filing_limit_usd"] == float(lost)
    assert summary["estimated_held_usd"] == summary["estimated_billable_usd"] == 0
    assert summary["outcomes"]["past-filing-limit"] == 2 and summary["tasks"] == 0
    assert view.totals()["estimated_lost_to_filing_limit_usd"] == float(lost)
    assert view.worklist == []  # nothing to fix: no worklist row either
    entry = report["administrations"][0]
    assert (entry["filing_deadline"], entry["days_left"], entry["filing_limit"]) == (
        "2026-10-01",
        -1,
        "12m",
    )


def test_the_worklist_leads_with_the_fewest_days_left():
    site_missing = {**admin()["dosage"], "site": None}  # missing-site: a warning (bills, Task)
    dose_missing = {**admin()["dosage"], "dose": None}  # missing-dose: an error (held)
    admins = [
        admin(id="recent", effectiveDateTime="2026-10-05T09:30:00-05:00", dosage=dose_missing),
        given_on("2025-11-03", id="old-warning", dosage=site_missing),
    ]
    resources = world_of("2025-11-03")
    second = replace_resource(world(), "Encounter", id="e-p1b")
    resources.append(next(r for r in second if r["resourceType"] == "Encounter"))
    admins[0]["context"] = {"reference": "Encounter/e-p1b"}
    decisions = decide_many(admins, resources, Config(as_of=date(2026, 10, 20)))
    by_id = {d.administration_id: d for d in decisions}
    assert by_id["old-warning"].days_left == 14 and by_id["recent"].days_left == 350
    _, _, view = _entries_and_summary(decisions)
    rows = view.sorted_worklist()
    assert [r.administration for r in rows][:1] == ["MedicationAdministration/old-warning"]
    assert [r.days_left for r in rows] == sorted(r.days_left for r in rows)
    assert (
        rows[-1].severity == "error"
    )  # an error with a year left comes after a warning with 14 days
    out = io.StringIO()
    write_worklist(out, rows)
    parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert (parsed[0]["days_left"], parsed[0]["filing_deadline"]) == ("14", "2026-11-03")


# ----------------------------------------------------------------------------- data we did not write


def _synthea(tmp_path, config):
    result = run_folder(
        ROOT / "fixtures" / "synthea" / "bulk", tmp_path, rules(), config, "2026-11-30T00:00:00Z"
    )
    return result, json.loads((tmp_path / "report.json").read_text())


def test_synthea_has_no_coverage_so_the_longest_limit_of_any_payer_applies(tmp_path):
    """Synthea's bulk export carries no Coverage: the payer type is unknown, so the limit is the
    longest of any payer type; its decades-old services are past it, open no Task and form no Claim."""
    _, report = _synthea(tmp_path, Config(as_of=date.fromisoformat(DEMO_AS_OF)))
    billed = [
        e for e in report["administrations"] if e["outcome"] in ("claim", "held", "not-96372")
    ]
    past = [e for e in report["administrations"] if e["outcome"] == "past-filing-limit"]
    assert past and all(
        e["filing_limit"] == "12m (the longest of any payer type)" for e in billed + past
    )
    assert all(e["days_left"] >= 0 for e in billed)
    assert all(e["task"] is None and e["claim"] is None and e["days_left"] < 0 for e in past)
    assert len(past) > 20 * len(billed)  # histories back to the 1990s: nearly all of it is past


def test_synthea_opens_no_task_for_a_service_past_its_filing_limit(tmp_path):
    """Synthea's histories go back decades. With the practice's limit for an unknown payer type
    ([filing_limits] unknown = "12m") and its sites as offices, those past it open no Task and form
    no Claim, and their dollars are reported as lost."""
    config = Config(
        as_of=date.fromisoformat(DEMO_AS_OF),
        filing_limits={"unknown": parse_filing_limit("12m")},
        default_place_of_service="11",
    )
    result, report = _synthea(tmp_path, config)
    entries = report["administrations"]
    past = [e for e in entries if e["outcome"] == "past-filing-limit"]
    assert past, result.summary["outcomes"]
    assert all(e["task"] is None and e["claim"] is None and e["days_left"] < 0 for e in past)
    tasks = [
        json.loads(x) for x in (tmp_path / "Task.ndjson").read_text().splitlines() if x.strip()
    ]
    tasked = {t["focus"]["reference"] for t in tasks}
    by_ref = {e["administration"]: e for e in entries}
    assert all(by_ref[ref]["days_left"] is None or by_ref[ref]["days_left"] >= 0 for ref in tasked)
    assert result.summary["estimated_lost_to_filing_limit_usd"] > 0


def test_the_demo_is_read_as_of_its_own_day_and_its_filing_cases_are_as_built(tmp_path):
    from fhir_injection.cli import main

    expected = json.loads((ROOT / "fixtures" / "demo-expected.json").read_text())
    assert expected["as_of"] == DEMO_AS_OF
    assert main(["sync", "--target", str(tmp_path)]) == 0  # the bundled demo, no --as-of
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["summary"]["as_of"] == DEMO_AS_OF
    got = {e["administration"]: e for e in report["administrations"]}
    cases = {ref: want for ref, want in expected["administrations"].items() if "days_left" in want}
    assert {want["outcome"] for want in cases.values()} == {"past-filing-limit", "held"}
    for ref, want in cases.items():
        assert (got[ref]["filing_deadline"], got[ref]["days_left"]) == (
            want["filing_deadline"],
            want["days_left"],
        )
    with open(tmp_path / "worklist.csv", encoding="utf-8-sig", newline="") as fh:
        first = next(csv.DictReader(fh))
    near = next(ref for ref, want in cases.items() if want["outcome"] == "held")
    assert first["administration"] == near  # the fewest days left leads the worklist


def test_as_of_on_the_command_line_wins_and_a_bad_one_is_a_usage_error(tmp_path, capsys):
    from fhir_injection.cli import main
    from fhir_injection.errors import EXIT_USAGE

    assert main(["sync", "--target", str(tmp_path), "--as-of", "2027-10-06"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["summary"]["as_of"] == "2027-10-06"
    # a year later every October 2026 Medicare service is past its limit
    medicare = [
        e
        for e in report["administrations"]
        if e["payer_type"] == "medicare" and e["days_left"] is not None
    ]
    assert medicare and all(
        e["outcome"] == "past-filing-limit" for e in medicare if e["days_left"] < 0
    )
    assert main(["sync", "--target", str(tmp_path / "x"), "--as-of", "soon"]) == EXIT_USAGE
    assert "--as-of is 'soon'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- a first sync's window

from datetime import timedelta  # noqa: E402

from fhir_injection.clock import minus  # noqa: E402
from fhir_injection.jobs.sync import FIRST_SYNC_MARGIN_DAYS, run_sync  # noqa: E402
from tests.fakefhir import MA  # noqa: E402
from tests.fakesync import calls, clinic, make_client, options  # noqa: E402


def _sync(tmp_path, sleeps, config, **kw):
    client = make_client(sleeps)
    return run_sync(client, client, rules(), config, options(tmp_path, **kw))


def _last_updated(call) -> list[str] | None:
    return parse_qs(urlsplit(call.request.url).query).get("_lastUpdated")


def test_a_first_sync_reads_only_the_filing_window_then_goes_on_from_its_mark(
    rsps, server, tmp_path, sleeps
):
    clinic(server, patients=2, per_patient=1)
    config = Config(as_of=date(2026, 11, 30))
    first = _sync(tmp_path, sleeps, config)
    # the longest limit: Medicare's 12 months (counted as 12 x 31 days), then the margin
    start = date(2026, 11, 30) - timedelta(days=12 * 31 + FIRST_SYNC_MARGIN_DAYS)
    [search] = calls(rsps, "GET", MA, "_lastUpdated")
    # as with --since, the search starts the overlap (5 minutes) earlier
    assert _last_updated(search) == [f"ge{minus(f'{start.isoformat()}T00:00:00.000Z', 300)}"]
    assert first.summary["window"].startswith(f"first sync: changes since {start.isoformat()}")
    assert first.summary["administrations"] == 2 and first.summary["as_of"] == "2026-11-30"

    second = _sync(tmp_path, sleeps, config)
    assert second.summary["window"].startswith("changes since the last sync")
    assert _last_updated(calls(rsps, "GET", MA, "_lastUpdated")[-1]) == [
        f"ge{minus(first.mark, 300)}"
    ]


def test_full_since_and_no_as_of_day_read_what_they_say(rsps, server, tmp_path, sleeps):
    clinic(server, patients=1, per_patient=1)
    full = _sync(tmp_path / "a", sleeps, Config(as_of=date(2026, 11, 30)), full=True)
    assert full.summary["window"] == "everything (--full)"
    assert calls(rsps, "GET", MA) and not calls(rsps, "GET", MA, "_lastUpdated")
    since = _sync(
        tmp_path / "b", sleeps, Config(as_of=date(2026, 11, 30)), since="2026-01-01T00:00:00Z"
    )
    assert since.summary["window"] == "changes since 2026-01-01T00:00:00Z (--since)"
    none = _sync(tmp_path / "c", sleeps, Config())
    assert none.summary["window"].startswith("everything (first sync; no as-of day")
    assert len(calls(rsps, "GET", MA, "_lastUpdated")) == 1  # --since's, and no other


def test_the_window_follows_the_configured_limits(rsps, server, tmp_path, sleeps):
    clinic(server, patients=1, per_patient=1)
    longer = {"medicaid": parse_filing_limit("24m")}
    _sync(tmp_path, sleeps, Config(as_of=date(2026, 11, 30), filing_limits=longer))
    start = date(2026, 11, 30) - timedelta(days=24 * 31 + FIRST_SYNC_MARGIN_DAYS)
    assert _last_updated(calls(rsps, "GET", MA, "_lastUpdated")[0]) == [
        f"ge{minus(f'{start.isoformat()}T00:00:00.000Z', 300)}"
    ]


def test_a_date_the_record_contradicts_counts_no_limit():
    """A dose dated decades before its own encounter (a typing error) is not lost to a filing limit
    counted from that date: time-outside-encounter holds it for a person to check."""
    d = decide_one(given_on("1999-10-05"), world_of("2026-10-05"), Config(as_of=date(2026, 11, 30)))
    assert "time-outside-encounter" in gap_codes(d) and d.outcome == "held"
    assert d.filing_limit == "unknown: the date of service is in question (time-outside-encounter)"
    assert d.filing_deadline is None and d.days_left is None


def test_a_limit_past_the_calendar_s_end_is_its_last_day():
    assert parse_filing_limit("12m").deadline(date(9999, 6, 1)) == date.max
    assert parse_filing_limit("365d").deadline(date(9999, 6, 1)) == date.max
    assert parse_filing_limit("12m").deadline(date(9998, 12, 31)) == date(9999, 12, 31)
