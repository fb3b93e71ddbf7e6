"""How a criterion reads a value: text for categorical matches, numbers for bands, booleans, members of a
set; plus the bounded caches the compiled criteria keep. Pure, no I/O, never raises on odd input.

Anything that cannot be read as the criterion's kind of value is *missing* (docs/scoring.md).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, TypeVar

from connectors.values import FALSE_WORDS, TRUE_WORDS

__all__ = [
    "CACHE_LIMIT",
    "COLLECTIONS",
    "MAX_CACHED_TEXT",
    "BoundedCache",
    "members_of",
    "scalar_text",
    "to_bool",
    "to_number",
]

#: Entries per criterion in the (value → Reason) cache before it is cleared.
CACHE_LIMIT = 4096
#: Longest text remembered as a cache key (longer values are scored, just not cached).
MAX_CACHED_TEXT = 200

COLLECTIONS = (list, tuple, set, frozenset)


def scalar_text(value: Any) -> str | None:
    """Text form of a scalar for categorical matching (stripped, case kept), or None when not usable."""
    if isinstance(value, str):
        text = value.strip()
        return text or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value.bit_length() > 64:
            return None
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(float(value))
    if isinstance(value, numbers.Real | Decimal):
        return scalar_text(float(value)) if _finite(value) else None
    return None


def to_number(value: Any) -> int | float | None:
    """A finite number, or None (bools, NaN, inf, unparsable text and non-numbers are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 64:
            return None
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    if isinstance(value, numbers.Real | Decimal) and _finite(value):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _finite(value: numbers.Real | Decimal) -> bool:
    return value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)


def to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().casefold()
        if text in TRUE_WORDS:
            return True
        if text in FALSE_WORDS:
            return False
    return None


def members_of(value: Any) -> Iterable[Any] | None:
    """Members of a multi-valued attribute (a single scalar is a one-member set), None if not a set."""
    if isinstance(value, COLLECTIONS):
        return value
    if isinstance(value, str | int | float):
        return (value,)
    return None


_BIG_KEY = 2**128


K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(dict[K, V]):
    """A dict that forgets everything when it reaches ``CACHE_LIMIT`` entries (cheap, and hot keys return).

    Very long texts and huge integers are not remembered, so odd data cannot make a cache big in memory.
    """

    __slots__ = ()

    def put(self, key: K, value: V) -> V:
        t = type(key)
        if (t is str and len(key) > MAX_CACHED_TEXT) or (  # type: ignore[arg-type]
            t is int and not -_BIG_KEY < key < _BIG_KEY  # type: ignore[operator]
        ):
            return value
        if len(self) >= CACHE_LIMIT:
            self.clear()
        self[key] = value
        return value
