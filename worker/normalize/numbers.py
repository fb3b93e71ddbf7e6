"""Numbers from messy CRM text: grouping, currencies, suffixes, ranges (pure)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import pycountry

from connectors.values import MISSING_MAXLEN, MISSING_TOKENS, short

__all__ = ["finite", "number_from_text", "parse_number"]

# --------------------------------------------------------------------------------------------- numbers

_MULTIPLIERS: dict[str, Decimal] = {
    "k": Decimal(10) ** 3,
    "thousand": Decimal(10) ** 3,
    "m": Decimal(10) ** 6,
    "mm": Decimal(10) ** 6,
    "mn": Decimal(10) ** 6,
    "mio": Decimal(10) ** 6,
    "million": Decimal(10) ** 6,
    "millions": Decimal(10) ** 6,
    "b": Decimal(10) ** 9,
    "bn": Decimal(10) ** 9,
    "bln": Decimal(10) ** 9,
    "billion": Decimal(10) ** 9,
    "billions": Decimal(10) ** 9,
    "t": Decimal(10) ** 12,
    "tn": Decimal(10) ** 12,
    "trillion": Decimal(10) ** 12,
}
_CURRENCY_SYMBOLS = "$€£¥₹₩₽¢₺₪₫₴₦₱฿"
_CURRENCY_PREFIXES = ("us$", "usd$", "ca$", "c$", "a$", "au$", "nz$", "hk$", "s$", "r$", "mx$")
_DASHES = str.maketrans({"–": "-", "—": "-", "−": "-", "‒": "-", "\u00a0": " ", "\u202f": " ", "\u2009": " "})
_UNIT_WORDS = re.compile(r"\s*(?:employees?|emps?|people|persons|staff|ftes?|heads?|headcount)\s*$")
_SINGLE = re.compile(r"(?P<num>\d[\d,.' _]*|\.\d+)\s*(?P<suffix>[a-z]+)?")
_RANGE = re.compile(r"(?P<low>[^-].*?)\s*(?:-|\bto\b)\s*(?P<high>[^-\s].*)")
_GROUPED_COMMA = re.compile(r"\d{1,3}(?:,\d{3})+")
_MAX_NUMBER_TEXT = 80
_SIMPLE_MESSY = re.compile(r"[$€£]?(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)([kKmMbB]?)")
_SIMPLE_MULTIPLIERS = {"k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "b": 1e9, "B": 1e9}
_GROUPED_DOT = re.compile(r"\d{1,3}(?:\.\d{3})+")


@lru_cache(maxsize=1)
def _currency_codes() -> frozenset[str]:
    return frozenset(c.alpha_3.casefold() for c in pycountry.currencies)


def finite(x: float, text: Any) -> float:
    if x - x != 0:  # NaN or ±inf
        raise ValueError(f"not a finite number: {short(text)!r}")
    return x


def parse_number(value: Any) -> float | None:
    """A number from a messy CRM value; None when missing; ValueError when unreadable.

    * ``int`` and ``float`` pass through (NaN and ±inf raise); ``bool`` raises.
    * Strings: ``"1,200"``, ``"1 200"``, ``"1'200"``, ``"1.200.000"``, ``"1.234,5"`` (the last separator
      is the decimal one when both appear; a single ``.`` is always decimal: ``"1.200"`` is 1.2; a single
      ``,`` is grouping when followed by exactly three digits, ``"1,200"``, else decimal, ``"1,5"``),
      currency symbols and ISO codes (``"$5m"``, ``"€3,000,000"``, ``"5000 EUR"``), suffixes ``k``,
      ``m``/``mm``/``mn``, ``b``/``bn``, ``t`` and the words thousand/million/billion, accounting negatives
      ``"(500)"``,
      a trailing ``%`` (kept as is: ``"15%"`` is 15), ``~``, and head-count words (``"50 employees"``).
    * ``"500+"`` and ``">500"`` are the lower bound, 500.
    * A range ``"10-50"`` (also ``"10 to 50"``, ``"$1M-$5M"``, ``"1-5M"``) is its **midpoint** (30): a range
      says the value is somewhere inside, and the midpoint is the least biased single figure. A suffix on
      the upper bound only applies to the lower one too (``"1-5M"`` is 1M-5M) unless that would put it
      above the upper bound (``"500-1M"``).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("not a number: a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return finite(value, value)
    if isinstance(value, Decimal):
        return finite(float(value), value)
    if not isinstance(value, str):
        raise ValueError(f"not a number: {type(value).__name__}")
    s = value.strip()
    if not s or (len(s) <= MISSING_MAXLEN and s.casefold() in MISSING_TOKENS):
        return None
    return number_from_text(s)


def number_from_text(s: str) -> float:
    """A number from stripped, non-missing text."""
    try:
        x = float(s)
    except ValueError:
        # fast path for the commonest messy shapes, "1,200" and "$5.2m"
        match = _SIMPLE_MESSY.fullmatch(s)
        if match is None:
            return _parse_messy_number(s)
        digits, suffix = match.group(1, 2)
        x = float(digits.replace(",", ""))
        if suffix:
            x *= _SIMPLE_MULTIPLIERS[suffix]
            if not x.is_integer():  # "1.1M": exact decimal arithmetic avoids 1100000.0000000002
                return _parse_messy_number(s)
    return finite(x, s)


@lru_cache(maxsize=16384)  # messy values repeat ("1.2M", "10-50"); only successes are cached
def _parse_messy_number(s: str) -> float:
    if len(s) > _MAX_NUMBER_TEXT:  # no number is written that long; keeps the regular expressions cheap
        raise ValueError(f"not a number: {short(s)!r}")
    t = s.translate(_DASHES).casefold().strip()
    t = _UNIT_WORDS.sub("", t)
    for prefix in ("approximately", "approx.", "approx", "about", "circa", "ca.", "~"):
        if t.startswith(prefix):
            t = t[len(prefix) :].lstrip()
            break
    if t.endswith("+"):
        t = t[:-1].rstrip()
    elif t.startswith((">=", "≥")):
        t = t[2:].lstrip() if t.startswith(">=") else t[1:].lstrip()
    elif t.startswith(">"):
        t = t[1:].lstrip()
    if t.endswith("%"):
        t = t[:-1].rstrip()
    try:
        result = _parse_amount(t)
    except ValueError:
        result = _parse_range(t, s)
    return finite(float(result), s)


def _parse_range(t: str, original: str) -> Decimal:
    """The midpoint of a range ``low-high`` (casefolded text)."""
    match = _RANGE.fullmatch(t)
    if match is None:
        raise ValueError(f"not a number: {short(original)!r}")
    low: Decimal
    high: Decimal
    try:
        low, low_suffix = _parse_amount(match["low"], with_suffix=True)
        high, high_suffix = _parse_amount(match["high"], with_suffix=True)
    except ValueError:
        raise ValueError(f"not a number: {short(original)!r}") from None
    if low_suffix is None and high_suffix is not None:
        scaled = low * _MULTIPLIERS[high_suffix]
        if scaled <= high:
            low = scaled
    if low > high:
        raise ValueError(f"not a number: range {short(original)!r} is reversed")
    return (low + high) / 2


def _parse_amount(t: str, with_suffix: bool = False) -> Any:
    """One amount (casefolded text) → Decimal, or (Decimal, suffix) with ``with_suffix``."""
    t = t.strip()
    negative = False
    if t.startswith("(") and t.endswith(")"):
        negative, t = True, t[1:-1].strip()
    if t.startswith("-"):
        negative, t = not negative, t[1:].lstrip()
    elif t.startswith("+"):
        t = t[1:].lstrip()
    t = _strip_currency(t)
    if t.startswith("-") and not negative:  # "$-5"
        negative, t = True, t[1:].lstrip()
    match = _SINGLE.fullmatch(t)
    if match is None:
        raise ValueError("not a number")
    suffix = match["suffix"]
    if suffix is not None and suffix not in _MULTIPLIERS:
        raise ValueError("not a number")
    amount = _to_decimal(match["num"].rstrip(" _'"))
    if suffix is not None:
        amount *= _MULTIPLIERS[suffix]
    if negative:
        amount = -amount
    return (amount, suffix) if with_suffix else amount


def _strip_currency(t: str) -> str:
    changed = True
    while changed and t:
        changed = False
        if t[0] in _CURRENCY_SYMBOLS:
            t, changed = t[1:].lstrip(), True
        elif t[-1] in _CURRENCY_SYMBOLS:
            t, changed = t[:-1].rstrip(), True
        elif t.startswith(_CURRENCY_PREFIXES):
            t, changed = t.split("$", 1)[1].lstrip(), True
        elif len(t) > 3 and t[:3].isalpha() and t[:3] in _currency_codes():
            t, changed = t[3:].lstrip(), True
        elif len(t) > 3 and t[-3:].isalpha() and t[-4] in " 0123456789" and t[-3:] in _currency_codes():
            t, changed = t[:-3].rstrip(), True
    return t


def _to_decimal(num: str) -> Decimal:
    num = num.replace(" ", "").replace("'", "").replace("_", "")
    has_comma, has_dot = "," in num, "." in num
    if has_comma and has_dot:
        if num.rfind(",") > num.rfind("."):  # 1.234,5
            num = num.replace(".", "").replace(",", ".")
        else:  # 1,234.5
            num = num.replace(",", "")
    elif has_comma:
        if _GROUPED_COMMA.fullmatch(num):
            num = num.replace(",", "")
        elif num.count(",") == 1:
            num = num.replace(",", ".")
        else:
            raise ValueError("not a number")
    elif has_dot and num.count(".") > 1:
        if not _GROUPED_DOT.fullmatch(num):
            raise ValueError("not a number")
        num = num.replace(".", "")
    try:
        return Decimal(num)
    except InvalidOperation:
        raise ValueError("not a number") from None
