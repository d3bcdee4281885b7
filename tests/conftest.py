"""Shared fixtures. Integration tests (marker ``hapi``) get a real FHIR server:

- ``FHIR_BASE_URL`` set: that server (e.g. the public HAPI server); tests isolate
  their data by a unique identifier system and tag, never assuming an empty server;
- otherwise the local HAPI FHIR JPA server from ``tests/hapi/run-hapi.sh`` is
  started for the session (built on first use) and stopped afterwards.

A server that cannot be had fails the tests; it never skips them.

Unit tests of the live sync get a fake one: ``rsps`` (``responses`` intercepting ``requests``),
``server`` (tests/fakefhir.py's ``FakeFhir`` installed on it) and ``sleeps`` (the back-off delays a
client was asked to sleep, never slept); tests/fakesync.py has the helpers that drive a sync with
them. A test module that defines a fixture of the same name uses its own.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import responses

from tests.fakefhir import FakeFhir

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def fhir_base_url():
    url = os.environ.get("FHIR_BASE_URL")
    if url:
        yield url.rstrip("/")
        return
    script = ROOT / "tests" / "hapi" / "run-hapi.sh"
    was_running = (
        subprocess.run(["bash", str(script), "status"], capture_output=True).returncode == 0
    )
    started = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True)
    if started.returncode != 0:
        pytest.fail(
            "could not start the local HAPI FHIR server:\n" + started.stderr[-3000:], pytrace=False
        )
    url = started.stdout.strip().splitlines()[-1]
    try:
        yield url
    finally:
        if not was_running and not os.environ.get("HAPI_KEEP_RUNNING"):
            subprocess.run(["bash", str(script), "stop"], capture_output=True)


def _profile_url(base: str, profile: str) -> str:
    """The vendor-profile path of the local HAPI test server (tests/hapi/README.md, "Vendor
    profiles"): ``…/fhir`` → ``…/<profile>/fhir`` on the same server; ``FHIR_<PROFILE>_URL`` wins."""
    url = os.environ.get(f"FHIR_{profile.upper()}_URL")
    if url:
        return url.rstrip("/")
    if not base.endswith("/fhir"):
        pytest.fail(
            f"cannot derive the {profile} profile's URL from {base}: set FHIR_{profile.upper()}_URL",
            pytrace=False,
        )
    return base[: -len("/fhir")] + f"/{profile}/fhir"


@pytest.fixture(scope="session")
def oracle_url(fhir_base_url):
    return _profile_url(fhir_base_url, "oracle")


@pytest.fixture(scope="session")
def epic_url(fhir_base_url):
    return _profile_url(fhir_base_url, "epic")


@pytest.fixture(scope="session")
def rules():
    from fhir_injection.rules import load_rules

    return load_rules()


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def server(rsps) -> FakeFhir:
    return FakeFhir().install(rsps)


@pytest.fixture
def sleeps() -> list[float]:
    return []
