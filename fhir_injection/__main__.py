"""``python -m fhir_injection`` is the ``fhir-injection`` command."""

import sys

from .cli import main

__all__: list[str] = []

sys.exit(main())
