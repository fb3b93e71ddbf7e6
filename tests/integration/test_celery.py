"""The worker for real: Celery worker processes on the real Redis broker, PostgreSQL as the store, and a
CRM that every process sees (the files connector's CSV exports and re-import files on disk).

Not eager mode: each test starts worker processes (``celery -A ... worker`` or ``icp-worker worker``),
enqueues through the broker and waits, with a timeout, for the runs to appear in ``sync_runs``. Redis
and PostgreSQL must be running: these tests fail, never skip, without them. Every test uses its own
PostgreSQL schema and its own Redis key prefix (broker queues included), removed afterwards.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests import processes
from tests.conftest import _pg_store
from tests.processes import wait_for
from worker.celery_app import RuntimeSettings, create_app
from worker.config import WorkerConfig, parse_config
from worker.demo.sample_crm import DEMO_SYNONYMS, write_sample_crm
from worker.jobs import publish_file, sync_connection
from worker.observability import REDACTED
from worker.settings import Settings
from worker.store.db import Store
from worker.store.models import ReengageFlag, SyncRun
from worker.tasks import enqueue_fanout, enqueue_reevaluation, enqueue_sync

pytestmark = pytest.mark.celery

REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ICP_V1 = ROOT / "worker" / "demo" / "icp_v1.yaml"
ICP_V2 = ROOT / "worker" / "demo" / "icp_v2.yaml"
ALL_QUEUES = "sync,reevaluate,schedule"
#: Settings a developer's shell might carry into the worker processes; the tests set their own.
OURS = (
    "DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "ICP_WORKER_CONFIG", "ICP_WORKER_HOME", "METRICS_PORT",
    "LOG_FORMAT", "LOG_LEVEL", "PROMETHEUS_MULTIPROC_DIR", "CELERY_VISIBILITY_TIMEOUT", "CELERY_KEY_PREFIX",
    "REDIS_KEY_PREFIX", "LOCK_TTL_SECONDS", "LOCK_RETRY_SECONDS", "LOCK_WAIT_SECONDS", "TASK_MAX_RETRIES",
    "RETRY_BACKOFF_SECONDS", "RETRY_BACKOFF_MAX_SECONDS", "WORKER_CONCURRENCY", "BEAT_SCHEDULE_FILE",
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc(processes.Proc):
    """A worker, beat or CLI process in its own session (so that a test can kill its whole group)."""

    def wait_ready(self, timeout: float = 30) -> Proc:
        def ready() -> bool:
            if self.popen.poll() is not None:
                raise AssertionError(f"worker exited with {self.popen.returncode}:\n{self.text()[-4000:]}")
            return " ready." in self.text()

        wait_for(ready, timeout, f"the worker logging to {self.log.name} to be ready")
        return self


@dataclass
class Stack:
    """One test's services: a PostgreSQL schema, a Redis prefix, a CRM folder, a connections file."""

    tmp: Path
    store: Store
    prefix: str
    config_path: Path
    crm: Path
    out: Path
    app: Any
    procs: list[Proc] = field(default_factory=list)

    def env(self, **extra: Any) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in OURS and not k.startswith("CRASH_CRM_")}
        env.update(
            PYTHONPATH=str(ROOT),
            DATABASE_URL=self.store.url,
            CELERY_BROKER_URL=REDIS_URL,
            CELERY_KEY_PREFIX=self.prefix,
            REDIS_KEY_PREFIX=f"{self.prefix}icp:",
            ICP_WORKER_CONFIG=str(self.config_path),
            ICP_WORKER_HOME=str(self.tmp / "home"),
            LOG_FORMAT="json",
            LOG_LEVEL="INFO",
            ICP_WORKER_NO_PROGRESS="1",
            LOCK_TTL_SECONDS="3",
            LOCK_RETRY_SECONDS="0.5",
            RETRY_BACKOFF_SECONDS="1",
        )
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def worker(self, name: str, *, app: str = "worker.celery_app", concurrency: int = 1, cli: bool = False,
               **env: Any) -> Proc:  # fmt: skip
        if cli:
            argv = [
                str(BIN / "icp-worker"),
                "worker",
                "-Q",
                ALL_QUEUES,
                "-c",
                str(concurrency),
                "-n",
                f"{name}@%h",
            ]
        else:
            argv = [str(BIN / "celery"), "-A", app, "worker", "-Q", ALL_QUEUES, "-c", str(concurrency)]
            argv += [
                "-P",
                "prefork",
                "-n",
                f"{name}@%h",
                "--without-mingle",
                "--without-gossip",
                "-l",
                "INFO",
            ]
        proc = Proc(argv, self.env(**env), self.tmp, self.tmp / f"{name}.log")
        self.procs.append(proc)
        return proc

    def cli(self, *args: str, **env: Any) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(BIN / "icp-worker"), *args], cwd=self.tmp, env=self.env(**env),
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, f"icp-worker {' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done

    def config(self) -> WorkerConfig:
        return parse_config(self.config_path.read_text(encoding="utf-8"), str(self.config_path))

    def runs(self, **where: Any) -> list[SyncRun]:
        with self.store.session() as s:
            q = select(SyncRun).order_by(SyncRun.id)
            for k, v in where.items():
                q = q.where(getattr(SyncRun, k) == v)
            return list(s.scalars(q))

    def finished_run(self, task_id: str, timeout: float = 60, status: str | None = None) -> SyncRun:
        def done() -> SyncRun | None:
            rows = [r for r in self.runs(task_id=task_id) if r.status != "running"]
            rows = [r for r in rows if status is None or r.status == status]
            return rows[-1] if rows else None

        return wait_for(done, timeout, f"a {status or 'finished'} run of task {task_id}")


