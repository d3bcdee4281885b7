"""Where decisions go: Claims and Tasks (a folder, a server, the read-only trial's files), the
report, the billing team's page, the worklist and the run history."""

__all__: list[str] = []
