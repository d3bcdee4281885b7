"""FHIR plumbing: the one retry loop (:mod:`.http`), authentication, the client and its
connection, URL policy, response bodies, refused-Bundle halving, the resource types we read."""

__all__: list[str] = []
