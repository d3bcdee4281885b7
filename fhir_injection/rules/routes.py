"""The route tables: route codings and texts, the procedure per route, IV push and infusion codes
and signals, hydration fluid, body sites and laterality."""

from __future__ import annotations

import re
from pathlib import Path
from types import MappingProxyType

from ..decision.procedure_tables import Hydration, Infusion, IvSignals, IvTextPhrase, Procedure
from ..decision.ruleset import INFUSION_KINDS, ROUTES, TECHNIQUES, Site, normal_text
from ..errors import MappingError
from .table import Table

__all__ = [
    "read_hydration",
    "read_infusions",
    "read_iv_methods",
    "read_laterality",
    "read_procedures",
    "read_route_text",
    "read_routes",
    "read_sites",
]


def read_routes(d: Path) -> dict[tuple[str, str], str]:
    """routes.csv: route codings -> route."""
    t = Table(d, "routes.csv", ("system", "code", "display", "route", "source"))
    routes: dict[tuple[str, str], str] = {}
    seen: dict = {}
    for n, r in t.rows():
        key = t.coding_key(n, r, seen)
        routes[key] = t.choice(n, r, "route", ROUTES)
    return routes


def read_route_text(d: Path) -> dict[str, str]:
    """route_text.csv: the reviewed route texts that say one route and nothing else -> route.

    Matched on the whole text, case and spacing aside; any other text is never guessed from.
    """
    t = Table(d, "route_text.csv", ("text", "route", "source"))
    texts: dict[str, str] = {}
    seen: dict = {}
    for n, r in t.rows():
        text = normal_text(t.require(n, r, "text"))
        t.unique(seen, text, n)
        texts[text] = t.choice(n, r, "route", ROUTES)
    return texts


def read_infusions(d: Path) -> dict[tuple[str, str], Infusion]:
    """infusions.csv: (kind, technique) -> the IV push or infusion code, its time limits and add-on."""
    t = Table(
        d,
        "infusions.csv",
        (
            "kind",
            "technique",
            "procedure_code",
            "description",
            "min_minutes",
            "max_minutes",
            "addon_code",
            "addon_over_minutes",
            "source",
        ),
    )
    infusions: dict[tuple[str, str], Infusion] = {}
    seen: dict = {}
    for n, r in t.rows():
        key = (t.choice(n, r, "kind", INFUSION_KINDS), t.choice(n, r, "technique", TECHNIQUES))
        t.unique(seen, key, n)
        minutes = {}
        for column in ("min_minutes", "max_minutes", "addon_over_minutes"):
            raw = r[column]
            if raw and not (raw.isdigit() and int(raw) > 0):
                raise t.error(n, f"column '{column}' is '{raw}', not a whole number of minutes")
            minutes[column] = int(raw) if raw else None
        addon = r["addon_code"] or None
        if (addon is None) != (minutes["addon_over_minutes"] is None):
            raise t.error(n, "addon_code and addon_over_minutes go together")
        infusions[key] = Infusion(
            key[0],
            key[1],
            t.require(n, r, "procedure_code"),
            r["description"],
            minutes["min_minutes"],
            minutes["max_minutes"],
            addon,
            minutes["addon_over_minutes"],
        )
    for key in (("therapeutic", "push"), ("therapeutic", "infusion")):
        if key not in infusions:
            raise MappingError("infusions.csv", None, f"no row for {key[0]} {key[1]}")
    if infusions[("therapeutic", "push")].max_minutes is None:
        raise MappingError("infusions.csv", None, "the therapeutic push row needs max_minutes")
    return infusions


def read_iv_methods(d: Path) -> IvSignals:
    """iv_methods.csv: method codes and texts that say push or infusion; duration extensions."""
    t = Table(
        d, "iv_methods.csv", ("kind", "system", "code", "text", "technique", "display", "source")
    )
    codes: dict[tuple[str, str], str] = {}
    texts: dict[str, str] = {}
    extensions: set[str] = set()
    seen: dict = {}
    for n, r in t.rows():
        kind = t.choice(n, r, "kind", {"method-code", "method-text", "duration-extension"})
        technique = t.choice(n, r, "technique", TECHNIQUES)
        if kind == "method-code":
            key: tuple = (t.require(n, r, "system"), t.require(n, r, "code"))
            t.unique(seen, key, n)
            codes[key] = technique
        elif kind == "method-text":
            text = normal_text(t.require(n, r, "text"))
            t.unique(seen, text, n)
            texts[text] = technique
        else:
            if technique != "infusion":
                raise t.error(n, "a duration extension says infusion")
            extensions.add(t.require(n, r, "system"))
    return IvSignals(
        MappingProxyType(codes), MappingProxyType(texts), frozenset(extensions), _iv_text(d)
    )


