"""The benchmarks print how fast the machine ran Python beside their figures (``benchmarks.machine``)."""

from __future__ import annotations

import gc
import json

from benchmarks import scoring, sync
from benchmarks.machine import CHECKSUM, reference_seconds, workload


def test_the_reference_workload_is_deterministic_and_timed_without_the_collector():
    assert workload() == workload() == CHECKSUM
    assert workload(1_000) != CHECKSUM  # the checksum is the full workload's
    seen = []
    gc.callbacks.append(lambda phase, info: seen.append(phase))
    try:
        seconds = reference_seconds(repeats=2)
    finally:
        gc.callbacks.pop()
    assert 0 < seconds < 5
    assert seen == [], "no collection ran during the timed workload"
    assert gc.isenabled()


def test_the_sync_benchmark_reports_the_reference_before_and_after_its_phases(capsys):
    result = sync.main(["--crm", "files", "--accounts", "30"])
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last == result
    assert set(last["reference_s"]) == {"before", "after"}
    assert all(v > 0 for v in last["reference_s"].values())
    assert set(last["phases"]) == {"full", "incremental", "reevaluate"}


def test_the_scoring_benchmark_reports_the_reference(capsys):
    assert scoring.main(["--records", "500"]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["records"] == 500 and set(last["reference_s"]) == {"before", "after"}
