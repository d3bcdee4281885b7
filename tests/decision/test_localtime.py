"""Dates of service in the clinic's local time (fhir_injection/decision/localtime.py).

Oracle Health and Epic send instants in UTC: an injection given at 19:30 EDT on 1 October arrives
as ``2026-10-02T00:30:00Z``. The date of service is the clinic's local date (CMS-1500 item 24A), read
in the zone found, in order: the encounter period's own offset (when the administration is in UTC),
a time-zone extension on the encounter's Location or Organization, the configured ``timezone``.
With none of them an instant's own offset's date stays. Each test changes one thing from a clean
baseline and asserts its one consequence.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta

import pytest
import responses

from fhir_injection import Config, Context, build_claim, load_config, run_folder
from fhir_injection.decision import localtime
from fhir_injection.decision.zones import zone_named
from fhir_injection.errors import ConfigError
from fhir_injection.fhir.client import FhirClient
from fhir_injection.fhir.http import HttpSession
from fhir_injection.jobs.sync import SyncOptions, run_sync
from fhir_injection.sources.resolver import _sibling_lookups
from tests.builders import (
    CPT,
    CREATED,
    admin,
    decide_many,
    decide_one,
    gap_codes,
    line,
    replace_resource,
    rules,
    world,
)

TZ_EXT = "http://hl7.org/fhir/StructureDefinition/timezone"
TZ_CODE_EXT = "http://hl7.org/fhir/StructureDefinition/tz-code"
NEW_YORK = Config(timezone="America/New_York")

# The injection: 19:30 EDT on 1 October, sent in UTC.
EVENING_UTC = "2026-10-02T00:30:00Z"
UTC_VISIT = {
    "start": "2026-10-01T23:10:00Z",
    "end": "2026-10-02T00:45:00Z",
}  # Oracle: periods in UTC
LOCAL_VISIT = {"start": "2026-10-01T19:10:00-04:00", "end": "2026-10-01T20:45:00-04:00"}


def clinic(
    period: dict = UTC_VISIT,
    location_zone: str | None = None,
    org_zone: str | None = None,
    url: str = TZ_EXT,
    payer: str = "commercial",
    **world_kw,
) -> list[dict]:
    """The baseline world with the encounter's period, and a Location / Organization time zone."""
    resources = replace_resource(world(payer=payer, **world_kw), "Encounter", period=period)
    encounter = next(r for r in resources if r["resourceType"] == "Encounter")
    if location_zone is not None:
        resources.append(
            {
                "resourceType": "Location",
                "id": "room-1",
                "name": "Injection room",
                "extension": [{"url": url, "valueCode": location_zone}],
            }
        )
        encounter["location"] = [
            {"location": {"reference": "Location/room-1"}, "status": "completed"}
        ]
    if org_zone is not None:
        org = next(
            r for r in resources if r["resourceType"] == "Organization" and r["id"] == "clinic"
        )
        org["extension"] = [{"url": url, "valueCode": org_zone}]
    return resources


def evening(when: str = EVENING_UTC, **changes) -> dict:
    return admin(effectiveDateTime=when, **changes)


def service_date(
    resources: list[dict], when: str = EVENING_UTC, config: Config | None = None
) -> str | None:
    return decide_one(evening(when), resources, config).service_date


# --------------------------------------------------------------------------- where the zone comes from


def test_without_any_zone_a_utc_instant_keeps_its_own_date():
    """Documented fallback: nothing names the clinic's zone, so the instant's own offset's date stays."""
    assert service_date(clinic()) == "2026-10-02"


def test_the_encounters_own_offset_gives_the_local_day_of_a_utc_administration():
    assert service_date(clinic(period=LOCAL_VISIT)) == "2026-10-01"


def test_the_encounter_offset_is_used_only_when_the_administration_is_in_utc():
    # 23:30 at −05:00 on 1 October, in a visit written at −04:00: the administration's own offset
    # is a local one, so it is not replaced by the encounter's.
    assert service_date(clinic(period=LOCAL_VISIT), "2026-10-01T23:30:00-05:00") == "2026-10-01"


@pytest.mark.parametrize("url", [TZ_EXT, TZ_CODE_EXT])
def test_a_time_zone_on_the_encounters_location_gives_the_local_day(url):
    assert service_date(clinic(location_zone="America/New_York", url=url)) == "2026-10-01"


