"""ICP YAML → validated :class:`~worker.icp.model.IcpSpec`, with ``file:line`` errors.

The file is read with ruamel.yaml's round-trip loader so that every key and list item keeps its line.
Validation never stops at the first problem: every error found is collected and raised at once as an
:class:`IcpValidationError`, whose ``str`` lists one ``file:line field: message`` per line, e.g.::

    icp.yaml:14 criteria[2].weight: must be > 0

List indices in field paths are 0-based (``criteria[0]`` is the first criterion); line numbers are 1-based.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from worker import yamlfile
from worker.icp.model import (
    CRITERION_TYPES,
    DEFAULT_FALLBACK_TIER,
    DEFAULT_MIN_COVERAGE,
    DEFAULT_TIERS,
    RESERVED_TIERS,
    IcpSpec,
    default_reengage_tiers,
)
from worker.icp.spec_criteria import COUNTRY_ATTRIBUTES, CriteriaParser
from worker.icp.spec_fields import (
    KEY_PATTERN,
    IcpValidationError,
    SpecError,
    YamlMap,
    check_unit,
    describe,
    is_number,
    item_line,
    key_line,
    line_of,
)

__all__ = [
    "COUNTRY_ATTRIBUTES",
    "CRITERION_TYPES",
    "DEFAULT_MIN_COVERAGE",
    "KEY_PATTERN",
    "IcpValidationError",
    "SpecError",
    "icp_content_hash",
    "load_icp",
    "parse_icp",
]

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


class _Parser(CriteriaParser):
    def __init__(self, filename: str) -> None:
        super().__init__(filename)
        #: Every tier name the file declares (even when the tiers have other errors).
        self.tier_names: set[str] | None = {t for t, _ in DEFAULT_TIERS}

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
            self.err(line_of(data, 1), "", f"the ICP must be a mapping (got {describe(data)})")
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

    # ------------------------------------------------------------------------------------------ top level

    def parse_top(self, data: YamlMap) -> IcpSpec | None:
        top_line = line_of(data, 1)
        self.check_keys(data, "", _TOP_KEYS, top_line)

        name = self.get_str(data, "name", "", top_line, required=True)
        description = self.get_str(data, "description", "", top_line, allow_empty=True)
        min_coverage = self.get_number(data, "min_coverage", "", top_line, check=check_unit)
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
            reengage_tiers=tuple(reengage) if reengage is not None else default_reengage_tiers(tiers),
        )

    def parse_tiers(self, data: YamlMap, top_line: int) -> list[tuple[str, int]] | None:
        if "tiers" not in data:
            return list(DEFAULT_TIERS)
        raw = data["tiers"]
        line = key_line(data, "tiers", top_line)
        if not isinstance(raw, dict):
            self.err(line, "tiers", f"must be a mapping of tier name to minimum score (got {describe(raw)})")
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
            kline = key_line(raw, name, line)
            if not isinstance(name, str) or not name.strip():
                self.err(kline, field, f"tier name must be text (got {describe(name)})")
                ok = False
                continue
            if name in RESERVED_TIERS:
                self.err(kline, field, f"tier name {name!r} is reserved")
                ok = False
            if not is_number(threshold) or (isinstance(threshold, float) and not threshold.is_integer()):
                self.err(kline, field, f"threshold must be a whole number (got {describe(threshold)})")
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

    def parse_fallback(self, data: YamlMap, tiers: list[tuple[str, int]] | None, top_line: int) -> str | None:
        fallback = self.get_str(data, "fallback_tier", "", top_line)
        if fallback is None:
            name = DEFAULT_FALLBACK_TIER
            line = key_line(data, "tiers", top_line)
            field = "tiers"
        else:
            name = fallback
            line = key_line(data, "fallback_tier", top_line)
            field = "fallback_tier"
            if name in RESERVED_TIERS:
                self.err(line, field, f"tier name {name!r} is reserved")
                return None
        if tiers and any(t == name for t, _ in tiers):
            self.err(line, field, f"tier name {name!r} is used twice (as a tier and as the fallback tier)")
            return None
        return name

    def parse_reengage(self, data: YamlMap, fallback: str | None, top_line: int) -> list[str] | None:
        if "reengage_tiers" not in data:
            return None
        raw = data["reengage_tiers"]
        line = key_line(data, "reengage_tiers", top_line)
        if not isinstance(raw, list):
            self.err(line, "reengage_tiers", f"must be a list of tier names (got {describe(raw)})")
            return None
        known = None if self.tier_names is None else self.tier_names | ({fallback} if fallback else set())
        result: list[str] = []
        for i, name in enumerate(raw):
            field = f"reengage_tiers[{i}]"
            iline = item_line(raw, i, line)
            if not isinstance(name, str):
                self.err(iline, field, f"must be a tier name (got {describe(name)})")
            elif known is not None and name not in known:
                self.err(iline, field, f"unknown tier {name!r}")
            elif name in result:
                self.err(iline, field, f"tier {name!r} is listed twice")
            else:
                result.append(str(name))
        return result
