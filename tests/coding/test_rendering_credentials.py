"""Credentials in any form: who renders a 96372 when the record gives the clinician's kind as text.

Practitioner.qualification arrives coded (HL7 v2 0360, NUCC, SNOMED CT occupations: qualifications.csv)
or only as text: ``qualification.code.text`` or the display of a local coding. HL7 Da Vinci HRex
requires ``qualification.code.text`` because "there is no consistency for how qualifications are
currently captured" (HL7/davinci-ehrx input/fsh/profiles/HRexPractitioner.fsh). A text on the reviewed
list (mappings/qualification_text.csv) is read; one not on it is named in the gap, never guessed.
Incident-to: IOM 100-02 ch.15 s60; eligible NPPs: 42 CFR 410.74-410.77.
"""

from __future__ import annotations

import pytest

from fhir_injection import Config, Context
from fhir_injection.config import load_config
from fhir_injection.decision.clinicians import clinician_credential, text_credential
from fhir_injection.decision.ruleset import credential_key
from fhir_injection.errors import ConfigError
from tests.builders import (
    PARTICIPATION,
    V2_DEGREE,
    admin,
    decide_one,
    gap,
    gap_codes,
    refused_row,
    replace_resource,
    rules,
    world,
)

SNOMED = "http://snomed.info/sct"
LOCAL = "https://fhir.example.org/codeSet/qualification"  # a code system no table lists


def texted(pid: str, text: str | None = None, *, coding: tuple | None = None) -> dict:
    """A Practitioner whose qualification is ``text`` and/or one coding (system, code, display)."""
    code: dict = {}
    if coding is not None:
        system, value, display = coding
        code["coding"] = [
            {"system": system, "code": value, **({"display": display} if display else {})}
        ]
    if text is not None:
        code["text"] = text
    return {"resourceType": "Practitioner", "id": pid, "qualification": [{"code": code}]}


def encounter_of(*participants, extra=(), **changes) -> list[dict]:
    return replace_resource(world(), "Encounter", participant=list(participants), **changes) + list(
        extra
    )


def participant(reference: str, *types: str) -> dict:
    item: dict = {"individual": {"reference": reference}}
    if types:
        item["type"] = [{"coding": [{"system": PARTICIPATION, "code": t}]} for t in types]
    return item


def basis(d) -> dict:
    return {fact: (kind, how) for fact, kind, how in d.basis}


# ----------------------------------------------------------------------------- the texts themselves


@pytest.mark.parametrize(
    "text",
    [
        "MD",
        "M.D.",
        "md",
        "m.d",
        "Doctor of Medicine",
        "D.O.",
        "DO",
        "MD, PhD",
        "MD PhD",
        "MD/PhD",
        "FNP-C",
        "fnp-c",
        "APRN-CNP",
        "PA-C",
        "P.A.-C",
        "Nurse Practitioner",
        "nurse  practitioner",
        "CNM",
        "Physician Assistant",
        "Medical Doctor",
        "PhD, MD",
        "MD, FACP",
    ],
)
def test_physician_and_npp_texts_in_their_common_spellings_are_eligible(text):
    credential = text_credential(text, rules())
    assert credential.role == "eligible"
    assert credential.text == " ".join(text.split())


@pytest.mark.parametrize(
    "text",
    [
        "RN",
        "R.N.",
        "Registered Nurse",
        "LPN",
        "L.P.N.",
        "LVN",
        "Medical Assistant",
        "CMA (AAMA)",
        "CMA",
        "RMA",
        "RN, BSN",
        "RN/BSN",
        "Pharmacist",
        "PharmD",
    ],
)
def test_nurse_assistant_and_pharmacist_texts_are_auxiliary(text):
    assert text_credential(text, rules()).role == "auxiliary"


