#!/usr/bin/env python3
"""fhir-injection benchmarks: HTTP requests, sync wall time, offline throughput and memory.

    python tests/bench/bench.py --quick                 # <= ~2 min: offline 1,000; HAPI 300 (CI keeps it working)
    python tests/bench/bench.py --full                  # offline 10,000 + 100,000; HAPI 10,000 (~30-40 min)
    python tests/bench/bench.py --offline-only --quick  # no server at all
    python tests/bench/bench.py --full --hapi-url http://127.0.0.1:8090/fhir   # an already running server

Without --hapi-url it starts its own HAPI FHIR JPA server (tests/hapi/target/hapi-test-server.jar,
built with tests/hapi/run-hapi.sh only when the jar is missing) on port 8090 with request
validation off, and stops it at the end. The server is wiped (POST $expunge expungeEverything)
before the data is loaded: never point --hapi-url at a server whose data you need.

What is measured (one JSON line on stdout; progress on stderr):

* ``http``: requests per 1,000 administrations, ours (``run_sync``) vs the fhirpy baseline
  (``baseline_fhirpy.py``), for a full sync and for an incremental one (after the full sync,
  10% of the administrations get a changed ``note``; figure per 1,000 *changed* ones).
  Counted at ``requests.Session.send``, the one place every request of both clients passes
  (fhirpy's ``requests.request`` uses a Session too), so retries and redirects count.
* ``sync``: wall time of the full sync, ours vs baseline, same data, same server, same run;
  and the HAPI floor: the sum, over every request our sync made, of the time from sending it
  to having read the whole response (measured around ``Session.send``). That is what HAPI
  needs to serve those searches and accept those Bundles, plus localhost transfer; whatever
  our wall time has beyond it is our own work (parsing, deciding, building, waiting on nothing).
* ``claims_equal``: the Claims both posted, compared by administration (status, items,
  diagnoses, insurance, patient, provider, careTeam, supportingInfo). Not equal: exit 1.
* ``offline``: ``run_folder`` (folder in, folder out) in a fresh subprocess per N: wall
  time, administrations per second, CPU seconds and peak RSS (``ru_maxrss`` of that process).
* ``profile``: cProfile of the offline run at the smallest offline N: the top functions by
  own time, and the share of time in JSON, SQLite, the engine and the claim builder.

Times are not asserted anywhere; tests/integration/test_bench_quick.py runs the quick mode for shape only.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

CREATED = "2026-11-26T02:00:00Z"
JAR = ROOT / "tests" / "hapi" / "target" / "hapi-test-server.jar"
DEFAULT_PORT = 8090
PAGE_SIZE = 500  # HAPI's maximum page size
BUNDLE_SIZE = 500
CHANGED_SHARE = 10  # every 10th administration changes before the incremental sync
CLAIM_FIELDS = (
    "status",
    "type",
    "use",
    "patient",
    "provider",
    "priority",
    "insurance",
    "careTeam",
    "diagnosis",
    "supportingInfo",
    "item",
    "total",
)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------- HTTP counting


class HttpMeter:
    """Counts every request sent through requests.Session.send and times it (send -> body read)."""

    def __init__(self):
        import requests

        self.requests = 0
        self.seconds = 0.0
        self.kinds: dict[str, int] = {}
        self.kind_seconds: dict[str, float] = {}
        self._orig = requests.Session.send
        meter = self

        def send(session, request, **kwargs):
            t0 = time.perf_counter()
            resp = meter._orig(session, request, **kwargs)
            if not kwargs.get("stream"):
                resp.content  # noqa: B018 - already read unless streaming; make sure it is
            took = time.perf_counter() - t0
            meter.seconds += took
            meter.requests += 1
            path = request.path_url.split("?")[0].rstrip("/").rsplit("/fhir", 1)[-1] or "/"
            kind = f"{request.method} {path.split('/')[1] if path.count('/') else path}"
            if (
                path == "/"
            ):  # the base: a Bundle (which kind: its type comes first in our JSON) or a next page
                kind = f"{request.method} <base>"
            if kind == "POST <base>":
                head = (request.body or b"")[:120]
                head = head.decode("utf-8", "replace") if isinstance(head, bytes) else head
                kind += (
                    " transaction" if "transaction" in head else " batch" if "batch" in head else ""
                )
            elif kind == "GET <base>":
                kind += " (next page)"
            meter.kinds[kind] = meter.kinds.get(kind, 0) + 1
            meter.kind_seconds[kind] = meter.kind_seconds.get(kind, 0.0) + took
            return resp

        requests.Session.send = send

    def snapshot(self) -> tuple[int, float]:
        return self.requests, self.seconds


# ------------------------------------------------------------------------------- HAPI


class Hapi:
    def __init__(self, url: str | None, port: int = DEFAULT_PORT):
        self.proc: subprocess.Popen | None = None
        self.url = (url or f"http://127.0.0.1:{port}/fhir").rstrip("/")
        self.port = port
        self.own = url is None
        self.log_path = Path(tempfile.gettempdir()) / f"fhir-injection-bench-hapi-{port}.log"

    def _up(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/metadata", timeout=5) as r:
                return r.status == 200
        except Exception:
            return False

    def start(self) -> None:
        if not self.own:
            if not self._up():
                raise SystemExit(f"no FHIR server answers at {self.url}/metadata")
            return
        if self._up():
            raise SystemExit(
                f"something already answers on port {self.port}; pass --hapi-url to use it"
            )
        if not JAR.exists():
            log("building the HAPI test server (tests/hapi/run-hapi.sh build)")
            subprocess.run(
                ["bash", str(ROOT / "tests" / "hapi" / "run-hapi.sh"), "build"], check=True
            )
        log(f"starting HAPI on port {self.port} (log {self.log_path})")
        with open(self.log_path, "w") as fh:
            self.proc = subprocess.Popen(
                [
                    "java",
                    "-Xmx1g",
                    f"-Dhapi.port={self.port}",
                    "-Dhapi.validation=false",
                    "-jar",
                    str(JAR),
                ],
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"HAPI exited with {self.proc.returncode}; see {self.log_path}")
            if self._up():
                return
            time.sleep(2)
        raise SystemExit("HAPI did not answer within 300 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def wipe(self) -> None:
        body = json.dumps(
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "expungeEverything", "valueBoolean": True}],
            }
        ).encode()
        req = urllib.request.Request(
            f"{self.url}/$expunge",
            data=body,
            method="POST",
            headers={"Content-Type": "application/fhir+json"},
        )
        with urllib.request.urlopen(req, timeout=600) as r:
            r.read()


# ------------------------------------------------------------------------------- sync benchmark


def _claims_by_admin(client, system: str, id_prefix: str = "") -> dict[str, dict]:
    out = {}
    for res, mode in client.search("Claim", [("identifier", f"{system}|"), ("_count", "500")]):
        if mode != "match":
            continue
        for ident in res.get("identifier") or []:
            if ident.get("system") == system and str(ident.get("value")).startswith(id_prefix):
                out[ident["value"]] = {k: res.get(k) for k in CLAIM_FIELDS}
    return out


def _change_some(client, share: int, id_prefix: str = "") -> int:
    """Give every ``share``-th administration a new note (a nurse's amendment); return how many."""
    admins = [
        r
        for r, mode in client.search("MedicationAdministration", [("_count", "500")])
        if mode == "match" and r["id"].startswith(id_prefix)
    ]
    admins.sort(key=lambda a: a["id"])
    chosen = admins[::share]
    for start in range(0, len(chosen), 200):
        entries = []
        for a in chosen[start : start + 200]:
            a = {k: v for k, v in a.items() if k != "meta"}
            a["note"] = (a.get("note") or []) + [{"text": "amended by the bench"}]
            entries.append(
                {
                    "fullUrl": f"{client.base_url}/MedicationAdministration/{a['id']}",
                    "resource": a,
                    "request": {"method": "PUT", "url": f"MedicationAdministration/{a['id']}"},
                }
            )
        client.transaction(entries, kind="batch")
    return len(chosen)


def bench_sync(
    hapi: Hapi, n: int, workdir: Path, meter: HttpMeter, seed: int, isolated: bool = False
) -> dict:
    """Load n administrations, then sync them with ours and with the baseline, full and incremental.

    ``isolated``: for a server shared with other tests: no wipe, run-unique ids, both jobs
    pull only what changed since the load, and ours posts under its own identifier system.
    """
    from baseline_fhirpy import BASELINE_SYSTEM, FhirpyBaseline
    from generate import generate

    import fhir_injection as fi
    from fhir_injection.rules import load_rules

    folder = workdir / f"hapi-{n}"
    tag = f"b{int(time.time()) % 10**8}" if isolated else ""
    info = generate(n, folder, seed, tag)
    if not isolated:
        hapi.wipe()
    client = fi.connect(hapi.url)
    load_started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 2))
    t0 = time.perf_counter()
    loaded = fi.load_folder(str(folder), client, bundle_size=500)
    load_s = time.perf_counter() - t0
    admins_loaded = loaded.loaded.get("MedicationAdministration", 0)
    log(
        f"loaded {sum(loaded.loaded.values())} resources ({admins_loaded} administrations; "
        f"{len(loaded.problems)} refused by the server, as the demo intends) in {load_s:.0f} s"
    )
    rules = load_rules()
    config = (
        fi.Config(identifier_system="urn:fhir-injection:bench-ours") if isolated else fi.Config()
    )
    since = load_started if isolated else None
    state = workdir / f"state-{n}.json"
    state.unlink(missing_ok=True)
    opts = fi.SyncOptions(
        page_size=PAGE_SIZE,
        bundle_size=BUNDLE_SIZE,
        full=not isolated,
        since=since,
        state_path=str(state),
        report_path=str(workdir / f"report-{n}.json"),
        created=CREATED,
        overlap_seconds=1,
    )

    # ours, full
    meter.kinds, meter.kind_seconds = {}, {}
    r0, s0 = meter.snapshot()
    t0 = time.perf_counter()
    source = fi.connect(hapi.url)
    ours = fi.run_sync(source, source, rules, config, opts)
    ours_s = time.perf_counter() - t0
    r1, s1 = meter.snapshot()
    ours_req, floor_s = r1 - r0, s1 - s0
    ours_kinds = dict(sorted(meter.kinds.items(), key=lambda kv: -kv[1]))
    ours_kind_s = {
        k: round(v, 1) for k, v in sorted(meter.kind_seconds.items(), key=lambda kv: -kv[1])
    }
    log(
        f"ours full: {ours.summary['administrations']} administrations, {ours_req} requests, {ours_s:.1f} s "
        f"(HTTP {floor_s:.1f} s), claims {ours.claims.as_dict()}"
    )

    # baseline, full
    base = FhirpyBaseline(hapi.url, rules, config)
    r0, s0 = meter.snapshot()
    t0 = time.perf_counter()
    b = base.run(CREATED, since=since, page_size=PAGE_SIZE)
    base_s = time.perf_counter() - t0
    r1, s1 = meter.snapshot()
    base_req, base_http_s = r1 - r0, s1 - s0
    log(
        f"baseline full: {b.administrations} administrations, {base_req} requests, {base_s:.1f} s "
        f"(HTTP {base_http_s:.1f} s), {b.claims_created} Claims created"
    )

    # same Claims?
    ours_claims = _claims_by_admin(client, config.identifier_system, tag)
    base_claims = _claims_by_admin(client, BASELINE_SYSTEM, tag)
    differing = sorted(
        k for k in set(ours_claims) | set(base_claims) if ours_claims.get(k) != base_claims.get(k)
    )
    log(
        f"claims: ours {len(ours_claims)}, baseline {len(base_claims)}, differing {len(differing)} {differing[:5]}"
    )

    # incremental: change 10%, then each syncs what changed since its own mark
    time.sleep(1.5)
    mark_time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    changed = _change_some(client, CHANGED_SHARE, tag)
    opts_inc = fi.SyncOptions(
        page_size=PAGE_SIZE,
        bundle_size=BUNDLE_SIZE,
        state_path=str(state),
        report_path=str(workdir / f"report-{n}-inc.json"),
        created=CREATED,
        overlap_seconds=1,
    )
    r0, _ = meter.snapshot()
    t0 = time.perf_counter()
    source = fi.connect(hapi.url)
    inc = fi.run_sync(source, source, rules, config, opts_inc)
    ours_inc_s = time.perf_counter() - t0
    ours_inc_req = meter.snapshot()[0] - r0
    log(
        f"ours incremental: {inc.summary['administrations']} administrations, {ours_inc_req} requests, "
        f"{ours_inc_s:.1f} s, claims {inc.claims.as_dict()}, tasks {inc.tasks.as_dict()}"
    )
    r0, _ = meter.snapshot()
    t0 = time.perf_counter()
    b_inc = base.run(CREATED, since=mark_time, page_size=PAGE_SIZE)
    base_inc_s = time.perf_counter() - t0
    base_inc_req = meter.snapshot()[0] - r0
    log(
        f"baseline incremental: {b_inc.administrations} administrations, {base_inc_req} requests, {base_inc_s:.1f} s"
    )

    per_k = 1000 / max(ours.summary["administrations"], 1)
    per_k_inc = 1000 / max(changed, 1)
    return {
        "n_generated": info["administrations"],
        "n_on_server": admins_loaded,
        "resources_loaded": sum(loaded.loaded.values()),
        "load_s": round(load_s, 1),
        "page_size": PAGE_SIZE,
        "bundle_size": BUNDLE_SIZE,
        "outcomes": ours.summary.get("outcomes"),
        "http": {
            "full": {
                "ours_requests": ours_req,
                "baseline_requests": base_req,
                "ours_per_1000": round(ours_req * per_k, 1),
                "ours_by_kind": ours_kinds,
                "ours_seconds_by_kind": ours_kind_s,
                "baseline_per_1000": round(base_req * 1000 / max(b.administrations, 1), 1),
            },
            "incremental": {
                "changed": changed,
                "ours_requests": ours_inc_req,
                "baseline_requests": base_inc_req,
                "ours_per_1000": round(ours_inc_req * per_k_inc, 1),
                "baseline_per_1000": round(base_inc_req * per_k_inc, 1),
                "ours_s": round(ours_inc_s, 2),
                "baseline_s": round(base_inc_s, 2),
            },
        },
        "sync": {
            "ours_s": round(ours_s, 2),
            "baseline_s": round(base_s, 2),
            "speedup": round(base_s / ours_s, 1) if ours_s else None,
            "hapi_floor_s": round(floor_s, 2),
            "ours_over_floor": round(ours_s / floor_s, 2) if floor_s else None,
            "baseline_http_s": round(base_http_s, 2),
        },
        "claims": {
            "ours": len(ours_claims),
            "baseline": len(base_claims),
            "differing": len(differing),
            "differing_sample": differing[:5],
        },
        "claims_equal": not differing and len(ours_claims) > 0,
    }