@pytest.mark.parametrize("url", [TZ_EXT, TZ_CODE_EXT])
def test_a_time_zone_on_the_encounters_organization_gives_the_local_day(url):
    assert service_date(clinic(org_zone="America/New_York", url=url)) == "2026-10-01"


def test_the_configured_timezone_gives_the_local_day():
    assert service_date(clinic(), config=NEW_YORK) == "2026-10-01"


def test_the_location_zone_comes_before_the_organizations():
    # 05:30Z on 2 October is 22:30 on 1 October in Los Angeles, 01:30 on 2 October in New York.
    resources = clinic(location_zone="America/Los_Angeles", org_zone="America/New_York")
    assert service_date(resources, "2026-10-02T05:30:00Z") == "2026-10-01"


def test_the_data_comes_before_the_configured_timezone():
    resources = clinic(org_zone="America/Los_Angeles")
    assert service_date(resources, "2026-10-02T05:30:00Z", NEW_YORK) == "2026-10-01"


def test_the_encounter_offset_comes_before_a_location_zone():
    resources = clinic(period=LOCAL_VISIT, location_zone="Asia/Tokyo")
    assert service_date(resources) == "2026-10-01"  # Tokyo would say 09:30 on 2 October


def test_a_utc_encounter_period_says_nothing_and_the_location_zone_is_used():
    resources = clinic(period=UTC_VISIT, location_zone="America/New_York")
    assert service_date(resources) == "2026-10-01"


@pytest.mark.parametrize(
    "code", ["Eastern", "America/New_Yrok", "localtime", "America", "../etc/passwd", ""]
)
def test_a_code_that_names_no_zone_is_passed_over(code):
    resources = clinic(location_zone=code, org_zone="America/New_York")
    assert service_date(resources) == "2026-10-01"  # the Organization's zone, not an error


def test_a_known_zone_converts_an_instant_written_in_another_offset():
    # 23:30 at −05:00 on 1 October is 00:30 EDT on 2 October at a clinic in New York.
    assert service_date(clinic(), "2026-10-01T23:30:00-05:00", NEW_YORK) == "2026-10-02"


def test_a_date_or_a_time_without_offset_is_already_local_and_never_converted():
    assert service_date(clinic(), "2026-10-02", NEW_YORK) == "2026-10-02"
    assert service_date(clinic(), "2026-10-02T00:30:00", NEW_YORK) == "2026-10-02"


def test_an_administration_without_an_encounter_uses_the_configured_timezone():
    # no context, and no encounter in the source (one containing its time would place it)
    d = decide_one(
        evening(context=None), [r for r in clinic() if r["resourceType"] != "Encounter"], NEW_YORK
    )
    assert "missing-encounter" in gap_codes(d) and d.service_date == "2026-10-01"


def test_the_claim_carries_the_local_service_date():
    d = decide_one(evening(), clinic(), NEW_YORK)
    claim = build_claim(d, NEW_YORK, created=CREATED)
    assert claim["billablePeriod"] == {"start": "2026-10-01", "end": "2026-10-01"}
    assert {item["servicedDate"] for item in claim["item"]} == {"2026-10-01"}


# --------------------------------------------------------------------------- daylight saving time


@pytest.mark.parametrize(
    "when, local_day",
    [
        # Saturday 31 October 2026, 20:30 EDT (UTC−4): before the change
        ("2026-11-01T00:30:00Z", "2026-10-31"),
        # Sunday 1 November 2026, 19:30 EST (UTC−5): after the change at 02:00
        ("2026-11-02T00:30:00Z", "2026-11-01"),
        # Sunday 1 November, 23:30 EST: a fixed EDT offset would make it 00:30 on 2 November
        ("2026-11-02T04:30:00Z", "2026-11-01"),
        # Sunday 1 November, 00:30 EDT (before the 02:00 change): a fixed EST offset would make it
        # 23:30 on 31 October
        ("2026-11-01T04:30:00Z", "2026-11-01"),
    ],
)
def test_evening_injections_either_side_of_the_change_to_standard_time(when, local_day):
    resources = replace_resource(clinic(), "Encounter", period=None)
    assert service_date(resources, when, NEW_YORK) == local_day


