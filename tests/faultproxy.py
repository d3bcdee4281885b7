"""A fault-injecting HTTP/1.1 proxy for the integration tests, and the harness around it.

``FaultProxy(upstream)`` listens on 127.0.0.1:<free port> and forwards each request to
``upstream`` (a FHIR base URL such as ``http://127.0.0.1:8080/fhir``), choosing per request,
from a seeded ``random.Random`` and the configured rates, one of:

==================  =====================================================================
``429``             429 with ``Retry-After: 0`` or ``1``; not forwarded
``500`` … ``504``   that status with a small OperationOutcome; not forwarded
``reset_before``    the connection is reset (RST) before anything is forwarded
``reset_after``     forwarded, the server acts and answers, the answer is dropped (RST)
``slow``            the answer's body dribbles out in small pieces with short sleeps
``truncate``        Content-Length promises the whole body, half is sent, the socket closes
==================  =====================================================================

or none (forwarded as is). The upstream's origin is rewritten to the proxy's in response bodies
and ``Location``/``Content-Location`` headers, so absolute ``next`` links come back through the
proxy. ``counts`` (a Counter by fault name, plus ``forwarded``) is for assertions; for
``reset_after`` the statuses of the dropped batch/transaction entries are kept in
``dropped_entry_statuses``, so a test can show what the server did that the client never heard.
``schedule={n: fault}`` forces a fault on the n-th request (so a test sees every kind at least
once). ``never_recover=True`` answers 503 to everything; ``fail_after=N`` does so from the N+1th request on.

The second half of the file is the harness shared by ``tests/integration/test_hapi_faults.py`` and ``tests/integration/test_hapi_crash.py``:
a small, uniquely-named copy of the demo clinic, the expected Claims/Tasks from the offline
decision, a CLI runner, and counting of posted resources by business identifier.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import requests

from tests.builders import prefix_references

FAULTS = ("429", "500", "502", "503", "504", "reset_before", "reset_after", "slow", "truncate")
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "accept-encoding",
    "host",
}


class FaultProxy:
    """A threaded forwarding proxy that injects faults at seeded rates (see the module docstring).

    ``rates`` maps fault names to probabilities (their sum at most 1). ``applies_to(method, path)``
    limits faults to some requests (e.g. only batch POSTs); the others are always forwarded.
    """

    def __init__(
        self,
        upstream: str,
        rates: Mapping[str, float] | None = None,
        seed: int = 0,
        never_recover: bool = False,
        applies_to: Callable[[str, str], bool] | None = None,
        slow_total_seconds: float = 0.4,
        fail_after: int | None = None,
        schedule: Mapping[int, str] | None = None,
        hook: Callable[[int, str, str, str], None] | None = None,
    ):
        unknown = set(rates or {}) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}")
        if sum((rates or {}).values()) > 1:
            raise ValueError("fault rates add up to more than 1")
        self.upstream = upstream.rstrip("/")
        parts = urlsplit(self.upstream)
        self._up_host, self._up_port = parts.hostname, parts.port or 80
        self._up_origin = f"{parts.scheme}://{parts.netloc}"
        self._path = parts.path
        self.rates = dict(rates or {})
        self.never_recover = never_recover
        self.fail_after = fail_after  # after this many requests, behave as never_recover
        # hook(request number, method, path, phase) at "received" (before forwarding), "answered"
        # (the server answered, the client not yet) and "replied"; e.g. to SIGKILL the client there.
        self.hook = hook
        self.schedule = dict(
            schedule or {}
        )  # request number (1-based) -> fault, whatever the dice say
        if set(self.schedule.values()) - set(FAULTS):
            raise ValueError(
                f"unknown faults in schedule {sorted(set(self.schedule.values()) - set(FAULTS))}"
            )
        self.applies_to = applies_to
        self.slow_total_seconds = slow_total_seconds
        self.rng = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self.dropped_entry_statuses: Counter[str] = Counter()
        self.log: list[tuple[str, str, str]] = []  # (method, path without query, fault or "ok")
        self.timings: list[
            tuple[str, str, float]
        ] = []  # (method, path, upstream seconds) of forwarded requests
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.origin = ""
        self.url = ""

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        self.origin = f"http://127.0.0.1:{port}"
        self.url = self.origin + self._path
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="faultproxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def injected(self) -> int:
        """How many requests got a fault (slow bodies included)."""
        return sum(n for name, n in self.counts.items() if name in FAULTS)

    # -- decisions ---------------------------------------------------------

    def choose(self, method: str, path: str) -> str | None:
        with self._lock:
            if self.never_recover or (
                self.fail_after is not None and len(self.log) >= self.fail_after
            ):
                fault = "503"
            elif self.applies_to is not None and not self.applies_to(method, path):
                fault = None
            else:
                roll, fault = self.rng.random(), None
                for name in FAULTS:  # a fixed order, so a seed always means the same faults
                    rate = self.rates.get(name, 0.0)
                    if roll < rate:
                        fault = name
                        break
                    roll -= rate
                fault = self.schedule.get(len(self.log) + 1, fault)
            self.counts[fault or "forwarded"] += 1
            self.log.append((method, path.split("?", 1)[0], fault or "ok"))
            return fault

    def rewrite(self, data: bytes) -> bytes:
        return data.replace(self._up_origin.encode(), self.origin.encode())


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet
        pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except OSError:  # a client killed or reset while we read its next request
            self.close_connection = True

    def _any(self) -> None:
        try:
            self._handle()
        except OSError:  # the client went away (reset, or killed by a test): nothing to answer
            self.close_connection = True

    def _call_hook(self, number: int, phase: str) -> None:
        if self.owner.hook is not None:
            self.owner.hook(number, self.command, self.path.split("?", 1)[0], phase)

    def _handle(self) -> None:
        proxy = self.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        fault = proxy.choose(self.command, self.path)
        with proxy._lock:
            number = len(proxy.log)
        self._call_hook(number, "received")
        if fault == "reset_before":
            return self._reset()
        if fault in ("429", "500", "502", "503", "504"):
            status = int(fault)
            outcome = json.dumps(
                {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {
                            "severity": "error",
                            "code": "transient",
                            "diagnostics": f"faultproxy: injected {status}",
                        }
                    ],
                }
            ).encode()
            headers = {"Content-Type": "application/fhir+json"}
            if status == 429:
                with proxy._lock:
                    headers["Retry-After"] = str(proxy.rng.choice((0, 1)))
            return self._reply(status, "Injected", headers, outcome)
        started = time.monotonic()
        try:
            status, reason, headers, data = self._forward(body)
            with proxy._lock:
                proxy.timings.append(
                    (self.command, self.path.split("?", 1)[0], time.monotonic() - started)
                )
        except OSError:
            return self._reply(
                502, "Bad Gateway", {"Content-Type": "text/plain"}, b"faultproxy: upstream failed"
            )
        self._call_hook(number, "answered")
        if fault == "reset_after":
            self._note_dropped(data)
            return self._reset()
        data = proxy.rewrite(data)
        for key in ("Location", "Content-Location"):
            if key in headers:
                headers[key] = proxy.rewrite(headers[key].encode()).decode()
        if fault == "truncate" and len(data) >= 2:
            self._head(status, reason, headers, len(data))
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return self._close()
        if fault == "slow" and data:
            self._head(status, reason, headers, len(data))
            pieces = 20
            step = max(1, -(-len(data) // pieces))
            for i in range(0, len(data), step):
                self.wfile.write(data[i : i + step])
                self.wfile.flush()
                time.sleep(proxy.slow_total_seconds / pieces)
        else:
            self._reply(status, reason, headers, data)
        self._call_hook(number, "replied")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _any

    def _forward(self, body: bytes | None):
        proxy = self.owner
        conn = http.client.HTTPConnection(proxy._up_host, proxy._up_port, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Accept-Encoding"] = "identity"  # bodies must be plain text to rewrite
            if body is not None:
                headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            out = {k: v for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP}
            return resp.status, resp.reason, out, data
        finally:
            conn.close()

    def _note_dropped(self, data: bytes) -> None:
        try:
            bundle = json.loads(data)
        except ValueError:
            return
        if isinstance(bundle, dict) and bundle.get("type") in (
            "batch-response",
            "transaction-response",
        ):
            with self.owner._lock:
                for entry in bundle.get("entry") or []:
                    self.owner.dropped_entry_statuses[
                        str((entry.get("response") or {}).get("status"))
                    ] += 1

    def _head(self, status: int, reason: str, headers: Mapping[str, str], length: int) -> None:
        self.send_response_only(status, reason)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _reply(self, status: int, reason: str, headers: Mapping[str, str], data: bytes) -> None:
        self._head(status, reason, headers, len(data))
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def _reset(self) -> None:
        """Close the client's connection with a TCP RST and no reply."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._close()

    def _close(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


# ============================================================================ harness

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "fixtures" / "demo"
TAG_SYSTEM = "urn:fhir-injection:tag"
SHARED_TYPES = ("Organization", "Location", "Practitioner", "PractitionerRole", "Medication")


def demo_subset(folder: Path, prefix: str, administrations: int = 50) -> list[str]:
    """Write a Bulk-style copy of the demo clinic's first patients (>= ``administrations`` injections).

    Every id (and reference) gets ``prefix``, so copies in different test modules never meet on a
    shared server. Returns the administration ids.
    """

    def read(rtype: str) -> list[dict]:
        return [
            json.loads(line)
            for line in (DEMO / f"{rtype}.ndjson").read_text().splitlines()
            if line.strip()
        ]

    def patient_of(resource: dict) -> str | None:
        for key in ("subject", "patient", "beneficiary"):
            ref = (resource.get(key) or {}).get("reference")
            if isinstance(ref, str) and ref.startswith("Patient/"):
                return ref.split("/", 1)[1]
        return None

    patient_ids = [p["id"] for p in read("Patient")]
    admins = read("MedicationAdministration")
    chosen: set[str] = set()
    count = 0
    for pid in patient_ids:
        if count >= administrations:
            break
        chosen.add(pid)
        count += sum(1 for a in admins if patient_of(a) == pid)
    folder.mkdir(parents=True, exist_ok=True)
    ids: list[str] = []
    for path in sorted(DEMO.glob("*.ndjson")):
        rtype = path.name.split(".")[0]
        keep = []
        for resource in read(rtype):
            if rtype == "Patient":
                ok = resource["id"] in chosen
            elif rtype in SHARED_TYPES:
                ok = True
            else:
                ok = patient_of(resource) in chosen
            if ok:
                resource = prefix_references(resource, prefix)
                resource["id"] = prefix + resource["id"]
                keep.append(resource)
                if rtype == "MedicationAdministration":
                    ids.append(resource["id"])
        (folder / path.name).write_text("".join(json.dumps(r) + "\n" for r in keep))
    return ids


def load(folder: Path, base_url: str) -> None:
    from fhir_injection import load_folder
    from fhir_injection.fhir.connection import connect

    result = load_folder(str(folder), connect(base_url))
    assert not result.problems, [str(p) for p in result.problems]


def expected_offline(folder: Path, identifier_system: str, tmp: Path) -> tuple[set[str], set[str]]:
    """Administration ids that get a Claim / a Task, from the offline decision over the same data."""
    from datetime import date

    from fhir_injection.bundled import DEMO_AS_OF
    from fhir_injection.decision.practice import Config
    from fhir_injection.jobs.offline import run_folder
    from fhir_injection.rules import load_rules

    out = tmp / "offline-out"
    config = Config(
        identifier_system=identifier_system,
        as_of=date.fromisoformat(DEMO_AS_OF),
        default_place_of_service="11",
    )  # what write_config gives the sync
    run_folder(folder, out, load_rules(), config, "2026-11-26T12:00:00Z")

    def ids(name: str, system: str) -> set[str]:
        values = set()
        for line in (out / name).read_text().splitlines():
            if line.strip():
                for ident in json.loads(line).get("identifier") or []:
                    if ident.get("system") == system:
                        values.add(ident["value"])
        return values

    return ids("Claim.ndjson", identifier_system), ids("Task.ndjson", identifier_system + ":task")


def new_system() -> str:
    return f"urn:fhir-injection:test-{uuid.uuid4()}:claim"


def write_config(path: Path, identifier_system: str) -> Path:
    """The run's config: our identifier system, the demo practice's profile (its sites are offices:
    fixtures/demo-practice/practice.toml) and the demo's as-of day (its filing limits are
    counted to that day, whatever the calendar says: fhir_injection.bundled.DEMO_AS_OF)."""
    from fhir_injection.bundled import DEMO_AS_OF

    path.write_text(
        f'identifier_system = "{identifier_system}"\nas_of = {DEMO_AS_OF}\ndefault_place_of_service = "11"\n'
    )
    return path


def server_time(base_url: str) -> str:
    """The server's clock (its Date header), as an ISO instant with milliseconds."""
    from email.utils import parsedate_to_datetime

    resp = requests.get(f"{base_url}/metadata", params={"_summary": "true"}, timeout=30)
    moment = parsedate_to_datetime(resp.headers["Date"])
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def seed_state(path: Path, source_url: str, mark: str) -> None:
    """A state file whose mark makes the sync's search start at ``mark`` − 5 min.

    Used so a sync on a shared server sees only the administrations loaded after a moment
    (pass that moment + 300 s): the data of other tests is never pulled in.
    """
    path.write_text(
        json.dumps({"format": 1, "sources": {source_url.rstrip("/"): {"mark": mark, "recent": {}}}})
    )


def plus_seconds(instant: str, seconds: float) -> str:
    from datetime import timedelta

    from fhir_injection.clock import format_instant, parse_instant

    return format_instant(parse_instant(instant) + timedelta(seconds=seconds))


def sync_command(
    source: str,
    tmp: Path,
    config: Path,
    *extra: str,
    state: Path | None = None,
    report: Path | None = None,
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fhir_injection",
        "--config",
        str(config),
        "sync",
        "--source",
        source,
        "--state",
        str(state or tmp / "state.json"),
        "--report",
        str(report or tmp / "report.json"),
        "--page-size",
        "10",
        "--bundle-size",
        "10",
        *extra,
    ]


def run_cli(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT), env=env
    )


