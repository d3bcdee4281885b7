"""JSON at orjson's speed where orjson gives exactly what the ``json`` module gives, ``json`` elsewhere.

Reading (:func:`read_line`): orjson turns integers beyond 64 bits into floats (``json`` keeps them
exact) and refuses what ``json`` accepts beyond the standard (``NaN``, ``Infinity``, numbers that
overflow, lone surrogates), and its nesting limit is not Python's. A line with a run of 19 digits
(every integer beyond 64 bits has one) or many brackets is left to ``json``, and so is a line orjson
refuses: ``json`` then reads it, or gives the error it always gave.

Writing (:func:`dumps`): orjson writes some values differently from ``json.dumps(value,
separators=(",", ":"))``: non-ASCII text and DEL unescaped, floats below 1e-4 as ``1e-7`` or
``0.00001`` (json: ``1e-07``, ``1e-05``), NaN and infinity as ``null`` (json: ``NaN``,
``Infinity``), and it refuses integers beyond 64 bits. An output that may hold any of these is
written again by ``json``, so what is written never depends on which library wrote it.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["DEEP", "SLOW", "dumps", "orjson", "read_line"]

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; this keeps a bare install working
    orjson = None  # type: ignore[assignment]  # typed as the module; it is used only when there

#: What :func:`read_line` gives when ``json`` must read the line.
SLOW = object()
#: Lines with this many brackets may be nested too deeply for a serialiser: see read_line.
DEEP = 256
# Digits as 0, the brackets that open a level as [, the rest blank: one quick pass (bytes.translate)
# finds both a long run of digits and the nesting bound.
_READ_MAP = bytes(0x30 if 0x30 <= b <= 0x39 else 0x5B if b in b"[{" else 0x20 for b in range(256))
_LONG_INT = b"0" * 19

_COMPACT = json.JSONEncoder(separators=(",", ":"))
_DIGITS = frozenset(b"0123456789")


def _small_float(out: bytes) -> bool:
    """Whether orjson's output may hold a float below 1e-4: a digit before "e-" (1e-7), or 0.0000."""
    if b"0.0000" in out:
        return True
    at = out.find(b"e-", 1)
    while at != -1:  # "e-" is mostly in text (place-of-service): a few quick finds
        if out[at - 1] in _DIGITS:
            return True
        at = out.find(b"e-", at + 2)
    return False


def read_line(raw: bytes) -> tuple[Any, bool]:
    """(value, shallow) for one line of an export; the value is :data:`SLOW` when ``json.loads``
    must read the line (and say what is wrong with it). ``shallow``: fewer than :data:`DEEP`
    brackets, so that no library comes near its nesting limit with it."""
    seen = raw.translate(_READ_MAP)
    shallow = seen.count(b"[") < DEEP
    if orjson is None or not shallow or _LONG_INT in seen:
        return SLOW, shallow
    try:
        return orjson.loads(raw), True
    except orjson.JSONDecodeError:
        return SLOW, True


def dumps(value, floats_finite: bool = False) -> str:
    """``json.dumps(value, separators=(",", ":"))``, byte for byte, and the same errors.

    ``null`` in orjson's output may stand for a NaN or an infinity: such an output is written again
    by ``json`` unless the caller passes ``floats_finite=True``, vouching that ``value`` holds no
    float that is not finite.
    """
    if orjson is not None:
        try:
            out = orjson.dumps(value)
        except TypeError:  # orjson.JSONEncodeError is one: an unknown type or a too large integer
            return _COMPACT.encode(value)  # json's own result, or its own error
        if (
            out.isascii()
            and b"\x7f" not in out
            and (floats_finite or b"null" not in out)
            and not _small_float(out)
        ):
            return out.decode("ascii")
    return _COMPACT.encode(value)
