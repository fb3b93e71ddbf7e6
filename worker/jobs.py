"""The units of work the CLI runs in-process and the Celery tasks run in a worker: plain functions
that take a connection's configuration, build its connector and call the sync service."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.registry import build_connector
from worker import outbox, yamlfile
from worker.config import ConnectionConfig, WorkerConfig
from worker.icp import versions
from worker.store.db import Store
from worker.store.states import RunKind
from worker.sync import ProgressFn, RunSummary, run_sync


def sync_connection(
    store: Store,
    cfg: ConnectionConfig,
    *,
    kind: str = RunKind.INCREMENTAL,
    progress: ProgressFn | None = None,
    task_id: str | None = None,
    now: datetime | None = None,
    env: Mapping[str, str] | None = None,
    limiter: Any = None,
    dry_run: bool = False,
    score: bool = True,
) -> RunSummary:
    """One run of one connection, with its connector opened and closed around it (``dry_run``,
    ``score=False``: see ``worker.sync.run_sync``).

    A re-evaluation the publish outbox still owes the connection is carried out first (its own
    ``reevaluate`` run); every run that scored the connection settles the requests it fulfils. A dry run
    does neither: it writes nothing."""
    connector = build_connector(
        cfg.crm, cfg.options, env_prefix=cfg.env_prefix or "", env=env, limiter=limiter
    )
    try:
        settles = score and not dry_run
        if settles and kind in outbox.FIRST_REEVALUATE_BEFORE and outbox.owes(store, cfg.name):
            first = run_sync(
                store, cfg, connector, kind="reevaluate", now=now, progress=progress, task_id=task_id
            )
            outbox.settle(store, cfg.name, first.run_id, first.status, first.kind)
        summary = run_sync(
            store,
            cfg,
            connector,
            kind=kind,
            now=now,
            progress=progress,
            task_id=task_id,
            score=score,
            dry_run=dry_run,
        )
        if settles:
            outbox.settle(store, cfg.name, summary.run_id, summary.status, summary.kind)
        return summary
    finally:
        connector.close()


def reevaluate_all(
    store: Store, config: WorkerConfig, *, progress: ProgressFn | None = None, now: datetime | None = None
) -> list[RunSummary]:
    """Re-score every configured connection from its snapshots (no CRM read) and write what changed."""
    return [
        sync_connection(store, cfg, kind=RunKind.REEVALUATE, progress=progress, now=now)
        for cfg in config.connections
    ]


def publish_file(
    store: Store, path: Path, *, note: str, author: str, now: datetime | None = None
) -> versions.Published:
    """Store ``path`` as the next current version, with no check against the connections, no hold and
    no re-evaluation (tests, the demo's first version): ``worker.icp.publishing`` does all of that."""
    text = yamlfile.read_text(path)  # not UTF-8, or over the size limit: YamlFileError naming the line
    with store.session() as s:
        return versions.publish(s, text, filename=str(path), author=author, note=note, now=now)
