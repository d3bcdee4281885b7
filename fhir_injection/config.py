"""The run's configuration: the choices a billing team makes, read from a TOML file (``--config``).

See docs/configuration.md. The rule tables themselves are :mod:`fhir_injection.rules`.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

from .decision.ruleset import (
    CONTAINERS,
    PAYER_TYPES,
    REQUIRED_GAPS,
    SAD_POLICIES,
    Config,
    FilingLimit,
    Rules,
    parse_filing_limit,
)
from .decision.units import ndc11
from .decision.zones import zone_named
from .errors import ConfigError


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
    known = {
        "severity",
        "distinct_modifier",
        "jw_jz",
        "identifier_system",
        "billing_provider",
        "timezone",
        "sad_policy",
        "rendering_providers",
        "places",
        "default_place_of_service",
        "as_of",
        "filing_limits",
        "containers",
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
    sad_policy = data.get("sad_policy", Config.sad_policy)
    if sad_policy not in SAD_POLICIES:
        raise ConfigError(f"config file {p}: sad_policy {sad_policy!r} is not one of hold, gy")
    rendering = data.get("rendering_providers", {})
    if not isinstance(rendering, dict):
        raise ConfigError(
            f"config file {p}: [rendering_providers] maps an Organization or Location to a "
            'Practitioner id (clinic-1 = "dr-smith", "Location/suite-2" = "dr-jones")'
        )
    for key, value in rendering.items():
        problem = _rendering_key_problem(key, value)
        if problem:
            raise ConfigError(f"config file {p}: [rendering_providers] key {key!r}: {problem}")
    places = data.get("places", {})
    if not isinstance(places, dict) or not all(
        isinstance(k, str)
        and (k.startswith(("Location/", "Organization/")) or "|" in k)
        and isinstance(v, str)
        and v.isdigit()
        and len(v) == 2
        for k, v in places.items()
    ):
        raise ConfigError(
            f'config file {p}: [places] maps a place ("Location/<id>", "Organization/<id>" or an '
            'identifier "system|value") to a two-digit CMS place of service ("11")'
        )
    default_pos = data.get("default_place_of_service")
    if default_pos is not None and not (
        isinstance(default_pos, str) and default_pos.isdigit() and len(default_pos) == 2
    ):
        raise ConfigError(
            f"config file {p}: default_place_of_service {default_pos!r} is not a two-digit CMS "
            'place of service ("11")'
        )
    as_of = _as_of(data.get("as_of"), f"config file {p}: as_of")
    filing_limits = _filing_limits(data.get("filing_limits", {}), p)
    containers = _containers(data.get("containers", {}), p, rules)
    return Config(
        severity=dict(severity),
        distinct_modifier=dict(data.get("distinct_modifier", {})),
        jw_jz=bool(data.get("jw_jz", True)),
        identifier_system=system,
        billing_provider=data.get("billing_provider"),
        timezone=timezone,
        sad_policy=sad_policy,
        rendering_providers=dict(rendering),
        places=dict(places),
        default_place_of_service=default_pos,
        as_of=as_of,
        filing_limits=filing_limits,
        containers=containers,
    )


def _as_of(value: object, what: str) -> date | None:
    """A TOML date (``as_of = 2026-11-30``) or an ISO date text; None when not given."""
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"{what} is {value!r}, expected a date such as 2026-11-30")


def parse_as_of(value: str) -> date:
    """``--as-of DATE``: the day the run treats as today."""
    parsed = _as_of(value, "--as-of")
    assert parsed is not None
    return parsed


def _filing_limits(table: object, p: Path) -> dict[str, FilingLimit | None]:
    """``[filing_limits]``: payer type -> "180d", "12m" or "none"."""
    if not isinstance(table, dict):
        raise ConfigError(
            f'config file {p}: [filing_limits] maps a payer type to a limit (medicaid = "180d")'
        )
    limits: dict[str, FilingLimit | None] = {}
    for payer_type, text in table.items():
        if payer_type not in PAYER_TYPES and payer_type != "unknown":
            raise ConfigError(
                f"config file {p}: [filing_limits] names '{payer_type}', not a payer type "
                f"(expected one of {', '.join(sorted(PAYER_TYPES | {'unknown'}))})"
            )
        try:
            limits[payer_type] = parse_filing_limit(text)
        except ValueError as exc:
            raise ConfigError(f"config file {p}: [filing_limits] {payer_type}: {exc}") from None
    return limits


def _containers(table: object, p: Path, rules: Rules | None) -> dict[str, str]:
    """``[containers]``: a HCPCS code of drugs.csv or an NDC (normalised to 11 digits, as
    :func:`.decision.units.ndc11`) -> "single-dose" or "multi-dose"."""
    if not isinstance(table, dict):
        raise ConfigError(
            f"config file {p}: [containers] maps a HCPCS code or an NDC to single-dose or "
            'multi-dose ("J3420" = "multi-dose")'
        )
    containers: dict[str, str] = {}
    for key, kind in table.items():
        where = f"config file {p}: [containers] key {key!r}"
        if not isinstance(kind, str) or kind not in CONTAINERS:
            raise ConfigError(f"{where}: {kind!r} is not single-dose or multi-dose")
        code = key.strip().upper()
        if _HCPCS.match(code):
            if rules is None:
                from .rules import load_rules

                rules = load_rules()
            if code not in rules.drugs:
                raise ConfigError(f"{where}: HCPCS code {code} is not in drugs.csv")
        else:
            normal = ndc11(key)
            if normal is None:
                raise ConfigError(
                    f"{where}: not a HCPCS code of drugs.csv (J3420) or an NDC (00409-3795-01, "
                    "4-4-2, 5-3-2 or 5-4-1 with hyphens, or 11 digits)"
                )
            code = normal
        if code in containers:
            raise ConfigError(f"{where}: {code} is given twice")
        containers[code] = kind
    return containers


_HCPCS = re.compile(r"^[A-Z][0-9]{4}$")


def _rendering_key_problem(key: str, value: object) -> str | None:
    """What is wrong with one ``[rendering_providers]`` entry, or None: the key is an Organization
    id (``clinic-1``, or ``Organization/clinic-1``) or a Location id (``Location/suite-2``, the
    Encounter.location), the value a Practitioner id (``dr-smith`` or ``Practitioner/dr-smith``)."""
    kind, _, rest = key.rpartition("/")
    if not rest or kind not in ("", "Organization", "Location") or "/" in kind:
        return (
            "is not an Organization id (clinic-1, Organization/clinic-1) or a Location id "
            "(Location/suite-2)"
        )
    if not isinstance(value, str) or not value:
        return f'value {value!r} is not a Practitioner id ("dr-smith")'
    who, _, ident = value.rpartition("/")
    if not ident or who not in ("", "Practitioner"):
        return f'value {value!r} is not a Practitioner id ("dr-smith" or "Practitioner/dr-smith")'
    return None
