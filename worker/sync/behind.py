"""Commits behind the work: a phase hands each batch's commit to a second thread and goes on with the
next batch, one commit ahead at most, the commits in the order handed over (``CommitsBehind``)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

from worker.store.db import Store


class CommitsBehind:
    """``submit(commit, *args, then=...)`` first waits for the commit handed over before (and runs its
    ``then``), so at most one commit is in flight and they end in order; leaving the block waits for the
    last one. A commit's error is raised by the next ``submit`` or on leaving. With ``inline``, and on a
    store whose threads do not share a database (an in-memory SQLite store), every commit runs at once,
    in this thread."""

    def __init__(self, store: Store, name: str, *, inline: bool = False) -> None:
        self._pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
            if store.threads_share_data and not inline
            else None
        )
        self._pending: tuple[Future[Any], Callable[[], None] | None] | None = None

    def submit(self, commit: Callable[..., Any], *args: Any, then: Callable[[], None] | None = None) -> None:
        self.wait()
        if self._pool is None:
            commit(*args)
            if then is not None:
                then()
            return
        self._pending = (self._pool.submit(commit, *args), then)

    def wait(self) -> None:
        """Wait for the commit in flight, if any, and run its ``then``."""
        if self._pending is not None:
            done, then = self._pending
            self._pending = None
            done.result()
            if then is not None:
                then()

    def __enter__(self) -> CommitsBehind:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if kind is None:
                self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
