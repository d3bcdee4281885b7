"""The setting first, and from the place (96372.md 'Setting' and 'Unknowns').

Place of service comes from the place, not the visit class: Encounter.class AMB is an ambulatory
visit at an office (POS 11, our professional claim) or at a hospital outpatient department (POS
19/22, the hospital bills 96372 on its institutional claim); only the place, the practice's own
profile of its sites, or nothing (a gap) says which. An administration that names no Encounter
belongs to the patient's Encounter whose period contains it. Whatever is given in a facility stops
before the route picks a professional administration code; a chemotherapy drug without a route has
no administration code at all (96401, 96409 and 96413 depend on it).
"""

from __future__ import annotations

import pytest

from fhir_injection.config import load_config
from fhir_injection.decision.practice import Config
from fhir_injection.errors import ConfigError
from tests.builders import (
    ACT,
    RXNORM,
    SNOMED,
    UCUM,
    admin,
    decide_many,
    decide_one,
    dosage,
    gap,
    gap_codes,
    med,
    refused_row,
    replace_resource,
    world,
)

ROLECODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
CATEGORY = "http://terminology.hl7.org/CodeSystem/medication-admin-category"


def basis_of(decision, fact="place_of_service"):
    return next((kind, how) for f, kind, how in decision.basis if f == fact)


def at(location: dict, resources=None) -> list[dict]:
    """``resources`` (a clean world) whose encounter's Location is ``location`` instead of the office."""
    resources = [r for r in (resources or world()) if r.get("resourceType") != "Location"]
    return [*resources, {"resourceType": "Location", "id": "office", **location}]


def no_place(resources=None) -> list[dict]:
    """A clean world whose encounter names no Location: class AMB and a 'prov' clinic only."""
    return replace_resource(resources or world(), "Encounter", location=None)


# ----------------------------------------------------------------------------- AMB alone


def test_an_ambulatory_visit_with_no_place_is_unknown_not_the_office():
    d = decide_one(resources=no_place())
    assert d.place_of_service is None and d.setting is None
    assert d.outcome == "held"
    message = gap(d, "unknown-setting").message
    assert "ambulatory" in message and "not assumed" in message
    assert basis_of(d)[0] == "unknown"


def test_the_practice_default_places_an_ambulatory_visit_at_its_office():
    d = decide_one(resources=no_place(), config=Config(default_place_of_service="11"))
    assert d.outcome == "claim" and d.place_of_service == "11" and d.setting == "office"
    assert basis_of(d) == ("practice", "default_place_of_service 11 (configuration)")


def test_the_practice_default_does_not_place_a_visit_whose_class_is_not_known():
    """A class that is only a data-absent-reason could be an admission: the default, for the
    practice's own ambulatory visits, does not say it was not."""
    absent = {
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                "valueCode": "unknown",
            }
        ]
    }
    resources = replace_resource(no_place(), "Encounter", **{"class": absent})
    d = decide_one(resources=resources, config=Config(default_place_of_service="11"))
    assert d.place_of_service is None and "unknown-setting" in gap_codes(d)


def test_an_office_location_is_read_from_the_record():
    d = decide_one()  # the world's Location is typed CMS place of service 11
    assert d.outcome == "claim" and d.place_of_service == "11"
    assert basis_of(d) == ("record", "Location.type is CMS place of service 11")


# ----------------------------------------------------------------------------- the place


def test_amb_at_a_hospital_location_is_the_hospital_s_96372_not_ours():
    """HL7 v3 RoleCode HOSP (FHIR Location example shape: type HOSP) with class AMB: a hospital
    outpatient department, POS 22; the facility bills 96372, we bill nothing."""
    hospital = {
        "status": "active",
        "name": "South Wing, second floor",
        "type": [{"coding": [{"system": ROLECODE, "code": "HOSP", "display": "Hospital"}]}],
        "physicalType": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
                    "code": "wi",
                    "display": "Wing",
                }
            ]
        },
    }
    d = decide_one(resources=at(hospital))
    assert d.outcome == "not-billable" and d.place_of_service == "22" and d.setting == "facility"
    assert d.lines == () and d.procedure == "96372"  # what the hospital bills, on its claim
    assert "facility-setting" in gap_codes(d)
    kind, how = basis_of(d)
    assert kind == "rule" and "Location.type 'HOSP'" in how and "places.csv" in how


def test_an_emergency_room_location_is_pos_23():
    er = {"type": [{"coding": [{"system": ROLECODE, "code": "ER", "display": "Emergency room"}]}]}
    d = decide_one(resources=at(er))
    assert (d.outcome, d.place_of_service) == ("not-billable", "23")


