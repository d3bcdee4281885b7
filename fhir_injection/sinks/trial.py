"""The read-only trial's sink: ``sync --source URL --target DIR`` writes, never posts.

It stands where :class:`~fhir_injection.sinks.server.Poster` stands in a live sync (the same
``plan``/``send`` calls), so the pull, the look-ups and the decisions are the live sync's own; the
Claims and Tasks go to ``DIR/Claim.ndjson`` and ``DIR/Task.ndjson`` (temporary files renamed into
place when the run completes) instead of to a server. How a billing team tries the adapter
against a production EHR before letting it write.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .. import fastjson
from ..decision.model import Decision
from ..decision.rules import Config, Rules
from ..fhir.client import Lookup
from ..fhir.resources import reference_of
from .claims import build_claim, build_task
from .server import PostCounts

FILES = ("Claim.ndjson", "Task.ndjson")


class FolderPoster:
    """Writes each page's Claims and Tasks to files; asks the server nothing, posts nothing."""

    def __init__(self, target: str | Path, rules: Rules, config: Config):
        self.target = Path(target)
        self.target.mkdir(parents=True, exist_ok=True)
        self.rules = rules
        self.config = config
        self.claims = PostCounts()
        self.tasks = PostCounts()
        self.failures: list[dict] = []
        # open for the run, closed by commit() or abort()
        self._files = {
            name: open(self._partial(name), "w", encoding="utf-8")  # noqa: SIM115
            for name in FILES
        }

    def _partial(self, name: str) -> Path:
        return self.target / f".{name}.partial"

    # the rider protocol of gather(): nothing to look up on a folder
    def begin_page(self) -> None:
        pass

    def lookups(self, administration_ids: list[str]) -> list[Lookup]:
        return []

    def take(self, lookups: list[Lookup], results: list[list[tuple[dict, str]]]) -> None:
        pass

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
            if claim:
                self._files["Claim.ndjson"].write(fastjson.dumps(claim) + "\n")
                self.claims.created += 1
            if task:
                self._files["Task.ndjson"].write(fastjson.dumps(task) + "\n")
                self.tasks.created += 1
            outcome[d.administration] = {
                "claim_action": "file" if claim else None,
                "task_action": "file" if task else None,
                "claim": reference_of(claim) if claim else None,
                "claim_status": claim["status"] if claim else None,
                "task": reference_of(task) if task else None,
            }
        return [], outcome

    def send(self, plans: list, outcome: dict[str, dict]) -> None:
        pass

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
