"""Plain-text and CSV tables for the reading commands (`show`, `trend`): cells as people read them."""

import csv
import io
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

GAP = "  "


def cell(value: Any) -> str:
    """A value as text: exact decimals without exponent, ISO dates, empty for NULL."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return " ".join(str(value).split())  # one line per row, whatever a name holds


def signed(value: Any) -> str:
    """A change: `+3`, `-1.50`, `0`; empty for NULL (no previous value to compare with)."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "+f") if value else format(value, "f").lstrip("-")
    return f"{value:+d}" if value else "0"


def is_number(value: Any) -> bool:
    return isinstance(value, (int, Decimal, float)) and not isinstance(value, bool)


def aligned(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> list[str]:
    """Lines of a table: columns as wide as their widest cell, `right`-flagged columns right-aligned."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)]
        return GAP.join(padded).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """RFC 4180 CSV (header row first), cells as `cell` writes them."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows([[v if isinstance(v, str) else cell(v) for v in row] for row in rows])
    return buffer.getvalue()
