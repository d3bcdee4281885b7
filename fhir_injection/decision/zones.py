"""IANA time zones by name, looked up once: the one place the decision turns a name into a zone
(a Location's or Organization's time-zone extension, the configured ``timezone``)."""

from __future__ import annotations

import re
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["zone_named"]

_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")


#: Names in the zone folders that are not a place's zone: the machine's own, and helper files.
_NOT_A_PLACE = frozenset({"localtime", "posixrules", "Factory"})


@lru_cache(maxsize=256)  # one ZoneInfo per name for the run, however many administrations name it
def zone_named(name: str) -> ZoneInfo | None:
    """The IANA time zone called ``name`` (``America/New_York``); None when there is none."""
    if not _ZONE_NAME.fullmatch(name) or name in _NOT_A_PLACE:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder such as "America"
        return None
