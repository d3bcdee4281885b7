"""Write the bad-input corpus: ``python tests/badinput/make_corpus.py`` (deterministic; commit the output).

``good/`` is a small clean world: two patients, each with an encounter, diagnosis, coverage and consent;
``MedicationAdministration/good`` (patient p1) must get the same Claim whatever a case adds.
``cases/<name>/`` holds one case's files, added next to ``good/``; ``cases.json`` says what each case
must produce: ``{"in": "errors", "record": <substring>, "field": <field or null>}`` (the report's
``errors`` must hold exactly these), ``{"in": "gaps", "record": "MedicationAdministration/<id>",
"gap": <code>, "outcome": ...}``, ``{"in": "decided", "record": ..., "outcome": ...}`` or
``{"in": "notices", "record": "Type/id"}`` (the report's ``notices`` must hold exactly these).
Bad records use patient p2 so the same-day rules never touch the good administration.
"""

from __future__ import annotations

import copy
import gzip
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the checkout: tests.builders
from tests.builders import with_changes  # noqa: E402

SNOMED = "http://snomed.info/sct"
V2_SITE = "http://terminology.hl7.org/CodeSystem/v2-0163"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC = "http://hl7.org/fhir/sid/ndc"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
DEGREE = "http://terminology.hl7.org/CodeSystem/v2-0360"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
MA = "MedicationAdministration.ndjson"


def j(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def ndjson(*resources) -> str:
    return "".join(j(r) + "\n" for r in resources)


def good_world() -> dict[str, str]:
    files: dict[str, list] = {}
    for p, name in (("p1", "Corpus-Goodperson"), ("p2", "Corpus-Badperson")):
        files.setdefault("Patient", []).append(
            {
                "resourceType": "Patient",
                "id": p,
                "name": [{"family": name, "given": ["Quentin"]}],
                "birthDate": "1944-04-04",
            }
        )
        files.setdefault("Encounter", []).append(
            {
                "resourceType": "Encounter",
                "id": f"e-{p}",
                "status": "finished",
                "class": {"system": ACT, "code": "AMB"},
                "subject": {"reference": f"Patient/{p}"},
                "period": {
                    "start": "2026-10-05T09:00:00-05:00",
                    "end": "2026-10-05T11:00:00-05:00",
                },
                "serviceProvider": {"reference": "Organization/clinic"},
                # the place: an office (CMS POS 11 as the Location's type); class AMB alone is not one
                "location": [{"location": {"reference": "Location/office"}}],
                # the attending physician renders the nurse's injection (incident-to)
                "participant": [
                    {
                        "type": [{"coding": [{"system": PARTICIPATION, "code": "ATND"}]}],
                        "individual": {"reference": "Practitioner/doctor"},
                    }
                ],
                "diagnosis": [{"condition": {"reference": f"Condition/c-{p}"}, "rank": 1}],
            }
        )
        files.setdefault("Condition", []).append(
            {
                "resourceType": "Condition",
                "id": f"c-{p}",
                "subject": {"reference": f"Patient/{p}"},
                "code": {"coding": [{"system": ICD10, "code": "M54.50"}]},
            }
        )
        files.setdefault("Coverage", []).append(
            {
                "resourceType": "Coverage",
                "id": f"cov-{p}",
                "status": "active",
                "subscriberId": f"SUB-{p}-7731",
                "beneficiary": {"reference": f"Patient/{p}"},
                "payor": [{"reference": "Organization/payer"}],
                "type": {"coding": [{"system": "https://nahdo.org/sopt", "code": "1"}]},
                "period": {"start": "2026-01-01", "end": "2026-12-31"},
            }
        )
        files.setdefault("Consent", []).append(
            {
                "resourceType": "Consent",
                "id": f"consent-{p}",
                "status": "active",
                "scope": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                            "code": "treatment",
                        }
                    ]
                },
                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                "patient": {"reference": f"Patient/{p}"},
                "dateTime": "2026-01-02",
                "provision": {"period": {"start": "2026-01-02", "end": "2027-01-01"}},
            }
        )
    files["Location"] = [
        {
            "resourceType": "Location",
            "id": "office",
            "name": "Corpus Clinic office",
            "type": [{"coding": [{"system": POS, "code": "11", "display": "Office"}]}],
        }
    ]
    files["Organization"] = [
        {"resourceType": "Organization", "id": "clinic", "name": "Corpus Clinic"},
        {"resourceType": "Organization", "id": "payer", "name": "Corpus Payer"},
    ]
    files["Practitioner"] = [
        {
            "resourceType": "Practitioner",
            "id": "nurse",
            "qualification": [{"code": {"coding": [{"system": DEGREE, "code": "RN"}]}}],
        },
        {
            "resourceType": "Practitioner",
            "id": "doctor",
            "qualification": [{"code": {"coding": [{"system": DEGREE, "code": "MD"}]}}],
        },
    ]
    files["Medication"] = [
        {
            "resourceType": "Medication",
            "id": "med-keto",
            "code": {
                "coding": [
                    {"system": RXNORM, "code": "35827"},
                    {"system": NDC, "code": "00409379501"},
                ]
            },
        }
    ]
    files["MedicationAdministration"] = [
        ma("good", patient="p1", effectiveDateTime="2026-10-05T09:30:00-05:00")
    ]
    return {f"{t}.0.ndjson": ndjson(*rs) for t, rs in files.items()}


