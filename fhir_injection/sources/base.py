"""What a pull is: the class every way of reading administrations from a FHIR server derives from,
the options it is given, and the registry that finds it by the name a user types (``--pull``).

A live sync (:mod:`fhir_injection.jobs.sync`) asks a pull for pages of administrations and does the
rest itself: it looks up what they point to with the run's :class:`~.resolver.Resolver`, decides,
posts, and moves the run's mark. A pull therefore writes two methods, :meth:`Pull.for_run` (build
it for a run) and :meth:`Pull.pages` (the pages); every other method has a default that does
nothing, for a pull with no state of its own.

A new pull is one module in ``fhir_injection/sources/`` whose class derives from :class:`Pull`,
has a ``name`` and is decorated with :func:`pull` (docs/extending.md walks through one); a pull
registered from elsewhere (a test, a plug-in module imported before the run) is found the same way.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ..errors import ConfigError, OnProblem

if TYPE_CHECKING:
    from ..fhir.client import FhirClient
    from .resolver import Resolver

__all__ = ["Page", "Pull", "PullOptions", "pull", "pull_named", "pull_names"]

#: a page the sync hands a pull's :meth:`Pull.pages`: the administrations, in order
Page = list[dict]


@dataclass(frozen=True)
class PullOptions:
    """Everything a pull may read about the run it serves, in one typed, read-only object.

    The sync builds it from its own options once the run's window is known (so ``since`` and
    ``full`` are what the run reads, after the read-only trial and the first sync's filing window
    have set them). A pull reads the fields it needs and ignores the rest.
    """

    #: administrations a page at most (the search's ``_count``; the export's page of patients)
    page_size: int = 500
    #: seconds read again before the mark, for late writers (``_lastUpdated=ge<mark − overlap>``)
    overlap_seconds: float = 300
    #: the lower bound the user or the first sync's filing window set (an instant), or None
    since: str | None = None
    #: read everything, ignoring what earlier runs kept (``--full``)
    full: bool = False
    #: the pull asked for (``--pull``): a registered name, or ``auto`` (probe the server once)
    pull: str = "search"
    #: the crawl's cohort: one Patient id a line (``--patients``)
    patients_file: str | None = None
    #: the crawl's cohort: the Patient resources of an export folder (``--cohort``)
    cohort_dir: str | None = None
    #: the crawl's parallel patient searches (``--concurrency``)
    concurrency: int = 4
    #: the crawl's context export: ``Group/<id>/$export`` (``--group``), else Patient level
    group: str | None = None
    #: the read-only trial (a folder target): GET only, so no export job is started on the server
    read_only: bool = False
    #: the sync's state file; a pull keeps its working files beside it (``<state>.export/``)
    state_path: str = ".fhir-injection-state.json"
    #: the longest wait between status checks of a Bulk Data export, in seconds
    max_poll_wait: float = 120.0

    @property
    def fresh(self) -> bool:
        """Does the run start over (``--full`` or ``--since``), so a pull's own memory is not used?"""
        return bool(self.full or self.since)


P = TypeVar("P", bound="Pull")


class Pull:
    """A way of reading administrations from a FHIR server, page by page.

    Subclasses set :attr:`name` and write :meth:`for_run` and :meth:`pages`; the other methods are
    optional hooks whose defaults do nothing, which is right for a pull without state of its own
    (the population search).
    """

    #: the name ``--pull`` and the report's ``summary.pull.strategy`` use; unique among pulls
    name: ClassVar[str] = ""

    @classmethod
    def for_run(
        cls: type[P],
        client: FhirClient,
        resolver: Resolver,
        options: PullOptions,
        on_problem: OnProblem,
        state: dict[str, Any],
        progress: Callable[[str], None] | None,
    ) -> P:
        """The pull a sync run asks for.

        Args:
            client: the source server (its CapabilityStatement already read).
            resolver: the run's look-ups and their cache; a pull that reads resources besides the
                administrations (an ``_include``, an export) hands them to
                :meth:`~.resolver.Resolver.remember` so they are not asked for again.
            options: the run's options.
            on_problem: where a bad record goes (reported by id, the run goes on).
            state: the source's entry of the state file (a pull that remembers per-patient
                windows keeps them here; saved with the run's mark).
            progress: one-line progress messages for the operator (ids and counts only), or None.
        """
        raise NotImplementedError(f"{cls.__name__} does not say how it is built for a run")

    def pages(
        self,
        since: str | None,
        recent: Mapping[str, list],
        mark: Callable[[], str | None],
        numbered_from: int = 0,
    ) -> Iterator[Page]:
        """The administrations to decide, a page at a time (a page may be empty).

        Args:
            since: read what changed from this instant on (``mark − overlap``), None for everything.
            recent: administration id → [versionId or lastUpdated, lastUpdated] already posted
                inside the overlap window: a pull may skip those at the same version.
            mark: the run's mark so far (the newest ``lastUpdated`` posted), for a pull that must
                start again (an expired paging link).
            numbered_from: pages the run has counted already (a retry page), for messages.
        """
        raise NotImplementedError(f"{type(self).__name__} yields no pages")

    @property
    def ordered(self) -> bool:
        """Do pages come in ``_lastUpdated`` order, so the run's mark may be saved after each page?
        When False the mark moves only when the whole run completes."""
        return True

    def bind(self, memory: dict[str, Any], save: Callable[[], None]) -> None:
        """The source's state-file entry and how to save it, for a pull that resumes (an export's
        status URL, a finished download)."""

    def known_siblings(self, page: Page) -> list[dict] | None:
        """The same patients' administrations of the same days that this page's pull already read
        (the same-day rules need them); None when the run should search for them itself."""
        return None

    def withdrawn(self) -> list[tuple[str, str | None, str]]:
        """Administrations deleted at the source, to void now: (id, patient id, where read)."""
        return []

    def context_reason(self) -> str:
        """Where the pull's context comes from, for the first progress line and the report
        ('' = nothing to add)."""
        return ""

    def summary(self) -> dict[str, Any]:
        """Figures for the report's ``summary.pull`` entry (counts only, no PHI)."""
        return {}


_PULLS: dict[str, type[Pull]] = {}


def pull(cls: type[P]) -> type[P]:
    """Class decorator: register a pull under its ``name`` (a name registered twice is an error)."""
    if not cls.name or cls.name == "auto":
        raise ConfigError(f"pull class {cls.__name__} needs a name other than '' and 'auto'")
    known = _PULLS.get(cls.name)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise ConfigError(f"two pulls called '{cls.name}': {known.__name__} and {cls.__name__}")
    _PULLS[cls.name] = cls
    return cls


def _import_all() -> None:
    """Import every module of :mod:`fhir_injection.sources`, so their pulls register."""
    package = importlib.import_module(__package__ or "fhir_injection.sources")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


def pull_names() -> list[str]:
    """The names of every registered pull (``--pull`` offers them, and ``auto``)."""
    _import_all()
    return sorted(_PULLS)


def pull_named(name: str) -> type[Pull]:
    """The pull class called ``name``; a name no pull has is a :class:`~fhir_injection.errors.ConfigError`."""
    if name not in _PULLS:
        _import_all()
    if name not in _PULLS:
        raise ConfigError(f"no way to pull called '{name}'; known: {', '.join(sorted(_PULLS))}")
    return _PULLS[name]
