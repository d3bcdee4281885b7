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
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from .. import fastjson
from ..decision.model import MAPPING
from ..errors import OnProblem, RecordProblem
from ..fhir.resources import USED_TYPES, identify_entries, rewrite_references
from .records import check_resource, check_shape

_FILE = re.compile(r"^(?P<type>[A-Za-z]+)(\.\d+)?\.ndjson(\.gz)?$")
MAX_LINE = 50 * 1024 * 1024  # a single resource larger than this is refused, not parsed


def _open_binary(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    return path.open("rb")


def _read_ndjson(
    path: Path, expected_type: str, on_problem: OnProblem
) -> Iterator[tuple[dict, bytes | bool]]:
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
                    on_problem(
                        RecordProblem(where, None, f"line longer than {MAX_LINE} bytes; skipped")
                    )
                    continue
                resource, shallow = fastjson.read_line(raw)
                keep: bytes | bool = raw
                if resource is fastjson.SLOW:
                    keep = shallow
                    try:
                        line = raw.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        on_problem(
                            RecordProblem(
                                where, None, f"not UTF-8 text (byte {exc.start + 1}); skipped"
                            )
                        )
                        continue
                    try:
                        resource = json.loads(line)
                    except (ValueError, RecursionError) as exc:
                        msg = (
                            exc.msg
                            if isinstance(exc, json.JSONDecodeError)
                            else "nested too deeply"
                            if isinstance(exc, RecursionError)
                            else "a number is too long"
                        )
                        col = (
                            f" at column {exc.colno}"
                            if isinstance(exc, json.JSONDecodeError)
                            else ""
                        )
                        on_problem(RecordProblem(where, None, f"not valid JSON: {msg}{col}"))
                        continue
                problem = check_resource(resource, where, expected_type) or check_shape(
                    resource, where
                )
                if problem:
                    on_problem(problem)
                    continue
                if resource["resourceType"] in USED_TYPES:
                    yield resource, keep
    except (OSError, EOFError, zlib.error) as exc:
        kind = "not valid gzip" if name.endswith(".gz") else "could not be read"
        on_problem(
            RecordProblem(
                f"{name}:{number + 1}",
                None,
                f"file {kind} ({type(exc).__name__}); the rest of this file is skipped",
            )
        )


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
            yield cast(dict, data)  # json.loads makes every JSON object a dict
        return
    entries = data.get("entry")
    if entries is not None and not isinstance(entries, list):
        on_problem(RecordProblem(name, "Bundle.entry", "not a list"))
        return
    entries = entries or []
    # Entries identified only by fullUrl (a transaction's POSTs) get their id from it, and every
    # reference that names an entry's fullUrl becomes Type/id: what is spooled and decided only
    # ever holds Type/id.
    targets = identify_entries(entries)
    for index, entry in enumerate(entries):
        where = f"{name} entry[{index}]"
        resource = entry.get("resource") if isinstance(entry, MAPPING) else None
        if resource is None:
            if _request_method(entry) != "DELETE":  # a DELETE names a resource, carries none
                on_problem(RecordProblem(where, "resource", "entry has no resource"))
            continue
        if _search_mode(entry) == "outcome":  # the server's message about the search, not a record
            continue
        problem = check_resource(resource, where) or check_shape(resource, where)
        if problem:
            on_problem(problem)
        elif resource["resourceType"] in USED_TYPES:
            if targets:
                rewrite_references(resource, targets)
            yield resource


def _request_method(entry: object) -> object:
    request = entry.get("request") if isinstance(entry, MAPPING) else None
    return request.get("method") if isinstance(request, MAPPING) else None


def _search_mode(entry: object) -> object:
    search = entry.get("search") if isinstance(entry, MAPPING) else None
    return search.get("mode") if isinstance(search, MAPPING) else None


def iter_folder(folder: str | Path, on_problem: OnProblem) -> Iterator[dict]:
    """Every used resource in ``folder``, file by file in name order (deterministic)."""
    for resource, _ in iter_folder_checked(folder, on_problem):
        yield resource


def iter_folder_checked(
    folder: str | Path, on_problem: OnProblem
) -> Iterator[tuple[dict, bytes | bool]]:
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
            on_problem(
                RecordProblem(path.name, None, "is not a regular file that can be read; skipped")
            )
        elif match:
            yield from _read_ndjson(path, match.group("type"), on_problem)
        else:
            for resource in _read_json(path, on_problem):
                yield resource, False
