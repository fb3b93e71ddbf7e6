"""Messy CRM values → canonical attributes (pure: no I/O, no clock).

Connectors hand over records with canonical attribute names and raw values; this module cleans the
values in one place for every CRM::

    >>> normalize_record({"employees": "1,200", "country": "U.S.A.", "industry": " Software "},
    ...                  NormalizeConfig(industry_synonyms={"software": "Computer Software"}))
    ({'employees': 1200, 'country': 'US', 'industry': 'Computer Software', 'region': 'North America'}, [])

Rules, in short:

* Missing: ``None``, blank and the tokens in ``MISSING_TOKENS`` (case-insensitive, stripped) are missing and
  are left out of the attributes. Note that ``"NA"`` is a missing token, so it never means Namibia.
* A value that cannot be read becomes missing and adds a warning (``"employees: cannot read 'lots'"``);
  ``normalize_record`` never raises.
* Numbers accept grouping separators, currency symbols and codes, ``k``/``M``/``B`` suffixes, ``500+``
  (the lower bound) and ranges ``10-50`` (the **midpoint**, 30). See ``parse_number``.
* Countries become ISO 3166 alpha-2 codes (``normalize_country``) and add a ``region`` (``region_for``).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import pycountry

__all__ = [
    "DEFAULT_KINDS",
    "KINDS",
    "MISSING_TOKENS",
    "REGIONS",
    "NormalizeConfig",
    "is_missing",
    "normalize_country",
    "normalize_record",
    "parse_bool",
    "parse_date",
    "parse_number",
    "parse_set",
    "region_for",
]

# --------------------------------------------------------------------------------------------- missing

#: Values that mean "no data" (compared casefolded, after stripping). ``"nan"`` is here because pandas
#: writes it for blanks; a float NaN, on the other hand, is an error for ``parse_number``.
MISSING_TOKENS: frozenset[str] = frozenset(
    {
        "",
        "n/a",
        "n.a.",
        "n.a",
        "na",
        "-",
        "--",
        "---",
        "?",
        "none",
        "null",
        "nil",
        "nan",
        "unknown",
        "[[unknown]]",
        "[unknown]",
        "(unknown)",
        "<unknown>",
        "undefined",
        "unspecified",
        "not specified",
        "not available",
        "not applicable",
        "tbd",
        "#n/a",
        "#na",
        "#null!",
        "#value!",
        "#ref!",
        "#div/0!",
        "#name?",
    }
)
_MISSING_MAXLEN = max(len(t) for t in MISSING_TOKENS)


def is_missing(value: Any) -> bool:
    """True for ``None``, blank strings and missing tokens (see ``MISSING_TOKENS``)."""
    if value is None:
        return True
    if isinstance(value, str):
        s = value.strip()
        return not s or (len(s) <= _MISSING_MAXLEN and s.casefold() in MISSING_TOKENS)
    return False


def _clean_str(value: str) -> str | None:
    """Stripped string, or None when missing."""
    s = value.strip()
    if not s or (len(s) <= _MISSING_MAXLEN and s.casefold() in MISSING_TOKENS):
        return None
    return s


# --------------------------------------------------------------------------------------------- countries

_DROP_CHARS = re.compile(r"[.'’`´]")
_NON_WORD = re.compile(r"[\W_]+")


def _fold(text: str) -> str:
    """Fold a country name for matching: no accents, case, dots, apostrophes or punctuation."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = _NON_WORD.sub(" ", _DROP_CHARS.sub("", text)).strip()
    if text.startswith("the "):
        text = text[4:]
    if text.startswith("st "):
        text = "saint " + text[3:]
    return text


