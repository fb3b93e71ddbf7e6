"""An ICP file checked against the connections and the data (pure: no I/O, no clock).

``icp-worker icp validate FILE`` and ``icp-worker icp publish FILE`` run these after the spec parser
(``worker.icp.spec``) has accepted the file. Findings use the parser's ``file:line field: message`` form.

Errors (the file is refused, exit 2):

* an attribute that is neither canonical nor named by any connection's mapping (``columns``, ``fields``,
  ``properties``) or ``attribute_kinds``, with a "did you mean ...?" hint;
* a ``region`` value that is not one of the regions the normaliser derives (``worker.normalize.REGIONS``),
  unless a connection maps a CRM field to ``region`` itself (then the CRM's values are kept);
* a value of an attribute that connections normalise to country codes (``attribute_kinds: {x: country}``)
  that can never match: a name that is no country, or a country name where the records hold its code.

Warnings (exit 0), from a :class:`DataProfile` of the snapshot store: listed values that no snapshot
has, criteria whose attribute no record carries, and the share of records that would be
``insufficient_data``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from worker.icp.spec import COUNTRY_ATTRIBUTES, SpecError
from worker.normalize import DEFAULT_KINDS, REGIONS, normalize_country, region_for

__all__ = [
    "AttributeRef",
    "Catalog",
    "CheckReport",
    "DataProfile",
    "ValueRef",
    "check_references",
    "data_warnings",
    "key_line",
    "references",
    "value_keys",
]

#: Words people write for a region, and the region the normaliser derives for them.
REGION_HINTS: Mapping[str, str] = {
    "europe": "EMEA",
    "eu": "EMEA",
    "africa": "EMEA",
    "middle east": "EMEA",
    "mena": "EMEA",
    "dach": "EMEA",
    "nordics": "EMEA",
    "uk": "EMEA",
    "asia": "APAC",
    "asia pacific": "APAC",
    "asia-pacific": "APAC",
    "oceania": "APAC",
    "pacific": "APAC",
    "anz": "APAC",
    "latin america": "LATAM",
    "south america": "LATAM",
    "central america": "LATAM",
    "caribbean": "LATAM",
    "latam": "LATAM",
    "na": "North America",
    "amer": "North America",
    "americas": "North America",
    "northern america": "North America",
}
_REGION_KEYS = {r.casefold(): r for r in REGIONS}


@dataclass(frozen=True)
class Catalog:
    """What the configured connections provide.

    ``attributes``: every attribute name a record can carry (canonical names, the CRMs' default
    mappings, the connections' own mappings and ``attribute_kinds``). ``kinds``: attribute -> the kinds
    connections give it (``country``, ``text`` ...). ``crm_region``: a connection maps a CRM field to
    ``region``, so region values are the CRM's, not only the normaliser's.
    """

    attributes: frozenset[str]
    kinds: Mapping[str, frozenset[str]] = field(default_factory=dict)
    crm_region: bool = False

    @classmethod
    def canonical(cls) -> Catalog:
        return cls(frozenset(DEFAULT_KINDS), {k: frozenset({v}) for k, v in DEFAULT_KINDS.items()})


@dataclass(frozen=True)
class ValueRef:
    """One listed value of a criterion or disqualifier, as written in the file."""

    text: str
    field: str
    line: int


@dataclass(frozen=True)
class AttributeRef:
    """A criterion or disqualifier: the attribute it reads and the values it lists."""

    section: str  # "criteria" or "disqualifiers"
    index: int
    key: str
    type: str  # the criterion type, or "disqualifier"
    attribute: str
    field: str
    line: int
    values: tuple[ValueRef, ...] = ()


@dataclass(frozen=True)
class DataProfile:
    """What the snapshot store holds for the attributes an ICP reads (accounts and leads)."""

    records: int
    #: attribute -> records carrying it
    carried: Mapping[str, int]
    #: attribute -> value keys seen (``value_keys``), for the attributes whose values are listed
    values: Mapping[str, frozenset[str]]
    #: records the ICP would score ``insufficient_data``
    insufficient: int


@dataclass
class CheckReport:
    """The outcome of every check of one file."""

    file: str
    errors: list[SpecError] = field(default_factory=list)
    warnings: list[SpecError] = field(default_factory=list)
    profile: DataProfile | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        def row(e: SpecError) -> dict[str, Any]:
            return {"file": e.file, "line": e.line, "field": e.field, "message": e.message, "text": str(e)}

        data: dict[str, Any] = {
            "file": self.file,
            "ok": self.ok,
            "errors": [row(e) for e in self.errors],
            "warnings": [row(w) for w in self.warnings],
        }
        if self.profile is not None:
            data["records"] = self.profile.records
            data["insufficient_data"] = self.profile.insufficient
            data["insufficient_share"] = (
                round(self.profile.insufficient / self.profile.records, 4) if self.profile.records else 0.0
            )
        return data


# --------------------------------------------------------------------------------------------- the file


def _child(node: Node | None, key: str) -> tuple[ScalarNode, Node] | None:
    if not isinstance(node, MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == key:
            return k, v
    return None


def _scalar(node: Node | None) -> str | None:
    return str(node.value) if isinstance(node, ScalarNode) else None


def _values(node: Node, base: str) -> tuple[ValueRef, ...]:
    refs: list[ValueRef] = []
    if isinstance(node, MappingNode):
        for k, _ in node.value:
            if isinstance(k, ScalarNode):
                refs.append(ValueRef(str(k.value), f"{base}[{str(k.value)!r}]", k.start_mark.line + 1))
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            if isinstance(item, ScalarNode):
                refs.append(ValueRef(str(item.value), f"{base}[{i}]", item.start_mark.line + 1))
    return tuple(refs)


def key_line(text: str, key: str) -> int:
    """The line of a top-level key (1 when the file has none)."""
    found = _child(YAML(typ="rt").compose(text), key)
    return found[0].start_mark.line + 1 if found else 1


def references(text: str) -> list[AttributeRef]:
    """Every criterion and disqualifier of an ICP file the spec parser accepted, with their lines.

    Field paths are the parser's (``criteria[2].attribute``, ``criteria[0].values['Europe']``)."""
    root = YAML(typ="rt").compose(text)
    refs: list[AttributeRef] = []
    for section in ("criteria", "disqualifiers"):
        found = _child(root, section)
        if found is None or not isinstance(found[1], SequenceNode):
            continue
        for i, item in enumerate(found[1].value):
            path = f"{section}[{i}]"
            attr = _child(item, "attribute")
            if attr is None or _scalar(attr[1]) is None:
                continue
            kind = _scalar((_child(item, "type") or (None, None))[1]) if section == "criteria" else None
            values = _child(item, "values")
            refs.append(
                AttributeRef(
                    section=section,
                    index=i,
                    key=_scalar((_child(item, "key") or (None, None))[1]) or "",
                    type=kind or "disqualifier",
                    attribute=str(attr[1].value),
                    field=f"{path}.attribute",
                    line=attr[1].start_mark.line + 1,
                    values=_values(values[1], f"{path}.values") if values else (),
                )
            )
    return refs


# --------------------------------------------------------------------------------------------- errors


def _suggest(name: str, known: Iterable[str]) -> str:
    match = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean `{match[0]}`?)" if match else ""


