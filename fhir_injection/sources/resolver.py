"""What a page of administrations needs besides itself, looked up in batches: the shared resolver.

Every pull hands its pages to the same look-ups: :class:`Resolver` fetches what the administrations and their encounters point to, the patients' consents, coverages and
charge items) as ``_id`` / ``patient=`` list searches with a per-run cache, and conditional
references (``Practitioner?identifier=s|v``) as one ``identifier=s|v,s|v,…`` search per type in
the same round; :func:`gather` asks all
a page needs in as few requests as possible, letting a sink's own searches (its Claims and Tasks
already on the server) ride in the same batch Bundle.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, timedelta
from itertools import chain
from typing import Protocol

from ..decision.context import (
    AdministrationPointers,
    Context,
    administration_references,
    coverage_references,
    encounter_references,
    practitioner_roles,
    role_references,
)
from ..decision.localtime import service_date
from ..decision.practice import Config
from ..fhir.client import FhirClient, Lookup
from ..fhir.resources import (
    FOUND_BY_PATIENT,
    conditional_reference,
    identifiers_of,
    patient_id_of,
    split_reference,
    token_matches,
    token_text,
)

__all__ = [
    "LOOKUP_CHUNK",
    "MA",
    "PAGE_INCLUDES",
    "Resolver",
    "Rider",
    "gather",
    "last_updated",
]

log = logging.getLogger("fhir_injection.sync")


class Rider(Protocol):
    """Searches of a sink's that travel with a source's look-ups (one request instead of two)."""

    def lookups(self, administration_ids: list[str]) -> list[Lookup]: ...

    def take(self, lookups: list[Lookup], results: list[list[tuple[dict, str]]]) -> None: ...


# Values per batched look-up (_id, patient=, identifier= lists): a whole page's worth, so a page
# costs a fixed number of requests; long lists go as POST _search.
LOOKUP_CHUNK = 500
MA = "MedicationAdministration"
PAGE_INCLUDES = (f"{MA}:context", f"{MA}:subject", f"{MA}:medication", f"{MA}:performer")


class Resolver:
    """Batched look-ups of what administrations point to, with a per-run cache.

    :meth:`lookups` says what is still unknown for some administrations (what they
    point to, what their encounters point to, their patients' consents, coverages
    and charge items); :meth:`take` files the answers; :meth:`fetch` does one round
    of both, with other searches riding in the same request (the caller repeats it:
    the encounters' own references are only known once the encounters are).
    """

    def __init__(
        self,
        client: FhirClient,
        chunk_size: int = 500,
        payors_needed: Callable[[Mapping], bool] = lambda coverage: True,
    ):
        """``payors_needed(coverage)``: whether the payer type may be read from the Coverage's payor
        Organizations, so they are fetched (the sync passes "unless its type names the payer")."""
        self.client = client
        self.chunk = chunk_size
        self.payors_needed = payors_needed
        self.cache: dict[str, Mapping | None] = {}  # "Type/id" -> resource (None: known missing)
        self.by_patient: dict[tuple[str, str], list[Mapping]] = {}
        # a conditional reference's identifier search: (type, (system, value)) -> "Type/id" found
        self.by_identifier: dict[tuple[str, tuple[str | None, str]], tuple[str, ...]] = {}
        self._asked: dict[tuple[str, str], tuple[str | None, str]] = {}  # search text -> token
        cs = client.capabilities()
        resources = [r for rest in cs.get("rest") or [] for r in rest.get("resource") or []]
        self.has_type = {r.get("type") for r in resources}
        # PractitionerRole?practitioner=…: the roles of the Practitioners the administrations and
        # their encounters name (their specialty tells a physician or NPP from a nurse), asked only
        # of a server that lists the search
        self.role_search = any(
            r.get("type") == "PractitionerRole"
            and any(p.get("name") == "practitioner" for p in r.get("searchParam") or [])
            for r in resources
        )
        self.roles_of: dict[str, tuple[str, ...]] = {}  # "Practitioner/id" -> its roles' keys

    def remember(self, resource: Mapping) -> None:
        if resource.get("resourceType") and resource.get("id"):
            self.cache[f"{resource['resourceType']}/{resource['id']}"] = resource

    def _references(self, admins: list[Mapping]) -> tuple[set[str], set[str], set[tuple]]:
        """("Type/id" the administrations and their known encounters point to, their patients' ids,
        the (type, identifier token) searches their conditional references ask for).

        What counts as "points to" is the engine's own list (:func:`administration_references`,
        :func:`encounter_references`, :func:`role_references`), so the look-ups fetch exactly what
        the decision reads. A conditional reference (``Practitioner?identifier=s|v``) already searched adds what it
        found, so its resources reach the Context and an Encounter found that way is followed.
        """
        refs: set[str] = set()
        patients: set[str] = set()
        tokens: set[tuple[str, tuple[str | None, str]]] = set()

        def want(found) -> None:
            for reference, expected in found:
                pair = split_reference(reference)
                if pair is not None:
                    if expected is None or pair[0] == expected:
                        refs.add(f"{pair[0]}/{pair[1]}")
                    continue
                conditional = conditional_reference(reference)
                if (
                    conditional is None
                    or conditional.problem
                    or (expected is not None and conditional.type != expected)
                ):
                    continue
                for token in conditional.tokens:
                    tokens.add((conditional.type, token))
                    refs.update(self.by_identifier.get((conditional.type, token), ()))

        for a in admins:
            want(administration_references(a))
            pid = patient_id_of(a)
            if pid:
                patients.add(pid)
        for key in [k for k in refs if k.startswith("Encounter/")]:
            enc = self.cache.get(key)
            if enc:
                want(encounter_references(enc))
        for pid in _uncontexted(admins):  # their Encounters place them: what those point to too
            for enc in self.by_patient.get(("Encounter", pid), ()):
                want(encounter_references(enc))
        for key in [k for k in refs if k.startswith("PractitionerRole/")]:
            role = self.cache.get(key)  # a performer's or participant's: its Practitioner too
            if role:
                want(role_references(role))
        for key in [k for k in refs if k.startswith("Practitioner/")]:
            refs.update(self.roles_of.get(key, ()))  # the roles found naming it
        for pid in patients:  # the payors of coverages already found (a later round fetches them)
            for coverage in self.by_patient.get(("Coverage", pid), ()):
                if self.payors_needed(coverage):
                    want(coverage_references(coverage))
        return refs, patients, tokens

    def lookups(self, admins: list[Mapping]) -> list[Lookup]:
        """The searches that would fill in what these administrations need and the cache lacks."""
        refs, patients, tokens = self._references(admins)
        by_type: dict[str, set[str]] = defaultdict(set)
        for key in refs:
            if key not in self.cache:
                rtype, rid = key.split("/", 1)
                if rtype in self.has_type:
                    by_type[rtype].add(rid)
                else:
                    self.cache[key] = None  # the server has no such type: nothing to ask
        out = [Lookup(t, "_id", tuple(sorted(ids))) for t, ids in sorted(by_type.items())]
        if self.role_search:
            todo = sorted(
                k for k in refs if k.startswith("Practitioner/") and k not in self.roles_of
            )
            if todo:
                out.append(Lookup("PractitionerRole", "practitioner", tuple(todo)))
        # conditional references: one identifier search per type, all its values OR-ed
        by_type_tokens: dict[str, set[str]] = defaultdict(set)
        for rtype, token in tokens:
            if (rtype, token) in self.by_identifier:
                continue
            if rtype not in self.has_type:
                self.by_identifier[(rtype, token)] = ()
                continue
            text = token_text(*token)
            self._asked[(rtype, text)] = token
            by_type_tokens[rtype].add(text)
        out += [
            Lookup(t, "identifier", tuple(sorted(texts)))
            for t, texts in sorted(by_type_tokens.items())
        ]
        # an administration naming no Encounter is placed in its patient's Encounter whose period
        # contains it (decision/setting.py): Encounter?patient= for those patients only
        uncontexted = _uncontexted(admins)
        for rtype, param in [*FOUND_BY_PATIENT, ("Encounter", "patient")]:
            wanted = patients if rtype != "Encounter" else uncontexted
            todo = sorted(p for p in wanted if (rtype, p) not in self.by_patient)
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
        for lk, found in zip(lookups, results, strict=True):
            if lk.param == "identifier":
                matched = [
                    r for r, mode in found if mode == "match" and r.get("resourceType") == lk.type
                ]
                for resource in matched:
                    self.remember(resource)
                for text in lk.values:
                    token = self._asked.pop((lk.type, text), None)
                    if token is None:
                        continue
                    self.by_identifier[(lk.type, token)] = tuple(
                        sorted(
                            {
                                f"{lk.type}/{r.get('id')}"
                                for r in matched
                                if any(token_matches(token, *i) for i in identifiers_of(r))
                            }
                        )
                    )
                continue
            if lk.param == "practitioner":  # PractitionerRole?practitioner=Practitioner/…
                for value in lk.values:
                    self.roles_of[value] = ()
                roles = [
                    r for r, mode in found if mode == "match" and r.get("resourceType") == lk.type
                ]
                for resource in roles:
                    self.remember(resource)
                for key, named in practitioner_roles(roles).items():
                    if key in self.roles_of:
                        self.roles_of[key] += tuple(f"{lk.type}/{r.get('id')}" for r in named)
                continue
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
                if mode == "match" and pid is not None and (lk.type, pid) in self.by_patient:
                    self.by_patient[(lk.type, pid)].append(resource)
                    self.remember(resource)

    def fetch(
        self, admins: list[Mapping], extra: Iterable[Lookup] = ()
    ) -> list[list[tuple[dict, str]]] | None:
        """One round: what these administrations still need, plus ``extra`` searches, in one go.

        Returns the results of ``extra``; None when there was nothing to ask.
        """
        mine = self.lookups(admins)
        extra = list(extra)
        if not mine and not extra:
            return None
        results = self.client.lookup_many(mine + extra, self.chunk)
        self.take(mine, results[: len(mine)])
        return results[len(mine) :]

    def known(self) -> Context:
        """What the cache holds so far, as a Context to read (nothing is fetched)."""
        return Context(lookup=lambda rtype, rid: self.cache.get(f"{rtype}/{rid}"))

    def context(self, admins: list[Mapping]) -> Context:
        """A Context with what the cache holds for these administrations."""
        refs, patients, _ = self._references(admins)
        held = (resource for key in refs if (resource := self.cache.get(key)) is not None)
        scoped = (
            resource
            for rtype in [*(t for t, _ in FOUND_BY_PATIENT), "Encounter"]
            for pid in patients
            for resource in self.by_patient.get((rtype, pid), ())
        )
        return Context(chain(held, scoped))


def _uncontexted(admins: list[Mapping]) -> set[str]:
    """The patients of the administrations that name no Encounter (no ``context``)."""
    found = set()
    for a in admins:
        pid = patient_id_of(a)
        if pid and AdministrationPointers(a).encounter is None:
            found.add(pid)
    return found


def last_updated(resource: Mapping) -> str | None:
    value = (resource.get("meta") or {}).get("lastUpdated")
    return value if isinstance(value, str) else None


def _sibling_lookups(
    client: FhirClient, admins: Sequence[Mapping], day_of: Callable[[Mapping], date | None]
) -> list[Lookup]:
    """Searches for the same patients' other administrations on the same days (for same-day rules).

    Where searches travel together in a batch, one search per local day of the page (``day_of``:
    the clinic's day, as the decision reads it), for the patients with an administration that day,
    over that day ± 1 (a server reads a date-only bound in its own time zone, and an evening
    injection at UTC−5 is the next day in UTC): a few days of a few patients, not the page's whole
    date range for every patient on it. Elsewhere one search over the whole range. What they point
    to comes along by ``_include``, so the siblings need no look-up round of their own.
    """
    if not client.supports_search_param(MA, "effective-time"):
        return []
    by_day: dict[date, set[str]] = defaultdict(set)
    for a in admins:
        pid = patient_id_of(a)
        day = day_of(a) if pid else None  # None: no date, so no sibling can share it
        if pid and day is not None:
            by_day[day].add(pid)
    includes = tuple(("_include", inc) for inc in PAGE_INCLUDES if client.supports_include(MA, inc))
    groups = sorted(by_day.items())
    if groups and not client.can_batch_searches():
        # One request per search here: one search over the page's whole date range instead.
        spans = [(groups[0][0], set().union(*(p for _, p in groups)), groups[-1][0])]
    else:
        spans = [(d, p, d) for d, p in groups]
    return [
        Lookup(
            MA,
            "subject",
            tuple(f"Patient/{p}" for p in sorted(patients)),
            (
                ("effective-time", f"ge{(lo - timedelta(days=1)).isoformat()}"),
                ("effective-time", f"lt{(hi + timedelta(days=2)).isoformat()}"),
                *includes,
            ),
        )
        for lo, patients, hi in spans
    ]


def gather(
    source: FhirClient,
    resolver: Resolver,
    rider: Rider,
    page_admins: Sequence[Mapping],
    same_server: bool,
    config: Config | None = None,
    known_siblings: Sequence[Mapping] | None = None,
) -> tuple[list[Mapping], Context]:
    """Everything a page needs before it can be decided and posted, in as few requests as possible.

    Round 1 asks, together: what the page's administrations point to, their patients'
    consents/coverages/charge items, the same patients' other administrations on those
    days (siblings, for the same-day rules, with what they point to) and, when the target
    is the source, the page's Claims and Tasks already there. Round 2, only when there are
    siblings or new encounters: what those point to, and the siblings' Claims and Tasks.

    The page is grouped by the clinic's day with ``config`` (its time zone) and what the cache
    holds (the encounters the page ``_include``\\ d, Locations and Organizations met before).
    ``known_siblings``: the pull already has them (the crawl asks a patient's whole days), so
    there is no sibling search.
    """
    config = config or Config()
    held = resolver.known()
    sibs = (
        _sibling_lookups(source, page_admins, lambda a: service_date(a, held, config))
        if known_siblings is None
        else []
    )
    known = {a.get("id") for a in page_admins}
    admins = list(page_admins)
    siblings: dict[str, Mapping] = {
        s["id"]: s for s in known_siblings or () if s.get("id") not in known
    }
    if known_siblings is not None:
        admins += siblings.values()
    extra: list[Lookup] = sibs + (
        rider.lookups([a["id"] for a in page_admins] + list(siblings)) if same_server else []
    )
    for round_ in range(4):
        results = resolver.fetch(admins, extra)
        if results is None:
            break
        answers = dict(zip(extra, results, strict=True))
        for lk in sibs if round_ == 0 else ():
            for r, mode in answers.pop(lk, ()):
                if mode != "match":
                    resolver.remember(r)
                elif r.get("resourceType") == MA and r.get("id") not in known:
                    siblings.setdefault(r["id"], r)
        if answers:
            rider.take(list(answers), list(answers.values()))
        if round_ == 0 and known_siblings is None:
            admins += siblings.values()
        extra = (
            rider.lookups(list(siblings))
            if same_server and round_ == 0 and known_siblings is None
            else []
        )
    return list(siblings.values()), resolver.context(admins)
