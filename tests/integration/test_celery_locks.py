"""The per-connection lock and the shared rate limiter, against the real Redis, across processes.

Redis must be running (127.0.0.1:6379, or REDIS_TEST_URL): these tests fail, never skip, without it.
Every key lives under a prefix unique to the test and is deleted afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from connectors.hubspot.ratelimit import JITTER_MARGIN
from connectors.hubspot.ratelimit import shared_limits as hubspot_limits
from worker.locks import FileLock, LockBusy, RedisLock, connection_lock
from worker.ratelimit import Rate, RedisRateLimiter

pytestmark = pytest.mark.celery

REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis_prefix():
    import redis

    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}. Start it (see .ci/run).")
    prefix = f"icptest-{uuid.uuid4().hex[:10]}:"
    yield client, prefix
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def run_python(code: str, *args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)  # fmt: skip


# --------------------------------------------------------------------------------------------- locks


def test_lock_is_exclusive_says_who_holds_it_and_is_released_by_its_owner_only(redis_prefix):
    client, prefix = redis_prefix
    first = RedisLock(client, "acme", ttl=5, prefix=prefix, task_id="task-1", kind="full")
    second = RedisLock(client, "acme", ttl=5, prefix=prefix, task_id="task-2")
    assert first.acquire()
    assert not second.acquire(wait=0.3)
    holder = second.holder()
    assert holder["task_id"] == "task-1" and holder["kind"] == "full" and "token" not in holder
    assert not second.release(), "a lock is deleted only by the run that holds it"
    assert first.release()
    assert second.acquire() and second.release()


def test_release_after_expiry_does_not_delete_the_next_holders_lock(redis_prefix):
    client, prefix = redis_prefix
    slow = RedisLock(client, "acme", ttl=0.3, prefix=prefix)
    assert slow.acquire()
    slow._stop.set()  # a stalled process: no heartbeat
    time.sleep(0.6)
    fresh = RedisLock(client, "acme", ttl=5, prefix=prefix, task_id="task-new")
    assert fresh.acquire()
    assert not slow.release()
    assert fresh.holder()["task_id"] == "task-new"
    fresh.release()


def test_heartbeat_keeps_a_long_run_locked_past_its_ttl(redis_prefix):
    client, prefix = redis_prefix
    lock = RedisLock(client, "acme", ttl=0.6, prefix=prefix)
    assert lock.acquire()
    time.sleep(1.5)
    assert not RedisLock(client, "acme", ttl=1, prefix=prefix).acquire()
    assert not lock.lost.is_set()
    assert lock.release()


def test_a_dead_workers_lock_expires_after_its_ttl(redis_prefix):
    client, prefix = redis_prefix
    holder = run_python(
        """
        import sys, time
        from worker.locks import RedisLock, redis_client
        lock = RedisLock(redis_client(sys.argv[1]), "acme", ttl=1.5, prefix=sys.argv[2], task_id="doomed")
        assert lock.acquire()
        print("locked", flush=True)
        time.sleep(60)
        """,
        REDIS_URL,
        prefix,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        time.sleep(2)  # the heartbeat renewed it meanwhile
        assert RedisLock(client, "acme", ttl=5, prefix=prefix).holder()["task_id"] == "doomed"
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        killed_at = time.monotonic()
        waiter = RedisLock(client, "acme", ttl=5, prefix=prefix, task_id="next")
        assert waiter.acquire(wait=5)
        assert time.monotonic() - killed_at <= 1.5 + 0.5
        waiter.release()
    finally:
        holder.kill()
        holder.wait(timeout=10)
        holder.stdout.close()
        holder.stderr.close()


def test_connection_lock_raises_lock_busy_naming_the_holder(redis_prefix):
    _, prefix = redis_prefix
    with connection_lock(
        "acme", redis_url=REDIS_URL, prefix=prefix, ttl=5, task_id="abc-123", kind="incremental"
    ):
        with (
            pytest.raises(LockBusy) as busy,
            connection_lock("acme", redis_url=REDIS_URL, prefix=prefix, ttl=5, wait=0.2),
        ):
            pass
        assert "abc-123" in str(busy.value) and "incremental" in str(busy.value)
    with connection_lock("acme", redis_url=REDIS_URL, prefix=prefix, ttl=5):
        pass


def test_file_lock_without_redis_is_exclusive_and_freed_on_release(tmp_path):
    first, second = FileLock(tmp_path, "acme", task_id="t1"), FileLock(tmp_path, "acme")
    assert first.acquire()
    assert not second.acquire(wait=0.3)
    assert second.holder()["task_id"] == "t1"
    first.release()
    assert second.acquire() and second.release()
    with (
        connection_lock("acme", lock_dir=tmp_path),
        pytest.raises(LockBusy),
        connection_lock("acme", lock_dir=tmp_path),
    ):
        pass


# --------------------------------------------------------------------------------------------- rate limiter


def test_gcra_parameters_keep_every_window_inside_the_budget():
    interval, tolerance = Rate(100, 10.0, burst=10).gcra()
    assert interval == pytest.approx(10 / 90 * 1e6, abs=2) and tolerance == pytest.approx(
        9 * interval, abs=10
    )
    assert Rate(1, 10.0).gcra() == (10_000_001, 0)
    limits = hubspot_limits({"requests_per_10s": 190})
    interval, tolerance = limits["*"].gcra()  # evenly spaced: 191 requests span the window and a margin
    assert tolerance == 0 and 190 * interval / 1e6 == pytest.approx(10 + JITTER_MARGIN, abs=0.01)
    interval, tolerance = limits["search"].gcra()  # 6 searches span more than a second and a margin
    assert tolerance == 0 and 5 * interval / 1e6 == pytest.approx(1 + JITTER_MARGIN, abs=0.01)


def test_pause_blocks_every_instance_of_the_org(redis_prefix):
    client, prefix = redis_prefix
    one = RedisRateLimiter(client, "hubspot:42", {"*": Rate(100, 10.0)}, prefix=prefix)
    other = RedisRateLimiter(client, "hubspot:42", {"*": Rate(100, 10.0)}, prefix=prefix)
    assert one.acquire("read") == 0
    one.pause(1.0)
    started = time.monotonic()
    other.acquire("write")
    assert time.monotonic() - started == pytest.approx(1.0, abs=0.1)


class Waits(Exception):
    pass


def refuse_to_wait(seconds: float) -> None:
    raise Waits(seconds)


def test_search_counts_against_its_own_limit_and_the_general_one(redis_prefix):
    client, prefix = redis_prefix
    limits = {"*": Rate(4, 10.0, burst=3), "search": Rate(2, 0.4, burst=1)}
    limiter = RedisRateLimiter(client, "hubspot:7", limits, prefix=prefix)
    started = time.monotonic()
    for _ in range(2):
        limiter.acquire("search")
    assert time.monotonic() - started == pytest.approx(0.4, abs=0.08), "the search window paces searches"
    assert limiter.acquire("read") == 0, "a read does not wait for the search window"
    # the general burst (3) is used up by the two searches and the read: the next request must wait
    impatient = RedisRateLimiter(client, "hubspot:7", limits, prefix=prefix, sleep=refuse_to_wait)
    with pytest.raises(Waits) as waits:
        impatient.acquire("read")
    assert 5 < waits.value.args[0] <= 10


HAMMER = """
import json, sys, time
from worker.locks import redis_client
from worker.ratelimit import Rate, RedisRateLimiter
url, prefix, org, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
limiter = RedisRateLimiter(redis_client(url), org, {"*": Rate(20, 1.0, burst=2)}, prefix=prefix)
print("ready", flush=True)
sys.stdin.readline()
stamps = []
for _ in range(n):
    limiter.acquire("read")
    stamps.append(time.time())
