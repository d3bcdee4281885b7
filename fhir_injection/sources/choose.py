"""``--pull auto``: which pull a server gets, probed once.

The population search (:mod:`.search`) where the server allows a ``MedicationAdministration``
search across all patients; otherwise the per-patient crawl (:mod:`.crawl`), for EHRs that answer
administration searches only with ``patient`` (Oracle Health, Epic).
"""

from __future__ import annotations

from ..clock import minus, now
from ..errors import FatalNetworkError
from ..fhir.bodies import json_of
from ..fhir.client import NO_CACHE, FhirClient
from .base import PullOptions
from .resolver import MA

__all__ = ["choose", "choose_pull", "probe_population_search"]


def probe_population_search(client: FhirClient, since: str | None = None) -> tuple[bool, str]:
    """Does the server allow ``MedicationAdministration`` searches across all patients?

    One request: ``MedicationAdministration?_lastUpdated=ge<since or a day ago>&_count=1`` (without
    ``_lastUpdated`` where the CapabilityStatement does not list it). A searchset Bundle without an
    error outcome: yes. A 400, 403 or 422, a body that is an OperationOutcome, or a Bundle with an
    error/fatal outcome entry: no. Returns (allowed, a short reason with no PHI: statuses and
    parameter names only). Other failures (5xx after retries, 401) are raised.
    """
    if client._resource(MA) is None:
        return False, f"the CapabilityStatement lists no {MA}"
    params: list[tuple[str, str]] = [("_count", "1")]
    if client.supports_search_param(MA, "_lastUpdated"):
        params.insert(0, ("_lastUpdated", f"ge{since or minus(now(), 86400)}"))
    asked = f"{MA}?{'&'.join(k + '=…' for k, _ in params)}"
    try:
        body = json_of(client.session.request("GET", MA, params=params, headers=NO_CACHE))
    except FatalNetworkError as exc:
        if exc.status in (400, 403, 405, 422):
            needs = " (the server requires patient)" if _names_patient(exc.outcome) else ""
            return False, f"population search refused: {asked} answered HTTP {exc.status}{needs}"
        raise
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        outcome = body if isinstance(body, dict) else {}
        needs = " (the server requires patient)" if _names_patient(str(outcome)) else ""
        return False, f"population search refused: {asked} answered an OperationOutcome{needs}"
    for entry in body.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "OperationOutcome":
            continue
        if any(
            isinstance(i, dict) and i.get("severity") in ("error", "fatal")
            for i in resource.get("issue") or []
        ):
            needs = " (the server requires patient)" if _names_patient(str(resource)) else ""
            return False, f"population search refused: {asked} answered an error outcome{needs}"
    return True, f"population search allowed: {asked} answered HTTP 200"


def _names_patient(text: str | None) -> bool:
    return bool(text) and "patient" in str(text).lower()


def choose_pull(client: FhirClient, since: str | None = None) -> tuple[str, str]:
    """``--pull auto``: (the pull's name, why). Population search where the server allows it,
    otherwise the per-patient crawl."""
    allowed, reason = probe_population_search(client, since)
    return ("search" if allowed else "crawl"), reason


def choose(client: FhirClient, options: PullOptions, since: str | None) -> tuple[str, str]:
    """(the pull to run, why): the one asked for, or under ``--pull auto`` what one probe of the
    source allows (a cohort given for the crawl is said to go unused when the search is chosen)."""
    if options.pull != "auto":
        return options.pull, f"asked for with --pull {options.pull}"
    name, reason = choose_pull(client, since)
    if name == "search" and (options.patients_file or options.cohort_dir):
        reason += "; the cohort option is for the crawl and was not used"
    return name, reason
