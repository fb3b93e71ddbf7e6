"""Bulk API 2.0: the fake's endpoints as Salesforce documents them (through simple-salesforce's bulk2 and
plain requests on its session), and the connector switching to query and ingest jobs by volume, with the
same results in the store as REST gives, failed and locked records, failed, aborted and timed-out jobs,
and the daily bulk allocation."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from testing.salesforce import FakeSalesforce
from testing.salesforce_seed import seed_salesforce
from worker.config import ConnectionConfig
from worker.demo.sample_crm import DEMO_SYNONYMS
from worker.icp import versions
from worker.store.db import Store
from worker.store.models import RecordFit, RecordSnapshot
from worker.sync import run_sync

DEMO = Path(__file__).resolve().parents[2] / "worker" / "demo"
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
OPTIONS = {
    "fields": {"account": {"Tech_Stack__c": "tech_stack"}, "lead": {"Tech_Stack__c": "tech_stack"}},
    "customer_field": "Type",
    "bulk_poll_initial": 0.0,
}
BULK = {**OPTIONS, "bulk_read_threshold": 100, "bulk_write_threshold": 100, "bulk_max_records": 2000}
REST = {**OPTIONS, "bulk": False}


@pytest.fixture
def fake():
    with FakeSalesforce() as f:
        yield f


def api(fake):
    """A logged-in simple-salesforce client on the fake (its session routes to the fake)."""
    connector = fake.connector()
    connector.check_fields(["account"])
    return connector.client._sf


def store_at(tmp_path, name):
    store = Store(f"sqlite:///{tmp_path / name}")
    with store.session() as s:
        versions.publish(s, (DEMO / "icp_v1.yaml").read_text(), filename="icp_v1.yaml", author="t", note="v1")
    return store


def config():
    return ConnectionConfig(name="acme", crm="salesforce", options=OPTIONS, industry_synonyms=DEMO_SYNONYMS)


def stored(store):
    with store.session() as s:
        rows = s.execute(
            select(
                RecordSnapshot.object_type,
                RecordSnapshot.external_id,
                RecordSnapshot.attributes,
                RecordSnapshot.status,
                RecordFit.score,
                RecordFit.written,
                RecordFit.write_status,
                RecordFit.write_error,
            ).join(RecordFit, RecordFit.snapshot_id == RecordSnapshot.id)
        ).all()
    return sorted(tuple(map(repr, r)) for r in rows)


# -- the fake's endpoints ------------------------------------------------------------------------------


def test_simple_salesforce_bulk2_reads_and_updates_through_the_fake(fake):
    ids = fake.insert("Account", [{"Name": f"Acme {i}", "NumberOfEmployees": i} for i in range(25)])
    fake.add_owned_fields()
    sf = api(fake)
    query = "SELECT Id, Name, NumberOfEmployees FROM Account"
    chunks = list(sf.bulk2.Account.query(query, max_records=10, wait=0))
    lines = [line for chunk in chunks for line in chunk.splitlines()[1:]]
    assert len(chunks) == 3 and len(lines) == 25
    assert chunks[0].splitlines()[0] == '"Id","Name","NumberOfEmployees"'
    assert lines[3] == f'"{ids[3]}","Acme 3","3"'
    records = [{"Id": i, "ICP_Fit_Score__c": str(n)} for n, i in enumerate(ids)]
    results = sf.bulk2.Account.update(records=records, wait=0)
    assert results[0]["numberRecordsProcessed"] == 25 and results[0]["numberRecordsFailed"] == 0
    assert fake.record("Account", ids[7])["ICP_Fit_Score__c"] == 7


def test_job_info_csv_dialect_and_results_of_an_ingest_job(fake):
    ids = fake.insert("Account", [{"Name": "a"}, {"Name": "b"}, {"Name": "c"}])
    fake.add_owned_fields()
    fake.reject_records(
        {ids[1]: ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Score must be set", ["ICP_Fit_Score__c"])}
    )
    sf = api(fake)
    session, base, headers = sf.session, sf.base_url, sf.headers
    job = session.post(base + "jobs/ingest", headers=headers, json={
        "object": "Account", "operation": "update", "lineEnding": "CRLF", "columnDelimiter": "SEMICOLON"
    }).json()  # fmt: skip
    assert job["state"] == "Open" and job["lineEnding"] == "CRLF" and job["columnDelimiter"] == "SEMICOLON"
    assert job["contentUrl"].endswith(f"jobs/ingest/{job['id']}/batches")
    data = "Id;ICP_Fit_Tier__c\r\n" + "".join(f"{i};best\r\n" for i in ids)
    put = session.put(base + f"jobs/ingest/{job['id']}/batches", data=data.encode(),
                      headers={**headers, "Content-Type": "text/csv"})  # fmt: skip
    assert put.status_code == 201
    session.patch(base + f"jobs/ingest/{job['id']}", headers=headers, json={"state": "UploadComplete"})
    info = session.get(base + f"jobs/ingest/{job['id']}", headers=headers).json()
    assert info["state"] == "InProgress"
    info = session.get(base + f"jobs/ingest/{job['id']}", headers=headers).json()
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (
        "JobComplete",
        3,
        1,
    )
    ok = session.get(base + f"jobs/ingest/{job['id']}/successfulResults/", headers=headers).text
    failed = session.get(base + f"jobs/ingest/{job['id']}/failedResults/", headers=headers).text
    assert ok.split("\r\n")[0] == '"sf__Id";"sf__Created";"Id";"ICP_Fit_Tier__c"'
    assert failed.split("\r\n")[1] == (
        f'"{ids[1]}";"FIELD_CUSTOM_VALIDATION_EXCEPTION:Score must be set:ICP_Fit_Score__c";"{ids[1]}";"best"'
    )
    # LF data on a CRLF job fails the job, as Salesforce does.
    crlf = {"object": "Account", "operation": "update", "lineEnding": "CRLF"}
    job = session.post(base + "jobs/ingest", headers=headers, json=crlf).json()
    session.put(base + f"jobs/ingest/{job['id']}/batches", data=f"Id,Name\n{ids[0]},x\n".encode(),
                headers={**headers, "Content-Type": "text/csv"})  # fmt: skip
    session.patch(base + f"jobs/ingest/{job['id']}", headers=headers, json={"state": "UploadComplete"})
    for _ in range(2):
        info = session.get(base + f"jobs/ingest/{job['id']}", headers=headers).json()
    assert info["state"] == "Failed" and "LineEnding is invalid" in info["errorMessage"]


def test_query_jobs_refuse_order_by_and_report_results_only_when_complete(fake):
    sf = api(fake)
    session, base, headers = sf.session, sf.base_url, sf.headers
    ordered = {"operation": "query", "query": "SELECT Id FROM Account ORDER BY Id"}
    refused = session.post(base + "jobs/query", headers=headers, json=ordered)
    assert refused.status_code == 400 and "ORDER BY" in refused.json()[0]["message"]
    job = session.post(base + "jobs/query", headers=headers,
                       json={"operation": "query", "query": "SELECT Id FROM Account"}).json()  # fmt: skip
    early = session.get(base + f"jobs/query/{job['id']}/results", headers=headers)
    assert early.status_code == 400
    limits = session.get(base + "limits", headers=headers).json()
    assert limits["DailyBulkV2QueryJobs"]["Remaining"] == limits["DailyBulkV2QueryJobs"]["Max"] - 1


# -- the connector -------------------------------------------------------------------------------------


def test_bulk_sync_stores_exactly_what_a_rest_sync_stores(tmp_path):
    results = {}
    calls = {}
    for name, options in (("rest", REST), ("bulk", BULK)):
        with FakeSalesforce() as fake:
            counts = seed_salesforce(fake, 400, rng_seed=3)
            fake.add_owned_fields()
            fake.lock_records(fake.ids("Lead")[:3], times=1)  # locked once: the in-run retry lands them
            fake.reject_records({fake.ids("Account")[5]: ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "No way")})
            store = store_at(tmp_path, f"{name}.db")
            summary = run_sync(store, config(), fake.connector(**options), kind="full", now=NOW)
            assert summary.status == "partial", summary.error
            assert summary.counts["written"] == sum(counts.values()) - 1
            results[name], calls[name] = stored(store), dict(summary.api_calls["calls"])
            if name == "bulk":
                assert fake.bulk.jobs and all(j.kind in ("query", "ingest") for j in fake.bulk.jobs.values())
            store.dispose()
    differ = [(a, b) for a, b in zip(results["bulk"], results["rest"], strict=True) if a != b]
    assert not differ, differ[:2]
    # 3 objects: one REST batch that shows the size, the job, two polls, ceil(n / 2000) result sets.
    assert calls["bulk"]["read"] == sum(4 + math.ceil(n / 2000) for n in counts.values())
    # An ingest job per object: create, upload, close, two polls; failedResults for the objects with a
    # failure (the rejected account, the locked leads), and one REST request re-sending the locked leads.
    assert calls["bulk"]["write"] == 3 * 5 + 2 + 1
    assert calls["rest"]["write"] == sum(math.ceil(n / 200) for n in counts.values()) + 1


def test_failed_ingest_job_keeps_what_landed_and_the_next_run_writes_the_rest(tmp_path, fake):
    counts = seed_salesforce(fake, 300, rng_seed=6)
    fake.add_owned_fields()
    store = store_at(tmp_path, "s.db")
    connector = fake.connector(**BULK)
    connector.check_fields(["account", "opportunity", "lead"])
    original = fake.bulk._create

    def create(kind, version, body):
        if kind == "ingest" and b"Account" in body:
            fake.bulk.fail_next_job("InternalServerError : retried more than 15 times")
        return original(kind, version, body)

    fake.bulk._create = create
    first = run_sync(store, config(), connector, kind="full", now=NOW)
    assert first.status == "partial"
    assert first.counts["write_errors"] == counts["Account"] - counts["Account"] // 2
    fake.bulk._create = original
    second = run_sync(
        store, config(), fake.connector(**BULK), kind="incremental", now=NOW + timedelta(hours=1)
    )
    assert second.status == "succeeded", second.error
    assert all(r["ICP_Fit_Tier__c"] for r in fake.records("Account"))


def test_a_query_job_that_fails_or_times_out_falls_back_to_rest(fake):
    seed_salesforce(fake, 150, rng_seed=2)
    fake.add_owned_fields()
    fake.bulk.fail_next_job()
    connector = fake.connector(**BULK)
    records = [r for p in connector.pull("account", None) for r in p.records]
    assert len(records) == 150 and len({r.external_id for r in records}) == 150
    fake.bulk.polls = 1000
    slow = fake.connector(**{**BULK, "bulk_timeout_seconds": 0.05, "bulk_poll_initial": 0.01})
    records = [r for p in slow.pull("account", None) for r in p.records]
    assert len(records) == 150
    assert [j.info["state"] for j in fake.bulk.jobs.values()] == ["Failed", "Aborted"]


def test_a_used_up_bulk_allocation_keeps_the_run_on_rest(fake):
    seed_salesforce(fake, 150, rng_seed=2)
    fake.add_owned_fields()
    fake.bulk.query_jobs_limit = fake.bulk.batches_limit = 0
    connector = fake.connector(**BULK)
    records = [r for p in connector.pull("account", None) for r in p.records]
    assert len(records) == 150
    from connectors.base import FitUpdate

    results = connector.write("account", [FitUpdate(r.external_id, {"fit_score": 50}) for r in records])
    assert all(r.ok for r in results) and not fake.bulk.jobs
    assert fake.record("Account", records[0].external_id)["ICP_Fit_Score__c"] == 50


def test_bulk_pull_pages_carry_a_cursor_only_at_the_end(fake):
    seed_salesforce(fake, 1200, rng_seed=1)
    fake.add_owned_fields()
    connector = fake.connector(**BULK)
    pages = list(connector.pull("account", None))
    assert [len(p.records) for p in pages] == [1200] or all(p.cursor is None for p in pages[:-1])
    newest = max(r.modstamp for p in pages for r in p.records)
    assert pages[-1].cursor == newest and sum(len(p.records) for p in pages) == 1200
    lead_pages = list(connector.pull("lead", None))
    assert all(len(p.records) <= 2000 for p in lead_pages) and lead_pages[-1].cursor


def test_an_ingest_job_takes_its_data_in_one_upload(fake):
    ids = fake.insert("Account", [{"Name": "a"}, {"Name": "b"}])
    fake.add_owned_fields()
    sf = api(fake)
    session, base, headers = sf.session, sf.base_url, sf.headers
    job = session.post(
        base + "jobs/ingest", headers=headers, json={"object": "Account", "operation": "update"}
    )
    job_id = job.json()["id"]
    for record_id in ids:
        data = f"Id,ICP_Fit_Tier__c\n{record_id},best\n"
        put = session.put(base + f"jobs/ingest/{job_id}/batches", data=data,
                          headers={**headers, "Content-Type": "text/csv"})  # fmt: skip
        assert put.status_code == 201
    close = session.patch(base + f"jobs/ingest/{job_id}", headers=headers, json={"state": "UploadComplete"})
    assert close.status_code == 400 and close.json()[0]["errorCode"] == "INVALIDJOB"
    assert "only do 'PUT' once" in close.json()[0]["message"]
    assert all(fake.record("Account", i)["ICP_Fit_Tier__c"] is None for i in ids)


def test_uploads_are_split_by_size_with_the_header_in_each_and_every_row_once():
    from connectors.salesforce.bulk import csv_uploads, parse_csv

    rows = [
        (f"001{i:015d}", [f"reason {i}, with a comma", "" if i % 3 else "#N/A", "é…"]) for i in range(1000)
    ]
    header = ["Id", "ICP_Fit_Reasons__c", "ICP_Fit_Tier__c", "ICP_Reengage_Reason__c"]
    uploads = list(csv_uploads(header, iter(rows), limit=10_000))
    assert len(uploads) > 3
    seen: list[str] = []
    for ids, data in uploads:
        assert len(data) < 10_000 + 200  # the limit, give or take the row that crossed it
        head, parsed = parse_csv(data.decode("utf-8"))
        assert head == header and [r[0] for r in parsed] == ids
        seen += ids
        for row in parsed:
            assert row[1:] == rows[int(row[0][3:])][1]
    assert seen == [r[0] for r in rows]


def test_query_job_result_sets_by_locator_hold_every_row_once_as_of_the_job(fake):
    from connectors.salesforce.bulk import parse_csv

    ids = fake.insert("Account", ({"Name": f'Acme, "{i}"\nLtd'} for i in range(5000)))
    sf = api(fake)
    session, base, headers = sf.session, sf.base_url, sf.headers
    body = {"operation": "query", "query": "SELECT Id, Name FROM Account"}
    job_id = session.post(base + "jobs/query", headers=headers, json=body).json()["id"]
    for _ in range(2):
        session.get(base + f"jobs/query/{job_id}", headers=headers)
    fake.modify("Account", {ids[0]: {"Name": "changed after the job"}})
    got: list[list[str]] = []
    locator = ""
    while locator != "null":
        params = {"maxRecords": "2000", **({"locator": locator} if locator else {})}
        answer = session.get(base + f"jobs/query/{job_id}/results", headers=headers, params=params)
        assert answer.status_code == 200
        header, rows = parse_csv(answer.text)
        assert header == ["Id", "Name"] and int(answer.headers["Sforce-NumberOfRecords"]) == len(rows)
        got += rows
        locator = answer.headers["Sforce-Locator"]
    assert [r[0] for r in got] == sorted(ids)
    assert got[0][1] == 'Acme, "0"\nLtd'  # the snapshot of the job, quotes and line breaks intact
