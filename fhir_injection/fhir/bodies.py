"""What a FHIR server's response body says: its JSON, read once (:class:`FhirResponse`,
:func:`json_of`), and an OperationOutcome's issue texts, most severe first."""

from __future__ import annotations

from typing import Any, cast

import requests

__all__ = ["FhirResponse", "json_of", "operation_outcome_text"]


def operation_outcome_text(body: Any, limit: int = 1000) -> str | None:
    """The diagnostics (or details.text) of an OperationOutcome's issues, most severe first.

    When the outcome has fatal or error issues, warnings and information are left
    out: they bury the reason a server refused something. None if ``body`` is not one.
    """
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return None
    rank: dict[object, int] = {"fatal": 0, "error": 1, "warning": 2, "information": 3}
    issues = [i for i in body.get("issue") or [] if isinstance(i, dict)]
    issues.sort(key=lambda i: rank.get(i.get("severity"), 4))
    if issues and rank.get(issues[0].get("severity"), 4) <= 1:
        issues = [i for i in issues if rank.get(i.get("severity"), 4) <= 1]
    texts = []
    for issue in issues:
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text")
        if text and str(text) not in texts:
            where = ", ".join(
                str(e) for e in issue.get("expression") or issue.get("location") or []
            )
            texts.append(f"{text} ({where})" if where and where not in str(text) else str(text))
    joined = "; ".join(texts)
    return joined[:limit] if joined else None


class FhirResponse(requests.Response):
    """A 2xx response whose JSON body HttpSession has already read: :attr:`fhir_json`."""

    fhir_json: Any

    @classmethod
    def adopt(cls, resp: requests.Response, fhir_json: Any) -> FhirResponse:
        """``resp`` itself, made a FhirResponse (not a copy: requests built it, and its body,
        connection and history stay as they are)."""
        resp.__class__ = cls
        adopted = cast(FhirResponse, resp)  # it is one now
        adopted.fhir_json = fhir_json
        return adopted


def json_of(resp: requests.Response) -> Any:
    """The response body as JSON, parsed once (HttpSession already checked 2xx bodies)."""
    if isinstance(resp, FhirResponse) and resp.fhir_json is not None:
        return resp.fhir_json
    return resp.json()
