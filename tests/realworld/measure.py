#!/usr/bin/env python3
"""How the adapter decides on a folder of real-world FHIR: the figures docs/real-world.md tracks.

    python3 tests/realworld/measure.py fixtures/synthea/bulk
    python3 tests/realworld/measure.py fixtures/synthea/bundles --keep /tmp/out   # keep Claims/Tasks/report
    PYTHONPATH=. python3 -c "from tests.realworld.measure import measure; print(measure('fixtures/synthea/bulk'))"

In the tests: ``from tests.realworld.measure import measure``.

Runs the offline job in this process (``fhir_injection.run_folder`` with the bundled mappings and a
default ``Config``; ``created`` fixed so two runs write the same files) on SOURCE, a Bulk Data export
folder or a folder of FHIR Bundle ``.json`` files, then reads ``report.json``. Prints one JSON line
(the dict :func:`measure` returns), then a table for people.

The adapter's report does not name the drug, so the medication of each administration is read here
from SOURCE on its own (``medicationCodeableConcept``, or the Medication a ``medicationReference``
points to: ``Medication/<id>``, a Bundle ``fullUrl`` or a contained ``#id``), and classified by the
dose form in its RxNorm name or text (``NON_INJECTION_FORMS``, ``INJECTABLE_FORMS``).

Figures (keys of the JSON line):
  administrations, outcomes, procedures     from the report; ``procedures`` counts ``procedure`` ("none": null)
  unmapped_medication_rate                  share of administrations with the ``unmapped-medication`` gap
  coded_injectables, ..._specific_hcpcs,    administrations whose medication carries a code (no CVX),
  ..._specific_rate, ..._not_specific       not a non-injection form, outcome claim/held/not-96372; of
                                            them, a drug line HCPCS not NOC and not unmapped (the
                                            others by HCPCS, name and codes)
  dose_forms                                administrations by dose-form class (non-injection / injectable / unknown)
  non_injection_held_96372                  held with procedure 96372 although the product cannot be an injection
  non_injection_as_96372                    ... held or claimed as 96372; ``non_injection_held_96372_by_form`` by word
  non_injection_held_usd                    the report's held dollars that come from those
  held_96372_by_medication                  the 15 drugs most often held as 96372, by name; hcpcs: drug codes chosen
  tasks_per_100                             administrations with a Task, per 100 administrations
  claim_without_claim                       outcome ``claim`` but no Claim written
  claims_written, tasks_written             lines of Claim.ndjson and Task.ndjson
  medication_not_found                      administrations whose drug name this script could not find
  gaps, no_claim_reasons, record_errors, record_error_kinds, exit_code (the CLI's: 1 with record errors)
  files                                     SOURCE's files: NDJSON lines or Bundle entries
  seconds, cpu_seconds, per_second, cpu_per_second   the run_folder call alone (not this script's reading)
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Dose-form words of RxNorm clinical-drug names (the name ends in the dose form: "Tamoxifen 10 MG
# Oral Tablet", "Etonogestrel 68 MG Drug Implant", "Mirena 52 MG Intrauterine System") that say the
# product cannot be given as a subcutaneous or intramuscular injection: oral (tablet, capsule, gel,
# solution, chewable, sublingual, buccal), transdermal, implanted or intrauterine, inhaled, nasal,
# topical, rectal, vaginal, ophthalmic and otic forms. Matched as whole words, case-insensitive; the
# first word of this list found in the name is the one reported.
NON_INJECTION_FORMS = (
    "Oral Tablet",
    "Oral Capsule",
    "Oral Gel",
    "Oral Solution",
    "Oral Suspension",
    "Chewable",
    "Sublingual",
    "Buccal",
    "Oral",
    "Transdermal",
    "Patch",
    "Drug Implant",
    "Intrauterine",
    "Inhaler",
    "Inhalation",
    "Inhalant",
    "Nasal",
    "Topical",
    "Cream",
    "Ointment",
    "Lotion",
    "Suppository",
    "Rectal",
    "Enema",
    "Vaginal",
    "Ophthalmic",
    "Otic",
    "Mouthwash",
    "Toothpaste",
    "Lozenge",
)
# Dose-form words of products that can be injected (route still needed to say which injection).
INJECTABLE_FORMS = (
    "Injection",
    "Injectable",
    "Prefilled Syringe",
    "Auto-Injector",
    "Pen Injector",
    "Cartridge",
    "Vial",
)

CVX = "http://hl7.org/fhir/sid/cvx"
CREATED = "2026-10-01T00:00:00Z"  # the Claims' and Tasks' `created`: fixed, so runs compare
NDJSON = re.compile(r"^(?P<type>[A-Za-z]+)(\.\d+)?\.ndjson(\.gz)?$")


def _words(words: tuple[str, ...]) -> list[tuple[str, re.Pattern[str]]]:
    return [
        (
            w,
            re.compile(
                r"(?<![A-Za-z])" + re.escape(w).replace(r"\ ", r"\s+") + r"(?![A-Za-z])", re.I
            ),
        )
        for w in words
    ]


_NON_INJECTION = _words(NON_INJECTION_FORMS)
_INJECTABLE = _words(INJECTABLE_FORMS)


def dose_form(name: str | None) -> tuple[str, str]:
    """("non-injection", word), ("injectable", word) or ("unknown", "") for a medication name."""
    if name:
        for word, pattern in _NON_INJECTION:
            if pattern.search(name):
                return "non-injection", word
        for word, pattern in _INJECTABLE:
            if pattern.search(name):
                return "injectable", word
    return "unknown", ""


# --- reading SOURCE for the medication names (independent of the adapter's own reader) ---


def _lines(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        yield from fh


def _concept_name(concept: Any) -> str | None:
    if not isinstance(concept, dict):
        return None
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and coding.get("display"):
            return str(coding["display"])
    return str(concept["text"]) if concept.get("text") else None


def _resources(source: Path) -> Iterator[tuple[dict, str | None]]:
    """MedicationAdministration and Medication resources of SOURCE (top level, as the adapter reads
    it), each with its Bundle fullUrl if it came from a Bundle."""
    for path in sorted(source.iterdir()):
        match = NDJSON.match(path.name)
        if (
            match
            and match.group("type") in ("MedicationAdministration", "Medication")
            and path.is_file()
        ):
            for raw in _lines(path):
                try:
                    yield json.loads(raw), None
                except ValueError:
                    continue
        elif path.suffix == ".json" and path.is_file():
            try:
                data = json.loads(path.read_text("utf-8"))
            except (ValueError, OSError):
                continue
            if not isinstance(data, dict):
                continue
            if data.get("resourceType") != "Bundle":
                yield data, None
                continue
            for entry in data.get("entry") or []:
                if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                    yield entry["resource"], entry.get("fullUrl")


def _concept_codes(concept: Any) -> list[str]:
    """``system|code`` of each coding of a CodeableConcept that has a code."""
    if not isinstance(concept, dict):
        return []
    return [
        f"{c.get('system') or ''}|{c['code']}"
        for c in concept.get("coding") or []
        if isinstance(c, dict) and isinstance(c.get("code"), str) and c["code"].strip()
    ]


def _medication_codes(res: dict) -> list[str]:
    """The codes of a Medication: its own and its ingredients' (as the adapter reads them)."""
    codes = _concept_codes(res.get("code"))
    for ingredient in res.get("ingredient") or []:
        if isinstance(ingredient, dict):
            codes += _concept_codes(ingredient.get("itemCodeableConcept"))
    return codes


