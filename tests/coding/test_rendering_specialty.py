"""The rendering provider read from PractitionerRole.specialty and PractitionerRole.code
(HL7 FHIR R4 PractitionerRole).

Real EHRs often carry the clinician's kind on the PractitionerRole, not on
Practitioner.qualification: US Core binds PractitionerRole.specialty to the NUCC Health Care
Provider Taxonomy and PractitionerRole.code to SNOMED CT care-team functions; the FHIR core and IPA
examples use the practitioner-role code system (doctor, nurse, pharmacist). All are read with the
same table as the qualification (mappings/qualifications.csv): physicians (NUCC grouping 20) and
NPPs (NP 363L, PA 363A, CNS 364S, CNM 367A00000X) render; nurses, aides, technicians and
pharmacists are auxiliary personnel, billed incident-to (IOM 100-02 ch.15 s60). A role that is not
active or whose period does not cover the service date says nothing; any source saying eligible
wins (an NP is also an RN). The nurse who gave the injection stays the performer.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from fhir_injection import Config, MappingError, build_task, load_rules
from fhir_injection.decision.clinicians import _in_force, clinician_role
from fhir_injection.decision.context import Context, role_references
from tests.builders import (
    CREATED,
    PARTICIPATION,
    SNOMED,
    V2_DEGREE,
    admin,
    decide_one,
    gap,
    gap_codes,
    replace_resource,
    world,
)

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
NUCC = "http://nucc.org/provider-taxonomy"
PRACTITIONER_ROLE = "http://terminology.hl7.org/CodeSystem/practitioner-role"
SERVICE_DAY = date(2026, 10, 5)  # the builders' administration


def concept(system, code, display=None):
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def role(rid, practitioner=None, specialty=(), code=(), **extra):
    resource = {"resourceType": "PractitionerRole", "id": rid, **extra}
    if practitioner:
        resource["practitioner"] = {"reference": practitioner}
    if specialty:
        resource["specialty"] = [concept(*s) for s in specialty]
    if code:
        resource["code"] = [concept(*c) for c in code]
    return resource


def bare_practitioner(pid, *qualifications):
    resource = {"resourceType": "Practitioner", "id": pid}
    if qualifications:
        resource["qualification"] = [{"code": concept(s, c)} for s, c in qualifications]
    return resource


def encounter_with(*participants, extra=()):
    return replace_resource(world(), "Encounter", participant=list(participants)) + list(extra)


def participant(reference, *types):
    item = {"individual": {"reference": reference}}
    if types:
        item["type"] = [{"coding": [{"system": PARTICIPATION, "code": t}]} for t in types]
    return item


def performed_by(reference):
    return admin(performer=[{"actor": {"reference": reference}}])


# ----------------------------------------------------------------------------- shapes others wrote


def us_core_example():
    """Shaped as US Core's PractitionerRole example (HL7/US-Core@85bf4af6 input/examples/
    PractitionerRole_Practitioner_Endpoint_Bundle_Example.json): the Practitioner's qualification is
    a state licence type (a code system no table knows), the role's specialty NUCC 208D00000X
    (General Practice Physician) and its code v3 ParticipationFunction PCP beside NUCC 261QP2300X
    (a clinic's taxonomy, not a person's)."""
    practitioner = {
        "resourceType": "Practitioner",
        "id": "Practitioner-1011",
        "identifier": [
            {"use": "official", "system": "http://hl7.org/fhir/sid/us-npi", "value": "9999991018"}
        ],
        "qualification": [
            {
                "identifier": [
                    {
                        "use": "official",
                        "type": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                    "code": "MD",
                                }
                            ]
                        },
                        "system": "http://example.org/fhir/michigan.gov/fhir/medical-license",
                        "value": "LARA-1011",
                    }
                ],
                "code": concept(
                    "http://example.org/fhir/michigan.gov/lara/license-type",
                    "4305",
                    "Medical Doctor",
                ),
            }
        ],
    }
    practitioner_role = {
        "resourceType": "PractitionerRole",
        "id": "PractitionerRole-1",
        "meta": {
            "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitionerrole"]
        },
        "practitioner": {"reference": "Practitioner/Practitioner-1011"},
        "organization": {"reference": "Organization/clinic"},
        "code": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationFunction",
                        "code": "PCP",
                    },
                    {"system": NUCC, "code": "261QP2300X", "display": "Primary Care Clinic/Center"},
                ]
            }
        ],
        "specialty": [concept(NUCC, "208D00000X", "General Practice Physician")],
        "location": [{"reference": "Location/hl7east"}],
    }
    return practitioner, practitioner_role


def test_the_us_core_practitioner_role_example_renders_by_its_nucc_specialty():
    practitioner, practitioner_role = us_core_example()
    w = encounter_with(
        participant("PractitionerRole/PractitionerRole-1", "ATND"),
        extra=[practitioner, practitioner_role],
    )
    d = decide_one(admin(), w)
    assert (d.outcome, d.performer, d.rendering) == (
        "claim",
        "Practitioner/nurse",
        "PractitionerRole/PractitionerRole-1",
    )
    assert "rendering-provider-by-role" not in gap_codes(d)  # its specialty says physician: no note
    # untyped, it still renders: the specialty, not the participant type, says who it is
    w = encounter_with(
        participant("PractitionerRole/PractitionerRole-1"), extra=[practitioner, practitioner_role]
    )
    assert decide_one(admin(), w).rendering == "PractitionerRole/PractitionerRole-1"
    # without its specialty, the clinic's taxonomy is no person's, but the licence type's display
    # 'Medical Doctor' is on the reviewed list of qualification texts (qualification_text.csv)
    del practitioner_role["specialty"]
    w = encounter_with(
        participant("PractitionerRole/PractitionerRole-1"), extra=[practitioner, practitioner_role]
    )
    d = decide_one(admin(), w)
    assert d.rendering == "PractitionerRole/PractitionerRole-1"
    assert dict((f, (k, h)) for f, k, h in d.basis)["rendering_provider"][0] == "rule"
    # and without that, nothing says who it is
    practitioner["qualification"][0]["code"]["coding"][0]["display"] = "License"
    d = decide_one(admin(), w)
    assert d.rendering is None
    assert (
        "'PractitionerRole/PractitionerRole-1' (no known qualification: qualification text 'License' is not on "
        "the reviewed list"
    ) in gap(d, "missing-rendering-provider").message


def test_the_ipa_example_role_code_doctor_renders():
    # IPA STU1 PractitionerRoleExample1: code practitioner-role#doctor, no qualification given
    w = encounter_with(
        participant("PractitionerRole/PractitionerRoleExample1", "PPRF"),
        extra=[
            role(
                "PractitionerRoleExample1",
                "Practitioner/PractitionerExample1",
                code=[(PRACTITIONER_ROLE, "doctor", "Physician")],
                active=True,
            ),
            bare_practitioner("PractitionerExample1"),
        ],
    )
    d = decide_one(admin(), w)
    assert d.rendering == "PractitionerRole/PractitionerRoleExample1"
    assert "rendering-provider-by-role" not in gap_codes(d)


def test_a_snomed_physician_code_renders_beside_a_national_specialty_no_table_knows():
    # CH EPR example PeterPanSpitalXDept3: code SNOMED 309343006 Physician, a Swiss specialty OID
    r = role(
        "PeterPanSpitalXDept3",
        "Practitioner/DrPeterPan",
        code=[(SNOMED, "309343006", "Physician")],
        specialty=[("urn:oid:2.16.756.5.30.1.127.3.5", "1051")],
        active=True,
    )
    w = encounter_with(
        participant("PractitionerRole/PeterPanSpitalXDept3"),
        extra=[r, bare_practitioner("DrPeterPan")],
    )
    assert decide_one(admin(), w).rendering == "PractitionerRole/PeterPanSpitalXDept3"


def test_an_epic_shaped_role_with_a_local_coding_beside_the_nucc_one_renders():
    # shaped as Epic's R4 reads (our own writing): opaque dotted ids, the vendor's urn:oid:1.2.840.114350
    # codings first, a standard coding beside them, references written as absolute URLs
    base = "https://fhir.example.org/api/FHIR/R4"
    pid, rid = "eM5CWtq15N0WJeuCet5bJlQ3", "e8Ri5FYf8Tr.SOrrqTw-BqKcv7z3tmhQd6cdPnM6OE6w3"
    epic_role = {
        "resourceType": "PractitionerRole",
        "id": rid,
        "active": True,
        "practitioner": {"reference": f"{base}/Practitioner/{pid}"},
        "code": [
            {
                "coding": [
                    {
                        "system": "urn:oid:1.2.840.114350.1.13.0.1.7.4.836982.1040",
                        "code": "11",
                        "display": "Nurse Practitioner",
                    }
                ],
                "text": "Nurse Practitioner",
            }
        ],
        "specialty": [
            {
                "coding": [
                    {"system": "urn:oid:1.2.840.114350.1.13.0.1.7.10.836982.1050", "code": "9"},
                    {"system": NUCC, "code": "363LF0000X"},
                ],
                "text": "Family Medicine",
            }
        ],
        "period": {"start": "2019-07-01"},
    }
    d = decide_one(
        performed_by(f"{base}/PractitionerRole/{rid}"),
        [
            *replace_resource(world(), "Encounter", participant=None),
            epic_role,
            bare_practitioner(pid),
        ],
    )
    assert (d.outcome, d.performer, d.rendering) == (
        "claim",
        f"PractitionerRole/{rid}",
        f"PractitionerRole/{rid}",
    )


# ----------------------------------------------------------------------------- the demo clinic's three


def test_a_performer_role_with_an_np_specialty_and_no_qualification_renders_herself():
    r = role("np-role", "Practitioner/np", specialty=[(NUCC, "363L00000X")])
    d = decide_one(
        performed_by("PractitionerRole/np-role"),
        [*replace_resource(world(), "Encounter", participant=None), r, bare_practitioner("np")],
    )
    assert (d.outcome, d.performer, d.rendering) == (
        "claim",
        "PractitionerRole/np-role",
        "PractitionerRole/np-role",
    )


def test_an_rn_gives_it_and_the_physician_role_of_the_encounter_renders_incident_to():
    r = role("fm-role", "Practitioner/fm", specialty=[(NUCC, "207Q00000X")])
    w = encounter_with(
        participant("PractitionerRole/fm-role", "PPRF"), extra=[r, bare_practitioner("fm")]
    )
    d = decide_one(admin(), w)
    assert (d.outcome, d.performer, d.rendering) == (
        "claim",
        "Practitioner/nurse",
        "PractitionerRole/fm-role",
    )
    assert "rendering-provider-by-role" not in gap_codes(d)
    task = build_task(decide_one(admin(dosage=None), w), Config(), load_rules(), CREATED)
    assert task["owner"] == {"reference": "Practitioner/nurse"}  # the nurse stays the performer


def test_an_rn_role_with_no_participant_is_held_for_a_rendering_provider():
    r = role("rn-role", "Practitioner/rn", specialty=[(NUCC, "163W00000X")])
    d = decide_one(
        performed_by("PractitionerRole/rn-role"),
        [*replace_resource(world(), "Encounter", participant=None), r, bare_practitioner("rn")],
    )
    assert d.outcome == "held" and d.rendering is None
    assert gap(d, "missing-rendering-provider").message.startswith(
        "The performer PractitionerRole/rn-role is auxiliary staff (incident-to); the Encounter has no participant"
    )


# ----------------------------------------------------------------------------- conflicts, period, active


def test_an_rn_qualification_and_an_np_specialty_is_an_np():
    r = role("r1", "Practitioner/x", specialty=[(NUCC, "363LF0000X")])
    w = encounter_with(
        participant("PractitionerRole/r1"), extra=[r, bare_practitioner("x", (V2_DEGREE, "RN"))]
    )
    assert decide_one(admin(), w).rendering == "PractitionerRole/r1"


def test_an_md_qualification_wins_over_a_nurse_role_code():
    r = role("r1", "Practitioner/x", code=[(PRACTITIONER_ROLE, "nurse")])
    w = encounter_with(
        participant("PractitionerRole/r1"), extra=[r, bare_practitioner("x", (V2_DEGREE, "MD"))]
    )
    assert decide_one(admin(), w).rendering == "PractitionerRole/r1"


def test_an_auxiliary_role_of_a_practitioner_of_unknown_qualification_is_auxiliary():
    r = role("r1", "Practitioner/x", code=[(PRACTITIONER_ROLE, "pharmacist")])
    w = encounter_with(
        participant("PractitionerRole/r1", "ATND"), extra=[r, bare_practitioner("x")]
    )
    d = decide_one(admin(), w)
    assert d.rendering is None and "rendering-provider-by-role" not in gap_codes(d)
    assert "'PractitionerRole/r1' (auxiliary)" in gap(d, "missing-rendering-provider").message


@pytest.mark.parametrize(
    "changes",
    [
        {"active": False},
        {"period": {"end": "2026-10-04"}},
        {"period": {"start": "2026-10-06"}},
        {"period": {"start": "2025-01-01", "end": "2026-09"}},
        {"period": {"start": "2027"}},
    ],
)
def test_a_role_not_in_force_on_the_service_date_says_nothing(changes):
    r = role("r1", "Practitioner/x", specialty=[(NUCC, "363L00000X")], **changes)
    w = encounter_with(participant("PractitionerRole/r1"), extra=[r, bare_practitioner("x")])
    d = decide_one(admin(), w)
    assert d.rendering is None
    assert (
        "'PractitionerRole/r1' (no known qualification)"
        in gap(d, "missing-rendering-provider").message
    )
    # the Practitioner's own qualification still counts
    w = encounter_with(
        participant("PractitionerRole/r1"), extra=[r, bare_practitioner("x", (V2_DEGREE, "PA"))]
    )
    assert decide_one(admin(), w).rendering == "PractitionerRole/r1"


@pytest.mark.parametrize(
    "period",
    [
        {"start": "2026-10-05", "end": "2026-10-05"},  # both ends inclusive
        {"start": "2026-10-05T08:00:00-05:00"},
        {"end": "2026-10-05T23:59:59-05:00"},
        {"start": "2026", "end": "2026"},  # year and month precision cover the whole of them
        {"start": "2026-10", "end": "2026-10"},
        {},
    ],
)
def test_a_role_in_force_on_the_service_date_counts(period):
    r = role("r1", "Practitioner/x", specialty=[(NUCC, "363L00000X")], period=period, active=True)
    w = encounter_with(participant("PractitionerRole/r1"), extra=[r, bare_practitioner("x")])
    assert decide_one(admin(), w).rendering == "PractitionerRole/r1"


def test_in_force_reads_active_and_period_and_ignores_what_is_not_a_period():
    assert _in_force({}, SERVICE_DAY) and _in_force({"active": True}, SERVICE_DAY)
    assert not _in_force({"active": False}, None)
    assert _in_force({"period": {"start": "2099-01-01"}}, None)  # no date: only active counts
    assert _in_force({"period": "2020"}, SERVICE_DAY)
    assert _in_force({"period": {"start": 2099, "end": ""}}, SERVICE_DAY)
    assert not _in_force({"period": {"start": "2026-10-06"}}, SERVICE_DAY)
    assert not _in_force({"period": {"end": "2026-10-04"}}, SERVICE_DAY)


def test_clinician_role_reads_a_practitioner_a_role_and_nothing():
    rules = load_rules()
    ctx = Context([bare_practitioner("rn", (V2_DEGREE, "RN"))])
    assert clinician_role(None, ctx, rules, SERVICE_DAY) is None
    assert (
        clinician_role(bare_practitioner("rn", (V2_DEGREE, "RN")), ctx, rules, SERVICE_DAY)
        == "auxiliary"
    )
    nurse_role = role("r", "Practitioner/rn", specialty=[(NUCC, "363L00000X")])
    assert clinician_role(nurse_role, ctx, rules, SERVICE_DAY) == "eligible"
    junk = {
        "resourceType": "PractitionerRole",
        "id": "j",
        "specialty": "NP",
        "code": [None, {"coding": "x"}],
        "practitioner": {"reference": "Practitioner/rn"},
    }
    assert clinician_role(junk, ctx, rules, SERVICE_DAY) == "auxiliary"
    assert (
        clinician_role(role("r", code=[(PRACTITIONER_ROLE, "nurse")]), ctx, rules, SERVICE_DAY)
        == "auxiliary"
    )
    assert (
        clinician_role(role("r", code=[(PRACTITIONER_ROLE, "ict")]), ctx, rules, SERVICE_DAY)
        is None
    )


# ----------------------------------------------------------------------------- the table


@pytest.mark.parametrize(
    "system,code,expected",
    [
        (NUCC, "207Q00000X", "eligible"),  # family medicine
        (NUCC, "208D00000X", "eligible"),  # general practice
        (NUCC, "2084P0800X", "eligible"),  # psychiatry
        (NUCC, "363LF0000X", "eligible"),
        (NUCC, "363AM0700X", "eligible"),
        (NUCC, "364SP0808X", "eligible"),
        (NUCC, "367A00000X", "eligible"),
        (NUCC, "163WP2201X", "auxiliary"),  # RN, ambulatory care
        (NUCC, "164W00000X", "auxiliary"),
        (NUCC, "164X00000X", "auxiliary"),
        (NUCC, "3747A0650X", "auxiliary"),
        (NUCC, "374U00000X", "auxiliary"),
        (NUCC, "376K00000X", "auxiliary"),
        (NUCC, "246QM0706X", "auxiliary"),
        (NUCC, "183500000X", "auxiliary"),  # pharmacist: never renders, may give it incident-to
        (NUCC, "1835P1200X", "auxiliary"),
        (NUCC, "183700000X", "auxiliary"),
        (
            NUCC,
            "367500000X",
            None,
        ),  # nurse anesthetist: not an incident-to NPP of 42 CFR 410.74-410.77
        (NUCC, "367H00000X", None),
        (NUCC, "261QP2300X", None),  # a clinic
        (PRACTITIONER_ROLE, "doctor", "eligible"),
        (PRACTITIONER_ROLE, "nurse", "auxiliary"),
        (PRACTITIONER_ROLE, "pharmacist", "auxiliary"),
        (PRACTITIONER_ROLE, "researcher", None),
        (SNOMED, "309343006", "eligible"),
        (SNOMED, "158965000", "eligible"),
        (SNOMED, "224571005", "eligible"),
        (SNOMED, "449161006", "eligible"),
        (SNOMED, "224570006", "eligible"),
        (SNOMED, "224535009", "auxiliary"),
        (SNOMED, "46255001", "auxiliary"),
    ],
)
def test_the_table_says_who_renders(system, code, expected):
    rules = load_rules()
    assert (
        clinician_role(role("r", specialty=[(system, code)]), Context(), rules, SERVICE_DAY)
        == expected
    )


def test_a_broken_row_is_reported_with_file_and_row(tmp_path):
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    path = target / "qualifications.csv"
    lines = path.read_text().splitlines()
    row = next(
        n
        for n, text in enumerate(lines, start=1)
        if text.startswith("http://nucc.org/provider-taxonomy,1835,")
    )
    path.write_text(
        path.read_text().replace(
            "http://nucc.org/provider-taxonomy,1835,prefix,",
            "http://nucc.org/provider-taxonomy,1835,stem,",
        )
    )
    with pytest.raises(MappingError) as err:
        load_rules(target)
    assert (err.value.file, err.value.row) == ("qualifications.csv", row)
    assert "column 'match' is 'stem'" in str(err.value)


# ----------------------------------------------------------------------------- the server pull


def test_the_server_pull_fetches_the_practitioner_of_a_role_it_holds():
    from fhir_injection.sources.resolver import Resolver

    class NoServer:
        def capabilities(self):
            return {}

    resolver = Resolver(NoServer())
    resolver.remember(role("r1", "Practitioner/np", specialty=[(NUCC, "363L00000X")]))
    refs, _, _ = resolver._references([performed_by("PractitionerRole/r1")])
    assert {"PractitionerRole/r1", "Practitioner/np"} <= refs
    assert list(role_references(role("r2"))) == []
    assert list(role_references(role("r3", "Practitioner/x"))) == [
        ("Practitioner/x", "Practitioner")
    ]


# ----------------------------------------------------------------------------- roles that name the Practitioner


def test_a_practitioner_performer_is_read_through_the_roles_that_name_it():
    # Epic and Oracle Health shape: the administration names the Practitioner (no qualification);
    # the PractitionerRole naming it, referenced by nothing, carries the NUCC specialty
    r = role(
        "np-role",
        "Practitioner/np",
        specialty=[(NUCC, "363LF0000X")],
        period={"start": "2019-07-01"},
    )
    d = decide_one(
        performed_by("Practitioner/np"),
        [*replace_resource(world(), "Encounter", participant=None), r, bare_practitioner("np")],
    )
    assert (d.outcome, d.performer, d.rendering) == ("claim", "Practitioner/np", "Practitioner/np")


def test_a_participant_practitioner_renders_by_its_role_without_a_by_role_note():
    r = role(
        "fm-role", "https://ehr.example.org/fhir/Practitioner/fm", specialty=[(NUCC, "207Q00000X")]
    )
    w = encounter_with(participant("Practitioner/fm", "ATND"), extra=[r, bare_practitioner("fm")])
    d = decide_one(admin(), w)
    assert d.rendering == "Practitioner/fm" and "rendering-provider-by-role" not in gap_codes(d)


def test_roles_of_another_practitioner_ended_or_contained_say_nothing():
    extra = [
        bare_practitioner("x"),
        bare_practitioner("y"),
        role("other", "Practitioner/y", specialty=[(NUCC, "363L00000X")]),
        role(
            "ended",
            "Practitioner/x",
            specialty=[(NUCC, "363L00000X")],
            period={"end": "2025-12-31"},
        ),
        role("inactive", "Practitioner/x", code=[(PRACTITIONER_ROLE, "doctor")], active=False),
        role("contained", "#x", specialty=[(NUCC, "363L00000X")]),
        role(
            "conditional",
            "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|1",
            specialty=[(NUCC, "363L00000X")],
        ),
    ]
    w = encounter_with(participant("Practitioner/x"), extra=extra)
    d = decide_one(admin(), w)
    assert d.rendering is None
    assert (
        "'Practitioner/x' (no known qualification)" in gap(d, "missing-rendering-provider").message
    )
    # one role in force saying RN makes it auxiliary; a second saying PA makes it eligible
    rn = role("rn", "Practitioner/x", specialty=[(NUCC, "163W00000X")])
    w = encounter_with(participant("Practitioner/x", "ATND"), extra=[*extra, rn])
    d = decide_one(admin(), w)
    assert (
        d.rendering is None
        and "'Practitioner/x' (auxiliary)" in gap(d, "missing-rendering-provider").message
    )
    pa = role("pa", "Practitioner/x", specialty=[(NUCC, "363A00000X")])
    assert (
        decide_one(
            admin(), encounter_with(participant("Practitioner/x"), extra=[*extra, rn, pa])
        ).rendering
        == "Practitioner/x"
    )


def test_an_rn_qualification_with_an_np_role_is_an_np_and_an_md_needs_no_role():
    r = role("r", "Practitioner/x", specialty=[(NUCC, "363L00000X")])
    w = encounter_with(
        participant("Practitioner/x"), extra=[r, bare_practitioner("x", (V2_DEGREE, "RN"))]
    )
    assert decide_one(admin(), w).rendering == "Practitioner/x"
    rules = load_rules()

    class NoRoles(Context):
        def roles_of(self, practitioner):
            raise AssertionError("an eligible qualification asks for no role")

    md = bare_practitioner("md", (V2_DEGREE, "MD"))
    assert clinician_role(md, NoRoles([md]), rules, SERVICE_DAY) == "eligible"


def test_the_context_index_of_roles_follows_what_is_added():
    x = bare_practitioner("x")
    ctx = Context([x, role("r1", "Practitioner/x")])
    assert [r["id"] for r in ctx.roles_of(x)] == ["r1"]
    assert ctx.roles_of(bare_practitioner("nobody")) == [] and ctx.roles_of({}) == []
    ctx.add(role("r2", "Practitioner/x"))
    ctx.add_new(
        role("r3", "http://s/fhir/Practitioner/x/_history/2"), "PractitionerRole", "r3", None
    )
    ctx.add(bare_practitioner("y"))
    assert [r["id"] for r in ctx.roles_of(x)] == ["r1", "r2", "r3"]
    asked = []
    given = Context(roles=lambda keys: asked.append(keys) or [role("g", keys[0])])
    assert [r["id"] for r in given.roles_of(x)] == ["g"] and asked == [["Practitioner/x"]]


def test_a_role_naming_its_practitioner_by_identifier_counts_once():
    # Synthea 3.3 (fixtures/synthea/bulk/PractitionerRole.*.ndjson.gz): practitioner is a logical
    # reference {"identifier": {NPI}}, code and specialty NUCC 208D00000X General Practice Physician
    npi = "http://hl7.org/fhir/sid/us-npi"
    doc = {
        "resourceType": "Practitioner",
        "id": "d1",
        "identifier": [{"system": npi, "value": "9999984591"}],
    }
    synthea_role = {
        "resourceType": "PractitionerRole",
        "id": "e640a83d",
        "practitioner": {"identifier": {"system": npi, "value": "9999984591"}},
        "code": [concept(NUCC, "208D00000X", "General Practice Physician")],
        "specialty": [concept(NUCC, "208D00000X", "General Practice Physician")],
    }
    both = role("both", "Practitioner/d1")
    both["practitioner"]["identifier"] = {
        "system": npi,
        "value": "9999984591",
    }  # the reference wins
    no_system = {
        "resourceType": "PractitionerRole",
        "id": "ns",
        "practitioner": {"identifier": {"value": "7"}},
    }
    odd = [
        {"resourceType": "PractitionerRole", "id": "o1", "practitioner": "Practitioner/d1"},
        {
            "resourceType": "PractitionerRole",
            "id": "o2",
            "practitioner": {"identifier": {"system": npi, "value": 7}},
        },
        {
            "resourceType": "PractitionerRole",
            "id": "o3",
            "practitioner": {"identifier": "9999984591"},
        },
    ]
    ctx = Context([doc, synthea_role, both, no_system, *odd])
    assert [r["id"] for r in ctx.roles_of(doc)] == ["both", "e640a83d"]
    assert [r["id"] for r in ctx.roles_of({"identifier": [{"value": "7"}]})] == ["ns"]
    w = encounter_with(
        participant(f"Practitioner?identifier={npi}|9999984591", "PPRF"), extra=[doc, synthea_role]
    )
    d = decide_one(admin(), w)
    assert d.rendering == "Practitioner/d1" and "rendering-provider-by-role" not in gap_codes(d)


def test_the_offline_spool_finds_the_roles_of_a_practitioner(tmp_path):
    from fhir_injection.sources.spool import Spool

    problems = []
    resources = [
        *world(),
        bare_practitioner("np"),
        role("np-role", "Practitioner/np", specialty=[(NUCC, "363L00000X")]),
        role("other", "Practitioner/doctor"),
    ]
    with Spool(directory=str(tmp_path)) as spool:
        spool.add_all(
            [(r, False, 1, 1) for r in [*resources, performed_by("Practitioner/np")]],
            problems.append,
        )
        admins, ctx = spool.for_patient("p1")
        assert [r["id"] for r in ctx.roles_of(bare_practitioner("np"))] == ["np-role"]
        assert ctx.roles_of(bare_practitioner("nurse")) == []
        from fhir_injection import decide_all

        d = decide_all(admins, ctx, load_rules(), Config())[0]
        assert (d.outcome, d.rendering) == ("claim", "Practitioner/np")
        # a later export adds a role: the index is read again
        spool.add_all(
            [
                (
                    role("rn-role", "Practitioner/nurse", specialty=[(NUCC, "163W00000X")]),
                    False,
                    2,
                    2,
                )
            ],
            problems.append,
        )
        assert [
            r["id"] for r in spool.for_patient("p1")[1].roles_of(bare_practitioner("nurse"))
        ] == ["rn-role"]
        from fhir_injection.sources.exportnotes import Deletion

        spool.apply_deletions([Deletion("PractitionerRole", "rn-role", 3, "d:1")])
        assert spool.for_patient("p1")[1].roles_of(bare_practitioner("nurse")) == []
    assert problems == []


def test_the_server_pull_searches_the_roles_of_the_practitioners_when_the_server_lists_it():
    from fhir_injection.fhir.client import Lookup
    from fhir_injection.sources.resolver import Resolver

    class Server:
        def __init__(self, params):
            self.params = params

        def capabilities(self):
            return {
                "rest": [
                    {
                        "mode": "server",
                        "resource": [
                            {"type": "Practitioner", "searchParam": [{"name": "_id"}]},
                            {
                                "type": "PractitionerRole",
                                "searchParam": [{"name": n} for n in self.params],
                            },
                        ],
                    }
                ]
            }

    a = performed_by("Practitioner/np")
    quiet = Resolver(Server(["_id"]))
    assert not quiet.role_search
    assert all(lk.type != "PractitionerRole" for lk in quiet.lookups([a]))
    resolver = Resolver(Server(["_id", "practitioner"]))
    lookups = resolver.lookups([a])
    assert Lookup("PractitionerRole", "practitioner", ("Practitioner/np",)) in lookups
    found = [
        (role("np-role", "Practitioner/np", specialty=[(NUCC, "363L00000X")]), "match"),
        (role("stray", "Practitioner/else"), "match"),
        ({"resourceType": "OperationOutcome", "id": "oo"}, "outcome"),
    ]
    asked = [lk for lk in lookups if lk.type == "PractitionerRole"]
    resolver.take(asked, [found])
    assert resolver.roles_of == {"Practitioner/np": ("PractitionerRole/np-role",)}
    assert all(lk.type != "PractitionerRole" for lk in resolver.lookups([a]))  # asked once
    resolver.remember(bare_practitioner("np"))
    ctx = resolver.context([a])
    assert [r["id"] for r in ctx.roles_of(bare_practitioner("np"))] == ["np-role"]


# ----------------------------------------------------------------------------- the demo clinic


def test_the_demo_clinics_practitioner_role_cases_decide_as_written():
    import json

    from fhir_injection import decide_bundle

    root = Path(__file__).resolve().parents[2] / "fixtures"
    expected = json.loads((root / "demo-expected.json").read_text())["administrations"]
    resources = [
        json.loads(line)
        for f in sorted((root / "demo").glob("*.ndjson"))
        for line in f.read_text().splitlines()
    ]
    by_scenario = {v["scenario"]: k for k, v in expected.items()}
    # with the demo's practice profile (its sites are offices: class AMB alone is not the office)
    from fhir_injection.bundled import demo_config
    from fhir_injection.config import load_config

    config = load_config(demo_config())
    decisions = {d.administration: d for d in decide_bundle(resources, config=config)}
    cases = {
        "PractitionerRole specialty NUCC 363L00000X (NP, no qualification): the performer renders herself": (
            "claim",
            "PractitionerRole/role-10",
            "PractitionerRole/role-10",
        ),
        "RN gives it; the encounter's PractitionerRole with specialty 207Q00000X renders incident-to": (
            "claim",
            None,
            "PractitionerRole/role-11",
        ),
        "PractitionerRole specialty RN (163W00000X) gives it, the encounter names no one: no rendering provider": (
            "held",
            "PractitionerRole/role-12",
            None,
        ),
    }
    for scenario, (outcome, performer, rendering) in cases.items():
        d = decisions[by_scenario[scenario]]
        assert (d.outcome, d.rendering) == (outcome, rendering), scenario
        assert (
            d.performer == performer if performer else d.performer.startswith("Practitioner/prac-0")
        )
        assert ("missing-rendering-provider" in gap_codes(d)) == (rendering is None)


def test_a_role_with_its_practitioner_contained_reads_that_practitioner():
    r = role("r1", "#p", contained=[bare_practitioner("p", (V2_DEGREE, "MD"))])
    w = encounter_with(
        participant("PractitionerRole/r1"), extra=[r, bare_practitioner("p", (V2_DEGREE, "RN"))]
    )
    assert decide_one(admin(), w).rendering == "PractitionerRole/r1"


def test_roles_added_one_at_a_time_after_the_index_is_built_are_found():
    x = bare_practitioner("x")
    ctx = Context([x])
    assert ctx.roles_of(x) == []
    ctx.add_new(role("r1", "Practitioner/x"), "PractitionerRole", "r1", None)
    assert [r["id"] for r in ctx.roles_of(x)] == ["r1"]
    ctx.add_new(bare_practitioner("y"), "Practitioner", "y", None)
    ctx.add_new(role("r2", "Practitioner/x"), "PractitionerRole", "r2", None)
    assert [r["id"] for r in ctx.roles_of(x)] == ["r1", "r2"]
    # a role that names no Practitioner first does not hide the ones after it
    ctx = Context(
        [
            {"resourceType": "PractitionerRole", "id": "odd", "practitioner": ["x"]},
            role("r3", "Practitioner/x"),
        ]
    )
    assert [r["id"] for r in ctx.roles_of(x)] == ["r3"]
