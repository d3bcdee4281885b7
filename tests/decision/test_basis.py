"""Where every fact a claim line depends on came from (docs/decision-rules.md, "Where every fact comes from").

Each of place of service, rendering provider, date of service, container and diagnosis is (a) read
from the record, (b) derived from it by a row of mappings/, (c) given by the practice's
configuration or (d) unknown, which is a gap. The decision says which, per fact, and report.json
carries it as ``basis``.
"""

from __future__ import annotations

import io
import json

from fhir_injection.decision.practice import Config
from fhir_injection.decision.ruleset import BASIS_FACTS, BASIS_KINDS
from fhir_injection.sinks.report import ReportWriter
from tests.builders import (
    ACT,
    NDC,
    RXNORM,
    UCUM,
    admin,
    decide_one,
    dose,
    gap_codes,
    replace_resource,
    world,
)


def basis(decision) -> dict[str, tuple[str, str]]:
    out = {fact: (kind, how) for fact, kind, how in decision.basis}
    assert set(out) <= set(BASIS_FACTS)
    assert {kind for kind, _ in out.values()} <= set(BASIS_KINDS)
    return out


def test_a_clean_office_injection_says_where_each_fact_came_from():
    b = basis(decide_one())
    # the world's Location is typed CMS place of service 11: read from the record (class AMB alone is
    # not the office, 96372.md 'Setting')
    assert b["place_of_service"] == ("record", "Location.type is CMS place of service 11")
    assert b["service_date"] == ("record", "effective[x] in its own time zone")
    assert b["diagnosis"][0] == "record" and "M54.50" in b["diagnosis"][1]
    # the nurse gave it; the encounter's MD renders it by his qualification (v2 0360 MD)
    assert b["rendering_provider"] == ("record", "an Encounter.participant's qualification")
    assert b["container"][0] in ("rule", "record", "unknown")


def test_an_unknown_setting_is_unknown_not_the_office():
    resources = replace_resource(
        world(), "Encounter", location=None, **{"class": {"system": ACT, "code": "XYZ"}}
    )
    d = decide_one(admin(), resources)
    assert d.place_of_service is None and "unknown-setting" in gap_codes(d)
    kind, how = basis(d)["place_of_service"]
    assert kind == "unknown" and "XYZ" in how


def test_the_practice_time_zone_makes_the_service_date_the_practice_s():
    d = decide_one(config=Config(timezone="America/Chicago"))
    assert basis(d)["service_date"] == ("practice", "effective[x] as a day in America/Chicago")


def test_no_diagnosis_is_unknown():
    encounter = next(r for r in world() if r["resourceType"] == "Encounter")
    resources = replace_resource(world(), "Encounter", diagnosis=None)
    assert "diagnosis" in encounter
    d = decide_one(admin(), resources)
    assert "missing-diagnosis" in gap_codes(d)
    assert basis(d)["diagnosis"][0] == "unknown"


def test_a_performer_who_is_a_physician_renders_from_the_record():
    d = decide_one(admin(performer=[{"actor": {"reference": "Practitioner/doctor"}}]))
    assert d.rendering == "Practitioner/doctor"
    assert basis(d)["rendering_provider"] == ("record", "the performer's qualification")


def test_the_configured_supervising_physician_is_the_practice_s():
    resources = replace_resource(world(), "Encounter", participant=None)
    d = decide_one(admin(), resources, Config(rendering_providers={"clinic": "doctor"}))
    assert d.rendering == "Practitioner/doctor"
    assert basis(d)["rendering_provider"] == (
        "practice",
        "[rendering_providers] for Organization/clinic",
    )


def test_no_one_to_render_is_unknown():
    resources = replace_resource(world(), "Encounter", participant=None)
    d = decide_one(admin(), resources)
    assert "missing-rendering-provider" in gap_codes(d)
    assert basis(d)["rendering_provider"][0] == "unknown"


