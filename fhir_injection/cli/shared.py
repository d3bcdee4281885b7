"""What more than one command reads: the exit codes' help, URL or folder, the bundled demo."""

from __future__ import annotations

from ..bundled import demo_dir
from ..errors import (
    EXIT_AUTH,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_MAPPINGS,
    EXIT_OK,
    EXIT_RECORD_ERRORS,
    EXIT_SERVER,
    EXIT_USAGE,
)

__all__ = ["EXIT_CODES", "REPO_DEMO", "is_url"]

REPO_DEMO = demo_dir()  # the wheel's copy, or fixtures/demo in a source checkout

EXIT_CODES = f"""exit codes:
  {EXIT_OK}    finished; every record processed (documentation gaps are not failures)
  {EXIT_RECORD_ERRORS}    finished, but some records could not be read or posted (listed in the report)
  {EXIT_USAGE}    bad command line or config file
  {EXIT_MAPPINGS}    a mappings/ file is invalid (the message names the file and row)
  {EXIT_SERVER}    the FHIR server could not be reached, kept failing, or refused the request
  {EXIT_AUTH}    authentication failed
  {EXIT_LOCKED}    another sync holds the state file's lock
  {EXIT_INTERNAL}   an unexpected internal error (the outputs are unchanged; the message names no record)
  {EXIT_INTERRUPTED}  stopped by Ctrl-C / SIGTERM (the state file keeps the last safe mark)
"""


def is_url(value: str) -> bool:
    """A ``--source`` or ``--target`` that is a FHIR base URL (else a folder)."""
    return value.startswith(("http://", "https://"))
