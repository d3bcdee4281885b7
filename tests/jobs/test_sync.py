"""The live sync (run_sync) against a small fake FHIR server staged with ``responses``.

The fake server (tests/fakefhir.py) answers from an in-memory dict of resources
built with tests/builders.py; its hooks stage what a real server does only rarely
(503 with Retry-After, 410 on a paging link, a 412/409/400 per entry, a whole
batch refused, a 401 needing a new token).
"""

from __future__ import annotations

import json
import logging
import re
import signal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from fhir_injection import cli
from fhir_injection.clock import minus
from fhir_injection.decision.practice import Config
from fhir_injection.errors import EXIT_INTERRUPTED, EXIT_SERVER, ConfigError, FatalNetworkError
from fhir_injection.fhir.auth import BasicAuth, BearerAuth, SmartBackendAuth
from fhir_injection.fhir.client import FhirClient
from fhir_injection.jobs import sync as sync_module
from fhir_injection.jobs.sync import StopFlag, parse_interval
from fhir_injection.sinks.fingerprint import FINGERPRINT_SYSTEM
from tests.builders import V2_SITE, admin, world
from tests.builders import rules as load_bundled_rules
from tests.fakefhir import BASE, INCLUDES, MA, FakeFhir, instant, outcome
from tests.fakesync import batch_entries, calls, clinic, make_client, sync

TOKEN_URL = "https://auth.example.org/oauth/token"
CLAIM_SYSTEM = Config().identifier_system
TASK_SYSTEM = CLAIM_SYSTEM + ":task"


# --------------------------------------------------------------------------- helpers


def state_of(tmp_path) -> dict:
    return json.loads((tmp_path / "state.json").read_text())["sources"][BASE]


def report_of(tmp_path) -> dict:
    return json.loads((tmp_path / "report.json").read_text())


def no_sleep_cli_client(sleeps):
    def make(url, prefix, args):
        return make_client(sleeps)

    return make


# --------------------------------------------------------------------------- paging and batched look-ups


def test_same_day_sibling_search_is_one_request_per_page(rsps, server, tmp_path, sleeps):
    clinic(server)
    sync(tmp_path, sleeps)
    sibling_pages = [
        c
        for c in calls(rsps, "GET", "", "_getpages")
        if parse_qs(urlsplit(c.request.url).query)["_count"] != ["20"]
    ]
    assert sibling_pages == []


def test_three_pages_all_decided_conditional_creates_and_bounded_requests(
    rsps, server, tmp_path, sleeps
):
    admins = clinic(server)  # 60 administrations, 15 patients, 20 a page -> 3 pages

    result = sync(tmp_path, sleeps)

    assert result.exit_code == 0
    assert result.summary["administrations"] == 60 and result.summary["pages"] == 3
    assert result.claims.created == 60 and result.claims.failed == 0
    entries = batch_entries(rsps)
    assert len(entries) == 60
    assert all(e["request"]["method"] == "POST" and e["request"]["url"] == "Claim" for e in entries)
    assert sorted(e["request"]["ifNoneExist"] for e in entries) == sorted(
        f"identifier={CLAIM_SYSTEM}|{a['id']}" for a in admins
    )
    assert len(server.all("Claim")) == 60
    report = report_of(tmp_path)
    assert {e["administration"] for e in report["administrations"]} == {
        f"{MA}/{a['id']}" for a in admins
    }
    assert all(e["posted"]["claim"] == "create" for e in report["administrations"])
    # Requests: metadata 1 + per page (search page, same-day siblings, Condition _id, Consent, Coverage,
    # ChargeItem, Claim identifier, Task identifier, batch POST) 9 x 3 + Organization once + the
    # encounters' attending Practitioner (the rendering provider) once + their Location
    # (the place of service) once = 31.
    # Patient, Encounter and the performing Practitioner came as _include; Organization, the
    # attending Practitioner and the Location are cached after page 1.
    assert len(calls(rsps)) == 31
    assert len(calls(rsps)) == result.summary["http"]["requests"]
    assert len(calls(rsps)) < len(admins)  # not one per administration
    assert len(calls(rsps, "GET", MA)) == 1 + 3  # the first page + 3 sibling searches
    main_pages = calls(rsps, "GET", "", "_getpages")  # sibling look-ups are single pages now
    assert len(main_pages) == 2  # next links followed
    for c in main_pages:
        assert c.request.headers["Cache-Control"] == "no-cache"
    assert len(calls(rsps, "GET", "Organization")) == 1
    assert len(calls(rsps, "GET", "Practitioner")) == 1  # the encounters' participant, once
    for rtype in ("Patient", "Encounter", "Medication"):
        assert calls(rsps, "GET", rtype) == []
    assert len(calls(rsps, "POST", "")) == 3


def test_next_links_followed_verbatim(rsps, server, tmp_path, sleeps):
    clinic(server, patients=3, per_patient=4)
    sync(tmp_path, sleeps, page_size=5)

    followed = [
        c.request.url
        for c in calls(rsps, "GET", "", "_getpages")
        if parse_qs(urlsplit(c.request.url).query)["_count"] == ["5"]
    ]
    assert len(followed) == 2
    assert all(
        re.fullmatch(re.escape(BASE) + r"\?_getpages=\w+&_getpagesoffset=(5|10)&_count=5", u)
        for u in followed
    )


def test_include_honoured_no_refetch_of_included(rsps, server, tmp_path, sleeps):
    clinic(server, patients=5, per_patient=2)

    sync(tmp_path, sleeps)

    first = calls(rsps, "GET", MA)[0]
    assert sorted(parse_qs(urlsplit(first.request.url).query)["_include"]) == sorted(INCLUDES)
    assert calls(rsps, "GET", "Encounter") == []
    assert calls(rsps, "GET", "Patient") == []
    # the performer came as _include; only the encounters' participant (the rendering provider) is fetched
    [practitioners] = calls(rsps, "GET", "Practitioner")
    assert parse_qs(urlsplit(practitioners.request.url).query)["_id"] == ["doctor"]


