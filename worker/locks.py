"""One run per connection at a time, across every worker process and machine.

With Redis (``REDIS_URL``, or the broker URL when it is Redis) the lock is a key
``{prefix}lock:connection:{name}`` set with ``SET NX PX``. Its value is a JSON document with a random
token and who holds it (task id, kind, host, pid, since), so that a waiting task can say whom it waits
for. While the run lasts, a heartbeat thread extends the expiry every third of the TTL, and only if the
value is still ours (compare-and-expire, a Lua script); release is compare-and-delete, so a worker whose
lock expired can never delete a lock another worker took since. A worker that dies (SIGKILL, power
loss) stops renewing: its lock expires after at most ``ttl`` seconds.

Without Redis (the embedded default, everything in one process or a few CLI processes on one machine)
an advisory file lock (``flock``) in ``ICP_WORKER_HOME/locks`` does the same job; the kernel releases it
when the process dies.

What a task does when the lock is taken is decided in ``worker.tasks`` (wait by re-queueing, then skip
and record a ``skipped`` run): this module only answers "got it" or "held by ...".
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import structlog

log = structlog.get_logger("worker.locks")

#: Deletes the key only when it still holds our value.
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

#: Extends the expiry only when the key still holds our value.
RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class Lock(Protocol):
    name: str

    def acquire(self, wait: float = 0.0) -> bool: ...

    def release(self) -> bool: ...

    def holder(self) -> dict[str, Any] | None: ...


@cache
def _client(url: str, pid: int) -> Any:
    import redis

    return redis.Redis.from_url(
        url, decode_responses=True, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30
    )


def redis_client(url: str) -> Any:
    """A Redis client for ``url``, one per process (a forked child gets its own connections)."""
    return _client(url, os.getpid())


def redis_url_from_settings(settings: Any = None) -> str | None:
    """``REDIS_URL``, or the broker URL when the broker is Redis; None in the embedded default."""
    if settings is None:
        from worker.settings import get_settings

        settings = get_settings()
    if settings.redis_url is not None and settings.redis_url.get_secret_value():
        return str(settings.redis_url.get_secret_value())
    broker = settings.broker_url()
    if broker and broker.split("://", 1)[0] in ("redis", "rediss", "unix"):
        return str(broker)
    return None


def _owner(**details: Any) -> dict[str, Any]:
    return {
        "token": uuid.uuid4().hex,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
        **{k: v for k, v in details.items() if v is not None},
    }


class RedisLock:
    """A connection's lock in Redis, renewed by a heartbeat while held."""

    def __init__(
        self,
        client: Any,
        name: str,
        *,
        ttl: float = 60.0,
        prefix: str = "icp:",
        poll: float = 0.25,
        **details: Any,
    ) -> None:
        if ttl <= 0:
            raise ValueError("a lock needs a positive TTL")
        self.client = client
        self.name = name
        self.key = f"{prefix}lock:connection:{name}"
        self.ttl_ms = max(1, int(ttl * 1000))
        self.poll = poll
        self.info = _owner(**details)
        self.value = json.dumps(self.info, sort_keys=True)
        self._release = client.register_script(RELEASE_SCRIPT)
        self._renew = client.register_script(RENEW_SCRIPT)
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        #: Set when a renewal found the lock gone (expired, or Redis lost it): the run is no longer protected.
        self.lost = threading.Event()

    def acquire(self, wait: float = 0.0) -> bool:
        """Take the lock, trying for up to ``wait`` seconds; start the heartbeat when taken."""
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            if self.client.set(self.key, self.value, nx=True, px=self.ttl_ms):
                self._start_heartbeat()
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(self.poll, max(0.0, deadline - time.monotonic())))

    def renew(self) -> bool:
        return bool(self._renew(keys=[self.key], args=[self.value, self.ttl_ms]))

    def release(self) -> bool:
        """Stop the heartbeat and delete the key if it is still ours; False if it was not."""
        self._stop.set()
        if self._heartbeat is not None and self._heartbeat is not threading.current_thread():
            self._heartbeat.join(timeout=5)
        return bool(self._release(keys=[self.key], args=[self.value]))

    def holder(self) -> dict[str, Any] | None:
        """Who holds the lock now (None when free)."""
        raw = self.client.get(self.key)
        if raw is None:
            return None
        try:
            info = json.loads(raw)
        except ValueError:
            return {"raw": raw}
        info.pop("token", None)
        return info

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        interval = self.ttl_ms / 1000 / 3

        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    if not self.renew():
                        self.lost.set()
                        log.error(
                            "lock.lost",
                            lock=self.name,
                            detail="the lock expired or was taken over while the run went on",
                        )
                        return
                except Exception as exc:  # noqa: BLE001 - Redis blips: the next beat tries again
                    log.warning("lock.renew_failed", lock=self.name, error=f"{type(exc).__name__}: {exc}")

        self._heartbeat = threading.Thread(target=beat, name=f"lock-heartbeat-{self.name}", daemon=True)
        self._heartbeat.start()


