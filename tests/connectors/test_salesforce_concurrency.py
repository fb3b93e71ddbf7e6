"""Salesforce requests in flight, against the fake over real HTTP: sObject Collections writes and
object-type pulls run in parallel (at most ``max_concurrency`` requests at once), every record gets its
own result and is written once, the call counts stay exact, several requests meeting an expired session
cause one login, and the daily limit, the reserved share and 5xx mid-flight end or retry as serially."""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import FitUpdate
from connectors.errors import QuotaExceededError, TransientError
from testing.salesforce import FakeSalesforce

START = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def fake():
    with FakeSalesforce() as f:
        f.add_owned_fields()
        yield f


def fit(record_id: str, score: int = 61) -> FitUpdate:
    return FitUpdate(
        record_id,
        {"fit_score": score, "fit_tier": "good", "fit_reasons": "size +20", "icp_version": 2},
    )


def accounts(fake: FakeSalesforce, n: int) -> list[str]:
    return fake.insert(
        "Account", ({"Name": f"A{i}", "SystemModstamp": START + timedelta(seconds=i)} for i in range(n))
    )


def writes(fake: FakeSalesforce) -> list:
    return [r for r in fake.log if r.kind == "write"]


def ready(fake: FakeSalesforce, **options):
    """A REST-only connector that has logged in and described Account, counts reset after that."""
    connector = fake.connector(bulk=False, **options)
    connector.check_fields(["account"])
    fake.reset_counts()
    return connector


def test_parallel_writes_give_every_record_its_own_result_and_write_it_once(fake):
    ids = accounts(fake, 2000)
    rejected = {ids[i] for i in (7, 450, 1999)}
    fake.reject_records({i: ("FIELD_CUSTOM_VALIDATION_EXCEPTION", f"no {i}") for i in rejected})
    fake.delete("Account", [ids[1001]])
    fake.lock_records([ids[3], ids[1500]], times=1)  # retried once, in a second round
    connector = ready(fake, max_concurrency=4)
    fake.latency = 0.02
    results = connector.write("account", [fit(i) for i in ids])

    assert [r.external_id for r in results] == ids
    for record_id, result in zip(ids, results, strict=True):
        if record_id in rejected:
            assert (result.ok, result.error_code, result.error_message) == (
                False,
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                f"no {record_id}",
            )
        elif record_id == ids[1001]:
            assert (result.ok, result.error_code) == (False, "ENTITY_IS_DELETED")
        else:
            assert result.ok, result
    ok = {r.external_id for r in results if r.ok}
    assert len(ok) == 1996
    assert all(fake.saved[i] == 1 for i in ok)  # none lost, none twice
    assert not any(fake.saved[i] for i in set(ids) - ok)
    assert all(fake.record("Account", i)["ICP_Fit_Score__c"] == 61 for i in ok)
    assert 2 <= fake.max_in_flight <= 4
    assert sorted(c.records for c in writes(fake)) == [2] + [200] * 10  # ten requests, then the locked two
    assert connector.usage().calls["write"] == 11 == fake.calls["write"]


