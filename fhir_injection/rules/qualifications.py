"""The tables about who gave an injection and who renders it: practitioner qualifications and the
encounter participant types a rendering (supervising) practitioner is read from."""

from __future__ import annotations

from pathlib import Path

from ..decision.ruleset import QUALIFICATION_ROLES, QUALIFICATION_TEXT_ROLES, credential_key
from .table import Table

__all__ = ["read_participant_types", "read_qualification_texts", "read_qualifications"]


def read_qualifications(
    d: Path,
) -> tuple[dict[tuple[str, str], str], dict[str, tuple[tuple[str, str], ...]]]:
    """qualifications.csv: Practitioner.qualification codings -> eligible (renders) or auxiliary;
    ``match`` exact, or prefix (a NUCC taxonomy group: 20 = allopathic and osteopathic physicians)."""
    t = Table(d, "qualifications.csv", ("system", "code", "match", "display", "role", "source"))
    exact: dict[tuple[str, str], str] = {}
    prefixes: dict[str, list[tuple[str, str]]] = {}
    seen: dict = {}
    for n, r in t.rows():
        match = t.choice(n, r, "match", {"exact", "prefix"})
        key = t.coding_key(n, r, seen)
        role = t.choice(n, r, "role", QUALIFICATION_ROLES)
        if match == "exact":
            exact[key] = role
        else:
            prefixes.setdefault(key[0], []).append((key[1], role))
    longest = {
        system: tuple(sorted(items, key=lambda p: -len(p[0]))) for system, items in prefixes.items()
    }
    return exact, longest


def read_qualification_texts(d: Path) -> dict[str, tuple[str, str]]:
    """qualification_text.csv: the reviewed qualification texts (Practitioner.qualification.code.text,
    a coding's display) -> (eligible, auxiliary or other, what the text means). Matched on
    :func:`~fhir_injection.decision.ruleset.credential_key` (letters and digits, case aside), so two
    rows that differ only in punctuation or case are one row twice: refused."""
    t = Table(d, "qualification_text.csv", ("text", "role", "meaning", "source"))
    texts: dict[str, tuple[str, str]] = {}
    seen: dict = {}
    for n, r in t.rows():
        text = t.require(n, r, "text")
        key = credential_key(text)
        if not key:
            raise t.error(n, f"column 'text' is '{text}', which has no letter or digit")
        t.unique(seen, key, n)
        role = t.choice(n, r, "role", QUALIFICATION_TEXT_ROLES)
        texts[key] = (role, t.require(n, r, "meaning"))
    return texts


def read_participant_types(d: Path) -> dict[tuple[str, str], int]:
    """participant_types.csv: the Encounter.participant.type codings a rendering practitioner is
    read from, with their rank (1 first)."""
    t = Table(d, "participant_types.csv", ("system", "code", "display", "rank", "source"))
    ranks: dict[tuple[str, str], int] = {}
    seen: dict = {}
    for n, r in t.rows():
        key = t.coding_key(n, r, seen)
        raw = t.require(n, r, "rank")
        if not raw.isdigit() or int(raw) < 1:
            raise t.error(n, f"column 'rank' is '{raw}', expected a whole number from 1")
        ranks[key] = int(raw)
    return ranks
