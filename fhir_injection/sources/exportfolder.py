"""Read FHIR R4 resources from a Bulk Data export folder, as exporters really write them.

Every entry of the folder is listed in :attr:`ExportFolder.files` (the report's ``input``), read or
not, with its record count or the reason it was not read; nothing is skipped in silence.

- ``<Type>.ndjson``, ``<Type>.<n>.ndjson``, ``<n>.<Type>.ndjson`` (bulk-data-client's standard
  names) and ``<Type>.<word>.ndjson`` (SMART Fetch's ``.referenced`` and ``.searched`` files), each
  also gzip-compressed (``.gz``): read line by line when ``<Type>`` is a type the engine uses;
  **skipped unopened** when it is any other FHIR type (Observation, ExplanationOfBenefit...): the
  name decides, as Bulk Data puts one type per file; read line by line, every used type kept, when
  the name names no FHIR type (``export.ndjson``).
- ``.json`` files: a Bundle (its entries) or one resource. A single resource of a type never read
  (the kick-off ``Parameters`` of ``parameters.json``, which has no id) is listed, not checked.
- ``manifest.json`` (Bulk Data): not a record. Its ``output``/``deleted``/``error`` lists give the
  kind and type of files whose names do not say (bulk-data-client keeps the server's file names); a
  used type, deleted or error list with more files than the folder holds is reported (a download
  that did not finish); its ``transactionTime`` is listed.
- ``deleted/``: NDJSON of transaction Bundles whose entries are ``DELETE`` requests with
  ``request.url`` = ``Type/id`` (Bulk Data v2; SMART Fetch's ``deleted/Bundle.<Type>.ndjson.gz``,
  skipped unopened when ``<Type>`` is never read): :attr:`ExportFolder.deletions`.
- ``error/`` (and ``OperationOutcome*.ndjson``): OperationOutcomes the exporter wrote about what it
  could not export; every issue that is not a warning or information is reported as an error.
- ``log.ndjson`` (SMART Fetch's and bulk-data-client's log) and ``.metadata`` (SMART Fetch's):
  not records.
- Numbered run folders ``<n>.<name>/`` (SMART Fetch writes one per export run, ``001.2025-06-26``):
  each is read as a folder of its own, in number order, after the top level; top-level links into
  them (SMART Fetch's view of the current files) are not read twice. See :class:`ExportFolder` for
  how runs combine.
- Any other folder (an implementation guide's test cases, a converter's output: one folder per
  case holding Bundle ``.json`` files, folders within folders) is read the same way, recursively,
  after its parent's own files, as part of its parent's run; each file read is listed with its
  path. A folder reached a second time (a link) is listed, not read again; hidden folders
  (``.git``) are not read.

A bad line never stops the read: it becomes a :class:`RecordProblem` naming the file (its path in
the folder), line and field, and the rest goes on.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import OnProblem, RecordProblem
from ..fhir.resources import FHIR_TYPE_NAMES, MAPPING, USED_TYPES
from .exportnotes import Deletion, read_deleted, read_errors
from .ndjson import Record, read_json, read_ndjson

__all__ = ["ExportFolder", "MAX_LISTED"]

# <n>.<Type>, <Type>, <Type>.<n>, <Type>.referenced, Bundle.<Type>.<n> ... then .ndjson or .ndjson.gz
_NDJSON = re.compile(
    r"^(?:\d+\.)?(?P<type>[A-Za-z]+)(?P<tail>(?:\.[A-Za-z0-9_-]+)*)\.ndjson(?:\.gz)?$"
)


_RUN = re.compile(r"^(?P<number>\d+)\.(?P<name>.+)$")  # SMART Fetch: 001.2025-06-26, 002.nickname


MAX_LISTED = 10000  # files listed in the report; more are counted


def _shown(name: str) -> str:
    """A file name as the report can hold it: bytes that are not UTF-8 as ``\\xff``."""
    return name if name.isprintable() else os.fsencode(name).decode("utf-8", "backslashreplace")


class ExportFolder:
    """A Bulk Data export folder as exporters write it (see the module's description).

    :meth:`records` yields each used resource with how the spool may store it, its run (0 for
    the folder's own files, 1, 2... for its numbered run folders in number order) and the number of
    its file (the same record in two files is no conflict, see
    :meth:`~fhir_injection.sources.spool.Spool.add_all`). While it reads,
    :attr:`deletions` (used types only; the latest run's deletion of an id) and :attr:`files` fill.

    **Runs.** SMART Fetch writes each export run into its own numbered folder: a full export, or an
    incremental one (``--since``) holding only what changed, with ``deleted/`` listing what went
    away (for a full run SMART Fetch works this out itself, against the runs before). Read one after
    the other, each run over the ones before, they give the source as of the last run: so a later
    run's record of an id replaces an earlier run's whatever their ``meta`` says (an unchanged
    resource is in every full run, and vendors often send no ``versionId``), and a deletion removes
    records of earlier runs only (a record in the same run or a later one was written after it:
    a Bulk Data ``output`` holds what exists at the export's ``transactionTime``). Reading only the
    newest run would lose what an incremental run does not repeat.
    """

    def __init__(self, folder: str | Path, on_problem: OnProblem):
        self.root = Path(folder)
        if not self.root.is_dir():
            raise FileNotFoundError(f"source folder {self.root} does not exist")
        self._report = on_problem
        self.files: list[dict[str, Any]] = []
        self.files_not_listed = 0
        self.deletions: dict[tuple[str, str], Deletion] = {}
        self.runs: list[str] = []
        self.roles: Counter = Counter()  # files by role
        self._errors = 0  # problems reported while reading the file in hand
        self._file = 0  # the number of the file in hand
        self._kinds: dict[str, tuple[str, str]] = {}  # manifest: file name -> (kind, type)
        self._visited: set[Path] = set()  # folders read or to be read (resolved): no loops
        self.folders: list[str] = []  # nested folders read (not runs), by path in the folder
        #: the path in the folder of each file read, by its number (for notices naming both files)
        self.file_names: dict[int, str] = {}
        self.progress: Callable[[str], None] | None = None  # told of each folder read
        self._here: Counter = Counter()  # files of the folder in hand by role, for progress

    # -- what the report says -----------------------------------------------

    def _problem(self, problem: RecordProblem) -> None:
        self._errors += 1
        self._report(problem)

    def _list(self, rel: str, role: str, **about: Any) -> None:
        self.roles[role] += 1
        self._here[role] += 1
        entry = {"file": rel, "role": role, **{k: v for k, v in about.items() if v is not None}}
        if len(self.files) < MAX_LISTED:
            self.files.append(entry)
        else:
            self.files_not_listed += 1

    def listing(self) -> dict[str, Any]:
        """The report's ``input``: every file with its role (records, deleted, error, manifest,
        skipped), type, record count, errors, and why a skipped file was not read."""
        out: dict[str, Any] = {"files": self.files, "roles": dict(sorted(self.roles.items()))}
        if self.runs:
            out["runs"] = self.runs
        if self.folders:
            out["folders"] = self.folders
        if self.files_not_listed:
            out["files_not_listed"] = self.files_not_listed
        return out

    # -- reading --------------------------------------------------------------

    def records(self) -> Iterator[Record]:
        """Every used resource: the top level first, then each run folder in number order."""
        runs = self._run_folders()
        self._visited = {self.root.resolve(), *(path.resolve() for path in runs)}
        yield from self._folder(self.root, "", 0, runs)
        for number, path in enumerate(runs, start=1):
            self.runs.append(_shown(path.name))
            yield from self._folder(path, f"{_shown(path.name)}/", number, [])

    def _run_folders(self) -> list[Path]:
        found = []
        for path in self.root.iterdir():
            m = _RUN.match(path.name)
            if m and path.is_dir():
                found.append((int(m.group("number")), path.name, path))
        runs, seen = [], set()
        for _, _, path in sorted(found):  # a second name for one run folder is not a second run
            if path.resolve() not in seen:
                seen.add(path.resolve())
                runs.append(path)
        return runs

    def _entries(self, folder: Path, rel: str) -> list[Path]:
        try:
            return sorted(folder.iterdir())
        except OSError as exc:
            self._problem(
                RecordProblem(rel or ".", None, f"folder could not be read ({type(exc).__name__})")
            )
            return []

    def _folder(self, folder: Path, prefix: str, run: int, runs: list[Path]) -> Iterator[Record]:
        """One folder's files (name order), then its ``deleted/`` and ``error/``; then the manifest
        check."""
        entries = self._entries(folder, prefix)
        self._kinds = {}
        self._here = Counter()
        found: Counter = Counter()  # (kind, type) of the files here, for the manifest check
        manifest = folder / "manifest.json"
        listed = self._manifest(manifest, prefix + manifest.name) if manifest.is_file() else None
        in_runs = {p.resolve(): p.name for p in runs}  # where each run is -> its name
        subfolders, nested = [], []
        for path in entries:
            rel = prefix + _shown(path.name)
            if path.name == "manifest.json" and listed is not None:
                continue  # read above
            role, rtype, reason = self._role(path, in_runs, path in runs)
            if role == "subfolder":
                subfolders.append(path)
                continue
            if role == "nested":
                nested.append(path)
                continue
            if role == "run":
                continue  # read after this folder, as a run of its own
            found[(role if role in ("deleted", "error") else "output", rtype)] += 1
            yield from self._read(path, rel, role, rtype, reason, run)
        for sub in subfolders:
            for path in self._entries(sub, prefix + sub.name + "/"):
                rel = f"{prefix}{sub.name}/{_shown(path.name)}"
                role, rtype, reason = self._role_in(sub.name, path)
                found[(sub.name, None)] += 1
                yield from self._read(path, rel, role, rtype, reason, run)
        if listed:
            self._check_manifest(listed, found, prefix)
        self._said(prefix)
        for sub in nested:  # after this folder's files: the manifest's names are this folder's
            rel = prefix + _shown(sub.name)
            where = sub.resolve()
            if where in self._visited:
                self._list(
                    rel + "/", "skipped", reason="a folder already read (a link); not read again"
                )
                continue
            self._visited.add(where)
            self.folders.append(rel + "/")
            yield from self._folder(sub, rel + "/", run, [])

    def _said(self, prefix: str) -> None:
        """Tell the progress callback what one folder held (its path and counts: no content)."""
        if self.progress is not None:
            held = self._here
            counts = ", ".join(f"{n} {role}" for role, n in sorted(held.items())) or "no files"
            self.progress(f"read {prefix or './'}: {counts}")

    def _role(
        self, path: Path, in_runs: dict[Path, str], is_run: bool
    ) -> tuple[str, str | None, str | None]:
        """What a file of a folder's top is: (role, type, reason when it is not read)."""
        name = path.name
        m = _NDJSON.match(name)
        looks_like_data = m is not None or name.endswith(".json")
        if path.is_dir():
            if name in ("deleted", "error"):
                return "subfolder", None, None
            if is_run:
                return "run", None, None
            if in_runs and path.resolve() in in_runs:
                return "skipped", None, f"a link to {in_runs[path.resolve()]}/; read as that run"
            if looks_like_data:
                return "unreadable", None, None
            if name.startswith("."):
                return "skipped", None, "a hidden folder; not read"
            return "nested", None, None
        if not path.is_file():  # a symlink loop, a dangling link, a device
            if looks_like_data:
                return "unreadable", None, None
            return "skipped", None, "not a regular file; not read"
        if in_runs and path.is_symlink():  # SMART Fetch links the current files at the top
            target = path.resolve()
            for run, run_name in in_runs.items():
                if target.is_relative_to(run):
                    where = f"{run_name}/{target.relative_to(run).as_posix()}"
                    return "skipped", None, f"a link to {where}; read in its run folder"
        if name == ".metadata":
            return "skipped", None, "SMART Fetch's metadata; not records"
        kind, listed_type = self._kinds.get(name, (None, None))
        if kind in ("deleted", "error"):
            return kind, listed_type, None
        if m is not None:
            rtype = m.group("type")
            if rtype == "log" and not m.group("tail"):
                return (
                    "skipped",
                    None,
                    "an export tool's log (SMART Fetch, bulk-data-client); not records",
                )
            if rtype == "OperationOutcome":
                return "error", rtype, None
            return self._by_type(rtype if rtype in FHIR_TYPE_NAMES else listed_type)
        if name.endswith(".json"):
            return "json", None, None
        if kind == "output":
            return self._by_type(listed_type)
        return (
            "skipped",
            None,
            "not understood: not NDJSON (.ndjson, .ndjson.gz), a .json Bundle or resource, "
            "or a file an exporter writes; not read",
        )

    @staticmethod
    def _by_type(rtype: str | None) -> tuple[str, str | None, str | None]:
        if rtype is None:
            return "records", None, None  # the name says no type: each line says its own
        if rtype in USED_TYPES:
            return "records", rtype, None
        if rtype == "Bundle":
            return "skipped", rtype, "Bundles outside deleted/; not read"
        return "skipped", rtype, "a resource type this adapter never reads; not opened"

    def _role_in(self, sub: str, path: Path) -> tuple[str, str | None, str | None]:
        """What a file of ``deleted/`` or ``error/`` is."""
        if not path.is_file():
            return "skipped", None, f"not a regular file in {sub}/; not read"
        m = _NDJSON.match(path.name)
        if m is None and path.name not in self._kinds:
            return "skipped", None, f"not NDJSON (.ndjson, .ndjson.gz) in {sub}/; not read"
        if sub == "deleted" and m is not None:
            # SMART Fetch: Bundle.<Type>.ndjson.gz holds deletions of <Type> only
            named = [t for t in m.group("tail").split(".") if t in FHIR_TYPE_NAMES]
            if named and named[0] not in USED_TYPES:
                return (
                    "skipped",
                    named[0],
                    "deletions of a type this adapter never reads; not opened",
                )
        return sub, ("Bundle" if sub == "deleted" else "OperationOutcome"), None

    def _read(
        self, path: Path, rel: str, role: str, rtype: str | None, reason: str | None, run: int
    ) -> Iterator[Record]:
        self._errors = 0
        self._file += 1
        self.file_names[self._file] = rel
        if role == "unreadable":
            self._problem(
                RecordProblem(rel, None, "is not a regular file that can be read; skipped")
            )
            self._list(rel, "skipped", reason="not a regular file that can be read", errors=1)
        elif role == "skipped":
            self._list(rel, role, type=rtype, reason=reason)
        elif role == "records":
            kept = yield from read_ndjson(path, rel, rtype, self._problem, run, self._file)
            self._list(
                rel,
                role,
                type=rtype,
                records=kept,
                errors=self._errors,
                reason=None
                if rtype
                else "the name names no resource type: every line read, used types kept",
            )
        elif role == "json":
            note: dict = {}
            kept = 0
            for resource in read_json(path, self._problem, rel, note):
                kept += 1
                yield resource, False, run, self._file
            if note.get("manifest"):
                self._list(rel, "manifest")
            elif note.get("skipped"):
                self._list(rel, "skipped", reason=note["skipped"])
            else:
                self._list(rel, "records", records=kept, errors=self._errors)
        elif role == "deleted":
            self._read_deleted(path, rel, run)
        elif role == "error":
            self._read_errors(path, rel)

    def _read_deleted(self, path: Path, rel: str, run: int) -> None:
        bundles, by_type = read_deleted(path, rel, run, self._problem, self.deletions)
        self._list(
            rel,
            "deleted",
            records=bundles,
            deleted=dict(sorted(by_type.items())) or None,
            errors=self._errors,
        )

    def _read_errors(self, path: Path, rel: str) -> None:
        outcomes, notes = read_errors(path, rel, self._problem)
        self._list(rel, "error", records=outcomes, errors=self._errors, notes=notes or None)

    # -- the manifest -----------------------------------------------------------

    def _manifest(self, path: Path, rel: str) -> dict[str, Counter] | None:
        """Read ``manifest.json``: learn the kind and type of its files; count them by type."""
        self._errors = 0
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, RecursionError, OSError) as exc:
            data = exc
        if not isinstance(data, MAPPING):
            why = type(data).__name__ if isinstance(data, Exception) else "not a JSON object"
            self._problem(RecordProblem(rel, None, f"not a readable Bulk Data manifest ({why})"))
            self._list(rel, "manifest", errors=1)
            return {}
        listed: dict[str, Counter] = {}
        for kind in ("output", "deleted", "error"):
            items = data.get(kind) or []
            counts: Counter = Counter()
            for item in items if isinstance(items, list) else []:
                rtype = item.get("type") if isinstance(item, MAPPING) else None
                if not isinstance(rtype, str):
                    continue
                counts[rtype] += 1
                for key in ("url", "destination"):  # bulk-data-client keeps the URL's file name
                    value = item.get(key)
                    if isinstance(value, str) and value.rstrip("/"):
                        self._kinds.setdefault(value.rstrip("/").rsplit("/", 1)[-1], (kind, rtype))
            listed[kind] = counts
        when = data.get("transactionTime")
        self._list(
            rel,
            "manifest",
            transactionTime=when if isinstance(when, str) else None,
            **{kind: sum(c.values()) for kind, c in listed.items()},
        )
        return listed

    def _check_manifest(self, listed: dict[str, Counter], found: Counter, prefix: str) -> None:
        """A used type (or deleted, error) with fewer files here than the manifest lists: the
        download did not finish, and administrations may be missing."""
        for kind, counts in listed.items():
            for rtype, n in sorted(counts.items()):
                if kind == "output" and rtype not in USED_TYPES:
                    continue
                if kind == "output":
                    have = found[("output", rtype)]
                else:  # deleted/ and error/ files are not named by type
                    have = sum(v for (k, _), v in found.items() if k == kind)
                if have < n:
                    self._report(
                        RecordProblem(
                            f"{prefix}manifest.json",
                            kind,
                            f"lists {n} {rtype} file(s); {have} found: the download may be "
                            "incomplete",
                        )
                    )