print(json.dumps(stamps), flush=True)
"""


def hammer(prefix: str, orgs: list[str], n: int) -> list[float]:
    """Start one process per org name, release them together, return every request's time."""
    procs = [run_python(HAMMER, REDIS_URL, prefix, org, str(n), stdin=subprocess.PIPE) for org in orgs]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        stamps: list[float] = []
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            stamps += json.loads(out.strip().splitlines()[-1])
        return sorted(stamps)
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)


def busiest_window(stamps: list[float], window: float) -> int:
    best, j = 0, 0
    for i, t in enumerate(stamps):
        while stamps[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_two_processes_together_stay_within_the_orgs_limit(redis_prefix):
    _, prefix = redis_prefix
    shared = hammer(prefix, ["hubspot:portal-1", "hubspot:portal-1"], 30)
    assert len(shared) == 60
    assert busiest_window(shared, 1.0) <= 20
    assert shared[-1] - shared[0] >= (60 - 20) / 20 * 0.9, "the budget is shared, not doubled"
    # Control: the same load on two separate budgets breaks one budget's window: the check above bites.
    separate = hammer(prefix, ["hubspot:portal-a", "hubspot:portal-b"], 30)
    assert busiest_window(separate, 1.0) > 20


def test_connections_with_the_same_hubspot_credentials_share_one_budget():
    from worker.config import ConnectionConfig
    from worker.ratelimit import limiter_for

    env = {"A_HUBSPOT_ACCESS_TOKEN": "pat-na1-secret-1", "B_HUBSPOT_ACCESS_TOKEN": "pat-na1-secret-1",
           "C_HUBSPOT_ACCESS_TOKEN": "pat-na1-secret-2"}  # fmt: skip
    limiters = {
        name: limiter_for(
            ConnectionConfig(name=name, crm="hubspot", env_prefix=f"{name.upper()}_"),
            redis_url=REDIS_URL,
            env=env,
        )  # fmt: skip
        for name in ("a", "b", "c")
    }
    assert limiters["a"].org == limiters["b"].org != limiters["c"].org
    assert "secret" not in limiters["a"].org
    assert limiter_for(ConnectionConfig(name="f", crm="files"), redis_url=REDIS_URL) is None
