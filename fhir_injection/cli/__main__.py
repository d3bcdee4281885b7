"""``python -m fhir_injection.cli`` is the ``fhir-injection`` command."""

import sys

from . import main

__all__: list[str] = []

sys.exit(main())
