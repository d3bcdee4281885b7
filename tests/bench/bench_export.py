#!/usr/bin/env python3
"""Export download speed and peak memory: ``fhir-injection export`` against a local bulk endpoint.

    python tests/bench/bench_export.py --n 100000 [--work /tmp/bench-export] [--files-per-type 4]

Generates N administrations (tests/bench/generate.py, the demo clinic's mix), splits each type's
NDJSON into ``--files-per-type`` parts, and serves them from a tiny Bulk Data endpoint on
127.0.0.1 (http.server, one thread per request): ``$export`` answers 202 with a status URL, the
first status check 202 with ``Retry-After: 0`` and ``X-Progress``, the next the manifest; files
are served from disk in 64 KiB pieces, gzip-compressed (``Content-Encoding: gzip``) or plain
(``--plain``: the client compresses). The client runs as a subprocess (``python -m
fhir_injection export``); its peak RSS is the child's ``ru_maxrss``. It is checked that the folder
holds every record (the administrations counted after gunzip).

Prints one JSON object: MB downloaded (on the wire), seconds, MB/s, peak RSS in MB.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
PIECE = 64 * 1024


def split(folder: Path, served: Path, parts: int, gz: bool) -> list[tuple[str, str, int]]:
    """Each ``<Type>.ndjson`` of ``folder`` as ``parts`` files in ``served`` (gzip if ``gz``):
    (type, file name, records)."""
    served.mkdir(parents=True, exist_ok=True)
    out = []
    for src in sorted(folder.glob("*.ndjson")):
        rtype = src.name.split(".")[0]
        lines = src.read_bytes().splitlines(keepends=True)
        step = max(1, -(-len(lines) // parts))
        for n, start in enumerate(range(0, len(lines), step), 1):
            name = f"{rtype}-{n}.ndjson" + (".gz" if gz else "")
            data = b"".join(lines[start : start + step])
            (served / name).write_bytes(gzip.compress(data, 6) if gz else data)
            out.append((rtype, name, len(lines[start : start + step])))
        del lines
    return out


def serve(served: Path, files: list[tuple[str, str, int]], gz: bool) -> ThreadingHTTPServer:
    polls = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _json(self, status: int, body: dict | None, headers: dict | None = None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            base = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"
            path = self.path.split("?")[0]
            if path == "/fhir/$export":
                self._json(202, None, {"Content-Location": f"{base}/status/1"})
            elif path == "/fhir/status/1":
                polls["n"] += 1
                if polls["n"] == 1:
                    self._json(202, None, {"Retry-After": "0", "X-Progress": "50%"})
                    return
                self._json(
                    200,
                    {
                        "transactionTime": "2026-11-30T00:00:00Z",
                        "request": f"{base}/$export",
                        "requiresAccessToken": False,
                        "output": [
                            {"type": t, "url": f"{base}/files/{name}", "count": c}
                            for t, name, c in files
                        ],
                        "error": [],
                    },
                )
            elif path.startswith("/fhir/files/"):
                target = served / path.rsplit("/", 1)[1]
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+ndjson")
                if gz:
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(target.stat().st_size))
                self.end_headers()
                with open(target, "rb") as fh:
                    while piece := fh.read(PIECE):
                        self.wfile.write(piece)
            else:
                self._json(404, {"resourceType": "OperationOutcome"})

        def do_DELETE(self) -> None:
            self._json(202, None)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def count_lines(path: Path) -> int:
    n = 0
    with gzip.open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            n += chunk.count(b"\n")
    return n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--work", type=Path, default=Path("/tmp/bench-export"))
    p.add_argument("--files-per-type", type=int, default=4)
    p.add_argument("--plain", action="store_true", help="serve uncompressed NDJSON")
    p.add_argument("--concurrency", type=int, default=3)
    a = p.parse_args()
    data = a.work / f"data-{a.n}"
    if not (data / "MedicationAdministration.ndjson").is_file():
        from generate import generate

        generate(a.n, data)
    gz = not a.plain
    served = a.work / f"served-{a.n}-{'gz' if gz else 'plain'}-{a.files_per_type}"
    if not served.is_dir():
        files = split(data, served, a.files_per_type, gz)
        (served / "files.json").write_text(json.dumps(files))
    files = json.loads((served / "files.json").read_text())
    wire = sum((served / name).stat().st_size for _, name, _ in files)
    ndjson = sum(f.stat().st_size for f in data.glob("*.ndjson"))
    server = serve(served, files, gz)
    target = a.work / "out"
    shutil.rmtree(target, ignore_errors=True)
    state = a.work / "state.json"
    state.unlink(missing_ok=True)
    url = f"http://127.0.0.1:{server.server_address[1]}/fhir"
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fhir_injection",
            "export",
            "--source",
            url,
            "--target",
            str(target),
            "--state",
            str(state),
            "--concurrency",
            str(a.concurrency),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    peak_kb = 0
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)
    reader.start()
    while proc.poll() is None:  # the child's own high-water mark (VmHWM), read until it ends
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peak_kb = max(peak_kb, int(status.split("VmHWM:")[1].split()[0]))
        except (OSError, IndexError, ValueError):
            pass
        time.sleep(0.02)
    seconds = time.monotonic() - t0
    server.shutdown()
    reader.join()
    if proc.returncode != 0:
        raise SystemExit("".join(errors)[-3000:])
    peak_mb = peak_kb / 1024
    admins = sum(count_lines(f) for f in target.glob("*.MedicationAdministration.ndjson.gz"))
    expected = sum(c for t, _, c in files if t == "MedicationAdministration")
    assert admins == expected == a.n, (admins, expected, a.n)
    print(
        json.dumps(
            {
                "administrations": admins,
                "files": len(files),
                "served": "gzip" if gz else "plain",
                "concurrency": a.concurrency,
                "mb_on_the_wire": round(wire / 1e6, 1),
                "mb_written": round(sum(f.stat().st_size for f in target.rglob("*.gz")) / 1e6, 1),
                "seconds": round(seconds, 1),
                "mb_per_s": round(wire / 1e6 / seconds, 1),
                "mb_ndjson": round(ndjson / 1e6, 1),
                "ndjson_mb_per_s": round(ndjson / 1e6 / seconds, 1),
                "administrations_per_s": round(admins / seconds),
                "peak_rss_mb": round(peak_mb, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
