"""SIGKILL mid-write with several write requests in flight: the CRM ends as an uninterrupted run leaves it.

A real ``icp-worker sync`` runs in its own process (its own session, so the test can kill its whole
group) against a fake CRM served from the test process, with the store in a SQLite file on disk. A
``testing.inflight.WriteGate`` on the fake lets the first write requests through, then holds every
later one until as many are held as the connector keeps in flight; half of the held ones the fake has
carried out (the client never hears of them), half it never sees. The process is SIGKILLed there, the
held requests end unanswered, and a second ``icp-worker sync`` runs to the end. Afterwards, compared
with an uninterrupted run on an identical CRM:

* every record holds the same owned values (``scored_at`` aside: it is the run's clock), none is
  missing, and no field outside the owned ones changed on any record;
* no record the store had committed as written before the kill is sent again (nothing duplicated but
  what was in flight), and every record sent but not committed is sent again (nothing lost);
* the store has every record's write state ``ok`` with the written values equal to the desired ones,
  and the killed run closed as abandoned.

No Redis or PostgreSQL: the CLI's embedded default (a file lock, SQLite).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from connectors.base import OBJECT_TYPES, OWNED_API_NAMES
from testing.hubspot import FakeHubSpot, connector_for
from testing.hubspot_seed import seed_hubspot
from testing.inflight import WriteGate
from worker.config import parse_config
from worker.demo.sample_crm import DEMO_SYNONYMS
from worker.jobs import publish_file, sync_connection
from worker.store.db import Store
from worker.store.models import RecordFit, RecordSnapshot, SyncRun

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ICP_V1 = ROOT / "worker" / "demo" / "icp_v1.yaml"
#: Settings a developer's shell might carry into the worker process; the test sets its own.
OURS = ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "ICP_WORKER_CONFIG", "ICP_WORKER_HOME",
        "METRICS_PORT", "LOG_FORMAT", "LOG_LEVEL", "INFLIGHT_SF_PORT")  # fmt: skip


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


class Worker:
    """``icp-worker`` (or ``python -m testing.inflight_cli``) in its own session, output to a file."""

    def __init__(self, tmp: Path, argv: list[str], env: Mapping[str, str], name: str) -> None:
        self.log = tmp / f"{name}.log"
        self._out = open(self.log, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(argv, cwd=tmp, env=dict(env), stdout=self._out,
                                      stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        if self.popen.poll() is not None:
            raise AssertionError(f"the sync exited with {self.popen.returncode}:\n{self.text()[-3000:]}")
        return True

    def kill(self) -> None:
        """SIGKILL the whole process group: a machine that lost power."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # children left behind, if any
        self.popen.wait(timeout=10)
        self._out.close()


