"""The value words every part of the program reads the same way: true/false words, missing markers and
number text (pure: no I/O).

One list each, used by the normaliser (``worker.normalize``), scoring, outcomes and derive, the files
connector's cells and both CRM mappings. It lives beside the connector seam (``connectors.base``) because
connectors must not import the worker, while the worker already imports connectors.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "FALSE_WORDS",
    "MISSING_TOKENS",
    "TRUE_WORDS",
    "clean_text",
    "grouped_number",
    "is_missing",
    "plain_number",
    "short",
    "word_to_bool",
]

#: Words (compared casefolded, after stripping) that mean true: ``x`` is a ticked box in a spreadsheet.
TRUE_WORDS: frozenset[str] = frozenset({"true", "yes", "y", "t", "1", "1.0", "on", "x"})
#: Words that mean false.
FALSE_WORDS: frozenset[str] = frozenset({"false", "no", "n", "f", "0", "0.0", "off"})

#: Values that mean "no data" (compared casefolded, after stripping). ``"nan"`` is here because pandas
#: writes it for blanks; a float NaN, on the other hand, is an error for a number. ``"NA"`` is missing,
#: so it never means Namibia.
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
MISSING_MAXLEN = max(len(t) for t in MISSING_TOKENS)


def is_missing(value: Any) -> bool:
    """True for ``None``, blank strings and missing tokens (see ``MISSING_TOKENS``)."""
    if value is None:
        return True
    if isinstance(value, str):
        s = value.strip()
        return not s or (len(s) <= MISSING_MAXLEN and s.casefold() in MISSING_TOKENS)
    return False


def clean_text(value: str) -> str | None:
    """The stripped string, or None when it is blank or a missing token."""
    s = value.strip()
    if not s or (len(s) <= MISSING_MAXLEN and s.casefold() in MISSING_TOKENS):
        return None
    return s


def word_to_bool(text: str) -> bool | None:
    """``TRUE_WORDS`` → True, ``FALSE_WORDS`` → False, anything else (missing or unreadable) → None."""
    s = text.strip().casefold()
    if s in TRUE_WORDS:
        return True
    if s in FALSE_WORDS:
        return False
    return None


def plain_number(value: int | float) -> str:
    """A number as machine text: integral floats without ``.0`` (``1200.0`` → ``1200``), others as Python
    writes them (``2.5``, ``1e+20``)."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    return str(value)


def grouped_number(value: int | float) -> str:
    """A number for people: ``1200`` → ``1200``, ``12000`` → ``12,000``, ``2.5`` → ``2.5``; grouping from
    ten thousand up, six significant digits for fractions (three below 1)."""
    if float(value).is_integer():
        return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))
    return f"{value:,.6g}" if abs(value) >= 1 else f"{value:.3g}"


def short(value: Any, limit: int = 40) -> str:
    """``value`` as text for a message, cut to ``limit`` characters with ``…``."""
    try:
        text = value if isinstance(value, str) else repr(value)
    except Exception:  # a repr that raises
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"
