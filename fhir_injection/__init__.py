"""fhir-injection: documented injections in FHIR R4 -> CPT 96372 Claims, gap Tasks and a report.

The public API (pinned by tests/test_api.py):

- :func:`load_rules`, :class:`Rules`, :class:`Config`, :func:`load_config` — the rule tables in
  ``mappings/`` and the run-time choices;
- :class:`Context` — what administrations point to, as plain data;
- :func:`decide`, :func:`decide_all` — the pure decision, one :class:`Decision` per administration;
- :func:`build_claim`, :func:`build_task` — a Decision as FHIR R4 Claim / Task dicts;
- :func:`decide_bundle` — a whole FHIR Bundle (or list of resources) in, decisions out;
- :func:`run_folder` — the offline job (Bulk folder in, Claim/Task/report out);
- :func:`connect`, :class:`FhirClient`, :class:`HttpSession`, :class:`RetryPolicy` — the FHIR client
  (one retry loop, auth from the environment);
- :func:`run_sync`, :class:`SyncOptions`, :class:`SyncResult` — one incremental sync, server to server;
- :func:`load_folder` — upload a Bulk folder to a server (demos, test systems).
"""

from ._version import __version__
from .config import load_config
from .decision.context import Context
from .decision.engine import decide, decide_all
from .decision.model import Decision, Gap, Line
from .decision.practice import Config
from .decision.ruleset import Rules
from .errors import FhirInjectionError, MappingError, RecordError
from .fhir.client import FhirClient
from .fhir.connection import connect
from .fhir.http import HttpSession, RetryPolicy
from .jobs.load import load_folder
from .jobs.offline import run_folder
from .jobs.sync import SyncOptions, SyncResult, run_sync
from .rules import load_rules
from .sinks.claims import build_claim, build_task


def decide_bundle(
    bundle_or_resources, rules: "Rules | None" = None, config: "Config | None" = None
):
    """Decide every MedicationAdministration in a Bundle (dict) or an iterable of resources.

    The other resources in it (Encounter, Patient, Coverage, ...) form the context.
    Returns the decisions in the order the administrations appear.
    """
    if (
        isinstance(bundle_or_resources, dict)
        and bundle_or_resources.get("resourceType") == "Bundle"
    ):
        import copy

        from .fhir.resources import identify_entries, rewrite_references

        # a copy (the caller's Bundle is left as it is) in which entries identified only by fullUrl
        # get their id from it and references to fullUrls become Type/id, as the folder reads it
        entries = copy.deepcopy(bundle_or_resources.get("entry") or [])
        targets = identify_entries(entries)
        resources = [
            resource
            for e in entries
            if isinstance(e, dict) and isinstance(resource := e.get("resource"), dict)
        ]
        for resource in resources:
            rewrite_references(resource, targets)
    else:
        resources = list(bundle_or_resources)
    admins = [r for r in resources if r.get("resourceType") == "MedicationAdministration"]
    return decide_all(
        admins,
        Context(r for r in resources if r.get("resourceType") != "MedicationAdministration"),
        rules or load_rules(),
        config,
    )


__all__ = [
    "Config",
    "Context",
    "Decision",
    "FhirClient",
    "FhirInjectionError",
    "Gap",
    "HttpSession",
    "Line",
    "MappingError",
    "RecordError",
    "RetryPolicy",
    "Rules",
    "SyncOptions",
    "SyncResult",
    "build_claim",
    "build_task",
    "connect",
    "decide",
    "decide_all",
    "decide_bundle",
    "load_config",
    "load_folder",
    "load_rules",
    "run_folder",
    "run_sync",
    "__version__",
]