def test_the_best_credential_of_a_list_wins():
    # an NP is also an RN: "RN, FNP-C" is eligible; "RN, PhD" is a nurse with a doctorate
    assert text_credential("RN, FNP-C", rules()).role == "eligible"
    assert text_credential("RN, PhD", rules()).role == "auxiliary"


def test_a_text_not_on_the_reviewed_list_is_named_never_guessed():
    credential = text_credential("Herbalist", rules())
    assert credential.role is None
    assert credential.unread == (
        "qualification text 'Herbalist' is not on the reviewed list (mappings/qualification_text.csv)",
    )
    # a word of a phrase that is on the list does not make the phrase read: "Doctor" alone is not
    assert text_credential("Herbalist MD", rules()).role is None
    assert text_credential("Doctor", rules()).role is None


def test_a_reviewed_text_that_names_no_role_says_why():
    # APRN is one of four roles (CNP, CNS, CNM, CRNA): the text does not say which (NCSBN Consensus Model)
    credential = text_credential("APRN", rules())
    assert credential.role is None
    assert "qualification text 'APRN' names no role that renders" in credential.unread[0]
    assert text_credential("PhD", rules()).role is None


def test_the_match_ignores_case_punctuation_and_spacing():
    assert credential_key(" M.D. ") == credential_key("md") == "md"
    assert credential_key("CMA (AAMA)") == "cmaaama"
    assert credential_key("Registered\tNurse") == "registerednurse"


# ----------------------------------------------------------------------------- in the record's shapes


def test_us_core_practitioner_example_md_coded_with_its_display_renders_from_the_record():
    # US Core Practitioner example (us-core-practitioner-kyle-anydoc): v2-0360 MD "Doctor of Medicine"
    kyle = texted("kyle", coding=(V2_DEGREE, "MD", "Doctor of Medicine"))
    d = decide_one(admin(), encounter_of(participant("Practitioner/kyle", "ATND"), extra=[kyle]))
    assert (d.outcome, d.rendering) == ("claim", "Practitioner/kyle")
    assert basis(d)["rendering_provider"] == ("record", "an Encounter.participant's qualification")


@pytest.mark.parametrize(
    "qualification",
    [
        {"text": "MD"},  # text only
        {"coding": [{"system": LOCAL, "code": "4711", "display": "M.D."}]},  # local coding, display
        {"coding": [{"system": LOCAL, "code": "4711", "display": "Physician"}], "text": "MD"},
        {"coding": [{"system": LOCAL, "code": "NP"}], "text": "Nurse Practitioner"},
    ],
)
def test_a_vendor_shaped_text_or_local_display_renders_by_the_reviewed_list(qualification):
    doc = {"resourceType": "Practitioner", "id": "doc", "qualification": [{"code": qualification}]}
    d = decide_one(admin(), encounter_of(participant("Practitioner/doc", "ATND"), extra=[doc]))
    assert (d.outcome, d.rendering) == ("claim", "Practitioner/doc")
    assert "rendering-provider-by-role" not in gap_codes(d)  # the record says who: no note
    kind, how = basis(d)["rendering_provider"]
    assert kind == "rule" and "qualification text" in how and "qualification_text.csv" in how


def test_a_performer_whose_text_says_md_renders_it_herself():
    w = [*world(), texted("dr-text", "M.D.")]
    d = decide_one(admin(performer=[{"actor": {"reference": "Practitioner/dr-text"}}]), w)
    assert d.rendering == "Practitioner/dr-text"
    assert basis(d)["rendering_provider"] == (
        "rule",
        "the performer's qualification text 'M.D.' (qualification_text.csv)",
    )


def test_a_nurse_named_by_text_is_incident_to_the_physician():
    # the performer is an LPN by text; the attending MD renders
    w = [*world(), texted("lpn", "L.P.N.")]
    d = decide_one(admin(performer=[{"actor": {"reference": "Practitioner/lpn"}}]), w)
    assert (d.performer, d.rendering) == ("Practitioner/lpn", "Practitioner/doctor")