def ma(id="bad", patient="p2", **changes) -> dict:
    """A clean ketorolac 30 mg IM injection (patient p2 unless told); None deletes a key."""
    r = {
        "resourceType": "MedicationAdministration",
        "id": id,
        "status": "completed",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": "35827"}, {"system": NDC, "code": "00409379501"}]
        },
        "subject": {"reference": f"Patient/{patient}"},
        "context": {"reference": f"Encounter/e-{patient}"},
        "effectiveDateTime": "2026-10-05T10:30:00-05:00",
        "performer": [{"actor": {"reference": "Practitioner/nurse"}}],
        "dosage": {
            "route": {"coding": [{"system": SNOMED, "code": "78421000"}]},
            "site": {"coding": [{"system": V2_SITE, "code": "LD"}]},
            "dose": {"value": 30, "unit": "mg", "system": UCUM, "code": "mg"},
        },
    }
    return with_changes(r, changes)


def dosage(**changes) -> dict:
    return with_changes(ma()["dosage"], changes)


def dose(value, code="mg") -> dict:
    return dosage(dose={"value": value, "unit": code, "system": UCUM, "code": code})


CONTROL = ma("ctl", effectiveDateTime="2026-10-05T10:45:00-05:00")  # the record after a bad line


def err(record, field=None) -> dict:
    return {"in": "errors", "record": record, "field": field}


def gap(record, code, outcome="held") -> dict:
    return {
        "in": "gaps",
        "record": f"MedicationAdministration/{record}",
        "gap": code,
        "outcome": outcome,
    }


def decided(record, outcome="claim", **more) -> dict:
    return {
        "in": "decided",
        "record": f"MedicationAdministration/{record}",
        "outcome": outcome,
        **more,
    }


def then_control(first: str | bytes):
    """A bad first line, then a good record: the rest of the file is still read."""
    if isinstance(first, str):
        first = first.encode("utf-8")
    return first + b"\n" + ndjson(CONTROL).encode()


CASES: list[dict] = []


def case(name: str, files: dict, *expect: dict, why: str = "", **extra) -> None:
    CASES.append({"name": name, "why": why, "files": files, "expect": list(expect), **extra})


