"""HubSpot connector at speed: requests in flight under the limiter, fewer calls for associations and
refused values, the search limit's short wait, ``after`` on every search, enumeration labels."""

from __future__ import annotations

import threading

import pytest

from connectors.base import FitUpdate
from connectors.errors import ConfigError, QuotaExceededError
from connectors.hubspot.ratelimit import RequestPacer
from testing.hubspot import FakeClock, FakeHubSpot, connector_for

ALL = ["account", "opportunity", "lead"]


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def fake(clock):
    with FakeHubSpot(clock=clock, requests_per_10s=1000, search_per_second=100) as server:
        yield server


def installed(fake, clock, **options):
    options = {"requests_per_10s": 1000, "search_requests_per_second": 100, **options}
    connector = connector_for(fake, clock, **options)
    connector.install_fields(ALL)
    fake.calls.clear()
    connector.usage().calls["write"] = 0
    return connector


def fit(record_id, tier="best", score=85):
    return FitUpdate(str(record_id), {"fit_score": score, "fit_tier": tier, "icp_version": "3"})


# -- requests in flight --------------------------------------------------------------------------------


def test_write_batches_go_out_in_parallel_and_answer_in_order(fake, clock):
    ids = fake.seed("companies", [{"name": f"c{i}"} for i in range(1000)])
    connector = installed(fake, clock, max_concurrency=4)
    fake.latency = 0.05
    results = connector.write("account", [fit(i, score=n % 100) for n, i in enumerate(ids)])
    assert [r.external_id for r in results] == ids and all(r.ok for r in results)
    assert fake.calls["batch_update:companies"] == 10
    assert 2 <= fake.max_in_flight <= 4
    assert fake.get("companies", ids[999])["icp_fit_score"] == "99"


def test_pool_size_follows_rate_and_latency(fake, clock):
    connector = connector_for(fake, clock, requests_per_10s=100, max_concurrency=8)
    client = connector.client
    client.latency = 0.25  # 9.76 requests a second x 0.25 s = 2.4 in flight; a quarter more, and one
    assert client.concurrency() == 5
    client.latency = 0.01
    assert client.concurrency() == 2
    client.latency = 5.0
    assert client.concurrency() == 8


def test_parallel_requests_share_one_limiter_and_stay_in_the_window():
    """Real time, real threads: writers at 20 requests per 10 s never put 21 into any window, and with
    answers slower than the pace (0.6 s against one request every 0.5 s) two are in flight at once."""
    with FakeHubSpot(requests_per_10s=20) as fake:
        ids = fake.seed("companies", [{"name": f"c{i}"} for i in range(800)])
        pacer = RequestPacer(20, 5, headroom=0.0)
        connector = connector_for(fake, limiter=pacer, requests_per_10s=20, max_concurrency=4)
        connector.install_fields(["account"])
        fake.latency = 0.6
        fake.max_in_window = 0
        results = connector.write("account", [fit(i) for i in ids])
        assert all(r.ok for r in results)
        assert sum(fake.rejected.values()) == 0 and fake.max_in_window <= 20
        assert fake.max_in_flight >= 2


def test_a_429_pauses_every_writer(fake, clock):
    ids = fake.seed("companies", [{"name": f"c{i}"} for i in range(800)])
    connector = installed(fake, clock, max_concurrency=4)
    before = clock.slept
    fake.inject("rolling_429", path="/batch/update", retry_after=6)
    results = connector.write("account", [fit(i) for i in ids])
    assert all(r.ok for r in results) and fake.rejected["TEN_SECONDLY_ROLLING"] == 1
    assert clock.slept - before >= 6  # the shared pacer held back the requests after the 429


def test_daily_quota_in_parallel_keeps_the_batches_before(fake, clock):
    ids = fake.seed("companies", [{"name": f"c{i}"} for i in range(500)])
    connector = installed(fake, clock, max_concurrency=3)
    connector.write("account", [fit(ids[0])])
    seen = {"n": 0}
    lock = threading.Lock()
    original = fake.handle

    def handle(method, path, headers, body):
        if "/batch/update" in path:
            with lock:
                seen["n"] += 1
                if seen["n"] == 3:
                    fake.inject("daily_429", path="/batch/update")
        return original(method, path, headers, body)

    fake.handle = handle
    with pytest.raises(QuotaExceededError) as err:
        connector.write("account", [fit(i) for i in ids])
    partial = err.value.partial_results
    assert len(partial) % 100 == 0 and len(partial) < 500 and all(r.ok for r in partial)
    assert [r.external_id for r in partial] == ids[: len(partial)]


# -- a refused option: set aside, not bisected ---------------------------------------------------------


def test_invalid_option_sets_aside_every_input_with_the_value(fake, clock):
    ids = fake.seed("companies", [{"name": f"c{i}"} for i in range(100)])
    connector = installed(fake, clock)
    bad = {3, 17, 42, 43, 99}
    updates = [fit(i, tier="platinum" if n in bad else "best") for n, i in enumerate(ids)]
    results = connector.write("account", updates)
    assert [n for n, r in enumerate(results) if not r.ok] == sorted(bad)
    assert all("platinum" in results[n].error_message for n in bad)
    assert results[3].error_code == "VALIDATION_ERROR" and not results[3].retryable
    assert connector.usage().calls["write"] == 2  # the refused batch, then the rest: no bisection
    assert all(
        fake.get("companies", i).get("icp_fit_tier") == "best" for n, i in enumerate(ids) if n not in bad
    )