def posted(base_url: str, rtype: str, identifier_system: str) -> Counter[str]:
    """How many ``rtype`` resources the server holds per business identifier value of ``identifier_system``.

    Found by the tag every Claim/Task carries (code = the Claim identifier system), following
    ``next`` links; straight to the server, never through a proxy.
    """
    claim_system = (
        identifier_system[: -len(":task")]
        if identifier_system.endswith(":task")
        else identifier_system
    )
    counts: Counter[str] = Counter()
    url: str | None = f"{base_url}/{rtype}"
    params: dict | None = {
        "_tag": f"{TAG_SYSTEM}|{claim_system}",
        "_count": "200",
        "_elements": "identifier",
    }
    while url:
        resp = requests.get(
            url,
            params=params,
            headers={"Accept": "application/fhir+json", "Cache-Control": "no-cache"},
            timeout=60,
        )
        resp.raise_for_status()
        bundle = resp.json()
        for entry in bundle.get("entry") or []:
            if (entry.get("search") or {}).get("mode", "match") != "match":
                continue
            for ident in entry["resource"].get("identifier") or []:
                if ident.get("system") == identifier_system:
                    counts[ident["value"]] += 1
        url = next(
            (link["url"] for link in bundle.get("link") or [] if link.get("relation") == "next"),
            None,
        )
        params = None
    return counts