def test_an_unlisted_text_is_named_in_the_gap_and_keeps_the_attender_from_rendering_by_role():
    herb = texted("herb", "Herbalist")
    d = decide_one(admin(), encounter_of(participant("Practitioner/herb", "ATND"), extra=[herb]))
    assert d.rendering is None and d.outcome == "held"
    assert "rendering-provider-by-role" not in gap_codes(d)
    message = gap(d, "missing-rendering-provider").message
    assert (
        "'Practitioner/herb' (no known qualification: qualification text 'Herbalist' is not on the "
        "reviewed list (mappings/qualification_text.csv))"
    ) in message
    assert basis(d)["rendering_provider"][0] == "unknown"


def test_an_attender_with_no_qualification_at_all_still_renders_by_role():
    bare = {"resourceType": "Practitioner", "id": "bare"}
    d = decide_one(admin(), encounter_of(participant("Practitioner/bare", "ATND"), extra=[bare]))
    assert d.rendering == "Practitioner/bare" and "rendering-provider-by-role" in gap_codes(d)
    assert basis(d)["rendering_provider"] == (
        "rule",
        "Encounter.participant type (participant_types.csv)",
    )


def test_snomed_occupations_of_the_care_team_member_function_value_set():
    # SNOMED CT occupations as US Core PractitionerRole.code binds them; NUCC map in HL7 Da Vinci HRex
    for code, expected in [
        ("309343006", "eligible"),
        ("224571005", "eligible"),
        ("449161006", "eligible"),
        ("62247001", "eligible"),
        ("224535009", "auxiliary"),
        ("442251000124100", "auxiliary"),
        ("22515006", "auxiliary"),
        ("46255001", "auxiliary"),
    ]:
        person = texted("p", coding=(SNOMED, code, None))
        assert clinician_credential(person, Context(), rules(), None).role == expected, code


def test_a_listed_systems_unlisted_code_says_nothing_its_display_included():
    # NUCC 261QP2300X is a clinic's taxonomy, not a person's: its display is not read as a credential
    clinic = texted(
        "x",
        coding=("http://nucc.org/provider-taxonomy", "261QP2300X", "Primary Care Clinic/Center"),
    )
    assert clinician_credential(clinic, Context(), rules(), None) == clinician_credential(
        {"resourceType": "Practitioner", "id": "x"}, Context(), rules(), None
    )


# ----------------------------------------------------------------------------- untyped participants


def test_fhir_spec_encounter_f001_untyped_participant_renders_when_eligible():
    # the FHIR spec's Encounter f001 names its clinician with no participant type
    # (HL7/fhir source/encounter/encounter-example-f001-heart.xml); here the clinician's text says MD
    voigt = texted("f002", "MD")
    d = decide_one(admin(), encounter_of(participant("Practitioner/f002"), extra=[voigt]))
    assert (d.outcome, d.rendering) == ("claim", "Practitioner/f002")


def test_an_untyped_participant_of_unknown_qualification_never_renders():
    bare = {"resourceType": "Practitioner", "id": "f002"}
    d = decide_one(admin(), encounter_of(participant("Practitioner/f002"), extra=[bare]))
    assert d.rendering is None
    assert (
        "'Practitioner/f002' (no known qualification)"
        in gap(d, "missing-rendering-provider").message
    )


def test_an_eligible_untyped_participant_comes_after_the_typed_ones():
    typed, untyped = texted("typed", "D.O."), texted("untyped", "MD")
    d = decide_one(
        admin(),
        encounter_of(
            participant("Practitioner/untyped"),
            participant("Practitioner/typed", "SPRF"),
            extra=[typed, untyped],
        ),
    )
    assert d.rendering == "Practitioner/typed"
    # an attender of unknown qualification is passed over for an untyped participant the record calls MD
    bare = {"resourceType": "Practitioner", "id": "bare"}
    d = decide_one(
        admin(),
        encounter_of(
            participant("Practitioner/bare", "ATND"),
            participant("Practitioner/untyped"),
            extra=[bare, untyped],
        ),
    )
    assert d.rendering == "Practitioner/untyped" and "rendering-provider-by-role" not in gap_codes(
        d
    )


