"""``reengage.decide`` reads a record's state only when the decision depends on it (the score phase then
reads an account's opportunities only for those accounts), and decides exactly as with the state given."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

from worker.reengage import NOTHING, ActiveFlag, RecordState, decide

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
TARGETS = frozenset({"best", "good"})

STATES = [
    RecordState("lead", {"lead_status": "Closed - Not Converted"}, date(2025, 1, 1)),
    RecordState("lead", {"lead_status": "Working", "is_converted": True}, date(2025, 1, 1)),
    RecordState("lead", {}, None),
    RecordState("lead", {}, date(2026, 11, 22)),
    RecordState("account", {}, date(2025, 1, 1), has_open_pipeline=True),
    RecordState("account", {}, date(2026, 12, 1), latest_opportunity_lost=True),
    RecordState("account", {}, date(2025, 1, 1), latest_opportunity_lost=True),
    RecordState("account", {}, date(2025, 1, 1), is_customer=True),
    RecordState("opportunity", {}, date(2025, 1, 1)),
]


def test_a_lazy_state_decides_as_the_state_itself_and_is_read_only_when_needed():
    reads = 0
    decisions = 0
    combos = itertools.product(
        STATES,
        (None, "poor", "good", "best"),
        ("poor", "good", "best", "disqualified"),
        (None, ActiveFlag(NOW - timedelta(days=30))),
        (None, NOW - timedelta(days=3), NOW - timedelta(days=400)),
        (False, True),
    )
    for state, previous, new, flag, last_raised, backlog in combos:
        read: list[bool] = []

        def lazy(state: RecordState = state, read: list[bool] = read) -> RecordState:
            read.append(True)
            return state

        args = dict(
            previous_tier=previous, new_tier=new, target_tiers=TARGETS, active_flag=flag,
            last_raised=last_raised, now=NOW, dismissed_statuses=frozenset({"closed - not converted"}),
            stale_days=90, cooloff_days=30, explanation="poor → best", backlog=backlog,
        )  # fmt: skip
        eager = decide(state, **args)  # type: ignore[arg-type]
        assert decide(lazy, **args) == eager  # type: ignore[arg-type]
        if not read:
            assert eager == NOTHING
            assert flag is None and (
                new not in TARGETS or previous in TARGETS or (previous is None and not backlog)
            )
        reads += bool(read)
        decisions += eager != NOTHING
    assert decisions > 50  # the grid raises and clears flags, not only nothing
    assert 0 < reads < 2 * 4 * 4 * 3 * 2 * len(STATES)
