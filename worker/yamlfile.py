"""YAML with line numbers for error messages (ruamel.yaml keeps them on every mapping and sequence)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError


class YamlFileError(ValueError):
    """One or more problems in a YAML file, each as ``file:line field: message``."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def load_yaml(text: str, filename: str) -> Any:
    """Parse ``text``; a syntax error names the file and line."""
    try:
        return YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlFileError([f"{filename}:{line}: {exc.problem or exc.context}"]) from None


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