#: Common names, abbreviations and local names that pycountry's names and codes do not cover
#: (matched after ``_fold``, so "U.S.A." and "usa" are one entry). Explicit: no fuzzy matching.
_COUNTRY_ALIASES: dict[str, str] = {
    # United States
    "usa": "US",
    "us": "US",
    "us of a": "US",
    "united states": "US",
    "united states of america": "US",
    "america": "US",
    "estados unidos": "US",
    "vereinigte staaten": "US",
    "etats unis": "US",
    # United Kingdom
    "uk": "GB",
    "united kingdom": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "united kingdom of great britain and northern ireland": "GB",
    # Europe
    "deutschland": "DE",
    "germany": "DE",
    "federal republic of germany": "DE",
    "holland": "NL",
    "nederland": "NL",
    "netherlands": "NL",
    "czechia": "CZ",
    "czech republic": "CZ",
    "russia": "RU",
    "turkey": "TR",
    "turkiye": "TR",
    "macedonia": "MK",
    "republic of macedonia": "MK",
    "moldova": "MD",
    "vatican": "VA",
    "vatican city": "VA",
    "holy see": "VA",
    "espana": "ES",
    "italia": "IT",
    "schweiz": "CH",
    "suisse": "CH",
    "svizzera": "CH",
    "osterreich": "AT",
    "belgie": "BE",
    "belgique": "BE",
    "sverige": "SE",
    "norge": "NO",
    "danmark": "DK",
    "suomi": "FI",
    "polska": "PL",
    "eire": "IE",
    "hellas": "GR",
    "republic of ireland": "IE",
    # Middle East, Africa
    "uae": "AE",
    "emirates": "AE",
    "palestine": "PS",
    "state of palestine": "PS",
    "iran": "IR",
    "syria": "SY",
    "ivory coast": "CI",
    "cote divoire": "CI",
    "cape verde": "CV",
    "swaziland": "SZ",
    "dr congo": "CD",
    "drc": "CD",
    "democratic republic of congo": "CD",
    "democratic republic of the congo": "CD",
    "congo kinshasa": "CD",
    "republic of congo": "CG",
    "republic of the congo": "CG",
    "congo brazzaville": "CG",
    "tanzania": "TZ",
    "ksa": "SA",
    # Asia-Pacific
    "south korea": "KR",
    "korea": "KR",
    "korea south": "KR",
    "republic of korea": "KR",
    "north korea": "KP",
    "korea north": "KP",
    "dprk": "KP",
    "burma": "MM",
    "brunei": "BN",
    "laos": "LA",
    "vietnam": "VN",
    "viet nam": "VN",
    "taiwan": "TW",
    "macau": "MO",
    "east timor": "TL",
    "micronesia": "FM",
    "prc": "CN",
    "peoples republic of china": "CN",
    "mainland china": "CN",
    "hong kong sar": "HK",
    # Americas
    "bolivia": "BO",
    "venezuela": "VE",
    "brasil": "BR",
    "mexico": "MX",
    "us virgin islands": "VI",
    "british virgin islands": "VG",
    "falklands": "FK",
    "falkland islands": "FK",
    "curacao": "CW",
}


@lru_cache(maxsize=1)
def _country_index() -> dict[str, str]:
    """Folded name or code → alpha-2, built once from pycountry plus ``_COUNTRY_ALIASES``."""
    exact: dict[str, str] = {}
    derived: dict[str, set[str]] = {}
    for country in pycountry.countries:
        code = country.alpha_2
        names = [getattr(country, attr, None) for attr in ("name", "official_name", "common_name")]
        for key in (country.alpha_2, country.alpha_3, *names):
            if key:
                exact.setdefault(_fold(key), code)
        for name in names:
            # "Korea, Republic of" → also "Republic of Korea" and "Korea"; ambiguous short forms are dropped
            if name and ", " in name:
                head, _, tail = name.partition(", ")
                for key in (f"{tail} {head}", head):
                    derived.setdefault(_fold(key), set()).add(code)
            if name and " (" in name:
                derived.setdefault(_fold(name.split(" (", 1)[0]), set()).add(code)
    index = {key: next(iter(codes)) for key, codes in derived.items() if len(codes) == 1}
    index.update(exact)
    index.update(_COUNTRY_ALIASES)
    return index


_PARENS = re.compile(r"\(([^()]*)\)")


