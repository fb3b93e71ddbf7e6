"""Reading one field of an ICP file: typed access with ``file:line`` errors, shared by the spec parser.

:class:`FieldReader` collects every problem as a :class:`SpecError` (it never stops at the first);
the helpers find the 1-based line of a key or a list item in ruamel.yaml's round-trip containers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.scalarbool import ScalarBoolean

__all__ = [
    "KEY_PATTERN",
    "FieldReader",
    "IcpValidationError",
    "SpecError",
    "YamlMap",
    "check_unit",
    "check_weight",
    "describe",
    "fmt_number",
    "is_bool",
    "is_number",
    "item_line",
    "key_line",
    "line_of",
    "value_field",
]

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

#: A mapping as ruamel.yaml loads it (keys are usually text, values anything).
YamlMap = dict[Any, Any]


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


# --------------------------------------------------------------------------------------------- helpers


def describe(value: Any) -> str:
    if value is None:
        return "null"
    if is_bool(value):
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


def is_bool(value: Any) -> bool:
    return isinstance(value, bool | ScalarBoolean)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not is_bool(value)


def fmt_number(value: float | int) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def line_of(container: Any, default: int) -> int:
    lc = getattr(container, "lc", None)
    if lc is None or lc.line is None:
        return default
    return int(lc.line) + 1


def key_line(mapping: Any, key: Any, default: int) -> int:
    try:
        return int(mapping.lc.key(key)[0]) + 1
    except (AttributeError, KeyError, TypeError):
        return line_of(mapping, default)


def item_line(seq: Any, index: int, default: int) -> int:
    try:
        return int(seq.lc.item(index)[0]) + 1
    except (AttributeError, KeyError, TypeError, IndexError):
        return line_of(seq, default)


def value_field(base: str, value: Any) -> str:
    return f"{base}[{str(value)!r}]"


class FieldReader:
    """Typed access to the fields of an ICP file's mappings; every problem is kept in ``errors``."""

    def __init__(self, filename: str) -> None:
        self.file = filename
        self.errors: list[SpecError] = []

    def err(self, line: int, field: str, message: str) -> None:
        self.errors.append(SpecError(self.file, line, field, message))

    def check_keys(
        self, mapping: YamlMap, path: str, allowed: tuple[str, ...] | frozenset[str], line: int
    ) -> None:
        for key in mapping:
            if key not in allowed:
                field = f"{path}.{key}" if path else str(key)
                self.err(key_line(mapping, key, line), field, f"unknown key {str(key)!r}")

    def required(self, mapping: YamlMap, key: str, path: str, line: int) -> bool:
        if key not in mapping:
            self.err(line, f"{path}.{key}" if path else key, "missing required key")
            return False
        return True

    def get_str(
        self,
        mapping: YamlMap,
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
        kline = key_line(mapping, key, line)
        if not isinstance(value, str):
            self.err(kline, field, f"must be text (got {describe(value)})")
            return None
        if not allow_empty and not value.strip():
            self.err(kline, field, "must not be empty")
            return None
        return str(value)

    def get_number(
        self,
        mapping: YamlMap,
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
        return self.number(mapping[key], field, key_line(mapping, key, line), check)

    def number(
        self, value: Any, field: str, line: int, check: Callable[[float], str | None] | None
    ) -> float | None:
        if not is_number(value):
            self.err(line, field, f"must be a number (got {describe(value)})")
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

    def get_bool(self, mapping: YamlMap, key: str, path: str, line: int) -> bool | None:
        if key not in mapping:
            return None
        value = mapping[key]
        if not is_bool(value):
            self.err(
                key_line(mapping, key, line),
                f"{path}.{key}",
                f"must be true or false (got {describe(value)})",
            )
            return None
        return bool(value)

    def check_key(self, item: YamlMap, path: str, line: int, used: dict[str, str]) -> str | None:
        key = self.get_str(item, "key", path, line, required=True)
        if key is None:
            return None
        kline = key_line(item, "key", line)
        if not KEY_PATTERN.match(key):
            self.err(kline, f"{path}.key", f"{key!r} must match {KEY_PATTERN.pattern}")
            return None
        if key in used:
            self.err(kline, f"{path}.key", f"duplicate key {key!r} (also {used[key]})")
            return None
        used[key] = path
        return key


def check_weight(value: float) -> str | None:
    return None if value > 0 else "must be > 0"


def check_unit(value: float) -> str | None:
    return None if 0 <= value <= 1 else "must be between 0 and 1"
