"""A Bulk Data export's manifest (IG 2.0.0, "Response - Complete"): the server's body read and
checked into :class:`Manifest`, and the ``manifest.json`` an export folder keeps, written last."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BulkExportError
from ..fhir.urls import redact_url

__all__ = ["Manifest", "ManifestFile", "write_manifest"]


@dataclass
class ManifestFile:
    kind: str  # output | error | deleted
    type: str
    url: str
    count: int | None
    local: str = ""  # path inside the target folder


@dataclass
class Manifest:
    transaction_time: str
    requires_token: bool
    files: list[ManifestFile]
    raw: dict

    @classmethod
    def parse(cls, body: Any) -> Manifest:
        """Check a complete-status body against Bulk Data 2.0.0 (section "Response - Complete")."""

        def bad(why: str) -> BulkExportError:
            return BulkExportError(f"the export's manifest is not usable: {why}")

        if not isinstance(body, dict):
            raise bad("not a JSON object")
        when = body.get("transactionTime")
        if not isinstance(when, str) or not when:
            raise bad("no transactionTime")
        token = body.get("requiresAccessToken")
        if not isinstance(token, bool):
            raise bad("requiresAccessToken is missing or not true/false")
        files: list[ManifestFile] = []
        for kind in ("output", "error", "deleted"):
            items = body.get(kind, [])
            if kind == "output" and "output" not in body:
                raise bad("no output list")
            if not isinstance(items, list):
                raise bad(f"{kind} is not a list")
            for n, item in enumerate(items):
                if not isinstance(item, dict):
                    raise bad(f"{kind}[{n}] is not an object")
                rtype, url, count = item.get("type"), item.get("url"), item.get("count")
                if not isinstance(rtype, str) or not rtype.isalpha():
                    raise bad(f"{kind}[{n}] has no resource type")
                if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                    raise bad(f"{kind}[{n}] ({rtype}) has no absolute url")
                files.append(
                    ManifestFile(kind, rtype, url, count if isinstance(count, int) else None)
                )
        return cls(when, token, files, body)


def write_manifest(manifest: Manifest, target: Path) -> Path:
    """``manifest.json``: the server's manifest with each file's ``destination`` and its URL
    without the query (a pre-signed URL's query is a credential). Written atomically, last."""
    body = {k: v for k, v in manifest.raw.items() if k not in ("output", "error", "deleted")}
    for kind in ("output", "error", "deleted"):
        items = [f for f in manifest.files if f.kind == kind]
        if items or kind in manifest.raw:
            body[kind] = [
                {
                    "type": f.type,
                    "url": redact_url(f.url).removesuffix("?…"),
                    **({"count": f.count} if f.count is not None else {}),
                    "destination": f.local,
                }
                for f in items
            ]
    path = target / "manifest.json"
    tmp = path.with_name(".manifest.json.part")
    tmp.write_text(json.dumps(body, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path
