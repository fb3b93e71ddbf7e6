"""``quiet_collector``: during a run the collector skips the objects that existed before it and collects
the young generation less often; afterwards (the last of overlapping runs ended) everything is as before."""

from __future__ import annotations

import gc

from worker.sync.run import RUN_GC_THRESHOLD, quiet_collector


def test_a_run_freezes_the_heap_and_raises_the_young_threshold_then_restores_both() -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with quiet_collector():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == max(before[0], RUN_GC_THRESHOLD)
        assert gc.get_threshold()[1:] == before[1:]
        with quiet_collector():  # a second run side by side (another thread)
            pass
        assert gc.get_freeze_count() > 0, "the first run is still going"
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_cycles_made_during_a_run_are_still_collected() -> None:
    class Node:
        pass

    with quiet_collector():
        a, b = Node(), Node()
        a.other, b.other = b, a  # type: ignore[attr-defined]
        del a, b
        assert gc.collect() >= 2


def test_an_error_in_the_run_restores_the_collector() -> None:
    before = gc.get_threshold()
    try:
        with quiet_collector():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
