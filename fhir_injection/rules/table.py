"""The CSV table reader every loader uses, and its checks of one row."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal, overload

from ..errors import MappingError

__all__ = ["Table", "split_names"]


class Table:
    """Reads one CSV, checking its header; yields (row_number, row)."""

    def __init__(self, directory: Path, name: str, columns: tuple[str, ...]):
        self.name = name
        self.path = directory / name
        self.columns = columns

    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        if not self.path.is_file():
            raise MappingError(self.name, None, "file is missing")
        with self.path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = tuple(reader.fieldnames or ())
            missing = [c for c in self.columns if c not in header]
            if missing:
                raise MappingError(self.name, 1, f"header lacks column(s) {', '.join(missing)}")
            for number, row in enumerate(reader, start=2):
                if None in row:
                    raise MappingError(
                        self.name, number, "more values than header columns (unquoted comma?)"
                    )
                row = {k: (v or "").strip() for k, v in row.items()}
                if not any(row.values()):
                    continue
                if not row.get("source"):
                    raise MappingError(
                        self.name, number, "column 'source' is empty: every rule names its source"
                    )
                yield number, row

    def error(self, row: int, message: str) -> MappingError:
        return MappingError(self.name, row, message)

    def require(self, row: int, values: dict[str, str], column: str) -> str:
        value = values[column]
        if not value:
            raise self.error(row, f"column '{column}' is empty")
        return value

    def choice(self, row: int, values: dict[str, str], column: str, allowed) -> str:
        value = values[column]
        if value not in allowed:
            raise self.error(
                row, f"column '{column}' is '{value}', expected one of {', '.join(sorted(allowed))}"
            )
        return value

    def yes_no(self, row: int, values: dict[str, str], column: str) -> bool:
        return self.choice(row, values, column, {"yes", "no"}) == "yes"

    @overload
    def decimal(
        self, row: int, values: dict[str, str], column: str, required: Literal[True] = ...
    ) -> Decimal: ...
    @overload
    def decimal(
        self, row: int, values: dict[str, str], column: str, required: bool
    ) -> Decimal | None: ...
    def decimal(
        self, row: int, values: dict[str, str], column: str, required: bool = True
    ) -> Decimal | None:
        raw = values[column]
        if not raw and not required:
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise self.error(row, f"column '{column}' is '{raw}', not a number") from None
        if not value.is_finite() or value <= 0:
            raise self.error(row, f"column '{column}' must be a positive number, got '{raw}'")
        return value

    def coding_key(
        self, row: int, values: dict[str, str], seen: dict, value_column: str = "code"
    ) -> tuple[str, str]:
        """The row's (system, code) — both required — checked unique among the rows ``seen``."""
        key = (self.require(row, values, "system"), self.require(row, values, value_column))
        self.unique(seen, key, row)
        return key

    def unique(self, seen: dict, key, row: int) -> None:
        if key in seen:
            raise self.error(row, f"duplicate key {key} (first at row {seen[key]})")
        seen[key] = row


def split_names(raw: str) -> tuple[str, ...]:
    return tuple(n.strip().lower() for n in raw.split("|") if n.strip())
