"""Sync benchmark: three phases on a generated CRM, figures printed (not pass/fail).

    python -m benchmarks.sync --crm files --accounts 100000

Phases: ``full`` (first sync), ``incremental`` (1% of the records changed) and ``reevaluate`` (after an
ICP revision, from snapshots). The last line of output is one JSON object::

    {"crm", "accounts", "phases": {PHASE: {"records", "written", "seconds", "records_per_s",
                                          "peak_rss_mb", "calls": {"read", "write", "other"}}}}

``records`` is what the phase pulled (full, incremental) or re-scored (reevaluate). ``peak_rss_mb`` is the
highest resident set size sampled during the phase (every 20 ms), so phases can be compared.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.base import Connector
from worker.config import ConnectionConfig
from worker.demo.sample_crm import DEMO_SYNONYMS
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


@dataclass
class Backend:
    """A CRM for the harness: how to seed it, change 1% of it, and connect to it."""

    connection: ConnectionConfig
    make_connector: Callable[[], Connector]
    change_one_percent: Callable[[], int]
    close: Callable[[], None]


def files_backend(workdir: Path, accounts: int) -> Backend:
    from connectors.files import FilesConnector
    from worker.demo.sample_crm import touch_sample_crm, write_sample_crm

    today = date(2026, 11, 23)
    write_sample_crm(workdir / "crm", accounts=accounts, today=today)
    options = {"path": str(workdir / "crm"), "out": str(workdir / "reimport")}
    cfg = ConnectionConfig(name="bench", crm="files", options=options, industry_synonyms=DEMO_SYNONYMS)
    return Backend(
        connection=cfg,
        make_connector=lambda: FilesConnector.from_config(options),
        change_one_percent=lambda: touch_sample_crm(
            workdir / "crm", share=0.01, modified_at=datetime(2026, 11, 23, 1, 0)
        ),
        close=lambda: None,
    )


BACKENDS: dict[str, Callable[[Path, int], Backend]] = {"files": files_backend}


def _register_crm_backends() -> None:
    """The Salesforce and HubSpot backends start their fake servers; they live with their seeders."""
    try:
        from benchmarks.salesforce_seed import salesforce_backend

        BACKENDS["salesforce"] = salesforce_backend
    except ImportError:
        pass
    try:
        from benchmarks.hubspot_seed import hubspot_backend

        BACKENDS["hubspot"] = hubspot_backend
    except ImportError:
        pass


def run_phase(store: Store, backend: Backend, kind: str, now: datetime) -> dict[str, Any]:
    connector = backend.make_connector()
    with PeakRss() as rss:
        started = time.perf_counter()
        summary = run_sync(store, backend.connection, connector, kind=kind, now=now)
        seconds = time.perf_counter() - started
    connector.close()
    counts = summary.counts
    records = (
        counts.get("scored", 0)
        if kind == "reevaluate"
        else sum(v for k, v in counts.items() if k.startswith("pulled_"))
    )
    calls = summary.api_calls.get("calls", {})
    return {
        "status": summary.status,
        "records": records,
        "written": counts.get("written", 0),
        "seconds": round(seconds, 2),
        "records_per_s": round(records / seconds) if seconds else None,
        "peak_rss_mb": rss.peak_mb,
        "calls": {k: calls.get(k, 0) for k in ("read", "write", "other")},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    _register_crm_backends()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--crm", choices=sorted(BACKENDS), default="files")
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--database-url", default=None, help="Default: SQLite in a temporary folder.")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="icp-bench-") as tmp:
        workdir = Path(tmp)
        t = time.perf_counter()
        backend = BACKENDS[args.crm](workdir, args.accounts)
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
    result = {"crm": args.crm, "accounts": args.accounts, "phases": phases}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