# ------------------------------------------------------------------------------- offline benchmark


def _child_offline(folder: str, out: str, profile: bool) -> None:
    """Runs in a fresh process: run_folder once, print one JSON line."""
    import fhir_injection as fi

    # the demo clinic's practice profile: its sites are offices (fixtures/demo-practice/practice.toml)
    from fhir_injection.bundled import demo_config
    from fhir_injection.rules import load_rules

    rules, config = load_rules(), fi.load_config(demo_config())
    prof = cProfile.Profile() if profile else None
    t0, c0 = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    result = fi.run_folder(folder, out, rules, config, CREATED)
    if prof:
        prof.disable()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    data = {
        "administrations": result.summary["administrations"],
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "outcomes": result.summary.get("outcomes"),
    }
    if prof:
        data["profile"] = _profile_summary(prof, wall)
    print(json.dumps(data))


def _profile_summary(prof: cProfile.Profile, wall: float) -> dict:
    stats = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    total = 0.0
    groups = {
        "json": 0.0,
        "sqlite": 0.0,
        "engine": 0.0,
        "claims": 0.0,
        "report": 0.0,
        "rules/units": 0.0,
        "context/store": 0.0,
        "sources": 0.0,
        "other": 0.0,
    }
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():
        total += tt
        name = f"{Path(filename).name}:{line}({func})"
        rows.append((tt, ct, nc, name))
        f = filename.replace("\\", "/")
        if "/json/" in f or func in (
            "loads",
            "dumps",
            "encode",
            "decode",
            "raw_decode",
            "iterencode",
        ):
            g = "json"
        elif (
            "sqlite3" in func
            or "sqlite3" in f
            or func in ("execute", "fetchone", "fetchall", "executescript")
        ):
            g = "sqlite"
        elif "fhir_injection/decision/" in f and not f.endswith(
            (
                "/units.py",
                "/ruleset.py",
                "/drug_tables.py",
                "/payer_tables.py",
                "/procedure_tables.py",
                "/context.py",
            )
        ):
            g = "engine"
        elif f.endswith("fhir_injection/sinks/claims.py"):
            g = "claims"
        elif f.endswith(("fhir_injection/sinks/report.py", "fhir_injection/sinks/outputs.py")):
            g = "report"
        elif f.endswith(
            (
                "fhir_injection/rules.py",
                "fhir_injection/decision/rules.py",
                "fhir_injection/decision/units.py",
            )
        ):
            g = "rules/units"
        elif f.endswith(
            (
                "fhir_injection/decision/context.py",
                "fhir_injection/sources/spool.py",
                "fhir_injection/fhir/resources.py",
            )
        ):
            g = "context/store"
        elif "fhir_injection/sources/" in f:
            g = "sources"
        else:
            g = "other"
        groups[g] += tt
    rows.sort(reverse=True)
    return {
        "profiled_wall_s": round(wall, 2),
        "share_by_area": {
            k: round(v / total, 3) for k, v in sorted(groups.items(), key=lambda kv: -kv[1]) if v
        },
        "top_own_time": [
            {"fn": name, "own_s": round(tt, 3), "cum_s": round(ct, 3), "calls": nc}
            for tt, ct, nc, name in rows[:12]
        ],
    }


