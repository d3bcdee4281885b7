"""A hostile network between the sync and a real HAPI server (tests/faultproxy.py).

Seeded faults at set rates — 429 with Retry-After, 500/502/503/504, connections reset before and
after the server acted, slow and truncated bodies — and the sync still posts exactly the expected
Claims and Tasks, once each, and its report counts the retries. Replies lost after the server
acted are harmless because every write is a conditional create (or an If-Match update). A server
that never recovers ends the run with exit 4 within the configured retry time, the state file
untouched.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.faultproxy import (
    FAULTS,
    FaultProxy,
    assert_exactly_once,
    new_system,
    private_clinic,
    run_cli,
    seed_state,
    sync_command,
    write_config,
)

pytestmark = pytest.mark.hapi

FAILING = [f for f in FAULTS if f != "slow"]  # every fault but a slow body makes the client retry


@pytest.fixture(scope="module")
def clinic(fhir_base_url, tmp_path_factory):
    return private_clinic(fhir_base_url, tmp_path_factory.mktemp("faults-data"), "fx", 50)


def _setup(tmp_path, proxy: FaultProxy, clinic) -> tuple[str, object]:
    system = new_system()
    config = write_config(tmp_path / "config.toml", system)
    seed_state(tmp_path / "state.json", proxy.url, clinic["mark"])
    return system, config


def test_sync_through_a_hostile_network_posts_exactly_once_and_counts_retries(
    fhir_base_url, clinic, tmp_path
):
    rates = {
        "429": 0.04,
        "500": 0.02,
        "502": 0.02,
        "503": 0.03,
        "504": 0.02,
        "reset_before": 0.03,
        "reset_after": 0.04,
        "slow": 0.05,
        "truncate": 0.03,
    }
    every_kind_once = {5 + 7 * i: fault for i, fault in enumerate(FAULTS)}
    with FaultProxy(fhir_base_url, rates, seed=20261126, schedule=every_kind_once) as proxy:
        system, config = _setup(tmp_path, proxy, clinic)
        done = run_cli(sync_command(proxy.url, tmp_path, config))
        counts = dict(proxy.counts)

    assert done.returncode == 0, done.stderr[-3000:]
    assert_exactly_once(fhir_base_url, system, clinic["claims"], clinic["tasks"], "hostile network")
    failing = sum(counts.get(f, 0) for f in FAILING)
    assert failing >= 10 and all(counts.get(f, 0) >= 1 for f in FAULTS), counts
    summary = json.loads((tmp_path / "report.json").read_text())["summary"]
    http = summary["http"]
    print(f"\ninjected {counts}; report: {http['requests']} requests, {http['retries']} retries")
    # Every request of the sync is idempotent, so every failed attempt is retried once; the report says so.
    assert http["retries"] == failing, (http, counts)
    by_status = http["source"]["by_status"]
    for status in ("429", "500", "502", "503", "504"):
        assert by_status.get(status, 0) == counts.get(status, 0), (by_status, counts)
    assert by_status.get("connection-error", 0) == sum(
        counts.get(f, 0) for f in ("reset_before", "reset_after", "truncate")
    )
    assert http["requests"] == sum(counts.values())
    assert summary["administrations"] == len(clinic["admins"])
    assert json.loads((tmp_path / "state.json").read_text())["format"] == 1


def test_replies_lost_after_the_server_acted_make_the_retry_harmless(
    fhir_base_url, clinic, tmp_path
):
    """Half the batch POSTs reach HAPI, which creates the Claims and Tasks, and the reply is dropped.

    The retried batch's conditional creates find what the first attempt made (HAPI: 200 OK,
    same id), so nothing is posted twice, and the report counts those as unchanged.
    """

    def batch_posts(method: str, path: str) -> bool:
        return method == "POST" and path.rstrip("/") == "/fhir"

    with FaultProxy(fhir_base_url, {"reset_after": 0.5}, seed=7, applies_to=batch_posts) as proxy:
        system, config = _setup(tmp_path, proxy, clinic)
        done = run_cli(sync_command(proxy.url, tmp_path, config))

    assert done.returncode == 0, done.stderr[-3000:]
    assert_exactly_once(fhir_base_url, system, clinic["claims"], clinic["tasks"], "lost replies")
    created_unheard = sum(
        n for status, n in proxy.dropped_entry_statuses.items() if status.startswith("201")
    )
    assert proxy.counts["reset_after"] >= 2 and created_unheard >= 5, (
        proxy.counts,
        proxy.dropped_entry_statuses,
    )
    posted = json.loads((tmp_path / "report.json").read_text())["summary"]["posted"]
    print(
        f"\n{proxy.counts['reset_after']} batch replies dropped after HAPI acted "
        f"(their entries: {dict(proxy.dropped_entry_statuses)}); posted {posted}"
    )
    # What the server created while we were not listening comes back as "already there", never as a copy.
    assert posted["claims"]["unchanged"] + posted["tasks"]["unchanged"] == created_unheard
    assert posted["claims"]["created"] + posted["claims"]["unchanged"] == len(clinic["claims"])
    assert posted["tasks"]["created"] + posted["tasks"]["unchanged"] == len(clinic["tasks"])


def test_a_server_that_never_recovers_ends_the_run_in_bounded_time_state_unchanged(
    fhir_base_url, clinic, tmp_path
):
    with FaultProxy(fhir_base_url, never_recover=True) as proxy:
        _, config = _setup(tmp_path, proxy, clinic)
        before = (tmp_path / "state.json").read_bytes()
        started = time.monotonic()
        done = run_cli(
            sync_command(proxy.url, tmp_path, config, "--max-retry-seconds", "4"), timeout=60
        )
        elapsed = time.monotonic() - started

    assert done.returncode == 4, done.stderr[-3000:]
    assert elapsed < 4 + 10, elapsed  # the retry budget plus interpreter start-up
    assert "gave up after" in done.stderr and "HTTP 503" in done.stderr
    assert proxy.counts["503"] >= 2  # it did retry before giving up
    assert (tmp_path / "state.json").read_bytes() == before


def test_a_server_that_fails_mid_run_keeps_the_safe_mark_and_a_rerun_completes_exactly_once(
    fhir_base_url, clinic, tmp_path
):
    with FaultProxy(fhir_base_url, fail_after=15) as proxy:  # a whole run takes ~30 requests
        system, config = _setup(tmp_path, proxy, clinic)
        done = run_cli(
            sync_command(proxy.url, tmp_path, config, "--max-retry-seconds", "3"), timeout=120
        )
        assert done.returncode == 4, done.stderr[-3000:]
        assert "HTTP 503" in done.stderr
        state = json.loads((tmp_path / "state.json").read_text())  # still readable
        assert state["format"] == 1

    with FaultProxy(fhir_base_url) as healthy:
        # The same source URL as the state file knows (the proxy's port differs): carry the entry over.
        state["sources"] = {healthy.url: next(iter(state["sources"].values()))}
        (tmp_path / "state.json").write_text(json.dumps(state))
        again = run_cli(sync_command(healthy.url, tmp_path, config))

    assert again.returncode == 0, again.stderr[-3000:]
    assert_exactly_once(
        fhir_base_url, system, clinic["claims"], clinic["tasks"], "rerun after failure"
    )
