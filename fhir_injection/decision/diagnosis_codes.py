"""The diagnoses a claim carries: what the record says the administration was given for
(:func:`read_diagnoses`), as ICD-10-CM codes (written, or billed from SNOMED CT by
mappings/snomed_icd10.csv), combined (:func:`combine_codes`, combination_codes.csv) and sequenced
(:func:`code_first_order`, code_first.csv), and the diagnosis rules of diagnosis_groups.csv they
meet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..fhir.resources import shown_reference
from .context import AdministrationPointers, Context, EncounterPointers
from .elements import as_list, codings
from .model import Coding
from .ruleset import SYSTEM_ICD10CM, SYSTEM_SNOMED, Rules

__all__ = [
    "Diagnoses",
    "code_first_order",
    "combine_codes",
    "diagnosis_groups_of",
    "diagnosis_rule_holds",
    "read_diagnoses",
    "rule_diagnoses",
]


@dataclass
class Diagnoses:
    """What the record says the administration was given for, read from the administration's
    reasons (reasonCode, reasonReference) first, then the encounter's diagnoses by rank and its
    reasons.

    ``codes``: the ICD-10-CM codes for the Claim, as written or billed from a SNOMED CT code by
    mappings/snomed_icd10.csv, in that order, each once. ``coded``: every coding read (ICD-10-CM,
    SNOMED CT) and the mapped codes: what a diagnosis rule (diagnosis_groups.csv) is tested on.
    ``unmapped``: the SNOMED CT codings of diagnoses with no ICD-10-CM code and no table row, with
    whether the administration itself names them. ``other``: what the rest is (text only, or coded
    in a system the claim cannot use), for a message. ``written``: the ICD-10-CM codes the record
    itself writes (not mapped from SNOMED CT), so the basis can say which the rule supplied."""

    codes: list[Coding] = field(default_factory=list)
    coded: list[Coding] = field(default_factory=list)
    written: set[str] = field(default_factory=set)
    unmapped: list[tuple[Coding, bool]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)


def read_diagnoses(
    admin: Mapping,
    refs: AdministrationPointers,
    encounter: Mapping | None,
    encounter_refs: EncounterPointers | None,
    ctx: Context,
    rules: Rules,
) -> Diagnoses:
    """The administration's diagnoses (:class:`Diagnoses`)."""
    concepts: list[tuple[object, bool, str | tuple[str, str, object]]] = [
        (concept, True, "MedicationAdministration.reasonCode")
        for concept in as_list(admin.get("reasonCode"))
    ]
    concepts += _condition_codes(refs.reasons, ctx, admin, True, "reasonReference")
    if encounter:
        assert (
            encounter_refs is not None
        )  # the engine makes them whenever it has found the encounter
        concepts += _condition_codes(encounter_refs.diagnoses, ctx, encounter, False, "diagnosis")
        concepts += [
            (concept, False, "Encounter.reasonCode")
            for concept in as_list(encounter.get("reasonCode"))
        ]
        concepts += _condition_codes(encounter_refs.reasons, ctx, encounter, False, "reason")
    found = Diagnoses()
    seen: set[str | None] = set()
    for concept, own, where in concepts:
        icd, snomed, others = [], [], []
        for c in codings(concept):
            system, code = c.get("system"), c.get("code")
            if not (isinstance(code, str) and code):
                continue
            coding = Coding(system, code, c.get("display"))
            if system == SYSTEM_ICD10CM:
                icd.append(coding)
            elif system == SYSTEM_SNOMED:
                snomed.append(coding)
            else:
                others.append(f"{system}|{code}")
        found.coded += icd + snomed
        found.written.update(str(coding.code) for coding in icd)
        if not icd:
            for s in snomed:
                icd += [
                    Coding(SYSTEM_ICD10CM, code, display)
                    for code, display in rules.snomed_icd10.get(s.code or "", ())
                ]
            found.coded += icd
            if not icd:
                found.unmapped += [(s, own) for s in snomed]
        for coding in icd:
            if coding.code not in seen:
                seen.add(coding.code)
                found.codes.append(coding)
        if not (icd or snomed):
            found.other.append(
                f"{_where(where)} coded only as {', '.join(others[:3])}"
                if others
                else f"{_where(where)} has no coding (text only)"
            )
    found.codes = found.codes[:12]
    return found


def _where(where: str | tuple[str, str, object]) -> str:
    """Where a diagnosis was read, as a message says it: an element, or (kind, element, reference)
    of a Condition pointed to ("Encounter.diagnosis Condition/c1")."""
    if isinstance(where, str):
        return where
    kind, element, reference = where
    return f"{kind}.{element} {shown_reference(reference)}"


