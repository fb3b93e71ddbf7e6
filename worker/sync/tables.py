"""The tables the sync's hot paths use as Core statements: plain rows and executemany, no ORM
identity map."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from sqlalchemy import Table

from worker.store.models import FitHistory, RecordFit, RecordSnapshot

SNAP = cast(Table, RecordSnapshot.__table__)
FIT = cast(Table, RecordFit.__table__)
HISTORY = cast(Table, FitHistory.__table__)

ProgressFn = Callable[[str, int], None]
"""``progress(phase, n)``: ``n`` more records done in ``phase`` (pull:account, score:lead, write:...)."""