def bench_offline(n: int, workdir: Path, seed: int, profile: bool = False) -> dict:
    from generate import generate

    folder = workdir / f"offline-{n}"
    t0 = time.perf_counter()
    info = generate(n, folder, seed)
    gen_s = time.perf_counter() - t0
    size_mb = sum(p.stat().st_size for p in folder.glob("*.ndjson")) / 2**20
    out = workdir / f"offline-{n}-out"
    runs = []
    for prof in [False, True] if profile else [False]:
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--_child-offline",
            str(folder),
            str(out),
        ]
        if prof:
            cmd.append("--_child-profile")
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(ROOT))
        if proc.returncode != 0:
            raise SystemExit(f"offline run failed:\n{proc.stderr[-3000:]}")
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    r = runs[0]
    log(
        f"offline {n}: {r['administrations']} in {r['wall_s']:.1f} s = {r['administrations'] / r['wall_s']:.0f}/s, "
        f"peak RSS {r['peak_rss_mb']:.0f} MB"
    )
    data = {
        "n": info["administrations"],
        "input_mb": round(size_mb, 1),
        "generate_s": round(gen_s, 1),
        "wall_s": round(r["wall_s"], 2),
        "cpu_s": round(r["cpu_s"], 2),
        "per_s": round(r["administrations"] / r["wall_s"]),
        "per_cpu_s": round(r["administrations"] / r["cpu_s"]),
        "peak_rss_mb": round(r["peak_rss_mb"], 1),
        "outcomes": r["outcomes"],
    }
    if profile:
        data["profile"] = runs[1]["profile"]
    return data


