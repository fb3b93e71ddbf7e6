"""Reading and writing single CSV cells: stamps, dates, booleans, amounts, and formula-injection escaping.

The connector keeps values raw (``worker.normalize`` cleans attributes); these helpers only read the few
fields the connector itself must understand: the modification stamp, dates and the status keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from itertools import repeat
from typing import Any

from connectors.values import plain_number, word_to_bool

_CANONICAL_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_ISO_PREFIX = re.compile(r"\d{4}-\d{2}-\d{2}")
_STAMP_FORMATS = (
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
)


def format_stamp(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC; a naive datetime is taken as UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def parse_stamp(text: str) -> datetime | None:
    """A modification stamp in a common export format → aware UTC datetime; None when unreadable.

    ISO 8601 (``2026-11-23T02:00:00.000Z``, ``...+0000``, ``2026-11-23 02:00:00``, a bare date), US
    ``11/23/2026 2:00 PM`` (month first; day first only when the month would be impossible), dotted
    ``23.11.2026 14:00``, ``2026/11/23 14:00`` and epoch seconds or milliseconds. No zone means UTC.
    """
    s = text.strip()
    if not s:
        return None
    moment: datetime | None = None
    if _ISO_PREFIX.match(s):
        try:
            moment = datetime.fromisoformat(s)
        except ValueError:
            return None
    elif s.isdigit() and len(s) in (10, 13):
        seconds = int(s) / 1000 if len(s) == 13 else int(s)
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    else:
        for fmt in _STAMP_FORMATS:
            try:
                moment = datetime.strptime(s, fmt)
                break
            except ValueError:
                continue
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def normalize_stamp(text: str) -> str | None:
    """A stamp as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC (stamps then compare as strings); None if unreadable."""
    s = text.strip()
    if len(s) == 24 and _CANONICAL_STAMP.fullmatch(s):
        return s
    moment = parse_stamp(s)
    return None if moment is None else format_stamp(moment)


def parse_day(text: str) -> date | None:
    """A date cell (``2026-11-23``, a stamp, ``11/23/2026``...) → date as written; None when unreadable."""
    s = text.strip()
    if not s:
        return None
    if _ISO_PREFIX.match(s):
        try:
            return date.fromisoformat(s[:10])
        except ValueError:
            return None
    moment = parse_stamp(s)
    return None if moment is None else moment.date()


def parse_flag(text: str) -> bool | None:
    """``true``/``false`` (the words of ``connectors.values``: 1/0, yes/no ...) → bool; None when empty or
    unreadable."""
    return word_to_bool(text)


def parse_amount(text: str) -> float | None:
    """``12000``, ``12,000.50``, ``$12,000`` → float; None when empty or unreadable."""
    s = text.strip().replace(",", "").replace(" ", "").lstrip("$€£")
    if not s:
        return None
    try:
        value = float(s)
    except ValueError:
        return None
    return value if value - value == 0 else None


#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(cell: str) -> str:
    """Prefix a single quote to a cell a spreadsheet would read as a formula.

    Every cell starting with ``= + - @``, a tab or a carriage return is escaped, including a plain negative
    number: ``"-5"`` becomes ``"'-5"``. Owned fields are never negative numbers, and telling a number from a
    formula such as ``-1+cmd|' /C calc'!A0`` reliably is not worth the risk.
    """
    if cell and cell.startswith(FORMULA_PREFIXES):
        return "'" + cell
    return cell


def owned_cell(value: Any, null_value: str = "") -> str:
    """``escape_formula(format_cell(value, null_value))``, the same text, with the owned fields' common
    types first (the files connector's write formats every owned value of every record: 2.9 million
    cells at 410,389 records). A ``str`` needs the formula check only; ``True``/``False`` never start
    with a formula character; a non-negative ``int`` never does, a negative one always does (``-``).
    Anything else (floats, ``None``, dates, lists, subclasses of these types) takes the plain path."""
    kind = type(value)
    if kind is str:
        return "'" + value if value.startswith(FORMULA_PREFIXES) else value
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value) if value >= 0 else "'" + str(value)
    return escape_formula(format_cell(value, null_value))


def owned_cells(values: list[Any], null_value: str = "") -> list[str]:
    """``[owned_cell(value, null_value) for value in values]``, the same texts, for one column of a write:
    a column of one common type (the sync's updates: scores and versions ``int``, tiers, reasons and
    stamps ``str``, flags ``bool``) is checked and formatted by builtins over the whole column instead
    of a Python call per cell."""
    kinds = set(map(type, values))
    if kinds == {str}:
        if any(map(str.startswith, values, repeat(FORMULA_PREFIXES))):
            return [escape_formula(value) for value in values]
        return values
    if kinds == {bool}:
        return ["true" if value else "false" for value in values]
    if kinds == {int} and min(values) >= 0:
        return list(map(str, values))
    return [owned_cell(value, null_value) for value in values]


def format_cell(value: Any, null_value: str = "") -> str:
    """An owned-field value as CSV text (before escaping): booleans ``true``/``false``, integral floats
    without ``.0``, datetimes as UTC stamps, dates in ISO, lists joined with ``"; "``, mappings as JSON."""
    if value is None:
        return null_value
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return plain_number(value)
    if isinstance(value, datetime):
        return format_stamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)
    if isinstance(value, Sequence | set | frozenset):
        return "; ".join(format_cell(item) for item in value)
    return str(value)
