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
import csv
import functools
import io
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from connectors.base import OBJECT_TYPES, OWNED_API_NAMES
from connectors.registry import build_connector
from connectors.salesforce import SalesforceConnector
from connectors.salesforce.options import parse_options
from testing.hubspot import FakeClock, FakeHubSpot, connector_for
from testing.hubspot_seed import seed_hubspot
from testing.inflight import Match, Overlap, WriteGate
from testing.salesforce import FakeSalesforce
from testing.salesforce import Fault as SfFault
from testing.salesforce_seed import seed_salesforce
from tests import processes
from worker.config import parse_config
from worker.demo.sample_crm import DEMO_SYNONYMS
from worker.jobs import publish_file
from worker.store.db import Store
from worker.store.models import RecordFit, RecordSnapshot, SyncRun
from worker.sync import RunSummary, run_sync

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ICP_V1 = ROOT / "worker" / "demo" / "icp_v1.yaml"
#: Settings a developer's shell might carry into the worker process; the test sets its own.
OURS = ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "ICP_WORKER_CONFIG", "ICP_WORKER_HOME",
        "METRICS_PORT", "LOG_FORMAT", "LOG_LEVEL", "INFLIGHT_SF_PORT")  # fmt: skip


#: Waits poll every 50 ms: the in-flight windows these tests wait for are short.
wait_for = functools.partial(processes.wait_for, every=0.05)


class Worker(processes.Proc):
    """``icp-worker`` (or ``python -m testing.inflight_cli``) in its own session, output to a file."""

    def __init__(self, tmp: Path, argv: list[str], env: Mapping[str, str], name: str) -> None:
        super().__init__(argv, dict(env), tmp, tmp / f"{name}.log")

    def alive(self) -> bool:
        if self.popen.poll() is not None:
            raise AssertionError(f"the sync exited with {self.popen.returncode}:\n{self.text()[-3000:]}")
        return True

    def stop(self, grace: float = 0) -> None:
        """A sync left running is killed at once (no SIGTERM: nothing of it is worth waiting for)."""
        super().stop(grace)


class Site:
    """One test's worker side: a SQLite store on disk, a connections file, the worker environment."""

    def __init__(self, tmp: Path, connection: dict[str, Any], env: Mapping[str, str]) -> None:
        self.tmp = tmp
        self.db = tmp / "store.db"
        self.config_path = tmp / "icp-worker.yaml"
        self.config_path.write_text(json.dumps({"connections": [connection]}, indent=2), encoding="utf-8")
        self.cfg = parse_config(self.config_path.read_text(encoding="utf-8")).get(connection["name"])
        self.secrets = dict(env)
        # Salesforce: the same CLI, its HTTP routed to the fake (the org's hosts are *.salesforce.com).
        via_fake = connection["crm"] == "salesforce"
        self.argv = [sys.executable, "-m", "testing.inflight_cli"] if via_fake else [str(BIN / "icp-worker")]
        self.workers: list[Worker] = []
        store = self.store()
        try:
            publish_file(store, ICP_V1, note="v1", author="test")
        finally:
            store.dispose()

    def store(self) -> Store:
        return Store(f"sqlite:///{self.db}")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in OURS}
        env.update(self.secrets)
        env.update(PYTHONPATH=str(ROOT), DATABASE_URL=f"sqlite:///{self.db}", ICP_WORKER_NO_PROGRESS="1")
        env.update(ICP_WORKER_CONFIG=str(self.config_path), ICP_WORKER_HOME=str(self.tmp / "home"))
        return env

    def start(self, *args: str, name: str) -> Worker:
        worker = Worker(self.tmp, [*self.argv, *args], self.env(), name)
        self.workers.append(worker)
        return worker

    def run(self, *args: str) -> list[dict[str, Any]]:
        done = subprocess.run([*self.argv, *args, "--json"], cwd=self.tmp, env=self.env(),
                              capture_output=True, text=True, timeout=120)  # fmt: skip
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


def reference_run(tmp: Path, connection: dict[str, Any], env: Mapping[str, str], connector: Any) -> None:
    """The same full sync, uninterrupted, in this process (on an identical CRM)."""
    (tmp / "reference").mkdir()
    store = Site(tmp / "reference", connection, env).store()
    try:
        summary = run_sync(store, parse_config(json.dumps({"connections": [connection]})).get("acme"),
                           connector, kind="full")  # fmt: skip
        assert summary.status == "succeeded", summary.error
    finally:
        connector.close()
        store.dispose()


@dataclass
class Killed:
    """What the killed run left: the records the store had committed as written, and how many write
    requests (or jobs) the CRM had seen."""

    ok: set[str]
    sent: int