# ----------------------------------------------------------------------------- the practice's profile


def nobody_eligible(**encounter_changes) -> list[dict]:
    return encounter_of(participant("Practitioner/nurse", "ATND"), **encounter_changes)


def test_the_practice_names_the_supervising_practitioner_per_location():
    w = nobody_eligible(location=[{"location": {"reference": "Location/suite-2"}}])
    # suite-2 is not a typed Location (class AMB alone is no place): the practice says its sites are offices
    config = Config(
        rendering_providers={"Location/suite-2": "dr-jones", "clinic": "dr-smith"},
        default_place_of_service="11",
    )
    d = decide_one(admin(), w, config)
    assert d.rendering == "Practitioner/dr-jones" and d.outcome == "claim"
    assert basis(d)["rendering_provider"] == (
        "practice",
        "[rendering_providers] for Location/suite-2",
    )
    # another location: the Organization's
    w = nobody_eligible(location=[{"location": {"reference": "Location/suite-9"}}])
    d = decide_one(admin(), w, config)
    assert d.rendering == "Practitioner/dr-smith"
    assert basis(d)["rendering_provider"] == (
        "practice",
        "[rendering_providers] for Organization/clinic",
    )


def test_the_organization_may_be_named_with_its_type_too():
    d = decide_one(
        admin(), nobody_eligible(), Config(rendering_providers={"Organization/clinic": "dr-smith"})
    )
    assert d.rendering == "Practitioner/dr-smith"


def test_with_nothing_configured_the_gap_names_the_places_it_looked_for():
    w = nobody_eligible(location=[{"location": {"reference": "Location/suite-9"}}])
    d = decide_one(admin(), w)
    assert d.rendering is None
    assert (
        "no rendering provider is configured for the clinic ([rendering_providers]: Location/suite-9 or "
        "Organization/clinic)"
    ) in gap(d, "missing-rendering-provider").message


def test_config_reads_location_keys(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        '[rendering_providers]\nclinic = "dr-smith"\n"Location/suite-2" = "Practitioner/dr-jones"\n'
    )
    assert load_config(path).rendering_providers == {
        "clinic": "dr-smith",
        "Location/suite-2": "Practitioner/dr-jones",
    }


@pytest.mark.parametrize(
    "entry,named",
    [
        ('"Loc/suite-2" = "dr-jones"', "'Loc/suite-2'"),
        ('"Location/" = "dr-jones"', "'Location/'"),
        ('"Location/suite-2" = "Organization/x"', "'Location/suite-2'"),
        ('"Location/suite-2" = ""', "'Location/suite-2'"),
    ],
)
def test_a_bad_rendering_providers_entry_is_refused_naming_its_key(tmp_path, entry, named):
    path = tmp_path / "c.toml"
    path.write_text(f"[rendering_providers]\n{entry}\n")
    with pytest.raises(ConfigError, match=f"rendering_providers\\] key {named}"):
        load_config(path)


# ----------------------------------------------------------------------------- the table


def test_a_broken_qualification_text_row_is_reported_with_file_and_row(tmp_path):
    err, row = refused_row(
        tmp_path / "a",
        "qualification_text.csv",
        "MD,eligible,Doctor of Medicine",
        "MD,maybe,Doctor of Medicine",
    )
    assert (err.file, err.row) == ("qualification_text.csv", row) and "maybe" in str(err)
    # the same credential as MD, written otherwise, is one row twice
    err, row = refused_row(
        tmp_path / "b", "qualification_text.csv", "Doctor of Medicine,eligible", "M.D.,eligible"
    )
    assert (err.file, err.row) == ("qualification_text.csv", row) and "duplicate" in str(err)
