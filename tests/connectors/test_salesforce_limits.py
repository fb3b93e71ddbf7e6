"""API limits and retries: Sforce-Limit-Info on every response, the reserved share, the daily quota,
backoff with jitter on 5xx, timeouts and dropped connections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from simple_salesforce.exceptions import SalesforceRefusedRequest

from connectors.errors import AuthError, QuotaExceededError, RateLimitedError, TransientError
from testing.salesforce import FakeSalesforce, Fault

START = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def fake():
    with FakeSalesforce() as f:
        yield f


def seed(fake, n: int) -> list[str]:
    return fake.insert(
        "Account", ({"Name": f"A{i}", "SystemModstamp": START + timedelta(seconds=i)} for i in range(n))
    )


def test_usage_reads_sforce_limit_info_and_counts_calls_by_kind(fake):
    seed(fake, 10)
    fake.set_daily_usage(1234, limit=15000)
    connector = fake.connector()
    list(connector.pull("account", None))
    usage = connector.usage()
    assert (usage.daily_used, usage.daily_limit) == (1236, 15000)  # describe + one query
    assert usage.calls == {"read": 1, "write": 0, "other": 2}  # login, describe
    assert usage.as_dict()["calls"]["read"] == 1


def test_the_reserved_share_stops_the_run_before_it_is_crossed(fake):
    ids = seed(fake, 9000)
    fake.set_daily_usage(795, limit=1000)  # 20% reserved: stop at 800
    connector = fake.connector(page_size=1000)
    cursor = None
    pulled: list[str] = []
    with pytest.raises(QuotaExceededError) as info:
        for page in connector.pull("account", None):
            pulled += [r.external_id for r in page.records]
            cursor = page.cursor
    assert info.value.reserved and "800/1000 calls used" in str(info.value)
    assert fake.daily_used == 800
    assert len(pulled) == 4000  # describe + 4 query calls fit under 800
    # The next window: the run resumes from its cursor and nothing is missed.
    fake.set_daily_usage(0)
    resumed = fake.connector(page_size=1000)
    rest = [r.external_id for p in resumed.pull("account", cursor) for r in p.records]
    assert set(pulled) | set(rest) == set(ids)


def test_request_limit_exceeded_ends_the_run_as_a_quota_error(fake):
    seed(fake, 3)
    connector = fake.connector()
    connector.check_fields(["account"])
    fake.set_daily_usage(100, limit=100)
    with pytest.raises(QuotaExceededError) as info:
        list(connector.pull("account", None))
    assert (info.value.reserved, info.value.code, info.value.status) == (False, "REQUEST_LIMIT_EXCEEDED", 403)
    assert not info.value.transient
    assert fake.calls["read"] == 1  # not retried


def test_reserve_share_zero_uses_the_whole_allocation(fake):
    seed(fake, 3)
    fake.set_daily_usage(97, limit=100)
    connector = fake.connector(reserve_share=0.0)
    assert len(next(connector.pull("account", None)).records) == 3
    assert fake.daily_used == 99


def test_backoff_grows_with_jitter(fake):
    seed(fake, 3)
    connector = fake.connector(retry_wait_initial=1.0, retry_wait_max=3.5, max_attempts=5)
    sleeps: list[float] = []
    connector.client.sleep = sleeps.append
    connector.check_fields(["account"])
    fake.fail_next(4, status=503)
    assert len(next(connector.pull("account", None)).records) == 3
    assert len(sleeps) == 4
    assert 1.0 <= sleeps[0] <= 2.0 and 2.0 <= sleeps[1] <= 3.0 and sleeps[2] == sleeps[3] == 3.5


def test_retries_are_bounded(fake):
    seed(fake, 3)
    connector = fake.connector(max_attempts=3)
    connector.check_fields(["account"])
    fake.fail_next(10, status=502)
    with pytest.raises(TransientError) as info:
        list(connector.pull("account", None))
    assert info.value.status == 502 and info.value.transient
    assert fake.calls["read"] == 3


def test_timeouts_and_dropped_connections_are_retried(fake):
    seed(fake, 3)
    connector = fake.connector(timeout_seconds=0.3)
    connector.check_fields(["account"])
    fake.delay_next(1, seconds=1.0)
    fake.drop_next(1, after=1)
    assert len(next(connector.pull("account", None)).records) == 3


def test_a_login_outage_is_transient_and_retried(fake):
    seed(fake, 1)
    fake.fail_next(2, status=503, include_auth=True)
    connector = fake.connector()
    assert len(next(connector.pull("account", None)).records) == 1
    assert fake.calls["auth"] == 3


def test_a_session_that_keeps_failing_is_an_auth_error(fake):
    connector = fake.connector()
    connector.check_fields(["account"])
    for _ in range(3):  # every session dies at once: renewal cannot help
        fake.faults.append(Fault("expire", 1))
    with pytest.raises(AuthError, match="freshly renewed"):
        connector.check_fields(["lead"])


def test_concurrent_request_limit_is_a_rate_limit_not_the_daily_quota(fake):
    client = fake.connector().client
    exc = SalesforceRefusedRequest(
        "u",
        403,
        "query",
        [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "ConcurrentPerOrgLongTxn Limit exceeded."}],
    )
    assert isinstance(client._translate(exc, "query"), RateLimitedError)
