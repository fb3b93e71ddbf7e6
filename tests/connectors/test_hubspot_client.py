"""HubSpot connector: options, auth, rate limits, retries and error translation, through the fake."""

from __future__ import annotations

import json
import logging
import math
import pickle

import pytest

from connectors.errors import (
    AuthError,
    ConfigError,
    PermanentError,
    QuotaExceededError,
    RateLimitedError,
    TransientError,
)
from connectors.hubspot import HubSpotConnector
from connectors.hubspot.client import translate_api_exception
from connectors.hubspot.ratelimit import JITTER_MARGIN, RequestPacer, TokenBucket
from testing.hubspot import FakeClock, FakeHubSpot, connector_for


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def fake(clock):
    with FakeHubSpot(clock=clock) as server:
        yield server


def seed_companies(fake, n, start_ms=None, step=1000):
    start = fake.now_ms() - n * step - 3_600_000 if start_ms is None else start_ms
    return fake.seed(
        "companies",
        ({"name": f"Company {i}", "industry": "Software"} for i in range(n)),
        stamps=[start + i * step for i in range(n)],
    )


def full_pull(connector, object_type="account"):
    return [r for page in connector.pull(object_type, None) for r in page.records]


# -- options and credentials -------------------------------------------------------------------------


def test_unknown_option_and_bad_values_are_named():
    with pytest.raises(ConfigError) as err:
        HubSpotConnector.from_config(
            {"hots": "x", "requests_per_10s": 0, "lead_object": "lead_x"},
            env_prefix="P_",
            env={"P_HUBSPOT_ACCESS_TOKEN": "t"},
        )
    text = str(err.value)
    assert "hots: unknown option" in text and "requests_per_10s" in text and "lead_object" in text


def test_unknown_object_in_property_mapping_is_refused():
    with pytest.raises(ConfigError, match="tickets"):
        HubSpotConnector.from_config(
            {"properties": {"tickets": {"a": "b"}}}, env_prefix="P_", env={"P_HUBSPOT_ACCESS_TOKEN": "t"}
        )


def test_missing_private_app_token_names_the_variable():
    with pytest.raises(AuthError) as err:
        HubSpotConnector.from_config({}, env_prefix="ACME_", env={})
    assert "ACME_HUBSPOT_ACCESS_TOKEN" in str(err.value)


def test_missing_oauth_secrets_named_without_values():
    env = {"ACME_HUBSPOT_CLIENT_ID": "id-value-123"}
    with pytest.raises(AuthError) as err:
        HubSpotConnector.from_config({"auth": "oauth"}, env_prefix="ACME_", env=env)
    text = str(err.value)
    assert "ACME_HUBSPOT_CLIENT_SECRET" in text and "ACME_HUBSPOT_REFRESH_TOKEN" in text
    assert "id-value-123" not in text and "ACME_HUBSPOT_CLIENT_ID" not in text


def test_credentials_repr_hides_values(fake):
    connector = connector_for(fake)
    assert fake.private_token not in repr(connector.client._credentials)


# -- auth through the fake ---------------------------------------------------------------------------


def test_private_app_pull(fake, clock):
    seed_companies(fake, 30)
    records = full_pull(connector_for(fake, clock))
    assert len(records) == 30
    assert fake.seen_auth_headers == {f"Bearer {fake.private_token}"}


def test_wrong_private_token_is_an_auth_error_without_retry(fake, clock):
    fake.private_token = "another-token"
    connector = connector_for(fake, clock)
    fake.private_token = "pat-rotated"
    with pytest.raises(AuthError) as err:
        full_pull(connector)
    assert err.value.status == 401 and "another-token" not in str(err.value)
    assert fake.statuses[401] == 1


def test_oauth_refreshes_first_then_before_expiry(fake, clock):
    seed_companies(fake, 10)
    connector = connector_for(fake, clock, oauth=True)
    full_pull(connector)
    assert fake.calls["oauth"] == 1
    clock.advance(fake.token_ttl - 200)  # inside the 300 s renewal margin
    full_pull(connector)
    assert fake.calls["oauth"] == 2
    assert fake.statuses[401] == 0


def test_oauth_refreshes_once_on_401(fake, clock):
    seed_companies(fake, 10)
    connector = connector_for(fake, clock, oauth=True)
    full_pull(connector)
    fake.inject("expire_token", path="/crm/v3/objects/companies")
    assert len(full_pull(connector)) == 10
    # a full pull keeps two requests in flight: each may be refused once, the token is renewed once
    assert 1 <= fake.statuses[401] <= 2 and fake.calls["oauth"] == 2
    assert connector.client.token_refreshes == 2


def test_oauth_bad_refresh_token_is_auth_error(fake, clock):
    connector = connector_for(fake, clock, oauth=True)
    fake.refresh_token = "revoked"
    with pytest.raises(AuthError, match="BAD_REFRESH_TOKEN"):
        full_pull(connector)


