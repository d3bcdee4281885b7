"""The run's configuration: the choices a billing team makes, read from a TOML file (``--config``).

See README "Configuration". The rule tables themselves are :mod:`fhir_injection.rules`.
"""

from __future__ import annotations

from pathlib import Path

from .decision.rules import REQUIRED_GAPS, Config
from .decision.zones import zone_named
from .errors import ConfigError


def load_config(path: str | Path | None) -> Config:
    """Read a TOML config file (see README "Configuration"); None gives the defaults.

    ::

        identifier_system = "urn:fhir-injection:claim"   # business identifier namespace
        billing_provider = "Organization/clinic-1"        # when the encounter names none
        jw_jz = true                                      # JZ/JW on Medicare single-dose drugs
        timezone = "America/New_York"                     # the clinic's IANA time zone
        [severity]
        missing-consent = "info"
        missing-site = "error"
        [distinct_modifier]
        medicare = "XS"
    """
    import tomllib

    if path is None:
        return Config()
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p}: {exc}") from None
    known = {
        "severity",
        "distinct_modifier",
        "jw_jz",
        "identifier_system",
        "billing_provider",
        "timezone",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"config file {p}: unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    severity = data.get("severity", {})
    unknown_gaps = sorted(set(severity) - set(REQUIRED_GAPS))
    if unknown_gaps:
        raise ConfigError(
            f"config file {p}: [severity] names unknown gap code(s) {', '.join(unknown_gaps)}"
        )
    system = data.get("identifier_system", Config.identifier_system)
    if not isinstance(system, str) or ":" not in system or "|" in system:
        raise ConfigError(f"config file {p}: identifier_system must be a URI without '|'")
    timezone = data.get("timezone")
    if timezone is not None and (not isinstance(timezone, str) or zone_named(timezone) is None):
        raise ConfigError(
            f"config file {p}: timezone {timezone!r} is not an IANA time zone name "
            "(such as 'America/New_York'; see https://www.iana.org/time-zones)"
        )
    return Config(
        severity=dict(severity),
        distinct_modifier=dict(data.get("distinct_modifier", {})),
        jw_jz=bool(data.get("jw_jz", True)),
        identifier_system=system,
        billing_provider=data.get("billing_provider"),
        timezone=timezone,
    )
