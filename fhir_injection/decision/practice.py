"""The practice's configuration: :class:`Config`, built and checked here.

The choices a billing team makes for a run (gap severities, modifiers, identifiers, the clinic's
time zone, the practice's profile of its places and containers) are the facts a claim line may
take from "the practice" (basis ``practice``). :func:`config_from_toml` builds a Config from the
table of a ``--config`` TOML file and :meth:`Config.__post_init__` checks every value, so a file and
a Python caller meet the same checks and messages. Reading the file is
:func:`fhir_injection.config.load_config`'s job: nothing here opens a file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any

from ..errors import ConfigError
from .payer_tables import FilingLimit, parse_filing_limit
from .ruleset import CONTAINERS, PAYER_TYPES, REQUIRED_GAPS, SAD_POLICIES, SEVERITIES
from .units import ndc11
from .zones import zone_named

__all__ = ["Config", "SETTINGS_KNOWN", "config_from_toml", "parse_as_of"]

#: the keys of a practice's [containers] profile: a HCPCS Level II code, an 11-digit NDC
_HCPCS_KEY = re.compile(r"^[A-Z][0-9]{4}$")
_NDC11_KEY = re.compile(r"^[0-9]{11}$")
#: the distinct-procedure modifiers a payer type may be given: 59 and its X{EPSU} subsets (CMS MLN
#: 'Proper Use of Modifiers 59 & -X{EPSU}'; NCCI Policy Manual ch.1)
_DISTINCT_MODIFIERS = ("59", "XE", "XP", "XS", "XU")
#: the settings a ``--config`` file may give (docs/configuration.md)
SETTINGS_KNOWN = frozenset(
    {
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
)


@dataclass(frozen=True)
class Config:
    """Run-time choices a billing team makes; defaults are documented in docs/configuration.md.

    Every value is checked here, however the Config is made (:func:`config_from_toml` for a
    ``--config`` file, or a Python caller); a bad one raises :class:`ConfigError` naming it.

    ``severity`` overrides gap severities (only ``missing-consent`` and ``missing-site``
    are meant to be tuned, but any gap may be). ``distinct_modifier`` overrides the modifiers.csv
    distinct-procedure row per payer type, e.g. ``{"medicare": "XS"}``. ``timezone`` is the clinic's
    IANA time zone (``America/New_York``), used for dates of service when the data names none
    (:mod:`.localtime`); :attr:`zone` is that zone, looked up once here.
    """

    severity: Mapping[str, str] = field(default_factory=dict)
    distinct_modifier: Mapping[str, str] = field(default_factory=dict)
    jw_jz: bool = True
    identifier_system: str = "urn:fhir-injection:claim"
    billing_provider: str | None = None  # "Organization/<id>" used when the encounter names none
    timezone: str | None = None  # IANA name; None: an instant's date is its own offset's
    #: a Medicare self-administered drug: "hold" (gap, held) or "gy" (billed with GY for a denial)
    sad_policy: str = "hold"
    #: the billing clinic's Organization id (``clinic-1`` or ``Organization/clinic-1``) or one of
    #: its Locations (``Location/suite-2``, an Encounter.location) -> Practitioner id of the
    #: supervising physician or NPP there: the rendering provider when the encounter names no
    #: eligible one (a Location's before the Organization's)
    rendering_providers: Mapping[str, str] = field(default_factory=dict)
    #: the practice's profile of its places (README "Configuration", [places]): "Location/<id>",
    #: "Organization/<id>" or an identifier "system|value" -> its CMS place of service; given, it
    #: is what that place is (basis 'practice')
    places: Mapping[str, str] = field(default_factory=dict)
    #: the place of service of the practice's sites when nothing in the record places a visit
    #: (a practice whose sites are all offices says "11"); None: such a visit is unknown-setting
    default_place_of_service: str | None = None
    #: the day the run treats as today (``--as-of``; the CLI's default is the clock's date): a
    #: service whose filing limit ended before it is ``past-filing-limit``. None: no day is known,
    #: so deadlines are given but nothing is judged past them (the engine never reads the clock)
    as_of: date | None = None
    #: payer type -> its filing limit, overriding filing_limits.csv (``[filing_limits]``); None:
    #: no limit for that payer type. ``unknown``: the limit the practice assumes when the payer type
    #: is not known (no Coverage, or one that does not say); without it the longest of any payer type
    filing_limits: Mapping[str, FilingLimit | None] = field(default_factory=dict)
    #: the practice's profile of what it stocks (README "Configuration", [containers]): a HCPCS
    #: code (every product of it the practice gives) or an 11-digit NDC -> "single-dose" or
    #: "multi-dose"; the container's kind when no NDC row (packages.csv, the CMS crosswalk) says it,
    #: an NDC's before its code's (basis 'practice'). The size still comes from the record or tables
    containers: Mapping[str, str] = field(default_factory=dict)
    zone: tzinfo | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        problem = next(_problems(self), None)
        if problem is not None:
            raise ConfigError(problem)
        if self.timezone is not None:
            object.__setattr__(self, "zone", zone_named(self.timezone))


def _problems(config: Config):
    """What is wrong with ``config``'s values, first problem first."""
    yield from _gap_problems(config.severity)
    system = config.identifier_system
    if not isinstance(system, str) or ":" not in system or "|" in system:
        yield "identifier_system must be a URI without '|'"
    timezone = config.timezone
    if timezone is not None and (not isinstance(timezone, str) or zone_named(timezone) is None):
        yield (
            f"timezone {timezone!r} is not an IANA time zone name "
            "(such as 'America/New_York'; see https://www.iana.org/time-zones)"
        )
    if config.sad_policy not in SAD_POLICIES:
        yield f"sad_policy {config.sad_policy!r} is not one of hold, gy"
    yield from _place_problems(config.rendering_providers, config.places)
    pos = config.default_place_of_service
    if pos is not None and not _is_pos(pos):
        yield (f'default_place_of_service {pos!r} is not a two-digit CMS place of service ("11")')
    if config.as_of is not None and (
        not isinstance(config.as_of, date) or isinstance(config.as_of, datetime)
    ):
        yield f"as_of is {config.as_of!r}, expected a date such as 2026-11-30"
    yield from _limit_problems(config.filing_limits)
    for key, kind in config.containers.items():
        if not (_HCPCS_KEY.match(key) or _NDC11_KEY.match(key)):
            yield f"container for '{key}': not a HCPCS code (J3420) or an 11-digit NDC"
        elif kind not in CONTAINERS:
            yield f"container for '{key}' is {kind!r}, expected single-dose or multi-dose"
    for payer_type, mod in config.distinct_modifier.items():
        if mod not in _DISTINCT_MODIFIERS:
            yield (
                f"distinct modifier for '{payer_type}' is '{mod}', expected "
                f"{', '.join(_DISTINCT_MODIFIERS[:-1])} or {_DISTINCT_MODIFIERS[-1]}"
            )