# ------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        action="store_true",
        help="small N (offline 1,000, HAPI 300): keeps the benchmark "
        "working in CI, figures not meaningful (default)",
    )
    mode.add_argument(
        "--full",
        action="store_true",
        help="the published figures: offline 10,000 and 100,000, HAPI 10,000",
    )
    ap.add_argument(
        "--offline-only", action="store_true", help="skip everything that needs a FHIR server"
    )
    ap.add_argument(
        "--hapi-url",
        metavar="URL",
        help="use this running server (IT IS WIPED) instead of starting one",
    )
    ap.add_argument(
        "--isolated",
        action="store_true",
        help="for a server shared with other tests: no wipe, run-unique ids, sync only this load",
    )
    ap.add_argument(
        "--hapi-port",
        type=int,
        default=DEFAULT_PORT,
        help="port for the server we start (%(default)s)",
    )
    ap.add_argument(
        "--offline-n", type=int, nargs="+", metavar="N", help="override the offline sizes"
    )
    ap.add_argument("--hapi-n", type=int, metavar="N", help="override the HAPI size")
    ap.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    ap.add_argument("--seed", type=int, default=96372)
    ap.add_argument(
        "--workdir",
        metavar="DIR",
        help="where data and outputs go (default: a temporary directory)",
    )
    ap.add_argument("--_child-offline", nargs=2, metavar=("FOLDER", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--_child-profile", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._child_offline:
        _child_offline(*args._child_offline, profile=args._child_profile)
        return 0

    full = args.full
    offline_ns = args.offline_n or ([10_000, 100_000] if full else [1_000])
    hapi_n = args.hapi_n or (10_000 if full else 300)
    tmp = None
    if args.workdir:
        workdir = Path(args.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="fhir-injection-bench-")
        workdir = Path(tmp.name)
    started = time.perf_counter()
    result: dict = {
        "mode": "full" if full else "quick",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    try:
        result["offline"] = [
            bench_offline(n, workdir, args.seed, profile=(i == 0 and not args.no_profile))
            for i, n in enumerate(offline_ns)
        ]
        for entry in result["offline"]:
            if "profile" in entry:
                result["profile"] = {"n": entry["n"], **entry.pop("profile")}
        if not args.offline_only:
            meter = HttpMeter()
            hapi = Hapi(args.hapi_url, args.hapi_port)
            try:
                hapi.start()
                result["hapi"] = {
                    "url": hapi.url,
                    "started_by_bench": hapi.own,
                    **bench_sync(hapi, hapi_n, workdir, meter, args.seed, args.isolated),
                }
            finally:
                hapi.stop()
    finally:
        if tmp is not None:
            tmp.cleanup()
    result["bench_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, separators=(",", ":")))
    if "hapi" in result and not result["hapi"]["claims_equal"]:
        log("ours and the baseline posted different Claims")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
