"""Sets, booleans and dates from CRM values (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from connectors.values import (
    FALSE_WORDS,
    MISSING_MAXLEN,
    MISSING_TOKENS,
    TRUE_WORDS,
    clean_text,
    plain_number,
    short,
)

__all__ = ["parse_bool", "parse_date", "parse_set"]

# ------------------------------------------------------------------------------------- sets, booleans, dates

_SET_SEPARATORS = re.compile(r"[;,|\n]")


def parse_set(value: Any) -> list[str] | None:
    """A multi-value (``"a;b;c"``, ``"a, b"``, ``"a|b"``, a list, tuple or set) → sorted unique list or None.

    Items are stripped with internal whitespace collapsed; missing tokens are dropped; duplicates that
    differ only in case keep the first spelling; the result is sorted case-insensitively.
    """
    if value is None:
        return None
    if isinstance(value, str):
        items: Iterable[Any] = _SET_SEPARATORS.split(value)
    elif isinstance(value, list | tuple | set | frozenset):
        items = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        items = [plain_number(value)]
    else:
        raise ValueError(f"not a list: {type(value).__name__}")
    seen: dict[str, str] = {}
    for item in items:
        if item is None:
            continue
        if not isinstance(item, str):
            if isinstance(item, bool) or not isinstance(item, int | float):
                raise ValueError(f"not a list item: {type(item).__name__}")
            item = plain_number(item)
        text = " ".join(item.split())
        if not text or (len(text) <= MISSING_MAXLEN and text.casefold() in MISSING_TOKENS):
            continue
        seen.setdefault(text.casefold(), text)
    if not seen:
        return None
    return [seen[key] for key in sorted(seen)]


def parse_bool(value: Any) -> bool | None:
    """true/false, yes/no, y/n, 1/0, t/f, on/off and ``x`` (a ticked box) → bool; None when missing."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if value == 1:
            return True
        if value == 0:
            return False
        raise ValueError(f"not a boolean: {short(value)!r}")
    if not isinstance(value, str):
        raise ValueError(f"not a boolean: {type(value).__name__}")
    s = value.strip().casefold()
    if s in TRUE_WORDS:
        return True
    if s in FALSE_WORDS:
        return False
    if not s or (len(s) <= MISSING_MAXLEN and s in MISSING_TOKENS):
        return None
    raise ValueError(f"not a boolean: {short(value)!r}")


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SLASH_DATE = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")
_YMD_SLASH = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})")
_TEXT_DATE_FORMATS = ("%b %d, %Y", "%B %d, %Y", "%d %b %Y", "%d %B %Y", "%b %d %Y", "%B %d %Y")


def parse_date(value: Any) -> str | None:
    """An ISO date ``YYYY-MM-DD``; None when missing; ValueError when unreadable.

    Accepts dates and datetimes, ISO 8601 (a time part is dropped: the date as written), ``YYYY/MM/DD``,
    ``MM/DD/YYYY`` (US order, as Salesforce exports it; day first only when the first number exceeds 12),
    ``DD.MM.YYYY`` (dotted: day first), and ``Jan 31, 2024`` / ``31 January 2024``.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if not isinstance(value, str):
        raise ValueError(f"not a date: {type(value).__name__}")
    s = clean_text(value)
    if s is None:
        return None
    try:
        if len(s) == 10 and _ISO_DATE.fullmatch(s):
            return date.fromisoformat(s).isoformat()
        if len(s) > 10 and _ISO_DATE.match(s):
            return datetime.fromisoformat(s.replace("z", "Z")).date().isoformat()
        head = s.split()[0].rstrip(",")
        match = _SLASH_DATE.fullmatch(head)
        if match:
            a, b, year = (int(g) for g in match.groups())
            if "." in head or a > 12:  # dotted dates are day first; so is an impossible month
                return date(year, b, a).isoformat()
            return date(year, a, b).isoformat()
        match = _YMD_SLASH.fullmatch(head)
        if match:
            return date(*(int(g) for g in match.groups())).isoformat()
    except ValueError:
        raise ValueError(f"not a date: {short(value)!r}") from None
    for fmt in _TEXT_DATE_FORMATS:
        try:
            return datetime.strptime(s, fmt).date().isoformat()
        except ValueError:
            continue
    raise ValueError(f"not a date: {short(value)!r}")
