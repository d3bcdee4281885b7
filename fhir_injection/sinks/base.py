"""What a sink is: where a run's Claims and Tasks go, the options it is given, and the registry
that finds it by name.

A run hands its sink the decisions of one page (a live sync: a page of the pull; a folder run: one
patient) and the sink says what became of each administration's Claim and Task; the run writes the
report from that. The calls, in order, for every page:

1. :meth:`Sink.begin_page`;
2. :meth:`Sink.lookups` / :meth:`Sink.take`: searches the sink needs answered before it can plan
   (the server sink's Claims and Tasks already there), which a live sync sends in the same batch
   as its own look-ups (:func:`~fhir_injection.sources.resolver.gather`);
3. :meth:`Sink.plan` then :meth:`Sink.send`;

and once at the end :meth:`Sink.commit` (the run completed) or :meth:`Sink.abort` (it failed).
Only :meth:`Sink.for_run` and :meth:`Sink.plan` must be written; the rest default to doing nothing.

The sinks: ``server`` (:mod:`.poster`, a live sync's target server), ``trial`` (:mod:`.trial`, the
read-only trial's folder) and ``folder`` (:mod:`.outputs`, a folder run's outputs). A new sink is
one module in ``fhir_injection/sinks/`` whose class derives from :class:`Sink`, has a ``name`` and
is decorated with :func:`sink` (docs/extending.md walks through one).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from .. import fastjson
from ..errors import ConfigError
from ..fhir.resources import reference_of

if TYPE_CHECKING:
    from ..decision.model import Decision
    from ..decision.practice import Config
    from ..decision.ruleset import Rules
    from ..fhir.client import FhirClient, Lookup

__all__ = ["PostCounts", "Sink", "SinkOptions", "sink", "sink_named", "sink_names"]


@dataclass
class PostCounts:
    """What a sink did with one kind of resource (Claims or Tasks) in a run."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    cancelled: int = 0
    completed: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class SinkOptions:
    """Everything a sink may read about the run it serves, in one typed, read-only object."""

    #: the server a live sync writes to (None for a folder)
    client: FhirClient | None = None
    #: the folder a folder sink writes to (None for a server)
    folder: str | Path | None = None
    #: entries per transaction Bundle (the server sink)
    bundle_size: int = 100
    #: new Claims and Tasks: ``put`` to our stable id, ``post`` a conditional create, or ``auto``
    create_with: str = "auto"
    #: the source's base URL when the target is another server (references made absolute on it)
    source_base: str | None = None
    #: the report's header (``generated``, ``source``, ``mappings``): a sink that writes the report
    meta: dict[str, Any] = field(default_factory=dict)


S = TypeVar("S", bound="Sink")


class Sink:
    """Where a run's Claims and Tasks go.

    Subclasses set :attr:`name` and write :meth:`for_run` and :meth:`plan`. Every sink counts what
    it did in :attr:`claims` and :attr:`tasks` and lists what it could not do in :attr:`failures`
    (``{"record", "field", "message"}``; the run reports them as record problems and clears the list).
    """

    #: the name the registry knows it by; unique among sinks
    name: ClassVar[str] = ""

    def __init__(self) -> None:
        self.claims = PostCounts()
        self.tasks = PostCounts()
        self.failures: list[dict[str, Any]] = []

    @classmethod
    def for_run(cls: type[S], rules: Rules, config: Config, options: SinkOptions) -> S:
        """The sink a run asks for.

        Args:
            rules: the rule tables (a Task's text names gaps from them).
            config: the practice's configuration (identifier systems, the clinic's details).
            options: the run's options for its sink.
        """
        raise NotImplementedError(f"{cls.__name__} does not say how it is built for a run")

    def begin_page(self) -> None:
        """A new page starts: forget what was looked up for the last one."""

    def lookups(self, administration_ids: list[str]) -> list[Lookup]:
        """Searches to answer before :meth:`plan` for these administrations (none by default)."""
        return []

    def take(self, lookups: list[Lookup], results: list[list[tuple[dict, str]]]) -> None:
        """The answers to :meth:`lookups`: ``results[i]`` is a list of (resource, search mode)."""

    def plan(
        self, decisions: list[Decision], created: str, primary: set[str] | None = None
    ) -> tuple[list[Any], dict[str, dict[str, Any]]]:
        """What to do for these decisions: (work for :meth:`send`, outcome by administration).

        ``created`` is the run's timestamp. Decisions whose administration is not in ``primary``
        came along for the same-day rules from another page and get no Claim or Task here (None:
        every decision is primary). The outcome of an administration holds ``claim`` and ``task``
        (``Type/id`` references or None), ``claim_status``, ``claim_action`` and ``task_action``
        (what was done, e.g. ``create`` or ``file``) and, when a write failed, ``claim_error`` or
        ``task_error``. An administration left out of the outcome was skipped (its reason is in
        :attr:`failures`).
        """
        raise NotImplementedError(f"{type(self).__name__} plans nothing")

    def send(self, plans: list[Any], outcome: dict[str, dict[str, Any]]) -> None:
        """Carry out :meth:`plan`'s work, filling in ``outcome`` (a sink that writes as it plans
        does nothing here)."""

    def file(self, files: dict[str, Any], claim: dict | None, task: dict | None) -> dict[str, Any]:
        """Write a decision's Claim and Task (either may be None) as NDJSON lines to
        ``files["Claim.ndjson"]`` and ``files["Task.ndjson"]``, count them as created, and return
        what the report records for the administration (the sinks that write files share it)."""
        if claim:
            files["Claim.ndjson"].write(fastjson.dumps(claim) + "\n")
            self.claims.created += 1
        if task:
            files["Task.ndjson"].write(fastjson.dumps(task) + "\n")
            self.tasks.created += 1
        return {
            "claim_action": "file" if claim else None,
            "task_action": "file" if task else None,
            "claim": reference_of(claim) if claim else None,
            "claim_status": claim["status"] if claim else None,
            "task": reference_of(task) if task else None,
        }

    def commit(self) -> None:
        """The run completed: make its outputs final (files renamed into place)."""

    def abort(self) -> None:
        """The run failed: drop what :meth:`commit` would have made final; earlier outputs stay."""


_SINKS: dict[str, type[Sink]] = {}


def sink(cls: type[S]) -> type[S]:
    """Class decorator: register a sink under its ``name`` (a name registered twice is an error)."""
    if not cls.name:
        raise ConfigError(f"sink class {cls.__name__} needs a name")
    known = _SINKS.get(cls.name)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise ConfigError(f"two sinks called '{cls.name}': {known.__name__} and {cls.__name__}")
    _SINKS[cls.name] = cls
    return cls


def _import_all() -> None:
    """Import every module of :mod:`fhir_injection.sinks`, so their sinks register."""
    package = importlib.import_module(__package__ or "fhir_injection.sinks")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


def sink_names() -> list[str]:
    """The names of every registered sink."""
    _import_all()
    return sorted(_SINKS)


def sink_named(name: str) -> type[Sink]:
    """The sink class called ``name``; a name no sink has is a :class:`~fhir_injection.errors.ConfigError`."""
    if name not in _SINKS:
        _import_all()
    if name not in _SINKS:
        raise ConfigError(f"no sink called '{name}'; known: {', '.join(sorted(_SINKS))}")
    return _SINKS[name]