def medications(source: str | Path) -> dict[str, tuple[str | None, list[str]]]:
    """``MedicationAdministration/<id>`` -> (the drug's name (coding display or text) or None,
    the ``system|code`` of every coding of the medication: the concept's or the Medication's)."""
    meds: dict[str, tuple[str | None, list[str]]] = {}
    admins: list[dict] = []
    for res, full_url in _resources(Path(source)):
        if not isinstance(res, dict):
            continue
        if res.get("resourceType") == "Medication":
            found = (_concept_name(res.get("code")), _medication_codes(res))
            if res.get("id"):
                meds[f"Medication/{res['id']}"] = found
            if full_url:
                meds[full_url] = found
        elif res.get("resourceType") == "MedicationAdministration" and res.get("id"):
            admins.append(res)
    out: dict[str, tuple[str | None, list[str]]] = {}
    for admin in admins:
        concept = admin.get("medicationCodeableConcept")
        name, codes = _concept_name(concept), _concept_codes(concept)
        ref = admin.get("medicationReference")
        if name is None and not codes and isinstance(ref, dict):
            target = str(ref.get("reference") or "")
            found: tuple[str | None, list[str]] = (None, [])
            if target.startswith("#"):
                for contained in admin.get("contained") or []:
                    if isinstance(contained, dict) and contained.get("id") == target[1:]:
                        found = (_concept_name(contained.get("code")), _medication_codes(contained))
            else:
                hit = re.search(r"(Medication/[^/]+)(/_history/.*)?$", target)
                found = meds.get(target) or (meds.get(hit.group(1)) if hit else None) or found
            name, codes = found[0] or ref.get("display"), found[1]
        out[f"MedicationAdministration/{admin['id']}"] = (name, codes)
    return out


