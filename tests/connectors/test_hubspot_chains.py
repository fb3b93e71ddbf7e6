"""Full pulls as two page chains meeting in the middle; the pacer under a 429 with requests waiting; two
workers sharing the Redis limiter against the fake's windows."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid

import pytest

from connectors.base import FitUpdate
from connectors.hubspot.chains import MeetInTheMiddle
from connectors.hubspot.ratelimit import JITTER_MARGIN, RequestPacer, shared_limits
from testing.hubspot import FakeClock, FakeHubSpot, connector_for

REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")


class Portal:
    """List and search over ``ids`` as HubSpot pages them: the list 100 a page in ``order``, search by
    id descending 200 a page, ``total`` as counted when searched, the 10,000-result cap."""

    def __init__(self, ids: list[int], order: list[int] | None = None, delay: float = 0.0) -> None:
        self.ids = sorted(ids)
        self.order = order if order is not None else self.ids
        self.delay = delay
        self.lists = 0
        self.searches: list[int | None] = []

    def list_page(self, after: str | None) -> dict:
        time.sleep(self.delay)
        self.lists += 1
        start = int(after or 0)
        page = self.order[start : start + 100]
        body: dict = {"results": [{"id": str(i)} for i in page]}
        if start + 100 < len(self.order):
            body["paging"] = {"next": {"after": str(start + 100)}}
        return body

    def search_page(self, upper: int | None, offset: int) -> dict:
        assert offset < 10_000, "past the search cap"
        self.searches.append(upper)
        below = [i for i in reversed(self.ids) if upper is None or i < upper]
        page = below[offset : offset + 200]
        body: dict = {"total": len(below), "results": [{"id": str(i)} for i in page]}
        if offset + 200 < len(below):
            body["paging"] = {"next": {"after": str(offset + 200)}}
        return body


def handed_out(portal: Portal) -> list[int]:
    chains = MeetInTheMiddle(portal.list_page, portal.search_page, "test")
    return [int(o["id"]) for page in chains for o in page]


@pytest.mark.parametrize("n", [0, 1, 100, 101, 250, 1234, 5000])
def test_the_chains_hand_out_every_record_exactly_once(n):
    ids = random.Random(n).sample(range(1, 10 * n + 2), n)
    portal = Portal(ids)
    got = handed_out(portal)
    assert sorted(got) == sorted(ids) and len(got) == len(set(got))
    if n > 100:
        assert portal.searches, "a second chain, from the top"
        assert portal.lists + len(portal.searches) <= -(-n // 100) + 3


def test_past_the_search_cap_the_search_chain_restarts_below_the_lowest_id():
    ids = list(range(1, 30_001))
    portal = Portal(ids, delay=0.02)  # a slow list chain: the search chain goes down past 10,000
    got = handed_out(portal)
    assert sorted(got) == ids and len(got) == len(set(got))
    restarts = [u for u in portal.searches if u is not None]
    assert restarts and all(u < 30_001 - 9_000 for u in restarts)


def test_a_list_out_of_id_order_is_listed_to_its_end():
    ids = list(range(1, 2001))
    shuffled = random.Random(3).sample(ids, len(ids))
    portal = Portal(ids, order=shuffled)
    got = handed_out(portal)
    assert sorted(got) == ids and len(got) == len(set(got))
    assert portal.lists == 20  # every list page: the order gives no place to meet


def test_a_list_that_looks_ordered_but_is_not_is_caught_by_the_count():
    """Pages in ascending order, but one low id comes late: the chains meet before it, the search's
    total says one is missing, and the list chain goes on to its end."""
    ids = list(range(1, 2001))
    order = [i for i in ids if i != 7] + [7]
    portal = Portal(ids, order=order)
    got = handed_out(portal)
    assert sorted(got) == ids and len(got) == len(set(got))


def test_an_error_in_a_chain_reaches_the_consumer():
    portal = Portal(list(range(1, 1001)))

    def failing(upper, offset):
        raise RuntimeError("search is down")

    with pytest.raises(RuntimeError, match="search is down"):
        list(MeetInTheMiddle(portal.list_page, failing, "test"))


def test_full_pull_through_the_fake_hands_out_each_company_once():
    clock = FakeClock()
    with FakeHubSpot(clock=clock, requests_per_10s=1000, search_per_second=100) as fake:
        ids = fake.seed("companies", [{"name": f"c{i}"} for i in range(2345)])
        connector = connector_for(fake, clock, requests_per_10s=1000, search_requests_per_second=100)
        fake.latency = 0.002
        records = [r.external_id for p in connector.pull("account", None) for r in p.records]
        assert sorted(records) == ids and len(records) == len(set(records))
        assert fake.calls["search:companies"] >= 1 and fake.calls["list:companies"] >= 1


# -- the pacer ----------------------------------------------------------------------------------------


def test_a_429_holds_back_every_request_waiting_for_its_turn():
    """Real time: five requests wait for their turn (one every 0.2 s); a 429 pauses for a second: none
    of them goes before the pause ends (the pacer counts a request when it goes, not when it queued)."""
    pacer = RequestPacer(50, 5)  # (10 + margin) / 50 = 0.205 s apart
    pacer.acquire("read")
    went: list[float] = []
    lock = threading.Lock()

    def request() -> None:
        pacer.acquire("read")
        with lock:
            went.append(time.monotonic())

    threads = [threading.Thread(target=request) for _ in range(5)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    paused = time.monotonic()
    pacer.pause(1.0)
    for thread in threads:
        thread.join()
    assert len(went) == 5 and min(went) >= paused + 1.0 - 0.01
    gaps = sorted(b - a for a, b in zip(sorted(went), sorted(went)[1:], strict=False))
    assert gaps[0] >= pacer.interval - 0.01  # and still one at a time after it


def test_the_pace_keeps_a_margin_inside_each_window():
    pacer = RequestPacer(100, 5)
    assert pacer.interval == pytest.approx((10 + JITTER_MARGIN) / 100)
    assert pacer.search_interval == pytest.approx((1 + JITTER_MARGIN) / 5)
    limits = shared_limits({"requests_per_10s": 100, "search_requests_per_second": 5})
    assert limits["*"].gcra() == (int(pacer.interval * 1e6) + 1, 0)
    assert limits["search"].gcra() == (int(pacer.search_interval * 1e6) + 1, 0)


# -- workers sharing the Redis limiter ----------------------------------------------------------------


@pytest.fixture
def redis_limiters():
    import redis

    from worker.ratelimit import RedisRateLimiter

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
    prefix = f"icptest-{uuid.uuid4().hex[:10]}:"

    def make(options):
        return RedisRateLimiter(client, "hubspot:shared", shared_limits(options), prefix=prefix)

    yield make
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)


def test_two_workers_sharing_the_redis_limiter_stay_inside_both_windows(redis_limiters):
    """Real time, two connectors standing for two workers, each with its own Redis limiter object for
    the same app: searches (2 a second allowed) and writes (30 per 10 s) from both at once get no 429."""
    options = {"requests_per_10s": 30, "search_requests_per_second": 2, "search_page_size": 100}
    with FakeHubSpot(requests_per_10s=30, search_per_second=2) as fake:
        ids = fake.seed("companies", [{"name": f"c{i}"} for i in range(400)], stamps=range(1000, 1400))
        workers = [connector_for(fake, limiter=redis_limiters(options), **options) for _ in range(2)]
        workers[0].install_fields(["account"])
        fake.latency = 0.05
        fake.max_in_window = 0
        fake.rejected.clear()
        errors: list[BaseException] = []

        def work(connector, n):
            try:
                pulled = [r for p in connector.pull("account", "1970-01-01T00:00:00.000Z") for r in p.records]
                assert len(pulled) == 400
                mine = ids[n * 200 : (n + 1) * 200]
                results = connector.write("account", [FitUpdate(i, {"fit_score": 50}) for i in mine])
                assert all(r.ok for r in results)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(c, n)) for n, c in enumerate(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert fake.calls["search"] >= 8 and sum(fake.rejected.values()) == 0
        assert fake.max_in_window <= 30
