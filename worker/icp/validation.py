"""``icp validate`` and the checks ``publish`` runs first: the spec parser, then ``worker.icp.checks``
against the configured connections and, when there is one, the snapshot store.

The pure rules live in ``worker.icp.checks``; this module only gathers their inputs: the attribute
catalogue of the connections file and a profile of the stored snapshots.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.base import STATUS_KEYS
from worker.config import ConnectionConfig
from worker.icp.checks import (
    AttributeRef,
    Catalog,
    CheckReport,
    DataProfile,
    check_references,
    data_warnings,
    key_line,
    references,
    value_keys,
)
from worker.icp.model import INSUFFICIENT_DATA, IcpSpec
from worker.icp.scoring import Scorer
from worker.icp.spec import IcpValidationError, parse_icp
from worker.normalize import DEFAULT_KINDS
from worker.store.models import RecordSnapshot

#: Canonical names with a role other than "attribute" in the connectors' default mappings.
_ROLES = frozenset({"id", "name", "owner_id", "last_activity", "modstamp", *STATUS_KEYS})
#: Options of each CRM that map CRM fields to canonical names (``{object: {field: name}}``).
_MAPPING_OPTIONS = ("columns", "fields", "properties")
#: Distinct values remembered per attribute when profiling the store.
MAX_VALUES = 50_000
BATCH = 5000


def _default_mapping(crm: str) -> set[str]:
    """Attribute names a CRM's connector maps by default."""
    maps: Iterable[dict[str, str]]
    if crm == "files":
        from connectors.files.config import DEFAULT_COLUMNS

        maps = DEFAULT_COLUMNS.values()
    elif crm == "salesforce":
        from connectors.salesforce.mapping import DEFAULT_ATTRIBUTES as SF

        maps = SF.values()
    elif crm == "hubspot":
        from connectors.hubspot.mapping import DEFAULT_ATTRIBUTES as HS

        maps = HS.values()
    else:
        maps = ()
    return {name for mapping in maps for name in mapping.values()} - _ROLES


def _mapped(options: dict[str, Any]) -> set[str]:
    """Canonical names the connection's own mappings (``columns``, ``fields``, ``properties``) name."""
    added: set[str] = set()
    for key in _MAPPING_OPTIONS:
        per_object = options.get(key)
        if not isinstance(per_object, dict):
            continue
        for mapping in per_object.values():
            if isinstance(mapping, dict):
                added.update(str(v) for v in mapping.values() if isinstance(v, str) and v)
    return added - _ROLES


def catalog_for(connections: Sequence[ConnectionConfig]) -> Catalog:
    """The attributes and kinds the configured connections provide (canonical names always count)."""
    names = set(DEFAULT_KINDS)
    kinds: dict[str, set[str]] = {k: {v} for k, v in DEFAULT_KINDS.items()}
    crm_region = False
    for cfg in connections:
        own = _mapped(cfg.options)
        crm_region = crm_region or "region" in own
        provided = _default_mapping(cfg.crm) | own | set(cfg.attribute_kinds)
        names |= provided
        for name in provided:
            kinds.setdefault(name, set()).add(
                cfg.attribute_kinds.get(name) or DEFAULT_KINDS.get(name, "text")
            )
        for name, kind in cfg.attribute_kinds.items():
            kinds.setdefault(name, set()).add(kind)
    return Catalog(frozenset(names), {k: frozenset(v) for k, v in kinds.items()}, crm_region)


def profile_store(session: Session, spec: IcpSpec, refs: Sequence[AttributeRef]) -> DataProfile:
    """Accounts and leads of the store under ``spec``: who carries each attribute, which values they
    hold, and how many would be ``insufficient_data``."""
    attributes = {r.attribute for r in refs}
    listed = {r.attribute for r in refs if r.values and r.type not in ("bands", "boolean")}
    carried = dict.fromkeys(attributes, 0)
    values: dict[str, set[str]] = {a: set() for a in listed}
    scorer = Scorer(spec)
    records = insufficient = 0
    last_id = 0
    while True:
        rows = session.execute(
            select(RecordSnapshot.id, RecordSnapshot.attributes)
            .where(RecordSnapshot.object_type.in_(("account", "lead")), RecordSnapshot.id > last_id)
            .order_by(RecordSnapshot.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        last_id = rows[-1].id
        for _, attrs in rows:
            attrs = attrs or {}
            records += 1
            for name in attributes:
                if name in attrs:
                    carried[name] += 1
                    seen = values.get(name)
                    if seen is not None and len(seen) < MAX_VALUES:
                        seen.update(value_keys(attrs[name]))
            if scorer.score(attrs).tier == INSUFFICIENT_DATA:
                insufficient += 1
    return DataProfile(records, carried, {k: frozenset(v) for k, v in values.items()}, insufficient)


def check_text(
    text: str, filename: str, connections: Sequence[ConnectionConfig], session: Session | None = None
) -> tuple[IcpSpec, CheckReport]:
    """Parse ``text`` (raises ``IcpValidationError`` with the parser's errors) and check it against the
    connections and, with a ``session``, the store. The report's errors refuse the file."""
    spec = parse_icp(text, filename)
    refs = references(text)
    report = CheckReport(filename, check_references(refs, catalog_for(connections), filename))
    if session is not None and not report.errors:
        report.profile = profile_store(session, spec, refs)
        report.warnings = data_warnings(
            refs, report.profile, filename, spec.min_coverage, key_line(text, "min_coverage")
        )
    return spec, report


def refuse(report: CheckReport) -> None:
    """Raise the report's errors the way the parser raises its own (exit 2 in the CLI)."""
    if report.errors:
        raise IcpValidationError(report.errors)