def test_without_include_support_no_include_param_and_one_id_batch(rsps, tmp_path, sleeps):
    server = FakeFhir(includes=False).install(rsps)
    clinic(server, patients=5, per_patient=2)

    result = sync(tmp_path, sleeps)

    assert result.claims.created == 10
    first = calls(rsps, "GET", MA)[0]
    assert "_include" not in parse_qs(urlsplit(first.request.url).query)
    enc = calls(rsps, "GET", "Encounter")
    assert len(enc) == 1
    assert sorted(parse_qs(urlsplit(enc[0].request.url).query)["_id"][0].split(",")) == [
        f"e-p{i}" for i in range(5)
    ]
    # the performers with the administrations' look-ups, the encounters' participant with the encounters'
    assert len(calls(rsps, "GET", "Patient")) == 1 and len(calls(rsps, "GET", "Practitioner")) == 2


def test_mark_saved_after_each_page_with_sort(rsps, server, tmp_path, sleeps):
    admins = clinic(server)
    marks = []

    result = sync(
        tmp_path,
        sleeps,
        progress=lambda m: (
            m.startswith("page")
            and marks.append((tmp_path / "state.json").exists() and state_of(tmp_path)["mark"])
        ),
    )

    first = calls(rsps, "GET", MA)[0]
    assert parse_qs(urlsplit(first.request.url).query)["_sort"] == ["_lastUpdated"]
    lu = [a["meta"]["lastUpdated"] for a in admins]
    assert marks == [lu[19], lu[39], lu[59]]
    assert result.mark == lu[59] == state_of(tmp_path)["mark"]


def test_without_sort_mark_saved_only_at_the_end(rsps, tmp_path, sleeps):
    server = FakeFhir(sort=False).install(rsps)
    admins = clinic(server)
    marks = []

    result = sync(
        tmp_path,
        sleeps,
        progress=lambda m: (
            m.startswith("page") and marks.append((tmp_path / "state.json").exists())
        ),
    )

    first = calls(rsps, "GET", MA)[0]
    query = parse_qs(urlsplit(first.request.url).query)
    assert "_sort" not in query and "_lastUpdated" not in query
    assert marks == [False, False, False]
    assert result.claims.created == 60
    assert state_of(tmp_path)["mark"] == max(a["meta"]["lastUpdated"] for a in admins)


def test_expired_paging_link_reissues_search_from_mark(rsps, server, tmp_path, sleeps):
    admins = clinic(server)
    server.expire_next.add(20)  # the link to page 2 is gone

    result = sync(tmp_path, sleeps)

    assert result.exit_code == 0
    searches = calls(rsps, "GET", MA, "_count")
    searches = [c for c in searches if "subject" not in parse_qs(urlsplit(c.request.url).query)]
    assert len(searches) == 2
    mark_after_page_1 = admins[19]["meta"]["lastUpdated"]
    again = parse_qs(urlsplit(searches[1].request.url).query)
    assert again["_lastUpdated"] == [f"ge{minus(mark_after_page_1, 300)}"]
    creates = [e["request"]["ifNoneExist"] for e in batch_entries(rsps)]
    assert len(creates) == 60 == len(set(creates))  # each administration posted once
    assert result.claims.created == 60 and len(server.all("Claim")) == 60
    report = report_of(tmp_path)
    assert len(report["administrations"]) == 60
    assert result.mark == admins[-1]["meta"]["lastUpdated"]


def test_incremental_second_search_uses_mark_minus_overlap(rsps, server, tmp_path, sleeps):
    admins = clinic(server, patients=2, per_patient=2)
    sync(tmp_path, sleeps)
    mark = state_of(tmp_path)["mark"]
    assert mark == admins[-1]["meta"]["lastUpdated"]

    result = sync(tmp_path, sleeps)

    second = calls(rsps, "GET", MA)[-1]
    assert parse_qs(urlsplit(second.request.url).query)["_lastUpdated"] == [f"ge{minus(mark, 300)}"]
    assert result.summary["administrations"] == 0  # the overlap window's versions are remembered
    assert len(calls(rsps, "POST", "")) == 1


# --------------------------------------------------------------------------- conditional create answers


def test_conditional_create_answers_201_200_412_and_409_retried(rsps, server, tmp_path, sleeps):
    clinic(server, patients=2, per_patient=2)  # ma0-0 ma0-1 ma1-0 ma1-1

    def entry_hook(entry):
        ident = entry["request"].get("ifNoneExist", "")
        if ident.endswith("|ma0-1"):
            return None  # falls to the store, which holds one already (seeded below) -> 200
        if ident.endswith("|ma1-0"):
            return (
                412,
                "HAPI-0958: Failed to CREATE resource with match URL because this search matched 2 resources",
            )
        if ident.endswith("|ma1-1"):
            return 409, "HAPI-0550: resource was created by another request"
        return None

    server.entry_hook = entry_hook
    # a Claim for ma0-1 appeared after our identifier search (another worker): the create matches it
    original_existing = server._existing

    def late_existing(rtype, condition):
        if condition.endswith("|ma0-1"):
            return [{"resourceType": "Claim", "id": "other-worker", "meta": {"versionId": "1"}}]
        return original_existing(rtype, condition)

    server._existing = late_existing

    result = sync(tmp_path, sleeps)

    assert result.claims.created == 2  # ma0-0 in the batch, ma1-1 on its retry
    assert result.claims.unchanged == 1
    assert result.claims.failed == 1
    assert result.exit_code == 1
    retried = calls(rsps, "POST", "Claim")
    assert len(retried) == 1
    assert retried[0].request.headers["If-None-Exist"] == f"identifier={CLAIM_SYSTEM}|ma1-1"
    report = report_of(tmp_path)
    by_id = {e["administration"]: e for e in report["administrations"]}
    assert by_id[f"{MA}/ma0-1"]["posted"]["claim"] == "unchanged"
    assert by_id[f"{MA}/ma0-1"]["claim"] == "Claim/other-worker"
    assert by_id[f"{MA}/ma1-0"]["posted"]["claim"] == "failed"
    assert by_id[f"{MA}/ma1-1"]["posted"]["claim"] == "create"
    (error,) = report["errors"]
    assert (
        error["record"] == f"{MA}/ma1-0"
        and "HAPI-0958" in error["message"]
        and "412" in error["message"]
    )


