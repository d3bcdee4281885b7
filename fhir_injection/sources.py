"""Read FHIR R4 resources from a Bulk Data export folder.

Layout: ``<Type>.ndjson``, ``<Type>.<n>.ndjson``, gzip-compressed ``.ndjson.gz``,
and FHIR Bundle (or single-resource) ``.json`` files. Only the types the engine
uses are kept. A bad line never stops the read: it becomes a
:class:`RecordProblem` naming the file, line and field, and the rest goes on.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping

USED_TYPES = frozenset({
    "MedicationAdministration", "Encounter", "Consent", "Coverage", "Patient", "Practitioner",
    "PractitionerRole", "Organization", "Condition", "Medication", "ChargeItem",
})
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_FILE = re.compile(r"^(?P<type>[A-Za-z]+)(\.\d+)?\.ndjson(\.gz)?$")
MAX_LINE = 50 * 1024 * 1024  # a single resource larger than this is refused, not parsed


@dataclass(frozen=True)
class RecordProblem:
    """A record that could not be used. ``record`` is ``file:line`` or ``Type/id``."""

    record: str
    field: str | None
    message: str

    def as_dict(self) -> dict:
        return {"record": self.record, "field": self.field, "message": self.message}

    def __str__(self) -> str:
        return f"{self.record}{' ' + self.field if self.field else ''}: {self.message}"


OnProblem = Callable[[RecordProblem], None]


def check_resource(resource, where: str, expected_type: str | None = None) -> RecordProblem | None:
    """The minimum a resource needs before anything indexes it: an object with a type and a valid id."""
    if not isinstance(resource, Mapping):
        return RecordProblem(where, None, f"expected a JSON object, got {type(resource).__name__}")
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        return RecordProblem(where, "resourceType", "missing or not a string")
    if expected_type in USED_TYPES and rtype != expected_type:
        return RecordProblem(where, "resourceType",
                             f"is '{rtype}' in a file of {expected_type} resources; the record is skipped")
    rid = resource.get("id")
    if not isinstance(rid, str) or not _ID.match(rid):
        return RecordProblem(f"{where} ({rtype})", "id", "missing, not a string, or not a valid FHIR id")
    return None


def _open_text(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="strict")
    return path.open("r", encoding="utf-8", errors="strict")


def _read_ndjson(path: Path, expected_type: str, on_problem: OnProblem) -> Iterator[dict]:
    name = path.name
    number = 0
    try:
        with _open_text(path) as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{name}:{number}"
                if len(line) > MAX_LINE:
                    on_problem(RecordProblem(where, None, f"line longer than {MAX_LINE} bytes; skipped"))
                    continue
                try:
                    resource = json.loads(line)
                except (json.JSONDecodeError, RecursionError) as exc:
                    msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                    col = f" at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
                    on_problem(RecordProblem(where, None, f"not valid JSON: {msg}{col}"))
                    continue
                problem = check_resource(resource, where, expected_type)
                if problem:
                    on_problem(problem)
                    continue
                if resource["resourceType"] in USED_TYPES:
                    yield resource
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        kind = "not valid gzip" if isinstance(exc, (OSError, EOFError, zlib.error)) and name.endswith(".gz") \
            else "not readable UTF-8 text" if isinstance(exc, UnicodeDecodeError) else "could not be read"
        on_problem(RecordProblem(f"{name}:{number + 1}", None, f"file {kind} ({type(exc).__name__}); "
                                 "the rest of this file is skipped"))


def _read_json(path: Path, on_problem: OnProblem) -> Iterator[dict]:
    name = path.name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, OSError) as exc:
        on_problem(RecordProblem(name, None, f"not a readable JSON file ({type(exc).__name__})"))
        return
    if not isinstance(data, Mapping):
        on_problem(RecordProblem(name, None, "expected a JSON object (a Bundle or a resource)"))
        return
    if data.get("resourceType") != "Bundle":
        problem = check_resource(data, name)
        if problem:
            on_problem(problem)
        elif data["resourceType"] in USED_TYPES:
            yield data
        return
    entries = data.get("entry")
    if entries is not None and not isinstance(entries, list):
        on_problem(RecordProblem(name, "Bundle.entry", "not a list"))
        return
    for index, entry in enumerate(entries or []):
        where = f"{name} entry[{index}]"
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if resource is None:
            on_problem(RecordProblem(where, "resource", "entry has no resource"))
            continue
        problem = check_resource(resource, where)
        if problem:
            on_problem(problem)
        elif resource["resourceType"] in USED_TYPES:
            yield resource


def iter_folder(folder: str | Path, on_problem: OnProblem) -> Iterator[dict]:
    """Every used resource in ``folder``, file by file in name order (deterministic)."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"source folder {root} does not exist")
    for path in sorted(p for p in root.iterdir() if p.is_file()):
        match = _FILE.match(path.name)
        if match:
            yield from _read_ndjson(path, match.group("type"), on_problem)
        elif path.suffix == ".json":
            yield from _read_json(path, on_problem)
