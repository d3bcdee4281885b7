"""The engine's answer for one administration, in billing words.

A :class:`Decision` is plain, immutable data: what the administration is
(``outcome``, ``procedure``), what would be billed (``lines``), and why not
(``gaps``). :mod:`fhir_injection.claims` turns it into FHIR Claim and Task
resources; :mod:`fhir_injection.report` into the report a billing team reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

#: For ``isinstance(value, MAPPING)``: a JSON object is a dict, and the dict check, tried first, costs
#: far less than the abstract ``Mapping`` one, which still admits any other mapping.
MAPPING = (dict, Mapping)

SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}
CENT = Decimal("0.01")  # money is rounded to it


@dataclass(frozen=True)
class Gap:
    """A documentation gap or billing flag: code from the gap CodeSystem, and where it applies."""

    code: str
    severity: str  # error | warning | info
    message: str  # what a coder can act on; never carries PHI
    field: str  # the FHIR element looked at
    rule: str  # where the rule comes from

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity, "message": self.message,
                "field": self.field, "rule": self.rule}


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


@dataclass(frozen=True)
class Line:
    """One claim line: the 96372 service or the drug."""

    kind: str  # "administration" | "drug"
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

    @property
    def net(self) -> Decimal | None:
        if self.unit_price is None or self.quantity is None:
            return None
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class Decision:
    """Everything decided about one MedicationAdministration."""

    administration: str  # "MedicationAdministration/<id>"
    version: str | None
    outcome: str  # claim | held | not-96372 | not-billable | void
    procedure: str | None  # the code chosen or suggested
    gaps: tuple[Gap, ...] = ()
    lines: tuple[Line, ...] = ()
    patient: str | None = None  # "Patient/<id>" when it exists
    encounter: str | None = None
    coverage: str | None = None
    payer_type: str | None = None
    provider: str | None = None  # billing provider reference
    performer: str | None = None
    service_date: str | None = None  # YYYY-MM-DD
    effective: str | None = None  # the administration's dateTime as given
    setting: str | None = None
    place_of_service: str | None = None
    body_site: tuple[Coding, ...] = ()
    body_site_text: str | None = None
    diagnoses: tuple[Coding, ...] = ()
    drug: str | None = None  # HCPCS
    units: int | None = None
    medication_text: str | None = None
    claim_status: str | None = None  # active | draft | cancelled | None (no Claim)
    claim_blocker: str | None = None  # why no Claim could be formed, when a 96372 has none
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def administration_id(self) -> str:
        return self.administration.split("/", 1)[1]

    @property
    def actionable_gaps(self) -> tuple[Gap, ...]:
        """Gaps a clinician or coder must look at (errors and warnings)."""
        return tuple(g for g in self.gaps if g.severity != "info")

    @property
    def estimated_amount(self) -> Decimal:
        return sum((line.net for line in self.lines if line.net is not None), Decimal(0))
