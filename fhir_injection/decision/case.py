"""Pass 1 of the decision: the administration being decided (:class:`Case`), the gaps it collects,
and the draft it ends in.

:func:`~fhir_injection.decision.engine._decide_one` makes one :class:`Case` per administration
and runs the steps of :mod:`.record`, :mod:`.early` and :mod:`.billing` on it in order (the
order of the gaps). Each step reads the facts earlier steps set on the case and sets its own; the
names stay private to the decision package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from functools import lru_cache

from ..fhir.resources import MAPPING, ref_key
from .context import AdministrationPointers, Context, EncounterPointers
from .diagnosis_codes import Diagnoses, read_diagnoses
from .drug_tables import DoseFormCategory, Drug
from .elements import parse_time
from .infusion import IvService
from .localtime import effective_of
from .medication import Medication
from .model import Coding, Decision, EsaReading, Gap, Line
from .payer_tables import PayerRule
from .practice import Config
from .ruleset import Rules

__all__ = ["Case", "Draft", "Gaps", "cached_ref_key", "first_decision", "key_of", "replace"]

#: ref_key of a reference the engine has resolved (so always text), worked out once: the same patients,
#: encounters, clinicians and clinics come back for administration after administration
cached_ref_key = lru_cache(maxsize=1024)(ref_key)


def key_of(reference, found: Mapping | None) -> str | None:
    """``Type/id`` of the resource ``reference`` resolved to, for a Claim or Task to point to: the
    literal reference normalised, or the found resource's own type and id (a conditional or a
    Bundle reference). None when nothing was found or it is contained (only its container can
    point to it)."""
    if found is None:
        return None
    key = cached_ref_key(reference)
    if key is not None:
        return key
    if reference.startswith("#"):
        return None
    return f"{found.get('resourceType')}/{found.get('id')}"


class Gaps:
    items: list[Gap]

    def __init__(self, rules: Rules, config: Config):
        self.rules, self.config, self.items = rules, config, []

    def add(self, code: str, detail: str | None = None, severity: str | None = None) -> None:
        gap_type = self.rules.gaps[code]
        message = gap_type.definition if not detail else f"{detail}. {gap_type.definition}"
        sev = severity or self.config.severity.get(code, gap_type.severity)
        self.items.append(Gap(code, sev, message, gap_type.field, gap_type.source))

    def has(self, code: str) -> bool:
        # A loop, not any(...): no generator is made per call on the hot path.
        for gap in self.items:  # noqa: SIM110
            if gap.code == code:
                return True
        return False


@dataclass
class Draft:
    """Pass-1 result for one administration; pass 2 adds the same-day rules."""

    admin: Mapping
    decision: Decision
    when: datetime | date | None
    duplicate_key: tuple | None
    identifiers: tuple[str, ...]
    gaps: Gaps


def replace(record, **changes):
    """``dataclasses.replace`` for the engine's frozen records (no ``__post_init__``, every field set
    by ``__init__``): a copy of the instance's fields with ``changes``, without a call through
    ``__init__``; several times quicker, and the engine makes one or more per administration."""
    copy = object.__new__(type(record))
    vars(copy).update(vars(record), **changes)
    return copy


def first_decision(key: str, version, **changes) -> Decision:
    """The decision of an administration that stops early (void, not given, inside a facility's payment)."""
    return Decision(
        administration=key,
        version=version,
        **{"outcome": "not-billable", "procedure": None, **changes},
    )


class Case:
    """One administration being decided: its inputs, and the facts the steps have found so far.

    Each step of :func:`_decide_one` reads what earlier steps set and sets its own facts; a plain
    slotted class, as one is made per administration.
    """

    __slots__ = (
        "admin",
        "ctx",
        "rules",
        "config",
        "gaps",  # the inputs, and the gaps found so far
        "key",
        "version",
        "effective",
        "when",
        "identifiers",
        "refs",  # the administration
        # the steps' facts, in step order
        "patient_ref",
        "patient_id",
        "med",
        "dosage",
        "route",
        "route_problem",
        "iv",
        "additional",
        "encounter_ref",
        "encounter",
        "encounter_refs",
        "zone",
        "local",
        "setting",
        "pos",
        "procedure",
        "outcome",
        "not_injection",
        "when_date",
        "coverage",
        "payer_type",
        "payer",
        "drug",
        "units",
        "dose",
        "body_site",
        "site_text",
        "performer",
        "performer_found",
        "rendering",
        "diagnoses",
        "lead_diagnoses",
        "coded_diagnoses",
        "read",  # the diagnoses as read_diagnoses gives them, once the encounter is known
        "lab",
        "waste",
        "discarded",
        "sad_gy",
        "modifiers",
        "lines",
        "provider",
        "basis",  # fact -> (fact, kind, how): where the facts a claim line depends on came from
    )
    # the slots' types (annotations only: no class attribute to clash with a slot)
    admin: Mapping
    ctx: Context
    rules: Rules
    config: Config
    gaps: Gaps
    key: str
    version: str | None
    effective: object  # effective[x] as written; only a str is carried onto the Decision
    when: datetime | date | None
    identifiers: tuple[str, ...]
    refs: AdministrationPointers
    patient_ref: str | None
    patient_id: str | None
    med: Medication
    dosage: Mapping
    route: str | None
    route_problem: str | None
    iv: IvService | None  # set for an intravenous route
    additional: tuple[tuple[str, int], ...]  # add-on codes and units (IV infusion hours)
    encounter_ref: str | None
    encounter: Mapping | None
    encounter_refs: EncounterPointers | None
    zone: tzinfo | None  # the clinic's zone the dates are read in (None: each as written)
    local: datetime | date | None  # when, as the clinic's wall time
    setting: str | None  # None: the encounter says nothing known (gap unknown-setting)
    pos: str | None
    procedure: str | None
    outcome: str | None
    not_injection: DoseFormCategory | None  # no route, and the dose form is not an injection
    when_date: date | None
    coverage: Mapping | None
    payer_type: str | None
    payer: PayerRule
    drug: Drug | None
    units: int | None
    dose: tuple[Decimal, str] | None
    body_site: tuple[Coding, ...]
    site_text: str | None
    performer: str | None
    performer_found: Mapping | None  # the performer's resource (its qualification)
    rendering: str | None  # the rendering provider (incident-to: the supervising practitioner)
    diagnoses: list[Coding]
    lead_diagnoses: tuple[Coding, ...]  # pointed to first: a Part B tetanus vaccine's injury
    #: every diagnosis coding read (ICD-10-CM, SNOMED CT, mapped): what diagnosis rules test
    coded_diagnoses: list[Coding]
    read: Diagnoses | None
    lab: EsaReading | None  # the hemoglobin or hematocrit a Medicare ESA claim carries
    waste: int  # billing units discarded from a single-dose container (the JW line)
    #: the billing units discarded as JW/JZ worked them out (0: nothing, JZ); None: not worked out
    discarded: int | None
    sad_gy: bool  # a Medicare self-administered drug billed with GY (sad_policy "gy")
    modifiers: list[str]
    lines: tuple[Line, ...]
    provider: str | None
    basis: dict[str, tuple[str, str, str]]

    def __init__(self, admin: Mapping, ctx: Context, rules: Rules, config: Config):
        self.admin, self.ctx, self.rules, self.config = admin, ctx, rules, config
        self.gaps = Gaps(rules, config)
        self.lead_diagnoses = ()
        self.basis = {}
        self.coded_diagnoses = []
        self.read = None
        self.lab = None
        self.key = f"MedicationAdministration/{admin.get('id')}"
        meta = admin.get(
            "meta"
        )  # usually absent: None is not asked whether it is a Mapping (a slow check)
        self.version = (
            meta.get("versionId") if meta is not None and isinstance(meta, MAPPING) else None
        )
        self.effective = effective = effective_of(admin)
        self.when = parse_time(effective)
        items = admin.get("identifier")
        self.identifiers = (
            ()
            if not isinstance(items, list)
            else tuple(
                sorted(
                    [
                        f"{i.get('system')}|{i.get('value')}"
                        for i in items
                        if isinstance(i, MAPPING) and i.get("value")
                    ]
                )
            )
        )

    def diagnoses_read(self) -> Diagnoses:
        """The administration's diagnoses (:func:`~.clinical.read_diagnoses`), read once: a drug
        whose code depends on the diagnosis, a Part B vaccine and the claim's diagnoses ask for
        them after the encounter is known, and nothing they are read from changes after that."""
        if self.read is None:
            self.read = read_diagnoses(
                self.admin, self.refs, self.encounter, self.encounter_refs, self.ctx, self.rules
            )
        return self.read

    def known(self, fact: str, kind: str, how: str) -> None:
        """Say where ``fact`` (one of rules.BASIS_FACTS) came from: ``kind`` is one of
        rules.BASIS_KINDS (record, rule, practice, unknown); ``how`` names the element, the table
        row or the setting it was read from, or why it is not known."""
        self.basis[fact] = (fact, kind, how)  # as the Decision carries it: no tuple made again

    def basis_items(self) -> tuple[tuple[str, str, str], ...]:
        """The basis as a Decision carries it: (fact, kind, how) in the order found."""
        return tuple(self.basis.values())
