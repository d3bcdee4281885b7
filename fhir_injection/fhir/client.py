"""A small FHIR R4 REST client: capabilities, paged searches, chunked reads, transactions.

All HTTP goes through :class:`~fhir_injection.http.HttpSession` (one retry loop).
Resources are plain dicts as parsed from JSON.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from ..errors import FatalNetworkError, PagingExpired
from .bodies import json_of, operation_outcome_text
from .http import HttpSession, HttpStats

__all__ = [
    "FhirClient",
    "Lookup",
    "MAX_SEARCHES_PER_BATCH",
    "MAX_URL_CHARS",
    "NO_CACHE",
    "Params",
    "SEARCH_BY_PAGE",
    "SUPPORTED_VERSIONS",
    "entry_results",
    "next_link",
]

log = logging.getLogger(__name__)

SUPPORTED_VERSIONS = ("4.0.", "4.3.")  # R4 and R4B share the wire format we use
NO_CACHE = {"Cache-Control": "no-cache"}
MAX_URL_CHARS = 6000
SEARCH_BY_PAGE = 500  # HAPI's largest page; servers clamp a larger _count to their own maximum
MAX_SEARCHES_PER_BATCH = 100  # searches sent together in one batch Bundle
Params = Mapping[str, Any] | list[tuple[str, Any]] | None
T = TypeVar("T")


@dataclass(frozen=True)
class Lookup:
    """One search by a list of values: ``<type>?<param>=v1,v2,…`` plus fixed ``params``.

    :meth:`FhirClient.lookup_many` runs several of them together.
    """

    type: str
    param: str
    values: tuple[str, ...]
    params: tuple[tuple[str, str], ...] = ()


class FhirClient:
    """FHIR REST operations on top of one HttpSession."""

    def __init__(self, session: HttpSession):
        self.session = session
        self.base_url = session.base_url
        self._capabilities: dict | None = None
        self.batch_searches: bool | None = None  # None: decided from the CapabilityStatement

    @property
    def stats(self) -> HttpStats:
        """The session's request counters."""
        return self.session.stats

    # -- capabilities ----------------------------------------------------

    def capabilities(self) -> dict:
        """The server's CapabilityStatement (fetched once). Refuses servers that are not FHIR R4/R4B."""
        if self._capabilities is None:
            cs = json_of(self.session.request("GET", "metadata"))
            if not isinstance(cs, dict) or cs.get("resourceType") != "CapabilityStatement":
                raise FatalNetworkError(
                    f"{self.base_url}/metadata did not return a CapabilityStatement"
                )
            version = str(cs.get("fhirVersion") or "")
            if not version.startswith(SUPPORTED_VERSIONS):
                raise FatalNetworkError(
                    f"the server speaks FHIR {version or '(unstated version)'}; "
                    "this adapter needs FHIR R4 (4.0.x) or R4B (4.3.x)"
                )
            self._capabilities = cs
        return self._capabilities

    @property
    def fhir_version(self) -> str:
        """The server's fhirVersion, e.g. ``4.0.1``."""
        return self.capabilities()["fhirVersion"]

    def _rest(self) -> list[dict]:
        return [
            r for r in self.capabilities().get("rest") or [] if r.get("mode", "server") == "server"
        ]

    def _resource(self, type_: str) -> dict | None:
        for rest in self._rest():
            for res in rest.get("resource") or []:
                if res.get("type") == type_:
                    return res
        return None

    def _param_names(self, type_: str | None) -> set[str]:
        names = {p.get("name") for rest in self._rest() for p in rest.get("searchParam") or []}
        resources = (
            [self._resource(type_)]
            if type_
            else [r for rest in self._rest() for r in rest.get("resource") or []]
        )
        for res in resources:
            names.update(p.get("name") for p in (res or {}).get("searchParam") or [])
        return names

    def supports_interaction(self, code: str) -> bool:
        """True if the server lists the whole-system interaction ``code`` (transaction, batch, ...)."""
        return any(
            i.get("code") == code for rest in self._rest() for i in rest.get("interaction") or []
        )

    def allows_client_ids(self, type_: str) -> bool:
        """Can we create ``type_`` with ``PUT <type>/<our id>``?

        True when the CapabilityStatement says ``updateCreate: true``, or when the
        server is HAPI FHIR and does not say false: HAPI JPA takes client-assigned
        ids that contain a letter (its default ClientIdStrategy, ALPHANUMERIC) but
        never advertises updateCreate. A server that refuses is noticed at the
        first refused create and the run falls back to conditional create.
        """
        res = self._resource(type_) or {}
        if "updateCreate" in res:
            return res.get("updateCreate") is True
        cs = self.capabilities()
        names = f"{(cs.get('software') or {}).get('name', '')} {(cs.get('implementation') or {}).get('description', '')}"
        return "HAPI" in names.upper()

    def supports_search_param(self, type_: str, name: str) -> bool:
        """True if the server lists ``name`` for ``type_`` (or as a common, rest-level search parameter)."""
        return name in self._param_names(type_)

    def supports_include(self, type_: str, value: str) -> bool:
        """True if ``_include=value`` is listed in the type's searchInclude (``*`` counts)."""
        includes = (self._resource(type_) or {}).get("searchInclude") or []
        return value in includes or "*" in includes

    def supports_sort(self, type_: str | None = None, by: str = "_lastUpdated") -> bool:
        """Heuristic: can we ask for ``_sort=by``?

        True if ``_sort`` is advertised, or if ``by`` is an advertised search
        parameter (HAPI sorts by ``_lastUpdated`` but never lists ``_sort``);
        otherwise False.
        """
        names = self._param_names(type_)
        return "_sort" in names or by in names

    # -- searching -------------------------------------------------------

    def search_pages(self, type_: str, params: Params = None, post: bool = False) -> Iterator[dict]:
        """Yield each searchset Bundle page of ``GET <base>/<type>?params``, following next links verbatim.

        Raises PagingExpired (with the number of pages already yielded) when the
        server has forgotten the search; HAPI answers 410 Gone for that. ``post`` sends
        the first request as ``POST <type>/_search`` with a form body (for long
        parameter lists); next links are still followed with GET.
        """
        if post:
            form = list(params.items()) if isinstance(params, Mapping) else list(params or [])
            resp = self.session.request(
                "POST", f"{type_}/_search", form=form, headers=NO_CACHE, safe_to_retry=True
            )
        else:
            resp = self.session.request("GET", type_, params=params, headers=NO_CACHE)
        first = json_of(resp)
        if not isinstance(first, dict) or first.get("resourceType") != "Bundle":
            raise FatalNetworkError(f"search of {type_} did not return a Bundle (page 1)")
        yield from self._pages_from(first, type_)

    def search(
        self, type_: str, params: Params = None, post: bool = False
    ) -> Iterator[tuple[dict, str]]:
        """Yield ``(resource, mode)`` for every entry of every page; mode is match, include or outcome."""
        for bundle in self.search_pages(type_, params, post):
            for entry in bundle.get("entry") or []:
                resource = entry.get("resource")
                if resource is not None:
                    yield resource, (entry.get("search") or {}).get("mode", "match")

    def read_many(self, type_: str, ids: Iterable[str], chunk_size: int = 100) -> dict[str, dict]:
        """Fetch resources by id with ``_id=a,b,c`` searches: one request per chunk (plus paging)."""
        found: dict[str, dict] = {}
        for resource, mode in self.search_by(type_, "_id", ids, chunk_size):
            if mode == "match" and resource.get("resourceType") == type_ and resource.get("id"):
                found[resource["id"]] = resource
        return found

    def search_by(
        self,
        type_: str,
        param: str,
        values: Iterable[str],
        chunk_size: int = 100,
        params: Params = None,
    ) -> Iterator[tuple[dict, str]]:
        """Search ``type?param=v1,v2,…`` in chunks of ``chunk_size`` deduplicated values.

        A chunk whose URL would pass ~6000 characters goes as ``POST <type>/_search``
        (every R4 server that searches over HTTP supports both forms), so requests
        grow with chunks, not with URL length. Yields ``(resource, mode)`` once per
        distinct resource; ``params`` are added to every chunk (e.g. ``_include``).
        """
        extra = list(params.items()) if isinstance(params, Mapping) else list(params or [])
        unique = list(dict.fromkeys(v for v in values if v))
        overhead = (
            len(self.base_url)
            + len(type_)
            + len(param)
            + 32
            + sum(len(quote(str(k))) + len(quote(str(v))) + 2 for k, v in extra)
        )
        seen: set[tuple[str, str]] = set()
        # read-only: chunks short enough for a GET URL, never POST _search
        max_chars = max(MAX_URL_CHARS - overhead, 200) if self.read_only else 10**9
        for chunk in _chunks(unique, chunk_size, max_chars):
            # An _id search returns one match per value; a patient= search several per value:
            # ask for a full page so a chunk is one request, not one per few patients.
            count = min(len(chunk), SEARCH_BY_PAGE) if param == "_id" else SEARCH_BY_PAGE
            query = [(param, ",".join(chunk)), ("_count", str(count)), *extra]
            long = (
                not self.read_only
                and overhead + sum(len(quote(v, safe="")) + 3 for v in chunk) > MAX_URL_CHARS
            )
            for resource, mode in self.search(type_, query, post=long):
                key = (str(resource.get("resourceType")), str(resource.get("id")))
                if resource.get("id") and key in seen:
                    continue
                seen.add(key)
                yield resource, mode

    def lookup_many(
        self, lookups: list[Lookup], chunk_size: int = 500
    ) -> list[list[tuple[dict, str]]]:
        """Run ``lookups`` and return, for each, its distinct ``(resource, mode)`` results.

        On a server that takes batch Bundles (it lists ``batch`` or ``transaction``)
        all of them go as GET entries of one batch Bundle (the values ride in the
        body, so no URL limit), up to 100 searches per request; only a result that
        runs over one page costs more (its next links, followed with GET). A search
        the server answers with an error inside the batch is run on its own; a
        server that refuses the batch itself is asked each search separately from
        then on (:meth:`search_by`).
        """
        chunks: list[tuple[int, Lookup, list[str]]] = []
        for i, lk in enumerate(lookups):
            unique = list(dict.fromkeys(v for v in lk.values if v))
            chunks.extend((i, lk, c) for c in _chunks(unique, chunk_size, 10**9))
        results: list[list[tuple[dict, str]]] = [[] for _ in lookups]
        seen: list[set] = [set() for _ in lookups]

        def keep(i: int, resource: Any, mode: str) -> None:
            if not isinstance(resource, dict):
                return
            key = (str(resource.get("resourceType")), str(resource.get("id")))
            if resource.get("id") and key in seen[i]:
                return
            seen[i].add(key)
            results[i].append((resource, mode))

        leftover = chunks
        if self.can_batch_searches() and chunks:
            leftover = []
            for start in range(0, len(chunks), MAX_SEARCHES_PER_BATCH):
                part = chunks[start : start + MAX_SEARCHES_PER_BATCH]
                if not self.batch_searches:
                    leftover.extend(part)
                    continue
                leftover.extend(self._batch_search(part, keep))
        for i, lk, chunk in leftover:
            for resource, mode in self.search_by(
                lk.type, lk.param, chunk, len(chunk), list(lk.params)
            ):
                keep(i, resource, mode)
        return results

    @property
    def read_only(self) -> bool:
        """A read-only run: GET only (no batch Bundles of searches, no ``POST _search``)."""
        return self.session.read_only

    @read_only.setter
    def read_only(self, value: bool) -> None:
        self.session.read_only = value

    def can_batch_searches(self) -> bool:
        """Will :meth:`lookup_many` send searches together (the server lists batch or transaction, and
        has not refused a batch of searches yet)? Never in a read-only run (a batch is a POST)."""
        if self.read_only:
            return False
        if self.batch_searches is None:
            self.batch_searches = self.supports_interaction("batch") or self.supports_interaction(
                "transaction"
            )
        return self.batch_searches

    def _batch_search(self, part: list[tuple[int, Lookup, list[str]]], keep) -> list:
        """One batch Bundle of GET searches; returns the chunks that must be searched on their own."""
        entries = []
        for _, lk, chunk in part:
            count = min(len(chunk), SEARCH_BY_PAGE) if lk.param == "_id" else SEARCH_BY_PAGE
            query = urlencode([(lk.param, ",".join(chunk)), ("_count", str(count)), *lk.params])
            entries.append({"request": {"method": "GET", "url": f"{lk.type}?{query}"}})
        try:
            response = self.transaction(entries, kind="batch")
        except FatalNetworkError as exc:
            if not exc.refused_content:
                raise
            log.warning(
                "the server refused a batch of searches (HTTP %s); searching one by one from now on",
                exc.status,
            )
            self.batch_searches = False
            return part
        answers = response.get("entry") or []
        leftover = []
        for n, (i, lk, chunk) in enumerate(part):
            answer = answers[n] if n < len(answers) and isinstance(answers[n], dict) else {}
            status = str((answer.get("response") or {}).get("status") or "").split(" ", 1)[0]
            bundle = answer.get("resource")
            if (
                not status.startswith("2")
                or not isinstance(bundle, dict)
                or bundle.get("resourceType") != "Bundle"
            ):
                leftover.append(
                    (i, lk, chunk)
                )  # ask this one on its own: its error gets its own message
                continue
            try:
                for page in self._pages_from(bundle, lk.type):
                    for entry in page.get("entry") or []:
                        if isinstance(entry, dict) and entry.get("resource") is not None:
                            keep(
                                i,
                                entry["resource"],
                                (entry.get("search") or {}).get("mode", "match"),
                            )
            except PagingExpired:
                leftover.append((i, lk, chunk))
        return leftover

    def _pages_from(self, first: dict, type_: str) -> Iterator[dict]:
        """``first`` and the pages its next links lead to."""
        yield first
        url, seen, pages = next_link(first), set(), 1
        while url:
            if url in seen:
                raise FatalNetworkError(
                    f"search of {type_}: the server repeated a next link (page {pages})"
                )
            seen.add(url)
            try:
                bundle = json_of(self.session.request("GET", url, headers=NO_CACHE))
            except FatalNetworkError as exc:
                if exc.status in (404, 410):
                    raise PagingExpired(pages, exc.status) from None
                raise
            if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
                raise FatalNetworkError(
                    f"search of {type_} did not return a Bundle (page {pages + 1})"
                )
            yield bundle
            pages += 1
            url = next_link(bundle)

    # -- writing ---------------------------------------------------------

    def transaction(self, entries: list[dict], kind: str = "transaction") -> dict:
        """POST a transaction or batch Bundle of ``entries`` to the base; return the response Bundle.

        Retried on transient failures only when every entry is idempotent:
        a conditional create (request.ifNoneExist), a PUT, a DELETE or a read.
        """
        if kind not in ("transaction", "batch"):
            raise ValueError("kind must be 'transaction' or 'batch'")
        if not entries:
            raise ValueError("a transaction needs at least one entry")
        bundle = {"resourceType": "Bundle", "type": kind, "entry": list(entries)}
        safe = all(_idempotent(e) for e in entries)
        resp = self.session.request("POST", self.base_url, json=bundle, safe_to_retry=safe)
        body = json_of(resp)
        if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
            raise FatalNetworkError(f"{kind} response was not a Bundle")
        return body

    def put(self, resource: Mapping, if_match: str | None = None) -> dict:
        """``PUT <Type>/<id>`` (create or replace with that id); idempotent, so retried when transient."""
        return self.update(resource, if_match)[1]

    def update(self, resource: Mapping, if_match: str | None = None) -> tuple[int, dict]:
        """:meth:`put`, returning (status, body): 201 when the PUT created the resource, 200 when it replaced it."""
        headers = {"If-Match": if_match} if if_match else None
        resp = self.session.request(
            "PUT",
            f"{resource['resourceType']}/{resource['id']}",
            json=dict(resource),
            headers=headers,
            safe_to_retry=True,
        )
        return resp.status_code, (json_of(resp) if resp.content else {})

    def create(self, resource: Mapping, if_none_exist: str | None = None) -> tuple[int, dict]:
        """``POST <Type>``; with ``if_none_exist`` a conditional create (safe to retry). Returns (status, body)."""
        headers = {"If-None-Exist": if_none_exist} if if_none_exist else None
        resp = self.session.request(
            "POST",
            str(resource["resourceType"]),
            json=dict(resource),
            headers=headers,
            safe_to_retry=bool(if_none_exist),
        )
        return resp.status_code, (json_of(resp) if resp.content else {})

    @staticmethod
    def entry_results(response_bundle: Mapping) -> list[tuple[int, str | None, str | None]]:
        """Per entry of a transaction/batch response: (status, location, outcome text); see :func:`entry_results`."""
        return entry_results(response_bundle)


