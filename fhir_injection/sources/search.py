"""The ``search`` pull: ``MedicationAdministration?_lastUpdated=ge<mark − overlap>&_sort=_lastUpdated``.

The pull for servers that allow a population search of administrations (HAPI, most FHIR
servers): :func:`search_params` builds the search with ``_include`` of what the server can include,
and :class:`SearchPull` yields its pages, handing what they include to the run's
:class:`~.resolver.Resolver`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..clock import minus
from ..errors import FatalNetworkError, OnProblem, PagingExpired
from ..fhir.client import FhirClient
from .base import Pull, PullOptions, pull
from .records import check_resource, check_shape
from .resolver import MA, PAGE_INCLUDES, Resolver, last_updated

__all__ = ["SearchPull", "search_params"]

log = logging.getLogger("fhir_injection.sync")


def search_params(client: FhirClient, since: str | None, page_size: int) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = [("_count", str(page_size))]
    if since and client.supports_search_param(MA, "_lastUpdated"):
        params.append(("_lastUpdated", f"ge{since}"))
    if client.supports_sort(MA, "_lastUpdated"):
        params.append(("_sort", "_lastUpdated"))
    for include in PAGE_INCLUDES:
        if client.supports_include(MA, include):
            params.append(("_include", include))
    return params


@pull
class SearchPull(Pull):
    """Pages of new and changed administrations from ``MedicationAdministration?_lastUpdated=ge…``.

    The pull for servers that allow a population search (HAPI, most FHIR servers). Every entry
    passes the same record checks as an export line; what a page ``_include``\\ s goes to the
    resolver's cache; an administration already posted in the overlap window at the same version
    (``recent``) is skipped. An expired paging link (HAPI: 410) re-issues the search from
    ``mark() − overlap``, up to five times.
    """

    name = "search"

    @classmethod
    def for_run(
        cls,
        client: FhirClient,
        resolver: Resolver,
        options: PullOptions,
        on_problem: OnProblem,
        state: dict[str, Any],
        progress: Callable[[str], None] | None,
    ) -> SearchPull:
        """The pull a sync run asks for (it reads ``page_size`` and ``overlap_seconds``)."""
        return cls(client, resolver, options.page_size, options.overlap_seconds, on_problem)

    def __init__(
        self,
        client: FhirClient,
        resolver: Resolver,
        page_size: int,
        overlap_seconds: float,
        on_problem: OnProblem,
    ):
        self.client = client
        self.resolver = resolver
        self.page_size = page_size
        self.overlap = overlap_seconds
        self.on_problem = on_problem

    @property
    def ordered(self) -> bool:
        """Do pages come oldest first (``_sort=_lastUpdated``), so the mark may advance page by page?"""
        return self.client.supports_sort(MA, "_lastUpdated")

    def pages(
        self,
        since: str | None,
        recent: Mapping[str, list],
        mark: Callable[[], str | None],
        numbered_from: int = 0,
    ) -> Iterator[list[dict]]:
        """The administrations of each page (a page may give an empty list)."""
        params = search_params(self.client, since, self.page_size)
        number, restarts = numbered_from, 0
        while True:
            try:
                for bundle in self.client.search_pages(MA, params):
                    number += 1
                    yield self._administrations(bundle, number, recent)
                return
            except PagingExpired:
                restarts += 1
                if restarts > 5:
                    raise FatalNetworkError(
                        "the server kept expiring the search's paging links"
                    ) from None
                log.warning(
                    "paging link expired after %d pages; searching again from the mark", number
                )
                last = mark()
                params = search_params(
                    self.client, minus(last, self.overlap) if last else since, self.page_size
                )

    def _administrations(
        self, bundle: Mapping, number: int, recent: Mapping[str, list]
    ) -> list[dict]:
        admins, included = [], []
        for e in bundle.get("entry") or []:
            resource = e.get("resource")
            mode = (e.get("search") or {}).get("mode", "match")
            where = (
                resource.get("resourceType", "?") + "/" + str(resource.get("id"))
                if isinstance(resource, dict)
                else f"page {number} entry"
            )
            problem = check_resource(resource, where) or check_shape(resource, where)
            if problem:
                self.on_problem(problem)
                continue
            if resource["resourceType"] == MA and mode == "match":
                version = (
                    (resource.get("meta") or {}).get("versionId") or last_updated(resource) or ""
                )
                if (recent.get(resource["id"]) or [None])[0] == version:
                    continue  # seen in the overlap window, same version
                admins.append(resource)
            else:
                included.append(resource)
        for r in included:
            self.resolver.remember(r)
        return admins