def test_a_hospital_organization_type_places_an_ambulatory_visit():
    """The serviceProvider's Organization.type: 'prov' says nothing; a hospital type does."""
    resources = replace_resource(
        no_place(),
        "Organization",
        type=[
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                        "code": "prov",
                    },
                    {"system": "http://nucc.org/provider-taxonomy", "code": "282N00000X"},
                ]
            }
        ],
    )
    d = decide_one(resources=resources)
    assert (d.outcome, d.place_of_service) == ("not-billable", "22")
    only_prov = replace_resource(
        no_place(),
        "Organization",
        type=[
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                        "code": "prov",
                    }
                ]
            }
        ],
    )
    assert decide_one(resources=only_prov).place_of_service is None


def test_a_hospitalization_with_an_admit_origin_is_an_admission():
    """FHIR R4 Encounter example shape: hospitalization.admitOrigin and dischargeDisposition; the
    class in a vendor's own system the tables do not know."""
    resources = replace_resource(
        world(),
        "Encounter",
        **{
            "class": {"system": "http://example.org/vendor-class", "code": "X1"},
            "hospitalization": {
                "admitOrigin": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/admit-source",
                            "code": "emd",
                        }
                    ]
                },
                "dischargeDisposition": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/discharge-disposition",
                            "code": "home",
                        }
                    ]
                },
            },
        },
    )
    d = decide_one(resources=resources)
    assert (d.outcome, d.procedure, d.place_of_service) == ("not-billable", None, "21")
    assert "Encounter.hospitalization.admitOrigin" in basis_of(d)[1]


# ----------------------------------------------------------------------------- category


def test_category_inpatient_is_inside_the_drg():
    """medication-admin-category 'inpatient' is the strongest signal: even at the office Location."""
    a = admin(category={"coding": [{"system": CATEGORY, "code": "inpatient"}]})
    d = decide_one(a)
    assert (d.outcome, d.procedure, d.place_of_service) == ("not-billable", None, "21")
    assert "MedicationAdministration.category 'inpatient'" in basis_of(d)[1]


def test_category_outpatient_says_no_admission_not_where():
    a = admin(category={"coding": [{"system": CATEGORY, "code": "outpatient"}]})
    d = decide_one(a, no_place())
    assert d.place_of_service is None
    assert "MedicationAdministration.category 'outpatient'" in gap(d, "unknown-setting").message
    placed = decide_one(a, no_place(), Config(default_place_of_service="11"))
    assert placed.place_of_service == "11"


# ----------------------------------------------------------------------------- practice profile


def test_the_practice_profile_is_authoritative_for_its_place():
    """[places] names the Location an off-campus hospital department (POS 19): not our claim, even
    though the record types it an office."""
    d = decide_one(config=Config(places={"Location/office": "19"}))
    assert (d.outcome, d.place_of_service, d.setting) == ("not-billable", "19", "facility")
    assert basis_of(d) == ("practice", "[places] Location/office -> POS 19 (configuration)")


def test_the_practice_profile_names_a_clinic_by_its_identifier():
    config = Config(places={"http://hl7.org/fhir/sid/us-npi|1234567893": "11"})
    d = decide_one(admin(), no_place(), config)
    assert (d.outcome, d.place_of_service) == ("claim", "11")
    assert basis_of(d)[0] == "practice" and "us-npi|1234567893" in basis_of(d)[1]


def test_an_inpatient_class_still_decides_before_the_practice_profile():
    resources = replace_resource(world(), "Encounter", **{"class": {"system": ACT, "code": "IMP"}})
    d = decide_one(admin(), resources, Config(places={"Location/office": "11"}))
    assert (d.outcome, d.place_of_service) == ("not-billable", "21")


