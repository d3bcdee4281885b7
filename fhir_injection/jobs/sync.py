"""Live sync: pull administrations from a FHIR server, decide, post Claims and Tasks exactly once.

One run:

1. read the source's CapabilityStatement (R4 only; which search features exist);
2. search ``MedicationAdministration?_lastUpdated=ge<mark − overlap>&_sort=_lastUpdated``
   page by page, with ``_include`` of encounter/patient/medication where supported;
3. per page, resolve everything else with ``_id`` / ``patient=`` / ``identifier=`` list
   searches, sent together as one batch Bundle per round (two rounds a page, usually),
   with a per-run cache, so requests grow with pages, not administrations;
4. decide (the same pure engine as offline), then reconcile with the target in
   transaction Bundles: new Claims and Tasks by ``PUT`` to their stable id (or a
   conditional create on their business identifier where the server assigns ids),
   changed ones by a version-checked update, voids by status ``cancelled``,
   fixed Tasks by status ``completed``;
5. advance and save the mark only after the page is safely posted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import signal
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

from ..sinks.claims import TASK_IDENTIFIER_SUFFIX, build_claim, build_task, claim_identifier, task_identifier
from ..fhir.client import FhirClient, Lookup
from ..decision.context import Context
from ..fhir.resources import FOUND_BY_PATIENT, patient_id_of, ref_key, split_reference
from ..errors import (
    EXIT_INTERRUPTED, EXIT_OK, EXIT_RECORD_ERRORS, ConfigError, FatalNetworkError, NetworkError, PagingExpired,
)
from ..decision.model import Decision
from ..sinks.report import ReportWriter
from ..decision.rules import Config, Rules
from .offline import decide_isolated
from ..errors import RecordProblem
from ..sources.records import check_resource, check_shape
from .state import StateFile, StateLock, format_instant, minus, parse_instant

log = logging.getLogger("fhir_injection.sync")

FINGERPRINT_SYSTEM = "urn:fhir-injection:fingerprint"
DEFAULT_OVERLAP_SECONDS = 300
# Values per batched look-up (_id, patient=, identifier= lists): a whole page's worth, so a page
# costs a fixed number of requests; long lists go as POST _search.
LOOKUP_CHUNK = 500
MAX_WRITE_RETRIES = 5  # runs in which a refused Claim/Task is tried again before it is only reported
MA = "MedicationAdministration"
CREATE_MODES = ("auto", "put", "post")
PAGE_INCLUDES = (f"{MA}:context", f"{MA}:subject", f"{MA}:medication", f"{MA}:performer")


@dataclass
class SyncOptions:
    page_size: int = 500
    bundle_size: int = 100
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS
    since: str | None = None
    full: bool = False
    state_path: str = ".fhir-injection-state.json"
    report_path: str = "report.json"
    created: str | None = None  # the run's timestamp; now when None
    create_with: str = "auto"  # new Claims/Tasks: "put" to our stable id, "post" conditional create, or auto


@dataclass
class PostCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    cancelled: int = 0
    completed: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class SyncResult:
    summary: dict[str, Any]
    claims: PostCounts
    tasks: PostCounts
    problems: int
    interrupted: bool = False
    mark: str | None = None

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_RECORD_ERRORS if self.problems or self.claims.failed or self.tasks.failed else EXIT_OK


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def fingerprint(resource: Mapping) -> str:
    """A hash of what a Claim/Task says, leaving out what changes on every run or server."""
    body = {k: v for k, v in resource.items() if k not in ("id", "meta", "created", "authoredOn",
                                                               "lastModified", "text")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:24]


def _with_fingerprint(resource: dict) -> dict:
    meta = resource.setdefault("meta", {})
    tags = [t for t in meta.get("tag", []) if t.get("system") != FINGERPRINT_SYSTEM]
    tags.append({"system": FINGERPRINT_SYSTEM, "code": fingerprint(resource)})
    meta["tag"] = tags
    return resource


def _fingerprint_of(resource: Mapping) -> str:
    """The fingerprint of what ``resource`` says: its fingerprint tag when it has exactly one.

    Tags are not versioned: HAPI keeps every earlier version's tags on update, so an updated
    resource carries several fingerprint tags, stale ones included. With none or several,
    hash the body as it is.
    """
    codes = [t.get("code") for t in (resource.get("meta") or {}).get("tag") or []
             if t.get("system") == FINGERPRINT_SYSTEM]
    return codes[0] if len(codes) == 1 and codes[0] else fingerprint(resource)


def _absolute(resource: Any, base: str) -> Any:
    """Rewrite relative references to absolute URLs on ``base`` (for a separate target server)."""
    if isinstance(resource, dict):
        out = {}
        for k, v in resource.items():
            if k == "reference" and isinstance(v, str) and split_reference(v) and "://" not in v:
                out[k] = f"{base.rstrip('/')}/{v}"
            else:
                out[k] = _absolute(v, base)
        return out
    if isinstance(resource, list):
        return [_absolute(v, base) for v in resource]
    return resource


# ----------------------------------------------------------------------------- pulling





class Resolver:
    """Batched look-ups of what administrations point to, with a per-run cache.

    :meth:`lookups` says what is still unknown for some administrations (what they
    point to, what their encounters point to, their patients' consents, coverages
    and charge items); :meth:`take` files the answers; :meth:`fetch` does one round
    of both, with other searches riding in the same request (the caller repeats it:
    the encounters' own references are only known once the encounters are).
    """

    def __init__(self, client: FhirClient, chunk_size: int = 500):
        self.client = client
        self.chunk = chunk_size
        self.cache: dict[str, Mapping | None] = {}  # "Type/id" -> resource (None: known missing)
        self.by_patient: dict[tuple[str, str], list[Mapping]] = {}
        cs = client.capabilities()
        self.has_type = {r.get("type") for rest in cs.get("rest") or [] for r in rest.get("resource") or []}

    def remember(self, resource: Mapping) -> None:
        if resource.get("resourceType") and resource.get("id"):
            self.cache[f"{resource['resourceType']}/{resource['id']}"] = resource

    @staticmethod
    def _references(admins: list[Mapping], cache: Mapping[str, Mapping | None]) -> tuple[set[str], set[str]]:
        """("Type/id" the administrations and their known encounters point to, their patients' ids)."""
        refs: set[str] = set()
        patients: set[str] = set()

        def want(reference, expected=None):
            pair = split_reference(reference) if isinstance(reference, str) else None
            if pair and (expected is None or pair[0] == expected):
                refs.add(f"{pair[0]}/{pair[1]}")

        for a in admins:
            want((a.get("subject") or {}).get("reference"), "Patient")
            want((a.get("context") or {}).get("reference"), "Encounter")
            want((a.get("medicationReference") or {}).get("reference"), "Medication")
            for p in a.get("performer") or []:
                want(((p or {}).get("actor") or {}).get("reference"))
            for r in a.get("reasonReference") or []:
                want((r or {}).get("reference"), "Condition")
            pid = patient_id_of(a)
            if pid:
                patients.add(pid)
        for key in [k for k in refs if k.startswith("Encounter/")]:
            enc = cache.get(key)
            if not enc:
                continue
            want((enc.get("serviceProvider") or {}).get("reference"), "Organization")
            for d in enc.get("diagnosis") or []:
                want(((d or {}).get("condition") or {}).get("reference"), "Condition")
            for r in enc.get("reasonReference") or []:
                want((r or {}).get("reference"), "Condition")
        return refs, patients

    def lookups(self, admins: list[Mapping]) -> list[Lookup]:
        """The searches that would fill in what these administrations need and the cache lacks."""
        refs, patients = self._references(admins, self.cache)
        by_type: dict[str, set[str]] = defaultdict(set)
        for key in refs:
            if key not in self.cache:
                rtype, rid = key.split("/", 1)
                if rtype in self.has_type:
                    by_type[rtype].add(rid)
                else:
                    self.cache[key] = None  # the server has no such type: nothing to ask
        out = [Lookup(t, "_id", tuple(sorted(ids))) for t, ids in sorted(by_type.items())]
        for rtype, param in FOUND_BY_PATIENT:
            todo = sorted(p for p in patients if (rtype, p) not in self.by_patient)
            if not todo:
                continue
            if rtype not in self.has_type:
                for p in todo:
                    self.by_patient[(rtype, p)] = []
                continue
            out.append(Lookup(rtype, param, tuple(f"Patient/{p}" for p in todo)))
        return out

    def take(self, lookups: list[Lookup], results: list[list[tuple[dict, str]]]) -> None:
        """File the answers to :meth:`lookups`; an id asked for and not returned is known missing."""
        for lk, found in zip(lookups, results):
            if lk.param == "_id":
                for resource, mode in found:
                    if mode == "match" and resource.get("resourceType") == lk.type:
                        self.remember(resource)
                for rid in lk.values:
                    self.cache.setdefault(f"{lk.type}/{rid}", None)
                continue
            patients = [v.split("/", 1)[1] for v in lk.values]
            for p in patients:
                self.by_patient[(lk.type, p)] = []
            for resource, mode in found:
                pid = patient_id_of(resource)
                if mode == "match" and (lk.type, pid) in self.by_patient:
                    self.by_patient[(lk.type, pid)].append(resource)
                    self.remember(resource)

    def fetch(self, admins: list[Mapping], extra: list[Lookup] = ()) -> list[list[tuple[dict, str]]] | None:
        """One round: what these administrations still need, plus ``extra`` searches, in one go.

        Returns the results of ``extra``; None when there was nothing to ask.
        """
        mine = self.lookups(admins)
        extra = list(extra)
        if not mine and not extra:
            return None
        results = self.client.lookup_many(mine + extra, self.chunk)
        self.take(mine, results[:len(mine)])
        return results[len(mine):]

    def context(self, admins: list[Mapping]) -> Context:
        """A Context with what the cache holds for these administrations."""
        refs, patients = self._references(admins, self.cache)
        ctx = Context()
        for key in refs:
            resource = self.cache.get(key)
            if resource is not None:
                ctx.add(resource)
        for rtype, _ in FOUND_BY_PATIENT:
            for pid in patients:
                for resource in self.by_patient.get((rtype, pid), ()):
                    ctx.add(resource)
        return ctx


# ----------------------------------------------------------------------------- posting


@dataclass
class _Planned:
    kind: str  # "Claim" | "Task"
    action: str  # create | update | cancel | complete
    administration: str
    entry: dict
    ident: tuple[str, str] | None = None  # the business identifier of a create


class Poster:
    """Reconciles decisions with the target server: create once, update on change, never twice."""

    def __init__(self, client: FhirClient, rules: Rules, config: Config, bundle_size: int,
                 source_base: str | None = None, create_with: str = "auto"):
        if create_with not in CREATE_MODES:
            raise ConfigError(f"create_with '{create_with}': use one of {', '.join(CREATE_MODES)}")
        self.client = client
        self.rules = rules
        self.config = config
        self.bundle_size = bundle_size
        self.source_base = source_base  # set when the target is another server
        self.create_with = create_with
        self.claims = PostCounts()
        self.tasks = PostCounts()
        self.failures: list[dict] = []
        self._there: dict[str, Mapping] = {}  # "system|value" -> our Claim/Task on the target
        self._asked: set[str] = set()  # identifiers looked up since begin_page()

    # -- what is already there ---------------------------------------------

    def begin_page(self) -> None:
        """Forget the last page's look-ups: what this run wrote since may have changed them."""
        self._there.clear()
        self._asked.clear()

    def lookups(self, administration_ids: list[str]) -> list[Lookup]:
        """The identifier searches that find these administrations' Claims and Tasks on the target."""
        out = []
        for rtype, suffix in (("Claim", ""), ("Task", TASK_IDENTIFIER_SUFFIX)):
            system = self.config.identifier_system + suffix
            values = tuple(v for v in dict.fromkeys(f"{system}|{a}" for a in administration_ids)
                           if v not in self._asked)
            if values:
                out.append(Lookup(rtype, "identifier", values))
        return out

    def take(self, lookups: list[Lookup], results: list[list[tuple[dict, str]]]) -> None:
        for lk, found in zip(lookups, results):
            wanted = set(lk.values)
            self._asked.update(wanted)
            for resource, mode in found:
                if mode != "match" or resource.get("resourceType") != lk.type:
                    continue
                for ident in resource.get("identifier") or []:
                    key = f"{ident.get('system')}|{ident.get('value')}"
                    if key in wanted:
                        self._there.setdefault(key, resource)

    def _use_put(self, rtype: str) -> bool:
        if self.create_with == "auto":
            return self.client.allows_client_ids(rtype)
        return self.create_with == "put"

    def _prepare(self, resource: dict) -> dict:
        if self.source_base:
            resource = _absolute(resource, self.source_base)
        return _with_fingerprint(resource)

    def plan(self, decisions: list[Decision], created: str,
             primary: set[str] | None = None) -> tuple[list[_Planned], dict[str, dict]]:
        """What must be written for these decisions; also per administration what happened.

        Decisions not in ``primary`` (same-day siblings pulled in for the modifier and
        MUE rules) only update Claims that already exist; their own page creates theirs.
        """
        claim_ids = [claim_identifier(d, self.config) for d in decisions]
        task_ids = [task_identifier(d, self.config) for d in decisions]
        missing = self.lookups([d.administration_id for d in decisions])  # none when fetched with the page
        if missing:
            self.take(missing, self.client.lookup_many(missing, LOOKUP_CHUNK))
        claims_there = tasks_there = self._there  # keyed by "system|value": Claim and Task systems differ
        plans: list[_Planned] = []
        outcome: dict[str, dict] = {}
        for d, cid, tid in zip(decisions, claim_ids, task_ids):
            sibling = primary is not None and d.administration not in primary
            if sibling:
                old = claims_there.get(f"{cid[0]}|{cid[1]}")
                claim = build_claim(d, self.config, created)
                if old is not None and claim is not None:
                    claim = self._prepare(claim)
                    if _fingerprint_of(old) != _fingerprint_of(claim):
                        claim["id"] = old["id"]
                        plans.append(self._update("Claim", "update", d, claim, old))
                continue
            info = outcome.setdefault(d.administration, {"claim_action": None, "task_action": None,
                                                         "claim": None, "claim_status": None, "task": None})
            old = claims_there.get(f"{cid[0]}|{cid[1]}")
            if d.outcome == "void":
                if old is not None and old.get("status") != "cancelled":
                    new = dict(old)
                    new["status"] = "cancelled"
                    new["meta"] = dict(old.get("meta") or {})
                    # Re-fingerprint: a stale fingerprint would call a later, re-activated Claim "unchanged".
                    plans.append(self._update("Claim", "cancel", d, _with_fingerprint(new), old))
                if old is not None:
                    info.update(claim=f"Claim/{old['id']}", claim_status="cancelled")
                info["claim_action"] = "cancel" if old is not None and old.get("status") != "cancelled" else None
            else:
                claim = build_claim(d, self.config, created)
                if claim is not None:
                    claim = self._prepare(claim)
                    if old is None:
                        plans.append(self._create("Claim", d, claim, cid))
                        info.update(claim_action="create", claim_status=claim["status"])
                    elif _fingerprint_of(old) != _fingerprint_of(claim):
                        claim["id"] = old["id"]
                        plans.append(self._update("Claim", "update", d, claim, old))
                        info.update(claim_action="update", claim=f"Claim/{old['id']}", claim_status=claim["status"])
                    else:
                        self.claims.unchanged += 1
                        info.update(claim_action="unchanged", claim=f"Claim/{old['id']}",
                                    claim_status=old.get("status"))
                elif old is not None and old.get("status") not in ("cancelled", "entered-in-error"):
                    # It was billable before and no longer forms a Claim (e.g. now a vaccine): withdraw it.
                    new = dict(old)
                    new["status"] = "cancelled"
                    new["meta"] = dict(old.get("meta") or {})
                    # Re-fingerprint: a stale fingerprint would call a later, re-activated Claim "unchanged".
                    plans.append(self._update("Claim", "cancel", d, _with_fingerprint(new), old))
                    info.update(claim_action="cancel", claim=f"Claim/{old['id']}", claim_status="cancelled")

            told = tasks_there.get(f"{tid[0]}|{tid[1]}")
            if d.actionable_gaps and d.outcome != "void":
                task = self._prepare(build_task(d, self.config, self.rules, created))
                if told is None:
                    plans.append(self._create("Task", d, task, tid))
                    info["task_action"] = "create"
                elif _fingerprint_of(told) != _fingerprint_of(task) or told.get("status") != "requested":
                    task["id"] = told["id"]
                    plans.append(self._update("Task", "update", d, task, told))
                    info.update(task_action="update", task=f"Task/{told['id']}")
                else:
                    self.tasks.unchanged += 1
                    info.update(task_action="unchanged", task=f"Task/{told['id']}")
            elif told is not None and told.get("status") not in ("completed", "cancelled"):
                new = dict(told)
                new["status"] = "cancelled" if d.outcome == "void" else "completed"
                new["lastModified"] = created
                new["businessStatus"] = {"text": "administration voided" if d.outcome == "void"
                                         else "all documentation gaps fixed"}
                action = "cancel" if d.outcome == "void" else "complete"
                plans.append(self._update("Task", action, d, _with_fingerprint(new), told))
                info.update(task_action=action, task=f"Task/{told['id']}")
        return plans, outcome

    def _create(self, rtype: str, d: Decision, resource: dict, ident: tuple[str, str]) -> _Planned:
        """A create: ``PUT`` to our stable id where the server takes client ids (one indexed write, and
        idempotent by itself), else a conditional create on the business identifier."""
        if self._use_put(rtype) and resource.get("id"):
            return _Planned(rtype, "create", d.administration, {
                "fullUrl": f"{self.client.base_url}/{rtype}/{resource['id']}", "resource": resource,
                "request": {"method": "PUT", "url": f"{rtype}/{resource['id']}"}}, ident)
        return _Planned(rtype, "create", d.administration, self._conditional_create(rtype, resource, ident), ident)

    def _as_conditional(self, plan: _Planned) -> _Planned:
        """A PUT-to-our-id create as a conditional create (the server refused client ids)."""
        if plan.action != "create" or plan.entry["request"]["method"] != "PUT" or not plan.ident:
            return plan
        return _Planned(plan.kind, plan.action, plan.administration,
                        self._conditional_create(plan.kind, plan.entry["resource"], plan.ident), plan.ident)

    @staticmethod
    def _conditional_create(rtype: str, resource: Mapping, ident: tuple[str, str]) -> dict:
        return {
            "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{ident[0]}|{ident[1]}')}",
            "resource": {k: v for k, v in resource.items() if k != "id"},
            "request": {"method": "POST", "url": rtype, "ifNoneExist": f"identifier={ident[0]}|{ident[1]}"},
        }

    def _update(self, rtype: str, action: str, d: Decision, resource: dict, old: Mapping) -> _Planned:
        request = {"method": "PUT", "url": f"{rtype}/{old['id']}"}
        version = (old.get("meta") or {}).get("versionId")
        if version:
            request["ifMatch"] = f'W/"{version}"'
        return _Planned(rtype, action, d.administration, {
            "fullUrl": f"{self.client.base_url}/{rtype}/{old['id']}", "resource": resource, "request": request})

    def send(self, plans: list[_Planned], outcome: dict[str, dict]) -> None:
        """Post the plans in Bundles of ``bundle_size``; one bad entry never loses the others.

        A server that lists ``transaction`` gets transaction Bundles (one database
        transaction each: HAPI writes them several times faster than batches), others
        batch Bundles. A Bundle refused as a whole (a transaction with one bad entry,
        or a validating server refusing a batch) is split in halves and each half
        sent again, down to the bad entry alone, which fails with the server's own
        message: about 2·log2(size) extra requests per bad entry, not one per entry.
        """
        kind = "transaction" if self.client.supports_interaction("transaction") else "batch"
        for start in range(0, len(plans), self.bundle_size):
            self._send_chunk(plans[start:start + self.bundle_size], outcome, kind)

    def _send_chunk(self, chunk: list[_Planned], outcome: dict[str, dict], kind: str, split: bool = False) -> None:
        if self.create_with == "post":  # the server refused our ids earlier in this run
            chunk = [self._as_conditional(p) for p in chunk]
        if split and len(chunk) == 1:  # the refused Bundle's culprit, or an innocent half: on its own
            self._send_one(chunk[0], outcome)
            return
        try:
            response = self.client.transaction([p.entry for p in chunk], kind=kind)
        except FatalNetworkError as exc:
            if exc.status is None or exc.status >= 500 or exc.status in (401, 403):
                raise
            log.warning("the target refused a %s of %d (HTTP %s); sending it in halves", kind, len(chunk),
                        exc.status)
            half = len(chunk) // 2
            self._send_chunk(chunk[:half], outcome, kind, split=True)
            self._send_chunk(chunk[half:], outcome, kind, split=True)
            return
        results = self.client.entry_results(response)
        retry = []
        for plan, (status, location, text) in zip(chunk, results + [(0, None, "no response entry")] *
                                                  (len(chunk) - len(results))):
            if status == 409 and plan.action == "create":
                retry.append(plan)  # lost a race with a parallel create: ask again
                continue
            self._record(plan, status, location, text, outcome)
        for plan in retry:
            self._send_one(plan, outcome)

    def _send_one(self, plan: _Planned, outcome: dict[str, dict]) -> bool:
        """One entry on its own; True if the server took it."""
        request, resource = plan.entry["request"], plan.entry["resource"]
        try:
            if request["method"] == "POST":
                status, body = self.client.create(resource, request.get("ifNoneExist"))
                location = f"{resource['resourceType']}/{body['id']}" if body.get("id") else None
            else:
                status, body = self.client.update(resource, request.get("ifMatch"))
                location = f"{resource['resourceType']}/{resource['id']}"
        except FatalNetworkError as exc:
            if exc.status is None or exc.status >= 500 or exc.status in (401, 403):
                raise
            if (plan.action == "create" and request["method"] == "PUT" and plan.ident and exc.status != 412
                    and self.create_with == "auto"):
                # Perhaps the server takes no client-assigned ids: try a conditional create, and if that
                # works, create that way for the rest of the run.
                landed = self._send_one(self._as_conditional(plan), outcome)
                if landed:
                    log.warning("the target refused a create at our own id (HTTP %s) but took a conditional "
                                "create; creating with conditional POST for the rest of this run", exc.status)
                    self.create_with = "post"
                return landed
            return self._record(plan, exc.status, None, exc.outcome or str(exc), outcome)
        return self._record(plan, status, location, None, outcome)

    def _record(self, plan: _Planned, status: int, location: str | None, text: str | None,
                outcome: dict[str, dict]) -> bool:
        """Count and report one entry's answer; True if it landed (2xx)."""
        counts = self.claims if plan.kind == "Claim" else self.tasks
        info = outcome.setdefault(plan.administration, {})
        key = "claim" if plan.kind == "Claim" else "task"
        if 200 <= status < 300:
            ref = ref_key(location) if location else None
            if plan.action == "create":
                if status == 201:
                    counts.created += 1
                else:  # 200: the conditional create matched one already there
                    counts.unchanged += 1
                    info[f"{key}_action"] = "unchanged"
            elif plan.action == "update":
                counts.updated += 1
            elif plan.action == "cancel":
                counts.cancelled += 1
            elif plan.action == "complete":
                counts.completed += 1
            if ref:
                info[key] = ref
            return True
        counts.failed += 1
        message = text or f"HTTP {status}"
        info[f"{key}_action"] = "failed"
        info[f"{key}_error"] = message
        self.failures.append({"record": plan.administration, "field": plan.kind,
                              "message": f"{plan.action} of {plan.kind} failed: HTTP {status}: {message}"})
        log.warning("%s %s for %s failed: HTTP %s: %s", plan.action, plan.kind, plan.administration, status,
                    message)
        return False


# ----------------------------------------------------------------------------- the run


class StopFlag:
    """Set by SIGTERM/SIGINT: the page in hand is finished, then the run stops."""

    def __init__(self):
        self.event = threading.Event()

    def __bool__(self) -> bool:
        return self.event.is_set()

    def install(self) -> None:
        def handler(signum, frame):
            log.warning("signal %s: finishing the page in hand, then stopping", signum)
            self.event.set()
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def _search_params(client: FhirClient, since: str | None, page_size: int) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = [("_count", str(page_size))]
    if since and client.supports_search_param(MA, "_lastUpdated"):
        params.append(("_lastUpdated", f"ge{since}"))
    if client.supports_sort(MA, "_lastUpdated"):
        params.append(("_sort", "_lastUpdated"))
    for include in PAGE_INCLUDES:
        if client.supports_include(MA, include):
            params.append(("_include", include))
    return params


def _last_updated(resource: Mapping) -> str | None:
    value = (resource.get("meta") or {}).get("lastUpdated")
    return value if isinstance(value, str) else None


def _sibling_lookups(client: FhirClient, admins: list[Mapping]) -> list[Lookup]:
    """Searches for the same patients' other administrations on the same days (for same-day rules).

    Where searches travel together in a batch, one search per local day of the page, for the
    patients with an administration that day, over that day ± 1 (a server reads a date-only bound
    in its own time zone, and an evening injection at UTC−5 is the next day in UTC): a few days of
    a few patients, not the page's whole date range for every patient on it. Elsewhere one search
    over the whole range. What they point to comes along by ``_include``, so the siblings need no
    look-up round of their own.
    """
    if not client.supports_search_param(MA, "effective-time"):
        return []
    by_day: dict[str, set[str]] = defaultdict(set)
    for a in admins:
        pid, when = patient_id_of(a), a.get("effectiveDateTime")
        if pid and isinstance(when, str) and len(when) >= 10:
            by_day[when[:10]].add(pid)
    includes = tuple(("_include", inc) for inc in PAGE_INCLUDES if client.supports_include(MA, inc))
    groups = []
    for day, patients in sorted(by_day.items()):
        try:
            groups.append((datetime.fromisoformat(day).date(), patients))
        except ValueError:
            continue  # not a date: check_shape has reported it; no sibling can share it
    if groups and not client.can_batch_searches():
        # One request per search here: one search over the page's whole date range instead.
        groups = [(groups[0][0], set().union(*(p for _, p in groups)), groups[-1][0])]
    else:
        groups = [(d, p, d) for d, p in groups]
    return [Lookup(MA, "subject", tuple(f"Patient/{p}" for p in sorted(patients)),
                   (("effective-time", f"ge{(lo - timedelta(days=1)).isoformat()}"),
                    ("effective-time", f"lt{(hi + timedelta(days=2)).isoformat()}"), *includes))
            for lo, patients, hi in groups]


def _gather(source: FhirClient, resolver: Resolver, poster: "Poster", page_admins: list[Mapping],
            same_server: bool) -> tuple[list[Mapping], Context]:
    """Everything a page needs before it can be decided and posted, in as few requests as possible.

    Round 1 asks, together: what the page's administrations point to, their patients'
    consents/coverages/charge items, the same patients' other administrations on those
    days (siblings, for the same-day rules, with what they point to) and, when the target
    is the source, the page's Claims and Tasks already there. Round 2, only when there are
    siblings or new encounters: what those point to, and the siblings' Claims and Tasks.
    """
    sibs = _sibling_lookups(source, page_admins)
    known = {a.get("id") for a in page_admins}
    admins = list(page_admins)
    siblings: dict[str, Mapping] = {}
    extra: list[Lookup] = sibs + (poster.lookups([a["id"] for a in page_admins]) if same_server else [])
    for round_ in range(4):
        results = resolver.fetch(admins, extra)
        if results is None:
            break
        answers = dict(zip(extra, results))
        for lk in sibs if round_ == 0 else ():
            for r, mode in answers.pop(lk, ()):
                if mode != "match":
                    resolver.remember(r)
                elif r.get("resourceType") == MA and r.get("id") not in known:
                    siblings.setdefault(r["id"], r)
        if answers:
            poster.take(list(answers), list(answers.values()))
        if round_ == 0:
            admins += siblings.values()
        extra = poster.lookups(list(siblings)) if same_server and round_ == 0 else []
    return list(siblings.values()), resolver.context(admins)


def run_sync(source: FhirClient, target: FhirClient, rules: Rules, config: Config, options: SyncOptions,
             stop: StopFlag | None = None, progress=None) -> SyncResult:
    """One incremental sync from ``source`` to ``target`` (they may be the same server)."""
    stop = stop if stop is not None else StopFlag()  # an unset StopFlag is falsy: keep the caller's
    created = options.created or _now()
    source.capabilities()
    if target is not source:
        target.capabilities()
    state = StateFile(options.state_path)
    entry = state.source(source.base_url)
    if options.full:
        mark = None
    elif options.since:
        mark = format_instant(parse_instant(options.since))
    else:
        mark = entry.get("mark")
    # id -> [version, lastUpdated] of administrations already posted inside the overlap window
    recent: dict[str, list] = {k: v for k, v in (entry.get("recent") or {}).items()
                               if isinstance(v, list) and len(v) == 2} if not (options.full or options.since) else {}
    since = minus(mark, options.overlap_seconds) if mark else None
    sorted_search = source.supports_sort(MA, "_lastUpdated")

    resolver = Resolver(source, chunk_size=LOOKUP_CHUNK)
    separate = target.base_url.rstrip("/") != source.base_url.rstrip("/")
    poster = Poster(target, rules, config, options.bundle_size, source.base_url if separate else None,
                    options.create_with)
    report_path = Path(options.report_path)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_report = report_path.with_name(f".{report_path.name}.partial")
    pages = admins_seen = 0
    started = time.monotonic()
    new_mark = mark
    interrupted = False
    problems = 0

    retry: dict[str, int] = {k: v for k, v in (entry.get("retry") or {}).items() if isinstance(v, int)}

    with open(tmp_report, "w", encoding="utf-8") as fh:
        report = ReportWriter(fh, meta={"generated": created, "source": source.base_url,
                                        "target": target.base_url, "since": since, "mapping": rules.directory})

        def process(page_admins: list[dict]) -> None:
            """Decide a page, post it, report it; remember what failed for the next run."""
            nonlocal admins_seen
            poster.begin_page()
            siblings, ctx = _gather(source, resolver, poster, page_admins, not separate)
            decisions = decide_isolated(page_admins + siblings, ctx, rules, config, report.problem)
            in_page = {f"{MA}/{a['id']}" for a in page_admins}
            plans, outcome = poster.plan(decisions, created, in_page)
            poster.send(plans, outcome)
            for d in decisions:
                if d.administration not in in_page:
                    continue
                info = outcome.get(d.administration, {})
                error = info.get("claim_error") or info.get("task_error")
                report.add(d, info.get("claim"), info.get("claim_status"), info.get("task"),
                           posted={"claim": info.get("claim_action"), "task": info.get("task_action")},
                           **({"post_error": error} if error else {}))
                admin_id = d.administration_id
                if error:
                    retry[admin_id] = retry.get(admin_id, 0) + 1
                    if retry[admin_id] > MAX_WRITE_RETRIES:
                        del retry[admin_id]
                        report.problem(RecordProblem(d.administration, None, f"gave up posting after "
                                                     f"{MAX_WRITE_RETRIES} runs; fix the record or the server "
                                                     "refusal, then sync with --since"))
                else:
                    retry.pop(admin_id, None)
            admins_seen += len(page_admins)

        try:
            # Administrations whose Claim or Task a server refused in an earlier run: try them again.
            if retry:
                again = source.read_many(MA, sorted(retry), LOOKUP_CHUNK)
                for missing in set(retry) - set(again):
                    del retry[missing]  # deleted at the source since
                if again:
                    pages += 1
                    process(list(again.values()))
            params = _search_params(source, since, options.page_size)
            restarts = 0
            while True:
                try:
                    for bundle in source.search_pages(MA, params):
                        pages += 1
                        page_admins, included = [], []
                        for e in bundle.get("entry") or []:
                            resource = e.get("resource")
                            mode = (e.get("search") or {}).get("mode", "match")
                            where = resource.get("resourceType", "?") + "/" + str(resource.get("id")) \
                                if isinstance(resource, dict) else f"page {pages} entry"
                            problem = check_resource(resource, where) or check_shape(resource, where)
                            if problem:
                                report.problem(problem)
                                continue
                            if resource["resourceType"] == MA and mode == "match":
                                version = (resource.get("meta") or {}).get("versionId") or _last_updated(resource) or ""
                                if (recent.get(resource["id"]) or [None])[0] == version:
                                    continue  # seen in the overlap window, same version
                                page_admins.append(resource)
                            else:
                                included.append(resource)
                        for r in included:
                            resolver.remember(r)
                        if page_admins:
                            process(page_admins)
                        # The page is safely posted: advance the mark.
                        for a in page_admins:
                            lu = _last_updated(a)
                            if lu and (new_mark is None or parse_instant(lu) > parse_instant(new_mark)):
                                new_mark = lu
                            recent[a["id"]] = [(a.get("meta") or {}).get("versionId") or lu or "", lu]
                        if sorted_search and new_mark:
                            _save_mark(state, entry, new_mark, recent, options.overlap_seconds, retry)
                        if progress:
                            rate = admins_seen / max(time.monotonic() - started, 1e-6)
                            progress(f"page {pages}: {admins_seen} administrations, claims {poster.claims.created} "
                                     f"new/{poster.claims.updated} updated, "
                                     f"{source.stats.requests + (target.stats.requests if separate else 0)} "
                                     f"requests, {rate:.0f}/s")
                        if stop:
                            interrupted = True
                            break
                    break
                except PagingExpired:
                    restarts += 1
                    if restarts > 5:
                        raise FatalNetworkError("the server kept expiring the search's paging links")
                    log.warning("paging link expired after %d pages; searching again from the mark", pages)
                    since_again = minus(new_mark, options.overlap_seconds) if new_mark else since
                    params = _search_params(source, since_again, options.page_size)
        except BaseException as exc:
            # Keep what was done: the report of the pages posted so far, and the reason the run stopped.
            report.problem(RecordProblem("run", None, f"stopped early: {type(exc).__name__}: {exc}"))
            _close_report(report, poster, source, target, separate, pages, new_mark, interrupted, aborted=True)
            fh.close()
            tmp_report.replace(report_path)
            raise
        summary = _close_report(report, poster, source, target, separate, pages, new_mark, interrupted)
        problems = report.summary.errors
    tmp_report.replace(report_path)
    if new_mark and (sorted_search or not interrupted):  # unsorted pages: only a whole run moves the mark
        _save_mark(state, entry, new_mark, recent, options.overlap_seconds, retry)
    elif entry.get("retry", {}) != retry:
        entry["retry"] = dict(retry)
        state.save()
    return SyncResult(summary, poster.claims, poster.tasks, problems, interrupted, new_mark)


def _close_report(report: ReportWriter, poster: "Poster", source: FhirClient, target: FhirClient, separate: bool,
                  pages: int, mark: str | None, interrupted: bool, aborted: bool = False) -> dict:
    for failure in poster.failures:
        report.problem(RecordProblem(failure["record"], failure["field"], failure["message"]))
    poster.failures.clear()
    http = {"requests": source.stats.requests + (target.stats.requests if separate else 0),
            "retries": source.stats.retries + (target.stats.retries if separate else 0),
            "source": source.stats.as_dict(), **({"target": target.stats.as_dict()} if separate else {})}
    report.summary.extra.update({"pages": pages, "http": http, "posted": {
        "claims": poster.claims.as_dict(), "tasks": poster.tasks.as_dict()}, "mark": mark,
        "interrupted": interrupted, **({"aborted": True} if aborted else {})})
    return report.close()


def _save_mark(state: StateFile, entry: dict, mark: str, recent: dict[str, list], overlap: float,
               retry: dict[str, int] | None = None) -> None:
    """Advance the mark; keep only the versions the next run's overlap window can return again,
    and the administrations whose writes the target refused (tried again next run)."""
    if retry is not None:
        entry["retry"] = dict(retry)
    floor = parse_instant(minus(mark, overlap))
    for key in [k for k, (_, lu) in recent.items() if not lu or parse_instant(lu) < floor]:
        del recent[key]
    entry["mark"] = mark
    entry["recent"] = dict(recent)
    entry["updated"] = _now()
    state.save()


# ----------------------------------------------------------------------------- CLI glue


def parse_interval(value: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    if not value or value[-1] not in units or not value[:-1].isdigit() or int(value[:-1]) < 1:
        raise ConfigError(f"--every '{value}': use a whole number with s, m or h, e.g. 15m")
    return int(value[:-1]) * units[value[-1]]


def connect(url: str, env_prefix: str = "FHIR_", ca_bundle: str | None = None,
            allow_insecure_http: bool = False, env: Mapping[str, str] | None = None) -> FhirClient:
    """A FhirClient for ``url`` with authentication from the environment (``<prefix>AUTH`` ...).

    TLS is verified (``ca_bundle`` adds a private CA); plain http:// only to loopback
    unless ``allow_insecure_http``.
    """
    import os
    from ..fhir.auth import auth_from_env
    from ..fhir.http import HttpSession

    auth = auth_from_env(os.environ if env is None else env, env_prefix, base_url=url,
                         allow_insecure_http=allow_insecure_http)
    return FhirClient(HttpSession(url, auth=auth, verify=ca_bundle or True,
                                  allow_insecure_http=allow_insecure_http))


def make_client(url: str, prefix: str, args) -> FhirClient:
    client = connect(url, prefix, getattr(args, "ca_bundle", None), bool(getattr(args, "allow_insecure_http", False)))
    max_retry = getattr(args, "max_retry_seconds", None)
    if max_retry is not None:
        if max_retry < 0:
            raise ConfigError("--max-retry-seconds must be 0 or more")
        from dataclasses import replace
        client.session.retry = replace(client.session.retry, max_total_seconds=float(max_retry))
    return client


def run_sync_cli(args, rules: Rules, config: Config) -> int:
    source = make_client(args.source, "FHIR_", args)
    target_url = args.target or args.source
    if not target_url.startswith(("http://", "https://")):
        raise ConfigError("a server source needs a server target (--target URL); "
                          "to work offline, export to a folder first")
    target = source if target_url.rstrip("/") == args.source.rstrip("/") else make_client(target_url,
                                                                                          "FHIR_TARGET_", args)
    options = SyncOptions(page_size=args.page_size, bundle_size=args.bundle_size, since=args.since,
                          full=args.full, state_path=args.state, report_path=args.report or "report.json",
                          create_with=getattr(args, "create_with", "auto"))
    stop = StopFlag()
    stop.install()
    every = parse_interval(args.every) if args.every else None
    with StateLock(options.state_path):
        while True:
            try:
                result = run_sync(source, target, rules, config, options, stop, progress=_progress_line)
            except NetworkError as exc:
                if not every:
                    raise
                # On a schedule, a server that is down now is tried again next time; the mark is safe.
                log.error("sync failed (%s); next try in %s", exc, args.every)
                print(f"fhir-injection: sync failed: {exc}; next try in {args.every}", file=sys.stderr)
                result = None
            if result is not None:
                print(_summary_text(result.summary), flush=True)
                if result.interrupted or not every or stop:
                    return result.exit_code
            options.full, options.since = False, None
            if stop.event.wait(every):
                return EXIT_INTERRUPTED


def _progress_line(message: str) -> None:
    """One line per page on stderr (ids and counts only), so a long run shows it is moving."""
    print(f"fhir-injection: {message}", file=sys.stderr, flush=True)


def _summary_text(s: Mapping) -> str:
    o = s["outcomes"]
    c, t = s["posted"]["claims"], s["posted"]["tasks"]
    return (f"{s['administrations']} administrations: {o['claim']} claim, {o['held']} held, {o['not-96372']} "
            f"not-96372, {o['not-billable']} not-billable, {o['void']} void\n"
            f"Claims: {c['created']} created, {c['updated']} updated, {c['cancelled']} cancelled, "
            f"{c['unchanged']} unchanged, {c['failed']} failed; Tasks: {t['created']} created, {t['updated']} "
            f"updated, {t['completed']} completed, {t['failed']} failed\n"
            f"Estimated: ${s['estimated_billable_usd']:,.2f} billable, ${s['estimated_held_usd']:,.2f} held\n"
            f"HTTP: {s['http']['requests']} requests over {s['pages']} pages, {s['http']['retries']} retries; "
            f"mark {s['mark']}")


def run_folder_to_server_cli(args, source_dir: str, rules: Rules, config: Config) -> int:
    raise ConfigError("posting a folder's decisions to a server: load the folder with "
                      "'fhir-injection load' and then sync from the server")