def next_link(bundle: Mapping) -> str | None:
    """The Bundle's ``link[relation=next].url``, or None."""
    for link in bundle.get("link") or []:
        if link.get("relation") == "next" and link.get("url"):
            return link["url"]
    return None


def entry_results(response_bundle: Mapping) -> list[tuple[int, str | None, str | None]]:
    """Per entry, in order: (HTTP status, location, OperationOutcome text) of a transaction/batch response."""
    results = []
    for entry in response_bundle.get("entry") or []:
        response = entry.get("response") or {}
        status_text = str(response.get("status") or "").strip()
        head = status_text.split(" ", 1)[0]
        status = int(head) if head.isdigit() else 0
        results.append(
            (status, response.get("location"), operation_outcome_text(response.get("outcome")))
        )
    return results


def _idempotent(entry: Mapping) -> bool:
    request = entry.get("request") or {}
    method = str(request.get("method") or "").upper()
    if method == "POST":
        return bool(request.get("ifNoneExist"))
    return method in ("PUT", "DELETE", "GET", "HEAD")


def _chunks(values: list[str], size: int, max_chars: int) -> Iterator[list[str]]:
    """Split ``values`` into lists of at most ``size`` whose URL-encoded, comma-joined form fits ``max_chars``."""
    if size < 1:
        raise ValueError("chunk_size must be at least 1")
    chunk: list[str] = []
    length = 0
    for value in values:
        cost = len(quote(value, safe="")) + 3  # the encoded comma
        if chunk and (len(chunk) >= size or length + cost > max_chars):
            yield chunk
            chunk, length = [], 0
        chunk.append(value)
        length += cost
    if chunk:
        yield chunk
