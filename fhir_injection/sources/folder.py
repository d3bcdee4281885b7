"""Read FHIR R4 resources from a Bulk Data export folder, as one stream of resources.

The folder's layout (runs, manifest, ``deleted/``, ``error/``, which file is what) is
:class:`~fhir_injection.sources.exportfolder.ExportFolder`; its files are read by :mod:`.ndjson`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import OnProblem
from .exportfolder import ExportFolder

__all__ = ["iter_folder", "iter_folder_checked"]


def iter_folder(folder: str | Path, on_problem: OnProblem) -> Iterator[dict]:
    """Every used resource in ``folder``, file by file in name order (deterministic)."""
    for resource, *_ in ExportFolder(folder, on_problem).records():
        yield resource


def iter_folder_checked(
    folder: str | Path, on_problem: OnProblem
) -> Iterator[tuple[dict, bytes | bool]]:
    """As :func:`iter_folder`, each resource with how :meth:`~fhir_injection.store.Spool.add_all` may
    store it: its line (bytes) when orjson read that exactly, else whether the line was shallow (few
    brackets; False for Bundle entries, which were not measured)."""
    for resource, how, *_ in ExportFolder(folder, on_problem).records():
        yield resource, how
