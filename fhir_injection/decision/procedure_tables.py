"""The rows of the administration-code tables (mappings/procedures.csv, infusions.csv,
iv_methods.csv, iv_text.csv, hydration.csv): which code a route, a push or an infusion is billed
with. Plain frozen data; :class:`~fhir_injection.decision.ruleset.Rules` holds them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "Hydration",
    "Infusion",
    "IvSignals",
    "IvTextPhrase",
    "Procedure",
]


@dataclass(frozen=True)
class Procedure:
    code: str | None
    description: str
    outcome: str


@dataclass(frozen=True)
class Infusion:
    """An IV administration code (mappings/infusions.csv): push or infusion of one kind of substance."""

    kind: str  # therapeutic | hydration | chemotherapy
    technique: str  # push | infusion
    code: str
    description: str
    min_minutes: int | None  # reported from this many minutes on (hydration: 31)
    max_minutes: int | None  # a push: up to this many minutes (15)
    addon_code: str | None  # each additional hour
    addon_over_minutes: (
        int | None
    )  # an added hour counts when more than this many minutes beyond the hour


@dataclass(frozen=True)
class IvSignals:
    """What says push or infusion besides the duration (mappings/iv_methods.csv)."""

    method_codes: Mapping[tuple[str, str], str]  # (system, code) -> push | infusion
    method_texts: Mapping[str, str]  # normalised text -> push | infusion
    duration_extensions: frozenset[str]  # extension urls whose value is the infusion's duration
    #: phrases of dosage.text (mappings/iv_text.csv), in the table's order
    text_phrases: tuple[IvTextPhrase, ...] = ()


@dataclass(frozen=True)
class IvTextPhrase:
    """A phrase of ``dosage.text`` that says how long an IV ran or that it was a push
    (mappings/iv_text.csv): ``pattern`` is built from the row's words by the loader."""

    phrase: str  # as the table writes it: "over {duration}", "slow iv push"
    pattern: re.Pattern[str]  # groups low, high (a range's upper end), unit for a duration
    technique: str | None  # push | infusion for a technique phrase; None: the duration decides


@dataclass(frozen=True)
class Hydration:
    """Products that are hydration fluid (mappings/hydration.csv): CPT 96360/96361, no drug line."""

    codes: frozenset[tuple[str, str]]  # (system, code)
    systems: frozenset[str]  # the systems those codes are in
    names: tuple[str, ...]  # word sequences, e.g. "sodium chloride"
