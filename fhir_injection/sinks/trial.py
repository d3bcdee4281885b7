"""The ``trial`` sink, the read-only trial's: ``sync --source URL --target DIR`` writes, never posts.

It stands where :class:`~fhir_injection.sinks.poster.Poster` stands in a live sync (the same
``plan``/``send`` calls), so the pull, the look-ups and the decisions are the live sync's own; the
Claims and Tasks go to ``DIR/Claim.ndjson`` and ``DIR/Task.ndjson`` (temporary files renamed into
place when the run completes) instead of to a server. How a billing team tries the adapter
against a production EHR before letting it write.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..decision.model import Decision
from ..decision.practice import Config
from ..decision.ruleset import Rules
from ..errors import ConfigError
from .base import Sink, SinkOptions, sink
from .claims import build_claim, build_task

__all__ = ["FILES", "FolderPoster"]

FILES = ("Claim.ndjson", "Task.ndjson")


@sink
class FolderPoster(Sink):
    """Writes each page's Claims and Tasks to files; asks the server nothing, posts nothing."""

    name = "trial"

    @classmethod
    def for_run(cls, rules: Rules, config: Config, options: SinkOptions) -> FolderPoster:
        """The read-only trial's sink (it reads ``folder``)."""
        if options.folder is None:
            raise ConfigError("the read-only trial needs a folder to write to")
        return cls(options.folder, rules, config)

    def __init__(self, target: str | Path, rules: Rules, config: Config):
        super().__init__()
        self.target = Path(target)
        self.target.mkdir(parents=True, exist_ok=True)
        self.rules = rules
        self.config = config
        # open for the run, closed by commit() or abort()
        self._files = {
            name: open(self._partial(name), "w", encoding="utf-8")  # noqa: SIM115
            for name in FILES
        }

    def _partial(self, name: str) -> Path:
        return self.target / f".{name}.partial"

    def plan(
        self, decisions: list[Decision], created: str, primary: set[str] | None = None
    ) -> tuple[list, dict[str, dict]]:
        """Write the page's Claims and Tasks (same-day siblings from other pages: not again)."""
        outcome: dict[str, dict] = {}
        for d in decisions:
            if primary is not None and d.administration not in primary:
                continue
            claim = build_claim(d, self.config, created)
            task = build_task(d, self.config, self.rules, created)
            outcome[d.administration] = self.file(self._files, claim, task)
        return [], outcome

    def commit(self) -> None:
        """Put Claim.ndjson and Task.ndjson in place (the report is the run's own)."""
        for name, fh in self._files.items():
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            os.replace(self._partial(name), self.target / name)

    def abort(self) -> None:
        """Drop the temporary files; earlier outputs stay."""
        for name, fh in self._files.items():
            fh.close()
            with contextlib.suppress(OSError):
                os.unlink(self._partial(name))
