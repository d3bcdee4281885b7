"""References in every form (HL7 FHIR R4 References, Bundle.entry.fullUrl), and no outcome ``claim`` without a Claim.

- Bundles of every type: entries identified only by ``fullUrl`` (``urn:uuid:``, ``urn:oid:``,
  absolute) get their id from it, and every reference to a fullUrl is read as ``Type/id``;
- absolute references with or without ``_history``;
- conditional references (``Practitioner?identifier=system|value``): offline against the
  resources at hand (the spool's identifier index, on disk), live by one batched identifier
  search per type in the same round as the ``_id`` look-ups;
- contained ``#id`` references within the resource that holds them;
- an unresolved reference's gap says which element and why;
- an outcome ``claim`` always has an active Claim, and vice versa.
"""

from __future__ import annotations

import copy
import json
import shutil
import sqlite3
from pathlib import Path
from urllib.parse import quote

import pytest
import responses
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_injection import Config, build_claim, decide_all, decide_bundle, run_folder
from fhir_injection.decision.engine import NO_CLAIM_BLOCKERS
from fhir_injection.fhir.client import FhirClient
from fhir_injection.fhir.http import HttpSession
from fhir_injection.fhir.resources import (
    conditional_reference,
    id_from_full_url,
    ref_key,
    shown_reference,
    split_reference,
)
from fhir_injection.jobs.sync import SyncOptions, run_sync
from fhir_injection.sinks.report import Summary
from fhir_injection.sources.folder import iter_folder
from fhir_injection.sources.resolver import Resolver
from fhir_injection.sources.spool import Spool
from tests.builders import (
    ICD10,
    admin,
    decide_one,
    gap,
    gap_codes,
    replace_resource,
    rules,
    world,
)
from tests.fakefhir import BASE, MA, FakeFhir, instant

REPO = Path(__file__).resolve().parents[2]
REALWORLD = REPO / "fixtures" / "realworld"
EXPECTED = json.loads((REALWORLD / "expected.json").read_text(encoding="utf-8"))["cases"]
NPI = "http://hl7.org/fhir/sid/us-npi"
SYNTHEA = "https://github.com/synthetichealth/synthea"
CREATED = "2026-11-30T12:00:00Z"
NURSE_NPI, CLINIC_NPI = "1111111112", "1234567893"  # builders.world()'s identifiers
BY_NPI = f"Practitioner?identifier={NPI}|{NURSE_NPI}"
CLINIC_BY_NPI = f"Organization?identifier={NPI}|{CLINIC_NPI}"


def conditional_world(**kw) -> list[dict]:
    """world() whose encounter names its clinic by a conditional reference."""
    return replace_resource(world(**kw), "Encounter", serviceProvider={"reference": CLINIC_BY_NPI})


def by_npi_admin(**changes) -> dict:
    return admin(performer=[{"actor": {"reference": BY_NPI}}], **changes)


def report_of(target: Path) -> dict:
    return json.loads((target / "report.json").read_text(encoding="utf-8"))


def ndjson(path: Path) -> list[dict]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def references_in(value) -> list[str]:
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [r for v in value.values() for r in references_in(v)]
    if isinstance(value, list):
        return [r for v in value for r in references_in(v)]
    return []


# ----------------------------------------------------------------------------- reference forms


@pytest.mark.parametrize(
    "reference,pair",
    [
        ("Patient/p1", ("Patient", "p1")),
        ("Patient/p1/_history/3", ("Patient", "p1")),
        ("https://ehr.example.org/fhir/Patient/p1", ("Patient", "p1")),
        ("https://ehr.example.org/fhir/Encounter/e1/_history/2", ("Encounter", "e1")),
        ("https://ehr.example.org/R4/Encounter/e1/_history/2", ("Encounter", "e1")),
        ("#med1", None),
        ("urn:uuid:bb3e6767-2f26-588a-a477-048edde74516", None),
        ("urn:oid:1.2.840.114350.1.13.99999.1", None),
        (BY_NPI, None),
        # an absolute conditional reference whose base ends in an upper-case segment is still a search
        (f"https://ehr.example.org/R4/Practitioner?identifier={NPI}|{NURSE_NPI}", None),
    ],
)
def test_split_reference_reads_literal_references_in_every_form(reference, pair):
    assert split_reference(reference) == pair


def test_absolute_and_versioned_references_resolve_to_the_resource():
    w = world()
    a = admin(
        subject={"reference": "https://ehr.example.org/fhir/Patient/p1"},
        context={"reference": "https://ehr.example.org/fhir/Encounter/e-p1/_history/7"},
    )
    d = decide_one(a, w)
    assert d.outcome == "claim" and d.patient == "Patient/p1" and d.encounter == "Encounter/e-p1"
    assert build_claim(d, Config(), CREATED)["patient"] == {"reference": "Patient/p1"}