def kill_mid_write(s: Site, gate: WriteGate, in_flight: int, sent: Callable[[], int]) -> Killed:
    """Start a full sync, SIGKILL it once ``in_flight`` write requests are held, then end them."""
    doomed = s.start("sync", "--connection", "acme", "--full", name="doomed")
    wait_for(lambda: doomed.alive() and gate.held >= in_flight, 60, f"{in_flight} write request(s) in flight")
    doomed.kill()
    killed = Killed(set(), sent())
    store = s.store()
    try:
        killed.ok = {ext for (_, ext), (status, _, _) in store_state(store).items() if status == "ok"}
    finally:
        store.dispose()
    gate.open()
    wait_for(lambda: gate.held == 0, 30, "the held requests to end")
    return killed


def resume(s: Site, total: int) -> None:
    """The next (incremental) sync runs to the end and leaves every record written."""
    (summary,) = s.run("sync", "--connection", "acme")
    assert summary["status"] == "succeeded", summary
    store = s.store()
    try:
        assert_killed_run_resumed(store, total)
    finally:
        store.dispose()


def assert_resent_only_what_was_in_flight(sent: list[list[str]], killed: Killed, per_call: int) -> None:
    """``sent``: the record ids of every write request (or job), in order. No record committed as written
    before the kill is sent again; every one sent but not committed is; none goes out more than twice;
    what goes out twice fits in the two write calls the sync keeps in flight."""
    before = {i for ids in sent[: killed.sent] for i in ids}
    after = {i for ids in sent[killed.sent :] for i in ids}
    assert after, "the second run sent nothing"
    assert not after & killed.ok, "a record the store had as written was sent again"
    assert before - killed.ok <= after, "a record sent but not committed was never sent again"
    assert max(Counter(i for ids in sent for i in ids).values()) <= 2
    assert len(before & after) <= 2 * per_call


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
    # Real time: the writes overlap, and the pool (rate x observed latency, at most max_concurrency) is
    # sized to HS_IN_FLIGHT: 95 requests/s x 0.03 s needs 5.
    fake.latency = 0.03
    return fake


def hubspot_records(fake: FakeHubSpot) -> dict[str, dict[str, dict[str, str]]]:
    return {obj: {r["hs_object_id"]: r for r in fake.records(obj)} for obj in (*HS_OBJECTS.values(), "tasks")}


def hubspot_connection(fake: FakeHubSpot) -> dict[str, Any]:
    return {"name": "acme", "crm": "hubspot", "options": {**HS_OPTIONS, "host": fake.url},
            "industry_synonyms": dict(DEMO_SYNONYMS)}  # fmt: skip


def test_hubspot_sync_killed_with_batches_in_flight_ends_as_an_uninterrupted_run(tmp_path):
    accounts = 120  # 120 companies, 159 deals, 240 contacts: 52 batch updates of 10
    ref_fake = hubspot_fake(accounts)
    try:
        env = {"ACME_HUBSPOT_ACCESS_TOKEN": ref_fake.private_token}
        connection = hubspot_connection(ref_fake)
        connector = build_connector("hubspot", connection["options"], env_prefix="ACME_", env=env)
        reference_run(tmp_path, connection, env, connector)
        reference = hubspot_records(ref_fake)
    finally:
        ref_fake.stop()
    fake = hubspot_fake(accounts)
    try:
        seeded = hubspot_records(fake)
        total = sum(len(seeded[o]) for o in HS_OBJECTS.values())
        gate = WriteGate(
            fake,
            match=lambda method, path: method == "POST" and path.endswith("/batch/update"),
            ids=lambda body: [str(item["id"]) for item in json.loads(body)["inputs"]],
            # 44 answered: the companies' 12 batches, the deals' 16 and 16 of the contacts' 24 (write calls
            # of 200 records; the next call, or object type, may start while the one before finishes),
            # then hold.
            pass_first=44,
        )
        assert [len(seeded[o]) for o in HS_OBJECTS.values()] == [120, 159, 240]
        with site(tmp_path, hubspot_connection(fake), env) as s:
            killed = kill_mid_write(s, gate, HS_IN_FLIGHT, lambda: len(gate.sent))
            fates = Counter(fate for fate, _ in gate.sent)
            assert fates["applied"] >= HS_IN_FLIGHT // 2 and fates["unapplied"] >= HS_IN_FLIGHT // 2
            assert 0 < len(killed.ok) < total, "killed mid-write: some records committed, not all"
            resume(s, total)
        assert_resent_only_what_was_in_flight([ids for _, ids in gate.sent], killed, per_call=200)
        assert_same_crm(hubspot_records(fake), reference, seeded, HS_SPEC)
    finally:
        fake.stop()