def test_per_entry_failure_reported_others_created(rsps, server, tmp_path, sleeps):
    clinic(server, patients=2, per_patient=3)
    text = "HAPI-1094: Resource Practitioner/nurse not found, specified in path: Claim.careTeam.provider"
    server.entry_hook = lambda e: (
        (400, text) if e["request"]["ifNoneExist"].endswith("|ma1-2") else None
    )

    result = sync(tmp_path, sleeps)

    assert result.claims.created == 5 and result.claims.failed == 1
    assert result.exit_code == 1
    report = report_of(tmp_path)
    assert report["errors"] == [
        {
            "record": f"{MA}/ma1-2",
            "field": "Claim",
            "message": f"create of Claim failed: HTTP 400: {text}",
        }
    ]
    bad = next(e for e in report["administrations"] if e["administration"] == f"{MA}/ma1-2")
    assert bad["post_error"] == text
    assert report["summary"]["record_errors"] == 1


def test_a_refused_write_is_tried_again_next_run_until_it_lands(rsps, server, tmp_path, sleeps):
    clinic(server, patients=2, per_patient=3)
    text = "HAPI-1094: Resource Practitioner/nurse not found"
    server.entry_hook = lambda e: (
        (400, text) if e["request"]["ifNoneExist"].endswith("|ma1-2") else None
    )
    sync(tmp_path, sleeps)
    assert state_of(tmp_path)["retry"] == {"ma1-2": 1}

    server.entry_hook = None  # the server accepts it now (e.g. the Practitioner was added)
    result = sync(tmp_path, sleeps)

    assert result.claims.created == 1 and result.claims.failed == 0 and result.exit_code == 0
    assert state_of(tmp_path)["retry"] == {}
    assert [e["administration"] for e in report_of(tmp_path)["administrations"]] == [f"{MA}/ma1-2"]
    assert any("_id=ma1-2" in c.request.url for c in calls(rsps, "GET", MA))
    assert len(server.all("Claim")) == 6


def test_a_write_refused_run_after_run_is_given_up_and_reported(rsps, server, tmp_path, sleeps):
    from fhir_injection.jobs.syncrun import MAX_WRITE_RETRIES

    clinic(server, patients=1, per_patient=1)
    server.entry_hook = lambda e: (
        (400, "HAPI-9999: refused") if e["request"]["method"] == "POST" else None
    )
    for _ in range(MAX_WRITE_RETRIES + 1):
        sync(tmp_path, sleeps)
    assert state_of(tmp_path)["retry"] == {}
    assert any("gave up posting" in e["message"] for e in report_of(tmp_path)["errors"])


def _refuse_bundles_holding(server, value: str, text: str) -> None:
    """A validating server: any Bundle with the bad entry in it is refused as a whole (HAPI answers 422)."""

    def hook(bundle):
        if any(e["resource"]["identifier"][0]["value"] == value for e in bundle["entry"]):
            return 422, outcome(text)
        return None

    server.batch_hook = hook
    server.single_hook = lambda method, path, body: (
        (422, outcome(text)) if body["identifier"][0]["value"] == value else None
    )


def test_batch_refused_whole_is_halved_until_the_bad_entry_fails_alone(
    rsps, server, tmp_path, sleeps
):
    clinic(server, patients=2, per_patient=2)
    bad = "Claim.item[0].productOrService: code 'X' is not valid"
    _refuse_bundles_holding(server, "ma1-0", bad)

    result = sync(tmp_path, sleeps)

    # [ma0-0 ma0-1 ma1-0 ma1-1] refused -> [ma0-0 ma0-1] lands; [ma1-0 ma1-1] refused -> each alone.
    assert len(calls(rsps, "POST", "")) == 3
    assert len(calls(rsps, "POST", "Claim")) == 2
    assert result.claims.created == 3 and result.claims.failed == 1
    assert {c["identifier"][0]["value"] for c in server.all("Claim")} == {"ma0-0", "ma0-1", "ma1-1"}
    (error,) = report_of(tmp_path)["errors"]
    assert error["record"] == f"{MA}/ma1-0" and bad in error["message"]
    assert result.exit_code == 1


def test_one_bad_entry_in_a_big_bundle_costs_log2_requests_not_one_per_entry(
    rsps, server, tmp_path, sleeps
):
    clinic(server, patients=16, per_patient=4)  # 64 Claims in one Bundle
    _refuse_bundles_holding(server, "ma9-2", "refused")

    result = sync(tmp_path, sleeps, page_size=100, bundle_size=100)

    bundles, singles = len(calls(rsps, "POST", "")), len(calls(rsps, "POST", "Claim"))
    # 64 -> 32 -> 16 -> 8 -> 4 -> 2: the half holding ma9-2 is refused at each size (6 Bundles), the other
    # half lands (5 Bundles of 32..2), then the last pair goes alone (2): 13, against 65 one by one.
    assert (bundles, singles) == (11, 2)
    assert result.claims.created == 63 and result.claims.failed == 1
    assert len(server.all("Claim")) == 63


# --------------------------------------------------------------------------- reconciliation on later runs


def test_second_run_unchanged_data_writes_nothing(rsps, server, tmp_path, sleeps):
    clinic(server, patients=3, per_patient=2)
    first = sync(tmp_path, sleeps)
    assert first.claims.created == 6
    claims = server.all("Claim")
    assert all(any(t["system"] == FINGERPRINT_SYSTEM for t in c["meta"]["tag"]) for c in claims)
    rsps.calls.reset()

    second = sync(tmp_path, sleeps, full=True, created="2026-10-07T08:00:00Z")

    assert second.summary["administrations"] == 6
    assert second.claims.unchanged == 6 and second.claims.created == second.claims.updated == 0
    assert calls(rsps, "POST") == [] and calls(rsps, "PUT") == []
    assert len(calls(rsps, "GET", "Claim", "identifier")) == 1


