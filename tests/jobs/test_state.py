"""The incremental state file (atomic saves, marks per source) and its lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fhir_injection.clock import format_instant, minus, parse_instant
from fhir_injection.errors import EXIT_LOCKED, ConfigError, LockedError
from fhir_injection.jobs.state import StateFile, StateLock

BASE = "https://fhir.example.org/fhir"


# -- instants -------------------------------------------------------------


def test_instants_round_trip_at_millisecond_precision():
    assert format_instant(parse_instant("2026-10-05T16:00:01Z")) == "2026-10-05T16:00:01.000Z"
    assert (
        format_instant(parse_instant("2026-10-05T11:00:01.123456-05:00"))
        == "2026-10-05T11:00:01.123-05:00"
    )
    assert minus("2026-10-05T16:00:00.000Z", 300) == "2026-10-05T15:55:00.000Z"
    assert minus("2026-10-06T00:02:00Z", 300) == "2026-10-05T23:57:00.000Z"


@pytest.mark.parametrize("value", ["2026-10-05T16:00:00", "yesterday", "", "2026-13-01T00:00:00Z"])
def test_bad_instants_are_config_errors(value):
    with pytest.raises(ConfigError) as info:
        parse_instant(value)
    assert info.value.exit_code == 2


# -- the state file -------------------------------------------------------


def test_new_state_file_starts_empty_and_saves_atomically(tmp_path):
    path = tmp_path / "state.json"
    state = StateFile(path)
    entry = state.source(BASE + "/")
    assert entry == {"mark": None, "recent": {}}
    assert not path.exists()  # nothing written until saved

    entry["mark"] = "2026-10-05T16:00:00.000Z"
    entry["recent"] = {"ma1": ["1", "2026-10-05T16:00:00.000Z"]}
    state.save()

    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # no .tmp left
    data = json.loads(path.read_text())
    assert data["format"] == 1
    assert data["sources"][BASE]["mark"] == "2026-10-05T16:00:00.000Z"
    again = StateFile(path)
    assert again.source(BASE)["recent"] == {"ma1": ["1", "2026-10-05T16:00:00.000Z"]}
    assert again.source("https://other.example.org/fhir") == {"mark": None, "recent": {}}


def test_save_replaces_the_whole_file(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    state = StateFile(path)
    state.source(BASE)["mark"] = "2026-10-05T16:00:00.000Z"
    state.save()
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    state.source(BASE)["mark"] = "2026-10-06T16:00:00.000Z"
    with pytest.raises(OSError):
        state.save()

    assert path.read_bytes() == before  # a failed save leaves the old state, never half of one


@pytest.mark.parametrize(
    "content",
    ["{not json", "[]", json.dumps({"format": 2, "sources": {}}), b"\xff\xfe".decode("latin-1")],
)
def test_unreadable_state_file_is_config_error(tmp_path, content):
    path = tmp_path / "state.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        StateFile(path)
    assert str(path) in str(info.value)


# -- the lock -------------------------------------------------------------


def test_second_lock_on_the_same_state_file_is_refused(tmp_path):
    state = tmp_path / "state.json"
    with StateLock(state):
        with pytest.raises(LockedError) as info, StateLock(state):
            pass  # pragma: no cover
        assert info.value.exit_code == EXIT_LOCKED == 6
        assert str(state) in str(info.value)
        assert (tmp_path / "state.json.lock").read_text() == str(os.getpid())
    with StateLock(state):  # released: free again
        pass


def test_lock_held_by_another_process(tmp_path):
    state = tmp_path / "sub" / "state.json"
    code = (
        "import sys, time; from fhir_injection.jobs.state import StateLock\n"
        "with StateLock(sys.argv[1]):\n    print('locked', flush=True); sys.stdin.readline()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(state)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError), StateLock(state):
            pass  # pragma: no cover
    finally:
        child.stdin.write("\n")
        child.stdin.flush()
        child.wait(timeout=30)
    with StateLock(state):
        pass


def test_different_state_files_do_not_block_each_other(tmp_path):
    with StateLock(tmp_path / "a.json"), StateLock(tmp_path / "b.json"):
        pass
