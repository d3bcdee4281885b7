"""Running the live sync against the fake FHIR server (tests/fakefhir.py): a clinic of clean
injections staged on it, the client and options a test's sync uses, and the calls it made. The
``rsps``, ``server`` and ``sleeps`` fixtures these take are tests/conftest.py's.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from fhir_injection.decision.practice import Config
from fhir_injection.fhir.client import FhirClient
from fhir_injection.fhir.http import HttpSession
from fhir_injection.jobs.sync import SyncOptions, run_sync
from tests.builders import admin, world
from tests.builders import rules as load_bundled_rules
from tests.fakefhir import BASE, FakeFhir, instant

CREATED = "2026-10-06T12:00:00Z"


def clinic(
    server: FakeFhir, patients: int = 15, per_patient: int = 4, **admin_changes
) -> list[dict]:
    """``patients`` Medicare patients with ``per_patient`` clean injections each, lastUpdated in order."""
    seen = set()
    for i in range(patients):
        for r in world(patient=f"p{i}"):
            key = (r["resourceType"], r["id"])
            if key not in seen:
                seen.add(key)
                server.put(r, last_updated=instant(0))
    admins = []
    n = 0
    for i in range(patients):
        for k in range(per_patient):
            n += 1
            a = admin(
                id=f"ma{i}-{k}",
                patient=f"p{i}",
                effectiveDateTime=f"2026-10-05T09:{30 + 5 * k:02d}:00-05:00",
                **admin_changes,
            )
            admins.append(server.put(a, last_updated=instant(100 + n), version="1"))
    server.clock = 100 + n
    return admins


def make_client(sleeps: list[float], auth=None) -> FhirClient:
    return FhirClient(HttpSession(BASE, auth=auth, sleep=sleeps.append, clock=lambda: 0.0))


def options(tmp_path: Path, **kw) -> SyncOptions:
    kw.setdefault("page_size", 20)
    kw.setdefault("created", CREATED)
    return SyncOptions(
        state_path=str(tmp_path / "state.json"), report_path=str(tmp_path / "report.json"), **kw
    )


def sync(tmp_path, sleeps, auth=None, stop=None, progress=None, **kw):
    client = make_client(sleeps, auth)
    return run_sync(
        client, client, load_bundled_rules(), Config(), options(tmp_path, **kw), stop, progress
    )


def calls(
    rsps, method: str | None = None, path: str | None = None, param: str | None = None
) -> list:
    out = []
    for c in rsps.calls:
        if not c.request.url.startswith(BASE):
            continue
        parts = urlsplit(c.request.url)
        p = parts.path[len(urlsplit(BASE).path) :].strip("/")
        if method and c.request.method != method:
            continue
        if path is not None and p != path:
            continue
        if param and param not in parse_qs(parts.query):
            continue
        out.append(c)
    return out


def batch_entries(rsps) -> list[dict]:
    return [e for c in calls(rsps, "POST", "") for e in json.loads(c.request.body)["entry"]]