def test_changed_voided_and_fixed_administrations(rsps, server, tmp_path, sleeps):
    clinic(server, patients=2, per_patient=2)
    # ma0-0 has no site: it bills with a missing-site warning Task
    server.put(
        admin(
            id="ma0-0",
            patient="p0",
            effectiveDateTime="2026-10-05T09:30:00-05:00",
            dosage={k: v for k, v in admin()["dosage"].items() if k != "site"},
        )
    )
    first = sync(tmp_path, sleeps)
    assert first.claims.created == 4 and first.tasks.created == 1
    (task,) = server.all("Task")
    assert task["status"] == "requested"
    claim_ma00 = next(c for c in server.all("Claim") if c["identifier"][0]["value"] == "ma0-0")
    claim_ma11 = next(c for c in server.all("Claim") if c["identifier"][0]["value"] == "ma1-1")
    rsps.calls.reset()

    # the site is documented (a new version) and ma1-1 was entered in error
    server.put(
        admin(
            id="ma0-0",
            patient="p0",
            effectiveDateTime="2026-10-05T09:30:00-05:00",
            dosage={**admin()["dosage"], "site": {"coding": [{"system": V2_SITE, "code": "RD"}]}},
        )
    )
    server.put(
        admin(
            id="ma1-1",
            patient="p1",
            effectiveDateTime="2026-10-05T09:35:00-05:00",
            status="entered-in-error",
        )
    )
    second = sync(tmp_path, sleeps)

    assert second.summary["administrations"] == 2
    puts = {e["request"]["url"]: e for e in batch_entries(rsps)}
    assert set(puts) == {
        f"Claim/{claim_ma00['id']}",
        f"Claim/{claim_ma11['id']}",
        f"Task/{task['id']}",
    }
    assert all(e["request"]["method"] == "PUT" for e in puts.values())
    update = puts[f"Claim/{claim_ma00['id']}"]
    assert update["request"]["ifMatch"] == f'W/"{claim_ma00["meta"]["versionId"]}"'
    assert update["resource"]["item"][0]["bodySite"]["coding"][0][
        "code"
    ] == "RD" or "RD" in json.dumps(update["resource"])
    cancel = puts[f"Claim/{claim_ma11['id']}"]
    assert cancel["resource"]["status"] == "cancelled"
    assert cancel["request"]["ifMatch"] == f'W/"{claim_ma11["meta"]["versionId"]}"'
    done = puts[f"Task/{task['id']}"]
    assert done["resource"]["status"] == "completed" and done["request"]["ifMatch"] == 'W/"1"'
    assert (
        second.claims.updated == 1 and second.claims.cancelled == 1 and second.tasks.completed == 1
    )
    assert server.get("Claim", claim_ma11["id"])["status"] == "cancelled"
    assert server.get("Task", task["id"])["status"] == "completed"
    assert calls(rsps, "POST", "Claim") == [] and calls(rsps, "PUT") == []


# --------------------------------------------------------------------------- retries and failures


def test_503_with_retry_after_on_search_then_success(rsps, server, tmp_path, sleeps):
    clinic(server, patients=2, per_patient=2)
    answered = []

    def once_503(method, path, query):
        if (
            method == "GET"
            and path == MA
            and "_count" in query
            and "subject" not in query
            and not answered
        ):
            answered.append(1)
            return 503, {"Retry-After": "7"}, outcome("busy")
        return None

    server.fail.append(once_503)

    result = sync(tmp_path, sleeps)

    assert result.exit_code == 0 and result.claims.created == 4
    assert sleeps == [7.0]
    assert result.summary["http"]["retries"] == 1


def _seed_state(tmp_path, mark: str) -> bytes:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"format": 1, "sources": {BASE: {"mark": mark, "recent": {}}}}))
    return path.read_bytes()


def test_server_keeps_answering_503_fatal_and_state_unchanged(rsps, server, tmp_path, sleeps):
    clinic(server, patients=2, per_patient=2)
    before = _seed_state(tmp_path, instant(50))
    server.fail.append(lambda m, p, q: (503, {"Retry-After": "1"}, None) if p == MA else None)

    with pytest.raises(FatalNetworkError) as info:
        sync(tmp_path, sleeps)

    assert info.value.exit_code == EXIT_SERVER == 4
    assert "503" in str(info.value)
    assert len(sleeps) == 5  # 6 attempts
    assert (tmp_path / "state.json").read_bytes() == before
    assert not list(tmp_path.glob("*.tmp"))
    assert calls(rsps, "POST") == []


def test_server_failing_on_page_2_keeps_mark_at_page_1(rsps, server, tmp_path, sleeps):
    admins = clinic(server)
    server.fail.append(
        lambda m, p, q: (503, {}, None) if q.get("_getpagesoffset") == ["20"] else None
    )

    with pytest.raises(FatalNetworkError):
        sync(tmp_path, sleeps)

    assert state_of(tmp_path)["mark"] == admins[19]["meta"]["lastUpdated"]
    assert len(server.all("Claim")) == 20


def test_cli_exit_code_4_when_server_keeps_failing(
    rsps, server, tmp_path, sleeps, monkeypatch, capsys
):
    clinic(server, patients=1, per_patient=1)
    before = _seed_state(tmp_path, instant(50))
    server.fail.append(lambda m, p, q: (503, {}, None) if p == MA else None)
    monkeypatch.setattr(sync_module, "make_client", no_sleep_cli_client(sleeps))
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        code = cli.main(
            [
                "sync",
                "--source",
                BASE,
                "--state",
                str(tmp_path / "state.json"),
                "--report",
                str(tmp_path / "report.json"),
            ]
        )
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    assert code == 4
    assert (tmp_path / "state.json").read_bytes() == before
    assert "503" in capsys.readouterr().err


def test_batch_post_failing_on_page_2_keeps_mark_at_page_1(rsps, server, tmp_path, sleeps):
    admins = clinic(server)
    posts = []

    def fail_second_batch(bundle):
        posts.append(1)
        return (500, outcome("HAPI-0000: database unavailable")) if len(posts) >= 2 else None

    server.batch_hook = fail_second_batch

    with pytest.raises(FatalNetworkError) as info:
        sync(tmp_path, sleeps)

    assert info.value.status == 500
    assert state_of(tmp_path)["mark"] == admins[19]["meta"]["lastUpdated"]
    assert len(server.all("Claim")) == 20
    # The report keeps what was posted before the failure, and says why the run stopped.
    report = report_of(tmp_path)
    assert report["summary"]["aborted"] is True
    assert report["summary"]["posted"]["claims"]["created"] == 20
    assert any(e["record"] == "run" and "HTTP 500" in e["message"] for e in report["errors"])
    assert not list(tmp_path.glob(".*.partial"))