@lru_cache(maxsize=8192)
def normalize_country(value: str) -> str | None:
    """ISO 3166-1 alpha-2 code for a country name, code or common alias; None when missing or unknown.

    Matches names, official and common names, alpha-2 and alpha-3 codes from pycountry, ignoring case,
    accents and punctuation ("U.S.A.", "Côte d'Ivoire", "cote divoire"), plus an explicit alias table
    ("UK", "England", "Holland", "Deutschland", "South Korea", "Russia"...). No fuzzy matching. When nothing
    matches, a parenthesised part is tried ("Germany (DE)"). ``"NA"`` is a missing token, not Namibia.
    """
    if not isinstance(value, str):
        return None
    s = _clean_str(value)
    if s is None:
        return None
    index = _country_index()
    code = index.get(_fold(s))
    if code is None and "(" in s:
        for candidate in (_PARENS.sub(" ", s), *_PARENS.findall(s)):
            candidate = candidate.strip()
            if candidate and not is_missing(candidate):
                code = index.get(_fold(candidate))
                if code:
                    break
    return code


# --------------------------------------------------------------------------------------------- regions

# Sales regions by ISO 3166 alpha-2, following the UN M49 geographic regions:
#   North America = M49 "Northern America"; LATAM = "Latin America and the Caribbean";
#   EMEA = Europe, Africa, Western Asia, plus Iran (the Middle East); APAC = the rest of Asia and Oceania.
# Antarctica (AQ) belongs to no region. ``tests/unit/test_normalize.py`` checks full coverage of pycountry.
_REGION_CODES: dict[str, str] = {
    "North America": "US CA BM GL PM",
    "LATAM": (
        # Mexico, Central America
        "MX BZ CR SV GT HN NI PA "
        # South America (with South Georgia and Bouvet Island)
        "AR BO BR CL CO EC FK GF GY PY PE SR UY VE GS BV "
        # Caribbean
        "AI AG AW BS BB BQ VG KY CU CW DM DO GD GP HT JM MQ MS PR BL KN LC MF VC SX TT TC VI"
    ),
    "EMEA": (
        # Europe
        "AD AL AT AX BA BE BG BY CH CY CZ DE DK EE ES FI FO FR GB GG GI GR HR HU IE IM IS IT JE LI LT LU "
        "LV MC MD ME MK MT NL NO PL PT RO RS RU SE SI SJ SK SM UA VA XK "
        # Middle East (M49 Western Asia, plus Iran)
        "AE AM AZ BH GE IL IQ IR JO KW LB OM PS QA SA SY TR YE "
        # Africa (with the French Southern Territories and the British Indian Ocean Territory)
        "DZ AO BJ BW BF BI CV CM CF TD KM CG CD CI DJ EG GQ ER SZ ET GA GM GH GN GW KE LS LR LY MG MW "
        "ML MR MU YT MA MZ NA NE NG RE RW SH ST SN SC SL SO ZA SS SD TZ TG TN UG EH ZM ZW TF IO"
    ),
    "APAC": (
        # East, South-East, South and Central Asia
        "CN HK MO TW JP KR KP MN BN KH ID LA MY MM PH SG TH TL VN AF BD BT IN MV NP PK LK KZ KG TJ TM UZ "
        # Oceania
        "AU NZ NF HM CC CX FJ NC PG SB VU GU KI MH FM NR MP PW UM AS CK PF NU PN WS TK TO TV WF"
    ),
}
REGIONS: tuple[str, ...] = tuple(_REGION_CODES)
_REGION_BY_CODE: dict[str, str] = {
    code: region for region, codes in _REGION_CODES.items() for code in codes.split()
}


def region_for(alpha2: str) -> str | None:
    """The sales region of an alpha-2 code: North America, LATAM, EMEA or APAC; None if unknown (or AQ)."""
    if not isinstance(alpha2, str):
        return None
    region = _REGION_BY_CODE.get(alpha2)
    if region is None:
        region = _REGION_BY_CODE.get(alpha2.strip().upper())
    return region


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


def _finite(x: float, text: Any) -> float:
    if x - x != 0:  # NaN or ±inf
        raise ValueError(f"not a finite number: {_short(text)!r}")
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
        return _finite(value, value)
    if isinstance(value, Decimal):
        return _finite(float(value), value)
    if not isinstance(value, str):
        raise ValueError(f"not a number: {type(value).__name__}")
    s = value.strip()
    if not s or (len(s) <= _MISSING_MAXLEN and s.casefold() in MISSING_TOKENS):
        return None
    return _number_from_text(s)