def _region_problem(value: str) -> str | None:
    folded = " ".join(value.split()).casefold()
    if folded in _REGION_KEYS:
        return None
    known = ", ".join(REGIONS)
    hint = REGION_HINTS.get(folded)
    code = normalize_country(value)
    if hint:
        tip = f" (did you mean `{hint}`?)"
    elif code and region_for(code):
        tip = f" ({value} is a country, in region `{region_for(code)}`: list it under attribute country)"
    else:
        tip = _suggest(value, REGIONS)
    return f"{value!r} is not a region the normaliser derives (one of {known}){tip}"


def _country_problem(attribute: str, value: str) -> str | None:
    """A value of a country-coded attribute other than ``country`` (whose values the parser converts)."""
    code = normalize_country(value)
    if code is None:
        return f"{value!r} is no country, so it never matches: {attribute} holds ISO country codes"
    if code.casefold() != value.strip().casefold():
        return f"{value!r} never matches: {attribute} holds ISO country codes (write {code})"
    return None


def check_references(refs: Sequence[AttributeRef], catalog: Catalog, filename: str) -> list[SpecError]:
    """Errors: unknown attributes, regions the normaliser never derives, country values that never match."""
    errors: list[SpecError] = []
    for ref in refs:
        if ref.attribute not in catalog.attributes:
            errors.append(
                SpecError(
                    filename,
                    ref.line,
                    ref.field,
                    f"unknown attribute {ref.attribute!r}: neither canonical nor mapped by any connection"
                    + _suggest(ref.attribute, catalog.attributes),
                )
            )
            continue
        if ref.type in ("bands", "boolean"):
            continue
        kinds = catalog.kinds.get(ref.attribute, frozenset({"text"}))
        for value in ref.values:
            problem: str | None = None
            if ref.attribute == "region" and not catalog.crm_region:
                problem = _region_problem(value.text)
            elif "country" in kinds and ref.attribute not in COUNTRY_ATTRIBUTES:
                problem = _country_problem(ref.attribute, value.text)
            if problem:
                errors.append(SpecError(filename, value.line, value.field, problem))
    return sorted(errors, key=lambda e: e.line)