def test_the_new_york_zone_changes_offset_on_1_november_2026():
    zone = zone_named("America/New_York")
    assert datetime(2026, 10, 31, 20, 30, tzinfo=zone).utcoffset() == timedelta(hours=-4)
    assert datetime(2026, 11, 1, 19, 30, tzinfo=zone).utcoffset() == timedelta(hours=-5)


# --------------------------------------------------------------------------- the same-day rules


def _same_patient(*times: str) -> list[dict]:
    return [admin(id=f"ma{i}", effectiveDateTime=t) for i, t in enumerate(times)]


MORNING_UTC = "2026-10-01T14:00:00Z"  # 10:00 EDT on 1 October


def test_two_injections_of_one_local_day_get_the_distinct_modifier_across_utc_midnight():
    resources = replace_resource(clinic(), "Encounter", period=None)
    first, second = decide_many(_same_patient(MORNING_UTC, EVENING_UTC), resources, NEW_YORK)
    assert first.service_date == second.service_date == "2026-10-01"
    assert line(first, "administration").modifiers == ()
    assert line(second, "administration").modifiers == ("59",)


def test_without_a_zone_the_same_two_injections_fall_on_two_days():
    resources = replace_resource(clinic(), "Encounter", period=None)
    first, second = decide_many(_same_patient(MORNING_UTC, EVENING_UTC), resources)
    assert (first.service_date, second.service_date) == ("2026-10-01", "2026-10-02")
    assert line(second, "administration").modifiers == ()


def test_the_mue_counts_injections_of_the_local_day():
    resources = replace_resource(clinic(), "Encounter", period=None)
    times = [
        "2026-10-01T14:00:00Z",
        "2026-10-01T16:00:00Z",
        "2026-10-01T18:00:00Z",
        "2026-10-01T20:00:00Z",
        "2026-10-02T01:00:00Z",
    ]  # the 5th: 21:00 EDT on 1 October
    decisions = decide_many(_same_patient(*times), resources, NEW_YORK)
    assert [("units-over-mue" in gap_codes(d)) for d in decisions] == [False] * 4 + [True]
    assert decisions[4].outcome == "held"


def test_the_same_injection_sent_in_utc_and_in_local_time_is_a_duplicate():
    resources = replace_resource(clinic(), "Encounter", period=None)
    local_copy, utc_copy = decide_many(
        _same_patient("2026-10-01T20:30:00-04:00", EVENING_UTC), resources
    )
    assert local_copy.outcome == "claim"
    assert utc_copy.outcome == "not-billable" and gap_codes(utc_copy) == ["duplicate"]


def _charge_item(when: str) -> dict:
    # an E/M charged on another encounter of the patient: only its day can make it "same day"
    return {
        "resourceType": "ChargeItem",
        "id": "ci-1",
        "status": "billable",
        "subject": {"reference": "Patient/p1"},
        "context": {"reference": "Encounter/other"},
        "code": {"coding": [{"system": CPT, "code": "99213"}]},
        "occurrenceDateTime": when,
    }


def test_an_em_charged_in_utc_is_on_the_same_local_day():
    resources = [
        *replace_resource(clinic(), "Encounter", period=None),
        _charge_item("2026-10-02T00:10:00Z"),
    ]
    d = decide_one(evening("2026-10-01T21:00:00-04:00"), resources, NEW_YORK)
    assert "em-same-day" in gap_codes(d)


def test_without_a_zone_an_em_charged_after_utc_midnight_is_another_day():
    resources = [
        *replace_resource(clinic(), "Encounter", period=None),
        _charge_item("2026-10-02T00:10:00Z"),
    ]
    d = decide_one(evening("2026-10-01T21:00:00-04:00"), resources)
    assert "em-same-day" not in gap_codes(d)


# --------------------------------------------------------------------------- other dates read locally


def test_a_utc_evening_injection_is_inside_a_date_only_visit_of_its_local_day():
    resources = clinic(
        period={"start": "2026-10-01", "end": "2026-10-01"}
    )  # Epic: date-only periods
    assert "time-outside-encounter" not in gap_codes(decide_one(evening(), resources, NEW_YORK))
    assert "time-outside-encounter" in gap_codes(decide_one(evening(), resources))


