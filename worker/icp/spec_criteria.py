"""Criteria and disqualifiers of an ICP file → :class:`Criterion` / :class:`Disqualifier`, with ``file:line``
errors. The criterion types and the keys each type takes come from :mod:`worker.icp.model`.
"""

from __future__ import annotations

import math
from typing import Any

from worker.icp.model import (
    CRITERION_TYPE_FIELDS,
    CRITERION_TYPES,
    Band,
    Criterion,
    CriterionType,
    Disqualifier,
)
from worker.icp.spec_fields import (
    FieldReader,
    YamlMap,
    check_unit,
    check_weight,
    describe,
    fmt_number,
    is_bool,
    item_line,
    key_line,
    line_of,
    value_field,
)
from worker.normalize import normalize_country as _normalize_country

__all__ = ["COUNTRY_ATTRIBUTES", "CriteriaParser"]

#: Attributes whose listed values are normalised to ISO 3166 alpha-2 codes.
COUNTRY_ATTRIBUTES = frozenset({"country"})

_CRITERION_COMMON = ("key", "attribute", "weight", "type", "label")
_CRITERION_ALL = frozenset(_CRITERION_COMMON).union(*CRITERION_TYPE_FIELDS.values())
_BAND_KEYS = ("min", "max", "credit")
_DISQUALIFIER_KEYS = ("key", "attribute", "description", "values", "min", "max", "equals")