def _number_from_text(s: str) -> float:
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
    return _finite(x, s)


@lru_cache(maxsize=16384)  # messy values repeat ("1.2M", "10-50"); only successes are cached
def _parse_messy_number(s: str) -> float:
    if len(s) > _MAX_NUMBER_TEXT:  # no number is written that long; keeps the regular expressions cheap
        raise ValueError(f"not a number: {_short(s)!r}")
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
    return _finite(float(result), s)


def _parse_range(t: str, original: str) -> Decimal:
    """The midpoint of a range ``low-high`` (casefolded text)."""
    match = _RANGE.fullmatch(t)
    if match is None:
        raise ValueError(f"not a number: {_short(original)!r}")
    try:
        low, low_suffix = _parse_amount(match["low"], with_suffix=True)
        high, high_suffix = _parse_amount(match["high"], with_suffix=True)
    except ValueError:
        raise ValueError(f"not a number: {_short(original)!r}") from None
    if low_suffix is None and high_suffix is not None:
        scaled = low * _MULTIPLIERS[high_suffix]
        if scaled <= high:
            low = scaled
    if low > high:
        raise ValueError(f"not a number: range {_short(original)!r} is reversed")
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
        items = [_number_text(value)]
    else:
        raise ValueError(f"not a list: {type(value).__name__}")
    seen: dict[str, str] = {}
    for item in items:
        if item is None:
            continue
        if not isinstance(item, str):
            if isinstance(item, bool) or not isinstance(item, int | float):
                raise ValueError(f"not a list item: {type(item).__name__}")
            item = _number_text(item)
        text = " ".join(item.split())
        if not text or (len(text) <= _MISSING_MAXLEN and text.casefold() in MISSING_TOKENS):
            continue
        seen.setdefault(text.casefold(), text)
    if not seen:
        return None
    return [seen[key] for key in sorted(seen)]


_TRUE = frozenset({"true", "yes", "y", "1", "x", "t", "on", "1.0"})
_FALSE = frozenset({"false", "no", "n", "0", "f", "off", "0.0"})


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
        raise ValueError(f"not a boolean: {_short(value)!r}")
    if not isinstance(value, str):
        raise ValueError(f"not a boolean: {type(value).__name__}")
    s = value.strip().casefold()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    if not s or (len(s) <= _MISSING_MAXLEN and s in MISSING_TOKENS):
        return None
    raise ValueError(f"not a boolean: {_short(value)!r}")


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
    s = _clean_str(value)
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
        raise ValueError(f"not a date: {_short(value)!r}") from None
    for fmt in _TEXT_DATE_FORMATS:
        try:
            return datetime.strptime(s, fmt).date().isoformat()
        except ValueError:
            continue
    raise ValueError(f"not a date: {_short(value)!r}")


# --------------------------------------------------------------------------------------------- records

KINDS: frozenset[str] = frozenset({"text", "number", "integer", "set", "country", "boolean", "date"})

#: Kinds of the canonical attributes; any other attribute is text unless ``attribute_kinds`` says otherwise.
DEFAULT_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "industry": "text",
        "employees": "integer",
        "annual_revenue": "number",
        "country": "country",
        "region": "text",
        "state": "text",
        "founded_year": "integer",
        "funding_stage": "text",
        "tech_stack": "set",
        "is_public": "boolean",
    }
)


