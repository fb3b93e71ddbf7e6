"""Sync benchmark: three phases on a generated CRM, figures printed (not pass/fail).

    python -m benchmarks.sync --crm files --accounts 100000
    python -m benchmarks.sync --crm hubspot --accounts 3000 --latency-ms 250


Phases: ``full`` (first sync), ``incremental`` (1% of the records changed) and ``reevaluate`` (after an
ICP revision, from snapshots). The last line of output is one JSON object::

    {"crm", "accounts", "latency_ms", "phases": {PHASE: {"records", "written", "seconds", "records_per_s",
                                          "cpu_s", "records_per_cpu_s",
                                          "peak_rss_mb", "calls": {"read", "write", "other"},
                                          "timings": {"pull", "score", "write", ...}}},
     "reference_s": {"before", "after"}}

``cpu_s`` is this process's CPU time in the phase (user and system, every thread; a PostgreSQL
server's own work is not in it) and ``records_per_cpu_s`` the records per CPU second: on a shared
machine they compare runs better than wall time. ``records`` is what the phase pulled (full,
incremental) or re-scored (reevaluate). ``peak_rss_mb`` is the highest resident set size sampled
during the phase (every 20 ms), so phases can be compared. HubSpot phases also carry
``rate_limit_bound_s`` (the phase's calls divided by the portal's allowed rate: the fastest any client
could be) and ``bound_ratio`` (seconds / bound). ``--latency-ms L`` holds back every answer of a fake
CRM by L ms (see ``benchmarks.backends``). ``reference_s`` is how fast the machine ran Python before the
phases and after them (``benchmarks.machine``: lower is faster); figures from sittings whose reference
times differ are not comparable as they stand.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.backends import BACKENDS, Backend
from benchmarks.machine import reference_seconds
from worker.icp import versions
from worker.store.db import Store
from worker.sync import run_sync

BUNDLED = Path(__file__).resolve().parent.parent / "worker" / "demo"


class PeakRss:
    """Samples this process's resident set size in a thread; ``peak_mb`` is the highest seen."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self.peak = self._rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 2**20, 1)


def run_phase(store: Store, backend: Backend, kind: str, now: datetime) -> dict[str, Any]:
    connector = backend.make_connector()
    with PeakRss() as rss:
        started, cpu_started = time.perf_counter(), time.process_time()
        summary = run_sync(store, backend.connection, connector, kind=kind, now=now)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    connector.close()
    counts = summary.counts
    records = (
        counts.get("scored", 0)
        if kind == "reevaluate"
        else sum(v for k, v in counts.items() if k.startswith("pulled_"))
    )
    calls = summary.api_calls.get("calls", {})
    figures: dict[str, Any] = {
        "status": str(summary.status),
        "records": records,
        "written": counts.get("written", 0),
        "seconds": round(seconds, 2),
        "records_per_s": round(records / seconds) if seconds else None,
        "cpu_s": round(cpu, 2),
        "records_per_cpu_s": round(records / cpu) if cpu else None,
        "peak_rss_mb": rss.peak_mb,
        "calls": {k: calls.get(k, 0) for k in ("read", "write", "other")},
        "timings": dict(summary.timings),
    }
    if backend.allowed_rate:
        # The fastest any client could go: every call at the allowed rate, nothing else taking time.
        bound = sum(figures["calls"].values()) / backend.allowed_rate
        figures["rate_limit_bound_s"] = round(bound, 2)
        figures["bound_ratio"] = round(seconds / bound, 3) if bound else None
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--crm", choices=sorted(BACKENDS), default="files")
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--database-url", default=None, help="Default: SQLite in a temporary folder.")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="Hold back every answer of the fake CRM by this many milliseconds (salesforce, hubspot).",
    )
    args = parser.parse_args(argv)
    if args.latency_ms < 0:
        parser.error("--latency-ms must be >= 0")

    reference = {"before": reference_seconds()}
    print(f"machine: reference workload {reference['before']:.3f} s (benchmarks.machine)", flush=True)
    with tempfile.TemporaryDirectory(prefix="icp-bench-") as tmp:
        workdir = Path(tmp)
        t = time.perf_counter()
        backend = BACKENDS[args.crm](workdir, args.accounts, args.latency_ms)
        print(
            f"seeded {args.crm} with {args.accounts:,} accounts in {time.perf_counter() - t:.1f}s", flush=True
        )
        store = Store(args.database_url or f"sqlite:///{workdir / 'bench.db'}")
        now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
        with store.session() as s:
            versions.publish(
                s, (BUNDLED / "icp_v1.yaml").read_text(), filename="icp_v1.yaml", author="bench", note="v1"
            )
        phases: dict[str, Any] = {}
        try:
            phases["full"] = run_phase(store, backend, "full", now)
            print(f"full:        {phases['full']}", flush=True)
            changed = backend.change_one_percent()
            print(f"changed {changed:,} records", flush=True)
            phases["incremental"] = run_phase(store, backend, "incremental", now + timedelta(days=1))
            print(f"incremental: {phases['incremental']}", flush=True)
            with store.session() as s:
                versions.publish(
                    s,
                    (BUNDLED / "icp_v2.yaml").read_text(),
                    filename="icp_v2.yaml",
                    author="bench",
                    note="v2",
                )
            phases["reevaluate"] = run_phase(store, backend, "reevaluate", now + timedelta(days=1, hours=1))
            print(f"reevaluate:  {phases['reevaluate']}", flush=True)
        finally:
            backend.close()
            store.dispose()
    reference["after"] = reference_seconds()
    print(f"machine: reference workload {reference['after']:.3f} s after the phases", flush=True)
    result = {
        "crm": args.crm,
        "accounts": args.accounts,
        "latency_ms": args.latency_ms,
        "phases": phases,
        "reference_s": reference,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
