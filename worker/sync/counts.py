"""What a run did, counted while it runs; stored in the run record as a flat JSON object."""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(slots=True)
class RunCounts:
    #: Records pulled and records whose snapshot changed, by object type (``pulled_account`` ...).
    pulled: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    #: Values that could not be read (kept on the snapshots as warnings).
    warnings: int = 0
    scored: int = 0
    #: Records whose score, tier, reasons or ICP version changed.
    fits_changed: int = 0
    flags_raised: int = 0
    flags_cleared: int = 0
    written: int = 0
    write_errors: int = 0
    tasks_created: int = 0
    tasks_capped: int = 0
    task_errors: int = 0

    def add_pulled(self, object_type: str, pulled: int, changed: int) -> None:
        self.pulled[object_type] = self.pulled.get(object_type, 0) + pulled
        self.changed[object_type] = self.changed.get(object_type, 0) + changed

    def as_dict(self) -> dict[str, int]:
        """``{"pulled_account": 3, "changed_account": 1, ..., "scored": 3, "written": 2, ...}``."""
        out: dict[str, int] = {}
        for object_type, n in self.pulled.items():
            out[f"pulled_{object_type}"] = n
            out[f"changed_{object_type}"] = self.changed.get(object_type, 0)
        for f in fields(self):
            if f.name not in ("pulled", "changed"):
                out[f.name] = getattr(self, f.name)
        return out
