"""The run's data-quality warnings: counted while pulling, stored with the run (table ``run_warnings``).

The normaliser stays pure: it returns its ``ValueProblem``s and the connector offers its ``DataProblem``s;
this module counts both, bounded (every problem is counted; ``MAX_VALUES`` distinct raw values per object
type, kind and field keep their own count, ``MAX_EXAMPLES`` example ids each), and writes them once per
object type pulled.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from connectors.base import DataProblem
from worker.normalize import ValueProblem
from worker.store.models import RunWarning

#: Distinct raw values with their own count, per (object type, kind, field); the rest are counted together.
MAX_VALUES = 50
#: Example record ids (and places) kept per counted value.
MAX_EXAMPLES = 5
#: Longest raw value stored.
MAX_RAW = 200

Key = tuple[str, str, str, str | None]


@dataclass(slots=True)
class _Entry:
    count: int = 0
    ids: list[str] = field(default_factory=list)
    places: list[str] = field(default_factory=list)


@dataclass
class WarningTally:
    """Counts of data problems of one run, bounded (see the module notes)."""

    entries: dict[Key, _Entry] = field(default_factory=dict)
    #: Distinct raw values kept per (object type, kind, field).
    _values: dict[tuple[str, str, str], int] = field(default_factory=dict)
    total: int = 0

    def add(
        self, object_type: str, kind: str, name: str, raw: str | None, record_id: str | None, where: str = ""
    ) -> None:
        self.total += 1
        group = (object_type, kind, name[:100])
        value = None if raw is None else raw[:MAX_RAW]
        key: Key = (*group, value)
        entry = self.entries.get(key)
        if entry is None:
            if self._values.get(group, 0) >= MAX_VALUES:
                key = (*group, None)
                entry = self.entries.get(key)
            else:
                self._values[group] = self._values.get(group, 0) + 1
            if entry is None:
                entry = self.entries[key] = _Entry()
        entry.count += 1
        if len(entry.ids) < MAX_EXAMPLES and (record_id or where):
            entry.ids.append(record_id or "")
            entry.places.append(where)

    def add_values(self, object_type: str, record_id: str, problems: Iterable[ValueProblem]) -> None:
        for p in problems:
            self.add(object_type, p.kind, p.attribute, p.raw, record_id)

    def add_connector(self, object_type: str, problems: Iterable[DataProblem]) -> None:
        for p in problems:
            self.add(object_type, p.kind, p.field, p.raw, p.record_id, p.where)

    def rows(self, run_id: int, connection_id: int) -> list[dict[str, Any]]:
        return [
            {
                "run_id": run_id,
                "connection_id": connection_id,
                "object_type": object_type,
                "kind": kind,
                "field": name,
                "raw_value": raw,
                "count": entry.count,
                "example_ids": list(entry.ids),
                "example_places": list(entry.places),
            }
            for (object_type, kind, name, raw), entry in self.entries.items()
        ]

    def store(self, session: Session, run_id: int, connection_id: int) -> None:
        """Insert what was counted, then start counting afresh (each object type is stored once)."""
        rows = self.rows(run_id, connection_id)
        if rows:
            session.execute(insert(RunWarning), rows)
        self.entries.clear()
        self._values.clear()


def take_connector_problems(connector: Any) -> list[DataProblem]:
    """The connector's problems since the last call (connectors without ``take_problems`` have none)."""
    take = getattr(connector, "take_problems", None)
    return list(take()) if callable(take) else []