#: what ``{duration}`` in a phrase of iv_text.csv stands for: a number or a range ("2-5", "2 to 5";
#: en and em dashes are read as "-") and then a unit word, which the engine checks is a time unit
_DURATION = r"(?P<low>\d+(?:\.\d+)?)(?:\s*(?:-|to)\s*(?P<high>\d+(?:\.\d+)?))?\s*(?P<unit>[a-z]+)"
_PHRASE_WORDS = re.compile(r"^[a-z0-9 ]+$")


def _iv_text(d: Path) -> tuple[IvTextPhrase, ...]:
    """iv_text.csv: phrases of ``dosage.text`` that give an IV's own time ("over {duration}") or say
    it was a push ("slow iv push"), matched on whole words, case and spacing aside, in row order."""
    t = Table(d, "iv_text.csv", ("kind", "phrase", "technique", "example", "source"))
    phrases: list[IvTextPhrase] = []
    seen: dict = {}
    for n, r in t.rows():
        kind = t.choice(n, r, "kind", {"duration", "technique"})
        phrase = normal_text(t.require(n, r, "phrase"))
        t.unique(seen, phrase, n)
        words = phrase.split("{duration}")
        if kind == "duration":
            if len(words) != 2:
                raise t.error(n, "a 'duration' phrase has '{duration}' once")
            technique = None
            if r["technique"]:
                raise t.error(n, "a 'duration' phrase has no technique: the time decides")
        else:
            if len(words) != 1:
                raise t.error(n, "a 'technique' phrase has no '{duration}'")
            technique = t.choice(n, r, "technique", TECHNIQUES)
        if not all(_PHRASE_WORDS.match(w) or not w.strip() for w in words) or not any(
            w.strip() for w in words
        ):
            raise t.error(
                n, f"phrase '{phrase}' holds only words (letters, digits) and '{{duration}}'"
            )
        example = normal_text(t.require(n, r, "example"))
        parts = [r"\s+".join(re.escape(w) for w in part.split()) for part in words]
        body = (r"\s*" + _DURATION + r"\s*").join(parts) if kind == "duration" else parts[0]
        pattern = re.compile(r"(?<![a-z0-9])" + body.strip() + r"(?![a-z0-9])")
        if not pattern.search(example.replace("\u2013", "-").replace("\u2014", "-")):
            raise t.error(n, f"the example '{r['example']}' does not hold the phrase '{phrase}'")
        phrases.append(IvTextPhrase(phrase, pattern, technique))
    return tuple(phrases)


_NAME_WORDS = re.compile(r"[a-z0-9][a-z0-9\-]*")


def read_hydration(d: Path) -> Hydration:
    """hydration.csv: the products (codes) and names (word sequences) that are hydration fluid."""
    t = Table(d, "hydration.csv", ("kind", "system", "code", "name", "display", "source"))
    codes: set[tuple[str, str]] = set()
    names: list[str] = []
    for n, r in t.rows():
        if t.choice(n, r, "kind", {"code", "name"}) == "code":
            codes.add((t.require(n, r, "system"), t.require(n, r, "code")))
        else:
            words = " ".join(_NAME_WORDS.findall(t.require(n, r, "name").lower()))
            if not words:
                raise t.error(n, "column 'name' has no words")
            names.append(words)
    return Hydration(
        frozenset(codes),
        frozenset(system for system, _ in codes),
        tuple(sorted(set(names), key=lambda w: (-len(w), w))),
    )


def read_procedures(d: Path) -> dict[str, Procedure]:
    """procedures.csv: route -> the procedure billed for it (one row per route)."""
    t = Table(d, "procedures.csv", ("route", "procedure_code", "description", "outcome", "source"))
    procedures: dict[str, Procedure] = {}
    seen: dict = {}
    for n, r in t.rows():
        route = t.choice(n, r, "route", ROUTES)
        t.unique(seen, route, n)
        procedures[route] = Procedure(
            r["procedure_code"] or None,
            r["description"],
            t.choice(n, r, "outcome", {"claim", "not-96372", "not-billable"}),
        )
    for route in sorted(ROUTES - procedures.keys()):
        raise MappingError("procedures.csv", None, f"no row for route '{route}'")
    return procedures


def read_sites(d: Path) -> dict[tuple[str, str], Site]:
    """sites.csv: body-site codings, with their display and laterality."""
    t = Table(d, "sites.csv", ("system", "code", "display", "laterality", "source"))
    sites: dict[tuple[str, str], Site] = {}
    seen: dict = {}
    for n, r in t.rows():
        key = t.coding_key(n, r, seen)
        sites[key] = Site(
            key[0],
            key[1],
            t.require(n, r, "display"),
            t.choice(n, r, "laterality", {"left", "right", "bilateral", ""}) or None,
        )
    return sites


def read_laterality(d: Path) -> dict[tuple[str, str], str]:
    """laterality.csv: laterality qualifier codings -> left, right or bilateral."""
    t = Table(d, "laterality.csv", ("system", "code", "laterality", "source"))
    laterality = {}
    for n, r in t.rows():
        laterality[(t.require(n, r, "system"), t.require(n, r, "code"))] = t.choice(
            n, r, "laterality", {"left", "right", "bilateral"}
        )
    return laterality