class FileLock:
    """The embedded default's lock: ``flock`` on a file per connection (released by the kernel when the
    process dies). Where ``fcntl`` is missing (Windows) it always succeeds."""

    def __init__(self, directory: Path, name: str, *, poll: float = 0.25, **details: Any) -> None:
        self.name = name
        self.path = directory / f"{name}.lock"
        self.poll = poll
        self.info = _owner(**details)
        self._handle: Any = None

    def acquire(self, wait: float = 0.0) -> bool:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                if time.monotonic() >= deadline:
                    handle.close()
                    return False
                time.sleep(self.poll)
                continue
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps({k: v for k, v in self.info.items() if k != "token"}))
            handle.flush()
            self._handle = handle
            return True

    def release(self) -> bool:
        if self._handle is None:
            return False
        import fcntl

        with contextlib.suppress(OSError):
            self._handle.truncate(0)
        fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None
        return True

    def holder(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        try:
            return json.loads(text) if text else None
        except ValueError:
            return None


class LockBusy(Exception):
    """The connection's lock is held by another run."""

    def __init__(self, name: str, holder: dict[str, Any] | None) -> None:
        self.name = name
        self.holder = holder or {}
        who = self.holder.get("task_id") or f"pid {self.holder.get('pid', '?')}"
        super().__init__(
            f"another run of {name} holds its lock ({self.holder.get('kind', 'sync')} by {who} on "
            f"{self.holder.get('host', '?')} since {self.holder.get('since', '?')})"
        )


def make_lock(
    name: str,
    *,
    redis_url: str | None = None,
    ttl: float = 60.0,
    prefix: str = "icp:",
    lock_dir: Path | None = None,
    **details: Any,
) -> Lock:
    """The lock for connection ``name``: in Redis when a URL is given, else a file lock."""
    if redis_url:
        return RedisLock(redis_client(redis_url), name, ttl=ttl, prefix=prefix, **details)
    if lock_dir is None:
        from worker.settings import get_settings

        lock_dir = get_settings().icp_worker_home / "locks"
    return FileLock(lock_dir, name, **details)


@contextlib.contextmanager
def connection_lock(
    name: str,
    *,
    wait: float = 0.0,
    redis_url: str | None = None,
    ttl: float = 60.0,
    prefix: str = "icp:",
    lock_dir: Path | None = None,
    **details: Any,
) -> Iterator[Lock]:
    """Hold connection ``name``'s lock for the body; ``LockBusy`` (saying who holds it) if it stays
    taken for ``wait`` seconds. ``details`` (task_id, kind ...) are shown to whoever waits."""
    lock = make_lock(name, redis_url=redis_url, ttl=ttl, prefix=prefix, lock_dir=lock_dir, **details)
    if not lock.acquire(wait):
        raise LockBusy(name, lock.holder())
    try:
        yield lock
    finally:
        try:
            if not lock.release():
                log.warning("lock.expired_before_release", lock=name)
        except Exception as exc:  # noqa: BLE001 - the key expires by itself; never mask the run's outcome
            log.warning("lock.release_failed", lock=name, error=f"{type(exc).__name__}: {exc}")
