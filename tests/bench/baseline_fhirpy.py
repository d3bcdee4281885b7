"""The baseline: the same job written the straightforward way with fhirpy's SyncFHIRClient.

What an integration engineer would write from fhirpy's README: page through
MedicationAdministrations with a searchset, and for each one follow its references
(``reference.to_resource()``: patient, encounter, medication, performers, conditions,
the encounter's organisation) and search its patient's Consents, Coverages and
ChargeItems; decide with this project's own engine (``decide_all``, per patient, so the
same-day rules see a patient's whole day), build the Claim with ``build_claim`` and POST it.

Two deliberate departures from the most literal code, both so the comparison is fair:

* Claims are POSTed as conditional creates with an ``If-None-Exist`` header, so a rerun does
  not duplicate them. fhirpy's documented ``resource.create(identifier=...)`` sends the
  criteria as *query parameters*, which HAPI ignores (checked: two calls made two Claims),
  so the POST goes through ``client._do_request(..., extra_headers=...)``, the single
  place this code uses something below fhirpy's public API.
* The Claims carry their own identifier system (``urn:fhir-injection:bench-baseline``), so
  the baseline creates them afresh on a server where our sync has already posted its own,
  and the benchmark can compare the two sets Claim by Claim.

It posts Claims only (no gap Tasks) and does not update a Claim whose administration
changed (a conditional create just finds the old one): both make it *cheaper* than ours.
fhirpy sends each request with ``requests.request`` (a new connection each time, no
keep-alive); that is the library's behaviour, not something added here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound

from fhir_injection import Config, Context, build_claim, decide_all

BASELINE_SYSTEM = "urn:fhir-injection:bench-baseline"
MA = "MedicationAdministration"


@dataclass
class BaselineResult:
    administrations: int = 0
    claims_posted: int = 0
    claims_created: int = 0
    outcomes: dict = field(default_factory=dict)


def _plain(resource) -> dict:
    return resource.serialize() if hasattr(resource, "serialize") else dict(resource)


class FhirpyBaseline:
    def __init__(self, url: str, rules, config: Config | None = None):
        self.client = SyncFHIRClient(url)
        self.rules = rules
        base = config or Config()
        self.config = Config(
            severity=base.severity,
            distinct_modifier=base.distinct_modifier,
            jw_jz=base.jw_jz,
            identifier_system=BASELINE_SYSTEM,
            billing_provider=base.billing_provider,
        )

    # -- reading, one request per reference ------------------------------------------------------

    def _get(self, reference: str | None) -> dict | None:
        if isinstance(reference, str) and "?identifier=" in reference:
            # A conditional reference (the demo's serviceProvider): the obvious fhirpy search; one match only.
            rtype, value = reference.split("?identifier=", 1)
            found = self._search(rtype, identifier=value)
            return found[0] if len(found) == 1 else None
        if not isinstance(reference, str) or "/" not in reference or reference.startswith("#"):
            return None
        try:
            return _plain(self.client.reference(reference=reference).to_resource())
        except ResourceNotFound:
            return None

    def _search(self, rtype: str, **params) -> list[dict]:
        return [_plain(r) for r in self.client.resources(rtype).search(**params).fetch_all()]

    def _related(self, admin: dict) -> list[dict]:
        """Everything one administration points to, fetched the obvious way."""
        found: list[dict] = []

        def add(resource):
            if resource:
                found.append(resource)
            return resource

        subject = (admin.get("subject") or {}).get("reference")
        add(self._get(subject))
        encounter = add(self._get((admin.get("context") or {}).get("reference")))
        if not admin.get("context") and isinstance(subject, str):  # placed by its period
            for candidate in self._search("Encounter", patient=subject):
                add(candidate)
                for location in candidate.get("location") or []:
                    add(self._get(((location or {}).get("location") or {}).get("reference")))
        add(self._get((admin.get("medicationReference") or {}).get("reference")))
        for performer in admin.get("performer") or []:
            add(self._get(((performer or {}).get("actor") or {}).get("reference")))
        for reason in admin.get("reasonReference") or []:
            add(self._get((reason or {}).get("reference")))
        if encounter:
            add(self._get((encounter.get("serviceProvider") or {}).get("reference")))
            for location in encounter.get("location") or []:  # the place of service
                add(self._get(((location or {}).get("location") or {}).get("reference")))
            for participant in encounter.get("participant") or []:  # the rendering provider
                add(self._get(((participant or {}).get("individual") or {}).get("reference")))
            for diagnosis in encounter.get("diagnosis") or []:
                add(self._get(((diagnosis or {}).get("condition") or {}).get("reference")))
            for reason in encounter.get("reasonReference") or []:
                add(self._get((reason or {}).get("reference")))
        if isinstance(subject, str) and subject.startswith("Patient/"):
            found += self._search("Consent", patient=subject)
            found += self._search("Coverage", beneficiary=subject)
            found += self._search("ChargeItem", subject=subject)
            found += self._search("Observation", patient=subject)  # an ESA's hemoglobin
        return found

    # -- the job -------------------------------------------------------------------------------

    def run(self, created: str, since: str | None = None, page_size: int = 100) -> BaselineResult:
        """Full sync (``since`` None) or the administrations changed since ``since``."""
        search = self.client.resources(MA).limit(page_size)
        if since:
            search = search.search(_lastUpdated=f"ge{since}")
        changed = [_plain(r) for r in search]  # fhirpy follows the next links
        by_patient: dict[str, list[dict]] = defaultdict(list)
        for admin in changed:
            by_patient[(admin.get("subject") or {}).get("reference") or ""].append(admin)
        result = BaselineResult()
        for subject, admins in by_patient.items():
            group = list(admins)
            if since and subject.startswith("Patient/"):
                # the same-day rules need the patient's other administrations of those days
                days = {str(a.get("effectiveDateTime"))[:10] for a in admins}
                known = {a["id"] for a in admins}
                for other in self._search(MA, subject=subject):
                    if (
                        other["id"] not in known
                        and str(other.get("effectiveDateTime"))[:10] in days
                    ):
                        group.append(other)
            context: list[dict] = []
            for admin in group:
                context += self._related(admin)
            mine = {a["id"] for a in admins}
            for decision in decide_all(group, Context(context), self.rules, self.config):
                if decision.administration_id not in mine:
                    continue
                result.administrations += 1
                result.outcomes[decision.outcome] = result.outcomes.get(decision.outcome, 0) + 1
                claim = build_claim(decision, self.config, created)
                if claim is None:
                    continue
                body = {k: v for k, v in claim.items() if k != "id"}
                ident = claim["identifier"][0]
                _, status = self.client._do_request(
                    "post",
                    "Claim",
                    data=body,
                    returning_status=True,
                    extra_headers={
                        "If-None-Exist": f"identifier={ident['system']}|{ident['value']}"
                    },
                )
                result.claims_posted += 1
                result.claims_created += status == 201
        return result


def next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()
