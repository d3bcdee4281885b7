"""Two releases of the CMS ASP NDC-HCPCS crosswalk in mappings/ndc_hcpcs.csv (October 2025,
effective 2025-10-01 to 2025-12-31; July 2026, effective 2026-07-01 to 2026-09-30): a decision takes
the release in force on its date of service; after the newest release's last day the newest, before
the first release that lists an NDC that one; the basis says which release and why. The NDCs are
rows of the two CMS files (mappings/build/source/asp_ndc_hcpcs_2025q4.csv, asp_ndc_hcpcs_2026q3.csv)."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from fhir_injection import load_rules
from fhir_injection.decision.medication import crosswalk_entry
from tests.builders import NDC, admin, decide_many, decide_one, dosage, dose, line, med, world

ROOT = Path(__file__).resolve().parents[2]
Q4_2025 = (date(2025, 10, 1), date(2025, 12, 31))
Q3_2026 = (date(2026, 7, 1), date(2026, 9, 30))
PENTAMIDINE = (
    "23155074841"  # Heritage 23155-0748-41: J2545 (per 300 mg) in 2025 Q4, J2516 (1 mg) in 2026 Q3
)
GLYCOPYRROLATE = "51662160101"  # HealthFirst 51662-1601-01: BILLUNITS 5 in 2025 Q4, 10 in 2026 Q3
ONLY_NEW = "70512084325"  # Sola ketorolac 30 mg 70512-0843-25: first listed in July 2026
DROPPED = "72611072225"  # Almaject ketorolac 30 mg 72611-0722-25: October 2025 only


def _source_row(release: str, ndc2: str) -> dict:
    with (ROOT / f"mappings/build/source/asp_ndc_hcpcs_{release}.csv").open(encoding="utf-8") as f:
        return next(r for r in csv.DictReader(f) if r["ndc2"] == ndc2)


def _given(ndc, amount, unit, day, payer="commercial"):
    return decide_one(
        admin(
            medicationCodeableConcept=med(NDC, ndc),
            effectiveDateTime=f"{day}T09:30:00-05:00",
            dosage=dosage(dose=dose(amount, unit)),
        ),
        world(payer=payer),
    )


def _release(d):
    return {fact: (kind, how) for fact, kind, how in d.basis}.get("crosswalk_release")


def test_the_rows_are_cms_s_in_each_release():
    old = _source_row("2025q4", "23155-0748-41")
    new = _source_row("2026q3", "23155-0748-41")
    assert (old["hcpcs"], old["hcpcs_dosage"], old["billunits"]) == ("J2545", "300 MG", "1")
    assert (new["hcpcs"], new["hcpcs_dosage"], new["billunits"]) == ("J2516", "1 MG", "300")
    rules = load_rules()
    assert rules.crosswalk_releases == (Q4_2025, Q3_2026)
    entries = rules.ndc_hcpcs_releases[PENTAMIDINE]
    assert [(e.release, e.hcpcs) for e in entries] == [(Q4_2025, ("J2545",)), (Q3_2026, ("J2516",))]
    assert rules.ndc_hcpcs[PENTAMIDINE] is entries[-1]  # no date: the newest release
    assert [e.release for e in rules.ndc_hcpcs_releases[ONLY_NEW]] == [Q3_2026]
    assert [e.release for e in rules.ndc_hcpcs_releases[DROPPED]] == [Q4_2025]


@pytest.mark.parametrize(
    "day,release,code,why",
    [
        (date(2025, 11, 10), Q4_2025, "J2545", ""),
        (date(2026, 8, 10), Q3_2026, "J2516", ""),
        (
            date(2026, 11, 20),
            Q3_2026,
            "J2516",
            "after the newest release's last day: the newest release",
        ),
        (date(2025, 3, 3), Q4_2025, "J2545", "before the first release held that lists the NDC"),
        (date(2026, 3, 10), Q4_2025, "J2545", "no release held was in force on 2026-03-10"),
    ],
)
def test_the_release_in_force_on_the_date_of_service_decides(day, release, code, why):
    entry, said = crosswalk_entry(load_rules(), PENTAMIDINE, day)
    assert (entry.release, entry.hcpcs) == (release, (code,))
    assert why in said and bool(said) == bool(why)


def test_a_code_and_units_changed_between_releases_follow_the_date_of_service():
    """Pentamidine 300 mg IM: J2516 x 300 (1 mg) under the July 2026 release; the October 2025
    release lists it under J2545 (per 300 mg)."""
    d = _given(PENTAMIDINE, 300, "mg", "2026-08-10")
    assert (line(d, "drug").code, line(d, "drug").quantity) == ("J2516", 300)
    assert _release(d) == (
        "rule",
        "CMS ASP NDC-HCPCS crosswalk 2026-07-01 to 2026-09-30 "
        "(ndc_hcpcs.csv): in force on the date of service",
    )
    d = _given(PENTAMIDINE, 300, "mg", "2025-11-10")
    assert "2025-10-01 to 2025-12-31" in _release(d)[1]
    assert (line(d, "drug").code, line(d, "drug").quantity) == ("J2545", 1)


def test_one_product_on_both_sides_of_a_release_in_one_run():
    """The same pentamidine product given in August 2026 and in November 2025, decided in one
    Context (as a run decides a patient's days): each takes the release in force on its own date,
    although the product's reading is kept once a run (Context.memo)."""
    given = [
        admin(
            id=f"ma-{day}",
            medicationCodeableConcept=med(NDC, PENTAMIDINE),
            effectiveDateTime=f"{day}T09:30:00-05:00",
            dosage=dosage(dose=dose(300, "mg")),
        )
        for day in ("2026-08-10", "2025-11-10", "2026-08-11")
    ]
    new, old, new_again = decide_many(given, world(payer="commercial"))
    assert (line(new, "drug").code, line(new, "drug").quantity) == ("J2516", 300)
    assert (line(old, "drug").code, line(old, "drug").quantity) == ("J2545", 1)
    assert (line(new_again, "drug").code, line(new_again, "drug").quantity) == ("J2516", 300)


def test_a_package_size_changed_between_releases_follows_the_date_of_service():
    """Glycopyrrolate 51662-1601-01: CMS counted 5 billable units of 0.1 mg in October 2025, 10 in
    July 2026 (the 1 mg vial)."""
    old = _given(GLYCOPYRROLATE, 0.2, "mg", "2025-11-10")
    new = _given(GLYCOPYRROLATE, 0.2, "mg", "2026-08-10")
    assert (old.package.amount, old.package.unit) == (Decimal("0.5"), "mg")
    assert (new.package.amount, new.package.unit) == (Decimal(1), "mg")
    assert line(old, "drug").code == line(new, "drug").code == "J1596"


def test_an_ndc_first_listed_in_the_newer_release():
    d = _given(ONLY_NEW, 30, "mg", "2026-08-10")
    assert (line(d, "drug").code, line(d, "drug").quantity) == ("J1885", 2)
    assert _release(d)[1].endswith("in force on the date of service")
    earlier = _given(ONLY_NEW, 30, "mg", "2025-11-10")
    assert line(earlier, "drug").code == "J1885"  # the only release that lists it
    assert "2026-07-01 to 2026-09-30" in _release(earlier)[1]
    assert (
        "(2025-10-01 to 2025-12-31) does not list the NDC: the first release that does"
        in (_release(earlier)[1])
    )


def test_an_ndc_the_newer_release_dropped():
    d = _given(DROPPED, 30, "mg", "2026-08-10")
    assert (line(d, "drug").code, line(d, "drug").quantity) == ("J1885", 2)
    kind, how = _release(d)
    assert kind == "rule" and "2025-10-01 to 2025-12-31" in how
    assert "(2026-07-01 to 2026-09-30) does not list the NDC: the last release that does" in how
    later = _given(DROPPED, 30, "mg", "2026-11-20")
    assert (
        "after the newest release's last day, and the newest release does not list the NDC"
        in (_release(later)[1])
    )


def test_a_service_after_the_newest_release_takes_it_and_says_so():
    d = _given("00409379501", 30, "mg", "2026-10-05", payer="medicare")
    assert _release(d) == (
        "rule",
        "CMS ASP NDC-HCPCS crosswalk 2026-07-01 to 2026-09-30 (ndc_hcpcs.csv): the date of service "
        "2026-10-05 is after the newest release's last day: the newest release",
    )
