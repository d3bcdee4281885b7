"""The place tables: CMS place of service codes (places_of_service.csv) and the elements of a record
that name a place (places.csv: MedicationAdministration.category, Encounter.hospitalization,
Location.type and physicalType, Organization.type), and the setting/place-of-service columns
settings.csv and encounter_types.csv share with them."""

from __future__ import annotations

from pathlib import Path

from ..decision.ruleset import PLACE_ELEMENTS, PLACE_SETTINGS, SETTINGS, Setting
from .table import Table

__all__ = ["place_setting", "read_places", "read_places_of_service"]


def place_setting(t: Table, n: int, r: dict[str, str]) -> Setting:
    """A row's setting and place of service: a two-digit CMS code, empty only for 'unplaced' (the
    kind of visit, not where it was)."""
    setting = t.choice(n, r, "setting", PLACE_SETTINGS)
    pos = r["place_of_service"]
    if setting == "unplaced":
        if pos:
            raise t.error(n, "an 'unplaced' row names no place_of_service: the place decides it")
    elif not (pos.isdigit() and len(pos) == 2):
        raise t.error(n, f"place_of_service '{pos}' must be a two-digit CMS code")
    return Setting(setting, pos, r["display"])


def read_places_of_service(d: Path) -> dict[str, Setting]:
    """places_of_service.csv: CMS place of service code -> its setting (facility or not)."""
    t = Table(d, "places_of_service.csv", ("code", "name", "setting", "source"))
    found: dict[str, Setting] = {}
    for n, r in t.rows():
        code = t.require(n, r, "code")
        if not (code.isdigit() and len(code) == 2):
            raise t.error(n, f"code '{code}' must be a two-digit CMS place of service code")
        if code in found:
            raise t.error(n, f"code '{code}' is listed twice")
        found[code] = Setting(t.choice(n, r, "setting", SETTINGS), code, t.require(n, r, "name"))
    return found


def read_places(d: Path, codes: dict[str, Setting]) -> dict[tuple[str, str, str], Setting]:
    """places.csv: (element, system, code) -> the setting and place of service it names; a place of
    service must be one of places_of_service.csv, with the setting that table gives it."""
    t = Table(
        d,
        "places.csv",
        ("element", "system", "code", "display", "setting", "place_of_service", "source"),
    )
    found: dict[tuple[str, str, str], Setting] = {}
    for n, r in t.rows():
        element = t.choice(n, r, "element", set(PLACE_ELEMENTS))
        system = r["system"]
        if element == "Encounter.hospitalization":
            if system:
                raise t.error(n, "an Encounter.hospitalization row has no system")
            t.choice(n, r, "code", {"admitOrigin", "dischargeDisposition"})
        else:
            t.require(n, r, "system")
        key = (element, system, t.require(n, r, "code"))
        if key in found:
            raise t.error(n, f"{element} {system}|{key[2]} is listed twice")
        setting = place_setting(t, n, r)
        if setting.place_of_service:
            known = codes.get(setting.place_of_service)
            if known is None:
                raise t.error(
                    n,
                    f"place_of_service '{setting.place_of_service}' is not in "
                    "places_of_service.csv",
                )
            if known.setting != setting.setting:
                raise t.error(
                    n,
                    f"setting '{setting.setting}' disagrees with places_of_service.csv, "
                    f"which gives POS {setting.place_of_service} the setting '{known.setting}'",
                )
        found[key] = setting
    return found
