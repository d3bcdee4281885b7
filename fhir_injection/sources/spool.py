"""A disk-backed spool of resources, so memory does not grow with the input.

A Bulk export lists resources by type, not by patient; the same-day rules need a
patient's administrations together. The spool (SQLite in a temporary file) takes
every resource once, then hands out one patient at a time: that patient's
administrations and a :class:`~fhir_injection.context.Context` that resolves
references lazily through a small cache.
"""

from __future__ import annotations

import contextlib
import json
import marshal
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from typing import cast

from .. import fastjson
from ..decision.context import Context, practitioner_roles
from ..errors import Notice, OnNotice, RecordProblem
from ..fhir.resources import MAPPING, identifiers_of, patient_id_of

__all__ = ["Spool"]

_SEEN_BITS = 1 << 24  # the add_all filter of ids already stored: 2 MiB
_BATCH = 1000
_MEMO_SIZE = 2048  # Context.memo entries kept across patients (a network's clinicians and sites)
_INSERT = "INSERT INTO res VALUES (?,?,?,?,?,?,?,?)"
_REPLACE = "INSERT OR REPLACE INTO res VALUES (?,?,?,?,?,?,?,?)"
_MISSING = object()
_MARSHAL = b"M"  # before a marshal body; an export line starts with "{" or white space


def _load(body: bytes | str):
    """A stored body: a line orjson read (bytes), marshal bytes after a mark, or JSON text (str)."""
    if type(body) is str:
        return json.loads(body)
    if body[0] == _MARSHAL[0]:
        return marshal.loads(memoryview(cast(bytes, body))[1:])  # not str: that case returned above
    return fastjson.orjson.loads(body)


def _same(stored: bytes | str, body: bytes | str) -> bool:
    """Whether a stored body and a new one hold the same resource."""
    if type(stored) is bytes and type(body) is bytes and stored.strip() == body.strip():
        return True
    return bool(_load(stored) == _load(body))


def _content(body: bytes | str) -> object:
    """A stored body without ``meta.versionId`` and ``meta.lastUpdated`` (an empty ``meta`` left out):
    what two copies of one resource must share to be the same record."""
    resource = _load(body)
    meta = resource.get("meta") if isinstance(resource, dict) else None
    if isinstance(meta, dict) and ("versionId" in meta or "lastUpdated" in meta):
        rest = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")}
        resource = {k: v for k, v in resource.items() if k != "meta"}
        if rest:
            resource["meta"] = rest
    return resource


def _version(resource: Mapping) -> tuple:
    meta = m if isinstance(m := resource.get("meta"), MAPPING) else {}
    v = meta.get("versionId")
    number = int(v) if isinstance(v, str) and v.isdigit() else -1
    updated = meta.get("lastUpdated") if isinstance(meta.get("lastUpdated"), str) else ""
    return number, updated


