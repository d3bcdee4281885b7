"""gaps.codesystem.json: the documentation gap codes, a FHIR CodeSystem."""

from __future__ import annotations

import json
from pathlib import Path

from ..decision.ruleset import GAP_SCOPES, REQUIRED_GAPS, SEVERITIES, GapType
from ..errors import MappingError

__all__ = ["load_gaps"]


def load_gaps(path: Path) -> tuple[dict[str, GapType], str]:
    """gaps.codesystem.json: the gap codes (a FHIR CodeSystem), with severity, field and source."""
    name = path.name
    try:
        cs = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MappingError(name, None, "file is missing") from None
    except json.JSONDecodeError as exc:
        raise MappingError(name, exc.lineno, f"not valid JSON: {exc.msg}") from None
    if cs.get("resourceType") != "CodeSystem" or not cs.get("url"):
        raise MappingError(name, None, "must be a FHIR CodeSystem with a url")
    gaps: dict[str, GapType] = {}
    for i, concept in enumerate(cs.get("concept", []), start=1):
        code = concept.get("code")
        props = {
            p.get("code"): p.get("valueCode") or p.get("valueString")
            for p in concept.get("property", [])
        }
        where = f"concept {i} ({code})"
        if not code or code in gaps:
            raise MappingError(name, None, f"{where}: code missing or repeated")
        if props.get("severity") not in SEVERITIES:
            raise MappingError(
                name, None, f"{where}: property severity must be one of {', '.join(SEVERITIES)}"
            )
        if not concept.get("definition") or not props.get("field") or not props.get("source"):
            raise MappingError(
                name, None, f"{where}: needs a definition and the field and source properties"
            )
        scope = props.get("raised-for") or ("every" if props["severity"] == "info" else "96372")
        if scope not in GAP_SCOPES:
            raise MappingError(
                name,
                None,
                f"{where}: property raised-for must be one of {', '.join(sorted(GAP_SCOPES))}",
            )
        gaps[code] = GapType(
            code, props["severity"], props["field"], concept["definition"], props["source"], scope
        )
    missing = [c for c in REQUIRED_GAPS if c not in gaps]
    if missing:
        raise MappingError(name, None, f"lacks gap code(s) {', '.join(missing)}")
    return gaps, cs["url"]
