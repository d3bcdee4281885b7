"""The run's configuration: the choices a billing team makes, read from a TOML file (``--config``).

See docs/configuration.md. This module reads the file; :mod:`fhir_injection.decision.practice`
builds the :class:`~fhir_injection.decision.practice.Config` from it and checks every value. The
rule tables themselves are :mod:`fhir_injection.rules`.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from .decision.practice import Config, config_from_toml
from .decision.ruleset import Rules
from .errors import ConfigError

__all__ = ["load_config"]


def load_config(path: str | Path | None, rules: Rules | None = None) -> Config:
    """Read a TOML config file (docs/configuration.md); None gives the defaults. ``rules``:
    the tables a ``[containers]`` HCPCS key must be a drugs.csv code of (default: the bundled
    mappings, read only when a HCPCS key is given).

    ::

        identifier_system = "urn:fhir-injection:claim"   # business identifier namespace
        billing_provider = "Organization/clinic-1"        # when the encounter names none
        jw_jz = true                                      # JZ/JW on Medicare single-dose drugs
        timezone = "America/New_York"                     # the clinic's IANA time zone
        sad_policy = "hold"                               # Medicare self-administered drug: hold | gy
        default_place_of_service = "11"                   # all our sites are offices (else unknown)
        as_of = 2026-11-30                                # the day treated as today (default: clock)
        [severity]
        missing-consent = "info"
        missing-site = "error"
        [distinct_modifier]
        medicare = "XS"
        [rendering_providers]                             # clinic Organization id, or Location/<id>
        clinic-1 = "dr-smith"                             # -> Practitioner id of its supervising
        "Location/suite-2" = "dr-jones"                   # physician or NPP (a Location's first)
        [places]                                          # the practice's places -> CMS POS
        "Location/hopd-2" = "19"                          # a Location or Organization id, or an
        "http://hl7.org/fhir/sid/us-npi|1234567893" = "11" # identifier system|value
        [filing_limits]                                   # per payer type: days, months or none
        medicaid = "180d"                                 # (default: mappings/filing_limits.csv)
        commercial = "90d"
        unknown = "12m"                                   # no payer type known (default: the longest)
        [containers]                                      # what the practice stocks, for JW/JZ
        "J3420" = "multi-dose"                            # a HCPCS code of drugs.csv: every product
        "00409-3795-01" = "single-dose"                   # an NDC (10/11 digits; before its code)

    ``[containers]`` says a container's kind only where no NDC row (packages.csv, the CMS
    crosswalk) does; a single-dose container's size still comes from those tables or
    Medication.amount (unknown: missing-package-size, as JW units cannot be computed).
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

    def drug_codes() -> Collection[str]:
        from .rules import load_rules

        return (rules if rules is not None else load_rules()).drugs

    return config_from_toml(data, f"config file {p}", drug_codes)
