"""The crawl's context from a Bulk Data export (fhir_injection.sources.contextexport), against the
in-memory FakeFhir made to behave as Oracle Health does: MedicationAdministration (and Encounter,
Patient) only by patient, ``$export`` at Group level only. Integration with the HAPI vendor
profiles: tests/integration/test_hapi_resume.py.
"""

from __future__ import annotations

import gzip
import json
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from tests.fakefhir import BASE, MA, FakeFhir, outcome
from tests.sources.test_crawl import clinic, crawl, oracle_rules, patients_file, report, state

STATUS = f"{BASE}/$export-poll-status?_jobId=ctx1"
FILES = "https://bucket.example/ctx"
T1 = "2026-10-06T08:00:00.000Z"
T2 = "2026-10-07T08:00:00.000Z"
CONTEXT = (
    "Patient",
    "Encounter",
    "Coverage",
    "Consent",
    "Condition",
    "Organization",
    "Practitioner",
    "Location",
    "Medication",
)


class ExportingFhir(FakeFhir):
    """FakeFhir whose CapabilityStatement lists a Group-level ``export`` operation."""

    def capability(self) -> dict:
        cs = super().capability()
        for r in cs["rest"][0]["resource"]:
            if r["type"] == "Patient":
                r["operation"] = [{"name": "export", "definition": "x"}]
        cs["rest"][0]["resource"].append(
            {"type": "Group", "operation": [{"name": "export", "definition": "x"}]}
        )
        return cs


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def server(rsps) -> ExportingFhir:
    return ExportingFhir().install(rsps)


def stage_export(rsps, server, group_answer=None, when=T1, kickoffs=None, polls_202=0):
    """Group/g1/$export answered as Oracle does (202 + Content-Location; or ``group_answer``),
    its manifest listing the context types of the store (no MedicationAdministration)."""
    kickoffs = kickoffs if kickoffs is not None else []
    polls = {"n": 0}

    def hook(method, path, query):
        if path.endswith("$export"):
            kickoffs.append((method, path, query))
            if path != "Group/g1/$export":
                return 400, {"Content-Type": "application/fhir+json"}, outcome("Group level only")
            if group_answer is not None:
                return group_answer
            return 202, {"Content-Location": STATUS}, None
        if path == "$export-poll-status":
            polls["n"] += 1
            if polls["n"] <= polls_202:
                return 202, {"Retry-After": "1", "X-Progress": "building 50%"}, None
            out = [{"type": t, "url": f"{FILES}/{t}"} for t in CONTEXT if server.all(t)]
            return (
                200,
                {"Content-Type": "application/json"},
                {
                    "transactionTime": when,
                    "request": f"{BASE}/Group/g1/$export",
                    "requiresAccessToken": False,
                    "output": out,
                    "error": [],
                },
            )
        return None

    server.fail.append(hook)
    for t in CONTEXT:
        body = b"".join(json.dumps(r).encode() + b"\n" for r in server.all(t))
        rsps.add(
            responses.GET,
            f"{FILES}/{t}",
            body=gzip.compress(body),
            status=200,
            headers={"Content-Encoding": "gzip"},
            content_type="application/fhir+ndjson",
        )
    rsps.add(responses.DELETE, STATUS, status=202)
    return kickoffs


def server_gets(rsps, types) -> list:
    return [
        c
        for c in rsps.calls
        if c.request.method == "GET"
        and urlsplit(c.request.url).path.rsplit("/", 1)[-1] in types
        and c.request.url.startswith(BASE)
    ]


def test_auto_takes_cohort_and_context_from_the_group_export_and_crawls_the_administrations(
    rsps, server, tmp_path
):
    oracle_rules(server)
    clinic(server, patients=3, per_patient=2)
    kickoffs = stage_export(rsps, server, polls_202=1)
    lines: list[str] = []

    result = crawl(tmp_path, pull="auto", group="g1", progress=lines.append)

    assert result.claims.created == 6 and result.exit_code == 0
    pull = report(tmp_path)["summary"]["pull"]
    assert pull["strategy"] == "crawl"
    assert pull["reason"].endswith(
        "answered HTTP 400 (the server requires patient); context from Group/g1/$export (full), "
        "administrations by crawl"
    )
    assert pull["cohort_from"] == "Group/g1/$export" and pull["patients"] == 3
    assert pull["context_from"] == "Group/g1/$export"
    assert (
        pull["export"]["records"]["Patient"] == 3
        and "MedicationAdministration" not in pull["export"]["records"]
    )
    # the context types the decision reads, in one _type parameter, no administrations
    [(_, _, query)] = kickoffs
    assert query["_type"][0].split(",") == sorted(query["_type"][0].split(","))
    assert MA not in query["_type"][0] and "Coverage" in query["_type"][0]
    # every look-up was answered by the export: the server was asked only for administrations
    assert (
        server_gets(
            rsps,
            {
                "Patient",
                "Encounter",
                "Coverage",
                "Consent",
                "Organization",
                "Practitioner",
                "Medication",
                "Location",
                "Condition",
            },
        )
        == []
    )
    # the first line says the plan; X-Progress shows while the server works
    assert lines[0].startswith("pull: crawl (population search refused")
    assert "context from Group/g1/$export, administrations by crawl" in lines[0]
    assert any("export in progress (building 50%)" in line for line in lines)
    # the next export is incremental from this one's transactionTime; the folder is gone
    job = state(tmp_path)["exports"][
        "Group/g1/$export?_type="
        + ",".join(sorted(set(CONTEXT) | {"ChargeItem", "Observation", "PractitionerRole"}))
    ]
    assert job == {"since": T1}
    assert not (tmp_path / "state.json.context").exists()