def build_cases() -> None:
    CASES.clear()
    ctl = decided("ctl")
    # ---- broken JSON lines
    case(
        "truncated-json",
        {MA: then_control('{"resourceType":"MedicationAdministration","id":"t1","sta')},
        err(f"{MA}:1"),
        ctl,
    )
    case("trailing-garbage", {MA: then_control(j(ma("tg")) + " }}garbage")}, err(f"{MA}:1"), ctl)
    case("json-array-line", {MA: then_control(j([ma("arr")]))}, err(f"{MA}:1"), ctl)
    case("json-number-line", {MA: then_control("42")}, err(f"{MA}:1"), ctl)
    case("json-null-line", {MA: then_control("null")}, err(f"{MA}:1"), ctl)
    case("json-string-line", {MA: then_control('"MedicationAdministration"')}, err(f"{MA}:1"), ctl)
    case("json-true-line", {MA: then_control("true")}, err(f"{MA}:1"), ctl)
    case(
        "bom-at-file-start",
        {MA: b"\xef\xbb\xbf" + ndjson(ma("bom")).encode()},
        decided("bom"),
        why="a UTF-8 byte-order mark before the first record is tolerated, not a lost record",
    )
    case(
        "nul-bytes",
        {MA: then_control(b'{"resourceType":"MedicationAdministration","id":"n\x00ul"}')},
        err(f"{MA}:1"),
        ctl,
    )
    case("nul-line", {MA: then_control(b"\x00\x00\x00\x00")}, err(f"{MA}:1"), ctl)
    case(
        "invalid-utf8-first-line",
        {MA: then_control(b'{"resourceType":"MedicationAdministration","id":"u\xff\xfe"}')},
        err(f"{MA}:1"),
        ctl,
    )
    case(
        "invalid-utf8-middle-line",
        {
            MA: ndjson(ma("before", effectiveDateTime="2026-10-05T10:10:00-05:00")).encode()
            + b'{"resourceType":"Patient","name":"\xc3\x28"}\n'
            + ndjson(CONTROL).encode()
        },
        err(f"{MA}:2"),
        decided("before"),
        ctl,
        why="one bad byte loses that line only",
    )
    case(
        "deeply-nested-json",
        {
            MA: then_control(
                '{"resourceType":"MedicationAdministration","id":"deep","x":'
                + "[" * 100000
                + "]" * 100000
                + "}"
            )
        },
        err(f"{MA}:1"),
        ctl,
    )
    case(
        "nested-just-under-the-limit",
        {MA: then_control(j(ma("nest"))[:-1] + ',"extension":' + "[" * 990 + "]" * 990 + "}")},
        err("MedicationAdministration.ndjson:1"),
        ctl,
        why="parses, but too deep to store: a record error",
    )
    case(
        "integer-over-4300-digits",
        {
            MA: then_control(
                j(ma("bigint", dosage=dose(1))).replace('"value":1,', '"value":' + "9" * 5000 + ",")
            )
        },
        err(f"{MA}:1"),
        ctl,
    )
    case("crlf-line-endings", {MA: ndjson(ma("crlf")).replace("\n", "\r\n")}, decided("crlf"))
    case(
        "blank-and-whitespace-lines", {MA: "\n   \n\t\n" + ndjson(ma("ws")) + "\n\n"}, decided("ws")
    )
    # ---- resourceType and id
    case(
        "resourcetype-missing",
        {MA: then_control(j({k: v for k, v in ma("x").items() if k != "resourceType"}))},
        err(f"{MA}:1", "resourceType"),
        ctl,
    )
    case(
        "resourcetype-number",
        {MA: then_control(j(dict(ma("x"), resourceType=7)))},
        err(f"{MA}:1", "resourceType"),
        ctl,
    )
    case(
        "resourcetype-wrong-for-file",
        {MA: then_control(j({"resourceType": "Patient", "id": "p2"}))},
        err(f"{MA}:1", "resourceType"),
        ctl,
    )
    case(
        "resourcetype-carrying-a-name",
        {MA: then_control(j({"resourceType": "Corpus-Badperson 1944-04-04", "id": "x"}))},
        err(f"{MA}:1", "resourceType"),
        ctl,
        absent=["Corpus-Badperson", "1944-04-04"],
    )
    case(
        "unknown-type-file-is-ignored",
        {"DiagnosticReport.ndjson": ndjson({"resourceType": "DiagnosticReport", "id": "o1"})},
    )
    case("id-missing", {MA: then_control(j(ma(None)))}, err(f"{MA}:1", "id"), ctl)
    case("id-number", {MA: then_control(j(ma(12)))}, err(f"{MA}:1", "id"), ctl)
    case("id-invalid-chars", {MA: then_control(j(ma("bad id!")))}, err(f"{MA}:1", "id"), ctl)
    case("id-65-chars", {MA: then_control(j(ma("a" * 65)))}, err(f"{MA}:1", "id"), ctl)
    case("id-64-chars-is-fine", {MA: ndjson(ma("b" * 64))}, decided("b" * 64))
    case("id-trailing-newline", {MA: then_control(j(ma("nl\n")))}, err(f"{MA}:1", "id"), ctl)
    case("id-rtl-override", {MA: then_control(j(ma("ma\u202egood")))}, err(f"{MA}:1", "id"), ctl)
    case("id-emoji", {MA: then_control(j(ma("ma-\U0001f489")))}, err(f"{MA}:1", "id"), ctl)
    case("id-combining-character", {MA: then_control(j(ma("e\u0301")))}, err(f"{MA}:1", "id"), ctl)
    case(
        "id-lone-surrogate",
        {MA: then_control('{"resourceType":"MedicationAdministration","id":"\\ud800"}')},
        err(f"{MA}:1", "id"),
        ctl,
    )
    case(
        "duplicate-id-same-version",
        {
            MA: ndjson(
                dict(ma("dup1", dosage=dose(15)), meta={"versionId": "1"}),
                dict(ma("dup1"), meta={"versionId": "1"}),
            )
        },
        err("MedicationAdministration/dup1", "id"),
        decided("dup1", version="1"),
        why="reported; the later record is used",
    )
    case(
        "duplicate-id-newer-version-wins",
        {
            MA: ndjson(
                dict(ma("dup2"), meta={"versionId": "2"}),
                dict(ma("dup2", dosage=dosage(route=None)), meta={"versionId": "1"}),
            )
        },
        decided("dup2", version="2"),
        why="an older version of a record is not an error",
    )
    case(
        "duplicate-patient-across-files",
        {"Patient.ndjson": ndjson({"resourceType": "Patient", "id": "p2"})},
        {"in": "notices", "record": "Patient/p2"},
        why="a copy in another file that differs is a notice naming both files, not a record error",
    )
    # ---- wrong types in a MedicationAdministration
    F = "MedicationAdministration."
    case(
        "status-number", {MA: then_control(j(ma("x", status=5)))}, err(f"{MA}:1", F + "status"), ctl
    )
    case(
        "dosage-as-list",
        {MA: then_control(j(ma("x", dosage=[dosage()])))},
        err(f"{MA}:1", F + "dosage"),
        ctl,
    )
    case(
        "dose-value-string",
        {MA: then_control(j(ma("x", dosage=dose("30"))))},
        err(f"{MA}:1", F + "dosage.dose.value"),
        ctl,
    )
    case(
        "dose-value-nan-string",
        {MA: then_control(j(ma("x", dosage=dose("NaN"))))},
        err(f"{MA}:1", F + "dosage.dose.value"),
        ctl,
    )
    case(
        "dose-value-nan-literal",
        {MA: then_control(j(ma("x", dosage=dose(1))).replace('"value":1,', '"value":NaN,'))},
        err(f"{MA}:1", F + "dosage.dose.value"),
        ctl,
    )
    case(
        "dose-value-1e999",
        {MA: then_control(j(ma("x", dosage=dose(1))).replace('"value":1,', '"value":1e999,'))},
        err(f"{MA}:1", F + "dosage.dose.value"),
        ctl,
    )
    case(
        "dose-value-boolean",
        {MA: then_control(j(ma("x", dosage=dose(True))))},
        err(f"{MA}:1", F + "dosage.dose.value"),
        ctl,
    )
    case(
        "effective-integer",
        {MA: then_control(j(ma("x", effectiveDateTime=20261005)))},
        err(f"{MA}:1", F + "effectiveDateTime"),
        ctl,
    )
    case(
        "route-coding-string",
        {MA: then_control(j(ma("x", dosage=dosage(route={"coding": "IM"}))))},
        err(f"{MA}:1", F + "dosage.route.coding"),
        ctl,
    )
    case(
        "site-as-list",
        {MA: then_control(j(ma("x", dosage=dosage(site=[{"text": "LD"}]))))},
        err(f"{MA}:1", F + "dosage.site"),
        ctl,
    )
    case(
        "subject-string",
        {MA: then_control(j(ma("x", subject="Patient/p2")))},
        err(f"{MA}:1", F + "subject"),
        ctl,
    )
    case(
        "context-list",
        {MA: then_control(j(ma("x", context=[{"reference": "Encounter/e-p2"}])))},
        err(f"{MA}:1", F + "context"),
        ctl,
    )
    case(
        "performer-number",
        {MA: then_control(j(ma("x", performer=5)))},
        err(f"{MA}:1", F + "performer"),
        ctl,
    )
    case(
        "identifier-number",
        {MA: then_control(j(ma("x", identifier=5)))},
        err(f"{MA}:1", F + "identifier"),
        ctl,
    )
    case(
        "reasoncode-object",
        {MA: then_control(j(ma("x", reasonCode={"text": "pain"})))},
        err(f"{MA}:1", F + "reasonCode"),
        ctl,
    )
    case(
        "contained-not-a-list",
        {
            MA: then_control(
                j(
                    ma(
                        "x",
                        medicationCodeableConcept=None,
                        medicationReference={"reference": "#m"},
                        contained={"resourceType": "Medication", "id": "m"},
                    )
                )
            )
        },
        err(f"{MA}:1", F + "contained"),
        ctl,
    )
    case(
        "contained-a-number",
        {MA: then_control(j(ma("x", contained=3)))},
        err(f"{MA}:1", F + "contained"),
        ctl,
    )
    case(
        "medication-concept-string",
        {MA: then_control(j(ma("x", medicationCodeableConcept="ketorolac")))},
        err(f"{MA}:1", F + "medicationCodeableConcept"),
        ctl,
    )
    case(
        "meta-versionid-object",
        {MA: then_control(j(ma("x", meta={"versionId": {"v": 1}})))},
        err(f"{MA}:1", F + "meta.versionId"),
        ctl,
    )
    # ---- readable FHIR, bad data: the administration's gaps
    case("dose-negative", {MA: ndjson(ma("neg", dosage=dose(-30)))}, gap("neg", "missing-dose"))
    case("dose-zero", {MA: ndjson(ma("zero", dosage=dose(0)))}, gap("zero", "missing-dose"))
    case("dose-1e308", {MA: ndjson(ma("huge", dosage=dose(1e308)))}, gap("huge", "missing-dose"))
    case(
        "dose-huge-ml",
        {MA: ndjson(ma("hugeml", dosage=dose(9e307, "L")))},
        gap("hugeml", "missing-dose"),
    )
    case(
        "dose-huge-unmapped-drug",
        {
            MA: ndjson(
                ma("hugeun", dosage=dose(1e308), medicationCodeableConcept={"text": "zzcorpusdrug"})
            )
        },
        gap("hugeun", "missing-dose"),
        why="an unmapped drug (J3490) bills one unit, but not for an absurd dose",
    )
    case(
        "dose-400-digit-integer",
        {MA: ndjson(ma("hugeint", dosage=dose(10**400)))},
        gap("hugeint", "missing-dose"),
        why="JSON has no size limit on integers; converting one to float overflows",
    )
    case(
        "dose-unknown-unit",
        {MA: ndjson(ma("furl", dosage=dose(30, "furlong")))},
        gap("furl", "missing-dose"),
    )
    case(
        "dose-missing",
        {MA: ndjson(ma("nodose", dosage=dosage(dose=None)))},
        gap("nodose", "missing-dose"),
    )
    case(
        "effective-year-9999",
        {MA: ndjson(ma("y9999", effectiveDateTime="9999-12-31T00:00:00Z"))},
        gap("y9999", "time-outside-encounter"),
        why="its encounter was in 2026; no Claim dated 9999",
    )
    case(
        "effective-year-0001-no-zone",
        {MA: ndjson(ma("y0001", effectiveDateTime="0001-01-01T00:00:00"))},
        gap("y0001", "time-outside-encounter"),
    )
    case(
        "effective-date-year-0001",
        {MA: ndjson(ma("d0001", effectiveDateTime="0001-01-01"))},
        gap("d0001", "time-outside-encounter"),
    )
    case(
        "effective-month-13",
        {MA: ndjson(ma("m13", effectiveDateTime="2026-13-45"))},
        gap("m13", "missing-time"),
    )
    case(
        "effective-yesterday",
        {MA: ndjson(ma("yday", effectiveDateTime="yesterday"))},
        gap("yday", "missing-time"),
    )
    case(
        "route-missing",
        {MA: ndjson(ma("noroute", dosage=dosage(route=None)))},
        gap("noroute", "missing-route"),
    )
    case(
        "route-code-with-zwj",
        {
            MA: ndjson(
                ma(
                    "zwj",
                    dosage=dosage(route={"coding": [{"system": SNOMED, "code": "7842\u200d1000"}]}),
                )
            )
        },
        gap("zwj", "missing-route"),
        why="a zero-width joiner makes it another code; routes are never guessed",
    )
    case(
        "subject-missing-patient",
        {MA: ndjson(ma("nopat", subject={"reference": "Patient/does-not-exist"}))},
        gap("nopat", "missing-patient"),
    )
    case(
        "context-is-a-condition",
        {MA: ndjson(ma("ctxcond", context={"reference": "Condition/c-p2"}))},
        gap("ctxcond", "missing-encounter"),
    )
    case(
        "context-dangling",
        {MA: ndjson(ma("ghostenc", context={"reference": "Encounter/ghost"}))},
        gap("ghostenc", "missing-encounter"),
    )
    case(
        "medication-reference-missing",
        {
            MA: ndjson(
                ma(
                    "nomed",
                    medicationCodeableConcept=None,
                    medicationReference={"reference": "Medication/ghost"},
                )
            )
        },
        gap("nomed", "missing-medication"),
    )
    case(
        "medication-reference-control",
        {
            MA: ndjson(
                ma(
                    "medref",
                    medicationCodeableConcept=None,
                    medicationReference={"reference": "Medication/med-keto"},
                )
            )
        },
        decided("medref"),
    )
    case(
        "contained-reference-without-contained",
        {
            MA: ndjson(
                ma(
                    "nocont",
                    medicationCodeableConcept=None,
                    medicationReference={"reference": "#med1"},
                )
            )
        },
        gap("nocont", "missing-medication"),
    )
    selfref = {
        "resourceType": "Medication",
        "id": "med1",
        "code": {
            "coding": [{"system": RXNORM, "code": "35827"}, {"system": NDC, "code": "00409379501"}]
        },
        "ingredient": [{"itemReference": {"reference": "#med1"}}],
    }
    inner = copy.deepcopy(selfref)
    for _ in range(30):
        inner = dict(copy.deepcopy(selfref), contained=[inner])
    case(
        "contained-medication-contains-itself",
        {
            MA: ndjson(
                ma(
                    "selfcont",
                    medicationCodeableConcept=None,
                    medicationReference={"reference": "#med1"},
                    contained=[inner],
                )
            )
        },
        decided("selfcont"),
    )
    case(
        "unknown-elements",
        {
            MA: ndjson(
                dict(
                    ma("unk"),
                    foo={"bar": [1, 2, {"baz": None}]},
                    _status={"id": "x"},
                    zzz=None,
                    implicitRules=5,
                )
            )
        },
        decided("unk"),
    )
    case(
        "unicode-in-text",
        {
            MA: ndjson(
                dict(
                    ma("uni"),
                    note=[{"text": "\u202eevil \U0001f489 e\u0301\u0301\u0301"}],
                    dosage=dict(dosage(), text="\u200f\u200d\ufeff"),
                )
            )
        },
        decided("uni"),
    )
    case(
        "lone-surrogate-in-text",
        {MA: j(ma("surr"))[:-1] + ',"note":[{"text":"\\udc80\\ud800"}]}\n'},
        decided("surr"),
    )
    # ---- wrong types in referenced resources
    case(
        "encounter-with-wrong-types",
        {
            MA: ndjson(ma("badenc", context={"reference": "Encounter/e-bad"})),
            "Encounter.ndjson": ndjson(
                {
                    "resourceType": "Encounter",
                    "id": "e-bad",
                    "class": "AMB",
                    "type": 5,
                    "diagnosis": 7,
                    "reasonCode": "x",
                    "reasonReference": 1,
                    "period": "today",
                    "subject": {"reference": "Patient/p2"},
                    "serviceProvider": "clinic",
                }
            ),
        },
        gap("badenc", "missing-diagnosis"),
    )
    case(
        "chargeitem-context-string",
        {
            "ChargeItem.ndjson": ndjson(
                {
                    "resourceType": "ChargeItem",
                    "id": "ci",
                    "status": "billable",
                    "subject": {"reference": "Patient/p2"},
                    "context": "Encounter/e-p2",
                    "code": 5,
                    "occurrenceDateTime": 2026,
                }
            ),
            MA: ndjson(ma("withci")),
        },
        decided("withci"),
    )
    case(
        "coverage-and-consent-wrong-types",
        {
            "Coverage.ndjson": ndjson(
                {
                    "resourceType": "Coverage",
                    "id": "cov-odd",
                    "status": "active",
                    "beneficiary": {"reference": "Patient/p2"},
                    "type": "medicare",
                    "period": "2026",
                    "order": "first",
                }
            ),
            "Consent.ndjson": ndjson(
                {
                    "resourceType": "Consent",
                    "id": "con-odd",
                    "status": "active",
                    "patient": {"reference": "Patient/p2"},
                    "provision": [],
                    "dateTime": 5,
                }
            ),
            MA: ndjson(ma("oddcov")),
        },
        decided("oddcov"),
    )
    case(
        "medication-ingredient-not-a-list",
        {
            "Medication.ndjson": ndjson(
                {"resourceType": "Medication", "id": "med-odd", "code": "x", "ingredient": 5}
            ),
            MA: ndjson(
                ma(
                    "oddmed",
                    medicationCodeableConcept=None,
                    medicationReference={"reference": "Medication/med-odd"},
                )
            ),
        },
        gap("oddmed", "unmapped-medication", outcome="held"),
        gap("oddmed", "missing-ndc", outcome="held"),
        why="a Medication with no usable code: J3490, held for its NDC (a NOC line is priced from it)",
    )
    # ---- Bundles
    case(
        "bundle-entry-not-a-list",
        {"bundle.json": j({"resourceType": "Bundle", "entry": {"resource": ma("b")}})},
        err("bundle.json", "Bundle.entry"),
    )
    case(
        "bundle-entry-without-resource",
        {
            "bundle.json": j(
                {
                    "resourceType": "Bundle",
                    "entry": [{"fullUrl": "urn:uuid:1"}, {"resource": ma("inb")}],
                }
            )
        },
        err("bundle.json entry[0]", "resource"),
        decided("inb"),
    )
    case(
        "bundle-entry-a-string",
        {"bundle.json": j({"resourceType": "Bundle", "entry": ["x", {"resource": ma("inb2")}]})},
        err("bundle.json entry[0]", "resource"),
        decided("inb2"),
    )
    case(
        "bundle-resource-a-number",
        {"bundle.json": j({"resourceType": "Bundle", "entry": [{"resource": 5}]})},
        err("bundle.json entry[0]"),
    )
    case(
        "bundle-with-a-bad-administration",
        {
            "bundle.json": j(
                {
                    "resourceType": "Bundle",
                    "entry": [{"resource": ma("bx", dosage=[])}, {"resource": ma("by")}],
                }
            )
        },
        err("bundle.json entry[0]", F + "dosage"),
        decided("by"),
    )
    case("json-file-is-an-array", {"list.json": "[]"}, err("list.json"))
    case(
        "json-file-truncated",
        {"broken.json": '{"resourceType": "Bundle", "entry": [{"resou'},
        err("broken.json"),
    )
    # ---- files
    data = gzip.compress(
        ndjson(
            *[ma(f"gz{i}", effectiveDateTime=f"2026-10-05T10:{i:02d}:00-05:00") for i in range(40)]
        ).encode(),
        mtime=0,
    )
    case(
        "gzip-truncated",
        {"MedicationAdministration.ndjson.gz": data[: len(data) - 12]},
        err("MedicationAdministration.ndjson.gz:"),
        decided("gz0", outcome=None),
    )
    case(
        "gzip-that-is-not-gzip",
        {"MedicationAdministration.ndjson.gz": ndjson(ma("plain"))},
        err("MedicationAdministration.ndjson.gz:1"),
    )
    case(
        "gzip-valid-control",
        {"MedicationAdministration.ndjson.gz": gzip.compress(ndjson(ma("gzok")).encode(), mtime=0)},
        decided("gzok"),
    )
    case("empty-file", {MA: b""})
    case("empty-gzip-file", {"MedicationAdministration.ndjson.gz": b""})
    case(
        "directory-named-like-ndjson",
        {"MedicationAdministration.ndjson/README": "a directory, not a file\n"},
        err("MedicationAdministration.ndjson"),
    )
    case(
        "symlink-loop",
        {},
        err("MedicationAdministration.7.ndjson"),
        symlinks={"MedicationAdministration.7.ndjson": "MedicationAdministration.7.ndjson"},
    )
    case(
        "dangling-symlink",
        {},
        err("MedicationAdministration.8.ndjson"),
        symlinks={"MedicationAdministration.8.ndjson": "nowhere.ndjson"},
    )


def write(root: Path = HERE) -> int:
    build_cases()
    for sub in ("good", "cases"):
        shutil.rmtree(root / sub, ignore_errors=True)
    (root / "good").mkdir(parents=True)
    for name, text in good_world().items():
        (root / "good" / name).write_text(text, encoding="utf-8")
    index = []
    for c in CASES:
        folder = root / "cases" / c["name"]
        folder.mkdir(parents=True)
        for name, content in c["files"].items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            data = (
                content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass")
            )
            path.write_bytes(data)
        entry = {k: v for k, v in c.items() if k != "files"}
        index.append(entry)
    (root / "cases.json").write_text(
        json.dumps(index, indent=1, ensure_ascii=True) + "\n", encoding="utf-8"
    )
    return len(index)


if __name__ == "__main__":
    print(f"{write(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)} cases written")