def medication_names(source: str | Path) -> dict[str, str | None]:
    """``MedicationAdministration/<id>`` -> the drug's name (coding display or text), None if unknown."""
    return {k: v[0] for k, v in medications(source).items()}


def _count_lines(path: Path) -> int:
    return sum(chunk.count(b"\n") for chunk in _lines(path))


def source_files(source: Path) -> dict[str, int]:
    """Each file of SOURCE: NDJSON lines, or Bundle entries (-1: not readable JSON)."""
    files: dict[str, int] = {}
    for path in sorted(source.iterdir()):
        if NDJSON.match(path.name):
            files[path.name] = _count_lines(path)
        elif path.suffix == ".json":
            try:
                data = json.loads(path.read_text("utf-8"))
                files[path.name] = (
                    len(data.get("entry") or []) if data.get("resourceType") == "Bundle" else 1
                )
            except (ValueError, OSError, AttributeError):
                files[path.name] = -1
    return files


# --- the measurement ---


def _error_kind(error: dict) -> str:
    """A record error without its line number or id: what kind of problem, in which kind of file."""
    record = re.sub(r"(\.ndjson(\.gz)?):\d+", r"\1", str(error.get("record", "")))
    record = re.sub(r"/[A-Za-z0-9\-.]{1,64}$", "/<id>", record)
    record = re.sub(r"entry\[\d+\]", "entry[]", record)
    return f"{record} {error.get('field') or ''}: {error.get('message', '')}"[:200]