def test_non_retryable_search_error_is_fatal_at_once(rsps, server, tmp_path, sleeps):
    clinic(server, patients=1, per_patient=1)
    server.fail.append(
        lambda m, p, q: (
            (400, {}, outcome("HAPI-0524: Unknown search parameter")) if p == MA else None
        )
    )

    with pytest.raises(FatalNetworkError) as info:
        sync(tmp_path, sleeps)

    assert info.value.status == 400 and "HAPI-0524" in str(info.value)
    assert sleeps == [] and len(calls(rsps, "GET", MA)) == 1
    assert not (tmp_path / "state.json").exists()


# --------------------------------------------------------------------------- authentication


@pytest.fixture(scope="module")
def rsa_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_smart_token_renewed_once_on_401_during_sync(rsps, server, tmp_path, sleeps, rsa_pem):
    clinic(server, patients=2, per_patient=2)
    tokens = iter(["at-1", "at-2"])
    token_calls = []

    def token(request):
        token_calls.append(request)
        value = next(tokens)
        server.auth_header = f"Bearer {value}" if value == "at-2" else server.auth_header
        return (
            200,
            {},
            json.dumps({"access_token": value, "token_type": "bearer", "expires_in": 3600}),
        )

    rsps.add_callback(responses.POST, TOKEN_URL, token)
    server.auth_header = "Bearer at-1"
    # the server forgets at-1 when the search for administrations arrives
    server.on_request = lambda m, p, q: (
        setattr(server, "auth_header", "Bearer at-2")
        if p == MA and server.auth_header == "Bearer at-1"
        else None
    )
    auth = SmartBackendAuth(
        BASE, "billing-bot", rsa_pem, token_url=TOKEN_URL, http=requests.Session()
    )

    result = sync(tmp_path, sleeps, auth=auth)

    assert result.exit_code == 0 and result.claims.created == 4
    assert len(token_calls) == 2
    assert (
        len([c for c in calls(rsps) if c.response is not None and c.response.status_code == 401])
        == 1
    )


# --------------------------------------------------------------------------- stopping


def test_stop_flag_finishes_the_page_saves_mark_and_stops(rsps, server, tmp_path, sleeps):
    admins = clinic(server)
    stop = StopFlag()
    server.on_request = lambda m, p, q: stop.event.set() if (m, p) == ("GET", "Consent") else None

    result = sync(tmp_path, sleeps, stop=stop)

    assert result.interrupted and result.exit_code == EXIT_INTERRUPTED == 130
    assert result.claims.created == 20 and len(server.all("Claim")) == 20
    assert state_of(tmp_path)["mark"] == admins[19]["meta"]["lastUpdated"]
    assert [
        c
        for c in calls(rsps, "GET", "", "_getpages")
        if parse_qs(urlsplit(c.request.url).query)["_count"] == ["20"]
    ] == []  # page 2 never asked for
    assert report_of(tmp_path)["summary"]["interrupted"] is True


# --------------------------------------------------------------------------- PHI


def test_whole_run_logs_and_report_carry_no_phi_or_secrets(rsps, server, tmp_path, sleeps, caplog):
    note = "patient anxious about needles"
    clinic(server, patients=3, per_patient=2, note=[{"text": note}])
    server.put(
        admin(
            id="ma-nosite",
            patient="p0",
            effectiveDateTime="2026-10-05T10:30:00-05:00",
            note=[{"text": note}],
            dosage={k: v for k, v in admin()["dosage"].items() if k != "site"},
        )
    )
    server.entry_hook = lambda e: (
        (400, "HAPI-1094: Resource Organization/payer not found")
        if e["request"].get("ifNoneExist", "").endswith("|ma2-1")
        else None
    )
    flaky = []
    server.fail.append(
        lambda m, p, q: (
            (flaky.append(1) or (503, {"Retry-After": "1"}, None))
            if p == "Coverage" and not flaky
            else None
        )
    )
    secret = "bearer-s3cr3t-token-value"
    caplog.set_level(logging.DEBUG)

    result = sync(tmp_path, sleeps, auth=BearerAuth(secret))
    assert (
        result.claims.failed == 1
        and result.tasks.created == 1
        and result.summary["http"]["retries"] == 1
    )

    password = "pa55-w0rd-secret"
    basic = BasicAuth("billing", password)
    sync(tmp_path, sleeps, auth=basic, full=True)

    text = (
        caplog.text
        + "\n".join(str(r.args) for r in caplog.records)
        + (tmp_path / "report.json").read_text()
    )
    assert "HAPI-1094" in text and "retrying" in text  # the logs did say something
    phi = ["Testperson", "1950-02-03", "MEMBER-SECRET-1", note, "anxious"]
    for value in [*phi, secret, password, basic._header.split()[1]]:
        assert value not in text, value
    assert not re.search(r"\bPat\b", text)
    assert all(r.request.headers.get("Authorization") for r in calls(rsps))


# --------------------------------------------------------------------------- CLI helpers


@pytest.mark.parametrize(
    "value, seconds", [("15m", 900), ("30s", 30), ("1h", 3600), ("2h", 7200), ("1s", 1)]
)
def test_parse_interval(value, seconds):
    assert parse_interval(value) == seconds


@pytest.mark.parametrize("value", ["", "15", "m", "0m", "-5m", "1.5h", "15 m", "1d", "15M", "abc"])
def test_parse_interval_rejects(value):
    with pytest.raises(ConfigError) as info:
        parse_interval(value)
    assert info.value.exit_code == 2


# --------------------------------------------------------------------------- the CLI path


@pytest.fixture
def keep_signal_handlers():
    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGINT, saved[0])
    signal.signal(signal.SIGTERM, saved[1])


def cli_args(tmp_path) -> list[str]:
    return [
        "sync",
        "--source",
        BASE,
        "--state",
        str(tmp_path / "state.json"),
        "--report",
        str(tmp_path / "report.json"),
        "--page-size",
        "20",
    ]


