"""Where administrations come from: an export folder, or a FHIR server.

- :mod:`.folder` reads a Bulk Data export folder (NDJSON, gzip, Bundles; its layout is
  :mod:`.exportfolder`, its files are read by :mod:`.ndjson`) into the :mod:`.spool`, which hands
  the offline job one patient at a time;
- :mod:`.records` holds the checks every record passes, whichever way it came;
- a server is read by a *pull* (:mod:`.base`: the :class:`~.base.Pull` class, its
  :class:`~.base.PullOptions` and the registry): :mod:`.search` (the population search),
  :mod:`.crawl` (one search per patient), :mod:`.exportpull` (a Bulk Data export); :mod:`.choose`
  picks one for ``--pull auto``; :mod:`.resolver` fetches what their administrations point to.

A new way to pull is a new module here whose class derives from :class:`~.base.Pull` and is
decorated with :func:`~.base.pull`; :func:`~.base.pull_named` finds it by the name a user gives.
"""

from __future__ import annotations

from .base import Pull, PullOptions, pull, pull_named, pull_names

__all__ = ["Pull", "PullOptions", "pull", "pull_named", "pull_names"]
