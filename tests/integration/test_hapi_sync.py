"""The live sync against a real FHIR server (HAPI FHIR JPA 8.8.0 locally, or ``FHIR_BASE_URL``).

The steps build on each other, in file order, over one module-scoped setup:

1. load ``fixtures/demo``, sync (once, through the CLI), and compare what is on the server with
   the offline run over exactly the administrations the server accepted;
2. sync again: nothing new on the server;
3. fix a documentation gap / void an administration, sync: Claim active + Task completed /
   Claim cancelled;
4. administrations added after a sync are picked up by the next one, and nothing before the mark is
   fetched again beyond the overlap;
5. the demo sync's HTTP request count grows with pages, not administrations;
6. a Claim the server refuses is reported with the server's message, and the rest still land.

Isolation: every run has its own identifier system (``urn:fhir-injection:test-<uuid>:claim``), and
counts are taken by that system (identifier lists, and the ``urn:fhir-injection:tag`` tag). Against
the local loopback server the database is wiped first (``$expunge``) and counted as a whole too;
against any other server the demo's ids get a per-run prefix (references rewritten) so loads never
collide, and syncs start at this run's own start time.
"""

from __future__ import annotations

import copy
import json
import math
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

import pytest

from fhir_injection import Config, SyncOptions, connect, load_folder, run_folder, run_sync
from fhir_injection.bundled import DEMO_AS_OF
from fhir_injection.clock import minus, parse_instant
from fhir_injection.jobs.state import StateFile
from fhir_injection.sinks.claims import TAG_SYSTEM
from tests.builders import prefix_identifiers, prefix_references

pytestmark = pytest.mark.hapi

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "fixtures" / "demo"
MA = "MedicationAdministration"

NPI = "http://hl7.org/fhir/sid/us-npi"  # the demo names its clinic by a conditional reference on it


# ----------------------------------------------------------------------------- helpers