@pytest.mark.parametrize(
    "reference,rtype,tokens",
    [
        (BY_NPI, "Practitioner", ((NPI, NURSE_NPI),)),
        (f"Organization?identifier={SYNTHEA}|9f1c-a1", "Organization", ((SYNTHEA, "9f1c-a1"),)),
        ("Practitioner?identifier=12345", "Practitioner", ((None, "12345"),)),  # any system
        ("Practitioner?identifier=|12345", "Practitioner", (("", "12345"),)),  # no system
        (
            f"Practitioner?identifier={NPI}%7C1,{NPI}%7C2",
            "Practitioner",
            ((NPI, "1"), (NPI, "2")),
        ),  # OR
        (
            "Practitioner?identifier=urn:x\\|y|v\\,1",
            "Practitioner",
            (("urn:x|y", "v,1"),),
        ),  # escapes
        (
            f"https://ehr.example.org/fhir/Practitioner?identifier={NPI}|1",
            "Practitioner",
            ((NPI, "1"),),
        ),
    ],
)
def test_conditional_references_are_parsed_into_identifier_tokens(reference, rtype, tokens):
    c = conditional_reference(reference)
    assert (c.type, c.tokens, c.problem) == (rtype, tokens, None)


@pytest.mark.parametrize(
    "reference,problem",
    [
        ("Practitioner?name=Smith", "searches by name: only identifier= is resolved"),
        (
            f"Practitioner?identifier={NPI}|1&active=true",
            "searches by active, identifier: only identifier=",
        ),
        ("Practitioner?identifier=", "has an identifier search without a value"),
        ("Practitioner?identifier=a|b|c", "not system|value"),
    ],
)
def test_conditional_references_this_adapter_cannot_resolve_say_why(reference, problem):
    assert problem in conditional_reference(reference).problem


@pytest.mark.parametrize(
    "not_conditional", ["Patient/p1", "#x", "urn:uuid:1", "lower?identifier=1", None, 7]
)
def test_other_references_are_not_conditional(not_conditional):
    assert conditional_reference(not_conditional) is None


def test_messages_quote_a_reference_without_a_patients_identifier():
    assert shown_reference(BY_NPI) == f"'{BY_NPI}'"  # an NPI names a clinician, not a patient
    assert (
        shown_reference("Patient?identifier=urn:mrn|MRN-SECRET-7")
        == "'Patient?identifier=urn:mrn|…'"
    )
    assert "SECRET" not in shown_reference("Coverage?identifier=MEMBER-SECRET-1")
    assert shown_reference("Smith, John (free text)") == "a reference that is not a FHIR reference"
    assert shown_reference("Patient/p1") == "'Patient/p1'"


# ----------------------------------------------------------------------------- ids from fullUrl


@pytest.mark.parametrize(
    "full_url,rtype,rid",
    [
        (
            "urn:uuid:bb3e6767-2f26-588a-a477-048edde74516",
            "Patient",
            "bb3e6767-2f26-588a-a477-048edde74516",
        ),
        ("urn:oid:1.2.840.114350.1.13.99999.7", "Patient", "1.2.840.114350.1.13.99999.7"),
        ("https://ehr.example.org/fhir/Patient/p9", "Patient", "p9"),
        ("https://ehr.example.org/fhir/Patient/p9/_history/4", "Patient", "p9"),
        ("https://ehr.example.org/fhir/Encounter/p9", "Patient", None),  # another type's address
        ("urn:uuid:not a uuid!", "Patient", None),
        ("urn:oid:not.an.oid", "Patient", None),
        ("Patient", "Patient", None),
        (None, "Patient", None),
    ],
)
def test_an_entry_without_an_id_gets_one_from_its_full_url(full_url, rtype, rid):
    assert id_from_full_url(full_url, rtype) == rid


def test_an_oid_too_long_for_an_id_gets_a_stable_hashed_one():
    oid = "urn:oid:2." + ".".join(str(n) for n in range(1, 40))
    rid = id_from_full_url(oid, "Organization")
    assert rid.startswith("oid-") and len(rid) == 36
    assert rid == id_from_full_url(oid, "Organization")
    assert rid != id_from_full_url(oid + ".1", "Organization")


# ----------------------------------------------------------------------------- Bundles of every type


def _bundle(kind: str, form: str, with_ids: bool) -> dict:
    """The clean builders world as a Bundle of ``kind``, entries addressed in ``form``, every
    reference between them written as the target's fullUrl."""
    resources = [*world(), admin()]
    urls = {}
    for n, r in enumerate(resources, start=1):
        key = f"{r['resourceType']}/{r['id']}"
        urls[key] = {
            "uuid": f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
            "oid": f"urn:oid:2.25.{n}",
            "absolute": f"https://ehr.example.org/fhir/{key}",
        }[form]
    entries = []
    for r in copy.deepcopy(resources):
        key = f"{r['resourceType']}/{r['id']}"
        for ref in _reference_objects(r):
            ref["reference"] = urls[ref["reference"]]
        if not with_ids:
            del r["id"]
        entry = {"fullUrl": urls[key], "resource": r}
        if kind in ("transaction", "batch"):
            entry["request"] = {"method": "POST", "url": r["resourceType"]}
        if kind == "searchset":
            entry["search"] = {"mode": "match" if r["resourceType"] == MA else "include"}
        entries.append(entry)
    if kind == "document":
        entries.insert(
            0,
            {
                "fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000d0",
                "resource": {"resourceType": "Composition", "id": "doc", "status": "final"},
            },
        )
    if kind == "message":
        entries.insert(
            0,
            {
                "fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000e0",
                "resource": {"resourceType": "MessageHeader", "id": "msg"},
            },
        )
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def _reference_objects(value) -> list[dict]:
    if isinstance(value, dict):
        own = [value] if isinstance(value.get("reference"), str) else []
        return own + [o for v in value.values() for o in _reference_objects(v)]
    if isinstance(value, list):
        return [o for v in value for o in _reference_objects(v)]
    return []