def write_config(path: Path, crm: Path, out: Path, *, name: str = "acme") -> None:
    doc = {
        "connections": [
            {
                "name": name,
                "crm": "files",
                "options": {"path": str(crm), "out": str(out)},
                "industry_synonyms": dict(DEMO_SYNONYMS),
                # The first sync flags nothing (no backlog): the flags these tests count come from runs.
                "reengage": {"create_tasks": True, "flag_backlog": False},
                "schedule": {"cron": "0 2 * * *", "timezone": "Europe/Berlin"},
            }
        ]
    }
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")  # JSON is YAML


@pytest.fixture
def stack(tmp_path):
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}. Start it (see .ci/run).")
    prefix = f"icptest-{uuid.uuid4().hex[:10]}:"
    store, drop = _pg_store()
    crm, out = tmp_path / "crm", tmp_path / "out"
    write_sample_crm(crm, accounts=40)
    config_path = tmp_path / "icp-worker.yaml"
    write_config(config_path, crm, out)
    app = create_app(
        Settings(celery_broker_url=REDIS_URL, _env_file=None),
        RuntimeSettings(celery_key_prefix=prefix, _env_file=None),
    )
    st = Stack(tmp_path, store, prefix, config_path, crm, out, app)
    try:
        yield st
    finally:
        for proc in st.procs:
            proc.stop()
        app.close()
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
        drop()


# --------------------------------------------------------------------------------------------- CRM helpers


def run_folders(out: Path) -> list[Path]:
    """The files connector's run folders (``run-<id>``), oldest run first."""
    return sorted(out.glob("run-*"), key=lambda p: int(p.name.removeprefix("run-")))


def update_rows(out: Path, skip: dict[str, int] | None = None) -> list[tuple[str, dict[str, str]]]:
    """Rows of the re-import files of every run, per object type in the order written: (object type,
    row). ``skip``: rows to leave out at the start of each object's rows (those of an earlier phase)."""
    rows = []
    for obj in ("account", "opportunity", "lead"):
        written: list[dict[str, str]] = []
        for folder in run_folders(out):
            path = folder / f"{obj}_updates.csv"
            if path.exists():
                with open(path, newline="", encoding="utf-8") as f:
                    written += list(csv.DictReader(f))
        rows += [(obj, row) for row in written[(skip or {}).get(obj, 0) :]]
    return rows


def rows_per_object(out: Path) -> dict[str, int]:
    return dict(Counter(obj for obj, _ in update_rows(out)))


