"""One file of a Bulk Data export on its way to disk: streamed into gzip chunk by chunk, checked
(gzip the server sent is decompressed on the side, in bounded pieces: a gzip bomb cannot fill
memory), its NDJSON lines counted, and an error or deleted file's issue codes and deletions read.
Never a whole file in memory. Messages name the file by its label, never its contents.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections import Counter
from pathlib import Path

import requests

from ..errors import BulkExportError

__all__ = ["scan_gzip", "write_stream"]


class _Lines:
    """Counts NDJSON lines of decompressed data and, for error/deleted files, reads each line
    (they are small: OperationOutcomes and Bundles of DELETE requests) for issue codes and
    deletions. Holds at most one line at a time."""

    def __init__(self, kind: str, label: str):
        self.kind = kind
        self.label = label
        self.lines = 0
        self.issues: Counter = Counter()
        self.deleted = 0
        self._tail = b""

    def feed(self, data: bytes) -> None:
        if self.kind == "output":  # only counted: a line may be megabytes
            self.lines += data.count(b"\n")
            if data:
                self._tail = data[-1:] if data[-1:] != b"\n" else b""
            return
        buf = self._tail + data
        *whole, self._tail = buf.split(b"\n")
        for line in whole:
            self._line(line)

    def close(self) -> None:
        if self._tail.strip():
            if self.kind == "output":
                self.lines += 1
            else:
                self._line(self._tail)
        self._tail = b""

    def _line(self, line: bytes) -> None:
        if not line.strip():
            return
        self.lines += 1
        try:
            item = json.loads(line)
        except ValueError:
            raise BulkExportError(f"{self.label}: line {self.lines} is not JSON") from None
        if not isinstance(item, dict):
            return
        if self.kind == "error":
            for issue in item.get("issue") or []:
                if isinstance(issue, dict):
                    self.issues[str(issue.get("code") or "no code")] += 1
        elif self.kind == "deleted":
            self.deleted += sum(
                1
                for e in item.get("entry") or []
                if isinstance(e, dict) and (e.get("request") or {}).get("method") == "DELETE"
            )


def write_stream(
    resp: requests.Response, part: Path, label: str, chunk_size: int, kind: str
) -> tuple[int, int, Counter, int]:
    """Stream ``resp`` into ``part`` as gzip, chunk by chunk; check it; (bytes, lines, issues,
    deletions). Gzip the server sent (Content-Encoding, or a gzip file) is written as it comes and
    decompressed on the side only to check and count it; plain NDJSON is compressed on the way."""
    raw = resp.raw
    encoded = "gzip" in (resp.headers.get("Content-Encoding") or "").lower()
    counter = _Lines(kind, label)
    size = 0
    with open(part, "wb") as out:
        first = raw.read(chunk_size, decode_content=False)
        is_gzip = encoded or first[:2] == b"\x1f\x8b"
        if is_gzip:
            check = zlib.decompressobj(16 + zlib.MAX_WBITS)
            chunk = first
            while chunk:
                out.write(chunk)
                size += len(chunk)
                _inflate(check, chunk, counter, label, chunk_size)
                chunk = raw.read(chunk_size, decode_content=False)
            if not check.eof:
                raise BulkExportError(f"{label}: the gzip data is cut short (corrupted download)")
        else:
            packer = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            chunk = first
            while chunk:
                counter.feed(chunk)
                packed = packer.compress(chunk)
                out.write(packed)
                size += len(packed)
                chunk = raw.read(chunk_size, decode_content=False)
            tail = packer.flush()
            out.write(tail)
            size += len(tail)
        counter.close()
    return size, counter.lines, counter.issues, counter.deleted


def _inflate(check, chunk: bytes, counter: _Lines, label: str, chunk_size: int) -> None:
    """Decompress ``chunk`` in bounded pieces (a gzip bomb cannot fill memory), feeding the lines."""
    try:
        data = check.decompress(chunk, chunk_size * 16)
        counter.feed(data)
        while check.unconsumed_tail:
            data = check.decompress(check.unconsumed_tail, chunk_size * 16)
            counter.feed(data)
    except zlib.error as exc:
        raise BulkExportError(
            f"{label}: not valid gzip ({exc}); the download is corrupted"
        ) from None


def scan_gzip(path: Path, label: str, chunk_size: int) -> tuple[int, Counter, int]:
    """Lines, issue codes and deletions of a gzip file already on disk (a resumed download)."""
    kind = path.parent.name if path.parent.name in ("error", "deleted") else "output"
    counter = _Lines(kind, label)
    try:
        with gzip.open(path, "rb") as fh:
            while data := fh.read(chunk_size):
                counter.feed(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise BulkExportError(f"{label}: {path.name} is not valid gzip ({exc})") from None
    counter.close()
    return counter.lines, counter.issues, counter.deleted
