"""The package's one version: read by the build (``[tool.hatch.version]``), the CLI's ``--version``
and the FHIR client's User-Agent. A module of its own so the FHIR plumbing below the package's top
can read it without importing the package's public face."""

__all__ = ["__version__"]

__version__ = "0.1.0"
