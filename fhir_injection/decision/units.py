"""Dose arithmetic: UCUM units, strength conversion, billing units, NDC format.

All arithmetic is Decimal: 0.3 mg of epinephrine is exactly 3 units of 0.1 mg,
never 3.0000000000000004 rounded up to 4.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import ROUND_CEILING, Decimal, InvalidOperation

from ..fhir.resources import MAPPING

__all__ = [
    "DoseError",
    "MAX_BILLING_UNITS",
    "MAX_DOSE",
    "billing_units",
    "ceiling",
    "convert",
    "ndc11",
    "quantity_amount",
    "ratio_strength",
    "to_decimal",
    "unit_of",
]

# UCUM codes and common free-text spellings -> (dimension, factor to the base unit).
# Base units: mg for mass, mL for volume, unit for activity.
_UNITS: dict[str, tuple[str, Decimal]] = {
    "g": ("mass", Decimal(1000)),
    "gram": ("mass", Decimal(1000)),
    "mg": ("mass", Decimal(1)),
    "milligram": ("mass", Decimal(1)),
    "ug": ("mass", Decimal("0.001")),
    "mcg": ("mass", Decimal("0.001")),
    "µg": ("mass", Decimal("0.001")),
    "microgram": ("mass", Decimal("0.001")),
    "ng": ("mass", Decimal("0.000001")),
    "ml": ("volume", Decimal(1)),
    "millilitre": ("volume", Decimal(1)),
    "milliliter": ("volume", Decimal(1)),
    "l": ("volume", Decimal(1000)),
    "cc": ("volume", Decimal(1)),
    "unit": ("activity", Decimal(1)),
    "units": ("activity", Decimal(1)),
    "u": ("activity", Decimal(1)),
    "[iu]": ("activity", Decimal(1)),
    "iu": ("activity", Decimal(1)),
    "[u]": ("activity", Decimal(1)),
}

MAX_BILLING_UNITS = 99999  # more than any claim form holds: a data error, not a dose
MAX_DOSE = (
    Decimal(10) ** 9
)  # in base units (mg, mL, unit): a tonne of drug in one injection is a data error


class DoseError(ValueError):
    """The dose cannot be turned into billing units; the message says why."""


def unit_of(code: str | None) -> tuple[str, Decimal] | None:
    if not code or not isinstance(code, str):
        return None
    return _UNITS.get(code.strip().lower())


def to_decimal(value) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def convert(
    amount: Decimal,
    from_unit: str,
    to_unit: str,
    strength: tuple[Decimal, str, Decimal, str] | None = None,
) -> Decimal:
    """Convert ``amount`` from one unit to another, through ``strength`` (e.g. 30 mg / 1 mL)
    when the dimensions differ. Raises DoseError when it cannot."""
    src, dst = unit_of(from_unit), unit_of(to_unit)
    if src is None:
        raise DoseError(f"unit '{from_unit}' is not a known UCUM mass, volume or unit code")
    if dst is None:
        raise DoseError(f"billing unit '{to_unit}' is not a known unit")
    if src[0] == dst[0]:
        return amount * src[1] / dst[1]
    if strength is None:
        raise DoseError(f"dose in {from_unit} needs the product strength to convert to {to_unit}")
    num_value, num_unit, den_value, den_unit = strength
    num, den = unit_of(num_unit), unit_of(den_unit)
    if num is None or den is None or den_value == 0:
        raise DoseError("product strength has unknown units")
    # strength in base units: (num base) per (den base)
    per_base = (num_value * num[1]) / (den_value * den[1])
    if src[0] == den[0] and dst[0] == num[0]:
        return amount * src[1] * per_base / dst[1]
    if src[0] == num[0] and dst[0] == den[0]:
        return amount * src[1] / per_base / dst[1]
    raise DoseError(
        f"product strength ({num_unit}/{den_unit}) cannot convert {from_unit} to {to_unit}"
    )


def ceiling(value: Decimal) -> int:
    """The whole number at or above ``value``."""
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def billing_units(
    amount: Decimal,
    unit: str,
    unit_amount: Decimal,
    billing_unit: str,
    strength: tuple[Decimal, str, Decimal, str] | None = None,
) -> int:
    """Units = administered amount ÷ the code's billing unit, rounded up (at least 1)."""
    if amount <= 0:
        raise DoseError(f"dose {amount} {unit} is not positive")
    in_billing = convert(amount, unit, billing_unit, strength)
    units = int((in_billing / unit_amount).to_integral_value(rounding=ROUND_CEILING))
    if units > MAX_BILLING_UNITS:
        raise DoseError(f"dose {amount} {unit} gives {units} billing units: implausible")
    return max(units, 1)


def quantity_amount(quantity: Mapping | None) -> tuple[Decimal, str] | None:
    """A FHIR Quantity's (value, unit code); the UCUM ``code`` wins over display ``unit``."""
    if not isinstance(quantity, MAPPING):
        return None
    value = to_decimal(quantity.get("value"))
    unit = quantity.get("code") or quantity.get("unit")
    if value is None or not isinstance(unit, str) or not unit:
        return None
    return value, unit


def ratio_strength(ratio: Mapping | None) -> tuple[Decimal, str, Decimal, str] | None:
    """An R4 ``Ratio`` (e.g. ingredient.strength 30 mg / 1 mL) as a strength tuple."""
    if not isinstance(ratio, MAPPING):
        return None
    num, den = quantity_amount(ratio.get("numerator")), quantity_amount(ratio.get("denominator"))
    if not num or not den or num[0] <= 0 or den[0] <= 0:
        return None
    if unit_of(num[1]) is None or unit_of(den[1]) is None:
        return None
    return num[0], num[1], den[0], den[1]


_NDC_DIGITS = re.compile(r"^\d+$")


def ndc11(code: str | None) -> str | None:
    """Normalise an NDC to the 11-digit 5-4-2 billing form, or None when ambiguous/invalid.

    Hyphenated 10-digit forms are zero-filled by segment (4-4-2 -> 0xxxx, 5-3-2 ->
    xxxxx-0xxx, 5-4-1 -> xxxxx-xxxx-0x). An unhyphenated 10-digit NDC is ambiguous.
    """
    if not code or not isinstance(code, str):
        return None
    code = code.strip()
    parts = code.split("-")
    if len(parts) == 3 and all(_NDC_DIGITS.match(p) for p in parts):
        a, b, c = parts
        widths = (len(a), len(b), len(c))
        if widths == (5, 4, 2):
            return a + b + c
        if widths == (4, 4, 2):
            return "0" + a + b + c
        if widths == (5, 3, 2):
            return a + "0" + b + c
        if widths == (5, 4, 1):
            return a + b + "0" + c
        return None
    if _NDC_DIGITS.match(code) and len(code) == 11:
        return code
    return None