def _short(value: Any, limit: int = 40) -> str:
    try:
        text = value if isinstance(value, str) else repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number_text(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


def _to_text(value: Any) -> str | None:
    if isinstance(value, str):
        s = value.strip()
        if not s or (len(s) <= _MISSING_MAXLEN and s.casefold() in MISSING_TOKENS):
            return None
        return " ".join(s.split())
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number_text(_finite(value, value))
    raise ValueError("not text")


def _to_number(value: Any) -> int | float | None:
    x = parse_number(value)
    if x is None or isinstance(x, int):
        return x
    if x.is_integer():
        return int(x)
    return x


def _to_integer(value: Any) -> int | None:
    if isinstance(value, str):
        s = value.strip()
        if not s or (len(s) <= _MISSING_MAXLEN and s.casefold() in MISSING_TOKENS):
            return None
        try:
            return int(s)
        except ValueError:
            x: float | None = _number_from_text(s)
    else:
        x = parse_number(value)
    if x is None or isinstance(x, int):
        return x
    return math.floor(x + 0.5)  # round half up: "17.5" → 18


def _to_country(value: Any) -> str | None:
    if not isinstance(value, str):
        raise ValueError("not a country")
    code = normalize_country(value)
    if code is None and not is_missing(value):
        raise ValueError("unknown country")
    return code


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "text": _to_text,
    "number": _to_number,
    "integer": _to_integer,
    "set": parse_set,
    "country": _to_country,
    "boolean": parse_bool,
    "date": parse_date,
}


def _synonym_key(text: str) -> str:
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class NormalizeConfig:
    """How a connection's attributes are cleaned.

    ``industry_synonyms`` maps a synonym to its canonical industry, matched casefolded with whitespace
    collapsed (each canonical name also matches itself in any case). ``attribute_kinds`` sets or overrides
    the kind of an attribute (one of ``KINDS``); see ``DEFAULT_KINDS``.
    """

    industry_synonyms: Mapping[str, str] = field(default_factory=dict)
    attribute_kinds: Mapping[str, str] = field(default_factory=dict)
    _converters: Mapping[str, Callable[[Any], Any]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        synonyms = MappingProxyType(dict(self.industry_synonyms))
        kinds = MappingProxyType(dict(self.attribute_kinds))
        bad = sorted(f"{name}: {kind!r}" for name, kind in kinds.items() if kind not in KINDS)
        if bad:
            raise ValueError(f"unknown attribute kind ({', '.join(bad)}); use one of {sorted(KINDS)}")
        object.__setattr__(self, "industry_synonyms", synonyms)
        object.__setattr__(self, "attribute_kinds", kinds)

        table: dict[str, str] = {}
        for canonical in synonyms.values():
            table[_synonym_key(canonical)] = " ".join(canonical.split())
        for synonym, canonical in synonyms.items():
            table[_synonym_key(synonym)] = " ".join(canonical.split())

        def industry(value: Any) -> str | None:
            text = _to_text(value)
            if text is None:
                return None
            return table.get(text.casefold(), text)

        converters = {name: _CONVERTERS[kind] for name, kind in {**DEFAULT_KINDS, **kinds}.items()}
        if converters["industry"] is _to_text and table:
            converters["industry"] = industry
        object.__setattr__(self, "_converters", MappingProxyType(converters))

    def kind_of(self, attribute: str) -> str:
        """The kind of an attribute under this configuration."""
        return self.attribute_kinds.get(attribute) or DEFAULT_KINDS.get(attribute, "text")


def normalize_record(raw: Mapping[str, Any], config: NormalizeConfig) -> tuple[dict[str, Any], list[str]]:
    """Clean one record's raw attributes: (attributes, warnings). Never raises.

    Attributes are JSON-friendly: integers as ``int``, numbers as ``int`` when integral else ``float``,
    sets as sorted lists, booleans, dates as ISO strings, text stripped with internal whitespace collapsed,
    countries as alpha-2 codes plus a ``region`` attribute (unless the record already has one). Missing
    values are left out. An unreadable value is left out and adds a warning
    (``"employees: cannot read 'lots'"``).
    """
    attributes: dict[str, Any] = {}
    warnings: list[str] = []
    converters = config._converters
    try:
        for key, value in raw.items():
            if value is None:
                continue
            try:
                result = converters.get(key, _to_text)(value)
            except Exception:
                warnings.append(f"{_short(key, 60)}: cannot read {_short(value)!r}")
                continue
            if result is not None:
                attributes[key] = result
    except Exception:  # not a mapping after all
        warnings.append(f"record: cannot read {_short(raw)!r}")
    country = attributes.get("country")
    if country is not None and "region" not in attributes and isinstance(country, str):
        region = _REGION_BY_CODE.get(country)
        if region is not None:
            attributes["region"] = region
    return attributes, warnings