def _gap_problems(severity: Mapping[str, str]):
    unknown_gaps = sorted(set(severity) - set(REQUIRED_GAPS))
    if unknown_gaps:
        yield f"[severity] names unknown gap code(s) {', '.join(unknown_gaps)}"
    for code, sev in severity.items():
        if sev not in SEVERITIES:
            yield f"severity for gap '{code}' is '{sev}', expected error, warning or info"


def _is_pos(value: object) -> bool:
    """A CMS place of service code: two digits, as text ("11")."""
    return isinstance(value, str) and value.isdigit() and len(value) == 2


def _place_problems(rendering: Mapping[str, str], places: Mapping[str, str]):
    if not isinstance(rendering, Mapping):
        yield (
            "[rendering_providers] maps an Organization or Location to a Practitioner id "
            '(clinic-1 = "dr-smith", "Location/suite-2" = "dr-jones")'
        )
        return
    for key, value in rendering.items():
        problem = _rendering_key_problem(key, value)
        if problem:
            yield f"[rendering_providers] key {key!r}: {problem}"
    if not isinstance(places, Mapping) or not all(
        isinstance(k, str)
        and (k.startswith(("Location/", "Organization/")) or "|" in k)
        and _is_pos(v)
        for k, v in places.items()
    ):
        yield (
            '[places] maps a place ("Location/<id>", "Organization/<id>" or an identifier '
            '"system|value") to a two-digit CMS place of service ("11")'
        )


