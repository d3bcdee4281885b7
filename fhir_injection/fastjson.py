"""Compact JSON output at orjson's speed, byte for byte what ``json.dumps`` writes.

orjson writes some values differently from ``json.dumps(value, separators=(",", ":"))``:
non-ASCII text and DEL unescaped, floats below 1e-4 as ``1e-7`` or ``0.00001`` (json: ``1e-07``,
``1e-05``), NaN and infinity as ``null`` (json: ``NaN``, ``Infinity``), and it refuses integers
beyond 64 bits. An output that may hold any of these is written again by ``json``, so what is
written never depends on which library wrote it.

(Reading stays with ``json``: with the checks that orjson would need there — it turns integers
beyond 64 bits into floats — it was no faster on Bulk export lines.)
"""

from __future__ import annotations

import json

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; this keeps a bare install working
    orjson = None

_COMPACT = json.JSONEncoder(separators=(",", ":"))
# Digits as 0, "e", "-" and "." as they are, the rest blank: "0e-" is then where orjson wrote a
# float in exponent form with a negative exponent (bytes.translate is far quicker than a regex).
_FLOAT_MAP = bytes(0x30 if 0x30 <= b <= 0x39 else b if b in b"e-." else 0x20 for b in range(256))


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
        if (out.isascii() and b"\x7f" not in out and (floats_finite or b"null" not in out)
                and b"0.0000" not in out and b"0e-" not in out.translate(_FLOAT_MAP)):
            return out.decode("ascii")
    return _COMPACT.encode(value)