def crm_state(rows: list[tuple[str, dict[str, str]]]) -> dict[tuple[str, str], dict[str, str]]:
    """What the CRM holds after importing the files: the latest row per record (``scored_at`` is the
    run's clock, so it is left out of comparisons)."""
    state = {}
    for obj, row in rows:
        state[(obj, row["Id"])] = {k: v for k, v in row.items() if k != "ICP_Scored_At__c"}
    return state


def task_rows(out: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for folder in run_folders(out):
        path = folder / "tasks.csv"
        if path.exists():
            with open(path, newline="", encoding="utf-8") as f:
                rows += list(csv.DictReader(f))
    return rows


def events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def json_lines(text: str) -> list[dict[str, Any]]:
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                found.append(json.loads(line))
    return found


# --------------------------------------------------------------------------------------------- (a) schedule


def test_a_scheduled_sync_runs_end_to_end_through_the_worker(stack, tmp_path):
    from worker.schedule import ConnectionScheduler

    publish_file(stack.store, ICP_V1, note="v1", author="test")
    port = free_port()
    worker = stack.worker("sched", cli=True, METRICS_PORT=port).wait_ready()

    # Beat's scheduler (the one `icp-worker beat` runs), here in the test process on the test broker.
    stack.app.conf.icp_worker_config = str(stack.config_path)
    beat = ConnectionScheduler(app=stack.app, schedule_filename=str(tmp_path / "beat-state"), lazy=False)
    entry = beat.schedule["sync:acme"]
    assert entry.task == "icp.sync_connection" and entry.args == ("acme", "incremental")
    assert not entry.is_due()[0], "a new entry waits for its first scheduled time"
    # Pretend the last run was two days ago: 02:00 Europe/Berlin has passed since, so the entry is due.
    entry.last_run_at = entry.default_now() - timedelta(days=2)
    beat._heap = None
    beat.tick()
    assert not beat.schedule["sync:acme"].is_due()[0], "sent once, then not due until the next 02:00"

    def scheduled_run() -> SyncRun | None:
        rows = [r for r in stack.runs() if r.status != "running"]
        return rows[0] if rows else None

    run = wait_for(scheduled_run, 60, "the scheduled run")
    assert run.status == "succeeded" and run.kind == "incremental" and run.task_id
    written = run.counts["written"]
    assert written > 100 and written == len(update_rows(stack.out))

    # The worker's metrics endpoint aggregates what its pool children recorded.
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert f'icp_records_written_total{{connection="acme"}} {float(written)}' in body
    assert 'icp_runs_total{connection="acme",kind="incremental",status="succeeded"} 1.0' in body
    assert 'icp_last_success_timestamp_seconds{connection="acme"}' in body

    # `icp-worker sync --enqueue` goes through the same queue; nothing changed, so nothing is written.
    queued = stack.cli("sync", "--connection", "acme", "--enqueue")
    task_id = queued.stdout.strip().rsplit("task ", 1)[1].rstrip(")")
    again = stack.finished_run(task_id)
    assert again.status == "succeeded" and again.counts.get("written", 0) == 0
    lines = json_lines(worker.text())
    finished = [x for x in lines if x.get("event") == "run.finished" and x.get("task_id") == task_id]
    assert finished and finished[0]["connection"] == "acme" and finished[0]["run_id"] == again.id

    # The fan-out task queues a sync of every connection in the worker's connections file.
    fanout_id = enqueue_fanout(app=stack.app)
    third = wait_for(
        lambda: [
            r for r in stack.runs() if r.status != "running" and r.task_id not in (run.task_id, task_id)
        ],
        60,
        "the fan-out's sync",
    )[0]
    assert third.status == "succeeded" and third.kind == "incremental"
    fanout = [x for x in json_lines(worker.text()) if x.get("event") == "fanout.queued"]
    assert fanout and fanout[0]["task_id"] == fanout_id and fanout[0]["tasks"] == 1

    # `icp-worker beat` starts with one zoned entry per connection.
    beat_proc = Proc([str(BIN / "icp-worker"), "beat"], stack.env(BEAT_SCHEDULE_FILE=tmp_path / "beat.db"),
                     stack.tmp, stack.tmp / "beat.log")  # fmt: skip
    stack.procs.append(beat_proc)
    entry_line = wait_for(
        lambda: [x for x in json_lines(beat_proc.text()) if x.get("entry") == "sync:acme"],
        30,
        "beat's schedule",
    )[0]
    assert entry_line["schedule"] == "<ZonedCron 0 2 * * * Europe/Berlin>"
    assert entry_line["next_run"].endswith(("T02:00:00+01:00", "T02:00:00+02:00"))


# --------------------------------------------------------------------------------------------- (b) race


@pytest.mark.parametrize("outcome", ["waits", "skipped"])
def test_two_workers_racing_for_one_connection_never_overlap(stack, outcome):
    publish_file(stack.store, ICP_V1, note="v1", author="test")
    slow = {"app": "testing.crash_crm", "CRASH_CRM_BATCH": 25, "CRASH_CRM_WRITE_DELAY": 0.4,
            "LOCK_WAIT_SECONDS": 60 if outcome == "waits" else 1}  # fmt: skip
    workers = [stack.worker("race1", **slow), stack.worker("race2", **slow)]
    for w in workers:
        w.wait_ready()
    ids = [enqueue_sync("acme", "full", app=stack.app) for _ in range(2)]
    runs = [stack.finished_run(i, timeout=60) for i in ids]
    logs = "\n".join(w.text() for w in workers)
    statuses = sorted(r.status for r in runs)
    if outcome == "waits":
        assert statuses == ["succeeded", "succeeded"]
        first, second = sorted(runs, key=lambda r: r.started_at)
        assert second.started_at >= first.finished_at, "the second run started after the first ended"
        waiting = [x for x in json_lines(logs) if x.get("event") == "sync.waiting"]
        assert waiting and waiting[0]["holder"] == first.task_id and first.task_id in waiting[0]["reason"]
    else:
        assert statuses == ["skipped", "succeeded"]
        ran = next(r for r in runs if r.status == "succeeded")
        skipped = next(r for r in runs if r.status == "skipped")
        assert ran.task_id in skipped.error and "another run of acme holds its lock" in skipped.error
        assert ran.started_at <= skipped.started_at <= ran.finished_at
        assert any(x.get("event") == "sync.skipped" for x in json_lines(logs))
    assert len(stack.runs()) == 2, "no retry storm: one row per task"


# --------------------------------------------------------------------------------------------- (c) crash


def reference_outcome(tmp: Path, crm: Path) -> tuple[list, list, dict[str, int]]:
    """The same work without interruption, in-process: v1 full sync, publish v2, re-evaluate. Returns
    (all update rows, the re-evaluation's rows, rows per object after the first sync)."""
    out = tmp / "ref-out"
    write_config(tmp / "ref.yaml", crm, out)
    cfg = parse_config((tmp / "ref.yaml").read_text(encoding="utf-8")).get("acme")
    store = Store(f"sqlite:///{tmp / 'ref.db'}")
    try:
        publish_file(store, ICP_V1, note="v1", author="test")
        sync_connection(store, cfg, kind="full")
        phase1 = rows_per_object(out)
        publish_file(store, ICP_V2, note="v2", author="test")
        summary = sync_connection(store, cfg, kind="reevaluate")
        assert summary.status == "succeeded" and summary.counts["tasks_created"] > 0
    finally:
        store.dispose()
    return update_rows(out), update_rows(out, skip=phase1), phase1


def pid_alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting for its parent to reap it does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.parametrize("victim", ["whole worker", "pool child"])
def test_a_worker_killed_mid_write_leaves_the_crm_as_an_uninterrupted_run_would(stack, tmp_path, victim):
    ref_rows, ref_phase2, ref_phase1 = reference_outcome(tmp_path, stack.crm)
    ref_tasks = task_rows(tmp_path / "ref-out")

    cfg = stack.config().get("acme")
    publish_file(stack.store, ICP_V1, note="v1", author="test")
    sync_connection(stack.store, cfg, kind="full")  # in-process: the first sync is not what we kill
    phase1 = rows_per_object(stack.out)
    assert phase1 == ref_phase1
    publish_file(stack.store, ICP_V2, note="v2", author="test")

    log, slow = tmp_path / "writes.jsonl", tmp_path / "slow"
    slow.touch()
    crash = {"app": "testing.crash_crm", "CRASH_CRM_BATCH": 4, "CRASH_CRM_EVENTS": log,
             "LOCK_TTL_SECONDS": 2, "CRASH_CRM_WRITE_DELAY": 0.3, "CRASH_CRM_SLOW_FLAG": slow}  # fmt: skip
    if victim == "whole worker":  # Redis hands a dead worker's unacknowledged message on after this long
        crash["CELERY_VISIBILITY_TIMEOUT"] = 3
    else:  # the message comes back within seconds: the dead child's lock is still there, and expires
        crash["LOCK_TTL_SECONDS"] = 10
    first = stack.worker("doomed", **crash).wait_ready()
    (task_id,) = enqueue_reevaluation(["acme"], app=stack.app)
    wait_for(lambda: len([e for e in events(log) if e["event"] == "start"]) >= 3, 60, "the write phase")
    started = events(log)
    if victim == "whole worker":
        first.kill()
    else:
        os.kill(started[-1]["pid"], signal.SIGKILL)  # the main process requeues the message at once
    killed_at = datetime.now(UTC)
    slow.unlink()
    # What a crash may re-send (worker/sync/write.py): the files connector commits a batch's results in a
    # second thread while it writes the next, so the last two batches begun may both be uncommitted.
    # (Read after the kill, and only the killed process's: a write begun between the read above and the
    # kill counts.)
    victim_pid = started[-1]["pid"]
    wait_for(lambda: not pid_alive(victim_pid), 10, "the killed process to be gone")
    begun = [e for e in events(log) if e["event"] == "start" and e["pid"] == victim_pid]
    in_flight = {i for e in begun[-2:] for i in e["ids"]}
    if victim == "whole worker":
        stack.worker("rescuer", **crash).wait_ready()

    resumed = stack.finished_run(task_id, timeout=60, status="succeeded")
    history = stack.runs(task_id=task_id)
    assert [r.status for r in history] == ["failed", "succeeded"], (
        "the killed run is closed, not left running"
    )
    assert history[0].error.startswith("abandoned")
    lines = json_lines("\n".join(p.text() for p in stack.procs))
    assert any(x.get("event") == "task.started" and x.get("redelivered") for x in lines)
    if victim == "pool child":
        # The dead child's lock lives on for 10 s at most, 6.7 s at least (renewed every 3.3 s): a delivery
        # that came back before then must have waited for it.
        back = min(datetime.fromisoformat(x["timestamp"]) for x in lines if x.get("redelivered"))
        if back < killed_at + timedelta(seconds=6):
            assert any(x.get("event") == "sync.waiting" for x in lines), "the dead child's lock held it back"

    # The CRM ends as after an uninterrupted run: every record's latest values equal the reference's ...
    rows = update_rows(stack.out)
    assert crm_state(rows) == crm_state(ref_rows)
    # ... no update lost, and none applied twice except the two batches that may have been in flight.
    phase2 = Counter(row["Id"] for _, row in update_rows(stack.out, skip=phase1))
    assert set(phase2) == {row["Id"] for _, row in ref_phase2}
    twice = {i for i, n in phase2.items() if n > 1}
    assert twice <= in_flight and len(twice) <= 2 * 4 and max(phase2.values()) <= 2
    # ... and each follow-up task exists once.
    tasks = task_rows(stack.out)
    assert len({t["key"] for t in tasks}) == len(tasks) == len(ref_tasks)
    assert {(t["object_type"], t["record_id"]) for t in tasks} == {
        (t["object_type"], t["record_id"]) for t in ref_tasks
    }
    with stack.store.session() as s:
        flags = list(s.scalars(select(ReengageFlag).where(ReengageFlag.state == "active")))
    assert len(flags) == len(tasks) and all(f.task_status == "created" for f in flags)
    assert resumed.counts.get("scored", 0) == 0, "the resumed run had nothing left to score"


# --------------------------------------------------------------------------------------------- (d) publish


def test_an_icp_publish_reevaluates_through_the_worker_and_raises_reengagement_flags(stack):
    stack.worker("pub").wait_ready()
    stack.cli("icp", "publish", str(ICP_V1), "-m", "first ICP", "--no-reevaluate")
    queued = stack.cli("sync", "--connection", "acme", "--full", "--enqueue", "--json")
    first = stack.finished_run(json.loads(queued.stdout)["queued"]["acme"])
    assert first.status == "succeeded" and first.counts.get("flags_raised", 0) == 0

    published = stack.cli("icp", "publish", str(ICP_V2), "-m", "mid-market")
    assert (
        "published ICP v2" in published.stdout and "re-evaluation queued: 1 connection(s)" in published.stdout
    )
    run = wait_for(
        lambda: [r for r in stack.runs(kind="reevaluate") if r.status != "running"], 60, "the re-evaluation"
    )[0]
    assert run.status == "succeeded" and run.icp_version == 2
    raised = run.counts["flags_raised"]
    assert raised > 0 and run.counts["tasks_created"] == raised
    assert run.api_calls["calls"]["read"] == 0, "re-evaluation reads nothing from the CRM"

    flagged = json.loads(stack.cli("reengage", "list", "--json").stdout)
    assert len(flagged) == raised and all("under ICP v2" in f["reason"] for f in flagged)
    state = crm_state(update_rows(stack.out))
    in_crm = {key for key, row in state.items() if row["ICP_Reengage__c"] == "true"}
    assert in_crm == {(f["object_type"], f["id"]) for f in flagged}
    assert len(task_rows(stack.out)) == raised


# --------------------------------------------------------------------------------------------- (e) secrets


SECRETS = {
    "ACME_SF_PASSWORD": "Tr0ub4dor&3-horse",
    "ACME_SF_SECURITY_TOKEN": "aBcDeFgHiJkLmNoPqRsT1234",
    "ACME_HUBSPOT_ACCESS_TOKEN": "pat-eu1-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d",
    "ACME_SF_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\\n"
    "MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDK\\n-----END PRIVATE KEY-----",
    "ACME_SF_SESSION_ID": "00D5g000004XyZ!AQ0AQHf9kE2sFakeSession",
    "ANALYTICS_API_KEY": "sk_live_51Hq2ExampleKey",
}
DB_PASSWORD = "pg-Pa55word-9876"


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_no_secret_reaches_any_log_line(stack, log_format):
    publish_file(stack.store, ICP_V1, note="v1", author="test")
    db_url = stack.store.url.replace("postgres@", f"postgres:{DB_PASSWORD}@", 1)  # trust auth ignores it
    assert DB_PASSWORD in db_url
    chatty = ",".join([*SECRETS, "DATABASE_URL"])
    worker = stack.worker("secrets", app="testing.crash_crm", LOG_FORMAT=log_format, DATABASE_URL=db_url,
                          CRASH_CRM_LOG_SECRETS=chatty, **SECRETS).wait_ready()  # fmt: skip
    run = stack.finished_run(enqueue_sync("acme", "full", app=stack.app))
    assert run.status == "succeeded"
    worker.stop()

    text = worker.text()
    forms = {DB_PASSWORD}
    for value in SECRETS.values():
        forms |= {value, value.replace("\\n", "\n")}
        forms |= {line for line in value.replace("\\n", "\n").splitlines() if len(line) > 20}
    leaked = sorted(f for f in forms if f in text)
    assert not leaked, f"secrets in the log: {leaked}"
    assert text.count(REDACTED) >= 3 * len(SECRETS), "the chatty SDK's lines were logged, redacted"
    if log_format == "json":
        lines = json_lines(text)
        chat = [x for x in lines if x.get("logger", "").startswith("chatty_sdk")]
        assert chat and all(x["task_id"] == run.task_id and x["connection"] == "acme" for x in chat)
        finished = [x for x in lines if x.get("event") == "run.finished"]
        assert finished[0]["run_id"] == run.id and finished[0]["task_id"] == run.task_id
    else:
        assert "run.finished" in text and f"task_id={run.task_id}" in text