# --------------------------------------------------------------------------------------- Salesforce

SF_OBJECTS = ("Account", "Opportunity", "Lead")
SF_SPEC = OwnedSpec(frozenset(OWNED_API_NAMES["salesforce"].values()), "ICP_Scored_At__c",
                    frozenset({"SystemModstamp", "LastModifiedDate"}), "Task", "Subject")  # fmt: skip
SF_OPTIONS: dict[str, Any] = {
    "auth": "password",
    "fields": {"account": {"Tech_Stack__c": "tech_stack"}, "lead": {"Tech_Stack__c": "tech_stack"}},
    "customer_field": "Type",
    "retry_wait_initial": 0.0,
    "retry_wait_max": 0.0,
    "lock_retry_wait": 0.0,
}


def salesforce_fake(accounts: int) -> FakeSalesforce:
    fake = FakeSalesforce().start()
    seed_salesforce(fake, accounts, rng_seed=13)
    fake.add_owned_fields()
    fake.latency = 0.02  # real time: the writes overlap
    return fake


def salesforce_records(fake: FakeSalesforce) -> dict[str, dict[str, dict[str, Any]]]:
    return {obj: {r["Id"]: r for r in fake.records(obj)} for obj in (*SF_OBJECTS, "Task")}


def salesforce_connection(options: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": "acme", "crm": "salesforce", "options": dict(options),
            "industry_synonyms": dict(DEMO_SYNONYMS)}  # fmt: skip


def salesforce_connector(fake: FakeSalesforce, options: Mapping[str, Any]) -> SalesforceConnector:
    env = fake.env("ACME_", "password")
    return SalesforceConnector.from_config(dict(options), env_prefix="ACME_", env=env, session=fake.session())


def salesforce_env(fake: FakeSalesforce) -> dict[str, str]:
    """The worker's environment: the org's credentials, and where ``testing.inflight_cli`` finds the fake."""
    return {**fake.env("ACME_", "password"), "INFLIGHT_SF_PORT": str(fake.port)}


def salesforce_reference(tmp: Path, accounts: int, options: Mapping[str, Any]) -> Crm:
    fake = salesforce_fake(accounts)
    try:
        env = fake.env("ACME_", "password")
        reference_run(tmp, salesforce_connection(options), env, salesforce_connector(fake, options))
        return salesforce_records(fake)
    finally:
        fake.stop()


def sf_in_flight(options: Mapping[str, Any]) -> int:
    """sObject Collections requests the connector keeps in flight (``max_concurrency``)."""
    return parse_options(dict(options)).max_concurrency