def measure(
    source: str | Path, keep: str | Path | None = None, created: str = CREATED
) -> dict[str, Any]:
    """Run the offline job on ``source`` and return the figures (see the module docstring).

    ``keep``: a folder for the Claims, Tasks and report.json (replaced); else a temporary one, removed.
    """
    from fhir_injection import Config, load_rules, run_folder

    source = Path(source)
    found = medications(source)
    names = {k: v[0] for k, v in found.items()}
    work = Path(tempfile.mkdtemp(prefix="fi-measure-"))
    target = Path(keep) if keep else work / "out"
    if keep and target.exists():
        shutil.rmtree(target)
    logger = logging.getLogger("fhir_injection")
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.ERROR)  # one warning per skipped record would drown the table
    try:
        rules = load_rules()
        wall, cpu = time.perf_counter(), time.process_time()
        result = run_folder(source, target, rules, Config(), created)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        report = json.loads((target / "report.json").read_text("utf-8"))
        claims_written = (
            _count_lines(target / "Claim.ndjson") if (target / "Claim.ndjson").exists() else 0
        )
        tasks_written = (
            _count_lines(target / "Task.ndjson") if (target / "Task.ndjson").exists() else 0
        )
    finally:
        logger.setLevel(level)
        logger.propagate = propagate
        shutil.rmtree(work, ignore_errors=True)

    rows = report["administrations"]
    n = len(rows)
    outcomes = Counter({k: 0 for k in ("claim", "held", "not-96372", "not-billable", "void")})
    outcomes.update(r["outcome"] for r in rows)
    procedures = Counter(r.get("procedure") or "none" for r in rows)
    gaps = Counter(g["code"] for r in rows for g in r.get("gaps") or [])
    unmapped = sum(
        1 for r in rows if any(g["code"] == "unmapped-medication" for g in r.get("gaps") or [])
    )
    forms: Counter[str] = Counter()
    held_by_form: Counter[str] = Counter()
    held_by_medication: Counter[str] = Counter()
    held_96372 = as_96372 = 0
    held_usd = 0.0
    unnamed = 0
    for r in rows:
        name = names.get(r["administration"])
        unnamed += name is None
        kind, word = dose_form(name)
        forms[kind] += 1
        if r["outcome"] == "held" and r.get("procedure") == "96372":
            held_by_medication[name or "(not found)"] += 1
        if kind != "non-injection" or r.get("procedure") != "96372":
            continue
        if r["outcome"] in ("held", "claim"):
            as_96372 += 1
        if r["outcome"] == "held":
            held_96372 += 1
            held_by_form[word] += 1
            held_usd += float(r.get("estimated_usd") or 0)
    coded = _coded_injectables(rows, found, rules)
    with_task = sum(1 for r in rows if r.get("task"))
    errors = report.get("errors") or []
    summary = report.get("summary") or {}
    return {
        "source": str(source),
        "files": source_files(source),
        "administrations": n,
        "outcomes": dict(outcomes),
        "procedures": dict(procedures.most_common()),
        "unmapped_medication": unmapped,
        "unmapped_medication_rate": round(unmapped / n, 4) if n else 0.0,
        "hcpcs": dict(Counter(r.get("hcpcs") or "none" for r in rows).most_common()),
        **coded,
        "dose_forms": dict(forms.most_common()),
        "medication_not_found": unnamed,
        "non_injection_held_96372": held_96372,
        "non_injection_held_96372_by_form": dict(held_by_form.most_common()),
        "non_injection_as_96372": as_96372,
        "held_96372_by_medication": dict(held_by_medication.most_common(15)),
        "non_injection_held_usd": round(held_usd, 2),
        "estimated_held_usd": summary.get("estimated_held_usd"),
        "estimated_billable_usd": summary.get("estimated_billable_usd"),
        "tasks": with_task,
        "tasks_per_100": round(100 * with_task / n, 1) if n else 0.0,
        "claims_written": claims_written,
        "tasks_written": tasks_written,
        "claim_without_claim": sum(
            1 for r in rows if r["outcome"] == "claim" and not r.get("claim")
        ),
        "no_claim_reasons": dict(
            Counter(r["no_claim_reason"] for r in rows if r.get("no_claim_reason")).most_common()
        ),
        "gaps": dict(gaps.most_common()),
        "record_errors": len(errors),
        "record_error_kinds": dict(Counter(_error_kind(e) for e in errors).most_common(10)),
        "exit_code": result.exit_code,
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "per_second": round(n / wall, 1) if wall and n else 0.0,
        "cpu_per_second": round(n / cpu, 1) if cpu and n else 0.0,
    }


def _coded_injectables(
    rows: list[dict], found: dict[str, tuple[str | None, list[str]]], rules
) -> dict[str, Any]:
    """The drug-code figures: of the administrations whose medication carries any code (not a CVX
    vaccine), whose name is not a non-injection dose form, and that got a drug line decision
    (outcome claim, held or not-96372), how many got a specific HCPCS: a drug line code that is not
    a not-otherwise-classified code (drugs.csv ``unit_status`` noc: J3490, J3590, J9999, ...) and no
    ``unmapped-medication`` gap (a match by name only is not by code)."""
    noc = {code for code, drug in rules.drugs.items() if drug.unit_status == "noc"}
    total = specific = 0
    short: Counter[str] = Counter()
    for r in rows:
        name, codes = found.get(r["administration"], (None, []))
        if not codes or any(c.startswith(CVX + "|") for c in codes):
            continue
        if dose_form(name)[0] == "non-injection":
            continue
        if r["outcome"] not in ("claim", "held", "not-96372"):
            continue
        total += 1
        gaps = {g["code"] for g in r.get("gaps") or []}
        hcpcs = r.get("hcpcs")
        if hcpcs and hcpcs not in noc and "unmapped-medication" not in gaps:
            specific += 1
        else:
            if "ambiguous-drug-code" in gaps:
                why = "salt unknown (ambiguous-drug-code)"
            elif hcpcs is None:
                why = f"no drug line ({r.get('procedure') or 'no procedure'})"
            elif hcpcs in noc:
                why = "NOC" + (" (unmapped)" if "unmapped-medication" in gaps else "")
            else:
                why = "by name only"
            short[f"{why}: {hcpcs or 'none'} {name} ({', '.join(codes)})"[:160]] += 1
    return {
        "coded_injectables": total,
        "coded_injectables_specific_hcpcs": specific,
        "coded_injectables_specific_rate": round(specific / total, 4) if total else 0.0,
        "coded_injectables_not_specific": dict(short.most_common(30)),
    }


