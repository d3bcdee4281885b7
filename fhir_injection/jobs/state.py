"""The incremental state file and its lock.

One JSON file keeps, per source URL, the high-water mark (the ``meta.lastUpdated``
of the last administration whose Claims are safely posted) and the versions seen
inside the overlap window, so a rerun neither skips nor redoes work. It is written
atomically (temporary file, fsync, rename): a crash leaves the old or the new
state, never half of one. A lock file stops two syncs sharing one state file.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError, LockedError

__all__ = ["FORMAT", "StateFile", "StateLock"]

FORMAT = 1


class StateFile:
    """Read, update and atomically save the per-source marks."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.data: dict[str, Any] = {"format": FORMAT, "sources": {}}
        if self.path.exists():
            try:
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    f"state file {self.path} is not valid JSON ({exc}); move it away to "
                    "start over with --full"
                ) from None
            if not isinstance(loaded, dict) or loaded.get("format") != FORMAT:
                raise ConfigError(f"state file {self.path} has an unknown format")
            self.data = loaded

    def source(self, url: str) -> dict[str, Any]:
        return self.data["sources"].setdefault(url.rstrip("/"), {"mark": None, "recent": {}})

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        try:
            dir_fd = os.open(self.path.parent or ".", os.O_RDONLY)
            os.fsync(dir_fd)
            os.close(dir_fd)
        except OSError:
            pass


class StateLock:
    """An exclusive, non-blocking lock on ``<state>.lock``; released when the process ends."""

    def __init__(self, state_path: str | Path):
        self.path = Path(str(state_path) + ".lock")
        self._fd: int | None = None

    def __enter__(self) -> StateLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockedError(
                f"another sync is running on state file {str(self.path)[:-5]} "
                "(its lock is held); this run did nothing"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
