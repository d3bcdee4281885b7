"""Whether a Claim or Task on the server already says what we would write: a hash of what it
says (leaving out what changes on every run or server) kept in a ``meta.tag``, so an unchanged
one is not written again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

__all__ = ["FINGERPRINT_SYSTEM", "fingerprint", "fingerprint_of", "with_fingerprint"]

FINGERPRINT_SYSTEM = "urn:fhir-injection:fingerprint"


def fingerprint(resource: Mapping) -> str:
    """A hash of what a Claim/Task says, leaving out what changes on every run or server."""
    body = {
        k: v
        for k, v in resource.items()
        if k not in ("id", "meta", "created", "authoredOn", "lastModified", "text")
    }
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()[:24]


def with_fingerprint(resource: dict) -> dict:
    """``resource`` with one fingerprint tag, of what it says now (earlier ones dropped)."""
    meta = resource.setdefault("meta", {})
    tags = [t for t in meta.get("tag", []) if t.get("system") != FINGERPRINT_SYSTEM]
    tags.append({"system": FINGERPRINT_SYSTEM, "code": fingerprint(resource)})
    meta["tag"] = tags
    return resource


def fingerprint_of(resource: Mapping) -> str:
    """The fingerprint of what ``resource`` says: its fingerprint tag when it has exactly one.

    Tags are not versioned: HAPI keeps every earlier version's tags on update, so an updated
    resource carries several fingerprint tags, stale ones included. With none or several,
    hash the body as it is.
    """
    codes = [
        t.get("code")
        for t in (resource.get("meta") or {}).get("tag") or []
        if t.get("system") == FINGERPRINT_SYSTEM
    ]
    return codes[0] if len(codes) == 1 and codes[0] else fingerprint(resource)