def test_coverage_ending_on_the_local_day_covers_a_utc_evening_injection():
    resources = replace_resource(
        clinic(), "Coverage", period={"start": "2026-01-01", "end": "2026-10-01"}
    )
    assert "missing-coverage" not in gap_codes(decide_one(evening(), resources, NEW_YORK))
    assert "missing-coverage" in gap_codes(decide_one(evening(), resources))


# --------------------------------------------------------------------------- configuration


def _config_file(tmp_path, text: str):
    path = tmp_path / "clinic.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_the_timezone_setting_is_read_from_the_config_file(tmp_path):
    config = load_config(_config_file(tmp_path, 'timezone = "America/Chicago"\n'))
    assert config.timezone == "America/Chicago" and config.zone == zone_named("America/Chicago")


def test_no_timezone_setting_means_no_zone():
    assert Config().zone is None and load_config(None).zone is None


@pytest.mark.parametrize(
    "value", ['"America/New_Yrok"', '"EST-ish"', '"localtime"', '""', "5", '"/etc/localtime"']
)
def test_a_timezone_that_is_not_an_iana_name_is_a_config_error_naming_the_key(tmp_path, value):
    path = _config_file(tmp_path, f"timezone = {value}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "timezone" in str(err.value) and str(path) in str(err.value)


def test_config_made_in_code_checks_the_timezone_too():
    with pytest.raises(ConfigError, match="timezone"):
        Config(timezone="Mars/Olympus_Mons")


def test_zones_are_looked_up_once_per_name_not_per_administration(monkeypatch):
    made = []
    from fhir_injection.decision import zones

    real = zones.ZoneInfo

    def counting(name):
        made.append(name)
        return real(name)

    monkeypatch.setattr(zones, "ZoneInfo", counting)
    zone_named.cache_clear()
    try:
        resources = clinic(location_zone="America/Denver")
        admins = [admin(id=f"ma{i}", effectiveDateTime=f"2026-10-02T0{i}:00:00Z") for i in range(8)]
        decisions = decide_many(admins, resources)
    finally:
        zone_named.cache_clear()
    assert {d.service_date for d in decisions} == {"2026-10-01", "2026-10-02"}
    assert made == ["America/Denver"]


def test_zones_work_without_the_machines_time_zone_files(tmp_path):
    """A slim container has no /usr/share/zoneinfo: the tzdata dependency supplies the zones."""
    empty = tmp_path / "no-zoneinfo"
    empty.mkdir()
    path = _config_file(tmp_path, 'timezone = "America/New_York"\n')
    code = (
        f"from fhir_injection import load_config; "
        f"print(load_config({str(path)!r}).zone.utcoffset(__import__('datetime').datetime(2026, 10, 1)))"
    )
    env = {**os.environ, "PYTHONTZPATH": str(empty)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip() == "-1 day, 20:00:00"


# --------------------------------------------------------------------------- sources


def test_an_export_folders_locations_are_read_for_their_time_zone(tmp_path):
    source, target = tmp_path / "export", tmp_path / "out"
    source.mkdir()
    by_type: dict[str, list[dict]] = {}
    for r in [*clinic(location_zone="America/New_York"), evening()]:
        by_type.setdefault(r["resourceType"], []).append(r)
    for rtype, items in by_type.items():
        (source / f"{rtype}.ndjson").write_text(
            "".join(json.dumps(r) + "\n" for r in items), encoding="utf-8"
        )
    run_folder(source, target, rules(), Config(), CREATED)
    (entry,) = json.loads((target / "report.json").read_text(encoding="utf-8"))["administrations"]
    assert entry["service_date"] == "2026-10-01"


class _Server:
    """What _sibling_lookups asks of a client: a server that batches and includes."""

    def supports_search_param(self, rtype, name):
        return True

    def supports_include(self, rtype, include):
        return True

    def can_batch_searches(self):
        return True


def _windows(lookups) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    return [(lk.values, tuple(v for k, v in lk.params if k == "effective-time")) for lk in lookups]


def test_the_sibling_searches_group_a_page_by_the_clinics_local_day():
    page = [
        admin(id="a", patient="p0", effectiveDateTime=MORNING_UTC),
        admin(id="b", patient="p1", effectiveDateTime=EVENING_UTC),
    ]
    held = Context(clinic(patient="p0") + clinic(patient="p1"))
    local_day = _sibling_lookups(
        _Server(), page, lambda a: localtime.service_date(a, held, NEW_YORK)
    )
    assert _windows(local_day) == [(("Patient/p0", "Patient/p1"), ("ge2026-09-30", "lt2026-10-03"))]
    own_offset = _sibling_lookups(
        _Server(), page, lambda a: localtime.service_date(a, held, Config())
    )
    assert [w[0] for w in _windows(own_offset)] == [("Patient/p0",), ("Patient/p1",)]


def test_the_sibling_searches_read_the_zone_of_an_included_encounters_location():
    page = [admin(id="b", patient="p1", effectiveDateTime=EVENING_UTC)]
    held = Context(clinic(patient="p1", location_zone="America/New_York"))
    lookups = _sibling_lookups(_Server(), page, lambda a: localtime.service_date(a, held, Config()))
    assert _windows(lookups) == [(("Patient/p1",), ("ge2026-09-30", "lt2026-10-03"))]


def test_the_local_day_of_an_effective_period_is_its_start():
    a = admin(
        effectiveDateTime=None,
        effectivePeriod={"start": EVENING_UTC, "end": "2026-10-02T00:50:00Z"},
    )
    assert localtime.service_date(a, Context(clinic()), NEW_YORK) == date(2026, 10, 1)


def _live(rsps, resources: list[dict], admins: list[dict]):
    from tests.fakefhir import BASE, FakeFhir, instant

    server = FakeFhir(interactions=("transaction", "batch"), update_create=True).install(rsps)
    for r in resources:
        server.put(copy.deepcopy(r), last_updated=instant(0))
    for n, a in enumerate(admins, start=1):
        server.put(a, last_updated=instant(100 + n), version="1")
    server.clock = 100 + len(admins)
    return server, FhirClient(HttpSession(BASE, sleep=lambda s: None, clock=lambda: 0.0))


def _live_options(tmp_path, **kw) -> SyncOptions:
    return SyncOptions(
        state_path=str(tmp_path / "state.json"),
        report_path=str(tmp_path / "report.json"),
        created=CREATED,
        **kw,
    )


def test_the_live_sync_reads_the_time_zone_of_the_encounters_location(tmp_path):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        server, client = _live(rsps, clinic(location_zone="America/New_York"), [evening()])
        result = run_sync(client, client, rules(), Config(), _live_options(tmp_path), None, None)
    assert result.exit_code == 0
    (claim,) = server.all("Claim")
    assert claim["billablePeriod"]["start"] == "2026-10-01"


def test_the_live_sync_gives_a_later_page_the_distinct_modifier_of_the_local_day(tmp_path):
    resources = replace_resource(clinic(), "Encounter", period=None)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        server, client = _live(rsps, resources, _same_patient(MORNING_UTC, EVENING_UTC))
        result = run_sync(
            client, client, rules(), NEW_YORK, _live_options(tmp_path, page_size=1), None, None
        )
    assert result.exit_code == 0
    modifiers = {
        c["identifier"][0]["value"]: [
            m["coding"][0]["code"] for it in c["item"] for m in it.get("modifier") or []
        ]
        for c in server.all("Claim")
    }
    assert modifiers == {"ma0": [], "ma1": ["59"]}
    assert {c["billablePeriod"]["start"] for c in server.all("Claim")} == {"2026-10-01"}


def test_fixed_offsets_from_the_encounter_are_not_a_zone_lookup():
    # the encounter's −04:00 is the tzinfo the parsed period carries: no name to look up
    zone = localtime.clinic_zone(
        datetime(2026, 10, 2, 0, 30, tzinfo=UTC),
        {"period": {"start": "2026-10-01T19:10:00-04:00"}},
        None,
        Context(),
        Config(),
    )
    assert zone is not None and zone.utcoffset(None) == timedelta(hours=-4)


def test_the_command_refuses_a_bad_timezone_before_reading_anything(tmp_path, capsys):
    from fhir_injection import cli
    from fhir_injection.errors import EXIT_USAGE

    path = _config_file(tmp_path, 'timezone = "Eastern Standard Time"\n')
    assert (
        cli.main(
            [
                "--config",
                str(path),
                "sync",
                "--source",
                str(tmp_path),
                "--target",
                str(tmp_path / "out"),
            ]
        )
        == EXIT_USAGE
    )
    assert "timezone" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
