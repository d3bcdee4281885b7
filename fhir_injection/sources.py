"""Read FHIR R4 resources from a Bulk Data export folder.

Layout: ``<Type>.ndjson``, ``<Type>.<n>.ndjson``, gzip-compressed ``.ndjson.gz``,
and FHIR Bundle (or single-resource) ``.json`` files. Only the types the engine
uses are kept. A bad line never stops the read: it becomes a
:class:`RecordProblem` naming the file, line and field, and the rest goes on.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping
from typing import Callable, Iterator

from . import fastjson
from .model import MAPPING

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


_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{0,63}")


def check_resource(resource, where: str, expected_type: str | None = None) -> RecordProblem | None:
    """The minimum a resource needs before anything indexes it: an object with a type and a valid id."""
    if not isinstance(resource, MAPPING):
        return RecordProblem(where, None, f"expected a JSON object, got {type(resource).__name__}")
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        return RecordProblem(where, "resourceType", "missing or not a string")
    if not _TYPE_NAME.fullmatch(rtype):  # never echo record content: it may be anything, even a name
        return RecordProblem(where, "resourceType", "is not a FHIR resource type name; the record is skipped")
    if expected_type in USED_TYPES and rtype != expected_type:
        return RecordProblem(where, "resourceType",
                             f"is '{rtype}' in a file of {expected_type} resources; the record is skipped")
    rid = resource.get("id")
    if not isinstance(rid, str) or not _ID.fullmatch(rid):
        return RecordProblem(f"{where} ({rtype})", "id", "missing, not a string, or not a valid FHIR id")
    return None


# What the engine reads of a MedicationAdministration, and the JSON type each must have.
_OBJECT, _LIST, _STRING = "an object", "a list", "a string"
_MA_SHAPE = (
    ("status", _STRING), ("effectiveDateTime", _STRING), ("effectivePeriod", _OBJECT), ("subject", _OBJECT),
    ("context", _OBJECT), ("medicationCodeableConcept", _OBJECT), ("medicationReference", _OBJECT),
    ("dosage", _OBJECT), ("meta", _OBJECT), ("meta.versionId", _STRING), ("identifier", _LIST),
    ("performer", _LIST), ("reasonCode", _LIST), ("reasonReference", _LIST), ("contained", _LIST),
    ("medicationCodeableConcept.coding", _LIST), ("dosage.route", _OBJECT), ("dosage.route.coding", _LIST),
    ("dosage.site", _OBJECT), ("dosage.site.coding", _LIST), ("dosage.dose", _OBJECT),
)
_TYPES = {_OBJECT: MAPPING, _LIST: list, _STRING: str}
_MA_PATHS = tuple((tuple(path.split(".")), _TYPES[kind], path, kind) for path, kind in _MA_SHAPE)
_EXACT = {_OBJECT: dict, _LIST: list, _STRING: str}
_MA_TOP = tuple((path, _EXACT[kind]) for path, kind in _MA_SHAPE if "." not in path)
_MA_INNER = tuple((tuple(path.split(".")), _EXACT[kind]) for path, kind in _MA_SHAPE if "." in path)


def _shape_is_right(resource: dict) -> bool:
    """The quick yes of :func:`check_shape` for the usual record, made of dicts and lists only: every
    element present has its JSON type and the dose value is a finite number. A no (or anything
    unusual, such as another kind of mapping) is left to check_shape's full, ordered walk."""
    get = resource.get
    for name, exact in _MA_TOP:
        value = get(name)
        if value is not None and type(value) is not exact:
            return False
    for parts, exact in _MA_INNER:
        value = resource
        for part in parts:
            value = value.get(part) if type(value) is dict else None
        if value is not None and type(value) is not exact:
            return False
    dose = get("dosage")
    dose = dose.get("dose") if type(dose) is dict else None
    value = dose.get("value") if type(dose) is dict else None
    return value is None or type(value) is int or (type(value) is float and math.isfinite(value))


def check_shape(resource: Mapping, where: str) -> RecordProblem | None:
    """A MedicationAdministration whose elements have the wrong JSON type is refused, naming the element.

    Wrong types are not FHIR: the record is reported rather than decided on a guess.
    """
    if resource.get("resourceType") != "MedicationAdministration":
        return None
    if type(resource) is dict and _shape_is_right(resource):
        return None
    for parts, types, path, kind in _MA_PATHS:
        value = resource
        for part in parts:
            value = value.get(part) if isinstance(value, MAPPING) else None
        if value is not None and not isinstance(value, types):
            return RecordProblem(f"{where} (MedicationAdministration/{resource.get('id')})",
                                 f"MedicationAdministration.{path}",
                                 f"is {type(value).__name__}, not {kind}; the record is skipped")
    dose = resource.get("dosage", {}).get("dose") if isinstance(resource.get("dosage"), MAPPING) else None
    value = dose.get("value") if isinstance(dose, MAPPING) else None
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or (isinstance(value, float) and not math.isfinite(value))):
        return RecordProblem(f"{where} (MedicationAdministration/{resource.get('id')})",
                             "MedicationAdministration.dosage.dose.value",
                             "is not a finite JSON number; the record is skipped")
    return None


