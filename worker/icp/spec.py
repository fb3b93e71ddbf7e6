"""ICP YAML → validated :class:`~worker.icp.model.IcpSpec`, with ``file:line`` errors.

The file is read with ruamel.yaml's round-trip loader so that every key and list item keeps its line.
Validation never stops at the first problem: every error found is collected and raised at once as an
:class:`IcpValidationError`, whose ``str`` lists one ``file:line field: message`` per line, e.g.::

    icp.yaml:14 criteria[2].weight: must be > 0

List indices in field paths are 0-based (``criteria[0]`` is the first criterion); line numbers are 1-based.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.scalarbool import ScalarBoolean

from worker import yamlfile
from worker.icp.model import (
    DEFAULT_FALLBACK_TIER,
    DEFAULT_TIERS,
    RESERVED_TIERS,
    Band,
    Criterion,
    Disqualifier,
    IcpSpec,
)
from worker.normalize import normalize_country as _normalize_country

__all__ = [
    "IcpValidationError",
    "SpecError",
    "icp_content_hash",
    "load_icp",
    "parse_icp",
]

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
CRITERION_TYPES = ("categorical", "bands", "contains_any", "boolean")
DEFAULT_MIN_COVERAGE = 0.5
#: Attributes whose listed values are normalised to ISO 3166 alpha-2 codes.
COUNTRY_ATTRIBUTES = frozenset({"country"})

_TOP_KEYS = (
    "name",
    "description",
    "tiers",
    "fallback_tier",
    "min_coverage",
    "reengage_tiers",
    "criteria",
    "disqualifiers",
)
_CRITERION_COMMON = ("key", "attribute", "weight", "type", "label")
_CRITERION_TYPE_KEYS: dict[str, tuple[str, ...]] = {
    "categorical": ("values", "default"),
    "bands": ("bands",),
    "contains_any": ("values",),
    "boolean": ("expected", "credit"),
}
_CRITERION_ALL = frozenset(_CRITERION_COMMON).union(*_CRITERION_TYPE_KEYS.values())
_BAND_KEYS = ("min", "max", "credit")
_DISQUALIFIER_KEYS = ("key", "attribute", "description", "values", "min", "max", "equals")


@dataclass(frozen=True, slots=True)
class SpecError:
    """One problem in an ICP file. ``line`` is 1-based; ``field`` is a path like ``criteria[2].weight``."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        if self.field:
            return f"{self.file}:{self.line} {self.field}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"