def test_salesforce_sync_killed_with_collections_writes_in_flight_ends_as_an_uninterrupted_run(tmp_path):
    accounts = 450  # 450 accounts, ~700 opportunities, ~900 leads: sObject Collections of 200
    options = {**SF_OPTIONS, "bulk": False}
    in_flight = sf_in_flight(options)
    assert in_flight >= 4
    reference = salesforce_reference(tmp_path, accounts, options)
    fake = salesforce_fake(accounts)
    try:
        seeded = salesforce_records(fake)
        total = sum(len(seeded[o]) for o in SF_OBJECTS)
        assert len(seeded["Opportunity"]) > 200 * (in_flight - 1), "enough requests to fill the pool"
        per_call = getattr(salesforce_connector(fake, options), "records_per_write_call", 0) or 200
        gate = WriteGate(
            fake,
            match=lambda method, path: method == "PATCH" and path.endswith("/composite/sobjects"),
            ids=lambda body: [str(r["id"]) for r in json.loads(body)["records"]],
            pass_first=3,  # the accounts (3 requests, committed), then hold the opportunities'
        )
        with site(tmp_path, salesforce_connection(options), salesforce_env(fake)) as s:
            killed = kill_mid_write(s, gate, in_flight, lambda: len(gate.sent))
            fates = Counter(fate for fate, _ in gate.sent)
            assert (fates["applied"], fates["unapplied"]) == ((in_flight + 1) // 2, in_flight // 2)
            assert len(killed.ok) == len(seeded["Account"]), "killed after the accounts were written"
            resume(s, total)
        assert_resent_only_what_was_in_flight([ids for _, ids in gate.sent], killed, per_call=per_call)
        assert_same_crm(salesforce_records(fake), reference, seeded, SF_SPEC)
    finally:
        fake.stop()


def ingest_jobs(fake: FakeSalesforce) -> list[Any]:
    return [job for job in list(fake.bulk.jobs.values()) if job.kind == "ingest"]


def uploaded_ids(job: Any) -> list[str]:
    """The record ids a Bulk API ingest job was given (its uploaded CSV's ``Id`` column)."""
    ids: list[str] = []
    for data in job.uploads:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
        at = rows[0].index("Id")
        ids += [row[at] for row in rows[1:] if row]
    return ids


def finish_orphaned_jobs(fake: FakeSalesforce) -> list[str]:
    """Salesforce carries out an uploaded ingest job whether or not its client is still there; the fake
    does it when asked for the job's state, so ask (as the org's own processing would). Returns the
    final states."""
    headers = {"Authorization": f"Bearer {fake.new_session()}", "Host": fake.instance_host}
    states = []
    for job in ingest_jobs(fake):
        for _ in range(10):
            if job.info["state"] not in ("UploadComplete", "InProgress"):
                break
            path = f"/services/data/v{job.info['apiVersion']:.1f}/jobs/ingest/{job.id}"
            fake.dispatch("GET", path, headers, b"")
        states.append(job.info["state"])
    return states


def test_salesforce_sync_killed_with_a_bulk_ingest_job_in_flight_ends_as_an_uninterrupted_run(tmp_path):
    accounts = 150  # 150 accounts, ~225 opportunities, ~300 leads: one ingest job per object
    options = {**SF_OPTIONS, "bulk_write_threshold": 50, "bulk_poll_initial": 0.01, "bulk_poll_max": 0.05}
    reference = salesforce_reference(tmp_path, accounts, options)
    fake = salesforce_fake(accounts)
    try:
        seeded = salesforce_records(fake)
        total = sum(len(seeded[o]) for o in SF_OBJECTS)
        gate = WriteGate(  # the accounts' job passes; the opportunities' job is uploaded, its client killed
            fake,
            match=lambda method, path: method == "PATCH" and "/jobs/ingest/" in path,
            ids=lambda body: [],
            pass_first=1,
        )
        with site(tmp_path, salesforce_connection(options), salesforce_env(fake)) as s:
            killed = kill_mid_write(s, gate, 1, lambda: len(ingest_jobs(fake)))
            assert [fate for fate, _ in gate.sent] == ["answered", "applied"]
            assert killed.sent == 2 and len(killed.ok) == len(seeded["Account"])
            assert finish_orphaned_jobs(fake) == ["JobComplete", "JobComplete"]
            resume(s, total)
        jobs = ingest_jobs(fake)
        assert [job.info["object"] for job in jobs] == ["Account", "Opportunity", "Opportunity", "Lead"]
        sent = [uploaded_ids(job) for job in jobs]
        assert_resent_only_what_was_in_flight(sent, killed, per_call=len(seeded["Opportunity"]))
        assert_same_crm(salesforce_records(fake), reference, seeded, SF_SPEC)
    finally:
        fake.stop()


# ----------------------------------------------- 5xx, 429 bursts, session expiry on requests in flight
#
# In process, each against a fault-free run of an identical CRM with the same clock (``now``): the
# store and the CRM must end exactly alike, record by record, ``scored_at`` included.

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@dataclass
class Outcome:
    summary: RunSummary
    store: dict[tuple[str, str], tuple[str, Any, Any]]
    crm: Crm
    seeded: Crm
    writes_in_flight: int


def in_process_run(tmp: Path, connection: dict[str, Any], connector: Any, fake: Any, seeded: Crm,
                   records: Callable[[], Crm], writes: Match) -> Outcome:  # fmt: skip
    """A full sync of ``connection`` in this process; write requests matching ``writes`` are counted in
    flight (each spends 10 ms inside the fake)."""
    tmp.mkdir()
    overlap = Overlap(fake, match=writes, hold=0.01)
    store = Site(tmp, connection, {}).store()
    try:
        cfg = parse_config(json.dumps({"connections": [connection]})).get("acme")
        summary = run_sync(store, cfg, connector, kind="full", now=NOW)
        return Outcome(summary, store_state(store), records(), seeded, overlap.max_in_flight)
    finally:
        connector.close()
        store.dispose()


def assert_same_outcome(faulty: Outcome, clean: Outcome, spec: OwnedSpec) -> None:
    assert faulty.summary.status == clean.summary.status == "succeeded", faulty.summary.error
    assert faulty.summary.counts["written"] == clean.summary.counts["written"] == len(clean.store)
    assert faulty.store == clean.store, "the store's per-record results differ from the fault-free run's"
    for obj, records in clean.crm.items():
        assert set(faulty.crm[obj]) == set(records), f"{obj}: records missing or added"
        for rid, want in records.items():
            have = faulty.crm[obj][rid]
            assert {k: have.get(k) for k in spec.owned} == {k: want.get(k) for k in spec.owned}, (obj, rid)
            assert spec.other_values(have) == spec.other_values(faulty.seeded[obj][rid]), (obj, rid)


def hubspot_outcome(tmp: Path, accounts: int, faults: Callable[[FakeHubSpot], None] | None) -> Outcome:
    clock = FakeClock()  # fake and connector share it: pacing and 429 waits cost no wall time
    fake = FakeHubSpot(clock=clock, requests_per_10s=1000, search_per_second=100).start()
    try:
        seed_hubspot(fake, accounts, rng_seed=11)
        options = {**HS_OPTIONS, "max_attempts": 8}
        connector = connector_for(fake, clock, oauth=True, env_prefix="ACME_", **options)
        connector.install_fields(list(OBJECT_TYPES))
        seeded = hubspot_records(fake)
        fake.latency = 0.005
        if faults:
            faults(fake)
        outcome = in_process_run(tmp, {**hubspot_connection(fake), "options": options}, connector, fake,
                                 seeded, lambda: hubspot_records(fake),
                                 lambda method, path: path.endswith("/batch/update"))  # fmt: skip
        assert all(f.times == 0 for f in fake.faults), "every injected fault met a request"
        return outcome
    finally:
        fake.stop()


def hubspot_faults(fake: FakeHubSpot) -> None:
    """Bursts that meet the write batches in flight (taken in this order), and faults on the pulls of
    the object types running at once."""
    fake.inject("status", path="/batch/update", status=503, times=4)
    fake.inject("rolling_429", path="/batch/update", retry_after=2, times=4)
    fake.inject("expire_token", path="/batch/update", times=1)
    fake.inject("drop_after", path="/batch/update", times=2)  # carried out, the answer lost
    fake.inject("status", path="/crm/v3/objects/deals", method="GET", status=502, times=2)
    fake.inject("rolling_429", path="/crm/v3/objects/contacts", method="GET", retry_after=1, times=3)


def test_hubspot_5xx_429_and_token_expiry_on_requests_in_flight_leave_what_a_fault_free_run_leaves(tmp_path):
    clean = hubspot_outcome(tmp_path / "clean", 120, None)
    faulty = hubspot_outcome(tmp_path / "faulty", 120, hubspot_faults)
    # The write batches overlapped, never more of them than ``max_concurrency`` ("most requests in
    # flight at once"), whether faults hit them or not.
    assert 2 <= faulty.writes_in_flight <= HS_IN_FLIGHT and clean.writes_in_flight <= HS_IN_FLIGHT
    assert_same_outcome(faulty, clean, HS_SPEC)


def salesforce_outcome(tmp: Path, accounts: int, faults: Callable[[FakeSalesforce], None] | None) -> Outcome:
    fake = salesforce_fake(accounts)
    try:
        options = {**SF_OPTIONS, "bulk": False, "max_attempts": 8}
        seeded = salesforce_records(fake)
        if faults:
            faults(fake)
        connector = salesforce_connector(fake, options)
        outcome = in_process_run(tmp, salesforce_connection(options), connector, fake, seeded,
                                 lambda: salesforce_records(fake),
                                 lambda method, path: path.endswith("/composite/sobjects"))  # fmt: skip
        assert not fake.faults, "every injected fault met a request"
        return outcome
    finally:
        fake.stop()


def salesforce_faults(fake: FakeSalesforce) -> None:
    """A 5xx burst on the first writes, every session expiring while writes are in flight, answers lost
    after the update was carried out, and 5xx on the queries."""
    fake.fail_next(4, status=503, path="/composite/sobjects")
    fake.faults.append(SfFault("expire", 1, after=6, path="/composite/sobjects"))
    fake.drop_response_next(2, after=8, path="/composite/sobjects")
    fake.fail_next(2, status=500, path="/query")


def test_salesforce_5xx_and_session_expiry_on_requests_in_flight_leave_what_a_fault_free_run_leaves(tmp_path):
    options = {**SF_OPTIONS, "bulk": False}
    clean = salesforce_outcome(tmp_path / "clean", 300, None)
    faulty = salesforce_outcome(tmp_path / "faulty", 300, salesforce_faults)
    # Several in flight (300 accounts: 2, 3 and 3 requests per object type), never more than
    # ``max_concurrency``.
    most = sf_in_flight(options)
    assert 2 <= faulty.writes_in_flight <= most and clean.writes_in_flight <= most
    assert_same_outcome(faulty, clean, SF_SPEC)