class Spool:
    """Resources by type/id and by patient, in a temporary SQLite file."""

    def __init__(self, directory: str | None = None, cache_size: int = 4096):
        fd, self.path = tempfile.mkstemp(prefix="fhir-injection-", suffix=".sqlite", dir=directory)
        os.close(fd)
        self.db = sqlite3.connect(self.path)
        self.db.executescript(
            "PRAGMA page_size=16384; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA temp_store=FILE;"
            "CREATE TABLE res (type TEXT, id TEXT, patient TEXT, v INTEGER, updated TEXT, body TEXT,"
            " run INTEGER, file INTEGER, PRIMARY KEY (type, id)) WITHOUT ROWID;"
        )
        self._cache: dict[tuple[str, str], Mapping | None] = {}
        self._cache_size = cache_size
        self.counts: dict[str, int] = {}
        self._indexed: set[str] = set()  # types whose identifiers are in the ident table
        self._found: dict[tuple[str, tuple[str | None, str]], tuple[str, ...]] = {}
        # a practitioner key -> its PractitionerRoles' ids, built when roles_of first asks
        self._roles: dict[str, tuple[str, ...]] | None = None
        # what the decision derives from shared resources (Context.memo), for every patient's Context
        self._memo: dict = {}

    def close(self) -> None:
        self.db.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def add_all(self, records, on_problem, on_notice: OnNotice | None = None, names=None) -> None:
        """Store every resource; of two with one id keep the newer and say so when unclear.

        ``records`` are resources, (resource, how) pairs as
        :func:`~fhir_injection.sources.iter_folder_checked` gives them, or (resource, how, run,
        file) as :meth:`~fhir_injection.sources.exportfolder.ExportFolder.records` does: a line that orjson
        read is stored as it is (orjson reads it again the same), a shallow resource with marshal,
        any other as JSON text, and one too deep for that is reported. Rows go in by batches; an id
        that may have been seen before (a fixed-size bit filter says so, whatever the input's size)
        waits for the batch and is checked against the stored row.

        Of two records of one id, a later run's wins (runs are exports taken one after the other);
        within a run the higher ``meta.versionId`` (then ``lastUpdated``) wins, and two records
        with the same version are reported (the later one is used) unless they are the same
        record in two files: SMART Fetch may write a resource in both its ``.referenced`` and
        ``.searched`` files, and nothing depends on which copy is used.

        With ``on_notice`` (and ``names``: a file's path by its number), copies in two files of one
        run are compared without ``meta.versionId``/``meta.lastUpdated``: the same record (an
        NDJSON line and a Bundle entry of it) is read once, in silence; copies that really differ
        are a :class:`~fhir_injection.errors.Notice` naming the resource and both files (the newer
        version, else the later file, is used), not a record error.
        """
        self._roles = None  # new roles may name a Practitioner: read them again when asked
        self._memo = {}  # and what was derived from the resources before may no longer hold
        cur = self.db.cursor()
        cur.execute("BEGIN")
        seen = bytearray(_SEEN_BITS >> 3)
        mask = _SEEN_BITS - 1
        batch: list[tuple] = []
        counts = self.counts
        for record in records:
            if type(record) is tuple:
                resource, how = record[0], record[1]
                run, file = (record[2], record[3]) if len(record) > 2 else (0, 0)
            else:
                resource, how, run, file = record, False, 0, 0
            rtype, rid = resource["resourceType"], resource["id"]
            body: bytes | str
            if type(how) is bytes:
                body = how
            elif how:
                body = _MARSHAL + marshal.dumps(resource)
            else:
                try:
                    body = json.dumps(resource, separators=(",", ":"))
                except (RecursionError, ValueError, TypeError):
                    on_problem(
                        RecordProblem(f"{rtype}/{rid}", None, "nested too deeply to store; skipped")
                    )
                    continue
            version = _version(resource)
            # a Patient is filed under itself, so that for_patient brings it with the rest
            pid = rid if rtype == "Patient" else patient_id_of(resource)
            row = (rtype, rid, pid, version[0], version[1], body, run, file)
            slot = hash((rtype, rid)) & mask
            if not seen[slot >> 3] & (1 << (slot & 7)):
                seen[slot >> 3] |= 1 << (slot & 7)
                counts[rtype] = counts.get(rtype, 0) + 1
                batch.append(row)
                if len(batch) >= _BATCH:
                    cur.executemany(_INSERT, batch)
                    batch.clear()
                continue
            if batch:
                cur.executemany(_INSERT, batch)
                batch.clear()
            self._add_seen(cur, row, version, on_problem, on_notice, names)
        if batch:
            cur.executemany(_INSERT, batch)
        cur.execute("COMMIT")
        cur.execute("CREATE INDEX IF NOT EXISTS by_patient ON res (patient, type)")

    def _add_seen(
        self,
        cur: sqlite3.Cursor,
        row: tuple,
        version: tuple,
        on_problem,
        on_notice=None,
        names=None,
    ) -> None:
        """:meth:`add_all` for an id the filter may have seen: checked against the stored row.

        Out of the loop, as only a repeated id (or the filter's rare false alarm) comes here; the
        loop keeps every step a new id takes inline, as it runs once per record.
        """
        rtype, rid, body, run, file = row[0], row[1], row[5], row[6], row[7]
        old = cur.execute(
            "SELECT run, v, updated, body, file FROM res WHERE type=? AND id=?", (rtype, rid)
        ).fetchone()
        if old is not None:
            if old[0] > run:  # an earlier run's record never replaces a later run's
                return
            if old[0] < run:
                pass  # a later run's record replaces an earlier run's
            elif on_notice is not None and old[4] != file:
                if not self._other_copy(old, row, version, on_notice, names or {}):
                    return
            elif old[1:3] == version:
                if old[4] != file and _same(old[3], body):
                    return
                on_problem(
                    RecordProblem(
                        f"{rtype}/{rid}",
                        "id",
                        "appears more than once with the same version; the later record is used",
                    )
                )
            elif old[1:3] > version:
                return
        else:
            self.counts[rtype] = self.counts.get(rtype, 0) + 1
        cur.execute(_REPLACE, row)

    @staticmethod
    def _other_copy(old: tuple, row: tuple, version: tuple, on_notice: OnNotice, names) -> bool:
        """A copy, in another file of the same run, of a resource already stored (``old``: run,
        version, updated, body, file): whether it replaces the stored one. The newer version, else
        the later file, is used; a notice only when the two differ besides their meta version."""
        newer = version > old[1:3]
        used_new = newer or version == old[1:3]  # newer, or the same version: the later file
        if _same(old[3], row[5]) or _content(old[3]) == _content(row[5]):
            return used_new and newer  # one record: a newer version's copy is kept, else the first
        first = names.get(old[4], f"file {old[4]}")
        second = names.get(row[7], f"file {row[7]}")
        on_notice(
            Notice(
                f"{row[0]}/{row[1]}",
                (first, second),
                f"is in {first} and in {second} with different content (besides "
                f"meta.versionId/lastUpdated); the copy in {second if used_new else first} is used",
            )
        )
        return used_new

    def apply_deletions(self, deletions: Iterable) -> list[tuple[str, str | None, str]]:
        """Remove what an export's ``deleted/`` files delete; the deleted administrations.

        ``deletions`` are :class:`~fhir_injection.sources.exportnotes.Deletion`. A deletion removes the
        record of its type and id when that record came from an earlier run (a record of the same
        run or a later one was written after the deletion: see
        :class:`~fhir_injection.sources.exportfolder.ExportFolder`). Returns, for each deleted
        MedicationAdministration, its id, its patient's id when a record of it was here, and where
        the deletion was read: these are voids.
        """
        voids = []
        self._roles = None
        self._memo = {}
        cur = self.db.cursor()
        for d in sorted(deletions, key=lambda d: (d.type, d.id)):
            row = cur.execute(
                "SELECT run, patient FROM res WHERE type=? AND id=?", (d.type, d.id)
            ).fetchone()
            if row is not None:
                if row[0] >= d.run:
                    continue
                cur.execute("DELETE FROM res WHERE type=? AND id=?", (d.type, d.id))
                self.counts[d.type] -= 1
                self._cache.pop((d.type, d.id), None)
            if d.type == "MedicationAdministration":
                voids.append((d.id, row[1] if row else None, d.where))
        return voids

    def get(self, rtype: str, rid: str) -> Mapping | None:
        key = (rtype, rid)
        value = self._cache.get(key, _MISSING)
        if value is not _MISSING:
            return cast("Mapping | None", value)  # what the cache holds, not the sentinel
        row = self.db.execute("SELECT body FROM res WHERE type=? AND id=?", key).fetchone()
        value = _load(row[0]) if row else None
        if len(self._cache) >= self._cache_size:
            del self._cache[
                next(iter(self._cache))
            ]  # the oldest: a patient's lookups come together
        self._cache[key] = value
        return value

    def find(self, rtype: str, token: tuple[str | None, str]) -> list[Mapping]:
        """The resources of ``rtype`` with an identifier matching ``token`` ((system, value); system
        None: any system, "": none), for a conditional reference (``Type?identifier=s|v``).

        The identifiers of a type are indexed on disk (an ``ident`` table) the first time one of
        its conditional references is followed, so memory stays flat and an export without
        conditional references pays nothing; answers are cached like :meth:`get`'s.
        """
        key = (rtype, token)
        ids = self._found.get(key)
        if ids is None:
            if rtype not in self._indexed:
                self._index_identifiers(rtype)
            system, value = token
            if system is None:
                rows = self.db.execute(
                    "SELECT DISTINCT id FROM ident WHERE type=? AND value=? ORDER BY id",
                    (rtype, value),
                )
            else:
                rows = self.db.execute(
                    "SELECT DISTINCT id FROM ident WHERE type=? AND value=? AND system=? "
                    "ORDER BY id",
                    (rtype, value, system),
                )
            ids = tuple(row[0] for row in rows)
            if len(self._found) >= self._cache_size:
                del self._found[next(iter(self._found))]
            self._found[key] = ids
        return [r for r in (self.get(rtype, rid) for rid in ids) if r is not None]

    def roles_of(self, keys: list[str]) -> list[Mapping]:
        """The PractitionerRoles naming a Practitioner by one of its
        :func:`~fhir_injection.decision.context.practitioner_keys`.

        The roles are read once, the first time one is asked for, into a map of their ids (a
        clinic's or a health system's roles: few beside its administrations); the roles themselves
        come through :meth:`get` and its cache."""
        index = self._roles
        if index is None:
            index = self._roles = {
                key: tuple(str(r.get("id")) for r in roles)
                for key, roles in practitioner_roles(self.of_type("PractitionerRole")).items()
            }
        found = (self.get("PractitionerRole", rid) for key in keys for rid in index.get(key, ()))
        return [r for r in found if r is not None]

    def _index_identifiers(self, rtype: str) -> None:
        db = self.db
        db.execute("CREATE TABLE IF NOT EXISTS ident (type TEXT, value TEXT, system TEXT, id TEXT)")
        read = db.execute("SELECT id, body FROM res WHERE type=?", (rtype,))
        while rows := read.fetchmany(_BATCH):
            db.executemany(
                "INSERT INTO ident VALUES (?,?,?,?)",
                [
                    (rtype, value, system, rid)
                    for rid, body in rows
                    for system, value in identifiers_of(_load(body))
                ],
            )
        db.execute("CREATE INDEX IF NOT EXISTS ident_value ON ident (type, value)")
        db.commit()
        self._indexed.add(rtype)

    def of_type(self, rtype: str) -> Iterator[dict]:
        """Every stored resource of one type, by id."""
        for (body,) in self.db.execute("SELECT body FROM res WHERE type=? ORDER BY id", (rtype,)):
            yield _load(body)

    def of_patient(self, rtype: str, patient_id: str) -> list[dict]:
        """The stored resources of ``rtype`` that belong to one patient, by id."""
        rows = self.db.execute(
            "SELECT body FROM res WHERE type=? AND patient=? ORDER BY id", (rtype, patient_id)
        )
        return [_load(body) for (body,) in rows]

    def patients(self) -> Iterator[str | None]:
        """Patient ids that have administrations, sorted; None last for those naming no patient."""
        rows = self.db.execute(
            "SELECT DISTINCT patient FROM res WHERE type='MedicationAdministration' "
            "ORDER BY patient IS NULL, patient"
        ).fetchall()
        for (pid,) in rows:
            yield pid

    def for_patient(self, patient_id: str | None) -> tuple[list[dict], Context]:
        """A patient's administrations and a Context with their patient-scoped resources and the
        Patient itself (the rest is looked up when referenced)."""
        # the rest is looked up when referenced
        if len(self._memo) > _MEMO_SIZE:  # its entries keep their resources: memory stays bounded
            self._memo = {}
        ctx = Context(lookup=self.get, find=self.find, roles=self.roles_of, memo=self._memo)
        if patient_id is None:
            rows = self.db.execute(
                "SELECT body FROM res WHERE type='MedicationAdministration' "
                "AND patient IS NULL ORDER BY id"
            ).fetchall()
            return [_load(r[0]) for r in rows], ctx
        admins = []
        for rtype, rid, body in self.db.execute(
            "SELECT type, id, body FROM res WHERE patient=? ORDER BY type, id", (patient_id,)
        ):
            resource = _load(body)
            if rtype == "MedicationAdministration":
                admins.append(resource)
            else:  # a Patient is found by reference, not listed under its own id
                ctx.add_new(resource, rtype, rid, patient_id if rtype != "Patient" else None)
        return admins, ctx
