"""A small in-memory FHIR R4 server, answering ``requests`` calls through ``responses``.

It fakes what the sync needs from a real server (HAPI FHIR JPA) on ``BASE``:

- the CapabilityStatement (``_include`` and ``_sort`` support, batch/transaction, updateCreate,
  all switchable per test);
- MedicationAdministration searches, paged with ``_getpages`` next links like HAPI's, with
  ``_include``, ``_lastUpdated``, ``effective-time`` and ``_sort``;
- ``_id=`` / ``patient=`` / ``identifier=`` searches (comma-separated, as the batched look-ups
  send them);
- batch and transaction Bundles with per-entry answers (searches inside a batch too), conditional
  creates (``If-None-Exist``), PUT with ``If-Match``; a transaction is all or nothing.

Hooks let a test stage what a real server does only rarely: 503 with Retry-After, 410 on an
expired paging link, a 412/409/400 per entry, a whole batch refused, a 401 needing a new token.
Resources live in ``store``; ``put`` stamps ``meta.versionId`` and ``meta.lastUpdated`` from a
clock that ticks one second per write (``instant``).
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import responses

BASE = "https://fhir.example.org/fhir"
MA = "MedicationAdministration"
T0 = datetime(2026, 10, 5, 16, 0, tzinfo=UTC)
INCLUDES = [f"{MA}:context", f"{MA}:subject", f"{MA}:medication", f"{MA}:performer"]
TYPES = [
    "Patient",
    "Encounter",
    "Practitioner",
    "Organization",
    "Location",
    "Condition",
    "Coverage",
    "Consent",
    "ChargeItem",
    "Medication",
    "Claim",
    "Task",
]


def instant(seconds: int) -> str:
    return (
        (T0 + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def outcome(text: str, code: str = "processing") -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


class FakeFhir:
    """An in-memory FHIR R4 server on BASE, answering through ``responses`` callbacks."""

    def __init__(
        self,
        includes: bool = True,
        sort: bool = True,
        interactions: tuple[str, ...] = (),
        update_create: bool | None = None,
    ):
        self.includes = includes
        self.sort = sort
        self.interactions = interactions  # whole-system interactions listed: "batch", "transaction"
        self.update_create = update_create  # updateCreate listed for every type when not None
        self.client_ids = (
            True  # False: a PUT to an id that does not exist is refused (400), like some servers
        )
        self.store: dict[str, dict[str, dict]] = {}
        self.searches: dict[str, list[dict]] = {}
        self.expire_next: set[int] = set()  # page offsets whose next link answers 410 once
        self.fail: list = []  # hooks: f(method, path, query) -> (status, headers, body) | None
        self.entry_hook = None  # f(entry) -> (status, outcome text) | None for a batch entry
        self.single_hook = (
            None  # f(method, path, body) -> (status, body) | None for POST/PUT outside a batch
        )
        self.batch_hook = None  # f(bundle) -> (status, body) | None
        self.on_request = None  # f(method, path, query) called first
        self.clock = 10_000
        self.auth_header: str | None = None  # required Authorization, when set
        self.deny_next_auth = 0

    # -- data ---------------------------------------------------------------

    def put(
        self, resource: dict, last_updated: str | None = None, version: str | None = None
    ) -> dict:
        resource = copy.deepcopy(resource)
        meta = resource.setdefault("meta", {})
        old = self.get(resource["resourceType"], resource["id"])
        meta["versionId"] = version or str(
            int((old or {}).get("meta", {}).get("versionId") or 0) + 1
        )
        meta["lastUpdated"] = last_updated or self._tick()
        self.store.setdefault(resource["resourceType"], {})[resource["id"]] = resource
        return resource

    def _tick(self) -> str:
        self.clock += 1
        return instant(self.clock)

    def get(self, rtype: str, rid: str) -> dict | None:
        return self.store.get(rtype, {}).get(rid)

    def all(self, rtype: str) -> list[dict]:
        return list(self.store.get(rtype, {}).values())

    def capability(self) -> dict:
        ma_params = ["_id", "patient", "subject", "effective-time"]
        if self.sort:
            ma_params.append("_lastUpdated")
        ma = {
            "type": MA,
            "searchParam": [{"name": n, "type": "token"} for n in ma_params],
            "searchInclude": INCLUDES if self.includes else [],
        }
        others = [
            {
                "type": t,
                "searchParam": [
                    {"name": n, "type": "token"}
                    for n in ("_id", "identifier", "patient", "beneficiary", "subject")
                ],
            }
            for t in TYPES
        ]
        if self.update_create is not None:
            for r in others:
                r["updateCreate"] = self.update_create
        rest = {"mode": "server", "resource": [ma, *others]}
        if self.interactions:
            rest["interaction"] = [{"code": c} for c in self.interactions]
        return {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "kind": "instance",
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "rest": [rest],
        }

    # -- plumbing -----------------------------------------------------------

    def install(self, rsps: responses.RequestsMock) -> FakeFhir:
        rsps.add_callback(responses.GET, re.compile(re.escape(BASE) + r"(/.*)?(\?.*)?$"), self._get)
        rsps.add_callback(responses.POST, re.compile(re.escape(BASE) + r"(/.*)?$"), self._post)
        rsps.add_callback(responses.PUT, re.compile(re.escape(BASE) + r"/.*$"), self._put)
        return self

    @staticmethod
    def _split(request) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(request.url)
        path = parts.path[len(urlsplit(BASE).path) :].strip("/")
        return path, parse_qs(parts.query)

    def _pre(self, request, method, path, query):
        if self.on_request:
            self.on_request(method, path, query)
        if self.auth_header is not None and (
            request.headers.get("Authorization") != self.auth_header or self.deny_next_auth
        ):
            self.deny_next_auth = max(0, self.deny_next_auth - 1)
            return 401, {}, json.dumps(outcome("token expired", "login"))
        for hook in list(self.fail):
            answer = hook(method, path, query)
            if answer is not None:
                status, headers, body = answer
                return status, headers, json.dumps(body) if body is not None else ""
        return None

    @staticmethod
    def _json(status: int, body, headers=None):
        return (
            status,
            {"Content-Type": "application/fhir+json", **(headers or {})},
            json.dumps(body),
        )

    def _get(self, request):
        path, query = self._split(request)
        early = self._pre(request, "GET", path, query)
        if early:
            return early
        if path == "metadata":
            return self._json(200, self.capability())
        if path == "" and "_getpages" in query:
            sid, offset = query["_getpages"][0], int(query["_getpagesoffset"][0])
            if offset in self.expire_next:
                self.expire_next.discard(offset)
                self.searches.pop(sid, None)
            if sid not in self.searches:
                return self._json(410, outcome(f"Search id {sid} has expired"))
            return self._json(200, self._page(sid, offset, int(query["_count"][0])))
        rtype = path
        if rtype not in self.store and rtype not in [*TYPES, MA]:
            return self._json(404, outcome(f"Unknown resource type {rtype}"))
        matches = self.all(rtype)
        for name, values in query.items():
            value = values[0]
            if name == "_id":
                ids = set(value.split(","))
                matches = [r for r in matches if r["id"] in ids]
            elif name == "identifier":
                wanted = set(value.split(","))
                matches = [
                    r
                    for r in matches
                    if any(
                        f"{i.get('system')}|{i.get('value')}" in wanted
                        for i in r.get("identifier") or []
                    )
                ]
            elif name in ("patient", "beneficiary", "subject"):
                refs = {v if "/" in v else f"Patient/{v}" for v in value.split(",")}  # bare ids too
                field = {"Consent": "patient", "Coverage": "beneficiary"}.get(rtype, "subject")
                matches = [r for r in matches if (r.get(field) or {}).get("reference") in refs]
            elif name == "effective-time":
                for bound in values:
                    op, day = bound[:2], bound[2:12]  # the date of a date or an instant bound
                    matches = [
                        r
                        for r in matches
                        if (
                            r.get("effectiveDateTime", "")[:10] >= day
                            if op == "ge"
                            else r.get("effectiveDateTime", "")[:10] < day
                        )
                    ]
            elif name == "_lastUpdated":
                since = datetime.fromisoformat(value[2:].replace("Z", "+00:00"))
                matches = [
                    r
                    for r in matches
                    if datetime.fromisoformat(r["meta"]["lastUpdated"].replace("Z", "+00:00"))
                    >= since
                ]
        if "_sort" in query:
            matches.sort(key=lambda r: r["meta"]["lastUpdated"])
        entries = [
            {"fullUrl": f"{BASE}/{rtype}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in matches
        ]
        for inc in query.get("_include", []):
            field = {
                "context": "context",
                "subject": "subject",
                "performer": "performer",
                "medication": "medicationReference",
            }[inc.split(":")[1]]
            seen = set()
            for r in matches:
                refs = (
                    [p["actor"] for p in r.get("performer", [])]
                    if field == "performer"
                    else [r.get(field)]
                )
                for ref in refs:
                    key = (ref or {}).get("reference")
                    if (
                        not key or key in seen or "/" not in key or "?" in key
                    ):  # a search: not included
                        continue
                    seen.add(key)
                    target = self.get(*key.split("/"))
                    if target:
                        entries.append(
                            {
                                "fullUrl": f"{BASE}/{key}",
                                "resource": target,
                                "search": {"mode": "include"},
                            }
                        )
        count = int(query.get("_count", ["50"])[0])
        sid = uuid.uuid4().hex[:12]
        self.searches[sid] = entries
        return self._json(200, self._page(sid, 0, count))

    def _page(self, sid: str, offset: int, count: int) -> dict:
        entries = self.searches[sid]
        # A page holds `count` matches plus their includes (a server pages matches, not entries).
        matches = [e for e in entries if e["search"]["mode"] == "match"]
        chunk = matches[offset : offset + count]
        refs = set()
        for e in chunk:
            r = e["resource"]
            for ref in [
                r.get("context"),
                r.get("subject"),
                r.get("medicationReference"),
                *[p.get("actor") for p in r.get("performer", [])],
            ]:
                if ref and ref.get("reference"):
                    refs.add(ref["reference"])
        includes = [
            e
            for e in entries
            if e["search"]["mode"] == "include"
            and f"{e['resource']['resourceType']}/{e['resource']['id']}" in refs
        ]
        links = [
            {
                "relation": "self",
                "url": f"{BASE}?_getpages={sid}&_getpagesoffset={offset}&_count={count}",
            }
        ]
        if offset + count < len(matches):
            links.append(
                {
                    "relation": "next",
                    "url": f"{BASE}?_getpages={sid}&_getpagesoffset={offset + count}&_count={count}",
                }
            )
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "link": links,
            "entry": chunk + includes,
        }

    # -- writes ---------------------------------------------------------------

    def _existing(self, rtype: str, condition: str) -> list[dict]:
        system_value = condition.split("=", 1)[1]
        return [
            r
            for r in self.all(rtype)
            if any(
                f"{i.get('system')}|{i.get('value')}" == system_value
                for i in r.get("identifier") or []
            )
        ]

    def _create(self, resource: dict, if_none_exist: str | None) -> tuple[int, dict]:
        rtype = resource["resourceType"]
        if if_none_exist:
            there = self._existing(rtype, if_none_exist)
            if len(there) > 1:
                return 412, outcome(
                    "HAPI-0958: Failed to CREATE resource with match URL because this "
                    "search matched 2 resources",
                    "duplicate",
                )
            if there:
                return 200, there[0]
        body = dict(resource)
        body["id"] = resource.get("id") or uuid.uuid4().hex[:16]
        return 201, self.put(body, version="1")

    def _update(
        self, rtype: str, rid: str, resource: dict, if_match: str | None
    ) -> tuple[int, dict]:
        old = self.get(rtype, rid)
        if old is None and not self.client_ids:
            return 400, outcome(
                f"HAPI-0959: No resource exists on this server resource with ID[{rid}], "
                "and client-assigned IDs are not enabled."
            )
        if if_match and (old is None or if_match != f'W/"{old["meta"]["versionId"]}"'):
            return 412, outcome(
                f"HAPI-0989: Trying to update {rtype}/{rid} but version does not match", "conflict"
            )
        body = dict(resource)
        body["id"] = rid
        return (200 if old else 201), self.put(body)

    def _post(self, request):
        path, query = self._split(request)
        early = self._pre(request, "POST", path, query)
        if early:
            return early
        body = json.loads(request.body)
        if path == "":
            if self.batch_hook:
                answer = self.batch_hook(body)
                if answer is not None:
                    return self._json(*answer)
            out = []
            saved = copy.deepcopy(self.store)
            for entry in body["entry"]:
                req = entry["request"]
                if req["method"] == "GET":  # a search inside a batch: answered as GET <base>/<url>
                    inner = type("Inner", (), {"url": f"{BASE}/{req['url']}", "headers": {}})()
                    status, _, text = self._get(inner)
                    out.append({"resource": json.loads(text), "response": {"status": str(status)}})
                    continue
                hooked = self.entry_hook(entry) if self.entry_hook else None
                if hooked is not None:
                    status, text = hooked
                    out.append({"response": {"status": f"{status}", "outcome": outcome(text)}})
                    continue
                if req["method"] == "POST":
                    status, res = self._create(entry["resource"], req.get("ifNoneExist"))
                else:
                    rtype, rid = req["url"].split("/")
                    status, res = self._update(rtype, rid, entry["resource"], req.get("ifMatch"))
                if status >= 400:
                    out.append({"response": {"status": str(status), "outcome": res}})
                else:
                    out.append(
                        {
                            "response": {
                                "status": f"{status} {'Created' if status == 201 else 'OK'}",
                                "location": f"{res['resourceType']}/{res['id']}/_history/{res['meta']['versionId']}",
                                "etag": f'W/"{res["meta"]["versionId"]}"',
                            }
                        }
                    )
            if body["type"] == "transaction":
                failed = [e for e in out if not e["response"]["status"].startswith("2")]
                if failed:  # all or nothing: undo, and answer with the first failure
                    self.store = saved
                    return self._json(
                        int(failed[0]["response"]["status"][:3]),
                        failed[0]["response"].get("outcome") or outcome("transaction failed"),
                    )
                return self._json(
                    200, {"resourceType": "Bundle", "type": "transaction-response", "entry": out}
                )
            return self._json(
                200, {"resourceType": "Bundle", "type": "batch-response", "entry": out}
            )
        if self.single_hook:
            answer = self.single_hook("POST", path, body)
            if answer is not None:
                return self._json(*answer)
        status, res = self._create(body, request.headers.get("If-None-Exist"))
        return self._json(status, res)

    def _put(self, request):
        path, query = self._split(request)
        early = self._pre(request, "PUT", path, query)
        if early:
            return early
        body = json.loads(request.body)
        if self.single_hook:
            answer = self.single_hook("PUT", path, body)
            if answer is not None:
                return self._json(*answer)
        rtype, rid = path.split("/")
        status, res = self._update(rtype, rid, body, request.headers.get("If-Match"))
        return self._json(status, res)
