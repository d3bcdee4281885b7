"""The public API is pinned: changing it is a deliberate act, visible in this file."""

from __future__ import annotations

import inspect

import fhir_injection

PUBLIC = [
    "Config",
    "Context",
    "Decision",
    "FhirClient",
    "FhirInjectionError",
    "Gap",
    "HttpSession",
    "Line",
    "MappingError",
    "RecordError",
    "RetryPolicy",
    "Rules",
    "SyncOptions",
    "SyncResult",
    "build_claim",
    "build_task",
    "connect",
    "decide",
    "decide_all",
    "decide_bundle",
    "load_config",
    "load_folder",
    "load_rules",
    "run_folder",
    "run_sync",
    "__version__",
]


def test_all_is_pinned():
    assert fhir_injection.__all__ == PUBLIC


def test_all_lists_exactly_the_public_top_level_names():
    # httpx-style: every public name the package defines or imports at the top level is in
    # __all__, and __all__ names nothing else. Submodules (fhir_injection.rules, ...) are
    # attributes but not API names; __version__ is the one dunder exported.
    public = {
        name
        for name in dir(fhir_injection)
        if not name.startswith("_") and not inspect.ismodule(getattr(fhir_injection, name))
    }
    assert set(fhir_injection.__all__) == public | {"__version__"}
    assert len(fhir_injection.__all__) == len(set(fhir_injection.__all__))


def test_every_public_name_exists():
    for name in PUBLIC:
        assert hasattr(fhir_injection, name), name


def test_version_is_a_string():
    assert (
        isinstance(fhir_injection.__version__, str) and fhir_injection.__version__.count(".") == 2
    )


def test_signatures():
    sig = lambda f: list(inspect.signature(f).parameters)  # noqa: E731
    assert sig(fhir_injection.decide) == ["administration", "context", "rules", "config"]
    assert sig(fhir_injection.decide_all) == ["administrations", "context", "rules", "config"]
    assert sig(fhir_injection.build_claim) == ["decision", "config", "created", "status"]
    assert sig(fhir_injection.build_task) == ["decision", "config", "rules", "created", "status"]
    assert sig(fhir_injection.run_folder) == [
        "source",
        "target",
        "rules",
        "config",
        "created",
        "progress",
    ]
    assert sig(fhir_injection.load_rules) == ["directory"]
    assert sig(fhir_injection.load_config) == [
        "path",
        "rules",
    ]  # rules: optional, checks [containers] keys
    assert sig(fhir_injection.decide_bundle) == ["bundle_or_resources", "rules", "config"]
    assert sig(fhir_injection.run_sync) == [
        "source",
        "target",
        "rules",
        "config",
        "options",
        "stop",
        "progress",
    ]
    assert sig(fhir_injection.connect) == [
        "url",
        "env_prefix",
        "ca_bundle",
        "allow_insecure_http",
        "env",
    ]
    assert sig(fhir_injection.load_folder) == ["source", "client", "bundle_size"]


def test_errors_share_one_base():
    assert issubclass(fhir_injection.MappingError, fhir_injection.FhirInjectionError)
    assert issubclass(fhir_injection.RecordError, fhir_injection.FhirInjectionError)
    e = fhir_injection.RecordError("MedicationAdministration/1", "dosage.dose", "bad")
    assert str(e) == "MedicationAdministration/1 dosage.dose: bad"


def test_engine_module_does_no_io():
    import fhir_injection.decision.engine as engine

    source = inspect.getsource(engine)
    for forbidden in ("open(", "requests", "import os", "datetime.now", "time.time", "print("):
        assert forbidden not in source, forbidden


def test_no_module_of_the_decision_does_io():
    """The same check for every module of fhir_injection/decision/ (the engine's steps live in several)."""
    import importlib
    import pkgutil

    import fhir_injection.decision as decision

    names = [m.name for m in pkgutil.iter_modules(decision.__path__)]
    assert "engine" in names and len(names) > 1
    for name in names:
        source = inspect.getsource(importlib.import_module(f"fhir_injection.decision.{name}"))
        for forbidden in ("open(", "requests", "import os", "datetime.now", "time.time", "print("):
            assert forbidden not in source, (name, forbidden)