@pytest.mark.parametrize("form", ["uuid", "oid", "absolute"])
@pytest.mark.parametrize(
    "kind", ["transaction", "batch", "collection", "searchset", "document", "message", "history"]
)
def test_bundles_of_every_type_addressed_by_full_url_are_decided_whole(tmp_path, kind, form):
    source = tmp_path / "in"
    source.mkdir()
    (source / "bundle.json").write_text(
        json.dumps(_bundle(kind, form, with_ids=False)), encoding="utf-8"
    )

    run_folder(source, tmp_path / "out", rules(), Config(), CREATED)

    report = report_of(tmp_path / "out")
    assert report["errors"] == []
    [entry] = report["administrations"]
    assert entry["outcome"] == "claim" and entry["gaps"] == [], entry["gaps"]
    [claim] = ndjson(tmp_path / "out" / "Claim.ndjson")
    assert claim["status"] == "active"
    # the Claim points to Type/id only: what was read never carries a fullUrl
    assert all(split_reference(r) and ref_key(r) == r for r in references_in(claim))
    assert claim["patient"]["reference"].startswith("Patient/")


def test_a_transaction_bundle_is_read_with_ids_from_full_urls_and_references_as_type_id():
    problems = []
    resources = list(iter_folder(REALWORLD / "transaction-bundle-urnuuid", problems.append))
    assert problems == []
    ids = {r["resourceType"]: r["id"] for r in resources}
    assert ids[MA] == "bb3e6767-2f26-588a-a477-048edde74516"
    assert ids["Patient"] == "ae10c776-41b8-56b3-8394-2ef7c224eae6"
    refs = [ref for r in resources for ref in references_in(r)]
    assert refs and all(ref_key(ref) == ref for ref in refs), refs
    admin_ = next(r for r in resources if r["resourceType"] == MA)
    assert admin_["subject"] == {"reference": "Patient/ae10c776-41b8-56b3-8394-2ef7c224eae6"}
    assert admin_["context"] == {"reference": "Encounter/d8bed7cf-45a7-5810-aa8e-99b55fa994ac"}


def test_entries_with_their_own_id_keep_it_and_references_to_their_full_url_use_it(tmp_path):
    """Synthea's shape: a urn:uuid fullUrl and a resource.id (here different, to tell them apart)."""
    bundle = _bundle("transaction", "uuid", with_ids=True)
    (tmp_path / "b.json").write_text(json.dumps(bundle))
    resources = list(iter_folder(tmp_path, pytest.fail))
    admin_ = next(r for r in resources if r["resourceType"] == MA)
    assert admin_["id"] == "ma1" and admin_["subject"] == {"reference": "Patient/p1"}


def test_a_searchset_outcome_entry_and_a_delete_entry_are_not_records(tmp_path):
    bundle = _bundle("searchset", "absolute", with_ids=True)
    bundle["entry"].append(
        {
            "resource": {
                "resourceType": "OperationOutcome",
                "issue": [
                    {
                        "severity": "information",
                        "code": "informational",
                        "diagnostics": "page 1 of 3",
                    }
                ],
            },
            "search": {"mode": "outcome"},
        }
    )
    (tmp_path / "searchset.json").write_text(json.dumps(bundle))
    (tmp_path / "deleted.json").write_text(
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {"request": {"method": "DELETE", "url": "MedicationAdministration/gone"}}
                ],
            }
        )
    )
    problems = []
    resources = list(iter_folder(tmp_path, problems.append))
    assert problems == []
    assert "OperationOutcome" not in {r["resourceType"] for r in resources}


def test_an_entry_without_a_resource_that_is_not_a_delete_is_still_a_record_error(tmp_path):
    (tmp_path / "b.json").write_text(
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [{"request": {"method": "POST", "url": "Patient"}}],
            }
        )
    )
    problems = []
    list(iter_folder(tmp_path, problems.append))
    assert [(p.record, p.field) for p in problems] == [("b.json entry[0]", "resource")]


def test_an_entry_with_no_id_and_no_usable_full_url_is_a_record_error(tmp_path):
    bundle = _bundle("transaction", "uuid", with_ids=False)
    bundle["entry"][0].pop("fullUrl")
    (tmp_path / "b.json").write_text(json.dumps(bundle))
    problems = []
    list(iter_folder(tmp_path, problems.append))
    assert [(p.record, p.field) for p in problems] == [("b.json entry[0] (Patient)", "id")]


def test_a_urn_uuid_reference_to_no_entry_of_the_bundle_is_a_gap_that_says_so(tmp_path):
    bundle = _bundle("transaction", "uuid", with_ids=False)
    ma = bundle["entry"][-1]["resource"]
    ma["context"] = {"reference": "urn:uuid:00000000-0000-4000-8000-00000000ffff"}
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "b.json").write_text(json.dumps(bundle))
    run_folder(tmp_path / "in", tmp_path / "out", rules(), Config(), CREATED)
    [entry] = report_of(tmp_path / "out")["administrations"]
    message = next(g["message"] for g in entry["gaps"] if g["code"] == "missing-encounter")
    assert message.startswith(
        "MedicationAdministration.context 'urn:uuid:00000000-0000-4000-8000-00000000ffff' "
        "names no entry of its Bundle"
    )