def assert_exactly_once(
    base_url: str,
    identifier_system: str,
    claims: Iterable[str],
    tasks: Iterable[str],
    what: str = "",
) -> None:
    got_claims = posted(base_url, "Claim", identifier_system)
    got_tasks = posted(base_url, "Task", identifier_system + ":task")
    twice = {k: n for k, n in got_claims.items() if n > 1}
    assert not twice, f"{what}: Claims posted more than once: {twice}"
    twice = {k: n for k, n in got_tasks.items() if n > 1}
    assert not twice, f"{what}: Tasks posted more than once: {twice}"
    assert set(got_claims) == set(claims), (
        f"{what}: Claims missing {sorted(set(claims) - set(got_claims))}, "
        f"unexpected {sorted(set(got_claims) - set(claims))}"
    )
    assert set(got_tasks) == set(tasks), (
        f"{what}: Tasks missing {sorted(set(tasks) - set(got_tasks))}, "
        f"unexpected {sorted(set(got_tasks) - set(tasks))}"
    )


def private_clinic(base_url: str, tmp: Path, prefix_letters: str, administrations: int) -> dict:
    """Load a private copy of the first demo patients (>= ``administrations`` injections) onto the
    server and work out, offline, the Claims and Tasks a sync must leave there.

    ``mark`` is a state-file mark 5 min after the load began: the sync searches from mark - 5 min,
    so other tests' data on a shared server stays out.
    """
    prefix = f"{prefix_letters}{uuid.uuid4().hex[:8]}-"
    since = server_time(base_url)
    admins = demo_subset(tmp / "data", prefix, administrations=administrations)
    load(tmp / "data", base_url)
    claims, tasks = expected_offline(tmp / "data", "urn:fhir-injection:expected", tmp)
    assert claims and tasks
    return {"admins": admins, "claims": claims, "tasks": tasks, "mark": plus_seconds(since, 300)}