def test_the_config_file_reads_the_practice_profile(tmp_path):
    path = tmp_path / "practice.toml"
    path.write_text(
        'default_place_of_service = "11"\n[places]\n"Location/hopd" = "22"\n'
        '"http://hl7.org/fhir/sid/us-npi|1234567893" = "11"\n',
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.default_place_of_service == "11"
    assert config.places == {
        "Location/hopd": "22",
        "http://hl7.org/fhir/sid/us-npi|1234567893": "11",
    }


@pytest.mark.parametrize(
    "text",
    [
        'default_place_of_service = "office"\n',
        '[places]\n"Location/x" = 11\n',
        '[places]\n"hopd" = "22"\n',
    ],
)
def test_a_bad_practice_profile_is_refused_with_its_key(tmp_path, text):
    path = tmp_path / "practice.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="place"):
        load_config(path)


def test_a_places_row_with_an_unknown_place_of_service_is_refused_naming_file_and_row(tmp_path):
    err, row = refused_row(
        tmp_path, "places.csv", "HOSP,Hospital,facility,22", "HOSP,Hospital,facility,99"
    )
    assert err.file == "places.csv" and err.row == row
    assert "places_of_service.csv" in str(err)


def test_an_unplaced_settings_row_may_not_name_a_place(tmp_path):
    err, row = refused_row(
        tmp_path, "settings.csv", "AMB,ambulatory,unplaced,,", "AMB,ambulatory,unplaced,11,"
    )
    assert err.file == "settings.csv" and err.row == row


# ----------------------------------------------------------------------------- no context


def test_an_administration_without_context_is_placed_in_the_encounter_containing_it():
    """eCQM test bundles and US Core's draft profile: no MedicationAdministration.context. The
    patient's other encounter, on another day, does not contain it."""
    other = {
        "resourceType": "Encounter",
        "id": "e-other",
        "status": "finished",
        "class": {"system": ACT, "code": "IMP"},
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2026-09-01T08:00:00-05:00", "end": "2026-09-04T10:00:00-05:00"},
    }
    d = decide_one(admin(context=None), [*world(), other])
    assert d.outcome == "claim" and d.encounter == "Encounter/e-p1" and d.place_of_service == "11"
    assert basis_of(d)[1].startswith("placed in Encounter/e-p1 by its period; ")


def test_an_inpatient_stay_containing_an_administration_without_context_is_its_setting():
    """A dose charted with no context during an inpatient stay is the hospital's, not a held 96372."""
    stay = replace_resource(
        no_place(),
        "Encounter",
        **{
            "class": {"system": ACT, "code": "IMP"},
            "period": {"start": "2026-10-03T08:00:00-05:00", "end": "2026-10-07T10:00:00-05:00"},
        },
    )
    d = decide_one(admin(context=None), stay)
    assert (d.outcome, d.procedure, d.place_of_service) == ("not-billable", None, "21")
    assert d.claim_status is None


def test_two_encounters_containing_it_are_a_gap_naming_both():
    twin = {
        "resourceType": "Encounter",
        "id": "e-twin",
        "status": "finished",
        "class": {"system": ACT, "code": "AMB"},
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2026-10-05T09:15:00-05:00", "end": "2026-10-05T10:00:00-05:00"},
    }
    d = decide_one(admin(context=None), [*world(), twin])
    message = gap(d, "missing-encounter").message
    assert "Encounter/e-p1" in message and "Encounter/e-twin" in message
    assert d.place_of_service is None and d.encounter is None and d.outcome == "held"


def test_no_encounter_and_no_profile_assumes_no_place():
    resources = replace_resource(
        world(),
        "Encounter",
        period={"start": "2026-10-06T09:00:00-05:00", "end": "2026-10-06T10:00:00-05:00"},
    )
    d = decide_one(admin(context=None), resources)
    assert d.place_of_service is None and d.outcome == "held"
    assert "none of the patient's 1 Encounter(s)" in gap(d, "missing-encounter").message
    assert basis_of(d)[0] == "unknown"


# ----------------------------------------------------------------------------- setting before route


def test_an_iv_infusion_in_an_inpatient_stay_is_not_billed_and_not_96365():
    """Setting first: an inpatient IV is inside the DRG, no infusion code of ours."""
    resources = replace_resource(world(), "Encounter", **{"class": {"system": ACT, "code": "IMP"}})
    iv = admin(
        dosage=dosage(
            route={
                "coding": [{"system": SNOMED, "code": "47625008", "display": "Intravenous route"}]
            },
            rateQuantity={"value": 100, "unit": "mL/h", "system": UCUM, "code": "mL/h"},
        ),
        effectivePeriod={"start": "2026-10-05T09:30:00-05:00", "end": "2026-10-05T10:30:00-05:00"},
        effectiveDateTime=None,
    )
    d = decide_one(iv, resources)
    assert (d.outcome, d.procedure, d.additional) == ("not-billable", None, ())
    assert "route-not-sc-im" not in gap_codes(d) and "facility-setting" in gap_codes(d)


def test_a_vaccine_in_the_emergency_room_is_the_hospital_s():
    resources = replace_resource(world(), "Encounter", **{"class": {"system": ACT, "code": "EMER"}})
    flu = admin(
        medicationCodeableConcept={
            "coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]
        }
    )
    d = decide_one(flu, resources)
    assert (d.outcome, d.procedure, d.place_of_service) == ("not-billable", None, "23")
    assert "vaccine" not in gap_codes(d)


# ----------------------------------------------------------------------------- the route decides chemo


METHOTREXATE = med(RXNORM, "1946772", "methotrexate 25 MG/ML Injectable Solution")


def test_an_antineoplastic_without_a_route_is_held_without_a_code():
    a = admin(
        medicationCodeableConcept=METHOTREXATE,
        dosage=dosage(route=None, dose={"value": 15, "unit": "mg", "system": UCUM, "code": "mg"}),
    )
    d = decide_one(a)
    assert (d.outcome, d.procedure, d.lines) == ("held", None, ())
    assert {"antineoplastic", "missing-route"} <= set(gap_codes(d))
    assert "96401" not in [line.code for line in d.lines]
    assert "follows the route" in gap(d, "antineoplastic").message


def test_an_antineoplastic_given_sc_is_96401():
    a = admin(
        medicationCodeableConcept=METHOTREXATE,
        dosage=dosage(
            route={
                "coding": [{"system": SNOMED, "code": "34206005", "display": "Subcutaneous route"}]
            },
            dose={"value": 15, "unit": "mg", "system": UCUM, "code": "mg"},
        ),
    )
    d = decide_one(a)
    assert (d.outcome, d.procedure) == ("not-96372", "96401")


def test_several_administrations_keep_their_own_places():
    office, hospital = (
        admin("ma1"),
        admin("ma2", category={"coding": [{"system": CATEGORY, "code": "inpatient"}]}),
    )
    d1, d2 = decide_many([office, hospital])
    assert (d1.place_of_service, d2.place_of_service) == ("11", "21")


# ----------------------------------------------------------------------------- the server pull


class _Server:
    """A server that lists Encounter and Location (no HTTP: the Resolver's look-ups are inspected)."""

    def capabilities(self):
        return {
            "rest": [
                {
                    "resource": [
                        {"type": t}
                        for t in ("Encounter", "Location", "Organization", "Patient", "Coverage")
                    ]
                }
            ]
        }


def test_the_server_pull_asks_for_the_encounters_of_patients_whose_administration_names_none():
    from fhir_injection.sources.resolver import Resolver

    resolver = Resolver(_Server())
    lookups = resolver.lookups([admin("a1", patient="p1", context=None), admin("a2", patient="p2")])
    by_patient = [lk for lk in lookups if lk.type == "Encounter" and lk.param == "patient"]
    assert [lk.values for lk in by_patient] == [("Patient/p1",)]
    # the answer is kept, its Location is fetched next, and the Context holds it for the placing
    encounter = next(r for r in world(patient="p1") if r["resourceType"] == "Encounter")
    resolver.take(by_patient, [[(encounter, "match")]])
    again = resolver.lookups([admin("a1", patient="p1", context=None)])
    assert any(lk.type == "Location" and lk.values == ("office",) for lk in again)
    ctx = resolver.context([admin("a1", patient="p1", context=None)])
    assert [e["id"] for e in ctx.for_patient("Encounter", "p1")] == ["e-p1"]


# ----------------------------------------------------------------------------- IV-only products


def test_a_product_for_intravenous_use_only_documented_im_is_a_gap_not_a_claim():
    """RxNorm dose form 'Intravenous Solution' (its name ends in it): documented IM, the route or the
    product is wrong; the 96372 is held, never billed."""
    a = admin(medicationCodeableConcept={"text": "ondansetron 2 MG/ML Intravenous Solution"})
    d = decide_one(a)
    assert d.outcome == "held" and d.claim_status == "draft"
    assert (
        "'Intravenous Solution' (intravenous use only)"
        in gap(d, "route-conflicts-dose-form").message
    )
    assert gap(d, "route-conflicts-dose-form").severity == "error"


def test_an_infusion_solution_form_coding_conflicts_with_sc_and_holds_chemo_without_a_code():
    """Medication.form SNOMED CT 385229008 'Infusion solution' (FHIR medication-form-codes)."""
    infusion = {
        "resourceType": "Medication",
        "id": "mtx",
        "code": METHOTREXATE,
        "form": {
            "coding": [{"system": SNOMED, "code": "385229008", "display": "Infusion solution"}]
        },
    }
    a = admin(
        medicationCodeableConcept=None,
        medicationReference={"reference": "Medication/mtx"},
        dosage=dosage(
            route={"coding": [{"system": SNOMED, "code": "34206005"}]},
            dose={"value": 15, "unit": "mg", "system": UCUM, "code": "mg"},
        ),
    )
    d = decide_one(a, [*world(), infusion])
    assert (d.outcome, d.procedure) == ("held", None)
    assert "route-conflicts-dose-form" in gap_codes(d)


def test_an_injection_says_no_route_and_conflicts_with_nothing():
    a = admin(
        medicationCodeableConcept={"text": "ketorolac tromethamine 30 MG/ML Injectable Solution"}
    )
    assert "route-conflicts-dose-form" not in gap_codes(decide_one(a))