def test_no_secret_in_logs_or_errors(fake, clock, caplog):
    caplog.set_level(logging.DEBUG)
    seed_companies(fake, 5)
    connector = connector_for(fake, clock, oauth=True)
    full_pull(connector)
    fake.inject("expire_token")
    full_pull(connector)
    fake.inject("status", status=503)
    full_pull(connector)
    fake.refresh_token = "changed"
    fake.expire_tokens()
    with pytest.raises(AuthError) as err:
        full_pull(connector)
    issued = list(fake.oauth_tokens)
    secrets = [fake.client_secret, "fake-refresh-token", *issued]
    for secret in secrets:
        assert secret not in caplog.text
        assert secret not in str(err.value) and secret not in repr(err.value)


# -- rate limits -------------------------------------------------------------------------------------


def test_token_bucket_never_exceeds_its_window():
    clock = FakeClock()
    bucket = TokenBucket.for_window(95, 10.0, clock.time)
    sent = []
    for _ in range(1000):
        clock.sleep(bucket.take())
        sent.append(clock.time())
    for i in range(len(sent)):
        # requests within any 10 s window starting at a send
        j = i
        while j < len(sent) and sent[j] < sent[i] + 10.0:
            j += 1
        assert j - i <= 95
    assert sent[-1] - sent[0] < 1000 / 85 * 10  # and it is not much slower than the budget


def test_pacer_search_limit():
    clock = FakeClock()
    pacer = RequestPacer(190, 5, clock=clock.time, sleep=clock.sleep)
    stamps = []
    for _ in range(50):
        pacer.acquire("search")
        stamps.append(clock.time())
    # HubSpot refuses a sixth search within one second: six span a second and the jitter margin
    assert all(b - a >= 1.0 + JITTER_MARGIN - 1e-6 for a, b in zip(stamps, stamps[5:], strict=False))


def test_configured_pace_gets_no_429(clock):
    with FakeHubSpot(clock=clock, requests_per_10s=20, search_per_second=2) as fake:
        seed_companies(fake, 1500)
        connector = connector_for(
            fake,
            clock,
            requests_per_10s=20,
            search_requests_per_second=2,
            lookback_seconds=0,
            search_page_size=50,
            # One request at a time: on the fake clock, a thread sleeping for its turn moves time on
            # while another's request is on its way, which no network does (the real-time tests in
            # test_hubspot_speed and test_hubspot_chains keep requests in flight under the windows).
            max_concurrency=1,
        )
        assert len(full_pull(connector)) == 1500
        searched = fake.calls["search"]  # the full pull's search chain, from the top
        since = fake.get("companies", fake.stores["companies"].ids[500])["hs_lastmodifieddate"]
        assert sum(len(p.records) for p in connector.pull("account", since)) == 1000
        assert fake.calls["search"] - searched == 20
        assert sum(fake.rejected.values()) == 0
        assert fake.max_in_window <= 20
        assert clock.slept > 0


def test_without_pacing_the_fake_answers_429_and_the_client_waits(clock):
    class NoPacing:
        def acquire(self, kind):
            return 0.0

        def pause(self, seconds):
            clock.sleep(seconds)

    with FakeHubSpot(clock=clock, requests_per_10s=10) as fake:
        seed_companies(fake, 2000)
        connector = connector_for(fake)
        connector.client.limiter = NoPacing()
        connector.client._sleep = clock.sleep
        assert len(full_pull(connector)) == 2000
        assert fake.rejected["TEN_SECONDLY_ROLLING"] >= 1
        assert connector.client.rate_limited_waits == fake.rejected["TEN_SECONDLY_ROLLING"]


def test_rolling_429_waits_retry_after_and_continues(fake, clock):
    seed_companies(fake, 250)
    connector = connector_for(fake, clock)
    fake.inject("rolling_429", path="/crm/v3/objects/companies", retry_after=7)
    before = clock.slept
    assert len(full_pull(connector)) == 250
    assert fake.rejected["TEN_SECONDLY_ROLLING"] == 1
    assert clock.slept - before >= 7


def test_rolling_429_forever_ends_with_rate_limited_error(fake, clock):
    seed_companies(fake, 10)
    connector = connector_for(fake, clock, max_rate_limited_waits=3)
    fake.inject("rolling_429", path="/crm/v3/objects/companies", times=10)
    with pytest.raises(RateLimitedError) as err:
        full_pull(connector)
    assert err.value.retry_after == 2 and err.value.code == "TEN_SECONDLY_ROLLING"


def test_daily_429_is_quota_exceeded(fake, clock):
    seed_companies(fake, 250)
    connector = connector_for(fake, clock)
    fake.inject("daily_429", path="/crm/v3/objects/companies")
    with pytest.raises(QuotaExceededError) as err:
        full_pull(connector)
    assert err.value.code == "DAILY" and not err.value.transient
    assert pickle.loads(pickle.dumps(err.value)).code == "DAILY"


def test_daily_allowance_of_the_fake(clock):
    with FakeHubSpot(clock=clock, daily_limit=3) as fake:
        seed_companies(fake, 1000)
        connector = connector_for(fake, clock)
        with pytest.raises(QuotaExceededError):
            full_pull(connector)
        assert connector.usage().daily_limit == 3


