"""``icp-worker demo``: the whole product on a bundled sample CRM, with no configuration and no account.

Writes a realistic CRM export, syncs it under ICP v1, previews and publishes ICP v2, and shows the
tier distribution, the transition matrix and the re-engagement list. Everything lives in its own
folder and database (``--dir``), so the demo never touches a real store.
"""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from ruamel.yaml import YAML
from sqlalchemy import func, select

from worker.cli.common import handle_errors, out, print_json, progress_bar
from worker.cli.icp import render_preview
from worker.config import ConnectionConfig, WorkerConfig
from worker.demo.sample_crm import DEMO_SYNONYMS, SampleCounts, write_sample_crm
from worker.icp.model import IcpSpec
from worker.icp.preview import preview_connection, tier_order
from worker.icp.publishing import publish_text
from worker.icp.spec import load_icp
from worker.jobs import publish_file, sync_connection
from worker.settings import get_settings
from worker.store.db import Store
from worker.store.models import Connection, RecordFit, RecordSnapshot, ReengageFlag
from worker.store.states import FlagState, RunKind
from worker.sync import RunSummary


def demo_connection(folder: Path) -> ConnectionConfig:
    return ConnectionConfig(
        name="demo",
        crm="files",
        options={"path": str(folder / "crm"), "out": str(folder / "reimport")},
        industry_synonyms=DEMO_SYNONYMS,
    )


def bundled(name: str) -> Path:
    return Path(str(resources.files("worker.demo") / name))


def tier_distribution(store: Store) -> dict[str, dict[str, int]]:
    with store.session() as s:
        rows = s.execute(
            select(RecordSnapshot.object_type, RecordFit.tier, func.count())
            .join(RecordFit, RecordFit.snapshot_id == RecordSnapshot.id)
            .group_by(RecordSnapshot.object_type, RecordFit.tier)
        ).all()
    dist: dict[str, dict[str, int]] = {}
    for obj, tier, n in rows:
        dist.setdefault(obj, {})[tier] = n
    return dist


def print_distribution(title: str, dist: dict[str, dict[str, int]], tiers: list[str]) -> None:
    table = Table(title=title)
    table.add_column("object")
    for t in tiers:
        table.add_column(t, justify="right")
    for obj in ("account", "opportunity", "lead"):
        if obj in dist:
            table.add_row(obj, *[f"{dist[obj].get(t, 0):,}" for t in tiers])
    out.print(table)


