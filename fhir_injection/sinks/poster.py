"""The ``server`` sink: reconcile decisions with the Claims and Tasks already there, exactly once.

New Claims and Tasks by ``PUT`` to their stable id (or a conditional create on their business
identifier where the server assigns ids), changed ones by a version-checked update, voids by status
``cancelled``, fixed Tasks by status ``completed``; in transaction (or batch) Bundles, a refused
Bundle split in halves down to the bad entry. A fingerprint tag says whether a Claim changed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..decision.model import ACTIONABLE_OUTCOMES, Decision
from ..decision.practice import Config
from ..decision.ruleset import Rules
from ..errors import ConfigError, FatalNetworkError
from ..fhir.bundles import send_in_halves
from ..fhir.client import FhirClient, Lookup
from ..fhir.resources import ref_key, split_reference
from .base import Sink, SinkOptions, sink
from .claims import (
    TASK_IDENTIFIER_SUFFIX,
    build_claim,
    build_task,
    claim_identifier,
    task_identifier,
)
from .fingerprint import fingerprint_of, with_fingerprint

__all__ = ["CREATE_MODES", "LOOKUP_CHUNK", "Poster"]

log = logging.getLogger("fhir_injection.sync")

# Values per look-up list (identifier=...) when the Claims and Tasks were not fetched with the page.
LOOKUP_CHUNK = 500

CREATE_MODES = ("auto", "put", "post")


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


@dataclass
class _Planned:
    kind: str  # "Claim" | "Task"
    action: str  # create | update | cancel | complete
    administration: str
    entry: dict
    ident: tuple[str, str] | None = None  # the business identifier of a create


@sink
class Poster(Sink):
    """Reconciles decisions with the target server: create once, update on change, never twice."""

    name = "server"

    @classmethod
    def for_run(cls, rules: Rules, config: Config, options: SinkOptions) -> Poster:
        """The live sync's sink (it reads ``client``, ``bundle_size``, ``source_base`` and
        ``create_with``)."""
        if options.client is None:
            raise ConfigError("the server sink needs a target server")
        return cls(
            options.client,
            rules,
            config,
            options.bundle_size,
            options.source_base,
            options.create_with,
        )

    def __init__(
        self,
        client: FhirClient,
        rules: Rules,
        config: Config,
        bundle_size: int,
        source_base: str | None = None,
        create_with: str = "auto",
    ):
        if create_with not in CREATE_MODES:
            raise ConfigError(f"create_with '{create_with}': use one of {', '.join(CREATE_MODES)}")
        self.client = client
        self.rules = rules
        self.config = config
        self.bundle_size = bundle_size
        self.source_base = source_base  # set when the target is another server
        self.create_with = create_with
        super().__init__()
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
            values = tuple(
                v
                for v in dict.fromkeys(f"{system}|{a}" for a in administration_ids)
                if v not in self._asked
            )
            if values:
                out.append(Lookup(rtype, "identifier", values))
        return out

    def take(self, lookups: list[Lookup], results: list[list[tuple[dict, str]]]) -> None:
        for lk, found in zip(lookups, results, strict=True):
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
        return with_fingerprint(resource)

    def plan(
        self, decisions: list[Decision], created: str, primary: set[str] | None = None
    ) -> tuple[list[_Planned], dict[str, dict]]:
        """What must be written for these decisions; also per administration what happened.

        Decisions not in ``primary`` (same-day siblings pulled in for the modifier and
        MUE rules) only update Claims that already exist; their own page creates theirs.
        """
        missing = self.lookups(
            [d.administration_id for d in decisions]
        )  # none when fetched with the page
        if missing:
            self.take(missing, self.client.lookup_many(missing, LOOKUP_CHUNK))
        plans: list[_Planned] = []
        outcome: dict[str, dict] = {}
        for d in decisions:
            cid = claim_identifier(d, self.config)
            old = self._there.get(
                f"{cid[0]}|{cid[1]}"
            )  # keyed by "system|value": Claim and Task systems differ
            if primary is not None and d.administration not in primary:
                plans.extend(self._plan_sibling_claim(d, old, created))
                continue
            info = outcome.setdefault(
                d.administration,
                {
                    "claim_action": None,
                    "task_action": None,
                    "claim": None,
                    "claim_status": None,
                    "task": None,
                },
            )
            plans.extend(self._plan_claim(d, cid, old, created, info))
            tid = task_identifier(d, self.config)
            plans.extend(
                self._plan_task(d, tid, self._there.get(f"{tid[0]}|{tid[1]}"), created, info)
            )
        return plans, outcome

    def _plan_sibling_claim(self, d: Decision, old: Mapping | None, created: str) -> list[_Planned]:
        """A same-day sibling from another page: update its Claim if the day's rules changed it."""
        claim = build_claim(d, self.config, created)
        if old is None or claim is None:
            return []
        claim = self._prepare(claim)
        if fingerprint_of(old) == fingerprint_of(claim):
            return []
        claim["id"] = old["id"]
        return [self._update("Claim", "update", d, claim, old)]

    def _plan_claim(
        self, d: Decision, cid: tuple[str, str], old: Mapping | None, created: str, info: dict
    ) -> list[_Planned]:
        """Create, update, cancel or leave the administration's Claim; note what in ``info``."""
        if d.outcome == "void":
            if old is None:
                return []
            info.update(claim=f"Claim/{old['id']}", claim_status="cancelled")
            if old.get("status") == "cancelled":
                return []
            info["claim_action"] = "cancel"
            return [self._cancel_claim(d, old)]
        if d.outcome == "past-filing-limit" and old is not None:
            # Posted while it could still be filed: the deadline passing since withdraws nothing.
            self.claims.unchanged += 1
            info.update(
                claim_action="unchanged", claim=f"Claim/{old['id']}", claim_status=old.get("status")
            )
            return []
        claim = build_claim(d, self.config, created)
        if claim is None:
            if old is not None and old.get("status") not in ("cancelled", "entered-in-error"):
                # It was billable before and no longer forms a Claim (e.g. now a vaccine): withdraw it.
                info.update(
                    claim_action="cancel", claim=f"Claim/{old['id']}", claim_status="cancelled"
                )
                return [self._cancel_claim(d, old)]
            return []
        claim = self._prepare(claim)
        if old is None:
            info.update(claim_action="create", claim_status=claim["status"])
            return [self._create("Claim", d, claim, cid)]
        if fingerprint_of(old) != fingerprint_of(claim):
            claim["id"] = old["id"]
            info.update(
                claim_action="update", claim=f"Claim/{old['id']}", claim_status=claim["status"]
            )
            return [self._update("Claim", "update", d, claim, old)]
        self.claims.unchanged += 1
        info.update(
            claim_action="unchanged", claim=f"Claim/{old['id']}", claim_status=old.get("status")
        )
        return []

    def _plan_task(
        self, d: Decision, tid: tuple[str, str], told: Mapping | None, created: str, info: dict
    ) -> list[_Planned]:
        """Open, update, complete or cancel (voided) the administration's gap Task.

        A Task is open exactly while the decision has actionable gaps (:attr:`Decision.actionable_gaps`:
        a claim or held 96372 with errors or warnings). One that is open and no longer actionable is
        completed: its gaps were fixed, or the decision became one nobody acts on for billing (another
        code, nothing billable); a voided administration's is cancelled.
        """
        if d.actionable_gaps:  # never for a void
            built = build_task(d, self.config, self.rules, created)
            assert built is not None  # build_task gives a Task whenever there are actionable gaps
            task = self._prepare(built)
            if told is None:
                info["task_action"] = "create"
                return [self._create("Task", d, task, tid)]
            if fingerprint_of(told) != fingerprint_of(task) or told.get("status") != "requested":
                task["id"] = told["id"]
                info.update(task_action="update", task=f"Task/{told['id']}")
                return [self._update("Task", "update", d, task, told)]
            self.tasks.unchanged += 1
            info.update(task_action="unchanged", task=f"Task/{told['id']}")
            return []
        if told is None or told.get("status") in ("completed", "cancelled"):
            return []
        new = dict(told)
        new["status"] = "cancelled" if d.outcome == "void" else "completed"
        new["lastModified"] = created
        if d.outcome == "void":
            reason = "administration voided"
        elif d.outcome in ACTIONABLE_OUTCOMES:
            reason = "all documentation gaps fixed"
        else:  # e.g. now inpatient, not given, another code: nothing left to act on for billing
            reason = f"no billing action needed: outcome {d.outcome}"
        new["businessStatus"] = {"text": reason}
        action = "cancel" if d.outcome == "void" else "complete"
        info.update(task_action=action, task=f"Task/{told['id']}")
        return [self._update("Task", action, d, with_fingerprint(new), told)]

    def _create(self, rtype: str, d: Decision, resource: dict, ident: tuple[str, str]) -> _Planned:
        """A create: ``PUT`` to our stable id where the server takes client ids (one indexed write, and
        idempotent by itself), else a conditional create on the business identifier."""
        if self._use_put(rtype) and resource.get("id"):
            return _Planned(
                rtype,
                "create",
                d.administration,
                {
                    "fullUrl": f"{self.client.base_url}/{rtype}/{resource['id']}",
                    "resource": resource,
                    "request": {"method": "PUT", "url": f"{rtype}/{resource['id']}"},
                },
                ident,
            )
        return _Planned(
            rtype,
            "create",
            d.administration,
            self._conditional_create(rtype, resource, ident),
            ident,
        )

    def _as_conditional(self, plan: _Planned) -> _Planned:
        """A PUT-to-our-id create as a conditional create (the server refused client ids)."""
        if plan.action != "create" or plan.entry["request"]["method"] != "PUT" or not plan.ident:
            return plan
        return _Planned(
            plan.kind,
            plan.action,
            plan.administration,
            self._conditional_create(plan.kind, plan.entry["resource"], plan.ident),
            plan.ident,
        )

    @staticmethod
    def _conditional_create(rtype: str, resource: Mapping, ident: tuple[str, str]) -> dict:
        return {
            "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{ident[0]}|{ident[1]}')}",
            "resource": {k: v for k, v in resource.items() if k != "id"},
            "request": {
                "method": "POST",
                "url": rtype,
                "ifNoneExist": f"identifier={ident[0]}|{ident[1]}",
            },
        }

    def _cancel_claim(self, d: Decision, old: Mapping) -> _Planned:
        """Withdraw a Claim already on the server: the same Claim with status ``cancelled``."""
        new = dict(old)
        new["status"] = "cancelled"
        new["meta"] = dict(old.get("meta") or {})
        # Re-fingerprint: a stale fingerprint would call a later, re-activated Claim "unchanged".
        return self._update("Claim", "cancel", d, with_fingerprint(new), old)

    def _update(
        self, rtype: str, action: str, d: Decision, resource: dict, old: Mapping
    ) -> _Planned:
        request = {"method": "PUT", "url": f"{rtype}/{old['id']}"}
        version = (old.get("meta") or {}).get("versionId")
        if version:
            request["ifMatch"] = f'W/"{version}"'
        return _Planned(
            rtype,
            action,
            d.administration,
            {
                "fullUrl": f"{self.client.base_url}/{rtype}/{old['id']}",
                "resource": resource,
                "request": request,
            },
        )

    def send(self, plans: list[_Planned], outcome: dict[str, dict]) -> None:
        """Post the plans in Bundles of ``bundle_size``; one bad entry never loses the others.

        A server that lists ``transaction`` gets transaction Bundles (one database
        transaction each: HAPI writes them several times faster than batches), others
        batch Bundles. A Bundle refused as a whole (a transaction with one bad entry,
        or a validating server refusing a batch) is split in halves down to the bad
        entry alone (:func:`~fhir_injection.fhir.bundles.send_in_halves`), which fails
        with the server's own message.
        """
        kind = "transaction" if self.client.supports_interaction("transaction") else "batch"
        for start in range(0, len(plans), self.bundle_size):
            send_in_halves(
                plans[start : start + self.bundle_size],
                lambda chunk: self._send_bundle(chunk, outcome, kind),
                lambda plan: self._send_one(plan, outcome),
                kind,
            )

    def _send_bundle(self, chunk: list[_Planned], outcome: dict[str, dict], kind: str) -> None:
        if self.create_with == "post":  # the server refused our ids earlier in this run
            chunk = [self._as_conditional(p) for p in chunk]
        response = self.client.transaction([p.entry for p in chunk], kind=kind)
        results = self.client.entry_results(response)
        retry = []
        for plan, (status, location, text) in zip(
            chunk,
            results + [(0, None, "no response entry")] * (len(chunk) - len(results)),
            strict=False,
        ):
            if status == 409 and plan.action == "create":
                retry.append(plan)  # lost a race with a parallel create: ask again
                continue
            self._record(plan, status, location, text, outcome)
        for plan in retry:
            self._send_one(plan, outcome)

    def _send_one(self, plan: _Planned, outcome: dict[str, dict]) -> bool:
        """One entry on its own; True if the server took it."""
        if self.create_with == "post":
            plan = self._as_conditional(plan)
        request, resource = plan.entry["request"], plan.entry["resource"]
        try:
            if request["method"] == "POST":
                status, body = self.client.create(resource, request.get("ifNoneExist"))
                location = f"{resource['resourceType']}/{body['id']}" if body.get("id") else None
            else:
                status, body = self.client.update(resource, request.get("ifMatch"))
                location = f"{resource['resourceType']}/{resource['id']}"
        except FatalNetworkError as exc:
            if not exc.refused_content:
                raise
            if (
                plan.action == "create"
                and request["method"] == "PUT"
                and plan.ident
                and exc.status != 412
                and self.create_with == "auto"
            ):
                # Perhaps the server takes no client-assigned ids: try a conditional create, and if that
                # works, create that way for the rest of the run.
                landed = self._send_one(self._as_conditional(plan), outcome)
                if landed:
                    log.warning(
                        "the target refused a create at our own id (HTTP %s) but took a conditional "
                        "create; creating with conditional POST for the rest of this run",
                        exc.status,
                    )
                    self.create_with = "post"
                return landed
            assert exc.status is not None  # refused_content: the server answered with a status
            return self._record(plan, exc.status, None, exc.outcome or str(exc), outcome)
        return self._record(plan, status, location, None, outcome)

    def _record(
        self,
        plan: _Planned,
        status: int,
        location: str | None,
        text: str | None,
        outcome: dict[str, dict],
    ) -> bool:
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
        self.failures.append(
            {
                "record": plan.administration,
                "field": plan.kind,
                "message": f"{plan.action} of {plan.kind} failed: HTTP {status}: {message}",
            }
        )
        log.warning(
            "%s %s for %s failed: HTTP %s: %s",
            plan.action,
            plan.kind,
            plan.administration,
            status,
            message,
        )
        return False
