"""The runs: the offline folder run, the live sync, a Bulk Data export into a folder, a load into a
test server, and the state file they share."""

__all__: list[str] = []
