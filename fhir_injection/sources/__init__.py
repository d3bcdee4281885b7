"""Where administrations come from: an export folder, or a FHIR server.

- :mod:`.folder` reads a Bulk Data export folder (NDJSON, gzip, Bundles; its layout is
  :mod:`.export`, its files are read by :mod:`.ndjson`) into the :mod:`.spool`, which hands the
  offline job one patient at a time;
- :mod:`.records` holds the checks every record passes, whichever way it came;
- a server is read by a *pull*: a class with a ``name`` that yields pages of administrations
  (:class:`.server.SearchPull` searches ``MedicationAdministration?_lastUpdated=ge…``), with
  :class:`.server.Resolver` fetching what they point to.

A new way to pull (a Bulk Data export, a per-patient crawl) is a new module here whose class is
decorated with :func:`pull`; :func:`pull_named` finds it by the name a user gives.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

_PULLS: dict[str, Any] = {}


def pull(cls):
    """Register a pull class under its ``name``."""
    _PULLS[cls.name] = cls
    return cls


def _import_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def pull_names() -> list[str]:
    """The names of every registered pull (``--pull`` offers them, and ``auto``)."""
    _import_all()
    return sorted(_PULLS)


def pull_named(name: str):
    """The pull class called ``name`` from any module of this package."""
    if name not in _PULLS:
        _import_all()
    if name not in _PULLS:
        from ..errors import ConfigError

        raise ConfigError(f"no way to pull called '{name}'; known: {', '.join(sorted(_PULLS))}")
    return _PULLS[name]