def test_a_medication_amount_is_a_container_read_from_the_record():
    medication = {
        "resourceType": "Medication",
        "id": "m1",
        "code": {
            "coding": [{"system": RXNORM, "code": "35827"}, {"system": NDC, "code": "99999999999"}]
        },
        "amount": {
            "numerator": {"value": 1, "unit": "mL", "system": UCUM, "code": "mL"},
            "denominator": {"value": 1},
        },
    }
    a = admin(
        medicationCodeableConcept=None,
        medicationReference={"reference": "Medication/m1"},
        dosage={**admin()["dosage"], "dose": dose(30, "mg")},
    )
    d = decide_one(a, [*world(), medication])
    kind, how = basis(d)["container"]
    assert kind == "record" and "Medication.amount" in how


def test_report_json_carries_the_basis_of_each_fact():
    d = decide_one()
    out = io.StringIO()
    writer = ReportWriter(out)
    writer.add(d, "Claim/c1", "active", None)
    writer.close()
    entry = json.loads(out.getvalue())["administrations"][0]
    assert entry["basis"]["place_of_service"]["from"] == "record"
    assert entry["basis"]["service_date"] == {
        "from": "record",
        "how": "effective[x] in its own time zone",
    }
    assert set(entry["basis"]) == {fact for fact, _, _ in d.basis}


def test_a_diagnosis_only_in_snomed_ct_is_unknown_and_says_so():
    resources = replace_resource(world(), "Encounter", diagnosis=None)
    snomed = {
        "coding": [
            {"system": "http://snomed.info/sct", "code": "82423001", "display": "Chronic pain"}
        ]
    }
    d = decide_one(admin(reasonCode=[snomed]), resources)
    assert "diagnosis-not-icd10" in gap_codes(d)
    assert basis(d)["diagnosis"] == (
        "unknown",
        "only in SNOMED CT (82423001): no ICD-10-CM code and no snomed_icd10.csv row",
    )


def test_a_decision_that_stops_early_still_says_where_its_place_and_day_came_from():
    resources = replace_resource(world(), "Encounter", **{"class": {"system": ACT, "code": "EMER"}})
    d = decide_one(admin(), resources)
    assert d.outcome == "not-billable" and "facility-setting" in gap_codes(d)
    b = basis(d)
    assert b["place_of_service"][0] == "rule" and "POS 23" in b["place_of_service"][1]
    assert b["service_date"][0] == "record"


def _snomed(code: str, display: str) -> dict:
    return {"coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}]}


def test_a_diagnosis_billed_from_snomed_ct_is_the_rule_s_not_the_record_s():
    """Anemia written only in SNOMED CT (271737000) goes on the claim as D64.9 by a row of
    snomed_icd10.csv: the record did not write D64.9, so the basis is the rule, and says so."""
    resources = replace_resource(world(), "Encounter", diagnosis=None)
    d = decide_one(admin(reasonCode=[_snomed("271737000", "Anemia (disorder)")]), resources)
    assert [c.code for c in d.diagnoses] == ["D64.9"]
    assert basis(d)["diagnosis"] == ("rule", "ICD-10-CM D64.9, from SNOMED CT (snomed_icd10.csv)")


def test_a_combination_of_snomed_ct_diagnoses_names_both_rules():
    """Anemia and CKD stage 4 written only in SNOMED CT: each mapped by snomed_icd10.csv, then
    coded together as D63.1 after N18.4 (ICD-10-CM Official Guidelines I.A.15 'With')."""
    resources = replace_resource(world(), "Encounter", diagnosis=None)
    reasons = [
        _snomed("271737000", "Anemia (disorder)"),
        _snomed("431857002", "Chronic kidney disease stage 4 (disorder)"),
    ]
    d = decide_one(admin(reasonCode=reasons), resources)
    assert [c.code for c in d.diagnoses] == ["N18.4", "D63.1"]
    kind, how = basis(d)["diagnosis"]
    assert kind == "rule"
    assert how.startswith("ICD-10-CM N18.4, D63.1, from SNOMED CT (snomed_icd10.csv): ")
    assert "combination_codes.csv" in how
