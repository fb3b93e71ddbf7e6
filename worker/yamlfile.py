"""YAML with line numbers for error messages (ruamel.yaml keeps them on every mapping and sequence), and
the limits every YAML file read by this program obeys: at most ``YAML_MAX_BYTES`` (1 MB) of UTF-8 text, and
aliases that expand to at most ``MAX_ALIAS_EXPANSION`` more values than the file writes out (a "billion
laughs" document fails at once instead of taking the machine's memory).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

#: Values that aliases may add to a document beyond the ones written out in it.
MAX_ALIAS_EXPANSION = 100_000


class YamlFileError(ValueError):
    """One or more problems in a YAML file, each as ``file:line field: message``."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def max_bytes() -> int:
    from worker.settings import get_settings

    return get_settings().yaml_max_bytes


def size_problem(size: int, limit: int | None = None) -> str | None:
    """Why a file of ``size`` bytes is refused (None: it is not)."""
    limit = max_bytes() if limit is None else limit
    if size > limit:
        return f"the file is {size:,} bytes, more than the limit of {limit:,} (YAML_MAX_BYTES)"
    return None


def read_text(path: str | os.PathLike[str], limit: int | None = None) -> str:
    """A YAML file's text: refused (``YamlFileError`` naming the file and line) when it cannot be read, is
    larger than the limit, or is not UTF-8."""
    filename = os.fspath(path)
    limit = max_bytes() if limit is None else limit
    try:
        with open(path, "rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as exc:
        raise YamlFileError([f"{filename}: cannot read ({exc.strerror or exc})"]) from None
    problem = size_problem(os.path.getsize(path) if len(raw) > limit else len(raw), limit)
    if problem:
        raise YamlFileError([f"{filename}:1: {problem}"])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problem = f"not valid UTF-8 text (byte 0x{raw[exc.start]:02x})"
        raise YamlFileError([f"{filename}:{line}: {problem}"]) from None


def alias_problem(node: Node | None, limit: int = MAX_ALIAS_EXPANSION) -> tuple[int, str] | None:
    """(line, message) when the aliases of a composed document expand to more than ``limit`` values beyond
    the ones written out; None otherwise. Linear in the document's size (each node is sized once)."""
    if node is None:
        return None
    sizes: dict[int, int] = {}
    distinct = 0
    stack: list[tuple[Node, bool]] = [(node, False)]
    while stack:
        current, done = stack.pop()
        key = id(current)
        if key in sizes and not done:
            continue
        children = _children(current)
        if not done:
            distinct += 1
            sizes[key] = -1  # in progress: a recursive alias counts as one value
            stack.append((current, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        total = 1 + sum(max(sizes.get(id(child), 1), 1) for child in children)
        sizes[key] = total
        if total - distinct > limit:
            line = current.start_mark.line + 1 if current.start_mark is not None else 1
            return line, (
                f"YAML aliases expand to more than {limit:,} values beyond those written "
                "(an alias bomb?); write the values out instead"
            )
    return None


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def load_yaml(text: str, filename: str) -> Any:
    """Parse ``text``; a syntax error names the file and line, and so does text over the size limit or
    an alias bomb (see the module notes)."""
    problem = size_problem(len(text.encode("utf-8")))
    if problem:
        raise YamlFileError([f"{filename}:1: {problem}"])
    yaml = YAML(typ="rt")
    try:
        bomb = alias_problem(yaml.compose(text))
        if bomb:
            raise YamlFileError([f"{filename}:{bomb[0]}: {bomb[1]}"])
        return YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlFileError([f"{filename}:{line}: {exc.problem or exc.context}"]) from None
    except YAMLError as exc:
        raise YamlFileError([f"{filename}:1: YAML error: {exc}"]) from None


def line_of(doc: Any, loc: Sequence[str | int]) -> int:
    """The 1-based line of the value at ``loc`` (a pydantic error location) in a round-trip document,
    or of its nearest ancestor that exists."""
    node, line = doc, 1
    for part in loc:
        lc = getattr(node, "lc", None)
        try:
            if isinstance(part, int) and isinstance(node, list):
                if lc is not None:
                    line = lc.item(part)[0] + 1
                node = node[part]
            elif isinstance(node, dict) and part in node:
                if lc is not None:
                    line = lc.key(part)[0] + 1
                node = node[part]
            else:
                break
        except (KeyError, IndexError, TypeError):
            break
    return line


def format_loc(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