def test_the_next_run_exports_incrementally_and_asks_the_server_for_the_rest(
    rsps, server, tmp_path
):
    oracle_rules(server)
    clinic(server, patients=2, per_patient=2)
    kickoffs = stage_export(rsps, server)
    crawl(tmp_path, pull="auto", group="g1")
    rsps.calls.reset()

    again = crawl(tmp_path, pull="auto", group="g1")

    assert again.claims.created == again.claims.updated == 0
    assert parse_qs(
        urlsplit("?" + "&".join(f"{k}={v[0]}" for k, v in kickoffs[1][2].items())).query
    )["_since"] == [T1]
    pull = report(tmp_path)["summary"]["pull"]
    assert f"context from Group/g1/$export (incremental since {T1})" in pull["reason"]
    # the cohort: the earlier run's patients (an incremental export holds only what changed)
    assert pull["patients"] == 2


@pytest.mark.parametrize(
    "answer, why",
    [
        (
            (
                429,
                {"Retry-After": "86400", "Content-Type": "application/fhir+json"},
                outcome("a group can be exported once a day", "throttled"),
            ),
            "HTTP 429 with a Retry-After longer than we wait: an export once a day?",
        ),
        (
            (403, {"Content-Type": "application/fhir+json"}, outcome("no scope", "forbidden")),
            "HTTP 403",
        ),
        (
            (
                200,
                {"Content-Type": "application/fhir+json"},
                outcome("not supported", "not-supported"),
            ),
            "no export started",
        ),
    ],
)
def test_a_refused_export_falls_back_to_look_ups_and_says_so(rsps, server, tmp_path, answer, why):
    oracle_rules(server)
    clinic(server, patients=2, per_patient=1)
    stage_export(rsps, server, group_answer=answer)

    result = crawl(
        tmp_path, pull="auto", group="g1", patients_file=patients_file(tmp_path, ["p0", "p1"])
    )

    assert result.claims.created == 2
    pull = report(tmp_path)["summary"]["pull"]
    assert pull["reason"].endswith(f"; Group/g1/$export refused ({why}): context by look-ups")
    assert pull["context_from"] == "look-ups" and pull["cohort_from"] == "patients file"
    assert server_gets(rsps, {"Coverage", "Consent"})  # asked of the server instead


def test_without_a_group_auto_tries_the_patient_level_export(rsps, server, tmp_path):
    oracle_rules(server)
    clinic(server, patients=1, per_patient=1)
    kickoffs = stage_export(rsps, server)

    crawl(tmp_path, pull="auto", patients_file=patients_file(tmp_path, ["p0"]))

    assert [k[1] for k in kickoffs] == ["Patient/$export"]
    pull = report(tmp_path)["summary"]["pull"]
    assert "Patient/$export refused (HTTP 400): context by look-ups" in pull["reason"]


def test_crawl_without_group_on_a_server_listing_no_export_runs_none(rsps, tmp_path):
    plain = FakeFhir().install(rsps)
    oracle_rules(plain)
    clinic(plain, patients=1, per_patient=1)

    crawl(tmp_path, pull="crawl", patients_file=patients_file(tmp_path, ["p0"]))

    assert not [c for c in rsps.calls if "$export" in c.request.url]
    assert report(tmp_path)["summary"]["pull"]["reason"] == "asked for with --pull crawl"


def test_a_run_stopped_while_the_export_works_resumes_it_without_a_second_kick_off(
    rsps, server, tmp_path
):
    oracle_rules(server)
    clinic(server, patients=2, per_patient=1)
    kickoffs = stage_export(rsps, server, polls_202=1)

    def stop(line: str) -> None:
        if "export in progress" in line:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        crawl(tmp_path, pull="auto", group="g1", progress=stop)
    assert len(kickoffs) == 1
    [job] = state(tmp_path)["exports"].values()
    assert job["status_url"] == STATUS

    result = crawl(tmp_path, pull="auto", group="g1")

    assert len(kickoffs) == 1 and result.claims.created == 2


def test_sync_has_a_group_option(monkeypatch):
    from fhir_injection import cli

    seen = {}
    monkeypatch.setattr(
        "fhir_injection.jobs.sync.run_sync_cli",
        lambda args, rules, config: seen.setdefault("group", args.group) and 0,
    )
    cli.main(["sync", "--source", BASE, "--group", "g7"])
    assert seen["group"] == "g7"


def test_types_the_server_will_not_export_are_left_out_once_and_remembered(rsps, server, tmp_path):
    oracle_rules(server)
    clinic(server, patients=2, per_patient=1)
    kickoffs = stage_export(rsps, server)

    def picky(method, path, query):
        types = (query.get("_type") or [""])[0].split(",")
        if path.endswith("$export") and {"Medication", "Location"} & set(types):
            kickoffs.append((method, path, query))
            return (
                400,
                {"Content-Type": "application/fhir+json"},
                outcome(
                    "HAPI-0512: Resource types [Medication,Location] are invalid for this type of export"
                ),
            )
        return None

    server.fail.insert(0, picky)
    result = crawl(tmp_path, pull="auto", group="g1")

    assert result.claims.created == 2
    assert len(kickoffs) == 2
    second = kickoffs[1][2]["_type"][0].split(",")
    assert "Medication" not in second and "Location" not in second and "Patient" in second
    memory = state(tmp_path)
    assert memory["context_types"]["Group/g1/$export"] == second
    assert list(memory["exports"]) == ["Group/g1/$export?_type=" + ",".join(second)]
    assert "context from Group/g1/$export (full)" in report(tmp_path)["summary"]["pull"]["reason"]

    crawl(tmp_path, pull="auto", group="g1")  # the next run asks for those types only

    assert len(kickoffs) == 3 and kickoffs[2][2]["_type"][0].split(",") == second