def test_cli_sigterm_during_page_1_finishes_it_and_exits_130(
    rsps, server, tmp_path, sleeps, monkeypatch, keep_signal_handlers, capsys
):
    admins = clinic(server)
    monkeypatch.setattr(sync_module, "make_client", no_sleep_cli_client(sleeps))
    server.on_request = lambda m, p, q: (
        signal.raise_signal(signal.SIGTERM)
        if (m, p) == ("GET", "Consent") and not server.all("Claim")
        else None
    )

    code = cli.main(cli_args(tmp_path))

    assert code == EXIT_INTERRUPTED
    assert len(server.all("Claim")) == 20
    assert state_of(tmp_path)["mark"] == admins[19]["meta"]["lastUpdated"]
    assert "20 administrations" in capsys.readouterr().out


def test_cli_second_sync_on_a_locked_state_file_exits_6(
    rsps, server, tmp_path, sleeps, monkeypatch, keep_signal_handlers, capsys
):
    from fhir_injection.jobs.state import StateLock

    clinic(server, patients=1, per_patient=1)
    monkeypatch.setattr(sync_module, "make_client", no_sleep_cli_client(sleeps))

    with StateLock(tmp_path / "state.json"):
        code = cli.main(cli_args(tmp_path))

    assert code == 6
    assert "lock" in capsys.readouterr().err
    assert calls(rsps, "GET", MA) == [] and calls(rsps, "POST") == []
    assert not (tmp_path / "state.json").exists()


def test_a_wrongly_typed_administration_is_reported_and_the_page_goes_on(
    rsps, server, tmp_path, sleeps
):
    admins = clinic(server, patients=2, per_patient=2)
    admins[1]["dosage"] = [admins[1]["dosage"]]  # a list where FHIR has one element
    result = sync(tmp_path, sleeps)
    assert result.claims.created == 3 and result.exit_code == 1
    (error,) = report_of(tmp_path)["errors"]
    assert (
        admins[1]["id"] in error["record"] and error["field"] == "MedicationAdministration.dosage"
    )


def test_an_administration_the_engine_fails_on_is_skipped_not_fatal(
    rsps, server, tmp_path, sleeps, monkeypatch
):
    import fhir_injection.decision.isolate as isolate  # decide_isolated looks decide_all up here

    admins = clinic(server, patients=2, per_patient=2)
    real = isolate.decide_all

    def flaky(batch, *args, **kwargs):
        if any(a["id"] == admins[2]["id"] for a in batch):
            raise RuntimeError("engine bug quoting the record")
        return real(batch, *args, **kwargs)

    monkeypatch.setattr(isolate, "decide_all", flaky)
    result = sync(tmp_path, sleeps)
    assert result.claims.created == 3
    (error,) = report_of(tmp_path)["errors"]
    assert error["record"] == f"{MA}/{admins[2]['id']}" and "RuntimeError" in error["message"]
    assert "quoting the record" not in json.dumps(report_of(tmp_path))


def test_cli_prints_a_progress_line_per_page_and_the_request_count(
    rsps, server, tmp_path, sleeps, monkeypatch, capsys
):
    clinic(server)  # 60 administrations, 3 pages of 20
    monkeypatch.setattr(sync_module, "make_client", no_sleep_cli_client(sleeps))
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        code = cli.main(
            [
                "sync",
                "--source",
                BASE,
                "--state",
                str(tmp_path / "state.json"),
                "--report",
                str(tmp_path / "report.json"),
                "--page-size",
                "20",
            ]
        )
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    out = capsys.readouterr()
    assert code == 0
    progress = [line for line in out.err.splitlines() if line.startswith("fhir-injection: page ")]
    assert [p.split(":")[1].strip() for p in progress] == ["page 1", "page 2", "page 3"]
    assert "60 administrations" in progress[-1] and "requests" in progress[-1]
    assert f"HTTP: {len(calls(rsps))} requests over 3 pages" in out.out


# --------------------------------------------------------------------------- batch searches, transactions, our ids


def batch_server(rsps, **kw) -> FakeFhir:
    """A server like HAPI: lists transaction and batch, takes PUT to a new id (updateCreate)."""
    kw.setdefault("interactions", ("transaction", "batch"))
    kw.setdefault("update_create", True)
    return FakeFhir(**kw).install(rsps)


def bundles_of(rsps, kind: str) -> list[dict]:
    return [
        b
        for b in (json.loads(c.request.body) for c in calls(rsps, "POST", ""))
        if b["type"] == kind
    ]


def test_batch_server_a_page_costs_the_page_one_lookup_batch_and_one_transaction(
    rsps, tmp_path, sleeps
):
    from fhir_injection.sinks.claims import stable_id

    server = batch_server(rsps)
    admins = clinic(server)  # 60 administrations, 20 a page -> 3 pages

    result = sync(tmp_path, sleeps)

    assert result.exit_code == 0 and result.claims.created == 60
    # metadata 1 + per page: the page (its encounters came as _include, so what they point to is known
    # at once), one batch of searches (Conditions, the Organization on page 1, Consent, Coverage,
    # ChargeItem, the same-day siblings, the Claims and Tasks already there, the encounters' Location on
    # page 1), one transaction of 20 PUTs: 1 + 3 x 3 = 10 (31 on a server without batch: see above).
    assert len(calls(rsps)) == result.summary["http"]["requests"] == 10
    searches = bundles_of(rsps, "batch")
    assert len(searches) == 3 and all(
        e["request"]["method"] == "GET" for b in searches for e in b["entry"]
    )
    first_round = {e["request"]["url"].split("?")[0] for e in searches[0]["entry"]}
    assert first_round == {
        "Condition",
        "Organization",
        "Consent",
        "Coverage",
        "ChargeItem",
        MA,
        "Claim",
        "Task",
        "Practitioner",  # the encounters' participant (the rendering provider)
        "Location",
    }  # the encounters' place (its place of service)
    writes = bundles_of(rsps, "transaction")
    assert len(writes) == 3
    entries = [e for b in writes for e in b["entry"]]
    assert all(e["request"]["method"] == "PUT" for e in entries)
    expected = {stable_id("fi-claim", CLAIM_SYSTEM, a["id"]) for a in admins}
    assert {e["request"]["url"] for e in entries} == {f"Claim/{i}" for i in expected}
    assert {
        c["id"] for c in server.all("Claim")
    } == expected  # our ids: the same as the offline job's
    assert all(e["posted"]["claim"] == "create" for e in report_of(tmp_path)["administrations"])

    rsps.calls.reset()
    again = sync(tmp_path, sleeps, full=True)
    assert again.claims.unchanged == 60 and again.claims.created == 0
    assert bundles_of(rsps, "transaction") == []  # nothing to write