def test_in_flight_requests_never_exceed_max_concurrency_across_threads(fake):
    ids = accounts(fake, 1200)
    connector = ready(fake, max_concurrency=3)
    fake.latency = 0.02
    halves = [ids[:600], ids[600:]]
    answers: list[list] = [[], []]

    def write(n: int) -> None:
        answers[n] = connector.write("account", [fit(i) for i in halves[n]])

    threads = [threading.Thread(target=write, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.external_id for r in answers[0] + answers[1]] == ids
    assert all(r.ok for r in answers[0] + answers[1])
    assert 2 <= fake.max_in_flight <= 3  # two callers of three requests each, three slots
    assert connector.usage().calls["write"] == 6 == fake.calls["write"]


def test_session_expiry_with_several_requests_in_flight_logs_in_once(fake):
    ids = accounts(fake, 2000)
    connector = ready(fake, max_concurrency=4)
    fake.latency = 0.1
    fake.expire_sessions(after=2)  # the requests in flight after the second one all meet it
    results = connector.write("account", [fit(i) for i in ids])
    assert all(r.ok for r in results)
    refused = [c for c in writes(fake) if c.status == 401]
    assert len(refused) >= 2  # several requests met the expired session ...
    assert fake.calls["auth"] == 1  # ... and one login renewed it for all
    assert all(fake.saved[i] == 1 for i in ids)
    assert sum(c.records for c in writes(fake) if c.status == 200) == 2000


def test_5xx_in_flight_is_retried_and_nothing_is_lost_or_written_twice(fake):
    ids = accounts(fake, 1600)
    connector = ready(fake, max_concurrency=4)
    fake.latency = 0.02
    fake.fail_next(3, status=503, path="/composite/sobjects", after=1)
    results = connector.write("account", [fit(i, score=77) for i in ids])
    assert all(r.ok for r in results)
    assert all(fake.saved[i] == 1 for i in ids)
    assert [c.status for c in writes(fake)].count(503) == 3
    assert connector.usage().calls["write"] == 8 + 3 == fake.calls["write"]


def test_5xx_that_outlasts_the_retries_keeps_every_answered_request(fake):
    ids = accounts(fake, 1600)
    connector = ready(fake, max_concurrency=4, max_attempts=2)
    fake.latency = 0.02
    fake.fail_next(8, status=503, path="/composite/sobjects", after=3)  # more than the retries take
    with pytest.raises(TransientError) as info:
        connector.write("account", [fit(i) for i in ids])
    partial = info.value.partial_results  # type: ignore[attr-defined]
    assert all(r.ok for r in partial)
    reported = {r.external_id for r in partial}
    saved = {i for i in ids if fake.saved[i]}
    assert reported == saved  # what was written is reported, and nothing else
    assert all(fake.saved[i] == 1 for i in saved)
    assert 3 * 200 <= len(saved) < 1600  # the failed request's records are not among them


def test_request_limit_exceeded_mid_flight_ends_the_call_with_the_answered_results(fake):
    ids = accounts(fake, 4000)
    connector = ready(fake, max_concurrency=4, reserve_share=0.0)
    fake.latency = 0.02
    fake.exhaust_daily_allocation(after=5, path="/composite/sobjects")  # another integration used it
    with pytest.raises(QuotaExceededError) as info:
        connector.write("account", [fit(i) for i in ids])
    assert not info.value.reserved and info.value.code == "REQUEST_LIMIT_EXCEEDED"
    partial = info.value.partial_results  # type: ignore[attr-defined]
    saved = {i for i in ids if fake.saved[i]}
    assert {r.external_id for r in partial if r.ok} == saved
    assert len(saved) == 5 * 200
    # The requests not yet sent when the limit was met were never sent: at most the ones in flight.
    assert len(writes(fake)) <= 5 + 4 < math.ceil(4000 / 200)


def test_the_reserved_share_holds_with_requests_in_flight(fake):
    ids = accounts(fake, 4000)
    fake.set_daily_usage(100, limit=1000)  # 20% reserved: no request may make usage pass 800
    connector = fake.connector(max_concurrency=4, bulk=False)
    connector.check_fields(["account"])  # one describe: usage 101, known to the client
    fake.set_daily_usage(795)
    fake.reset_counts()
    fake.latency = 0.02
    with pytest.raises(QuotaExceededError) as info:
        connector.write("account", [fit(i) for i in ids])
    assert info.value.reserved
    # Never crossed, although four could be in flight. The client stops as soon as the highest usage it
    # has read plus its requests in flight could reach the share, so answers arriving out of order may
    # stop it a few requests early: with at most four in flight it has always reached at least 796.
    assert 796 <= fake.daily_used <= 800
    saved = {i for i in ids if fake.saved[i]}
    partial = info.value.partial_results  # type: ignore[attr-defined]
    assert {r.external_id for r in partial if r.ok} == saved
    assert len(saved) == (fake.daily_used - 795) * 200  # every request that counted wrote its 200


def test_object_types_pull_in_parallel_with_one_login_and_one_describe_each(fake):
    acc = accounts(fake, 4500)
    opp = fake.insert(
        "Opportunity",
        ({"Name": f"O{i}", "StageName": "Prospecting", "CloseDate": "2026-12-01", "AccountId": acc[i]}
         for i in range(3100)),
    )  # fmt: skip
    lead = fake.insert("Lead", ({"LastName": f"L{i}", "Company": f"C{i}"} for i in range(2200)))
    connector = fake.connector(max_concurrency=3, bulk=False)
    assert connector.parallel_pulls
    fake.reset_counts()
    fake.latency = 0.03
    pulled: dict[str, list[str]] = {}

    def pull(obj: str) -> None:
        pulled[obj] = [r.external_id for page in connector.pull(obj, None) for r in page.records]

    threads = [threading.Thread(target=pull, args=(obj,)) for obj in ("account", "opportunity", "lead")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert pulled == {"account": acc, "opportunity": opp, "lead": lead}  # each chain in its own order
    assert fake.calls["auth"] == 1 and fake.calls["describe"] == 3
    assert fake.calls["read"] == 3 + 2 + 2 == connector.usage().calls["read"]
    assert fake.max_in_flight >= 2


def test_a_full_sync_on_rest_keeps_requests_in_flight_and_writes_each_record_once(sqlite_store):
    from pathlib import Path

    from testing.salesforce_seed import seed_salesforce
    from worker.config import ConnectionConfig
    from worker.demo.sample_crm import DEMO_SYNONYMS
    from worker.icp import versions
    from worker.sync import run_sync

    demo = Path(__file__).resolve().parents[2] / "worker" / "demo"
    options = {"customer_field": "Type", "bulk": False, "max_concurrency": 3}
    with FakeSalesforce() as fake:
        counts = seed_salesforce(fake, 700, rng_seed=9)
        fake.add_owned_fields()
        with sqlite_store.session() as s:
            versions.publish(s, (demo / "icp_v1.yaml").read_text(), filename="v1", author="t", note="v1")
        cfg = ConnectionConfig(
            name="acme", crm="salesforce", options=options, industry_synonyms=DEMO_SYNONYMS
        )
        connector = fake.connector(**options)
        assert connector.records_per_write_call == 200 * 3 * 2
        fake.latency = 0.01
        summary = run_sync(
            sqlite_store, cfg, connector, kind="full", now=datetime(2026, 11, 23, 2, tzinfo=UTC)
        )
        assert summary.status == "succeeded", summary.error
        total = sum(counts.values())
        assert summary.counts["written"] == total
        assert len(fake.saved) == total and set(fake.saved.values()) == {1}
        # The sync's write-ahead asks for more, the client lets three go at once.
        assert 2 <= fake.max_in_flight <= 3
        assert summary.api_calls["calls"]["write"] == fake.calls["write"]
        assert summary.api_calls["calls"]["read"] == fake.calls["read"]
