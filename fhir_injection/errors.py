"""One error tree for the whole adapter, and the CLI exit codes each maps to.

Messages name resources by type/id and fields by FHIR path; they never carry
names, birth dates, member ids or free text from a record (PHI).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "AuthError",
    "BulkExportError",
    "ConfigError",
    "EXIT_AUTH",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_LOCKED",
    "EXIT_MAPPINGS",
    "EXIT_OK",
    "EXIT_RECORD_ERRORS",
    "EXIT_SERVER",
    "EXIT_USAGE",
    "FatalNetworkError",
    "FhirInjectionError",
    "LockedError",
    "MappingError",
    "NetworkError",
    "Notice",
    "OnNotice",
    "OnProblem",
    "PagingExpired",
    "RecordError",
    "RecordProblem",
    "TemporaryNetworkError",
    "describe_failure",
]

# Exit codes, documented in docs/operations.md and in `fhir-injection --help`.
EXIT_OK = 0  # run finished; every record processed (gaps are not failures)
EXIT_RECORD_ERRORS = 1  # run finished, but some records could not be read or posted
EXIT_USAGE = 2  # bad command line or configuration
EXIT_MAPPINGS = 3  # a mappings/ file failed validation
EXIT_SERVER = 4  # the FHIR server could not be reached / kept failing / refused us
EXIT_AUTH = 5  # authentication failed
EXIT_LOCKED = 6  # another sync holds the state file lock
EXIT_INTERNAL = 70  # a bug (EX_SOFTWARE): outputs left as they were; the message names no record
EXIT_INTERRUPTED = 130  # stopped by SIGINT/SIGTERM before finishing


class FhirInjectionError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = EXIT_RECORD_ERRORS


class ConfigError(FhirInjectionError):
    """A command-line option, environment variable or config value is wrong."""

    exit_code = EXIT_USAGE


class MappingError(FhirInjectionError):
    """A file in mappings/ is invalid. The message names the file and row."""

    exit_code = EXIT_MAPPINGS

    def __init__(self, file: str, row: int | None, message: str):
        self.file = file
        self.row = row
        where = f"{file}, row {row}" if row is not None else file
        super().__init__(f"{where}: {message}")


class RecordError(FhirInjectionError):
    """One input record is unusable. Names the record (file:line or Type/id) and field."""

    def __init__(self, record: str, field: str | None, message: str):
        self.record = record
        self.field = field
        self.message = message
        where = f"{record} {field}" if field else record
        super().__init__(f"{where}: {message}")


class NetworkError(FhirInjectionError):
    """Base for problems talking to a FHIR server."""

    exit_code = EXIT_SERVER


class TemporaryNetworkError(NetworkError):
    """Worth retrying: connection reset, timeout, 429, 502, 503, 504."""


class PagingExpired(TemporaryNetworkError):
    """The server forgot a paged search (HAPI answers 410 Gone for an expired _getpages id).

    ``pages_yielded`` pages were already handed to the caller, which should
    re-issue the search from its last mark rather than start over blindly.
    """

    def __init__(self, pages_yielded: int, status: int | None = None):
        self.pages_yielded = pages_yielded
        self.status = status
        super().__init__(
            f"the server no longer knows this search (HTTP {status}) after {pages_yielded} page(s); "
            "re-issue it from the last mark"
        )


class FatalNetworkError(NetworkError):
    """Not worth retrying: other 4xx/5xx, retries exhausted, unsupported server."""

    def __init__(self, message: str, status: int | None = None, outcome: str | None = None):
        self.status = status
        self.outcome = outcome
        super().__init__(message)

    @property
    def refused_content(self) -> bool:
        """The server answered and refused what was sent (a 4xx other than 401/403).

        Only then is the request's content to blame, so splitting a Bundle or sending its
        entries alone can isolate the bad one. A server that is down, failing (5xx) or
        refusing our credentials (401/403) fails every smaller request the same way: the
        run stops instead.
        """
        return self.status is not None and self.status < 500 and self.status not in (401, 403)


class BulkExportError(FatalNetworkError):
    """The export failed, the manifest could not be read, or a file could not be downloaded.

    ``job_over``: the server's export job cannot be used again (it failed, or its manifest is
    unusable), so its status URL is forgotten; otherwise (the server unreachable, still busy) the
    next run resumes it."""

    def __init__(self, message: str, *, job_over: bool = True, **kw: Any):
        super().__init__(message, **kw)
        self.job_over = job_over


class AuthError(FhirInjectionError):
    """Credentials missing, malformed, or refused by the token endpoint."""

    exit_code = EXIT_AUTH


class LockedError(FhirInjectionError):
    """Another sync holds the lock on this state file."""

    exit_code = EXIT_LOCKED


@dataclass(frozen=True)
class RecordProblem:
    """A record that could not be used, as a value the run reports and goes on from.

    ``record`` is ``file:line`` or ``Type/id``; ``field`` the FHIR path. :class:`RecordError` is the
    same thing raised, for a library call that cannot go on (:meth:`error`).
    """

    record: str
    field: str | None
    message: str

    def as_dict(self) -> dict:
        return {"record": self.record, "field": self.field, "message": self.message}

    def __str__(self) -> str:
        return f"{self.record}{' ' + self.field if self.field else ''}: {self.message}"

    def error(self) -> RecordError:
        return RecordError(self.record, self.field, self.message)


OnProblem = Callable[[RecordProblem], None]


@dataclass(frozen=True)
class Notice:
    """Something about the input a person may want to know that is not an error: the run used
    every record (e.g. one resource in two files with different content: which copy was used).

    ``record`` is ``Type/id``; ``files`` the paths in the source folder it names. Like a
    :class:`RecordProblem` it names resources by id, never a person.
    """

    record: str
    files: tuple[str, ...]
    message: str

    def as_dict(self) -> dict:
        return {"record": self.record, "files": list(self.files), "message": self.message}

    def __str__(self) -> str:
        return f"{self.record}: {self.message}"


OnNotice = Callable[[Notice], None]


def describe_failure(exc: BaseException) -> str:
    """An unexpected exception as its type and innermost frame: enough to find the bug, and never its
    message, which may quote a record (PHI)."""
    tb, last = exc.__traceback__, None
    while tb is not None:
        last, tb = tb, tb.tb_next
    where = f" at {Path(last.tb_frame.f_code.co_filename).name}:{last.tb_lineno}" if last else ""
    return f"{type(exc).__name__}{where}"
