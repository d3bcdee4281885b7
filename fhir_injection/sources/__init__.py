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
from collections.abc import Callable
from typing import Any

_PULLS: dict[str, Any] = {}


class Pull:
    """What a sync run asks of every pull besides its pages; each hook has a do-nothing default, so
    a pull without state of its own (the search) writes none of them.

    """

    name = ""

    @property
    def ordered(self) -> bool:
        """Do pages come in ``_lastUpdated`` order, so the run's mark may move after each page?"""
        return True

    def bind(self, memory: dict[str, Any], save: Callable[[], None]) -> None:
        """The source's state-file entry and how to save it (a pull that resumes: export, crawl)."""

    def context_reason(self) -> str:
        """Where the context came from, for the first progress line and the report ('' = nothing
        to add to why this pull)."""
        return ""

    def summary(self) -> dict[str, Any]:
        """Figures for the report's ``pull`` entry."""
        return {}

    def withdrawn(self) -> list[tuple[str, str | None, str]]:
        """Administrations deleted at the source, to void now: (id, patient id, where read)."""
        return []


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
