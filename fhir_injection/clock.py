"""The one clock, and FHIR instants as the sync reads and writes them.

Everything that stamps a run (``Claim.created``, the report's ``generated``, the state file's
``updated``) asks :func:`now`; tests and library callers pass their own time instead. The
engine never reads the clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo

from .errors import ConfigError

__all__ = ["format_instant", "minus", "now", "parse_instant", "today"]


def now() -> str:
    """This moment in UTC as a FHIR instant to the second, e.g. ``2026-11-30T07:05:28Z``."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def today(zone: tzinfo | None = None) -> date:
    """Today's date in the clinic's time zone (UTC when none is configured): the default of
    ``--as-of``, the day filing limits are counted to."""
    return datetime.now(zone or UTC).date()


def parse_instant(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"'{value}' is not an ISO 8601 instant (e.g. 2026-10-01T00:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise ConfigError(f"'{value}' needs a time zone (e.g. Z or +00:00)")
    return moment


def format_instant(moment: datetime) -> str:
    """Millisecond precision, as HAPI stores _lastUpdated."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def minus(instant: str, seconds: float) -> str:
    return format_instant(parse_instant(instant) - timedelta(seconds=seconds))