def test_two_refused_values_in_one_batch_cost_one_more_request(fake, clock):
    ids = fake.seed("companies", [{"name": f"c{i}"} for i in range(50)])
    connector = installed(fake, clock)
    tiers = ["platinum" if n % 10 == 0 else "gold" if n % 10 == 5 else "good" for n in range(50)]
    results = connector.write("account", [fit(i, tier=t) for i, t in zip(ids, tiers, strict=True)])
    assert [r.ok for r in results] == [t == "good" for t in tiers]
    assert connector.usage().calls["write"] == 2


def test_the_next_write_with_a_refused_owned_option_stops_with_a_config_error(fake, clock):
    ids = fake.seed("companies", [{"name": f"c{i}"} for i in range(300)])
    connector = installed(fake, clock)
    connector.write(
        "account", [fit(i, tier="platinum" if n == 5 else "good") for n, i in enumerate(ids[:100])]
    )
    sent = fake.calls["batch_update:companies"]
    with pytest.raises(ConfigError) as err:
        connector.write("account", [fit(i, tier="platinum") for i in ids[100:]])
    assert (
        "icp_fit_tier" in str(err.value)
        and "platinum" in str(err.value)
        and "fields install" in str(err.value)
    )
    assert fake.calls["batch_update:companies"] == sent  # nothing more was sent
    assert all(r.ok for r in connector.write("account", [fit(i, tier="good") for i in ids[100:]]))


# -- the search limit, after, associations, labels -----------------------------------------------------


def test_secondly_429_waits_about_a_second_whatever_the_interval_header(clock):
    with FakeHubSpot(clock=clock) as fake:
        fake.seed("companies", [{"name": f"c{i}"} for i in range(10)])
        connector = connector_for(fake, clock)
        list(connector.pull("account", None))
        fake.inject("secondly_429", path="/search", times=3)
        before = clock.slept
        records = [r for p in connector.pull("account", "2000-01-01T00:00:00.000Z") for r in p.records]
        assert len(records) == 10 and fake.rejected["SECONDLY"] == 3
        assert 3.0 <= clock.slept - before < 5.0  # about a second each, not the 10 s of the header


def test_every_search_request_sends_after(fake, clock):
    fake.seed("companies", [{"name": f"c{i}"} for i in range(450)], stamps=range(1_000, 1_450))
    bodies = []
    original = fake._search

    def search(obj, body):
        bodies.append(dict(body))
        return original(obj, body)

    fake._search = search
    connector = installed(fake, clock)
    pages = list(connector.pull("account", "1970-01-01T00:00:00.000Z"))
    assert sum(len(p.records) for p in pages) == 450
    assert [b["after"] for b in bodies] == ["0", "200", "400"]


def test_the_fake_refuses_a_search_without_after(fake):
    import requests

    answer = requests.post(
        f"{fake.url}/crm/v3/objects/companies/search",
        json={"filterGroups": [], "limit": 10},
        headers={"Authorization": f"Bearer {fake.private_token}"},
        timeout=5,
    )
    assert answer.status_code == 400 and "after" in answer.json()["message"]


def test_deal_companies_are_read_a_thousand_deals_at_a_time(fake, clock):
    companies = fake.seed("companies", [{"name": f"c{i}"} for i in range(10)])
    deals = fake.seed("deals", [{"dealname": f"d{i}", "dealstage": "closedwon"} for i in range(2500)])
    for n, deal in enumerate(deals):
        fake.associate("deals", deal, "companies", companies[n % 10], [5, 341], [6, 342])
    connector = installed(fake, clock)
    pages = list(connector.pull("opportunity", None))
    records = {r.external_id: r for p in pages for r in p.records}
    assert sorted(records) == deals and sum(len(p.records) for p in pages) == 2500
    assert all(records[d].status["account_id"] == companies[n % 10] for n, d in enumerate(deals))
    # 1,000 ids a read, across list (100) and search (200) pages alike
    assert fake.calls["associations:deals"] == 3
    assert [p.cursor is None for p in pages] == [True] * (len(pages) - 1) + [False]


def test_enumeration_values_arrive_as_their_labels(fake, clock):
    fake.seed(
        "companies",
        [
            {"name": "a", "industry": "COMPUTER_SOFTWARE", "web_technologies": "salesforce;google_analytics"},
            {"name": "b", "industry": "Not an option", "web_technologies": ""},
        ],
    )
    connector = installed(fake, clock)
    records = [r for p in connector.pull("account", None) for r in p.records]
    assert records[0].raw["industry"] == "Computer Software"
    assert records[0].raw["tech_stack"] == "Salesforce;Google Analytics"
    assert records[1].raw["industry"] == "Not an option"
