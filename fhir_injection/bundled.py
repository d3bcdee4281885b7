"""Where the shipped rule tables and demo clinic are.

The repository keeps them at its top level, where a billing analyst and a developer
look for them: ``mappings/`` (the rule tables) and ``fixtures/demo/`` (the demo
clinic, a Bulk-export NDJSON folder). The wheel carries copies inside the package,
as ``fhir_injection/mappings/`` and ``fhir_injection/demo/`` (the build backend
maps them there, see pyproject.toml), so an installed ``fhir-injection`` finds them
from any working directory.

Each function answers a filesystem directory:

1. the copy inside the installed package (a wheel install), found through
   :func:`importlib.resources.files`;
2. otherwise the top-level folder of the source checkout this package was
   imported from (running from the repository, or an editable install: the
   package folder then has no copy, and the checkout's own folder is the one a
   developer edits).

If neither exists the in-package path is answered, so the error that follows names
where an installed package should have had it. A package imported from a zip file
is not supported (the rule tables are read as files).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["DEMO_AS_OF", "demo_config", "demo_dir", "mappings_dir"]

_CHECKOUT = Path(__file__).resolve().parent.parent

#: The day a run of the bundled demo clinic treats as today (unless --as-of or the configuration
#: says otherwise): its services are in October 2026, so its figures, filing deadlines and days
#: left stay what fixtures/demo-expected.json says however the calendar moves.
DEMO_AS_OF = "2026-11-30"


def _find(inside: str, checkout: Path) -> Path:
    shipped = resources.files(__package__ or "fhir_injection").joinpath(inside)
    if isinstance(shipped, Path) and shipped.is_dir():
        return shipped
    if checkout.is_dir():
        return checkout
    return Path(str(shipped))


def mappings_dir() -> Path:
    """The rule tables: ``fhir_injection/mappings`` in a wheel, ``mappings`` in a checkout."""
    return _find("mappings", _CHECKOUT / "mappings")


def demo_dir() -> Path:
    """The demo clinic: ``fhir_injection/demo`` in a wheel, ``fixtures/demo`` in a checkout."""
    return _find("demo", _CHECKOUT / "fixtures" / "demo")


def demo_config() -> Path:
    """The demo clinic's practice profile (a TOML config: its sites are offices), which a sync of
    the bundled demo reads when no --config is given: ``fhir_injection/demo-practice/practice.toml``
    in a wheel, ``fixtures/demo-practice/practice.toml`` in a checkout."""
    folder = _find("demo-practice", _CHECKOUT / "fixtures" / "demo-practice")
    return folder / "practice.toml"
