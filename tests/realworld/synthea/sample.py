"""Make the committed Synthea sample (fixtures/synthea/) from a full run of run.sh.

    python3 tests/realworld/synthea/sample.py /tmp/synthea-run fixtures/synthea

Only what Synthea wrote goes in: whole NDJSON lines and whole Bundle entries, byte for byte. The
sample differs from the run only in what it leaves out and in the NDJSON files being gzip-compressed:

* ``bulk/``: every line of the types the adapter reads (``READ_TYPES``) and of ``Location`` (the
  clinic's time zone may come from Location/Organization), gzip-compressed; the first
  ``--observation-lines`` lines of ``Observation.ndjson`` (one file of a type the adapter never
  reads, as real exports have); Synthea's ``parameters.json``.
* ``bundles/``: the first ``--bundles`` per-patient transaction Bundles (by file name, which is the
  patient's id) that hold a MedicationAdministration, with only the entries of those types kept
  (the Bundle's own text around them unchanged), and Synthea's hospital and practitioner Bundles
  whole.
* Names are Synthea's: ``<Type>.ndjson`` becomes ``<Type>.ndjson.gz``, nothing else changes. (The
  number in ``Organization.1790812800000.ndjson`` and ``hospitalInformation1790812800000.json`` is
  the run's end time, 2026-10-01 with run.sh's ``-e``: without ``-e`` it is the wall clock.)

So the same run always gives the same bytes (gzip without a name or time stamp in its header), and a
run of the same Synthea version, seed and options gives the same sample.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
import sys
from pathlib import Path

# The types fhir_injection reads (README, "What it does"). Synthea 3.3 writes Patient, Encounter,
# Condition, Medication, MedicationAdministration, Organization, Practitioner and PractitionerRole of
# these; no Coverage, Consent or ChargeItem.
READ_TYPES = (
    "MedicationAdministration",
    "Encounter",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Condition",
    "Medication",
    "Coverage",
    "Consent",
    "ChargeItem",
)
ALSO_KEPT = ("Location",)  # unread today; the dates of service in local time may read it
UNREAD_SAMPLE = "Observation"  # the one file of a type the adapter never reads

NDJSON = re.compile(r"^(?P<type>[A-Za-z]+)(?:\.\d+)?\.ndjson$")
PROVIDER_BUNDLE = re.compile(r"^(hospitalInformation|practitionerInformation)\d*\.json$")


def write_gzip(path: Path, data: bytes) -> None:
    """gzip with no file name and time 0 in its header, so the same data gives the same bytes."""
    with (
        path.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
    ):
        gz.write(data)


def first_lines(path: Path, count: int) -> bytes:
    out: list[bytes] = []
    with path.open("rb") as fh:
        for line in fh:
            if len(out) == count:
                break
            out.append(line)
    return b"".join(out)


def sample_bulk(source: Path, target: Path, observation_lines: int) -> dict[str, int]:
    target.mkdir(parents=True)
    lines: dict[str, int] = {}
    for path in sorted(source.iterdir()):
        match = NDJSON.match(path.name)
        if not match:
            continue
        rtype = match.group("type")
        name = path.name + ".gz"
        if rtype in READ_TYPES or rtype in ALSO_KEPT:
            data = path.read_bytes()
        elif rtype == UNREAD_SAMPLE:
            data = first_lines(path, observation_lines)
        else:
            continue
        write_gzip(target / name, data)
        lines[name] = data.count(b"\n")
    parameters = source / "parameters.json"
    if parameters.exists():
        shutil.copyfile(parameters, target / "parameters.json")
    return lines


def bundle_entries(text: str) -> tuple[str, list[tuple[int, int, dict]], str]:
    """The Bundle's text up to its entry array's ``[``, each entry's (start, end, value), and the text
    from the array's ``]`` on."""
    decoder = json.JSONDecoder()
    start = re.search(r'"entry"\s*:\s*\[', text)
    if not start:
        raise ValueError("no entry array")
    pos = start.end()
    entries = []
    while True:
        while text[pos] in " \t\r\n,":
            pos += 1
        if text[pos] == "]":
            break
        value, end = decoder.raw_decode(text, pos)
        entries.append((pos, end, value))
        pos = end
    return text[: start.end()], entries, text[pos:]


def filter_bundle(text: str, keep: tuple[str, ...]) -> tuple[str, dict[str, int]]:
    """The Bundle with only the entries whose resource type is in ``keep``, each entry's text as it was
    and with the spacing Synthea put around and between entries (``[ {`` … ``}, {`` … ``} ]``)."""
    head, entries, tail = bundle_entries(text)
    if not entries:
        return text, {}
    lead = text[len(head) : entries[0][0]]
    between = text[entries[0][1] : entries[1][0]] if len(entries) > 1 else ", "
    trail = text[entries[-1][1] : len(text) - len(tail)]
    kept = [(s, e, v) for s, e, v in entries if v.get("resource", {}).get("resourceType") in keep]
    counts: dict[str, int] = {}
    for _, _, value in kept:
        counts[value["resource"]["resourceType"]] = (
            counts.get(value["resource"]["resourceType"], 0) + 1
        )
    body = lead + between.join(text[s:e] for s, e, _ in kept) + trail if kept else ""
    result = head + body + tail
    json.loads(result)  # still one JSON document
    return result, counts


def sample_bundles(source: Path, target: Path, how_many: int) -> dict[str, dict[str, int]]:
    target.mkdir(parents=True)
    chosen: dict[str, dict[str, int]] = {}
    for path in sorted(source.glob("*.json")):
        if PROVIDER_BUNDLE.match(path.name):
            name = path.name
            shutil.copyfile(path, target / name)
            bundle = json.loads(path.read_text("utf-8"))
            counts: dict[str, int] = {}
            for entry in bundle.get("entry", []):
                rtype = entry["resource"]["resourceType"]
                counts[rtype] = counts.get(rtype, 0) + 1
            chosen[name] = counts
            continue
        if len([n for n in chosen if not PROVIDER_BUNDLE.match(n)]) >= how_many:
            continue
        text = path.read_text("utf-8")
        if '"resourceType": "MedicationAdministration"' not in text:
            continue
        filtered, counts = filter_bundle(text, READ_TYPES + ALSO_KEPT)
        (target / path.name).write_text(filtered, "utf-8")
        chosen[path.name] = counts
    return chosen


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "run", type=Path, help="the OUT folder of run.sh (with bulk/fhir and bundles/fhir)"
    )
    p.add_argument(
        "target",
        type=Path,
        help="where the sample goes (fixtures/synthea); bulk/ and bundles/ in it are replaced",
    )
    p.add_argument("--observation-lines", type=int, default=50)
    p.add_argument(
        "--bundles", type=int, default=4, help="per-patient Bundles to keep (default: %(default)s)"
    )
    args = p.parse_args(argv)
    for sub in ("bulk", "bundles"):
        if (args.target / sub).exists():
            shutil.rmtree(args.target / sub)
    lines = sample_bulk(args.run / "bulk" / "fhir", args.target / "bulk", args.observation_lines)
    bundles = sample_bundles(args.run / "bundles" / "fhir", args.target / "bundles", args.bundles)
    json.dump(
        {"bulk_lines": lines, "bundle_entries": bundles}, sys.stdout, indent=1, sort_keys=True
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