# --------------------------------------------------------------------------------------------- warnings


def value_keys(value: Any) -> list[str]:
    """How the scorer compares a stored value with listed ones: casefolded text, per member of a set."""
    members = value if isinstance(value, list | tuple | set | frozenset) else [value]
    keys = []
    for member in members:
        if isinstance(member, bool):
            keys.append("true" if member else "false")
        elif isinstance(member, int | float | str):
            text = str(int(member)) if isinstance(member, float) and member.is_integer() else str(member)
            text = text.strip()
            if text:
                keys.append(text.casefold())
    return keys


def _listed_key(attribute: str, text: str) -> str:
    if attribute in COUNTRY_ATTRIBUTES:
        code = normalize_country(text)
        return code.casefold() if code else text.casefold()
    return text.strip().casefold()


def data_warnings(
    refs: Sequence[AttributeRef],
    profile: DataProfile,
    filename: str,
    min_coverage: float,
    coverage_line: int = 1,
) -> list[SpecError]:
    """Warnings from the store: values no snapshot has, attributes no record carries, insufficient data."""
    if profile.records == 0:
        return []
    warnings: list[SpecError] = []
    for ref in refs:
        carried = profile.carried.get(ref.attribute, 0)
        if carried == 0:
            if ref.section == "criteria":
                warnings.append(
                    SpecError(
                        filename,
                        ref.line,
                        ref.field,
                        f"no record in the store carries {ref.attribute!r} "
                        f"(0 of {profile.records:,}): this criterion never earns points",
                    )
                )
            continue
        if ref.type in ("bands", "boolean"):
            continue
        seen = profile.values.get(ref.attribute, frozenset())
        for value in ref.values:
            if _listed_key(ref.attribute, value.text) not in seen:
                warnings.append(
                    SpecError(
                        filename,
                        value.line,
                        value.field,
                        f"no snapshot has {ref.attribute} {value.text!r} "
                        f"({carried:,} records carry {ref.attribute})",
                    )
                )
    if profile.insufficient:
        share = profile.insufficient / profile.records
        shown = f"{share:.0%}" if share >= 0.01 else f"{share:.1%}"
        warnings.append(
            SpecError(
                filename,
                coverage_line,
                "min_coverage",
                f"{profile.insufficient:,} of {profile.records:,} records ({shown}) would be "
                f"insufficient_data (less than {min_coverage:.0%} of the weight has data)",
            )
        )
    return sorted(warnings, key=lambda e: e.line)