def test_server_without_update_create_gets_conditional_creates_in_transactions(
    rsps, tmp_path, sleeps
):
    server = batch_server(rsps, update_create=False)
    admins = clinic(server, patients=3, per_patient=2)

    result = sync(tmp_path, sleeps)

    assert result.claims.created == 6
    (write,) = bundles_of(rsps, "transaction")
    assert sorted(e["request"]["ifNoneExist"] for e in write["entry"]) == sorted(
        f"identifier={CLAIM_SYSTEM}|{a['id']}" for a in admins
    )
    assert not any(c["id"].startswith("fi-claim-") for c in server.all("Claim"))


def test_create_with_post_is_honoured_where_the_server_takes_ids(rsps, tmp_path, sleeps):
    server = batch_server(rsps)
    clinic(server, patients=2, per_patient=2)
    sync(tmp_path, sleeps, create_with="post")
    (write,) = bundles_of(rsps, "transaction")
    assert {e["request"]["method"] for e in write["entry"]} == {"POST"}


def test_a_server_refusing_our_ids_is_noticed_once_then_conditional_create_for_the_run(
    rsps, tmp_path, sleeps, caplog
):
    server = batch_server(rsps)  # it claims updateCreate...
    server.client_ids = False  # ...but refuses a PUT to a new id
    admins = clinic(server)

    with caplog.at_level(logging.WARNING):
        result = sync(tmp_path, sleeps)

    assert result.claims.created == 60 and result.claims.failed == 0 and result.exit_code == 0
    assert sorted(c["identifier"][0]["value"] for c in server.all("Claim")) == sorted(
        a["id"] for a in admins
    )
    assert sum("creating with conditional POST" in r.message for r in caplog.records) == 1
    puts = [
        e
        for b in bundles_of(rsps, "transaction")
        for e in b["entry"]
        if e["request"]["method"] == "PUT"
    ]
    assert len(puts) == 20 + 10 + 5 + 2  # the first page's refused halves, down to the first single
    assert [
        b
        for b in bundles_of(rsps, "transaction")[-2:]
        if any(e["request"]["method"] == "PUT" for e in b["entry"])
    ] == []  # pages 2 and 3: POST only
    assert sync(tmp_path, sleeps, full=True).claims.unchanged == 60


def test_a_transaction_with_one_bad_entry_lands_nothing_then_everything_but_it(
    rsps, tmp_path, sleeps
):
    server = batch_server(rsps)
    clinic(server, patients=4, per_patient=2)
    text = "HAPI-1094: Resource Practitioner/gone not found"
    server.entry_hook = lambda e: (
        (400, text) if e["resource"]["identifier"][0]["value"] == "ma2-1" else None
    )
    server.single_hook = lambda method, path, body: (
        (400, outcome(text)) if body["identifier"][0]["value"] == "ma2-1" else None
    )

    result = sync(tmp_path, sleeps, create_with="put")

    assert result.claims.created == 7 and result.claims.failed == 1
    assert sorted(c["identifier"][0]["value"] for c in server.all("Claim")) == sorted(
        f"ma{i}-{k}" for i in range(4) for k in range(2) if (i, k) != (2, 1)
    )
    (error,) = report_of(tmp_path)["errors"]
    assert error["record"] == f"{MA}/ma2-1" and text in error["message"]
    assert state_of(tmp_path)["retry"] == {"ma2-1": 1}


def lookup_client(sleeps) -> FhirClient:
    return make_client(sleeps)


def test_lookup_many_sends_several_searches_in_one_batch_and_files_answers_per_search(rsps, sleeps):
    from fhir_injection.fhir.client import Lookup

    server = batch_server(rsps)
    clinic(server, patients=3, per_patient=1)
    client = lookup_client(sleeps)
    wanted = [
        Lookup("Patient", "_id", ("p0", "p2", "nobody")),
        Lookup("Consent", "patient", ("Patient/p1",)),
        Lookup(MA, "subject", ("Patient/p0", "Patient/p1"), (("effective-time", "ge2026-10-05"),)),
    ]

    results = client.lookup_many(wanted)

    assert [c.request.method for c in calls(rsps) if "metadata" not in c.request.url] == ["POST"]
    assert sorted(r["id"] for r, _ in results[0]) == ["p0", "p2"]
    assert {r["patient"]["reference"] for r, _ in results[1]} == {"Patient/p1"}
    assert sorted(r["id"] for r, _ in results[2]) == ["ma0-0", "ma1-0"]


def test_lookup_many_follows_next_links_inside_a_batch_answer(rsps, sleeps, monkeypatch):
    from fhir_injection.fhir import client as client_module
    from fhir_injection.fhir.client import Lookup

    monkeypatch.setattr(client_module, "SEARCH_BY_PAGE", 2)
    server = batch_server(rsps)
    clinic(server, patients=5, per_patient=1)
    client = lookup_client(sleeps)

    (found,) = client.lookup_many(
        [Lookup("Coverage", "beneficiary", tuple(f"Patient/p{i}" for i in range(5)))]
    )

    assert sorted(r["beneficiary"]["reference"] for r, _ in found) == [
        f"Patient/p{i}" for i in range(5)
    ]
    assert (
        len(calls(rsps, "GET", "", "_getpages")) == 2
    )  # 5 results, 2 a page: the batch's page + 2 more


def test_lookup_many_searches_alone_what_failed_inside_the_batch(rsps, sleeps):
    from fhir_injection.fhir.client import Lookup

    server = batch_server(rsps)
    clinic(server, patients=2, per_patient=1)
    failed = []

    def once(method, path, query):
        if path == "Consent" and not failed:
            failed.append(path)
            return 500, {}, outcome("HAPI-0389: database busy")
        return None

    server.fail.append(once)
    client = lookup_client(sleeps)

    consents, patients = client.lookup_many(
        [
            Lookup("Consent", "patient", ("Patient/p0", "Patient/p1")),
            Lookup("Patient", "_id", ("p0",)),
        ]
    )

    assert len(consents) == 2 and [r["id"] for r, _ in patients] == ["p0"]
    assert len(calls(rsps, "GET", "Consent")) == 1  # the failed search, asked on its own
    assert client.batch_searches is True


