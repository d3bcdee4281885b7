"""The pure decision: administrations and what they point to in, Decisions out (no HTTP, no
files, no clock). :mod:`.engine` runs it; :mod:`.ruleset` and :mod:`.practice` are what it reads."""

__all__: list[str] = []