def test_decide_bundle_reads_a_transaction_bundle_as_the_folder_does_and_leaves_it_as_it_was():
    bundle = _bundle("transaction", "uuid", with_ids=False)
    before = copy.deepcopy(bundle)
    [d] = decide_bundle(bundle, rules())
    assert d.outcome == "claim" and d.claim_status == "active"
    assert (
        d.administration == f"{MA}/00000000-0000-4000-8000-000000000011"
    )  # world() has 10 resources before it
    assert bundle == before


@pytest.mark.parametrize("case", ["transaction-bundle-urnuuid", "bundle-types"])
def test_the_records_expectations_of_the_bundle_cases_hold(tmp_path, case):
    """expected.json 'records': no entry of these Bundles is a record error (a transaction entry with
    no resource.id is identified by its fullUrl; a searchset's OperationOutcome outcome entry is the
    server's message), and every administration in them is decided."""
    run_folder(REALWORLD / case, tmp_path, rules(), Config(), CREATED)
    report = report_of(tmp_path)
    assert report["errors"] == [] and report["summary"]["record_errors"] == 0
    assert {e["administration"] for e in report["administrations"]} == {
        a["administration"] for a in EXPECTED[case]["administrations"]
    }
    assert EXPECTED[case]["records"]  # the expectations this test stands for are still there


# ----------------------------------------------------------------------------- conditional references


def test_conditional_performer_and_clinic_resolve_against_the_resources_at_hand():
    d = decide_one(by_npi_admin(), conditional_world())
    assert d.outcome == "claim" and d.gaps == ()
    assert d.performer == "Practitioner/nurse" and d.provider == "Organization/clinic"
    claim = build_claim(d, Config(), CREATED)
    assert claim["provider"] == {"reference": "Organization/clinic"}
    assert claim["careTeam"][0]["provider"] == {
        "reference": "Practitioner/doctor"
    }  # renders (incident-to)


@pytest.mark.parametrize(
    "reference",
    [
        f"Practitioner?identifier={NURSE_NPI}",  # any system
        f"Practitioner?identifier=urn:other|0,{NPI}|{NURSE_NPI}",  # one of several
        f"Practitioner?identifier={NPI}%7C{NURSE_NPI}",  # URL-encoded
    ],
)
def test_conditional_reference_token_forms_resolve(reference):
    d = decide_one(admin(performer=[{"actor": {"reference": reference}}]))
    assert d.performer == "Practitioner/nurse" and "missing-performer" not in gap_codes(d)


def test_identifier_without_system_matches_only_an_identifier_without_system():
    w = [
        *world(),
        {"resourceType": "Practitioner", "id": "bare", "identifier": [{"value": NURSE_NPI}]},
    ]
    d = decide_one(
        admin(performer=[{"actor": {"reference": f"Practitioner?identifier=|{NURSE_NPI}"}}]), w
    )
    assert d.performer == "Practitioner/bare"


def test_a_conditional_reference_matching_nothing_is_a_gap_naming_the_element_and_why():
    d = decide_one(
        admin(performer=[{"actor": {"reference": f"Practitioner?identifier={NPI}|123"}}])
    )
    assert d.performer is None
    assert gap(d, "missing-performer").message.startswith(
        f"MedicationAdministration.performer.actor 'Practitioner?identifier={NPI}|123' matches no Practitioner"
    )


def test_an_ambiguous_conditional_reference_is_unresolved_and_says_so():
    twin = {
        "resourceType": "Practitioner",
        "id": "nurse-twin",
        "identifier": [{"system": NPI, "value": NURSE_NPI}],
    }
    d = decide_one(by_npi_admin(), [*world(), twin])
    assert d.performer is None
    assert (
        f"'{BY_NPI}' matches 2 Practitioner resources (ambiguous)"
        in gap(d, "missing-performer").message
    )


def test_an_unresolved_conditional_clinic_falls_back_to_the_performer():
    w = replace_resource(
        world(), "Encounter", serviceProvider={"reference": f"Organization?identifier={NPI}|0"}
    )
    d = decide_one(admin(), w)
    assert d.outcome == "claim" and d.provider == "Practitioner/nurse"


def test_a_conditional_reference_of_the_wrong_type_or_search_is_unresolved_and_says_why():
    d = decide_one(admin(subject={"reference": "Practitioner?identifier=x"}))
    assert "searches Practitioner, not Patient" in gap(d, "missing-patient").message
    d = decide_one(admin(context={"reference": "Encounter?date=2026-10-05"}))
    assert "searches by date: only identifier= is resolved" in gap(d, "missing-encounter").message


def test_a_conditional_patient_reference_resolves_and_its_message_never_shows_the_mrn():
    w = replace_resource(
        world(), "Patient", identifier=[{"system": "urn:mrn", "value": "MRN-SECRET-7"}]
    )
    assert (
        decide_one(
            admin(subject={"reference": "Patient?identifier=urn:mrn|MRN-SECRET-7"}), w
        ).patient
        == "Patient/p1"
    )
    d = decide_one(admin(subject={"reference": "Patient?identifier=urn:mrn|MRN-SECRET-8"}), w)
    message = gap(d, "missing-patient").message
    assert "matches no Patient" in message and "SECRET" not in message