def _limit_problems(limits: Mapping[str, FilingLimit | None]):
    for payer_type, limit in limits.items():
        if payer_type not in PAYER_TYPES and payer_type != "unknown":
            yield (
                f"[filing_limits] names '{payer_type}', not a payer type "
                f"(expected one of {', '.join(sorted(PAYER_TYPES | {'unknown'}))})"
            )
        elif limit is not None and not isinstance(limit, FilingLimit):
            yield f"filing limit for '{payer_type}' is {limit!r}, expected a FilingLimit"


def _rendering_key_problem(key: str, value: object) -> str | None:
    """What is wrong with one ``[rendering_providers]`` entry, or None: the key is an Organization
    id (``clinic-1``, or ``Organization/clinic-1``) or a Location id (``Location/suite-2``, the
    Encounter.location), the value a Practitioner id (``dr-smith`` or ``Practitioner/dr-smith``)."""
    kind, _, rest = key.rpartition("/") if isinstance(key, str) else ("?", "", "")
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


def config_from_toml(
    data: Mapping[str, Any], where: str, drug_codes: Callable[[], Collection[str]]
) -> Config:
    """The Config a ``--config`` file's table gives (docs/configuration.md): each setting's shape
    read (a date, ``"180d"``, an NDC in any of its forms), then every value checked by
    :class:`Config`. ``where`` begins each error (``config file practice.toml``);
    ``drug_codes`` gives drugs.csv's HCPCS codes, asked for only when a ``[containers]`` key is
    one."""
    unknown = sorted(set(data) - SETTINGS_KNOWN)
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(SETTINGS_KNOWN))}"
        )
    tables = {}
    for name in ("severity", "distinct_modifier", "rendering_providers", "places"):
        table = data.get(name, {})
        tables[name] = dict(table) if isinstance(table, Mapping) else table
    try:
        return Config(
            severity=tables["severity"],
            distinct_modifier=tables["distinct_modifier"],
            jw_jz=bool(data.get("jw_jz", True)),
            identifier_system=data.get("identifier_system", Config.identifier_system),
            billing_provider=data.get("billing_provider"),
            timezone=data.get("timezone"),
            sad_policy=data.get("sad_policy", Config.sad_policy),
            rendering_providers=tables["rendering_providers"],
            places=tables["places"],
            default_place_of_service=data.get("default_place_of_service"),
            as_of=_read_as_of(data.get("as_of"), "as_of"),
            filing_limits=_read_filing_limits(data.get("filing_limits", {})),
            containers=_read_containers(data.get("containers", {}), drug_codes),
        )
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _read_as_of(value: object, what: str) -> date | None:
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
    parsed = _read_as_of(value, "--as-of")
    assert parsed is not None
    return parsed


def _read_filing_limits(table: object) -> dict[str, FilingLimit | None]:
    """``[filing_limits]``: payer type -> "180d", "12m" or "none"."""
    if not isinstance(table, Mapping):
        raise ConfigError('[filing_limits] maps a payer type to a limit (medicaid = "180d")')
    limits: dict[str, FilingLimit | None] = {}
    for payer_type, text in table.items():
        if payer_type not in PAYER_TYPES and payer_type != "unknown":
            raise ConfigError(next(_limit_problems({payer_type: None})))
        try:
            limits[payer_type] = parse_filing_limit(text)
        except ValueError as exc:
            raise ConfigError(f"[filing_limits] {payer_type}: {exc}") from None
    return limits


def _read_containers(table: object, drug_codes: Callable[[], Collection[str]]) -> dict[str, str]:
    """``[containers]``: a HCPCS code of drugs.csv or an NDC (normalised to 11 digits, as
    :func:`.units.ndc11`) -> "single-dose" or "multi-dose"."""
    if not isinstance(table, Mapping):
        raise ConfigError(
            "[containers] maps a HCPCS code or an NDC to single-dose or multi-dose "
            '("J3420" = "multi-dose")'
        )
    containers: dict[str, str] = {}
    for key, kind in table.items():
        where = f"[containers] key {key!r}"
        if not isinstance(kind, str) or kind not in CONTAINERS:
            raise ConfigError(f"{where}: {kind!r} is not single-dose or multi-dose")
        code = key.strip().upper()
        if _HCPCS_KEY.match(code):
            if code not in drug_codes():
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