def test_usage_counts_calls_and_reads_daily_headers(fake, clock):
    seed_companies(fake, 50)
    connector = connector_for(fake, clock)
    full_pull(connector)
    usage = connector.usage().as_dict()
    assert usage["calls"]["read"] == 1 and usage["calls"]["other"] == 1  # one list page, properties
    assert usage["daily_limit"] == 500_000 and usage["daily_used"] == 2
    assert connector.client.rate_headers["max"] == 100


# -- transient failures ------------------------------------------------------------------------------


def test_5xx_is_retried_with_backoff(fake, clock):
    seed_companies(fake, 120)
    connector = connector_for(fake, clock)
    fake.inject("status", path="/crm/v3/objects/companies", status=502, times=2)
    before = clock.slept
    assert len(full_pull(connector)) == 120
    assert fake.statuses[502] == 2 and clock.slept - before >= 0.5


def test_persistent_5xx_becomes_transient_error(fake, clock):
    seed_companies(fake, 5)
    connector = connector_for(fake, clock, max_attempts=3)
    fake.inject("status", path="/crm/v3/objects/companies", status=503, times=10)
    with pytest.raises(TransientError) as err:
        full_pull(connector)
    assert err.value.status == 503 and fake.statuses[503] == 3


def test_dropped_post_is_retried_for_idempotent_search(fake, clock):
    seed_companies(fake, 50)
    connector = connector_for(fake, clock)
    full_pull(connector)
    fake.inject("drop", path="/search")
    pages = list(connector.pull("account", "2000-01-01T00:00:00.000Z"))
    assert sum(len(p.records) for p in pages) == 50 and fake.calls["dropped"] == 1


def test_unreachable_host_is_transient(clock):
    with FakeHubSpot(clock=clock) as fake:
        connector = connector_for(fake, clock, max_attempts=2)
    # the server is gone: urllib3 gives up connecting (MaxRetryError)
    with pytest.raises(TransientError, match="connection failed"):
        full_pull(connector)


def test_post_to_unreachable_host_is_transient_per_batch(clock):
    from connectors.base import FitUpdate

    with FakeHubSpot(clock=clock) as fake:
        connector = connector_for(fake, clock, max_attempts=2)
    results = connector.write("account", [FitUpdate("1", {"fit_score": 1}), FitUpdate("2", {"fit_score": 2})])
    assert all(not r.ok and r.retryable and "connection failed" in r.error_message for r in results)
    connector.close()


def test_limiter_is_a_replaceable_seam(fake, clock):
    class Recording:
        def __init__(self):
            self.kinds = []

        def acquire(self, kind):
            self.kinds.append(kind)
            return 0.0

        def pause(self, seconds):
            self.kinds.append(f"pause {seconds}")

    seed_companies(fake, 10)
    limiter = Recording()
    connector = connector_for(fake, clock, limiter=limiter)
    full_pull(connector)
    list(connector.pull("account", "2000-01-01T00:00:00.000Z"))
    fake.inject("rolling_429", path="/crm/v3/objects/companies", retry_after=4)
    full_pull(connector)
    assert limiter.kinds[:3] == ["other", "read", "search"]
    assert "pause 4.0" in limiter.kinds


# -- translation of SDK exceptions -------------------------------------------------------------------


def _sdk_error(module, status, body=None, headers=None):
    exc = module.ApiException(status=status, reason="r")
    exc.body = json.dumps(body) if body is not None else None
    exc.headers = headers
    return exc


@pytest.mark.parametrize(
    "package", ["hubspot.crm.objects", "hubspot.crm.properties", "hubspot.crm.associations.v4"]
)
def test_translation_matches_status_not_class(package):
    import importlib

    module = importlib.import_module(package)
    rolling = translate_api_exception(
        _sdk_error(
            module,
            429,
            {"policyName": "TEN_SECONDLY_ROLLING", "errorType": "RATE_LIMIT", "message": "m"},
            {"Retry-After": "3"},
        ),
        what="x",
    )
    assert isinstance(rolling, RateLimitedError) and rolling.retry_after == 3
    secondly = translate_api_exception(
        _sdk_error(
            module, 429, {"policyName": "SECONDLY"}, {"X-HubSpot-RateLimit-Interval-Milliseconds": "1000"}
        ),
        what="x",
    )
    assert isinstance(secondly, RateLimitedError) and math.isclose(secondly.retry_after, 1.0)
    assert isinstance(
        translate_api_exception(_sdk_error(module, 429, {"policyName": "DAILY"}), what="x"),
        QuotaExceededError,
    )
    assert isinstance(translate_api_exception(_sdk_error(module, 500), what="x"), TransientError)
    assert isinstance(
        translate_api_exception(_sdk_error(module, 403, {"category": "MISSING_SCOPES"}), what="x"), AuthError
    )
    bad = translate_api_exception(
        _sdk_error(module, 400, {"category": "VALIDATION_ERROR", "message": "no"}), what="x"
    )
    assert isinstance(bad, PermanentError) and bad.code == "VALIDATION_ERROR" and bad.status == 400