class Site:
    """One test's worker side: a SQLite store on disk, a connections file, the worker environment."""

    def __init__(self, tmp: Path, connection: dict[str, Any], env: Mapping[str, str]) -> None:
        self.tmp = tmp
        self.db = tmp / "store.db"
        self.config_path = tmp / "icp-worker.yaml"
        self.config_path.write_text(json.dumps({"connections": [connection]}, indent=2), encoding="utf-8")
        self.cfg = parse_config(self.config_path.read_text(encoding="utf-8")).get(connection["name"])
        self.secrets = dict(env)
        self.workers: list[Worker] = []
        store = self.store()
        try:
            publish_file(store, ICP_V1, note="v1", author="test")
        finally:
            store.dispose()

    def store(self) -> Store:
        return Store(f"sqlite:///{self.db}")

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in OURS}
        env.update(self.secrets)
        env.update(PYTHONPATH=str(ROOT), DATABASE_URL=f"sqlite:///{self.db}", ICP_WORKER_NO_PROGRESS="1")
        env.update(ICP_WORKER_CONFIG=str(self.config_path), ICP_WORKER_HOME=str(self.tmp / "home"))
        env.update(extra)
        return env

    @staticmethod
    def argv(via_fake_salesforce: bool) -> list[str]:
        if via_fake_salesforce:
            return [sys.executable, "-m", "testing.inflight_cli"]
        return [str(BIN / "icp-worker")]

    def start(self, *args: str, name: str, via_fake_salesforce: bool = False, **extra: str) -> Worker:
        worker = Worker(self.tmp, [*self.argv(via_fake_salesforce), *args], self.env(**extra), name)
        self.workers.append(worker)
        return worker

    def run(self, *args: str, via_fake_salesforce: bool = False, **extra: str) -> list[dict[str, Any]]:
        done = subprocess.run([*self.argv(via_fake_salesforce), *args, "--json"], cwd=self.tmp,
                              env=self.env(**extra), capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, f"icp-worker {' '.join(args)}: {done.stdout}\n{done.stderr}"
        summaries: list[dict[str, Any]] = json.loads(done.stdout)
        return summaries

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()


@contextlib.contextmanager
def site(tmp: Path, connection: dict[str, Any], env: Mapping[str, str]) -> Iterator[Site]:
    s = Site(tmp, connection, env)
    try:
        yield s
    finally:
        s.close()


def store_state(store: Store) -> dict[tuple[str, str], tuple[str, Any, Any]]:
    """``(object type, id) -> (write status, desired, written)`` of every record in the store."""
    with store.session() as s:
        rows = s.execute(
            select(RecordSnapshot.object_type, RecordSnapshot.external_id, RecordFit.write_status,
                   RecordFit.desired, RecordFit.written)
            .join(RecordFit, RecordFit.snapshot_id == RecordSnapshot.id)
        ).all()  # fmt: skip
    state = {(obj, ext): (str(status), desired, written) for obj, ext, status, desired, written in rows}
    assert len(state) == len(rows), "one snapshot per record"
    return state


def run_statuses(store: Store) -> list[tuple[str, str | None]]:
    with store.session() as s:
        return [(r.status, r.error) for r in s.scalars(select(SyncRun).order_by(SyncRun.id))]


def assert_killed_run_resumed(store: Store, total: int) -> None:
    """The killed run closed as abandoned, the second one succeeded, and every record is written."""
    runs = run_statuses(store)
    assert [status for status, _ in runs] == ["failed", "succeeded"], runs
    assert (runs[0][1] or "").startswith("abandoned"), runs[0]
    state = store_state(store)
    assert len(state) == total
    assert all(status == "ok" and written == desired for status, desired, written in state.values()), {
        key: value for key, value in state.items() if value[0] != "ok" or value[1] != value[2]
    }


#: ``object -> id -> fields`` of a fake CRM's records.
Crm = Mapping[str, Mapping[str, Mapping[str, Any]]]


@dataclass(frozen=True)
class OwnedSpec:
    """How to read one CRM's records: its owned fields, the owned ``scored_at`` field (each run's own
    clock), the fields every update moves, the follow-up task object and its subject field."""

    owned: frozenset[str]
    clock: str
    stamps: frozenset[str]
    tasks: str
    task_subject: str

    def owned_values(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k in self.owned and k != self.clock}

    def other_values(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k not in self.owned and k not in self.stamps}


def assert_resent_only_what_was_in_flight(gate: WriteGate, killed_at: int, ok_at_kill: set[str],
                                          per_call: int) -> None:  # fmt: skip
    """No record committed as written before the kill is sent again; every one sent but not committed
    is; no record goes out more than twice; what goes out twice fits in the two write calls the sync
    keeps in flight."""
    before = {i for _, ids in gate.sent[:killed_at] for i in ids}
    after = {i for _, ids in gate.sent[killed_at:] for i in ids}
    assert after, "the second run sent nothing"
    assert not after & ok_at_kill, "a record the store had as written was sent again"
    assert before - ok_at_kill <= after, "a record sent but not committed was never sent again"
    assert max(Counter(i for _, ids in gate.sent for i in ids).values()) <= 2
    assert len(before & after) <= 2 * per_call


# ------------------------------------------------------------------------------------------ HubSpot

HS_OBJECTS = {"account": "companies", "opportunity": "deals", "lead": "contacts"}
HS_SPEC = OwnedSpec(frozenset(OWNED_API_NAMES["hubspot"].values()), "icp_scored_at",
                    frozenset({"hs_lastmodifieddate"}), "tasks", "hs_task_subject")  # fmt: skip
HS_IN_FLIGHT = 4
HS_OPTIONS: dict[str, Any] = {
    "requests_per_10s": 1000,
    "search_requests_per_second": 100,
    "max_concurrency": HS_IN_FLIGHT,
    "write_batch_size": 10,  # 200 records a write call, in 20 batches: several calls per object type
}


def hubspot_fake(accounts: int) -> FakeHubSpot:
    fake = FakeHubSpot(requests_per_10s=1000, search_per_second=100).start()
    seed_hubspot(fake, accounts, rng_seed=11)
    connector_for(fake, env_prefix="ACME_", **HS_OPTIONS).install_fields(list(OBJECT_TYPES))
    fake.latency = 0.02  # real time: the writes overlap, and the pool is sized to HS_IN_FLIGHT
    return fake


def hubspot_records(fake: FakeHubSpot) -> dict[str, dict[str, dict[str, str]]]:
    return {obj: {r["hs_object_id"]: r for r in fake.records(obj)} for obj in (*HS_OBJECTS.values(), "tasks")}


def hubspot_connection(fake: FakeHubSpot) -> dict[str, Any]:
    return {"name": "acme", "crm": "hubspot", "options": {**HS_OPTIONS, "host": fake.url},
            "industry_synonyms": dict(DEMO_SYNONYMS)}  # fmt: skip


def hubspot_reference(tmp: Path, accounts: int) -> dict[str, dict[str, dict[str, str]]]:
    """The same sync of an identical portal, uninterrupted, in this process."""
    fake = hubspot_fake(accounts)
    try:
        env = {"ACME_HUBSPOT_ACCESS_TOKEN": fake.private_token}
        (tmp / "reference").mkdir()
        ref = Site(tmp / "reference", hubspot_connection(fake), env)
        store = ref.store()
        try:
            summary = sync_connection(store, ref.cfg, kind="full", env=env)
            assert summary.status == "succeeded", summary.error
        finally:
            store.dispose()
        return hubspot_records(fake)
    finally:
        fake.stop()


def assert_same_crm(got: Crm, ref: Crm, seeded: Crm, spec: OwnedSpec) -> None:
    """Same records as the reference, each with the reference's owned values (and a ``scored_at``), every
    other field as seeded; the same follow-up tasks (by subject: their ids depend on creation order)."""
    for obj, records in ref.items():
        if obj == spec.tasks:
            assert Counter(r.get(spec.task_subject) for r in got[obj].values()) == Counter(
                r.get(spec.task_subject) for r in records.values()
            )
            continue
        assert set(got[obj]) == set(records), f"{obj}: records missing or added"
        for rid, want in records.items():
            have, was = got[obj][rid], seeded[obj][rid]
            assert spec.owned_values(have) == spec.owned_values(want), (obj, rid)
            assert have.get(spec.clock) not in (None, ""), (obj, rid)
            assert spec.other_values(have) == spec.other_values(was), (obj, rid)


def test_hubspot_sync_killed_with_batches_in_flight_ends_as_an_uninterrupted_run(tmp_path):
    accounts = 120  # 120 companies, ~180 deals, ~240 contacts: ~54 batch updates of 10
    reference = hubspot_reference(tmp_path, accounts)
    fake = hubspot_fake(accounts)
    try:
        seeded = hubspot_records(fake)
        total = sum(len(seeded[o]) for o in HS_OBJECTS.values())
        gate = WriteGate(
            fake,
            match=lambda method, path: method == "POST" and path.endswith("/batch/update"),
            ids=lambda body: [str(item["id"]) for item in json.loads(body)["inputs"]],
            pass_first=17,  # the companies (12 batches) and 5 deal batches answered, then hold
        )
        env = {"ACME_HUBSPOT_ACCESS_TOKEN": fake.private_token}
        with site(tmp_path, hubspot_connection(fake), env) as s:
            doomed = s.start("sync", "--connection", "acme", "--full", name="doomed")
            wait_for(lambda: doomed.alive() and gate.held >= HS_IN_FLIGHT, 60, "write requests in flight")
            doomed.kill()
            killed_at = len(gate.sent)
            store = s.store()
            try:
                at_kill = store_state(store)
                ok_at_kill = {ext for (_, ext), (status, _, _) in at_kill.items() if status == "ok"}
                gate.open()
                wait_for(lambda: gate.held == 0, 30, "the held requests to end")
                fates = Counter(fate for fate, _ in gate.sent)
                assert gate.max_held == HS_IN_FLIGHT and fates["applied"] >= 2 and fates["unapplied"] >= 2
                assert 0 < len(ok_at_kill) < total, "killed mid-write: some records written, not all"

                (summary,) = s.run("sync", "--connection", "acme")
                assert summary["status"] == "succeeded", summary
                assert_killed_run_resumed(store, total)
            finally:
                store.dispose()
        assert_resent_only_what_was_in_flight(gate, killed_at, ok_at_kill, per_call=200)
        assert_same_crm(hubspot_records(fake), reference, seeded, HS_SPEC)
    finally:
        fake.stop()
