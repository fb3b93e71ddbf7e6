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

from connectors.values import MISSING_TOKENS, is_missing
from worker.normalize.countries import REGIONS, normalize_country, region_for
from worker.normalize.numbers import parse_number
from worker.normalize.records import (
    DEFAULT_KINDS,
    KINDS,
    NON_NEGATIVE,
    NormalizeConfig,
    ValueProblem,
    normalize_record,
    normalize_status,
    normalize_values,
)
from worker.normalize.scalars import parse_bool, parse_date, parse_set

__all__ = [
    "DEFAULT_KINDS",
    "KINDS",
    "MISSING_TOKENS",
    "NON_NEGATIVE",
    "REGIONS",
    "NormalizeConfig",
    "ValueProblem",
    "is_missing",
    "normalize_country",
    "normalize_record",
    "normalize_status",
    "normalize_values",
    "parse_bool",
    "parse_date",
    "parse_number",
    "parse_set",
    "region_for",
]