def _open_binary(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    return path.open("rb")


def _read_ndjson(path: Path, expected_type: str, on_problem: OnProblem) -> Iterator[tuple[dict, bytes | bool]]:
    """Line by line, in bytes: a line that is not UTF-8 or not JSON is reported alone.

    Yields (resource, how to store it): the line itself when orjson read it (it reads it again the
    same), else whether the line is shallow (:func:`~fhir_injection.fastjson.read_line`).
    """
    name = path.name
    number = 0
    try:
        with _open_binary(path) as fh:
            for number, raw in enumerate(fh, start=1):
                if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]  # a UTF-8 byte-order mark before the first record
                if not raw.strip():
                    continue
                where = f"{name}:{number}"
                if len(raw) > MAX_LINE:
                    on_problem(RecordProblem(where, None, f"line longer than {MAX_LINE} bytes; skipped"))
                    continue
                resource, shallow = fastjson.read_line(raw)
                keep: bytes | bool = raw
                if resource is fastjson.SLOW:
                    keep = shallow
                    try:
                        line = raw.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        on_problem(RecordProblem(where, None, f"not UTF-8 text (byte {exc.start + 1}); skipped"))
                        continue
                    try:
                        resource = json.loads(line)
                    except (ValueError, RecursionError) as exc:
                        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else \
                            "nested too deeply" if isinstance(exc, RecursionError) else "a number is too long"
                        col = f" at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
                        on_problem(RecordProblem(where, None, f"not valid JSON: {msg}{col}"))
                        continue
                problem = check_resource(resource, where, expected_type) or check_shape(resource, where)
                if problem:
                    on_problem(problem)
                    continue
                if resource["resourceType"] in USED_TYPES:
                    yield resource, keep
    except (OSError, EOFError, zlib.error) as exc:
        kind = "not valid gzip" if name.endswith(".gz") else "could not be read"
        on_problem(RecordProblem(f"{name}:{number + 1}", None, f"file {kind} ({type(exc).__name__}); "
                                 "the rest of this file is skipped"))


def _read_json(path: Path, on_problem: OnProblem) -> Iterator[dict]:
    name = path.name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError, OSError) as exc:
        on_problem(RecordProblem(name, None, f"not a readable JSON file ({type(exc).__name__})"))
        return
    if not isinstance(data, MAPPING):
        on_problem(RecordProblem(name, None, "expected a JSON object (a Bundle or a resource)"))
        return
    if data.get("resourceType") != "Bundle":
        problem = check_resource(data, name) or check_shape(data, name)
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
        resource = entry.get("resource") if isinstance(entry, MAPPING) else None
        if resource is None:
            on_problem(RecordProblem(where, "resource", "entry has no resource"))
            continue
        problem = check_resource(resource, where) or check_shape(resource, where)
        if problem:
            on_problem(problem)
        elif resource["resourceType"] in USED_TYPES:
            yield resource


def iter_folder(folder: str | Path, on_problem: OnProblem) -> Iterator[dict]:
    """Every used resource in ``folder``, file by file in name order (deterministic)."""
    for resource, _ in iter_folder_checked(folder, on_problem):
        yield resource


def iter_folder_checked(folder: str | Path, on_problem: OnProblem) -> Iterator[tuple[dict, bytes | bool]]:
    """As :func:`iter_folder`, each resource with how :meth:`~fhir_injection.store.Spool.add_all` may
    store it: its line (bytes) when orjson read that exactly, else whether the line was shallow (few
    brackets; False for Bundle entries, which were not measured)."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"source folder {root} does not exist")
    for path in sorted(root.iterdir()):
        match = _FILE.match(path.name)
        if not match and path.suffix != ".json":
            continue
        if not path.is_file():  # a directory, a symlink loop, a dangling link, a device
            on_problem(RecordProblem(path.name, None, "is not a regular file that can be read; skipped"))
        elif match:
            yield from _read_ndjson(path, match.group("type"), on_problem)
        else:
            for resource in _read_json(path, on_problem):
                yield resource, False
