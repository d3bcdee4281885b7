"""A Bundle the server refuses as a whole: halve it until the bad entry is alone.

The one way every writer (the sink's Claims and Tasks, the loader) deals with a transaction that
holds one bad entry, or a validating server that refuses a whole batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import FatalNetworkError

__all__ = ["send_in_halves"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def send_in_halves(
    items: list[T],
    send_bundle: Callable[[list[T]], None],
    send_alone: Callable[[T], Any],
    what: str = "Bundle",
) -> None:
    """Send ``items`` as one Bundle; if the server refuses its content, halve it until the bad entry
    is alone, and send that one with ``send_alone`` (which reports the server's own message).

    A transaction with one bad entry, or a validating server refusing a whole batch, costs about
    2·log2(len(items)) extra requests per bad entry instead of one request per entry. Failures
    that are not about the content (:attr:`FatalNetworkError.refused_content`) are raised.
    """
    _send_halving(items, send_bundle, send_alone, what, split=False)


def _send_halving(items: list[T], send_bundle, send_alone, what: str, split: bool) -> None:
    if not items:
        return
    if split and len(items) == 1:  # a refused Bundle's culprit, or an innocent half: on its own
        send_alone(items[0])
        return
    try:
        send_bundle(items)
    except FatalNetworkError as exc:
        if not exc.refused_content:
            raise
        if len(items) == 1:
            send_alone(items[0])
            return
        log.warning(
            "the server refused a %s of %d (HTTP %s); sending it in halves",
            what,
            len(items),
            exc.status,
        )
        half = len(items) // 2
        _send_halving(items[:half], send_bundle, send_alone, what, split=True)
        _send_halving(items[half:], send_bundle, send_alone, what, split=True)