def test_lookup_many_stops_batching_when_the_server_refuses_batches(rsps, sleeps):
    from fhir_injection.fhir.client import Lookup

    server = batch_server(rsps)
    clinic(server, patients=2, per_patient=1)
    server.batch_hook = lambda bundle: (405, outcome("batch not supported"))
    client = lookup_client(sleeps)

    first = client.lookup_many(
        [Lookup("Patient", "_id", ("p0", "p1")), Lookup("Consent", "patient", ("Patient/p0",))]
    )
    second = client.lookup_many([Lookup("Patient", "_id", ("p1",))])

    assert len(first[0]) == 2 and len(first[1]) == 1 and len(second[0]) == 1
    assert len(calls(rsps, "POST", "")) == 1  # refused once, never asked again
    assert len(calls(rsps, "GET", "Patient")) == 2 and client.batch_searches is False


def test_lookup_many_without_batch_in_the_capability_statement_never_batches(rsps, server, sleeps):
    from fhir_injection.fhir.client import Lookup

    clinic(server, patients=2, per_patient=1)
    client = lookup_client(sleeps)
    results = client.lookup_many(
        [Lookup("Patient", "_id", ("p0",)), Lookup("Consent", "patient", ("Patient/p1",))]
    )
    assert [len(r) for r in results] == [1, 1]
    assert calls(rsps, "POST", "") == [] and len(calls(rsps, "GET")) == 3  # metadata + 2 searches


def test_batch_server_siblings_on_an_earlier_page_get_the_same_day_rules_and_are_looked_up_once(
    rsps, tmp_path, sleeps
):
    server = batch_server(rsps)
    clinic(
        server, patients=2, per_patient=3
    )  # page 1: ma0-0 ma0-1 ma0-2 ma1-0; page 2: ma1-1 ma1-2

    result = sync(tmp_path, sleeps, page_size=4)

    assert result.claims.created == 6 and result.claims.failed == 0
    modifiers = {
        c["identifier"][0]["value"]: sorted(
            m["coding"][0]["code"] for it in c["item"] for m in it.get("modifier") or []
        )
        for c in server.all("Claim")
    }
    # The 2nd and 3rd same-day injection of each patient carry the distinct-service modifier, also when
    # the 1st was posted on an earlier page (found as a sibling), and the 1st does not.
    assert modifiers["ma1-0"] == modifiers["ma0-0"]
    assert modifiers["ma1-1"] == modifiers["ma1-2"] == modifiers["ma0-1"] == modifiers["ma0-2"]
    assert modifiers["ma1-1"] != modifiers["ma1-0"]
    # Each page: round 1 finds the siblings on the other page (ma1-1 ma1-2, then ma1-0), round 2 asks for
    # the siblings' Claims and Tasks (and, on page 1, the Conditions their encounter points to).
    batches = bundles_of(rsps, "batch")
    assert len(batches) == 4
    last = [e["request"]["url"] for e in batches[3]["entry"]]
    assert [u.split("?")[0] for u in last] == ["Claim", "Task"] and all("ma1-0" in u for u in last)
    assert len(bundles_of(rsps, "transaction")) == 2


def test_batch_server_sibling_searches_one_per_day_with_a_day_either_side_and_includes(
    rsps, tmp_path, sleeps
):
    server = batch_server(rsps)
    clinic(server, patients=2, per_patient=1)  # p0, p1 on 2026-10-05
    for r in world(patient="p9"):
        if not server.get(r["resourceType"], r["id"]):
            server.put(r, last_updated=instant(0))
    server.put(
        admin(id="ma9-0", patient="p9", effectiveDateTime="2026-10-07T22:30:00-05:00"),
        last_updated=instant(200),
        version="1",
    )

    sync(tmp_path, sleeps)

    first = bundles_of(rsps, "batch")[0]
    sibling_urls = [
        e["request"]["url"] for e in first["entry"] if e["request"]["url"].startswith(MA + "?")
    ]
    searches = [parse_qs(urlsplit(u).query) for u in sibling_urls]
    by_patients = {q["subject"][0]: q for q in searches}
    assert set(by_patients) == {"Patient/p0,Patient/p1", "Patient/p9"}
    assert by_patients["Patient/p0,Patient/p1"]["effective-time"] == [
        "ge2026-10-04",
        "lt2026-10-07",
    ]
    assert by_patients["Patient/p9"]["effective-time"] == ["ge2026-10-06", "lt2026-10-09"]
    assert all(sorted(q["_include"]) == sorted(INCLUDES) for q in searches)


@pytest.mark.parametrize("flag, method", [("put", "PUT"), ("post", "POST")])
def test_cli_create_with_reaches_the_writes(rsps, tmp_path, sleeps, monkeypatch, flag, method):
    server = batch_server(rsps)
    clinic(server, patients=1, per_patient=2)
    monkeypatch.setattr(sync_module, "make_client", no_sleep_cli_client(sleeps))
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        code = cli.main(
            [
                "sync",
                "--source",
                BASE,
                "--state",
                str(tmp_path / "state.json"),
                "--report",
                str(tmp_path / "report.json"),
                "--create-with",
                flag,
            ]
        )
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    assert code == 0
    (write,) = bundles_of(rsps, "transaction")
    assert {e["request"]["method"] for e in write["entry"]} == {method}


def test_unknown_create_with_is_a_config_error(tmp_path):
    from fhir_injection.sinks.poster import Poster

    with pytest.raises(ConfigError, match="create_with 'maybe'"):
        Poster(make_client([]), load_bundled_rules(), Config(), 10, create_with="maybe")


def test_pulls_are_found_by_name_and_an_unknown_one_is_a_configuration_error():
    from fhir_injection.sources import pull_named
    from fhir_injection.sources.search import SearchPull

    assert pull_named("search") is SearchPull
    with pytest.raises(
        ConfigError, match=r"no way to pull called 'teleport'; known: (\w+, )*search"
    ):
        pull_named("teleport")
