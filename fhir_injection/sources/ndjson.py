"""Read the files of an export folder: NDJSON (also gzip) line by line, small NDJSON files
(``deleted/``, ``error/``), and ``.json`` files (a Bundle's entries or one resource).

:class:`~fhir_injection.sources.exportfolder.ExportFolder` decides which file is what and calls these.
A bad line never stops the read: it becomes a :class:`RecordProblem` naming the file (its path in
the folder), line and field, and the rest goes on.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, cast

from .. import fastjson
from ..errors import OnProblem, RecordProblem
from ..fhir.resources import (
    FHIR_TYPE_NAMES,
    MAPPING,
    USED_TYPES,
    identify_entries,
    rewrite_references,
)
from .records import check_resource, check_shape

__all__ = ["MAX_LINE", "Record", "json_lines", "read_json", "read_ndjson"]

MAX_LINE = 50 * 1024 * 1024  # a single resource larger than this is refused, not parsed


def _open_binary(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    return path.open("rb")


def _not_json(raw: bytes, where: str, on_problem: OnProblem) -> Any:
    """A line orjson did not read, read by ``json``; :data:`_BAD` (reported) when it is not JSON."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        on_problem(RecordProblem(where, None, f"not UTF-8 text (byte {exc.start + 1}); skipped"))
        return _BAD
    try:
        return json.loads(line)
    except (ValueError, RecursionError) as exc:
        msg = (
            exc.msg
            if isinstance(exc, json.JSONDecodeError)
            else "nested too deeply"
            if isinstance(exc, RecursionError)
            else "a number is too long"
        )
        col = f" at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        on_problem(RecordProblem(where, None, f"not valid JSON: {msg}{col}"))
        return _BAD


_BAD = object()


Record = tuple[dict, bytes | bool, int, int]  # a resource, how the spool may store it, run, file


def _file_failed(rel: str, number: int, exc: BaseException, on_problem: OnProblem) -> None:
    kind = "not valid gzip" if rel.endswith(".gz") else "could not be read"
    on_problem(
        RecordProblem(
            f"{rel}:{number + 1}",
            None,
            f"file {kind} ({type(exc).__name__}); the rest of this file is skipped",
        )
    )


def read_ndjson(
    path: Path,
    rel: str,
    expected_type: str | None,
    on_problem: OnProblem,
    run: int = 0,
    file: int = 0,
) -> Generator[Record, None, int]:
    """Line by line, in bytes: a line that is not UTF-8 or not JSON is reported alone.

    Yields (resource, how to store it, run, file): how is the line itself when orjson read it (it
    reads it again the same), else whether the line is shallow
    (:func:`~fhir_injection.fastjson.read_line`); run and file are passed through for the spool.
    Returns how many resources it yielded.
    """
    number = 0
    kept = 0
    try:
        with _open_binary(path) as fh:
            for number, raw in enumerate(fh, start=1):
                if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]  # a UTF-8 byte-order mark before the first record
                if not raw.strip():
                    continue
                where = f"{rel}:{number}"
                if len(raw) > MAX_LINE:
                    on_problem(
                        RecordProblem(where, None, f"line longer than {MAX_LINE} bytes; skipped")
                    )
                    continue
                resource, shallow = fastjson.read_line(raw)
                keep: bytes | bool = raw
                if resource is fastjson.SLOW:
                    keep = shallow
                    resource = _not_json(raw, where, on_problem)
                    if resource is _BAD:
                        continue
                problem = check_resource(resource, where, expected_type) or check_shape(
                    resource, where
                )
                if problem:
                    on_problem(problem)
                    continue
                if resource["resourceType"] in USED_TYPES:
                    kept += 1
                    yield resource, keep, run, file
    except (OSError, EOFError, zlib.error) as exc:
        _file_failed(rel, number, exc, on_problem)
    return kept


def json_lines(path: Path, rel: str, on_problem: OnProblem) -> Iterator[tuple[str, Any]]:
    """(where, value) of every line of a small NDJSON file (deleted/, error/): bad lines reported."""
    number = 0
    try:
        with _open_binary(path) as fh:
            for number, raw in enumerate(fh, start=1):
                if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                if not raw.strip():
                    continue
                where = f"{rel}:{number}"
                if len(raw) > MAX_LINE:
                    on_problem(
                        RecordProblem(where, None, f"line longer than {MAX_LINE} bytes; skipped")
                    )
                    continue
                value = _not_json(raw, where, on_problem)
                if value is not _BAD:
                    yield where, value
    except (OSError, EOFError, zlib.error) as exc:
        _file_failed(rel, number, exc, on_problem)


def read_json(
    path: Path, on_problem: OnProblem, rel: str | None = None, note: dict | None = None
) -> Iterator[dict]:
    """A Bundle's entries, or the one resource of a ``.json`` file. ``note`` learns why nothing was
    read when the file is not records: ``{"skipped": reason}`` or ``{"manifest": True}``."""
    name = rel or path.name
    note = {} if note is None else note
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError, OSError) as exc:
        on_problem(RecordProblem(name, None, f"not a readable JSON file ({type(exc).__name__})"))
        return
    if not isinstance(data, MAPPING):
        on_problem(RecordProblem(name, None, "expected a JSON object (a Bundle or a resource)"))
        return
    rtype = data.get("resourceType")
    if rtype is None and "transactionTime" in data and "output" in data:
        note["manifest"] = True  # a Bulk Data manifest under another name: not a record
        return
    if rtype in FHIR_TYPE_NAMES and rtype not in USED_TYPES and rtype != "Bundle":
        note["skipped"] = f"a {rtype} resource, a type this adapter never reads; not checked"
        return
    if rtype != "Bundle":
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
