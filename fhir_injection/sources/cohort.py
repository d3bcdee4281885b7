"""The crawl's cohort given by the operator: a file of Patient ids (``--patients``), or the Patient
resources of an export folder (``--cohort``, e.g. a Group ``$export``'s output)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, OnProblem
from .exportfolder import ExportFolder

__all__ = ["cohort_from_folder", "read_patient_file"]


def read_patient_file(path: str | Path) -> list[str]:
    """Patient ids from a file: one a line (``123`` or ``Patient/123``), blank lines and ``#``
    comments (whole-line or after the id) ignored, duplicates dropped, order kept."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--patients {path}: {exc.strerror or exc}") from None
    ids: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        value = line.split("#", 1)[0].strip()
        if not value:
            continue
        if value.startswith("Patient/"):
            value = value[len("Patient/") :]
        if "/" in value or " " in value or len(value) > 64:
            raise ConfigError(f"--patients {path} line {number}: not a Patient id")
        ids.append(value)
    return list(dict.fromkeys(ids))


def cohort_from_folder(folder: str | Path, on_problem: OnProblem) -> list[str]:
    """The ids of the Patient resources in an export folder (e.g. a Group ``$export``'s output)."""
    if not Path(folder).is_dir():
        raise ConfigError(f"--cohort {folder}: not a folder")
    ids = [
        str(resource["id"])
        for resource, *_ in ExportFolder(folder, on_problem).records()
        if resource.get("resourceType") == "Patient" and resource.get("id")
    ]
    return list(dict.fromkeys(ids))
