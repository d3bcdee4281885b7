"""The clinic's local day: on which calendar day, where the injection was given, an instant falls.

Some systems send every instant in UTC (Oracle Health, Epic): an injection given at 19:30 EDT on
1 October arrives as ``2026-10-02T00:30:00Z``. The date of service is the clinic's local date
(CMS-1500 item 24A), and the same-day rules (E/M, distinct modifier, MUE) count the clinic's day,
so every date the decision takes from an instant is read in the clinic's zone, found in this order:

1. when the administration's own instant is in UTC, the offset the encounter's ``period`` carries
   (``2026-10-01T19:00:00-04:00`` gives −04:00; a UTC period says nothing of the clinic);
2. an IANA time zone on the encounter's Location (``Encounter.location``) or, else, on its
   Organization (``Encounter.serviceProvider``): the extension
   ``http://hl7.org/fhir/StructureDefinition/timezone`` (FHIR extensions pack; Medplum reads it from
   Location, Practitioner and Device) or the R4 core ``…/tz-code`` (Canvas writes it on resources),
   ``valueCode`` e.g. ``America/New_York``; a code that names no zone is passed over;
3. the configured ``timezone`` (:attr:`~fhir_injection.decision.practice.Config.zone`).

With none of them an instant keeps its own offset's date, as it was written. A date, or a
date-time without an offset, is already a local value and is never converted. Zones come from
the data or the Config, never from the machine: :func:`zone_named` refuses ``localtime``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, tzinfo
from typing import TYPE_CHECKING, overload
from zoneinfo import ZoneInfo

from ..fhir.resources import MAPPING
from .context import AdministrationPointers, Context, EncounterPointers
from .elements import as_date, parse_time, period
from .zones import zone_named

if TYPE_CHECKING:
    from .practice import Config

__all__ = [
    "TIMEZONE_EXTENSIONS",
    "clinic_zone",
    "effective_of",
    "local",
    "resource_zone",
    "service_date",
]

#: The extensions that name a resource's IANA time zone (``valueCode``).
TIMEZONE_EXTENSIONS = frozenset(
    {
        "http://hl7.org/fhir/StructureDefinition/timezone",  # extensions pack (R5 core), on R4 too
        "http://hl7.org/fhir/StructureDefinition/tz-code",  # R4 core extension
    }
)


def resource_zone(resource: Mapping | None) -> ZoneInfo | None:
    """The time zone a Location or Organization names in a time-zone extension, if any."""
    if resource is None:
        return None
    extensions = resource.get("extension")
    if not isinstance(extensions, list):
        return None
    for ext in extensions:
        if isinstance(ext, MAPPING) and ext.get("url") in TIMEZONE_EXTENSIONS:
            value = ext.get("valueCode")
            if isinstance(value, str) and (zone := zone_named(value)) is not None:
                return zone
    return None


def _period_offset(encounter: Mapping) -> tzinfo | None:
    """The offset the encounter's period is written in, when it is not UTC."""
    for moment in period(encounter):
        if isinstance(moment, datetime) and moment.utcoffset():
            return moment.tzinfo
    return None


def clinic_zone(
    when: datetime | date | None,
    encounter: Mapping | None,
    encounter_refs: EncounterPointers | None,
    ctx: Context,
    config: Config,
) -> tzinfo | None:
    """The zone an administration's dates are read in (module docstring); None: as written."""
    if encounter is not None:
        if isinstance(when, datetime) and when.tzinfo is not None and not when.utcoffset():
            offset = _period_offset(encounter)
            if offset is not None:
                return offset
        if encounter_refs is not None:
            zone = _site_zone(encounter_refs, ctx)
            if zone is not None:
                return zone
    return config.zone


def _site_zone(refs: EncounterPointers, ctx: Context) -> tzinfo | None:
    """The zone the encounter's Locations, else its serviceProvider, name: a function of those
    references, kept in Context.memo (the same clinics, administration after administration)."""
    site = (*refs.locations, refs.provider)
    key = ("zone", site) if all(r is None or type(r) is str for r in site) else None
    if key is not None and (entry := ctx.memo.get(key)) is not None:
        return entry[0]
    found = None
    for reference in refs.locations:
        found = resource_zone(ctx.get(reference, "Location"))
        if found is not None:
            break
    else:
        found = resource_zone(ctx.get(refs.provider, "Organization"))
    if key is not None:
        ctx.memo[key] = (found,)
    return found


@overload
def local(moment: date, zone: tzinfo | None) -> date: ...
@overload
def local(moment: None, zone: tzinfo | None) -> None: ...
def local(moment: date | None, zone: tzinfo | None) -> date | None:
    """``moment`` as the clinic's wall time: an instant converted to ``zone``; anything else as is."""
    if zone is not None and isinstance(moment, datetime) and moment.tzinfo is not None:
        return moment.astimezone(zone)
    return moment


def effective_of(admin: Mapping):
    """effective[x] as written: effectiveDateTime, else effectivePeriod.start."""
    effective = admin.get("effectiveDateTime")
    if effective is None and isinstance(span := admin.get("effectivePeriod"), MAPPING):
        effective = span.get("start")
    return effective


def service_date(admin: Mapping, ctx: Context, config: Config) -> date | None:
    """The clinic's local day of an administration, as the decision reads it from what ``ctx``
    holds (for a source that groups administrations by day before they are decided)."""
    when = parse_time(effective_of(admin))
    if when is None:
        return None
    encounter = ctx.get(AdministrationPointers(admin).encounter, "Encounter")
    refs = EncounterPointers(encounter) if encounter is not None else None
    return as_date(local(when, clinic_zone(when, encounter, refs, ctx, config)))