def test_conditional_references_resolve_offline_through_the_spools_identifier_index(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    w = conditional_world()
    for rtype in {r["resourceType"] for r in w}:
        (source / f"{rtype}.ndjson").write_text(
            "".join(json.dumps(r) + "\n" for r in w if r["resourceType"] == rtype)
        )
    (source / f"{MA}.ndjson").write_text(json.dumps(by_npi_admin()) + "\n")
    run_folder(source, tmp_path / "out", rules(), Config(), CREATED)
    [entry] = report_of(tmp_path / "out")["administrations"]
    assert entry["outcome"] == "claim" and entry["gaps"] == []
    [claim] = ndjson(tmp_path / "out" / "Claim.ndjson")
    assert claim["provider"] == {"reference": "Organization/clinic"}
    assert (
        entry["performer"] == "Practitioner/nurse"
    )  # the conditional performer, kept in the report
    assert claim["careTeam"][0]["provider"] == {
        "reference": "Practitioner/doctor"
    }  # renders (incident-to)


def test_the_spool_indexes_identifiers_on_disk_only_when_a_conditional_reference_asks(tmp_path):
    with Spool(directory=str(tmp_path)) as spool:
        spool.add_all(
            [
                *world(),
                {
                    "resourceType": "Practitioner",
                    "id": "twin",
                    "identifier": [{"system": NPI, "value": NURSE_NPI}],
                },
            ],
            pytest.fail,
        )

        def tables():
            return {
                name
                for (name,) in sqlite3.connect(spool.path).execute(
                    "SELECT name FROM sqlite_master WHERE type='table'"
                )
            }

        assert "ident" not in tables()
        _admins, ctx = spool.for_patient("p1")
        assert [r["id"] for r in ctx.find("Practitioner", [(NPI, NURSE_NPI)])] == ["nurse", "twin"]
        assert [r["id"] for r in ctx.find("Organization", [(None, CLINIC_NPI)])] == ["clinic"]
        assert (
            ctx.find("Organization", [("", CLINIC_NPI)]) == []
        )  # "|v": identifiers without a system
        assert "ident" in tables()
        assert ctx.get(CLINIC_BY_NPI, "Organization")["id"] == "clinic"
        assert ctx.get(BY_NPI) is None  # two match: ambiguous
        assert "ambiguous" in ctx.resolve(BY_NPI)[1]


def test_the_realworld_conditional_case_bills_with_its_clinic_and_nurse(tmp_path):
    # its encounter is class AMB at a clinic no Location or Organization.type places: the practice's
    # profile says its sites are offices (class AMB alone does not, 96372.md 'Setting')
    office = Config(default_place_of_service="11")
    run_folder(REALWORLD / "conditional-references", tmp_path, rules(), office, CREATED)
    [entry] = report_of(tmp_path)["administrations"]
    assert entry["outcome"] == "claim"
    [claim] = ndjson(tmp_path / "Claim.ndjson")
    assert claim["status"] == "active"
    assert claim["provider"] == {"reference": "Organization/rw-cnd-org-a17"}
    assert entry["performer"] == "Practitioner/rw-cnd-prac-b22"  # the nurse gave it
    # the encounter's PPRF MD (a conditional reference too) renders it, incident-to
    assert claim["careTeam"][0]["provider"] == {"reference": "Practitioner/rw-cnd-prac-c33"}


# ----------------------------------------------------------------------------- contained references


def _contained_nurse(**changes) -> dict:
    nurse = {
        "resourceType": "Practitioner",
        "id": "n1",
        "identifier": [{"system": NPI, "value": NURSE_NPI}],
    }
    return admin(contained=[nurse], performer=[{"actor": {"reference": "#n1"}}], **changes)


def test_a_contained_practitioner_documents_the_performer_but_gives_the_claim_no_care_team():
    # (the encounter names no rendering practitioner here, so the contained nurse cannot be one)
    d = decide_one(_contained_nurse(), replace_resource(world(), "Encounter", participant=None))
    assert "missing-performer" not in gap_codes(d)
    assert d.performer is None and d.rendering is None
    assert "careTeam" not in build_claim(d, Config(), CREATED)


def test_a_performer_a_claim_can_point_to_is_preferred_to_a_contained_one():
    a = _contained_nurse()
    a["performer"].append({"actor": {"reference": "Practitioner/nurse"}})
    assert decide_one(a).performer == "Practitioner/nurse"


def test_a_contained_reference_to_nothing_or_another_type_says_so():
    d = decide_one(admin(performer=[{"actor": {"reference": "#nobody"}}]))
    assert (
        "performer.actor '#nobody' names no contained resource"
        in gap(d, "missing-performer").message
    )
    d = decide_one(
        admin(
            subject={"reference": "#n1"}, contained=[{"resourceType": "Practitioner", "id": "n1"}]
        )
    )
    assert (
        "'#n1' names a contained Practitioner, not a Patient" in gap(d, "missing-patient").message
    )


def test_unresolved_condition_references_are_named_in_the_missing_diagnosis_gap():
    w = replace_resource(
        world(), "Encounter", diagnosis=[{"condition": {"reference": "Condition/gone"}}]
    )
    d = decide_one(admin(reasonReference=[{"reference": "#dx"}]), w)
    assert gap(d, "missing-diagnosis").message.startswith(
        "MedicationAdministration.reasonReference '#dx' names no contained Condition; "
        "Encounter.diagnosis.condition 'Condition/gone' points to Condition/gone, which is not in the source. "
    )


def test_a_contained_condition_gives_the_diagnosis():
    condition = {
        "resourceType": "Condition",
        "id": "dx",
        "code": {"coding": [{"system": ICD10, "code": "E53.8"}]},
    }
    w = replace_resource(world(), "Encounter", diagnosis=None)
    d = decide_one(admin(contained=[condition], reasonReference=[{"reference": "#dx"}]), w)
    assert [c.code for c in d.diagnoses] == ["E53.8"] and "missing-diagnosis" not in gap_codes(d)


def test_the_encounters_contained_condition_and_organization_are_read_within_the_encounter():
    w = replace_resource(
        world(),
        "Encounter",
        contained=[
            {
                "resourceType": "Condition",
                "id": "dx",
                "code": {"coding": [{"system": ICD10, "code": "J30.2"}]},
            },
            {"resourceType": "Organization", "id": "org", "name": "Clinic"},
        ],
        diagnosis=[{"condition": {"reference": "#dx"}}],
        serviceProvider={"reference": "#org"},
    )
    d = decide_one(admin(), w)
    assert [c.code for c in d.diagnoses] == ["J30.2"]
    # a contained Organization cannot be a Claim's provider: the performer bills
    assert d.outcome == "claim" and d.provider == "Practitioner/nurse"
    d = decide_one(admin(performer=None), w)
    assert d.outcome == "held" and d.claim_status is None
    assert (
        "Encounter.serviceProvider '#org' is contained in the Encounter"
        in gap(d, "missing-billing-provider").message
    )


def test_a_contained_patient_holds_the_administration_without_a_claim():
    d = decide_one(
        admin(subject={"reference": "#pt"}, contained=[{"resourceType": "Patient", "id": "pt"}])
    )
    assert d.outcome == "held" and d.claim_status is None and d.patient is None
    assert (
        "is a contained Patient, which a Claim cannot point to" in gap(d, "missing-patient").message
    )


# ----------------------------------------------------------------------------- no claim without a Claim


def test_no_billing_provider_holds_with_a_gap_that_says_why_and_counts_the_dollars_held():
    w = replace_resource(world(), "Encounter", serviceProvider=None)
    d = decide_one(admin(performer=None), w)
    assert d.outcome == "held" and d.claim_status is None
    assert d.claim_blocker == "missing-billing-provider"
    g = gap(d, "missing-billing-provider")
    assert g.severity == "error" and g.field == "Encounter.serviceProvider"
    assert g.message.startswith(
        "Encounter.serviceProvider is missing; no billing_provider is configured; no performer"
    )
    assert build_claim(d, Config(), CREATED) is None
    summary = Summary()
    summary.add(d, None, True)
    assert summary.billable == 0 and summary.held == d.estimated_amount > 0


def test_an_unresolved_conditional_clinic_and_performer_name_both_in_the_billing_provider_gap():
    w = replace_resource(
        world(), "Encounter", serviceProvider={"reference": f"Organization?identifier={NPI}|0"}
    )
    d = decide_one(
        admin(performer=[{"actor": {"reference": f"Practitioner?identifier={NPI}|0"}}]), w
    )
    assert d.outcome == "held"
    assert (
        f"Encounter.serviceProvider 'Organization?identifier={NPI}|0' matches no Organization"
        in gap(d, "missing-billing-provider").message
    )
    assert (
        f"'Practitioner?identifier={NPI}|0' matches no Practitioner"
        in gap(d, "missing-performer").message
    )


def test_a_configured_billing_provider_needs_no_clinic_or_performer():
    w = replace_resource(world(), "Encounter", serviceProvider=None)
    d = decide_one(admin(performer=None), w, Config(billing_provider="Organization/clinic"))
    assert d.outcome == "claim" and d.provider == "Organization/clinic"
    assert "missing-billing-provider" not in gap_codes(d)


def test_not_96372_outcomes_need_no_billing_provider():
    w = replace_resource(world(encounter_class="IMP"), "Encounter", serviceProvider=None)
    d = decide_one(admin(performer=None), w)
    assert d.outcome == "not-billable" and "missing-billing-provider" not in gap_codes(d)


@pytest.mark.parametrize("code", NO_CLAIM_BLOCKERS)
def test_a_blocker_configured_down_to_a_warning_still_holds_the_administration(code):
    w = world(coverage=code != "missing-coverage")
    a = admin(subject=None) if code == "missing-patient" else admin()
    if code == "missing-billing-provider":
        w, a = replace_resource(w, "Encounter", serviceProvider=None), admin(performer=None)
    d = decide_one(a, w, Config(severity={code: "warning"}))
    assert gap(d, code).severity == "warning"
    assert d.outcome == "held" and d.claim_status is None and d.claim_blocker == code


@settings(max_examples=150, deadline=None)
@given(
    patient=st.sampled_from(["literal", "conditional", "missing", "contained"]),
    coverage=st.booleans(),
    clinic=st.sampled_from(["literal", "conditional", "unresolved", "contained", "none"]),
    performer=st.sampled_from(["literal", "conditional", "ambiguous", "contained", "none"]),
    configured=st.booleans(),
    downgrade=st.sampled_from(
        [(), ("missing-coverage",), ("missing-patient", "missing-billing-provider")]
    ),
)
def test_outcome_claim_if_and_only_if_an_active_claim_is_built(
    patient, coverage, clinic, performer, configured, downgrade
):
    w = world(coverage=coverage)
    w = replace_resource(w, "Patient", identifier=[{"system": "urn:mrn", "value": "M1"}])
    w.append(
        {
            "resourceType": "Practitioner",
            "id": "twin",
            "identifier": [{"system": "urn:t", "value": "T"}],
        }
    )
    w.append(
        {
            "resourceType": "Practitioner",
            "id": "twin2",
            "identifier": [{"system": "urn:t", "value": "T"}],
        }
    )
    contained = [
        {"resourceType": "Patient", "id": "pt"},
        {"resourceType": "Practitioner", "id": "n1"},
    ]
    subject = {
        "literal": "Patient/p1",
        "conditional": "Patient?identifier=urn:mrn|M1",
        "missing": "Patient/x",
        "contained": "#pt",
    }[patient]
    actor = {
        "literal": "Practitioner/nurse",
        "conditional": BY_NPI,
        "ambiguous": "Practitioner?identifier=urn:t|T",
        "contained": "#n1",
        "none": None,
    }[performer]
    provider = {
        "literal": "Organization/clinic",
        "conditional": CLINIC_BY_NPI,
        "unresolved": "Organization?identifier=urn:x|0",
        "contained": "#org",
        "none": None,
    }[clinic]
    w = replace_resource(
        w,
        "Encounter",
        contained=[{"resourceType": "Organization", "id": "org"}],
        serviceProvider={"reference": provider} if provider else None,
    )
    a = admin(
        subject={"reference": subject},
        contained=contained,
        performer=[{"actor": {"reference": actor}}] if actor else None,
    )
    config = Config(
        billing_provider="Organization/clinic" if configured else None,
        severity={code: "warning" for code in downgrade},
    )
    d = decide_one(a, w, config)
    claim = build_claim(d, config, CREATED)
    assert (d.outcome == "claim") == (claim is not None and claim["status"] == "active")
    if d.outcome == "held":
        assert (claim is None) == (d.claim_blocker is not None)


def _corpus_sources(tmp_path: Path) -> list[tuple[str, Path]]:
    sources = [
        ("demo", REPO / "fixtures" / "demo"),
        ("synthea-bulk", REPO / "fixtures" / "synthea" / "bulk"),
        ("synthea-bundles", REPO / "fixtures" / "synthea" / "bundles"),
    ]
    sources += [
        (f"realworld/{case.name}", case) for case in sorted(REALWORLD.iterdir()) if case.is_dir()
    ]
    corpus = REPO / "tests" / "badinput"
    for case in json.loads((corpus / "cases.json").read_text(encoding="utf-8")):
        if case.get("symlinks"):
            continue  # links to nowhere or to themselves: nothing is decided from them
        source = tmp_path / "badinput" / case["name"]
        shutil.copytree(corpus / "good", source)
        if (corpus / "cases" / case["name"]).is_dir():
            shutil.copytree(corpus / "cases" / case["name"], source, dirs_exist_ok=True)
        sources.append((f"badinput/{case['name']}", source))
    return sources


def test_every_outcome_claim_has_an_active_claim_and_every_active_claim_an_outcome_claim(tmp_path):
    """Over the demo, the bad-input corpus, the real-world fixtures and the Synthea sample: report
    outcome ``claim`` <=> an active Claim in Claim.ndjson; held dollars are never billable."""
    checked = 0
    for name, source in _corpus_sources(tmp_path):
        target = tmp_path / "out" / name
        run_folder(source, target, rules(), Config(), CREATED)
        report = report_of(target)
        claimed = {
            e["administration"] for e in report["administrations"] if e["outcome"] == "claim"
        }
        active = {
            c["supportingInfo"][0]["valueReference"]["reference"]
            for c in ndjson(target / "Claim.ndjson")
            if c["status"] == "active"
        }
        assert claimed == active, name
        for e in report["administrations"]:
            assert (e["outcome"] == "claim") == (e["claim_status"] == "active"), (
                name,
                e["administration"],
            )
        billable = sum(
            e["estimated_usd"]
            for e in report["administrations"]  # self-pay: counted apart
            if e["outcome"] == "claim" and e.get("payer_type") != "self-pay"
        )
        assert report["summary"]["estimated_billable_usd"] == pytest.approx(billable), name
        checked += len(report["administrations"])
    assert checked > 3000


# ----------------------------------------------------------------------------- live: one batched search


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def _batch_server(rsps) -> FakeFhir:
    return FakeFhir(interactions=("transaction", "batch"), update_create=True).install(rsps)


def _clinic(server: FakeFhir, conditional: bool, patients: int = 15, per_patient: int = 4) -> None:
    """builders' clinic (as test_sync's): the nurse and clinic named by NPI when ``conditional``."""
    seen = set()
    for i in range(patients):
        w = conditional_world(patient=f"p{i}") if conditional else world(patient=f"p{i}")
        for r in w:
            if (r["resourceType"], r["id"]) not in seen:
                seen.add((r["resourceType"], r["id"]))
                server.put(r, last_updated=instant(0))
    n = 0
    for i in range(patients):
        for k in range(per_patient):
            n += 1
            a = (by_npi_admin if conditional else admin)(
                id=f"ma{i}-{k}",
                patient=f"p{i}",
                effectiveDateTime=f"2026-10-05T09:{30 + 5 * k:02d}:00-05:00",
            )
            server.put(a, last_updated=instant(100 + n), version="1")
    server.clock = 100 + n


def _sync(tmp_path: Path):
    client = FhirClient(HttpSession(BASE, sleep=lambda s: None, clock=lambda: 0.0))
    options = SyncOptions(
        state_path=str(tmp_path / "state.json"),
        report_path=str(tmp_path / "report.json"),
        page_size=20,
        created=CREATED,
    )
    return run_sync(client, client, rules(), Config(), options)


def _inner_searches(rsps, rtype: str, param: str) -> list[str]:
    found = []
    for call in rsps.calls:
        if call.request.method == "POST" and call.request.url.rstrip("/") == BASE:
            for e in json.loads(call.request.body)["entry"]:
                url = e["request"]["url"]
                if (
                    e["request"]["method"] == "GET"
                    and url.startswith(f"{rtype}?")
                    and f"{param}=" in url
                ):
                    found.append(url)
    return found


def _run_clinic(tmp_path: Path, conditional: bool):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        server = _batch_server(mock)
        _clinic(server, conditional=conditional)
        result = _sync(tmp_path)
        return result, server, list(mock.calls), mock


def test_live_conditional_references_cost_no_request_more_than_literal_ones(tmp_path):
    (tmp_path / "literal").mkdir(), (tmp_path / "conditional").mkdir()
    literal, _, literal_calls, _ = _run_clinic(tmp_path / "literal", conditional=False)
    result, server, calls, _mock = _run_clinic(tmp_path / "conditional", conditional=True)

    assert literal.claims.created == result.claims.created == 60 and result.exit_code == 0
    # metadata + 3 pages x (the page, one batch of searches, one transaction of writes): the
    # identifier searches ride in page 1's batch of look-ups and are cached for pages 2 and 3
    assert len(calls) == result.summary["http"]["requests"] == len(literal_calls) == 10
    searches = [
        e["request"]["url"]
        for c in calls
        if c.request.method == "POST" and c.request.url.rstrip("/") == BASE
        for e in json.loads(c.request.body)["entry"]
        if e["request"]["method"] == "GET"
    ]
    by_identifier = sorted(
        u.split("&")[0]
        for u in searches
        if u.startswith(("Practitioner?", "Organization?")) and "identifier=" in u
    )
    assert by_identifier == [
        f"Organization?identifier={quote(f'{NPI}|{CLINIC_NPI}', safe='')}",
        f"Practitioner?identifier={quote(f'{NPI}|{NURSE_NPI}', safe='')}",
    ]
    claims = server.all("Claim")
    assert len(claims) == 60
    assert {c["provider"]["reference"] for c in claims} == {"Organization/clinic"}
    assert {c["careTeam"][0]["provider"]["reference"] for c in claims} == {"Practitioner/doctor"}
    report = json.loads((tmp_path / "conditional" / "report.json").read_text())
    assert {e["performer"] for e in report["administrations"]} == {"Practitioner/nurse"}
    assert {e["outcome"] for e in report["administrations"]} == {"claim"}


def test_the_resolver_groups_conditional_references_by_type_in_one_search_each(rsps):
    server = _batch_server(rsps)
    for r in world():
        server.put(r)
    second = {
        "resourceType": "Practitioner",
        "id": "nurse2",
        "identifier": [{"system": NPI, "value": "2222222224"}],
    }
    server.put(second)
    client = FhirClient(HttpSession(BASE, sleep=lambda s: None, clock=lambda: 0.0))
    resolver = Resolver(client)
    admins = [
        by_npi_admin(id="a1"),
        admin(
            id="a2",
            effectiveDateTime="2026-10-05T10:00:00-05:00",
            performer=[{"actor": {"reference": f"Practitioner?identifier={NPI}|2222222224"}}],
        ),
        admin(
            id="a3",
            effectiveDateTime="2026-10-05T10:30:00-05:00",
            performer=[{"actor": {"reference": f"Practitioner?identifier={NPI}|0000000000"}}],
        ),
    ]
    lookups = [lk for lk in resolver.lookups(admins) if lk.param == "identifier"]
    assert [(lk.type, lk.values) for lk in lookups] == [
        ("Practitioner", (f"{NPI}|0000000000", f"{NPI}|1111111112", f"{NPI}|2222222224"))
    ]
    before = len(rsps.calls)
    resolver.fetch(admins)
    assert len(rsps.calls) - before == 1  # the _id look-ups and the identifier search: one batch
    assert resolver.by_identifier[("Practitioner", (NPI, NURSE_NPI))] == ("Practitioner/nurse",)
    assert resolver.by_identifier[("Practitioner", (NPI, "0000000000"))] == ()
    assert not [lk for lk in resolver.lookups(admins) if lk.param == "identifier"]  # cached
    ctx = resolver.context(admins)
    assert ctx.get(BY_NPI)["id"] == "nurse"
    live = decide_all(admins, ctx, rules())
    assert [d.performer for d in live] == ["Practitioner/nurse", "Practitioner/nurse2", None]
    assert "matches no Practitioner" in gap(live[2], "missing-performer").message


def test_live_an_ambiguous_conditional_reference_is_a_gap_not_a_guess(rsps, tmp_path):
    server = _batch_server(rsps)
    _clinic(server, conditional=True, patients=1, per_patient=1)
    server.put(
        {
            "resourceType": "Practitioner",
            "id": "nurse-twin",
            "identifier": [{"system": NPI, "value": NURSE_NPI}],
        }
    )
    result = _sync(tmp_path)
    assert result.exit_code == 0
    [entry] = json.loads((tmp_path / "report.json").read_text())["administrations"]
    message = next(g["message"] for g in entry["gaps"] if g["code"] == "missing-performer")
    assert "matches 2 Practitioner resources (ambiguous)" in message
    assert entry["outcome"] == "claim"  # the clinic still bills; the performer is a warning
