"""SIGKILL the sync at seeded points against a real HAPI server, rerun it, and check exactly once.

Each trial syncs a small demo clinic under a fresh identifier system and state file, kills the
CLI process with SIGKILL, reruns it to completion, and then requires: every expected Claim and
Task on the server exactly once (counted by business identifier), none unexpected, and a readable
state file. Kill points, all seeded:

- at a random moment of a run (spread over the duration of a clean run, measured once);
- while a MedicationAdministration search is in flight ("during a search");
- after a batch Bundle reached the server, before its reply ("in the middle of posting a Bundle");
- a few milliseconds after a batch reply, while the page's mark is being saved ("writing the
  state file", "between pages").

The requests go through tests/faultproxy.py without faults, only to see where the sync is.
Also: two syncs started at once on one state file — one exits 6 naming the lock — still exactly once.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import threading
import time

import pytest

from tests.faultproxy import (
    ROOT,
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

TRIALS = int(os.environ.get("CRASH_TRIALS", "20"))
SEED = int(os.environ.get("CRASH_SEED", "96372"))
PAGE = ("--page-size", "5", "--bundle-size", "5")


@pytest.fixture(scope="module")
def clinic(fhir_base_url, tmp_path_factory):
    return private_clinic(fhir_base_url, tmp_path_factory.mktemp("crash-data"), "cr", 20)


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _is_batch(method: str, path: str) -> bool:
    return method == "POST" and path.rstrip("/").endswith("/fhir")


def _is_search(method: str, path: str) -> bool:
    """The administration search: its first page, and the pages its next links lead to (GET <base>?_getpages)."""
    return method == "GET" and path.rstrip("/").endswith(("/MedicationAdministration", "/fhir"))


WHERE = {"search": _is_search, "bundle": _is_batch, "after-bundle": _is_batch}


class Killer:
    """A proxy hook that SIGKILLs the current sync process at the k-th request of a kind, in one phase.

    Request order inside a page can vary between runs (set iteration), so targets are "the k-th
    MedicationAdministration search" or "the k-th batch POST", not absolute request numbers.
    """

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.target: tuple[str, int, str, float] | None = None  # (kind, k, phase, delay seconds)
        self.seen = 0
        self.hit: str | None = None

    def arm(self, proc, target) -> None:
        self.proc, self.target, self.seen, self.hit = proc, target, 0, None

    def __call__(self, number: int, method: str, path: str, phase: str) -> None:
        target = self.target
        if target is None or self.proc is None or not WHERE[target[0]](method, path):
            return
        if phase == "received":
            self.seen += 1
        if self.seen != target[1] or phase != target[2]:
            return
        if target[3]:
            time.sleep(target[3])
        self.proc.kill()
        self.hit = f"{method} {path} #{target[1]} ({phase}{f' +{target[3] * 1000:.0f} ms' if target[3] else ''})"
        self.target = None


def test_sigkill_at_seeded_points_then_rerun_is_exactly_once(fhir_base_url, clinic, tmp_path):
    rng = random.Random(SEED)
    killer = Killer()
    started_all = time.monotonic()
    with FaultProxy(fhir_base_url, hook=killer) as proxy:
        # A clean run measures the duration and the requests, and shows live == offline decision.
        system = new_system()
        config = write_config(tmp_path / "clean.toml", system)
        seed_state(tmp_path / "clean-state.json", proxy.url, clinic["mark"])
        t = time.monotonic()
        clean = run_cli(
            sync_command(proxy.url, tmp_path, config, *PAGE, state=tmp_path / "clean-state.json")
        )
        duration = time.monotonic() - t
        assert clean.returncode == 0, clean.stderr[-3000:]
        assert_exactly_once(fhir_base_url, system, clinic["claims"], clinic["tasks"], "clean run")
        requests_log = list(proxy.log)
        searches = sum(1 for m, p, _ in requests_log if _is_search(m, p))
        batches = sum(1 for m, p, _ in requests_log if _is_batch(m, p))
        assert batches >= 3 and searches >= 2, requests_log

        plans = []
        kinds = ["time", "search", "bundle", "after-bundle"]
        for i in range(TRIALS):
            kind = kinds[i % len(kinds)]
            if kind == "time":
                plans.append((kind, rng.uniform(1.0, duration)))
            elif kind == "search":
                plans.append((kind, (kind, rng.randint(1, searches), "received", 0.0)))
            elif kind == "bundle":
                plans.append(
                    (kind, (kind, rng.randint(1, batches), "received", rng.uniform(0.0, 0.2)))
                )
            else:
                plans.append(
                    (kind, (kind, rng.randint(1, batches), "replied", rng.uniform(0.0, 0.03)))
                )

        results = []
        for n, (kind, point) in enumerate(plans, 1):
            system = new_system()
            config = write_config(tmp_path / f"t{n}.toml", system)
            state = tmp_path / f"t{n}-state.json"
            seed_state(state, proxy.url, clinic["mark"])
            cmd = sync_command(
                proxy.url, tmp_path, config, *PAGE, state=state, report=tmp_path / f"t{n}.json"
            )
            with open(tmp_path / f"t{n}.log", "w") as err:
                proc = subprocess.Popen(
                    cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=str(ROOT), env=_env()
                )
            killer.arm(proc, None if kind == "time" else point)
            if kind == "time":
                try:
                    proc.wait(timeout=point)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    killer.hit = f"after {point:.1f} s"
            proc.wait(timeout=300)
            killer.target = None
            killed = proc.returncode == -9
            assert killed or proc.returncode == 0, (
                n,
                kind,
                proc.returncode,
                (tmp_path / f"t{n}.log").read_text(),
            )
            json.loads(state.read_text())  # readable right after the kill
            again = run_cli(cmd)
            assert again.returncode == 0, (
                f"trial {n} ({kind}, {killer.hit}): {again.stderr[-3000:]}"
            )
            assert json.loads(state.read_text())["format"] == 1
            assert_exactly_once(
                fhir_base_url,
                system,
                clinic["claims"],
                clinic["tasks"],
                f"trial {n} ({kind}, killed at {killer.hit})",
            )
            results.append((kind, killed, killer.hit))

    killed = [r for r in results if r[1]]
    print(
        f"\n{len(results)} crash trials in {time.monotonic() - started_all:.0f} s "
        f"(clean run {duration:.1f} s, {len(requests_log)} requests); {len(killed)} killed mid-run:"
    )
    for kind, was_killed, hit in results:
        print(f"  {kind:13} {'killed' if was_killed else 'finished before the kill'} {hit or ''}")
    assert len(results) == TRIALS
    # Nearly every trial must really have killed the run somewhere inside it.
    assert len(killed) >= TRIALS * 0.75, results
    for kind in ("search", "bundle", "after-bundle"):
        assert any(k == kind and was for k, was, _ in results), kind


def test_two_syncs_at_once_on_one_state_file(fhir_base_url, clinic, tmp_path):
    system = new_system()
    config = write_config(tmp_path / "config.toml", system)
    state = tmp_path / "state.json"
    seed_state(state, fhir_base_url, clinic["mark"])
    cmds = [
        sync_command(
            fhir_base_url, tmp_path, config, *PAGE, state=state, report=tmp_path / f"r{i}.json"
        )
        for i in (1, 2)
    ]
    results: list = [None, None]

    def run(i):
        results[i] = run_cli(cmds[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    codes = sorted(r.returncode for r in results)
    assert codes == [0, 6], [(r.returncode, r.stderr[-2000:]) for r in results]
    loser = next(r for r in results if r.returncode == 6)
    assert f"{state}" in loser.stderr and "lock" in loser.stderr, loser.stderr
    assert_exactly_once(
        fhir_base_url, system, clinic["claims"], clinic["tasks"], "two syncs at once"
    )
    # And a second sync afterwards changes nothing.
    again = run_cli(cmds[0])
    assert again.returncode == 0, again.stderr[-2000:]
    assert_exactly_once(
        fhir_base_url, system, clinic["claims"], clinic["tasks"], "sync after the race"
    )