class IcpValidationError(ValueError):
    """Every problem found in an ICP file, in file order."""

    def __init__(self, errors: list[SpecError]) -> None:
        self.errors: list[SpecError] = sorted(errors, key=lambda e: e.line)
        super().__init__("\n".join(str(e) for e in self.errors))

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def icp_content_hash(text: str) -> str:
    """SHA-256 (hex) of the ICP file's text, as published."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_icp(path: str | os.PathLike[str]) -> IcpSpec:
    """Read and validate an ICP file; errors name the path as given."""
    filename = os.fspath(path)
    limit = yamlfile.max_bytes()
    with open(path, "rb") as fh:
        raw = fh.read(limit + 1)
    too_big = yamlfile.size_problem(os.path.getsize(path) if len(raw) > limit else len(raw), limit)
    if too_big:
        raise IcpValidationError([SpecError(filename, 1, "", too_big)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise IcpValidationError([SpecError(filename, line, "", "not valid UTF-8 text")]) from None
    return parse_icp(text, filename)


def parse_icp(text: str, filename: str = "icp.yaml") -> IcpSpec:
    """Parse and validate ICP YAML text. Raises :class:`IcpValidationError` listing every problem."""
    return _Parser(filename).parse(text)


# --------------------------------------------------------------------------------------------- helpers


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if _is_bool(value):
        return "true/false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"text {shown!r}"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool | ScalarBoolean)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not _is_bool(value)


def _fmt(value: float | int) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _line_of(container: Any, default: int) -> int:
    lc = getattr(container, "lc", None)
    if lc is None or lc.line is None:
        return default
    return int(lc.line) + 1


def _key_line(mapping: Any, key: Any, default: int) -> int:
    try:
        return int(mapping.lc.key(key)[0]) + 1
    except (AttributeError, KeyError, TypeError):
        return _line_of(mapping, default)


def _item_line(seq: Any, index: int, default: int) -> int:
    try:
        return int(seq.lc.item(index)[0]) + 1
    except (AttributeError, KeyError, TypeError, IndexError):
        return _line_of(seq, default)


def _value_field(base: str, value: Any) -> str:
    return f"{base}[{str(value)!r}]"


class _Parser:
    def __init__(self, filename: str) -> None:
        self.file = filename
        self.errors: list[SpecError] = []
        #: Every tier name the file declares (even when the tiers have other errors).
        self.tier_names: set[str] | None = {t for t, _ in DEFAULT_TIERS}

    def err(self, line: int, field: str, message: str) -> None:
        self.errors.append(SpecError(self.file, line, field, message))

    # ------------------------------------------------------------------------------------------ entry

    def parse(self, text: str) -> IcpSpec:
        yaml = YAML(typ="rt")
        yaml.allow_duplicate_keys = True  # reported below, all at once, with their field paths
        too_big = yamlfile.size_problem(len(text.encode("utf-8")))
        if too_big:
            raise IcpValidationError([SpecError(self.file, 1, "", too_big)])
        try:
            node = yaml.compose(text)
            bomb = yamlfile.alias_problem(node)
            data = None if bomb else yaml.load(text)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            problem = exc.problem or exc.context or "invalid YAML"
            raise IcpValidationError(
                [SpecError(self.file, line, "", f"YAML syntax error: {problem}")]
            ) from None
        except YAMLError as exc:
            raise IcpValidationError([SpecError(self.file, 1, "", f"YAML syntax error: {exc}")]) from None
        except Exception as exc:  # the loader trips on some odd documents (e.g. "!!set" on a scalar)
            raise IcpValidationError(
                [
                    SpecError(
                        self.file,
                        1,
                        "",
                        f"YAML error: cannot read the document ({type(exc).__name__}: {exc})",
                    )
                ]
            ) from None
        if bomb:
            raise IcpValidationError([SpecError(self.file, bomb[0], "", bomb[1])])

        if node is not None:
            self.check_duplicate_keys(node, "")
        if data is None:
            self.err(1, "", "the file is empty; expected an ICP mapping")
            raise IcpValidationError(self.errors)
        if not isinstance(data, dict):
            self.err(_line_of(data, 1), "", f"the ICP must be a mapping (got {_describe(data)})")
            raise IcpValidationError(self.errors)

        spec = self.parse_top(data)
        if self.errors or spec is None:
            raise IcpValidationError(self.errors)
        return spec

    def check_duplicate_keys(self, node: Node, path: str) -> None:
        if isinstance(node, MappingNode):
            seen: set[Any] = set()
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode):  # a complex key ("? [a, b]"): reported as unknown
                    self.check_duplicate_keys(value_node, path)
                    continue
                key = key_node.value
                sub = f"{path}.{key}" if path else str(key)
                if key in seen:
                    what = "duplicate tier" if path == "tiers" else "duplicate key"
                    self.err(key_node.start_mark.line + 1, sub, f"{what} {key!r}")
                seen.add(key)
                self.check_duplicate_keys(value_node, sub)
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                self.check_duplicate_keys(item, f"{path}[{i}]")

    # ------------------------------------------------------------------------------------ typed access

    def check_keys(
        self, mapping: dict, path: str, allowed: tuple[str, ...] | frozenset[str], line: int
    ) -> None:
        for key in mapping:
            if key not in allowed:
                field = f"{path}.{key}" if path else str(key)
                self.err(_key_line(mapping, key, line), field, f"unknown key {str(key)!r}")

    def required(self, mapping: dict, key: str, path: str, line: int) -> bool:
        if key not in mapping:
            self.err(line, f"{path}.{key}" if path else key, "missing required key")
            return False
        return True

    def get_str(
        self,
        mapping: dict,
        key: str,
        path: str,
        line: int,
        *,
        required: bool = False,
        allow_empty: bool = False,
    ) -> str | None:
        if key not in mapping:
            if required:
                self.required(mapping, key, path, line)
            return None
        value = mapping[key]
        field = f"{path}.{key}" if path else key
        kline = _key_line(mapping, key, line)
        if not isinstance(value, str):
            self.err(kline, field, f"must be text (got {_describe(value)})")
            return None
        if not allow_empty and not value.strip():
            self.err(kline, field, "must not be empty")
            return None
        return str(value)

    def get_number(
        self,
        mapping: dict,
        key: str,
        path: str,
        line: int,
        *,
        check: Callable[[float], str | None] | None = None,
        required: bool = False,
    ) -> float | None:
        if key not in mapping:
            if required:
                self.required(mapping, key, path, line)
            return None
        field = f"{path}.{key}" if path else key
        return self.number(mapping[key], field, _key_line(mapping, key, line), check)

    def number(
        self, value: Any, field: str, line: int, check: Callable[[float], str | None] | None
    ) -> float | None:
        if not _is_number(value):
            self.err(line, field, f"must be a number (got {_describe(value)})")
            return None
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            self.err(line, field, "must be a finite number")
            return None
        if check is not None:
            problem = check(number)
            if problem:
                self.err(line, field, problem)
                return None
        return number

    def get_bool(self, mapping: dict, key: str, path: str, line: int) -> bool | None:
        if key not in mapping:
            return None
        value = mapping[key]
        if not _is_bool(value):
            self.err(
                _key_line(mapping, key, line),
                f"{path}.{key}",
                f"must be true or false (got {_describe(value)})",
            )
            return None
        return bool(value)

    # ------------------------------------------------------------------------------------------ top level

    def parse_top(self, data: dict) -> IcpSpec | None:
        top_line = _line_of(data, 1)
        self.check_keys(data, "", _TOP_KEYS, top_line)

        name = self.get_str(data, "name", "", top_line, required=True)
        description = self.get_str(data, "description", "", top_line, allow_empty=True)
        min_coverage = self.get_number(data, "min_coverage", "", top_line, check=_check_unit)
        tiers = self.parse_tiers(data, top_line)
        fallback = self.parse_fallback(data, tiers, top_line)
        reengage = self.parse_reengage(data, fallback, top_line)

        used_keys: dict[str, str] = {}
        criteria = self.parse_criteria(data, used_keys, top_line)
        disqualifiers = self.parse_disqualifiers(data, used_keys, top_line)

        if self.errors or name is None or criteria is None or tiers is None:
            return None
        return IcpSpec(
            name=name,
            description=description,
            criteria=tuple(criteria),
            disqualifiers=tuple(disqualifiers),
            tiers=tuple(tiers),
            fallback_tier=fallback or DEFAULT_FALLBACK_TIER,
            min_coverage=DEFAULT_MIN_COVERAGE if min_coverage is None else min_coverage,
            reengage_tiers=tuple(reengage) if reengage is not None else tuple(t for t, _ in tiers),
        )

    def parse_tiers(self, data: dict, top_line: int) -> list[tuple[str, int]] | None:
        if "tiers" not in data:
            return list(DEFAULT_TIERS)
        raw = data["tiers"]
        line = _key_line(data, "tiers", top_line)
        if not isinstance(raw, dict):
            self.err(line, "tiers", f"must be a mapping of tier name to minimum score (got {_describe(raw)})")
            self.tier_names = None  # unknown: do not second-guess reengage_tiers
            return None
        if not raw:
            self.err(line, "tiers", "must name at least one tier")
            return None
        self.tier_names = {str(name) for name in raw}
        tiers: list[tuple[str, int]] = []
        ok = True
        previous: tuple[str, int] | None = None
        for name, threshold in raw.items():
            field = f"tiers.{name}"
            kline = _key_line(raw, name, line)
            if not isinstance(name, str) or not name.strip():
                self.err(kline, field, f"tier name must be text (got {_describe(name)})")
                ok = False
                continue
            if name in RESERVED_TIERS:
                self.err(kline, field, f"tier name {name!r} is reserved")
                ok = False
            if not _is_number(threshold) or (isinstance(threshold, float) and not threshold.is_integer()):
                self.err(kline, field, f"threshold must be a whole number (got {_describe(threshold)})")
                ok = False
                continue
            value = int(threshold)
            if not 0 <= value <= 100:
                self.err(kline, field, "threshold must be between 0 and 100")
                ok = False
            if previous is not None and value >= previous[1]:
                self.err(
                    kline,
                    field,
                    f"thresholds must be strictly descending "
                    f"({value} is not below {previous[0]} {previous[1]})",
                )
                ok = False
            previous = (str(name), value)
            tiers.append((str(name), value))
        return tiers if ok else None

    def parse_fallback(self, data: dict, tiers: list[tuple[str, int]] | None, top_line: int) -> str | None:
        fallback = self.get_str(data, "fallback_tier", "", top_line)
        if fallback is None:
            name = DEFAULT_FALLBACK_TIER
            line = _key_line(data, "tiers", top_line)
            field = "tiers"
        else:
            name = fallback
            line = _key_line(data, "fallback_tier", top_line)
            field = "fallback_tier"
            if name in RESERVED_TIERS:
                self.err(line, field, f"tier name {name!r} is reserved")
                return None
        if tiers and any(t == name for t, _ in tiers):
            self.err(line, field, f"tier name {name!r} is used twice (as a tier and as the fallback tier)")
            return None
        return name

    def parse_reengage(self, data: dict, fallback: str | None, top_line: int) -> list[str] | None:
        if "reengage_tiers" not in data:
            return None
        raw = data["reengage_tiers"]
        line = _key_line(data, "reengage_tiers", top_line)
        if not isinstance(raw, list):
            self.err(line, "reengage_tiers", f"must be a list of tier names (got {_describe(raw)})")
            return None
        known = None if self.tier_names is None else self.tier_names | ({fallback} if fallback else set())
        result: list[str] = []
        for i, name in enumerate(raw):
            field = f"reengage_tiers[{i}]"
            iline = _item_line(raw, i, line)
            if not isinstance(name, str):
                self.err(iline, field, f"must be a tier name (got {_describe(name)})")
            elif known is not None and name not in known:
                self.err(iline, field, f"unknown tier {name!r}")
            elif name in result:
                self.err(iline, field, f"tier {name!r} is listed twice")
            else:
                result.append(str(name))
        return result

    # ------------------------------------------------------------------------------------------- criteria

    def check_key(self, item: dict, path: str, line: int, used: dict[str, str]) -> str | None:
        key = self.get_str(item, "key", path, line, required=True)
        if key is None:
            return None
        kline = _key_line(item, "key", line)
        if not KEY_PATTERN.match(key):
            self.err(kline, f"{path}.key", f"{key!r} must match {KEY_PATTERN.pattern}")
            return None
        if key in used:
            self.err(kline, f"{path}.key", f"duplicate key {key!r} (also {used[key]})")
            return None
        used[key] = path
        return key

    def parse_criteria(self, data: dict, used: dict[str, str], top_line: int) -> list[Criterion] | None:
        if not self.required(data, "criteria", "", top_line):
            return None
        raw = data["criteria"]
        line = _key_line(data, "criteria", top_line)
        if not isinstance(raw, list):
            self.err(line, "criteria", f"must be a list (got {_describe(raw)})")
            return None
        if not raw:
            self.err(line, "criteria", "must not be empty")
            return None
        out: list[Criterion] = []
        for i, item in enumerate(raw):
            criterion = self.parse_criterion(item, f"criteria[{i}]", _item_line(raw, i, line), used)
            if criterion is not None:
                out.append(criterion)
        return out

    def parse_criterion(self, item: Any, path: str, line: int, used: dict[str, str]) -> Criterion | None:
        if not isinstance(item, dict):
            self.err(line, path, f"must be a mapping (got {_describe(item)})")
            return None
        line = _line_of(item, line)
        errors_before = len(self.errors)

        ctype = self.get_str(item, "type", path, line, required=True)
        if ctype is not None and ctype not in CRITERION_TYPES:
            self.err(
                _key_line(item, "type", line),
                f"{path}.type",
                f"unknown type {ctype!r} (expected one of: {', '.join(CRITERION_TYPES)})",
            )
            ctype = None
        for key in item:
            field = f"{path}.{key}"
            kline = _key_line(item, key, line)
            if key not in _CRITERION_ALL:
                self.err(kline, field, f"unknown key {str(key)!r}")
            elif (
                ctype is not None and key not in _CRITERION_COMMON and key not in _CRITERION_TYPE_KEYS[ctype]
            ):
                owners = [t for t, keys in _CRITERION_TYPE_KEYS.items() if key in keys]
                self.err(
                    kline,
                    field,
                    f"{key!r} does not apply to a {ctype} criterion (only to {' or '.join(owners)})",
                )

        key = self.check_key(item, path, line, used)
        attribute = self.get_str(item, "attribute", path, line, required=True)
        weight = self.get_number(item, "weight", path, line, check=_check_weight, required=True)
        label = self.get_str(item, "label", path, line)

        values: dict[str, float] = {}
        default = 0.0
        bands: tuple[Band, ...] = ()
        expected = True
        credit = 1.0
        if ctype in ("categorical", "contains_any") and self.required(item, "values", path, line):
            values = self.parse_credit_values(item, path, line, attribute) or {}
        if ctype == "categorical":
            got = self.get_number(item, "default", path, line, check=_check_unit)
            default = 0.0 if got is None else got
        if ctype == "bands" and self.required(item, "bands", path, line):
            bands = self.parse_bands(item["bands"], f"{path}.bands", _key_line(item, "bands", line))
        if ctype == "boolean":
            got_bool = self.get_bool(item, "expected", path, line)
            expected = True if got_bool is None else got_bool
            got = self.get_number(item, "credit", path, line, check=_check_unit)
            credit = 1.0 if got is None else got

        if (
            len(self.errors) != errors_before
            or key is None
            or attribute is None
            or weight is None
            or ctype is None
        ):
            return None
        return Criterion(
            key=key,
            attribute=attribute,
            weight=weight,
            type=ctype,  # type: ignore[arg-type]
            label=label,
            values=values,
            default=default,
            bands=bands,
            expected=expected,
            credit=credit,
        )

    def normalise_value(self, raw: Any, field: str, line: int, attribute: str | None) -> str | None:
        if _is_bool(raw) or not isinstance(raw, str | int):
            self.err(line, field, f"must be text (got {_describe(raw)})")
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
        self, item: dict, path: str, line: int, attribute: str | None
    ) -> dict[str, float] | None:
        raw = item["values"]
        base = f"{path}.values"
        vline = _key_line(item, "values", line)
        pairs: list[tuple[Any, Any, str, int]] = []  # (value, credit, field, line)
        if isinstance(raw, dict):
            for value, credit in raw.items():
                pairs.append((value, credit, _value_field(base, value), _key_line(raw, value, vline)))
        elif isinstance(raw, list):
            for i, value in enumerate(raw):
                pairs.append((value, 1.0, f"{base}[{i}]", _item_line(raw, i, vline)))
        else:
            self.err(vline, base, f"must be a mapping of value to credit, or a list (got {_describe(raw)})")
            return None
        if not pairs:
            self.err(vline, base, "must not be empty")
            return None
        out: dict[str, float] = {}
        originals: dict[str, str] = {}
        for value, credit, field, iline in pairs:
            norm = self.normalise_value(value, field, iline, attribute)
            number = self.number(credit, field, iline, _check_unit)
            if norm is None or number is None:
                continue
            if norm in out:
                self.err(iline, field, f"duplicate value {str(value)!r} (same as {originals[norm]!r})")
                continue
            out[norm] = number
            originals[norm] = str(value)
        return out

    def parse_bands(self, raw: Any, path: str, line: int) -> tuple[Band, ...]:
        if not isinstance(raw, list):
            self.err(line, path, f"must be a list of bands (got {_describe(raw)})")
            return ()
        if not raw:
            self.err(line, path, "must not be empty")
            return ()
        parsed: list[tuple[int, Band, int]] = []  # (index, band, line)
        for i, item in enumerate(raw):
            field = f"{path}[{i}]"
            iline = _item_line(raw, i, line)
            if not isinstance(item, dict):
                self.err(iline, field, f"must be a mapping with min/max and credit (got {_describe(item)})")
                continue
            iline = _line_of(item, iline)
            before = len(self.errors)
            self.check_keys(item, field, _BAND_KEYS, iline)
            lo = self.get_number(item, "min", field, iline)
            hi = self.get_number(item, "max", field, iline)
            credit = self.get_number(item, "credit", field, iline, check=_check_unit, required=True)
            if "min" not in item and "max" not in item:
                self.err(iline, field, "a band needs min or max")
            elif lo is not None and hi is not None and lo >= hi:
                self.err(iline, field, f"min {_fmt(lo)} must be < max {_fmt(hi)}")
            if len(self.errors) == before and credit is not None:
                parsed.append((i, Band(min=lo, max=hi, credit=credit), iline))
        ordered = sorted(parsed, key=lambda p: -math.inf if p[1].min is None else p[1].min)
        for (prev_i, prev, _), (i, band, iline) in zip(ordered, ordered[1:], strict=False):
            lo = -math.inf if band.min is None else band.min
            if prev.max is None or prev.max > lo:
                self.err(iline, f"{path}[{i}]", f"overlaps {path.rsplit('.', 1)[-1]}[{prev_i}]")
        return tuple(b for _, b, _ in parsed)

    # -------------------------------------------------------------------------------------- disqualifiers

    def parse_disqualifiers(self, data: dict, used: dict[str, str], top_line: int) -> list[Disqualifier]:
        if "disqualifiers" not in data or data["disqualifiers"] is None:
            return []
        raw = data["disqualifiers"]
        line = _key_line(data, "disqualifiers", top_line)
        if not isinstance(raw, list):
            self.err(line, "disqualifiers", f"must be a list (got {_describe(raw)})")
            return []
        out: list[Disqualifier] = []
        for i, item in enumerate(raw):
            dq = self.parse_disqualifier(item, f"disqualifiers[{i}]", _item_line(raw, i, line), used)
            if dq is not None:
                out.append(dq)
        return out

    def parse_disqualifier(
        self, item: Any, path: str, line: int, used: dict[str, str]
    ) -> Disqualifier | None:
        if not isinstance(item, dict):
            self.err(line, path, f"must be a mapping (got {_describe(item)})")
            return None
        line = _line_of(item, line)
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
            vline = _key_line(item, "values", line)
            if not isinstance(raw, list):
                self.err(vline, f"{path}.values", f"must be a list (got {_describe(raw)})")
            elif not raw:
                self.err(vline, f"{path}.values", "must not be empty")
            else:
                listed = [
                    self.normalise_value(v, f"{path}.values[{i}]", _item_line(raw, i, vline), attribute)
                    for i, v in enumerate(raw)
                ]
                values = frozenset(v for v in listed if v is not None)
        lo = self.get_number(item, "min", path, line)
        hi = self.get_number(item, "max", path, line)
        if lo is not None and hi is not None and lo >= hi:
            self.err(line, path, f"min {_fmt(lo)} must be < max {_fmt(hi)}")
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


def _check_weight(value: float) -> str | None:
    return None if value > 0 else "must be > 0"


def _check_unit(value: float) -> str | None:
    return None if 0 <= value <= 1 else "must be between 0 and 1"


def _country_code(text: str) -> str | None:
    """ISO alpha-2, casefolded ("Canada" → "ca") so it compares like every other value; None if unknown."""
    code = _normalize_country(text)
    return code.casefold() if code else None
