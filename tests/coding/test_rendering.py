"""The rendering provider: incident-to (Medicare Benefit Policy Manual ch. 15 s60).

IOM 100-02 ch.15 s60: in an office, an injection given by a nurse or medical assistant is billed
incident-to the physician or NPP who supervises it; that practitioner is the rendering provider (the
Claim's careTeam), the nurse stays the performer (report.json, the Task's owner). Qualifications:
mappings/qualifications.csv (HL7 v2 0360, NUCC taxonomy); participant types:
mappings/participant_types.csv (v3 ParticipationType).

Facility settings bill no professional 96372 at all (96372.md "Setting": the facility bills it on its
institutional claim), so no rendering provider is looked for there: incident-to is an office rule.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fhir_injection import Config, MappingError, build_claim, build_task, load_rules
from fhir_injection.config import load_config
from fhir_injection.decision.context import EncounterPointers, encounter_references
from fhir_injection.errors import ConfigError
from fhir_injection.sinks.report import decision_entry
from tests.builders import (
    CREATED,
    PARTICIPATION,
    V2_DEGREE,
    admin,
    decide_one,
    gap,
    gap_codes,
    replace_resource,
    validate_claim,
    world,
)

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
NUCC = "http://nucc.org/provider-taxonomy"


def practitioner(pid, *codings):
    return {
        "resourceType": "Practitioner",
        "id": pid,
        "qualification": [{"code": {"coding": [{"system": s, "code": c}]}} for s, c in codings],
    }


def participant(reference, *types):
    item = {"individual": {"reference": reference}}
    if types:
        item["type"] = [{"coding": [{"system": PARTICIPATION, "code": t}]} for t in types]
    return item


def with_participants(*participants, extra=()):
    return replace_resource(world(), "Encounter", participant=list(participants)) + list(extra)


def test_the_nurse_gives_it_the_attending_physician_renders_it():
    d = decide_one()
    assert d.outcome == "claim", gap_codes(d)
    assert (d.performer, d.rendering) == ("Practitioner/nurse", "Practitioner/doctor")
    claim = build_claim(d, Config(), CREATED)
    validate_claim(claim)
    assert claim["careTeam"] == [
        {"sequence": 1, "provider": {"reference": "Practitioner/doctor"}, "responsible": True}
    ]
    assert build_task(d, Config(), None, CREATED) is None  # nothing to fix
    entry = decision_entry(d, None, None)
    assert (entry["performer"], entry["rendering"]) == ("Practitioner/nurse", "Practitioner/doctor")


def test_the_task_is_owned_by_the_nurse_who_gave_it():
    from tests.builders import rules

    d = decide_one(admin(dosage=None))
    task = build_task(d, Config(), rules(), CREATED)
    assert task["owner"] == {"reference": "Practitioner/nurse"}


def test_a_physician_who_gives_it_renders_it():
    d = decide_one(
        admin(performer=[{"actor": {"reference": "Practitioner/doctor"}}]),
        with_participants(participant("Practitioner/nurse", "PPRF")),
    )
    assert d.rendering == "Practitioner/doctor" and d.outcome == "claim"


@pytest.mark.parametrize(
    "system,code",
    [
        (V2_DEGREE, "DO"),
        (V2_DEGREE, "NP"),
        (V2_DEGREE, "PA"),
        (V2_DEGREE, "CNS"),
        (V2_DEGREE, "CNM"),
        (NUCC, "207Q00000X"),  # family medicine: the NUCC physician group 20
        (NUCC, "363LF0000X"),  # nurse practitioner, family
        (NUCC, "363A00000X"),  # physician assistant
    ],
)
def test_physicians_and_npps_are_eligible(system, code):
    d = decide_one(
        admin(),
        with_participants(
            participant("Practitioner/npp", "ATND"), extra=[practitioner("npp", (system, code))]
        ),
    )
    assert d.rendering == "Practitioner/npp" and d.outcome == "claim"


@pytest.mark.parametrize(
    "system,code",
    [
        (V2_DEGREE, "RN"),
        (V2_DEGREE, "LPN"),
        (V2_DEGREE, "MDA"),
        (V2_DEGREE, "CMA"),
        (NUCC, "163W00000X"),
        (NUCC, "164W00000X"),
    ],
)
def test_auxiliary_staff_never_render(system, code):
    d = decide_one(
        admin(),
        with_participants(
            participant("Practitioner/aux", "ATND"), extra=[practitioner("aux", (system, code))]
        ),
    )
    assert d.rendering is None and d.outcome == "held"
    assert "Practitioner/aux' (auxiliary)" in gap(d, "missing-rendering-provider").message


def test_an_np_who_is_also_an_rn_is_eligible():
    nurse_practitioner = practitioner("np", (V2_DEGREE, "RN"), (V2_DEGREE, "NP"))
    d = decide_one(
        admin(), with_participants(participant("Practitioner/np"), extra=[nurse_practitioner])
    )
    assert d.rendering == "Practitioner/np"


def test_no_eligible_rendering_provider_is_held_with_a_gap_that_says_why():
    d = decide_one(admin(), replace_resource(world(), "Encounter", participant=None))
    assert d.outcome == "held" and d.claim_status == "draft" and d.rendering is None
    g = gap(d, "missing-rendering-provider")
    assert g.severity == "error" and g.field == "Encounter.participant"
    assert g.message.startswith(
        "The performer Practitioner/nurse is auxiliary staff (incident-to); the Encounter has no participant; "
        "no rendering provider is configured for the clinic ([rendering_providers]: Location/office or "
        "Organization/clinic). "
    )
    assert "careTeam" not in build_claim(d, Config(), CREATED)


def test_a_performer_of_no_known_qualification_is_no_rendering_provider():
    w = replace_resource(with_participants(), "Practitioner", qualification=None)
    d = decide_one(admin(), w)
    assert gap(d, "missing-rendering-provider").message.startswith(
        "The performer Practitioner/nurse is of no known qualification; the Encounter has no participant"
    )


def test_the_participant_types_rank_the_candidates():
    # ATND before PPRF before SPRF before PART; untyped ones last; a referrer (REF) never
    extra = [practitioner(f"dr{i}", (V2_DEGREE, "MD")) for i in range(5)]
    w = with_participants(
        participant("Practitioner/dr0"),
        participant("Practitioner/dr1", "REF"),
        participant("Practitioner/dr2", "PPRF"),
        participant("Practitioner/dr3", "ATND"),
        extra=extra,
    )
    assert decide_one(admin(), w).rendering == "Practitioner/dr3"
    w = with_participants(
        participant("Practitioner/dr0"), participant("Practitioner/dr1", "REF"), extra=extra
    )
    assert decide_one(admin(), w).rendering == "Practitioner/dr0"
    w = with_participants(participant("Practitioner/dr1", "REF"), extra=extra)
    d = decide_one(admin(), w)
    assert (
        d.rendering is None
        and "Encounter.participant: no clinician found"
        in gap(d, "missing-rendering-provider").message
    )


def test_a_practitioner_role_participant_is_read_through_its_practitioner():
    role = {
        "resourceType": "PractitionerRole",
        "id": "role1",
        "practitioner": {"reference": "Practitioner/doctor"},
    }
    d = decide_one(
        admin(), with_participants(participant("PractitionerRole/role1", "ATND"), extra=[role])
    )
    assert d.rendering == "PractitionerRole/role1"
    role_alone = {"resourceType": "PractitionerRole", "id": "role2"}
    d = decide_one(
        admin(),
        with_participants(participant("PractitionerRole/role2", "ATND"), extra=[role_alone]),
    )
    # no Practitioner to read a qualification from: the attender renders by its role, noted
    assert d.rendering == "PractitionerRole/role2" and d.outcome == "claim"
    assert "rendering-provider-by-role" in gap_codes(d)
    d = decide_one(
        admin(), with_participants(participant("PractitionerRole/role2"), extra=[role_alone])
    )
    assert d.rendering is None  # untyped, and no qualification: no one renders


# ----------------------------------------------------------------------------- by role


def test_an_attender_of_unknown_qualification_renders_by_role_with_an_info_note():
    # Synthea and many vendor exports carry no Practitioner.qualification
    w = with_participants(participant("Practitioner/dr0", "ATND"), extra=[practitioner("dr0")])
    d = decide_one(admin(), w)
    assert (d.outcome, d.rendering, d.claim_status) == ("claim", "Practitioner/dr0", "active")
    g = gap(d, "rendering-provider-by-role")
    assert g.severity == "info" and g.field == "Practitioner.qualification"
    assert g.message.startswith(
        "Rendering provider Practitioner/dr0 is named by its Encounter.participant type; "
        "no Practitioner.qualification says MD, DO, NP, PA, CNS or CNM. "
    )


def test_a_known_eligible_participant_wins_over_a_better_ranked_one_of_unknown_qualification():
    w = with_participants(
        participant("Practitioner/dr0", "ATND"),
        participant("Practitioner/np", "PART"),
        extra=[practitioner("dr0"), practitioner("np", (V2_DEGREE, "NP"))],
    )
    d = decide_one(admin(), w)
    assert d.rendering == "Practitioner/np" and "rendering-provider-by-role" not in gap_codes(d)


def test_the_best_ranked_of_unknown_qualification_renders_and_never_auxiliary_or_untyped_ones():
    w = with_participants(
        participant("Practitioner/u0"),  # untyped
        participant("Practitioner/rn", "ATND"),
        participant("Practitioner/dr2", "SPRF"),
        participant("Practitioner/dr1", "PPRF"),
        extra=[
            practitioner("u0"),
            practitioner("rn", (V2_DEGREE, "RN")),
            practitioner("dr1"),
            practitioner("dr2"),
        ],
    )
    assert decide_one(admin(), w).rendering == "Practitioner/dr1"
    w = with_participants(participant("Practitioner/u0"), extra=[practitioner("u0")])
    d = decide_one(admin(), w)
    assert d.rendering is None and "missing-rendering-provider" in gap_codes(d)


def test_the_configured_rendering_provider_of_the_clinic_is_the_fallback():
    w = replace_resource(world(), "Encounter", participant=None)
    d = decide_one(admin(), w, Config(rendering_providers={"clinic": "dr-smith"}))
    assert d.rendering == "Practitioner/dr-smith" and d.outcome == "claim"
    d = decide_one(admin(), w, Config(rendering_providers={"clinic": "Practitioner/dr-jones"}))
    assert d.rendering == "Practitioner/dr-jones"
    d = decide_one(admin(), w, Config(rendering_providers={"another-clinic": "dr-smith"}))
    assert d.rendering is None


def test_a_facility_setting_looks_for_no_rendering_provider():
    d = decide_one(
        admin(), replace_resource(world(encounter_class="EMER"), "Encounter", participant=None)
    )
    assert d.outcome == "not-billable" and "missing-rendering-provider" not in gap_codes(d)


def test_the_encounter_pointer_view_names_its_participants_for_both_jobs():
    encounter = next(r for r in world() if r["resourceType"] == "Encounter")
    view = EncounterPointers(encounter)
    assert view.participants == ["Practitioner/doctor"]
    assert view.roles == [[(PARTICIPATION, "ATND")]]
    assert ("Practitioner/doctor", None) in list(encounter_references(encounter))


def test_participant_types_that_are_not_objects_are_passed_over():
    encounter = {
        "participant": [
            {
                "type": ["ATND", {"coding": "ATND"}, {"coding": [None, {"code": "PPRF"}]}],
                "individual": {"reference": "Practitioner/doctor"},
            },
            "nobody",
        ]
    }
    view = EncounterPointers(encounter)
    assert view.participants == ["Practitioner/doctor"] and view.roles == [[(None, "PPRF")]]


def test_config_reads_the_rendering_providers(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[rendering_providers]\nclinic = "dr-smith"\n')
    assert load_config(path).rendering_providers == {"clinic": "dr-smith"}
    path.write_text("[rendering_providers]\nclinic = 3\n")
    with pytest.raises(ConfigError, match="rendering_providers"):
        load_config(path)


def test_a_broken_qualification_row_is_reported_with_file_and_row(tmp_path):
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    path = target / "qualifications.csv"
    path.write_text(
        path.read_text().replace(
            ",MD,exact,Doctor of Medicine,eligible,", ",MD,exact,Doctor of Medicine,boss,"
        )
    )
    with pytest.raises(MappingError) as err:
        load_rules(target)
    assert (err.value.file, err.value.row) == (
        "qualifications.csv",
        2,
    ) and "column 'role' is 'boss'" in str(err.value)
    path.write_text(
        path.read_text().replace(",boss,", ",eligible,").replace(",MD,exact,", ",MD,fuzzy,")
    )
    with pytest.raises(MappingError, match="column 'match' is 'fuzzy'"):
        load_rules(target)
    path.write_text(path.read_text().replace(",MD,fuzzy,", ",MD,exact,"))
    ranks = target / "participant_types.csv"
    ranks.write_text(ranks.read_text().replace(",ATND,attender,1,", ",ATND,attender,first,"))
    with pytest.raises(MappingError) as err:
        load_rules(target)
    assert (err.value.file, err.value.row) == ("participant_types.csv", 2)
