"""The engine's answer for one administration, in billing words.

A :class:`Decision` is plain, immutable data: what the administration is
(``outcome``, ``procedure``), what would be billed (``lines``), and why not
(``gaps``). :mod:`fhir_injection.claims` turns it into FHIR Claim and Task
resources; :mod:`fhir_injection.report` into the report a billing team reads.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from decimal import Decimal
from typing import Any

__all__ = [
    "ACTIONABLE_OUTCOMES",
    "CENT",
    "Coding",
    "Decision",
    "EsaReading",
    "Gap",
    "Line",
    "quick_init",
]


def quick_init(cls):
    """Give a frozen dataclass an ``__init__`` that fills the instance's fields in one dict update.

    The generated one calls ``object.__setattr__`` once per field: 9 µs for a Decision, made once or
    twice per administration. This one takes the same arguments, with the same defaults and default
    factories, and gives an equal instance (fields, eq, hash, repr and frozenness are the dataclass's).
    """
    args, factories, names = [], [], []
    scope: dict = {"_MISSING": MISSING}
    for f in fields(cls):
        names.append(f.name)
        if f.default is not MISSING:
            scope[f"_default_{f.name}"] = f.default
            args.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not MISSING:
            scope[f"_factory_{f.name}"] = f.default_factory
            args.append(f"{f.name}=_MISSING")
            factories.append(
                f"    if {f.name} is _MISSING:\n        {f.name} = _factory_{f.name}()\n"
            )
        else:
            args.append(f.name)
    source = (
        f"def __init__(self, {', '.join(args)}):\n"
        + "".join(factories)
        + f"    self.__dict__.update({', '.join(f'{n}={n}' for n in names)})\n"
    )
    exec(source, scope)
    scope["__init__"].__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = scope["__init__"]
    return cls


CENT = Decimal("0.01")  # money is rounded to it
#: the outcomes a person can still act on for billing (the 96372 bills, or is blocked by gaps)
ACTIONABLE_OUTCOMES = frozenset({"claim", "held", "not-96372"})


@quick_init
@dataclass(frozen=True)
class Gap:
    """A documentation gap or billing flag: code from the gap CodeSystem, and where it applies."""

    code: str
    severity: str  # error | warning | info
    message: str  # what a coder can act on; never carries PHI
    field: str  # the FHIR element looked at
    rule: str  # where the rule comes from

    def as_dict(self) -> dict[str, str]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "field": self.field,
            "rule": self.rule,
        }


@quick_init
@dataclass(frozen=True)
class Coding:
    system: str | None
    code: str | None
    display: str | None = None

    def as_fhir(self) -> dict[str, str]:
        out = {}
        if self.system:
            out["system"] = self.system
        if self.code:
            out["code"] = self.code
        if self.display:
            out["display"] = self.display
        return out


@quick_init
@dataclass(frozen=True)
class Line:
    """One claim line: the 96372 service, the drug, or the drug's discarded amount (JW)."""

    kind: str  # "administration" | "drug" | "waste" (the JW line: same code, the units discarded)
    system: str
    code: str
    display: str | None
    modifiers: tuple[str, ...] = ()
    quantity: int | None = 1
    unit_price: Decimal | None = None
    ndc: str | None = None  # 11-digit, for the drug line
    ndc_quantity: Decimal | None = None
    ndc_unit: str | None = None  # UN | ML | GR | F2
    text: str | None = None  # drug name and dose for unclassified drugs
    #: billing units discarded from the single-dose container(s) opened, as JW/JZ worked them out
    #: (drug line: 0 with JZ; waste line: its own quantity); None: not worked out
    discarded: int | None = None

    @property
    def net(self) -> Decimal | None:
        if self.unit_price is None or self.quantity is None:
            return None
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class EsaReading:
    """The hemoglobin or hematocrit a Medicare ESA claim reports (CMS CR 5699): the Observation it
    was read from, its LOINC code, value and unit, and the date it was taken."""

    observation: str  # "Observation/<id>"
    system: str
    code: str
    display: str
    reading: str  # hemoglobin | hematocrit
    value: Decimal
    unit: str | None
    taken: str  # the Observation's effective date-time (or date) as written

    def as_fhir_code(self) -> dict:
        return {"system": self.system, "code": self.code, "display": self.display}


@quick_init
@dataclass(frozen=True)
class Decision:
    """Everything decided about one MedicationAdministration."""

    administration: str  # "MedicationAdministration/<id>"
    version: str | None
    outcome: str  # claim | held | not-96372 | not-billable | void | past-filing-limit
    procedure: str | None  # the code chosen or suggested
    gaps: tuple[Gap, ...] = ()
    additional: tuple[tuple[str, int], ...] = ()  # add-on codes with units, e.g. (("96361", 1),)
    lines: tuple[Line, ...] = ()
    patient: str | None = None  # "Patient/<id>" when it exists
    encounter: str | None = None
    coverage: str | None = None
    payer_type: str | None = None
    provider: str | None = None  # billing provider reference
    performer: str | None = None  # who gave it (the administering nurse stays the performer)
    rendering: str | None = None  # the rendering provider (incident-to: the supervising one)
    service_date: str | None = None  # YYYY-MM-DD
    effective: str | None = None  # the administration's dateTime as given
    setting: str | None = None
    place_of_service: str | None = None
    body_site: tuple[Coding, ...] = ()
    body_site_text: str | None = None
    diagnoses: tuple[Coding, ...] = ()
    drug: str | None = None  # HCPCS
    units: int | None = None
    package: Any = None  # the container (a rules.Package) when known: JW/JZ and the NDC unit
    medication_text: str | None = None
    lab: EsaReading | None = None  # a Medicare ESA's latest hemoglobin or hematocrit (CR 5699)
    claim_status: str | None = None  # active | draft | cancelled | None (no Claim)
    claim_blocker: str | None = None  # why no Claim could be formed, when a 96372 has none
    #: where each fact of rules.BASIS_FACTS came from: (fact, kind of rules.BASIS_KINDS, how)
    basis: tuple[tuple[str, str, str], ...] = ()
    #: the last day the payer takes a claim for it (YYYY-MM-DD; its filing limit from the service
    #: date), and the days from the run's as-of day to it (negative: past); None: not known
    filing_deadline: str | None = None
    days_left: int | None = None
    #: the filing limit applied ("12m", "365d"; "none": self-pay), or why none could be computed
    #: ("unknown: no payer type", "unknown: no date of service"); None: not a service to bill
    filing_limit: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def administration_id(self) -> str:
        return self.administration.split("/", 1)[1]

    @property
    def actionable_gaps(self) -> tuple[Gap, ...]:
        """The gaps a billing person or clinician can fix to get paid: the errors and warnings of a
        service the practice bills: a 96372 that bills (``claim``) or is blocked (``held``), or another
        code it bills itself (``not-96372``: an IV infusion, an implant insertion, a vaccine
        administration, whose drug line needs the same documentation; the gaps such a decision
        keeps are only those about what it bills, see the gap CodeSystem's ``raised-for``). Every
        sink opens a Task from these, and only from these. Nothing to bill (``not-billable``:
        inpatient, not given, oral, duplicate) or a ``void`` leaves nothing to act on: no Task,
        though the report still lists every gap."""
        if self.outcome not in ACTIONABLE_OUTCOMES:
            return ()
        return tuple(g for g in self.gaps if g.severity != "info")

    @property
    def estimated_amount(self) -> Decimal:
        return sum((line.net for line in self.lines if line.net is not None), Decimal(0))