def table(m: dict[str, Any]) -> str:
    n = m["administrations"] or 1
    pct = lambda k: f"{100 * k / n:5.1f}%"  # noqa: E731
    out = [
        f"source: {m['source']}  ({len(m['files'])} files)",
        f"{'administrations':<44}{m['administrations']:>8}",
    ]
    out += [f"  outcome {k:<34}{v:>8}  {pct(v)}" for k, v in m["outcomes"].items()]
    out += [f"  procedure {k:<32}{v:>8}  {pct(v)}" for k, v in m["procedures"].items()]
    out += [f"  dose form {k:<32}{v:>8}  {pct(v)}" for k, v in m["dose_forms"].items()]
    if m["medication_not_found"]:
        out.append(f"  {'drug name not found in SOURCE':<42}{m['medication_not_found']:>8}")
    out += [
        f"{'unmapped-medication':<44}{m['unmapped_medication']:>8}  {pct(m['unmapped_medication'])}",
        f"{'non-injections held as 96372':<44}{m['non_injection_held_96372']:>8}  {pct(m['non_injection_held_96372'])}",
    ]
    out += [f"  {k:<42}{v:>8}" for k, v in m["non_injection_held_96372_by_form"].items()]
    out.append("held as 96372, by drug (top 15):")
    out += [f"  {k[:60]:<60}{v:>8}" for k, v in m["held_96372_by_medication"].items()]
    out.append(
        f"{'coded injectables with a specific HCPCS':<44}"
        f"{m['coded_injectables_specific_hcpcs']:>8} / {m['coded_injectables']}"
        f"  {100 * m['coded_injectables_specific_rate']:5.1f}%"
    )
    out += [f"  {v:>5} x {k}" for k, v in m["coded_injectables_not_specific"].items()]
    out.append("drug line HCPCS: " + ", ".join(f"{k} {v}" for k, v in m["hcpcs"].items()))
    out += [
        f"{'non-injections held or claimed as 96372':<44}{m['non_injection_as_96372']:>8}",
        f"{'held $ (all / from non-injections)':<44}{m['estimated_held_usd'] or 0:>12,.2f} / "
        f"{m['non_injection_held_usd']:,.2f}",
        f"{'billable $':<44}{m['estimated_billable_usd'] or 0:>12,.2f}",
        f"{'Tasks per 100 administrations':<44}{m['tasks_per_100']:>8}",
        f"{'Claims / Tasks written':<44}{m['claims_written']:>8} / {m['tasks_written']}",
        f"{'outcome claim without a Claim':<44}{m['claim_without_claim']:>8}",
        "gaps:",
    ]
    out += [f"  {k:<42}{v:>8}  {pct(v)}" for k, v in m["gaps"].items()]
    if m["no_claim_reasons"]:
        out.append(
            "no Claim because: " + ", ".join(f"{k} {v}" for k, v in m["no_claim_reasons"].items())
        )
    out.append(f"{'record errors':<44}{m['record_errors']:>8}")
    out += [f"  {v:>5} x {k}" for k, v in m["record_error_kinds"].items()]
    out.append(
        f"{'run_folder':<44}{m['seconds']:>8.2f} s wall, {m['cpu_seconds']:.2f} s CPU: "
        f"{m['per_second']:,.0f}/s wall, {m['cpu_per_second']:,.0f}/s CPU"
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", help="a Bulk Data export folder or a folder of Bundle .json files")
    p.add_argument(
        "--keep", metavar="DIR", help="write Claim.ndjson, Task.ndjson and report.json here"
    )
    p.add_argument("--json-only", action="store_true", help="print only the JSON line")
    args = p.parse_args(argv)
    m = measure(args.source, keep=args.keep)
    print(json.dumps(m, sort_keys=True))
    if not args.json_only:
        print(table(m))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the package of this checkout
    sys.exit(main())