def prepare(folder: Path, accounts: int) -> tuple[SampleCounts, Store, ConnectionConfig]:
    """A fresh demo folder: the sample CRM, the store, and a connections file to explore it with."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    counts = write_sample_crm(folder / "crm", accounts=accounts)
    store = Store(f"sqlite:///{folder / 'demo.db'}")
    cfg = demo_connection(folder)
    explore = {
        "connections": [cfg.model_dump(mode="json", include={"name", "crm", "options", "industry_synonyms"})]
    }
    with open(folder / "icp-worker.yaml", "w", encoding="utf-8") as f:
        f.write("# The demo's connection, to explore with the other commands\n")
        YAML().dump(explore, f)
    return counts, store, cfg


def v2_flags(store: Store, spec_v2: IcpSpec, version: int) -> list[Any]:
    """The flags the v2 revision raised (not the backlog flagged at adoption), best fits first."""
    with store.session() as s:
        return list(
            s.execute(
                select(ReengageFlag, RecordSnapshot.name)
                .join(
                    RecordSnapshot,
                    (RecordSnapshot.connection_id == ReengageFlag.connection_id)
                    & (RecordSnapshot.object_type == ReengageFlag.object_type)
                    & (RecordSnapshot.external_id == ReengageFlag.external_id),
                )
                .where(ReengageFlag.state == FlagState.ACTIVE, ReengageFlag.to_version == version)
                # the best fits first, leads before accounts: what a rep would work first
                .order_by(
                    (ReengageFlag.to_tier != spec_v2.tiers[0][0]),
                    ReengageFlag.object_type.desc(),
                    ReengageFlag.id,
                )
            ).all()
        )


def run_folder(cfg: ConnectionConfig, run_id: int) -> Path:
    return Path(str(cfg.options["out"])) / f"run-{run_id}"


@handle_errors
def demo(
    accounts: int = typer.Option(3000, help="Accounts in the sample CRM (opportunities and leads follow)."),
    folder: Path = typer.Option(None, "--dir", help="Where the demo writes (default: ICP_WORKER_HOME/demo)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary instead of tables."),
) -> None:
    """Run the product end to end on a bundled sample CRM: sync under ICP v1, publish v2, re-engage."""
    folder = (folder or get_settings().icp_worker_home / "demo").resolve()
    counts, store, cfg = prepare(folder, accounts)
    say = (lambda *a, **k: None) if as_json else out.print
    say(
        f"[bold]Sample CRM[/] in {folder / 'crm'}: {counts.accounts:,} accounts, {counts.opportunities:,} "
        f"opportunities, {counts.leads:,} leads (messy values, as in real exports)"
    )
    v1 = publish_file(store, bundled("icp_v1.yaml"), note="first ICP", author="demo").version
    say(f"published ICP v{v1.number}: {v1.name}")
    with progress_bar(not as_json) as progress:
        first = sync_connection(store, cfg, kind=RunKind.FULL, progress=progress)
    say(
        f"first sync: {first.status}, {first.counts.get('scored', 0):,} records scored, "
        f"{first.counts.get('written', 0):,} written to {run_folder(cfg, first.run_id)} "
        f"({first.counts.get('warnings', 0):,} unreadable values kept as warnings; "
        f"{first.counts.get('flags_raised', 0):,} stale or dismissed records that already fit flagged as "
        f"the backlog) in {first.timings['total']:.1f}s"
    )
    spec_v2 = load_icp(bundled("icp_v2.yaml"))
    tiers = list(spec_v2.tier_names)
    before = tier_distribution(store)
    with store.session() as s:
        conn = s.scalars(select(Connection).where(Connection.name == "demo")).one()
        preview = preview_connection(s, conn, cfg, spec_v2, v1.number + 1, datetime.now(UTC))
    if not as_json:
        print_distribution(f"Tiers under ICP v{v1.number}", before, tiers)
        out.print("\n[bold]Preview of ICP v2[/] (from the snapshot store, no CRM call)")
        render_preview(preview, tier_order(spec_v2, preview.transitions))

    # The way a user publishes (checks, outbox), with --yes: the demo never waits for an approval, and
    # re-evaluates here in its own store even when a broker is configured.
    with progress_bar(not as_json) as progress:
        published = publish_text(
            store, WorkerConfig(connections=[cfg]), bundled("icp_v2.yaml").read_text(encoding="utf-8"),
            filename="icp_v2.yaml",
            note="quarterly revision: mid-market", author="demo", yes=True, progress=progress, broker_url="",
        )  # fmt: skip
    v2 = published.version
    if published.reevaluation is None or len(published.reevaluation.runs) != 1:
        raise RuntimeError(f"the demo's ICP v2 was not re-evaluated ({published.action})")
    (second,) = published.reevaluation.runs
    flags = v2_flags(store, spec_v2, v2.number)
    if as_json:
        print_json(
            {
                "folder": str(folder),
                "records": counts.total,
                "icp_versions": [v1.number, v2.number],
                "first_sync": first.__dict__,
                "reevaluation": second.__dict__,
                "tiers_before": before,
                "tiers_after": tier_distribution(store),
                "preview": preview.as_dict(tier_order(spec_v2, preview.transitions)),
                "reengage": [
                    {
                        "id": f.external_id,
                        "name": n,
                        "object_type": f.object_type,
                        "kind": f.kind,
                        "reason": f.reason,
                    }
                    for f, n in flags
                ],
            }
        )
        return
    show_outcome(folder, cfg, v2.number, second, tier_distribution(store), tiers, flags)


def show_outcome(
    folder: Path,
    cfg: ConnectionConfig,
    version: int,
    second: RunSummary,
    after: dict[str, dict[str, int]],
    tiers: list[str],
    flags: list[Any],
) -> None:
    out.print(
        f"\npublished ICP v{version}; re-evaluation from snapshots: {second.counts.get('scored', 0):,} "
        f"scored, {second.counts.get('written', 0):,} changed records written to "
        f"{run_folder(cfg, second.run_id)}, no CRM read"
    )
    print_distribution(f"Tiers under ICP v{version}", after, tiers)
    kinds = Counter(f.kind for f, _ in flags)
    out.print(
        f"\n[bold]Re-engagement list[/]: {len(flags):,} records "
        f"({kinds.get('dismissed', 0):,} dismissed, {kinds.get('stale', 0):,} stale) now fit"
    )
    table = Table("record", "name", "owner", "why")
    for f, name in flags[:15]:
        table.add_row(f"{f.object_type} {f.external_id}", name or "", f.owner_id or "", f.reason)
    out.print(table)
    out.print(
        f"\nRe-import files for the CRM, one folder per run: {folder / 'reimport'}\n"
        "Explore the demo's store:\n"
        f"  export DATABASE_URL=sqlite:///{folder / 'demo.db'}\n"
        f"  export ICP_WORKER_CONFIG={folder / 'icp-worker.yaml'}\n"
        "  icp-worker runs; icp-worker reengage list; icp-worker icp history; icp-worker icp diff 1 2",
        highlight=False,
    )
