"""When a publish or rollback waits for approval (pure: no I/O).

Before a version becomes current its impact is computed from the snapshot store (the preview). It is
*held* when, for any connection, the share of scored records whose tier changes exceeds that
connection's hold share (``hold.share`` in the connections file, else ``ICP_HOLD_SHARE``, default 0.2),
or the records to write exceed its write limit (``hold.writes``, else ``ICP_HOLD_WRITES``; unset: no
limit). Records never scored before do not count as tier changes (they have no tier to change).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NEW = "(new)"

__all__ = ["ConnectionImpact", "hold_reasons", "impact_of", "impact_summary"]


@dataclass(frozen=True)
class ConnectionImpact:
    connection: str
    #: records that have a fit now
    scored: int
    #: of those, records whose tier the version changes
    tier_changes: int
    #: records whose CRM fields the version writes
    writes: int
    hold_share: float
    hold_writes: int | None = None

    @property
    def share(self) -> float:
        return self.tier_changes / self.scored if self.scored else 0.0

    def reasons(self) -> list[str]:
        found = []
        if self.share > self.hold_share:
            found.append(
                f"{self.connection}: {self.tier_changes:,} of {self.scored:,} scored records "
                f"({self.share:.0%}) change tier, above the hold share {self.hold_share:.0%}"
            )
        if self.hold_writes is not None and self.writes > self.hold_writes:
            found.append(
                f"{self.connection}: {self.writes:,} records to write, above the limit {self.hold_writes:,}"
            )
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "scored": self.scored,
            "tier_changes": self.tier_changes,
            "share": round(self.share, 4),
            "writes": self.writes,
            "hold_share": self.hold_share,
            "hold_writes": self.hold_writes,
        }


def impact_of(
    connection: str,
    transitions: Mapping[tuple[str, str], int],
    writes: int,
    *,
    hold_share: float,
    hold_writes: int | None,
) -> ConnectionImpact:
    """A connection's impact from its preview's (current tier, proposed tier) counts."""
    scored = sum(n for (old, _), n in transitions.items() if old != NEW)
    changes = sum(n for (old, new), n in transitions.items() if old != NEW and old != new)
    return ConnectionImpact(connection, scored, changes, writes, hold_share, hold_writes)


def hold_reasons(impacts: Iterable[ConnectionImpact]) -> list[str]:
    """Why the version must wait for approval (empty: it may be published at once)."""
    return [reason for impact in impacts for reason in impact.reasons()]


def impact_summary(impacts: Sequence[ConnectionImpact]) -> dict[str, Any]:
    """What is stored with a held version (and shown by ``icp history``)."""
    return {
        "connections": [i.as_dict() for i in impacts],
        "reasons": hold_reasons(impacts),
    }