def is_loopback(url: str) -> bool:
    return (urlparse(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def copy_demo(dest: Path, prefix: str = "", drop: set[str] = frozenset()) -> Path:
    """A copy of fixtures/demo with every id (and every reference to one) prefixed, minus ``drop``.

    ``drop`` holds "Type/id" keys of the copy (prefixed). Contained references (``#med1``) stay.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for src in sorted(DEMO.glob("*.ndjson")):
        lines = []
        for line in src.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            resource = json.loads(line)
            if prefix:
                resource = prefix_identifiers(prefix_references(resource, prefix), prefix, {NPI})
                if resource.get("id"):
                    resource["id"] = prefix + resource["id"]
            if f"{resource.get('resourceType')}/{resource.get('id')}" in drop:
                continue
            lines.append(json.dumps(resource, separators=(",", ":")))
        (dest / src.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dest


def by_identifier(client, rtype: str, system: str, ids) -> dict[str, dict]:
    """Our Claims/Tasks on the server, by administration id (searched as identifier lists)."""
    found: dict[str, dict] = {}
    for resource, mode in client.search_by(
        rtype, "identifier", [f"{system}|{i}" for i in ids], 100
    ):
        if mode != "match":
            continue
        for ident in resource.get("identifier") or []:
            if ident.get("system") == system:
                assert ident["value"] not in found, f"two {rtype}s for {system}|{ident['value']}"
                found[ident["value"]] = resource
    return found


def tag_count(client, rtype: str, system: str, **params) -> int:
    """``_summary=count`` of the resources carrying our run's tag."""
    query = [("_tag", f"{TAG_SYSTEM}|{system}"), ("_summary", "count"), *params.items()]
    return int(client.session.request("GET", rtype, params=query).json()["total"])


def server_now(client) -> str:
    """The server's clock (a searchset's meta.lastUpdated), so marks never depend on clock skew."""
    resp = client.session.request(
        "GET", "Organization", params=[("_id", "no-such-id"), ("_count", "1")]
    )
    stamp = (resp.json().get("meta") or {}).get("lastUpdated")
    if stamp:
        return stamp
    from email.utils import parsedate_to_datetime

    return parsedate_to_datetime(resp.headers["Date"]).isoformat().replace("+00:00", "Z")


def expunge_everything(client) -> None:
    client.session.request(
        "POST",
        "$expunge",
        json={
            "resourceType": "Parameters",
            "parameter": [{"name": "expungeEverything", "valueBoolean": True}],
        },
    )


def entries(report_path: Path) -> dict[str, dict]:
    report = json.loads(report_path.read_text(encoding="utf-8"))
    return {e["administration"].split("/", 1)[1]: e for e in report["administrations"]}


def claim_statuses(claims: dict[str, dict]) -> dict[str, int]:
    return dict(sorted(Counter(c["status"] for c in claims.values()).items()))


def request_bound(pages: int) -> int:
    return 20 * pages + 10


class Env:
    """What the steps share."""


@pytest.fixture(scope="module")
def env(fhir_base_url, rules, tmp_path_factory):
    e = Env()
    e.url = fhir_base_url
    e.local = is_loopback(fhir_base_url)
    e.rules = rules
    e.run = uuid.uuid4().hex[:10]
    e.system = f"urn:fhir-injection:test-{e.run}:claim"
    e.task_system = e.system + ":task"
    e.config = Config(
        identifier_system=e.system,
        as_of=date.fromisoformat(DEMO_AS_OF),
        default_place_of_service="11",
    )
    e.tmp = tmp_path_factory.mktemp("hapi")
    e.prefix = "" if e.local else f"t{e.run}-"
    admin = connect(e.url)
    if e.local:
        expunge_everything(admin)
    e.start = server_now(admin)

    # Load (Python API). The demo has deliberately invalid and dangling administrations.
    data = copy_demo(e.tmp / "demo", e.prefix)
    t0 = time.monotonic()
    e.load = load_folder(str(data), connect(e.url))
    print(
        f"\nload: {sum(e.load.loaded.values())} resources, {e.load.requests} requests, "
        f"{len(e.load.problems)} refused, {time.monotonic() - t0:.1f}s"
    )
    e.refused = {p.record for p in e.load.problems}
    assert e.refused and all(r.startswith(f"{MA}/") for r in e.refused), e.refused
    e.accepted = [
        json.loads(line)["id"]
        for line in (data / f"{MA}.ndjson").read_text().splitlines()
        if line.strip() and f"{MA}/{json.loads(line)['id']}" not in e.refused
    ]
    assert e.load.loaded[MA] == len(e.accepted)

    # The offline run over exactly what the server accepted.
    accepted_dir = copy_demo(e.tmp / "accepted", e.prefix, drop=e.refused)
    e.offline = run_folder(
        accepted_dir, e.tmp / "offline", rules, e.config, "2026-11-26T12:00:00Z"
    ).summary

    # The demo sync, through the CLI (it prints the request count).
    e.state = e.tmp / "state.json"
    e.report = e.tmp / "report.json"
    cfg = e.tmp / "config.toml"
    cfg.write_text(
        f'identifier_system = "{e.system}"\nas_of = {DEMO_AS_OF}\ndefault_place_of_service = "11"\n',
        encoding="utf-8",
    )
    cmd = [
        sys.executable,
        "-m",
        "fhir_injection",
        "--config",
        str(cfg),
        "sync",
        "--source",
        e.url,
        "--state",
        str(e.state),
        "--report",
        str(e.report),
        "--since",
        e.start,
    ]
    t0 = time.monotonic()
    e.cli = subprocess.run(cmd, capture_output=True, text=True, cwd=e.tmp, timeout=600)
    e.cli_seconds = time.monotonic() - t0
    print(e.cli.stdout + e.cli.stderr[-3000:])
    assert e.cli.returncode == 0, e.cli.stderr[-3000:]
    e.summary = json.loads(e.report.read_text())["summary"]
    return e


def sync(e: Env, **options):
    """One sync with fresh clients (fresh request counters) on the module's state file by default."""
    client = connect(e.url)
    config = options.pop("config", e.config)
    opts = SyncOptions(
        state_path=str(options.pop("state_path", e.state)),
        report_path=str(options.pop("report_path", e.tmp / f"report-{uuid.uuid4().hex[:6]}.json")),
        **options,
    )
    result = run_sync(client, client, e.rules, config, opts)
    return result, Path(opts.report_path), client


def our_entries(e: Env, report_path: Path) -> dict[str, dict]:
    """Report entries for this run's administrations (another server's may share an overlap window)."""
    return {k: v for k, v in entries(report_path).items() if k.startswith(e.prefix)}


# ----------------------------------------------------------------------------- 1. demo sync = offline


def test_demo_sync_matches_the_offline_run(env):
    e = env
    client = connect(e.url)
    claims = by_identifier(client, "Claim", e.system, e.accepted)
    tasks = by_identifier(client, "Task", e.task_system, e.accepted)
    print(
        f"offline: claims {e.offline['claims']}, tasks {e.offline['tasks']}; "
        f"server: claims {claim_statuses(claims)}, tasks {len(tasks)}"
    )
    assert e.offline["administrations"] == len(e.accepted)
    assert claim_statuses(claims) == e.offline["claims"]
    assert len(tasks) == e.offline["tasks"]
    assert all(t["status"] == "requested" for t in tasks.values())
    # The sync's own report says the same as the offline run.
    s = e.summary
    ours = our_entries(e, e.report)
    assert set(ours) == set(e.accepted)
    assert Counter(x["outcome"] for x in ours.values()) == Counter(
        {k: v for k, v in e.offline["outcomes"].items() if v}
    )
    assert s["posted"]["claims"]["failed"] == s["posted"]["tasks"]["failed"] == 0
    assert s["record_errors"] == 0
    if e.local:  # the whole server holds exactly these
        assert s["outcomes"] == e.offline["outcomes"] and s["claims"] == e.offline["claims"]
        assert s["tasks"] == e.offline["tasks"]
        for status, n in e.offline["claims"].items():
            assert tag_count(client, "Claim", e.system, status=status) == n
        assert tag_count(client, "Claim", e.system) == sum(e.offline["claims"].values())
        assert tag_count(client, "Task", e.system) == e.offline["tasks"]
        assert s["posted"]["claims"]["created"] == sum(e.offline["claims"].values())
        assert s["posted"]["tasks"]["created"] == e.offline["tasks"]


# ----------------------------------------------------------------------------- 2. exactly once


def test_second_sync_adds_nothing(env):
    e = env
    client = connect(e.url)
    before_claims = by_identifier(client, "Claim", e.system, e.accepted)
    before_tasks = by_identifier(client, "Task", e.task_system, e.accepted)

    # Incremental: the overlap window returns the same versions, which are skipped.
    result, report, c = sync(e)
    assert result.exit_code == 0
    assert not our_entries(e, report)
    assert result.claims.created == result.tasks.created == 0
    print(
        f"incremental re-sync: {result.summary['administrations']} administrations, "
        f"{c.stats.requests} requests over {result.summary['pages']} pages"
    )

    # Everything again from this run's start (own state file): every one decided, nothing written.
    result, report, c = sync(
        e, since=e.start, overlap_seconds=0, state_path=e.tmp / "state-again.json"
    )
    ours = our_entries(e, report)
    assert set(ours) == set(e.accepted)
    assert result.exit_code == 0
    for kind in ("claims", "tasks"):
        counts = result.summary["posted"][kind]
        assert counts["created"] == counts["updated"] == counts["failed"] == 0, (kind, counts)
    assert result.claims.unchanged == len(before_claims) and result.tasks.unchanged == len(
        before_tasks
    )
    print(
        f"full re-sync: {result.summary['administrations']} administrations, {c.stats.requests} requests "
        f"over {result.summary['pages']} pages; claims {result.claims.as_dict()}"
    )

    after_claims = by_identifier(client, "Claim", e.system, e.accepted)
    after_tasks = by_identifier(client, "Task", e.task_system, e.accepted)
    assert {k: v["meta"]["versionId"] for k, v in after_claims.items()} == {
        k: v["meta"]["versionId"] for k, v in before_claims.items()
    }
    assert {k: v["meta"]["versionId"] for k, v in after_tasks.items()} == {
        k: v["meta"]["versionId"] for k, v in before_tasks.items()
    }
    if e.local:
        assert tag_count(client, "Claim", e.system) == len(before_claims)
        assert tag_count(client, "Task", e.system) == len(before_tasks)


# ----------------------------------------------------------------------------- 3. fix a gap, void one


IM_ROUTE = {
    "coding": [
        {
            "system": "http://snomed.info/sct",
            "code": "78421000",
            "display": "Intramuscular route (qualifier value)",
        }
    ]
}


def test_fixed_gap_completes_the_task_and_void_cancels_the_claim(env):
    e = env
    client = connect(e.url)
    first = entries(e.report)
    held = sorted(
        k
        for k, x in first.items()
        if k.startswith(e.prefix)
        and x["outcome"] == "held"
        and [g["code"] for g in x["gaps"]] == ["missing-route"]
        and x["claim_status"] == "draft"
    )
    clean = sorted(
        k
        for k, x in first.items()
        if k.startswith(e.prefix) and x["outcome"] == "claim" and not x["gaps"]
    )
    assert held and clean
    fixed, voided = held[0], clean[0]
    claims = by_identifier(client, "Claim", e.system, [fixed, voided])
    tasks = by_identifier(client, "Task", e.task_system, [fixed])
    assert claims[fixed]["status"] == "draft" and tasks[fixed]["status"] == "requested"
    assert claims[voided]["status"] == "active"

    ma = client.session.request("GET", f"{MA}/{fixed}").json()
    ma["dosage"]["route"] = copy.deepcopy(IM_ROUTE)
    client.put(ma)
    ma = client.session.request("GET", f"{MA}/{voided}").json()
    ma["status"] = "entered-in-error"
    client.put(ma)

    result, report, c = sync(e)
    ours = our_entries(e, report)
    print(
        f"after fix + void: {sorted(ours)}; {c.stats.requests} requests; claims {result.claims.as_dict()}, "
        f"tasks {result.tasks.as_dict()}"
    )
    assert set(ours) == {fixed, voided}
    assert result.exit_code == 0
    assert ours[fixed]["outcome"] == "claim" and ours[fixed]["claim_status"] == "active"
    assert ours[fixed]["posted"] == {"claim": "update", "task": "complete"}
    assert ours[voided]["outcome"] == "void" and ours[voided]["posted"]["claim"] == "cancel"

    claims = by_identifier(client, "Claim", e.system, [fixed, voided])
    tasks = by_identifier(client, "Task", e.task_system, [fixed])
    assert claims[fixed]["status"] == "active"
    assert claims[fixed]["meta"]["versionId"] == "2"
    assert tasks[fixed]["status"] == "completed"
    assert claims[voided]["status"] == "cancelled"

    # And that is stable: the next sync changes neither.
    result, report, c = sync(e)
    assert not our_entries(e, report)
    claims = by_identifier(client, "Claim", e.system, [fixed, voided])
    assert claims[fixed]["meta"]["versionId"] == "2" and claims[voided]["status"] == "cancelled"
    e.changed = {fixed, voided}

    # Voided by mistake: a later version puts it back, and its Claim is active again.
    ma = client.session.request("GET", f"{MA}/{voided}").json()
    ma["status"] = "completed"
    client.put(ma)
    result, report, c = sync(e)
    ours = our_entries(e, report)
    assert set(ours) == {voided}
    assert ours[voided]["outcome"] == "claim" and ours[voided]["posted"]["claim"] == "update"
    claims = by_identifier(client, "Claim", e.system, [voided])
    assert claims[voided]["status"] == "active"

    # Updated Claims and Tasks are recognised as up to date by a later run (no rewrite every run).
    result, report, c = sync(
        e, since=e.start, overlap_seconds=0, state_path=e.tmp / "state-after-fix.json"
    )
    assert set(our_entries(e, report)) == set(e.accepted)
    for kind in ("claims", "tasks"):
        counts = result.summary["posted"][kind]
        assert (
            counts["created"]
            == counts["updated"]
            == counts["cancelled"]
            == counts["completed"]
            == 0
        ), (kind, counts)


# ----------------------------------------------------------------------------- 4. the incremental mark


def test_administrations_added_after_a_sync_are_picked_up_by_the_next(env):
    e = env
    client = connect(e.url)
    first = entries(e.report)
    # Clean single injections (the patient's only administration that day), copied as new ones.
    per_day = Counter((x["patient"], x["service_date"]) for x in first.values())
    originals = sorted(
        k
        for k, x in first.items()
        if k.startswith(e.prefix)
        and x["outcome"] == "claim"
        and not x["gaps"]
        and per_day[(x["patient"], x["service_date"])] == 1
        and k not in getattr(e, "changed", set())
    )[:3]
    assert len(originals) == 3
    mark_before = StateFile(e.state).source(e.url)["mark"]
    assert mark_before
    time.sleep(1.2)  # so the new ones are clearly after the mark, and the overlap below is exact

    new_ids = []
    for i, oid in enumerate(originals):
        ma = client.session.request("GET", f"{MA}/{oid}").json()
        ma.pop("meta", None)
        ma.pop("identifier", None)
        ma["id"] = f"{e.prefix}ma-new-{e.run[:6]}-{i}"
        ma["dosage"]["dose"]["value"] = ma["dosage"]["dose"]["value"] * 2  # not a duplicate
        client.put(ma)
        new_ids.append(ma["id"])

    overlap = 1.0
    fetched: list[dict] = []
    source = connect(e.url)
    original_pages = source.search_pages

    def recording(type_, params=None, post=False):
        for bundle in original_pages(type_, params, post):
            if type_ == MA and "_lastUpdated" in dict(
                params or []
            ):  # the incremental search, not siblings
                fetched.extend(
                    x["resource"]
                    for x in bundle.get("entry") or []
                    if (x.get("search") or {}).get("mode") == "match"
                    and x["resource"].get("resourceType") == MA
                )
            yield bundle

    source.search_pages = recording
    opts = SyncOptions(
        state_path=str(e.state),
        report_path=str(e.tmp / "report-incremental.json"),
        overlap_seconds=overlap,
    )
    result = run_sync(source, source, e.rules, e.config, opts)
    report = Path(opts.report_path)
    ours = our_entries(e, report)
    s = result.summary
    print(
        f"incremental: {len(new_ids)} added; fetched {len(fetched)} administrations over {s['pages']} pages, "
        f"processed {s['administrations']}, {s['http']['requests']} requests; claims {result.claims.as_dict()}"
    )

    assert set(ours) == set(new_ids)
    assert result.claims.created == len(new_ids) and result.claims.updated == 0
    assert all(x["outcome"] == "claim" and x["claim_status"] == "active" for x in ours.values())
    # Nothing from before the mark beyond the overlap window was fetched again.
    floor = parse_instant(minus(mark_before, overlap))
    stale = [m["id"] for m in fetched if parse_instant(m["meta"]["lastUpdated"]) < floor]
    assert not stale, stale
    fetched_ours = {m["id"] for m in fetched if m["id"].startswith(e.prefix)}
    assert set(new_ids) <= fetched_ours
    assert len(fetched_ours - set(new_ids)) <= 2  # at most the last changes just before the mark
    if e.local:
        assert s["administrations"] == len(new_ids)
        assert s["pages"] == 1
        assert s["http"]["requests"] <= request_bound(s["pages"])
    claims = by_identifier(client, "Claim", e.system, new_ids)
    assert sorted(claims) == sorted(new_ids) and {c["status"] for c in claims.values()} == {
        "active"
    }

    # And once more (same overlap): the new ones are now seen versions inside the overlap window.
    result, report, _c = sync(e, overlap_seconds=overlap)
    assert not our_entries(e, report)
    assert result.claims.created == 0
    e.added = new_ids


# ----------------------------------------------------------------------------- 5. request count


def test_demo_sync_request_count_grows_with_pages_not_administrations(env):
    e = env
    s = e.summary
    m = re.search(r"HTTP: (\d+) requests over (\d+) pages", e.cli.stdout)
    assert m, e.cli.stdout
    requests, pages = int(m.group(1)), int(m.group(2))
    print(
        f"demo sync: {requests} requests over {pages} pages for {s['administrations']} administrations "
        f"({e.cli_seconds:.1f}s through the CLI)"
    )
    assert requests == s["http"]["requests"] and pages == s["pages"]
    assert s["http"]["retries"] == 0
    if e.local:
        assert pages == math.ceil(
            len(e.accepted) / SyncOptions().page_size
        )  # one search page per page size
    assert requests <= request_bound(pages)
    assert requests < len(e.accepted) / 3


# ----------------------------------------------------------------------------- 6. a refused Claim


def test_a_claim_the_server_refuses_is_reported_and_the_rest_land(env, monkeypatch):
    import fhir_injection.sinks.poster as sync_module

    e = env
    system = f"urn:fhir-injection:test-{e.run}-refused:claim"
    config = Config(
        identifier_system=system,
        as_of=date.fromisoformat(DEMO_AS_OF),
        default_place_of_service="11",
    )
    first = entries(e.report)
    victim = sorted(
        k
        for k, x in first.items()
        if k.startswith(e.prefix)
        and x["outcome"] == "claim"
        and not x["gaps"]
        and k not in getattr(e, "changed", set())
    )[5]
    real_build_claim = sync_module.build_claim

    def build_claim(decision, config, created, status=None):
        claim = real_build_claim(decision, config, created, status)
        if claim is not None and decision.administration_id == victim:
            del claim["provider"]  # required in R4: the validator refuses it
        return claim

    monkeypatch.setattr(sync_module, "build_claim", build_claim)
    result, report, c = sync(
        e, config=config, since=e.start, overlap_seconds=0, state_path=e.tmp / "state-refused.json"
    )
    print(
        f"refused claim: claims {result.claims.as_dict()}, {c.stats.requests} requests; "
        f"errors {json.loads(report.read_text())['errors']}"
    )
    assert result.claims.failed == 1 and result.tasks.failed == 0
    assert result.exit_code == 1
    errors = json.loads(report.read_text())["errors"]
    mine = [x for x in errors if x["record"] == f"{MA}/{victim}"]
    assert len(mine) == 1 and mine[0]["field"] == "Claim"
    assert "HTTP 422" in mine[0]["message"] and "Claim.provider" in mine[0]["message"], mine[0]
    assert "minimum required" in mine[0]["message"]
    ours = our_entries(e, report)
    assert (
        ours[victim]["posted"]["claim"] == "failed"
        and "Claim.provider" in ours[victim]["post_error"]
    )

    ids = sorted(ours)
    claims = by_identifier(c, "Claim", system, ids)
    tasks = by_identifier(c, "Task", system + ":task", ids)
    expected_claims = {k for k, x in ours.items() if x["claim_status"] and x["outcome"] != "void"}
    assert victim not in claims
    assert set(claims) == expected_claims - {victim}
    assert set(tasks) == {
        k for k, x in ours.items() if x["task"] or x["posted"].get("task") == "create"
    }
    assert result.claims.created == len(expected_claims) - 1