def _condition_codes(
    references: Iterable, ctx: Context, container: Mapping, own: bool, element: str
) -> list[tuple[object, bool, tuple[str, str, object]]]:
    """The codes (Condition.code) of the Conditions that ``references`` (written in ``container``)
    point to, with whether the administration names them and where they were read."""
    kind = "MedicationAdministration" if own else "Encounter"
    found = []
    for reference in references:
        cond = ctx.get(reference, "Condition", container)
        if cond:
            # where it was read, written out only for a message (_where): most codes need none
            found.append((cond.get("code"), own, (kind, element, reference)))
    return found


def diagnosis_groups_of(coding: Coding, rules: Rules) -> list[str]:
    """The diagnosis rules (diagnosis_groups.csv) one of whose groups lists ``coding``."""
    return [
        rule
        for rule, groups in rules.diagnosis_rules.items()
        if any(_in_ranges(coding, group) for group in groups)
    ]


def combine_codes(codes: list[Coding], rules: Rules) -> tuple[list[Coding], list[str]]:
    """``codes`` with each unspecified code a combination code replaces (combination_codes.csv;
    ICD-10-CM Official Guidelines I.A.15 "With": D64.9 listed with N18.1-N18.9 is coded D63.1) put
    in its place, and a note for each. Only when both codes are on the list; a combination code
    already there is not written twice."""
    out, notes = list(codes), []
    for rule in rules.combination_codes:
        keys = [_icd10_key(c) for c in out]
        lo, hi = rule.with_from, rule.with_to
        other = [c for c, k in zip(out, keys, strict=True) if lo <= k[: len(lo)] <= hi]
        if rule.code not in keys or not other:
            continue
        at = keys.index(rule.code)
        replaced = out.pop(at)
        becomes = (
            rule.becomes if len(rule.becomes) == 3 else f"{rule.becomes[:3]}.{rule.becomes[3:]}"
        )
        if rule.becomes not in keys:
            out.insert(at, Coding(SYSTEM_ICD10CM, becomes, rule.becomes_display))
        notes.append(
            f"{replaced.code} with {other[0].code} coded {becomes} (combination_codes.csv: "
            "ICD-10-CM Official Guidelines I.A.15 'With')"
        )
    return out, notes


def _icd10_key(coding: Coding) -> str:
    """An ICD-10-CM coding's code as the tables compare it (no dot, upper case); "" for others."""
    if coding.system != SYSTEM_ICD10CM or not isinstance(coding.code, str):
        return ""
    return coding.code.replace(".", "").strip().upper()


def code_first_order(codes: list[Coding], rules: Rules) -> list[Coding]:
    """``codes`` with each code a "code first" note sequences after another (code_first.csv: D63.1
    after the CKD stage N18.-) moved behind the first such code, when one is there."""
    out = list(codes)
    for code, lo, hi in rules.code_first:
        keys = [c.code.replace(".", "").upper() if isinstance(c.code, str) else "" for c in out]
        if code not in keys:
            continue
        at = keys.index(code)
        first = next((i for i, k in enumerate(keys) if i > at and lo <= k[: len(lo)] <= hi), None)
        if first is not None:
            out.insert(at, out.pop(first))
    return out


def _in_ranges(coding: Coding, ranges) -> bool:
    """Whether ``coding`` is in one of ``ranges`` ((system, from, to) of diagnosis_groups.csv):
    an ICD-10-CM code compared without the dot, on the bounds' length; a SNOMED CT code whole."""
    if not isinstance(coding.code, str):
        return False
    key = coding.code.replace(".", "").upper()
    for s, lo, hi in ranges:
        if coding.system != s:
            continue
        if s == SYSTEM_ICD10CM:
            if lo <= key[: len(lo)] <= hi:
                return True
        elif key == lo:
            return True
    return False


def diagnosis_rule_holds(
    codes: list[Coding], groups: tuple[tuple[tuple[str, str, str], ...], ...]
) -> bool:
    """Whether every group of a diagnosis rule (mappings/diagnosis_groups.csv) has one of ``codes``
    in one of its ranges (compared without the dot, on the range bounds' length)."""
    return all(any(_in_ranges(c, group) for c in codes) for group in groups)


def rule_diagnoses(
    codes: list[Coding], groups: tuple[tuple[tuple[str, str, str], ...], ...]
) -> list[Coding]:
    """The codes in one of a diagnosis rule's ranges, in their order, when the rule holds (see
    :func:`diagnosis_rule_holds`); else none. The injury a tetanus vaccine was given for."""
    if not diagnosis_rule_holds(codes, groups):
        return []
    ranges = [r for group in groups for r in group]
    return [c for c in codes if _in_ranges(c, ranges)]