class CriteriaParser(FieldReader):
    """The ``criteria`` and ``disqualifiers`` lists of an ICP file."""

    def parse_criteria(self, data: YamlMap, used: dict[str, str], top_line: int) -> list[Criterion] | None:
        if not self.required(data, "criteria", "", top_line):
            return None
        raw = data["criteria"]
        line = key_line(data, "criteria", top_line)
        if not isinstance(raw, list):
            self.err(line, "criteria", f"must be a list (got {describe(raw)})")
            return None
        if not raw:
            self.err(line, "criteria", "must not be empty")
            return None
        out: list[Criterion] = []
        for i, item in enumerate(raw):
            criterion = self.parse_criterion(item, f"criteria[{i}]", item_line(raw, i, line), used)
            if criterion is not None:
                out.append(criterion)
        return out

    def parse_criterion(self, item: Any, path: str, line: int, used: dict[str, str]) -> Criterion | None:
        if not isinstance(item, dict):
            self.err(line, path, f"must be a mapping (got {describe(item)})")
            return None
        line = line_of(item, line)
        errors_before = len(self.errors)
        ctype = self.criterion_type(item, path, line)
        self.check_criterion_keys(item, path, line, ctype)
        key = self.check_key(item, path, line, used)
        attribute = self.get_str(item, "attribute", path, line, required=True)
        weight = self.get_number(item, "weight", path, line, check=check_weight, required=True)
        label = self.get_str(item, "label", path, line)
        typed = self.type_fields(item, path, line, ctype, attribute) if ctype is not None else {}
        if (
            len(self.errors) != errors_before
            or key is None
            or attribute is None
            or weight is None
            or ctype is None
        ):
            return None
        return Criterion(key=key, attribute=attribute, weight=weight, type=ctype, label=label, **typed)

    def criterion_type(self, item: YamlMap, path: str, line: int) -> CriterionType | None:
        name = self.get_str(item, "type", path, line, required=True)
        for ctype in CRITERION_TYPES:
            if name == ctype:
                return ctype
        if name is not None:
            self.err(
                key_line(item, "type", line),
                f"{path}.type",
                f"unknown type {name!r} (expected one of: {', '.join(CRITERION_TYPES)})",
            )
        return None

    def check_criterion_keys(self, item: YamlMap, path: str, line: int, ctype: CriterionType | None) -> None:
        for key in item:
            field = f"{path}.{key}"
            kline = key_line(item, key, line)
            if key not in _CRITERION_ALL:
                self.err(kline, field, f"unknown key {str(key)!r}")
            elif (
                ctype is not None and key not in _CRITERION_COMMON and key not in CRITERION_TYPE_FIELDS[ctype]
            ):
                owners = [t for t, keys in CRITERION_TYPE_FIELDS.items() if key in keys]
                self.err(
                    kline,
                    field,
                    f"{key!r} does not apply to a {ctype} criterion (only to {' or '.join(owners)})",
                )

    def type_fields(
        self, item: YamlMap, path: str, line: int, ctype: CriterionType, attribute: str | None
    ) -> dict[str, Any]:
        """The :class:`Criterion` fields of one type (:data:`CRITERION_TYPE_FIELDS`), as keyword arguments."""
        fields: dict[str, Any] = {}
        if ctype in ("categorical", "contains_any") and self.required(item, "values", path, line):
            values, labels = self.parse_credit_values(item, path, line, attribute) or ({}, {})
            fields["values"], fields["labels"] = values, labels
        if ctype == "categorical":
            got = self.get_number(item, "default", path, line, check=check_unit)
            fields["default"] = 0.0 if got is None else got
        if ctype == "bands" and self.required(item, "bands", path, line):
            fields["bands"] = self.parse_bands(item["bands"], f"{path}.bands", key_line(item, "bands", line))
        if ctype == "boolean":
            got_bool = self.get_bool(item, "expected", path, line)
            fields["expected"] = True if got_bool is None else got_bool
            got = self.get_number(item, "credit", path, line, check=check_unit)
            fields["credit"] = 1.0 if got is None else got
        return fields

    def normalise_value(self, raw: Any, field: str, line: int, attribute: str | None) -> str | None:
        if is_bool(raw) or not isinstance(raw, str | int):
            self.err(line, field, f"must be text (got {describe(raw)})")
            return None
        text = str(raw).strip()
        if not text:
            self.err(line, field, "must not be empty")
            return None
        if attribute in COUNTRY_ATTRIBUTES:
            code = _country_code(text)
            if code is None:
                self.err(line, field, f"unknown country {text!r}")
                return None
            return code
        return text.casefold()

    def parse_credit_values(
        self, item: YamlMap, path: str, line: int, attribute: str | None
    ) -> tuple[dict[str, float], dict[str, str]] | None:
        """(normalised value → credit, normalised value → the value as written), or None."""
        raw = item["values"]
        base = f"{path}.values"
        vline = key_line(item, "values", line)
        pairs: list[tuple[Any, Any, str, int]] = []  # (value, credit, field, line)
        if isinstance(raw, dict):
            for value, credit in raw.items():
                pairs.append((value, credit, value_field(base, value), key_line(raw, value, vline)))
        elif isinstance(raw, list):
            for i, value in enumerate(raw):
                pairs.append((value, 1.0, f"{base}[{i}]", item_line(raw, i, vline)))
        else:
            self.err(vline, base, f"must be a mapping of value to credit, or a list (got {describe(raw)})")
            return None
        if not pairs:
            self.err(vline, base, "must not be empty")
            return None
        out: dict[str, float] = {}
        originals: dict[str, str] = {}
        for value, credit, field, iline in pairs:
            norm = self.normalise_value(value, field, iline, attribute)
            number = self.number(credit, field, iline, check_unit)
            if norm is None or number is None:
                continue
            if norm in out:
                self.err(iline, field, f"duplicate value {str(value)!r} (same as {originals[norm]!r})")
                continue
            out[norm] = number
            originals[norm] = str(value).strip()
        return out, originals

    def parse_bands(self, raw: Any, path: str, line: int) -> tuple[Band, ...]:
        if not isinstance(raw, list):
            self.err(line, path, f"must be a list of bands (got {describe(raw)})")
            return ()
        if not raw:
            self.err(line, path, "must not be empty")
            return ()
        parsed: list[tuple[int, Band, int]] = []  # (index, band, line)
        for i, item in enumerate(raw):
            field = f"{path}[{i}]"
            iline = item_line(raw, i, line)
            if not isinstance(item, dict):
                self.err(iline, field, f"must be a mapping with min/max and credit (got {describe(item)})")
                continue
            iline = line_of(item, iline)
            before = len(self.errors)
            self.check_keys(item, field, _BAND_KEYS, iline)
            lo = self.get_number(item, "min", field, iline)
            hi = self.get_number(item, "max", field, iline)
            credit = self.get_number(item, "credit", field, iline, check=check_unit, required=True)
            if "min" not in item and "max" not in item:
                self.err(iline, field, "a band needs min or max")
            elif lo is not None and hi is not None and lo >= hi:
                self.err(iline, field, f"min {fmt_number(lo)} must be < max {fmt_number(hi)}")
            if len(self.errors) == before and credit is not None:
                parsed.append((i, Band(min=lo, max=hi, credit=credit), iline))
        ordered = sorted(parsed, key=lambda p: -math.inf if p[1].min is None else p[1].min)
        for (prev_i, prev, _), (i, band, iline) in zip(ordered, ordered[1:], strict=False):
            lo = -math.inf if band.min is None else band.min
            if prev.max is None or prev.max > lo:
                self.err(iline, f"{path}[{i}]", f"overlaps {path.rsplit('.', 1)[-1]}[{prev_i}]")
        return tuple(b for _, b, _ in parsed)

    # -------------------------------------------------------------------------------------- disqualifiers

    def parse_disqualifiers(self, data: YamlMap, used: dict[str, str], top_line: int) -> list[Disqualifier]:
        if "disqualifiers" not in data or data["disqualifiers"] is None:
            return []
        raw = data["disqualifiers"]
        line = key_line(data, "disqualifiers", top_line)
        if not isinstance(raw, list):
            self.err(line, "disqualifiers", f"must be a list (got {describe(raw)})")
            return []
        out: list[Disqualifier] = []
        for i, item in enumerate(raw):
            dq = self.parse_disqualifier(item, f"disqualifiers[{i}]", item_line(raw, i, line), used)
            if dq is not None:
                out.append(dq)
        return out

    def parse_disqualifier(
        self, item: Any, path: str, line: int, used: dict[str, str]
    ) -> Disqualifier | None:
        if not isinstance(item, dict):
            self.err(line, path, f"must be a mapping (got {describe(item)})")
            return None
        line = line_of(item, line)
        before = len(self.errors)
        self.check_keys(item, path, _DISQUALIFIER_KEYS, line)
        key = self.check_key(item, path, line, used)
        attribute = self.get_str(item, "attribute", path, line, required=True)
        description = self.get_str(item, "description", path, line, allow_empty=True)

        kinds = [k for k in ("values", "min/max", "equals") if any(p in item for p in k.split("/"))]
        if len(kinds) != 1:
            found = f" (found {' and '.join(kinds)})" if kinds else ""
            self.err(line, path, f"needs exactly one of values, min/max or equals{found}")
        values: frozenset[str] | None = None
        if "values" in item:
            raw = item["values"]
            vline = key_line(item, "values", line)
            if not isinstance(raw, list):
                self.err(vline, f"{path}.values", f"must be a list (got {describe(raw)})")
            elif not raw:
                self.err(vline, f"{path}.values", "must not be empty")
            else:
                listed = [
                    self.normalise_value(v, f"{path}.values[{i}]", item_line(raw, i, vline), attribute)
                    for i, v in enumerate(raw)
                ]
                values = frozenset(v for v in listed if v is not None)
        lo = self.get_number(item, "min", path, line)
        hi = self.get_number(item, "max", path, line)
        if lo is not None and hi is not None and lo >= hi:
            self.err(line, path, f"min {fmt_number(lo)} must be < max {fmt_number(hi)}")
        equals = self.get_bool(item, "equals", path, line)

        if len(self.errors) != before or key is None or attribute is None:
            return None
        return Disqualifier(
            key=key,
            attribute=attribute,
            description=description,
            values=values,
            min=lo,
            max=hi,
            equals=equals,
        )


def _country_code(text: str) -> str | None:
    """ISO alpha-2, casefolded ("Canada" → "ca") so it compares like every other value; None if unknown."""
    code = _normalize_country(text)
    return code.casefold() if code else None
