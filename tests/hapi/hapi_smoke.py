#!/usr/bin/env python3
"""Smoke check of a running local HAPI test server (see run-hapi.sh): the behaviour our tests rely on.

Usage: python3 tests/hapi/hapi_smoke.py [BASE_URL]   (default http://127.0.0.1:${HAPI_PORT:-8080}/fhir)
WARNING: ends with $expunge everything, i.e. wipes the server's database.
Standard library only; exits non-zero on the first failed check.
"""

import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

BASE = (
    sys.argv[1]
    if len(sys.argv) > 1
    else f"http://127.0.0.1:{os.environ.get('HAPI_PORT', '8080')}/fhir"
)
FHIR_JSON = "application/fhir+json"
RESULTS = []


def call(method, path, body=None, headers=None):
    url = path if path.startswith("http") else BASE + path
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", FHIR_JSON)
    if data is not None:
        req.add_header("Content-Type", FHIR_JSON)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            status, hdrs, raw = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        status, hdrs, raw = err.code, err.headers, err.read()
    elapsed = time.monotonic() - t0
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return status, hdrs, parsed, elapsed


def check(name, ok, detail=""):
    RESULTS.append((name, ok))
    print(f"{'PASS' if ok else 'FAIL'}  {name}  {detail}")
    if not ok:
        print(f"{sum(1 for _, o in RESULTS if o)} passed, 1 failed")
        sys.exit(1)


def issues(outcome):
    return [(i.get("severity"), i.get("diagnostics", "")) for i in (outcome or {}).get("issue", [])]


def claim(patient, org, coverage, ident, **overrides):
    c = {
        "resourceType": "Claim",
        "identifier": [{"system": "urn:smoke:claim", "value": ident}],
        "status": "active",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "professional",
                }
            ]
        },
        "use": "claim",
        "patient": {"reference": patient},
        "created": "2024-05-01",
        "provider": {"reference": org},
        "priority": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/processpriority",
                    "code": "normal",
                }
            ]
        },
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": coverage}}],
        "item": [
            {
                "sequence": 1,
                "productOrService": {
                    "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "96372"}]
                },
            },
            {
                "sequence": 2,
                "productOrService": {
                    "coding": [
                        {
                            "system": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
                            "code": "J3420",
                        }
                    ]
                },
            },
        ],
    }
    c.update(overrides)
    return c


