"""The rows of the payer tables (mappings/payers.csv, payer_codes.csv, payer_names.csv,
modifiers.csv, filing_limits.csv, fee_schedule.csv): who pays, which modifiers go on, how long a claim can
wait and what a code charges. Plain frozen data; :class:`~fhir_injection.decision.ruleset.Rules`
holds them keyed for look-ups.
"""

from __future__ import annotations

from calendar import monthrange
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

__all__ = [
    "FILING_UNITS",
    "Fee",
    "FilingLimit",
    "Modifier",
    "NameRule",
    "PayerCode",
    "PayerRule",
    "parse_filing_limit",
]


#: the unit of a filing limit (mappings/filing_limits.csv, [filing_limits] in the configuration)
FILING_UNITS = {"d": "days", "m": "months"}


@dataclass(frozen=True)
class Modifier:
    """A CPT or HCPCS modifier the engine puts on by rule (mappings/modifiers.csv): JW, JZ, GY,
    EA-EC, 59/XU, 25."""

    code: str
    use: str  # one of MODIFIER_USES
    lines: frozenset[str]  # of MODIFIER_LINES
    effective: date | None  # the first service date it is put on; None: any date
    payer_types: frozenset[str] = frozenset()  # the payer types whose claims it goes on

    def in_force(self, when: date | None) -> bool:
        """On the service date ``when`` (unknown: today's rules, so in force)."""
        return self.effective is None or when is None or when >= self.effective


@dataclass(frozen=True)
class PayerCode:
    """What a Coverage.type coding says of the payer (payer_codes.csv).

    ``specific`` codes name the payer type outright (NAHDO SOPT 1x Medicare); generic ones say only
    what kind of coverage it is (v3 PUBLICPOL, MCPOL): their ``payer_type`` is used only when neither
    the payor nor the type text says more ("unknown" then: the payer cannot be told).
    """

    payer_type: str
    specific: bool
    display: str


@dataclass(frozen=True)
class NameRule:
    """A whole name (or its first words) that names a payer type (payer_names.csv)."""

    payer_type: str
    type_text: bool  # applies to Coverage.type text
    payor_name: bool  # applies to the payor's name


@dataclass(frozen=True)
class PayerRule:
    """A payer type's rules (mappings/payers.csv); its modifiers come from mappings/modifiers.csv:
    ``distinct_modifier`` (the distinct-procedure row for it), ``jw_jz`` (JW and JZ rows list it)."""

    payer_type: str
    distinct_modifier: str
    requires_ndc: bool
    jw_jz: bool
    pays_99211_with_injection: bool
    mue_96372: int


@dataclass(frozen=True)
class FilingLimit:
    """How long after the date of service a payer type takes a claim (mappings/filing_limits.csv):
    ``amount`` days or months; ``months`` 12 from 2025-10-01 is 2026-10-01, the last day to file."""

    amount: int
    unit: str  # days | months (FILING_UNITS)
    text: str  # as written: "12m", "180d"

    def deadline(self, service: date) -> date:
        """The last day a claim for a service on ``service`` can be filed (``date.max`` when that
        is past the calendar's end: a service dated 9999)."""
        if self.unit == "days":
            try:
                return service + timedelta(days=self.amount)
            except OverflowError:
                return date.max
        months = service.year * 12 + service.month - 1 + self.amount
        year, month = divmod(months, 12)
        if year > date.max.year:
            return date.max
        # the same day of the month; a day the month lacks (29-31) is its last day
        day = min(service.day, monthrange(year, month + 1)[1])
        return date(year, month + 1, day)

    def longest_days(self) -> int:
        """The most days the limit can span (a month counted as 31 days)."""
        return self.amount * (31 if self.unit == "months" else 1)


def parse_filing_limit(text: object) -> FilingLimit | None:
    """``"12m"`` (months), ``"180d"`` (days) or ``"none"`` (no limit: None); ValueError otherwise."""
    raw = text.strip().lower() if isinstance(text, str) else ""
    if raw == "none":
        return None
    number, unit = raw[:-1], raw[-1:]
    if unit not in FILING_UNITS or not number.isdigit() or int(number) < 1:
        raise ValueError(
            f"filing limit {text!r} is not a number of days or months (e.g. '180d', '12m') "
            "or 'none'"
        )
    return FilingLimit(int(number), FILING_UNITS[unit], raw)


@dataclass(frozen=True)
class Fee:
    amount: Decimal
    per: str  # "service" or "unit"
