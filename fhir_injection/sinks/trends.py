"""Trends across runs: one small JSON line per run, appended to a history file.

A scheduled sync keeps ``<state file>.history.jsonl`` next to its state file; an offline run with
a folder target keeps ``history.jsonl`` in the target. A line holds counts and dollars only::

    {"time": "2026-11-30T10:00:00Z", "administrations": 376, "estimated_held_usd": 2360.57,
     "estimated_billable_usd": 22965.52, "tasks": 89, "gaps": {"missing-site": 5, ...}}

The file is cut to its last :data:`KEEP` lines when it passes twice that, so a sync every
15 minutes never grows it without bound. A line that cannot be read is skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "KEEP",
    "SHOWN",
    "append_run",
    "delta",
    "history_text",
    "read_history",
    "run_line",
    "sync_history_path",
]

KEEP = 1000  # lines kept when the file is trimmed
SHOWN = 30  # runs the report's trend charts show


def run_line(summary: Mapping[str, Any], time: str) -> dict[str, Any]:
    """The history line of one run, from its report summary."""
    return {
        "time": time,
        "administrations": int(summary.get("administrations") or 0),
        "estimated_held_usd": float(summary.get("estimated_held_usd") or 0),
        "estimated_billable_usd": float(summary.get("estimated_billable_usd") or 0),
        "tasks": int(summary.get("tasks") or 0),
        "gaps": {str(k): int(v) for k, v in (summary.get("gaps") or {}).items()},
    }


def _valid(line: Any) -> bool:
    return (
        isinstance(line, dict)
        and isinstance(line.get("time"), str)
        and isinstance(line.get("estimated_held_usd"), int | float)
        and isinstance(line.get("gaps"), dict)
        and all(isinstance(v, int) for v in line["gaps"].values())
    )


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """The runs in the file, oldest first (none if it does not exist)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return []
    runs = []
    for raw in text.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if _valid(line):
            runs.append(line)
    return runs


def history_text(runs: Sequence[Mapping[str, Any]]) -> str:
    """The file's text for ``runs`` (its last KEEP when there are more than 2 * KEEP)."""
    if len(runs) > 2 * KEEP:
        runs = runs[-KEEP:]
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in runs)


def append_run(path: str | Path, line: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Append one run; returns the history with it. Trims to the last KEEP lines past 2 * KEEP."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, sort_keys=True) + "\n")
    runs = read_history(path)
    if len(runs) > 2 * KEEP:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(history_text(runs), encoding="utf-8")
        os.replace(tmp, path)
        runs = runs[-KEEP:]
    return runs


def sync_history_path(state_path: str | Path) -> Path:
    """Where a sync keeps its runs: next to its state file."""
    return Path(str(state_path) + ".history.jsonl")


def delta(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The change from the previous run to the last one (None with fewer than two runs)."""
    if len(runs) < 2:
        return None
    prev, last = runs[-2], runs[-1]
    codes = sorted(set(prev["gaps"]) | set(last["gaps"]))
    gaps = {
        c: last["gaps"].get(c, 0) - prev["gaps"].get(c, 0)
        for c in codes
        if last["gaps"].get(c, 0) != prev["gaps"].get(c, 0)
    }
    return {
        "previous": prev["time"],
        "administrations": int(last.get("administrations", 0))
        - int(prev.get("administrations", 0)),
        "estimated_held_usd": round(
            float(last["estimated_held_usd"]) - float(prev["estimated_held_usd"]), 2
        ),
        "estimated_billable_usd": round(
            float(last.get("estimated_billable_usd", 0))
            - float(prev.get("estimated_billable_usd", 0)),
            2,
        ),
        "gaps": dict(sorted(gaps.items(), key=lambda kv: (-abs(kv[1]), kv[0]))),
    }
