#!/usr/bin/env python3
"""A deterministic benchmark clinic network: N MedicationAdministrations as a Bulk Data folder.

    python tests/bench/generate.py --n 10000 --out /tmp/bench-10k [--seed 96372]

It builds ceil(N / 376) copies of the demo clinic (``fixtures/generate_demo.py``, the same
scenario mix: 263 claim, 47 held, 41 not-96372, 21 not-billable, 4 void per 376), each from its
own seed (``seed * 1000 + k``) and with every id prefixed ``c<k>-`` (references and the MAR /
MRN identifiers follow), so the copies never collide. The last copy is cut to N by whole
patients (a patient's administrations stay together, so the same-day rules still hold), which
can leave at most one patient's day partly cut. Files are streamed copy by copy: generating
100,000 administrations needs no more memory than one clinic.

Output depends only on N, the seed and ``mappings/``; running it twice gives identical files.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "fixtures"))
sys.path.insert(0, str(ROOT))  # tests.builders

import generate_demo as demo  # noqa: E402

from tests.builders import prefix_references  # noqa: E402

PER_CLINIC = 376
TYPES = [
    "Organization",
    "Location",
    "Practitioner",
    "PractitionerRole",
    "Patient",
    "Coverage",
    "Consent",
    "Encounter",
    "Condition",
    "Medication",
    "MedicationAdministration",
    "ChargeItem",
    "Observation",
]
# the clinic's NPI too: the demo names its clinic by a conditional reference on it
PREFIXED_IDENTIFIERS = {demo.ADMIN_ID, demo.MRN, demo.NPI}


def _rename(resource: dict, prefix: str) -> dict:
    r = prefix_references(resource, prefix)
    r["id"] = prefix + r["id"]
    for ident in r.get("identifier") or []:
        if ident.get("system") in PREFIXED_IDENTIFIERS and "value" in ident:
            ident["value"] = prefix + ident["value"]
    return r


def _clinic(seed: int, k: int) -> dict[str, list[dict]]:
    d = demo.Demo(seed * 1000 + k)
    d.build()
    d.finish()
    out = {}
    for rtype, items in d.res.items():
        out[rtype] = [
            {
                key: v
                for key, v in item.items()
                if not key.startswith("_") or key == "_effectiveDateTime"
            }
            for item in items
        ]
    return out


def _cut(admins: list[dict], want: int, rng: random.Random) -> list[dict]:
    """``want`` of one clinic's administrations, taken by whole patients in a seeded order."""
    groups: dict[str, list[dict]] = {}
    for a in admins:
        groups.setdefault((a.get("subject") or {}).get("reference") or "", []).append(a)
    keys = sorted(groups)
    rng.shuffle(keys)
    taken: list[dict] = []
    for key in keys:
        group = sorted(groups[key], key=lambda a: (str(a.get("effectiveDateTime")), a["id"]))
        room = want - len(taken)
        if room <= 0:
            break
        taken += group[:room]
    return sorted(taken, key=lambda a: a["id"])


def generate(n: int, out: str | Path, seed: int = 96372, tag: str = "") -> dict:
    """Write ``n`` administrations (and what they point to) to ``out``; return counts.

    ``tag`` goes in front of every id (``<tag>c<k>-``): a run-unique tag keeps two loads apart on
    one server.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.ndjson"):
        old.unlink()
    clinics = math.ceil(n / PER_CLINIC)
    counts = {t: 0 for t in TYPES}
    # one file per type open for the whole run, closed in the finally below
    handles = {t: open(out / f"{t}.ndjson", "w", encoding="utf-8", newline="\n") for t in TYPES}  # noqa: SIM115
    try:
        for k in range(clinics):
            res = _clinic(seed, k)
            prefix = f"{tag}c{k:03d}-"
            want = min(PER_CLINIC, n - k * PER_CLINIC)
            if want < len(res["MedicationAdministration"]):
                res["MedicationAdministration"] = _cut(
                    res["MedicationAdministration"], want, random.Random(seed * 1000 + k)
                )
            for rtype in TYPES:
                fh = handles[rtype]
                for item in res.get(rtype, ()):
                    fh.write(
                        json.dumps(_rename(item, prefix), ensure_ascii=False, separators=(",", ":"))
                        + "\n"
                    )
                    counts[rtype] += 1
    finally:
        for fh in handles.values():
            fh.close()
    for t in TYPES:
        if counts[t] == 0:
            (out / f"{t}.ndjson").unlink()
    return {
        "administrations": counts["MedicationAdministration"],
        "clinics": clinics,
        "resources": sum(counts.values()),
        "by_type": counts,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--n",
        type=int,
        required=True,
        help="number of MedicationAdministrations (1,000 to 100,000)",
    )
    ap.add_argument(
        "--out", required=True, help="folder to write (its *.ndjson files are replaced)"
    )
    ap.add_argument("--seed", type=int, default=96372)
    ap.add_argument("--tag", default="", help="extra id prefix, e.g. run1- (letters, digits, '-')")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    info = generate(args.n, args.out, args.seed, args.tag)
    info["seconds"] = round(time.perf_counter() - t0, 2)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
