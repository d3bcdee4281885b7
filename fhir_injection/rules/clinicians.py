"""The tables about who gave an injection and who renders it: practitioner qualifications and the
encounter participant types a rendering (supervising) practitioner is read from."""

from __future__ import annotations

from pathlib import Path

from ..decision.rules import QUALIFICATION_ROLES
from .table import _Table


def _qualifications(
    d: Path,
) -> tuple[dict[tuple[str, str], str], dict[str, tuple[tuple[str, str], ...]]]:
    """qualifications.csv: Practitioner.qualification codings -> eligible (renders) or auxiliary;
    ``match`` exact, or prefix (a NUCC taxonomy group: 20 = allopathic and osteopathic physicians)."""
    t = _Table(d, "qualifications.csv", ("system", "code", "match", "display", "role", "source"))
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


def _participant_types(d: Path) -> dict[tuple[str, str], int]:
    """participant_types.csv: the Encounter.participant.type codings a rendering practitioner is
    read from, with their rank (1 first)."""
    t = _Table(d, "participant_types.csv", ("system", "code", "display", "rank", "source"))
    ranks: dict[tuple[str, str], int] = {}
    seen: dict = {}
    for n, r in t.rows():
        key = t.coding_key(n, r, seen)
        raw = t.require(n, r, "rank")
        if not raw.isdigit() or int(raw) < 1:
            raise t.error(n, f"column 'rank' is '{raw}', expected a whole number from 1")
        ranks[key] = int(raw)
    return ranks
