"""`sync --every`: repeat until a signal; a server that is down is tried again next time."""

from __future__ import annotations

import pytest

import fhir_injection.jobs.sync as sync_module
from fhir_injection.cli import main
from fhir_injection.errors import EXIT_INTERRUPTED, TemporaryNetworkError

SUMMARY = {
    "administrations": 0,
    "outcomes": {o: 0 for o in ("claim", "held", "not-96372", "not-billable", "void")},
    "posted": {
        k: {"created": 0, "updated": 0, "cancelled": 0, "unchanged": 0, "failed": 0, "completed": 0}
        for k in ("claims", "tasks")
    },
    "estimated_billable_usd": 0,
    "estimated_held_usd": 0,
    "http": {"requests": 1, "retries": 0},
    "pages": 0,
    "mark": None,
}


class Recorder:
    """Stands in for run_sync: records calls, fails when told, sets the stop flag on the last one."""

    def __init__(self, plan):
        self.plan = list(plan)
        self.calls = []
        self.waits = []

    def __call__(self, source, target, rules, config, options, stop, progress=None):
        self.calls.append((options.full, options.since))
        step = self.plan.pop(0)
        if not self.plan:
            stop.event.set()
        if step == "fail":
            raise TemporaryNetworkError("HTTP 503 from the server")
        return sync_module.SyncResult(
            SUMMARY, sync_module.PostCounts(), sync_module.PostCounts(), 0
        )


@pytest.fixture
def no_signals(monkeypatch):
    monkeypatch.setattr(sync_module.StopFlag, "install", lambda self: None)


def run(monkeypatch, tmp_path, recorder, *extra):
    monkeypatch.setattr(sync_module, "run_sync", recorder)
    real_wait = sync_module.threading.Event.wait

    def wait(event, timeout=None):
        recorder.waits.append(timeout)
        return real_wait(event, 0)

    monkeypatch.setattr(sync_module.threading.Event, "wait", wait)
    return main(
        [
            "sync",
            "--source",
            "http://127.0.0.1:9/fhir",
            "--state",
            str(tmp_path / "s.json"),
            "--report",
            str(tmp_path / "r.json"),
            "--every",
            "15m",
            *extra,
        ]
    )


def test_every_repeats_until_stopped_and_waits_the_interval(
    monkeypatch, tmp_path, no_signals, capsys
):
    recorder = Recorder(["ok", "ok", "ok"])
    code = run(monkeypatch, tmp_path, recorder, "--full")
    assert len(recorder.calls) == 3
    assert recorder.calls[0] == (True, None) and recorder.calls[1] == (
        False,
        None,
    )  # --full only once
    assert recorder.waits == [900, 900]
    assert code == 0  # the last run finished normally, then the stop flag ended the loop
    assert capsys.readouterr().out.count("administrations:") == 3


def test_a_server_down_on_a_schedule_is_tried_again_next_time(
    monkeypatch, tmp_path, no_signals, capsys
):
    recorder = Recorder(["fail", "ok"])
    code = run(monkeypatch, tmp_path, recorder)
    assert len(recorder.calls) == 2 and code == 0
    assert "sync failed" in capsys.readouterr().err


def test_without_every_a_server_error_ends_the_run_with_exit_4(monkeypatch, tmp_path, no_signals):
    recorder = Recorder(["fail"])
    monkeypatch.setattr(sync_module, "run_sync", recorder)
    code = main(
        ["sync", "--source", "http://127.0.0.1:9/fhir", "--state", str(tmp_path / "s.json")]
    )
    assert code == 4 and len(recorder.calls) == 1


def test_a_signal_during_the_wait_exits_130(monkeypatch, tmp_path, no_signals):
    recorder = Recorder(["ok", "ok"])
    recorder.plan = ["ok", "ok", "ok"]
    monkeypatch.setattr(sync_module, "run_sync", recorder)
    monkeypatch.setattr(sync_module.threading.Event, "wait", lambda event, timeout=None: True)
    code = main(
        [
            "sync",
            "--source",
            "http://127.0.0.1:9/fhir",
            "--state",
            str(tmp_path / "s.json"),
            "--every",
            "1m",
        ]
    )
    assert code == EXIT_INTERRUPTED and len(recorder.calls) == 1
