"""Upload a Bulk Data folder to a FHIR server, in an order that satisfies referential integrity.

For demos and test systems. Each resource is written with ``PUT <Type>/<id>`` in
transaction Bundles, so loading twice changes nothing and a retry is harmless.
Resources the server refuses (e.g. a reference to nothing) are reported one by
one with the server's message; the rest still land.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from ..errors import EXIT_OK, EXIT_RECORD_ERRORS, FatalNetworkError, RecordProblem
from ..fhir.bundles import send_in_halves
from ..fhir.client import FhirClient
from ..fhir.connection import ClientOptions, make_client
from ..fhir.resources import LOAD_ORDER
from ..sources.exportfolder import ExportFolder
from ..sources.spool import Spool

__all__ = ["COMPLETE_AFTER", "CYCLE_ELEMENTS", "LoadResult", "load_folder", "run_load_cli"]

log = logging.getLogger("fhir_injection.load")

# Types go in LOAD_ORDER (referenced types first). Encounter and Condition point at each other
# (Encounter.diagnosis, Condition.encounter): Encounters go in first without those elements, and
# again whole after the Conditions.
CYCLE_ELEMENTS = {"Encounter": ("diagnosis", "reasonReference")}
COMPLETE_AFTER = {"Condition": "Encounter"}


@dataclass
class LoadResult:
    loaded: dict[str, int] = field(default_factory=dict)
    problems: list[RecordProblem] = field(default_factory=list)
    requests: int = 0

    @property
    def exit_code(self) -> int:
        return EXIT_RECORD_ERRORS if self.problems else EXIT_OK


def _entry(resource: dict, base: str) -> dict:
    return {
        "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
    }


def load_folder(source: str, client: FhirClient, bundle_size: int = 200) -> LoadResult:
    """Load every used resource of ``source`` into the server behind ``client``."""
    result = LoadResult()
    client.capabilities()
    with Spool() as spool:
        folder = ExportFolder(source, result.problems.append)
        spool.add_all(folder.records(), result.problems.append)
        spool.apply_deletions(folder.deletions.values())  # a deleted record is not loaded
        deferred: list[dict] = []
        for rtype in LOAD_ORDER:
            deferred += _load_type(
                client, spool, rtype, bundle_size, result, CYCLE_ELEMENTS.get(rtype, ())
            )
            if rtype in COMPLETE_AFTER:
                again = COMPLETE_AFTER[rtype]
                deferred += _load_type(
                    client,
                    spool,
                    again,
                    bundle_size,
                    LoadResult(),
                    (),
                    only_with=CYCLE_ELEMENTS[again],
                )
        # A second pass for what failed only because of its order (e.g. a cycle between two types).
        if deferred:
            left = _send(client, deferred, result, final=True)
            assert not left
    result.requests = client.stats.requests
    return result


def _load_type(
    client: FhirClient,
    spool: Spool,
    rtype: str,
    bundle_size: int,
    result: LoadResult,
    strip: tuple[str, ...] = (),
    only_with: tuple[str, ...] = (),
) -> list[dict]:
    deferred: list[dict] = []
    batch: list[dict] = []
    for resource in spool.of_type(rtype):
        if only_with and not any(resource.get(e) for e in only_with):
            continue
        batch.append({k: v for k, v in resource.items() if k not in strip} if strip else resource)
        if len(batch) >= bundle_size:
            deferred += _send(client, batch, result)
            batch = []
    if batch:
        deferred += _send(client, batch, result)
    return deferred


def _send(
    client: FhirClient, resources: list[dict], result: LoadResult, final: bool = False
) -> list[dict]:
    """Post as one transaction; a refused one is halved down to the refused resources
    (:func:`~fhir_injection.fhir.bundles.send_in_halves`), each then PUT on its own.

    Returns the resources the server refused; on the ``final`` pass they are reported instead.
    """
    failed: list[dict] = []

    def loaded(items: list[dict]) -> None:
        for r in items:
            result.loaded[r["resourceType"]] = result.loaded.get(r["resourceType"], 0) + 1

    def transaction(items: list[dict]) -> None:
        client.transaction([_entry(r, client.base_url) for r in items], kind="transaction")
        loaded(items)

    def alone(resource: dict) -> None:
        try:
            client.put(resource)
        except FatalNetworkError as exc:
            if not exc.refused_content:
                raise
            if final:
                result.problems.append(
                    RecordProblem(
                        f"{resource['resourceType']}/{resource['id']}",
                        None,
                        f"refused by the server: HTTP {exc.status}: {exc.outcome or exc}",
                    )
                )
            else:
                failed.append(resource)
            return
        loaded([resource])

    if final:
        for resource in resources:
            alone(resource)
    else:
        send_in_halves(resources, transaction, alone, "transaction")
    return failed


def run_load_cli(args) -> int:
    client = make_client(
        args.target, "FHIR_", ClientOptions(args.ca_bundle, args.allow_insecure_http)
    )
    result = load_folder(args.source, client, args.bundle_size)
    total = sum(result.loaded.values())
    print(
        f"Loaded {total} resources into {client.base_url} with {result.requests} requests: "
        + ", ".join(f"{n} {t}" for t, n in result.loaded.items())
    )
    for problem in result.problems:
        print(f"  not loaded: {problem}", file=sys.stderr)
    if result.problems:
        print(f"{len(result.problems)} record(s) not loaded (listed above)", file=sys.stderr)
    return result.exit_code