def tx(entries):
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def main():
    s, _, meta, t = call("GET", "/metadata")
    check("metadata 200, R4", s == 200 and meta.get("fhirVersion") == "4.0.1", f"{s} {t:.2f}s")
    ma = next(r for r in meta["rest"][0]["resource"] if r["type"] == "MedicationAdministration")
    names = {p["name"] for p in ma.get("searchParam", [])}
    check(
        "MedicationAdministration: _lastUpdated, context, _include",
        {"_lastUpdated", "context"} <= names
        and "MedicationAdministration:context" in ma.get("searchInclude", []),
    )

    s, _, pat, t = call(
        "POST",
        "/Patient",
        {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:smoke:mrn", "value": "p-1"}],
            "name": [{"family": "Smoke"}],
        },
    )
    check("POST Patient -> 201", s == 201, f"{s} {t:.2f}s")
    patient = f"Patient/{pat['id']}"
    s, _, org, _ = call(
        "POST", "/Organization", {"resourceType": "Organization", "name": "Smoke Payer"}
    )
    org_ref = f"Organization/{org['id']}"
    s, _, cov, t = call(
        "POST",
        "/Coverage",
        {
            "resourceType": "Coverage",
            "status": "active",
            "beneficiary": {"reference": patient},
            "payor": [{"reference": org_ref}],
        },
    )
    check("POST Coverage -> 201", s == 201, f"{s} {t:.2f}s")
    coverage = f"Coverage/{cov['id']}"

    s, _, oo, _ = call(
        "POST", "/Claim", claim("Patient/does-not-exist", org_ref, coverage, "missing-patient")
    )
    diag = " ".join(d for _, d in issues(oo))
    check(
        "Claim -> missing Patient: 400 HAPI-NNNN",
        s == 400 and re.search(r"HAPI-\d{4}", diag) is not None,
        f"{s} {diag[:120]}",
    )

    s, _, oo, _ = call("POST", "/Claim", {"resourceType": "Claim", "status": "active"})
    errors = [d for sev, d in issues(oo) if sev in ("error", "fatal")]
    check(
        "invalid Claim -> 4xx from validator",
        400 <= s < 500 and errors,
        f"{s} {len(errors)} errors, e.g. {errors[:1]}",
    )

    s, _, oo, _ = call(
        "POST",
        "/",
        tx(
            [
                {
                    "resource": {"resourceType": "Claim", "status": "active"},
                    "request": {"method": "POST", "url": "Claim"},
                }
            ]
        ),
    )
    check("invalid Claim inside a transaction -> 4xx", 400 <= s < 500, f"{s}")

    s, _, oo, _ = call(
        "POST", "/Claim/$validate", claim(patient, org_ref, coverage, "validate-only")
    )
    sev = issues(oo)
    check(
        "CPT/HCPCS codes in a valid Claim: no error, only warnings/info",
        s == 200 and not [1 for v, _ in sev if v in ("error", "fatal")],
        f"{s} " + "; ".join(sorted({f"{v}: {d[:70]}" for v, d in sev})),
    )

    entry = {
        "fullUrl": "urn:uuid:0b9f6a52-5e1d-4b43-9d1f-2f6c39d4b001",
        "resource": claim(patient, org_ref, coverage, "c-1"),
        "request": {
            "method": "POST",
            "url": "Claim",
            "ifNoneExist": "identifier=urn:smoke:claim|c-1",
        },
    }
    s1, _, b1, t1 = call("POST", "/", tx([entry]))
    st1 = b1["entry"][0]["response"]["status"] if s1 == 200 else b1
    check(
        "transaction conditional create, 1st -> 201",
        s1 == 200 and st1.startswith("201"),
        f"{s1} entry {st1} {t1:.2f}s",
    )
    s2, _, b2, t2 = call("POST", "/", tx([entry]))
    st2 = b2["entry"][0]["response"]["status"] if s2 == 200 else b2
    same = (
        s2 == 200
        and b1["entry"][0]["response"]["location"].split("/_history")[0]
        == b2["entry"][0]["response"]["location"].split("/_history")[0]
    )
    check(
        "transaction conditional create, 2nd -> 200 same id",
        s2 == 200 and st2.startswith("200") and same,
        f"{s2} entry {st2} {t2:.2f}s",
    )
    s, _, b, _ = call(
        "GET", "/Claim?identifier=urn:smoke:claim|c-1&_summary=count"
    )  # raw '|' on purpose
    check(
        "no duplicate Claim (raw '|' in query accepted)",
        s == 200 and b.get("total") == 1,
        f"{s} total={b.get('total')}",
    )

    s, _, oo, _ = call("DELETE", "/Patient?name=Smoke-nobody-matches-this")
    check("conditional DELETE matching nothing -> 2xx", 200 <= s < 300, f"{s}")

    bulk = [
        {
            "resource": {"resourceType": "Patient", "name": [{"family": f"Bulk{i}"}]},
            "request": {"method": "POST", "url": "Patient"},
        }
        for i in range(510)
    ]
    s, _, _, t = call("POST", "/", tx(bulk), {"Prefer": "return=minimal"})
    check("transaction of 510 Patients", s == 200, f"{s} {t:.2f}s")
    s, _, b, t = call("GET", "/Patient?_count=600")
    n = len(b.get("entry", []))
    check("Patient?_count=600 -> at most 500", s == 200 and n == 500, f"{s} {n} entries {t:.2f}s")
    nxt = [link["url"] for link in b.get("link", []) if link["relation"] == "next"]
    s, _, b, _ = call("GET", nxt[0]) if nxt else (None, None, {}, 0)
    n2 = len(b.get("entry", []))
    check(
        "next page has the remaining 11 (paging past 500)",
        s == 200 and n2 == 11,
        f"{s} {n2} entries",
    )
    s, _, b, _ = call("GET", "/Patient")
    check(
        "default page size 20",
        s == 200 and len(b.get("entry", [])) == 20,
        f"{len(b.get('entry', []))}",
    )
    s, _, oo, _ = call("DELETE", "/Patient?name=Bulk")
    check(
        "conditional DELETE matching many -> 412 (multiple delete off)",
        s == 412,
        f"{s} {issues(oo)[:1]}",
    )

    s, _, _, _ = call(
        "POST",
        "/MedicationAdministration",
        {
            "resourceType": "MedicationAdministration",
            "status": "completed",
            "medicationCodeableConcept": {
                "coding": [
                    {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1049502"}
                ]
            },
            "subject": {"reference": patient},
            "effectiveDateTime": "2024-05-01T10:00:00Z",
        },
    )
    check("POST MedicationAdministration -> 201", s == 201, f"{s}")
    s, _, b, _ = call(
        "GET",
        "/MedicationAdministration?_lastUpdated=ge2000-01-01T00:00:00.000Z&_sort=-_lastUpdated"
        "&_include=MedicationAdministration:subject&_include=MedicationAdministration:context",
    )
    modes = sorted(e["search"]["mode"] for e in b.get("entry", []))
    check(
        "MedicationAdministration search with _lastUpdated/_sort/_include",
        s == 200 and modes == ["include", "match"],
        f"{s} {modes}",
    )

    s, h, _, t = call("GET", "/$export?_type=Patient,Claim", headers={"Prefer": "respond-async"})
    loc = h.get("Content-Location")
    check("$export -> 202 + Content-Location", s == 202 and bool(loc), f"{s} {loc}")
    t0 = time.monotonic()
    while True:
        s, _, b, _ = call("GET", loc)
        if s != 202 or time.monotonic() - t0 > 120:
            break
        time.sleep(1)
    outputs = [o["type"] for o in (b or {}).get("output", [])] if isinstance(b, dict) else []
    check(
        "$export job completes",
        s == 200 and "Patient" in outputs,
        f"{s} after {time.monotonic() - t0:.0f}s, outputs {sorted(set(outputs))}",
    )

    s, _, oo, t = call(
        "POST",
        "/$expunge",
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "expungeEverything", "valueBoolean": True}],
        },
    )
    check("$expunge expungeEverything -> 200", s == 200, f"{s} {t:.2f}s")
    s, _, b, _ = call("GET", "/Patient?_summary=count")
    check(
        "database empty after $expunge", s == 200 and b.get("total") == 0, f"total={b.get('total')}"
    )

    print(f"{len(RESULTS)} passed, 0 failed")


if __name__ == "__main__":
    main()
