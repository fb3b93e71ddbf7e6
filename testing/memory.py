"""An in-memory CRM connector for testing the sync service's logic (the real connectors are tested
through their fake HTTP servers). It follows the Connector protocol: pulls ascending by modstamp with
a look-back, writes per record, creates tasks idempotently by key, and can be told to fail."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from connectors.base import ApiUsage, CrmRecord, FitUpdate, FollowUpTask, Page, TaskResult, WriteResult
from connectors.errors import QuotaExceededError


@dataclass
class MemoryCrm:
    records: dict[str, dict[str, CrmRecord]] = field(
        default_factory=lambda: {"account": {}, "opportunity": {}, "lead": {}}
    )
    #: external id -> owned field values as the CRM holds them
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    writes: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    tasks: dict[str, FollowUpTask] = field(default_factory=dict)
    clock: int = 0

    def stamp(self) -> str:
        self.clock += 1
        return f"2026-11-{1 + self.clock // 86400:02d}T00:00:00.{self.clock:06d}Z"

    def put(
        self,
        object_type: str,
        external_id: str,
        raw: dict[str, Any] | None = None,
        *,
        status: dict[str, Any] | None = None,
        owner: str | None = "005A",
        name: str | None = None,
        last_activity: date | None = None,
    ) -> CrmRecord:
        rec = CrmRecord(
            object_type,
            external_id,
            dict(raw or {}),
            dict(status or {}),
            name or external_id,
            owner,
            last_activity,
            self.stamp(),
        )
        self.records[object_type][external_id] = rec
        return rec


class MemoryConnector:
    crm = "memory"

    def __init__(self, crm: MemoryCrm, *, page_size: int = 3, write_batch_size: int = 2) -> None:
        self.db = crm
        self.page_size = page_size
        self.write_batch_size = write_batch_size
        self.api = ApiUsage()
        self.missing: list[str] = []
        self.fail_ids: dict[str, tuple[str, str]] = {}  # id -> (code, message)
        self.quota_after_pages: int | None = None
        self.crash_after_writes: int | None = None
        self.closed = False

    def check_fields(self, object_types):
        self.api.count("other")
        return list(self.missing)

    def install_fields(self, object_types):
        done, self.missing = list(self.missing), []
        return done

    def pull(self, object_type, since) -> Iterator[Page]:
        rows = sorted(self.db.records[object_type].values(), key=lambda r: (r.modstamp, r.external_id))
        if since is not None:
            rows = [r for r in rows if r.modstamp >= since]
        for start in range(0, len(rows), self.page_size):
            if self.quota_after_pages is not None:
                if self.quota_after_pages == 0:
                    raise QuotaExceededError("daily API requests limit reached", reserved=True)
                self.quota_after_pages -= 1
            self.api.count("read")
            chunk = rows[start : start + self.page_size]
            yield Page(
                [
                    CrmRecord(
                        r.object_type,
                        r.external_id,
                        dict(r.raw),
                        dict(r.status),
                        r.name,
                        r.owner_id,
                        r.last_activity,
                        r.modstamp,
                    )
                    for r in chunk
                ],
                chunk[-1].modstamp,
            )

    def write(self, object_type, updates: Sequence[FitUpdate]):
        assert len(updates) <= self.write_batch_size, "sync must respect the batch size"
        if self.crash_after_writes is not None:
            if self.crash_after_writes == 0:
                raise KeyboardInterrupt("worker killed")
            self.crash_after_writes -= 1
        self.api.count("write")
        results = []
        for u in updates:
            if u.external_id in self.fail_ids:
                code, msg = self.fail_ids[u.external_id]
                results.append(
                    WriteResult(u.external_id, False, code, msg, retryable=code == "UNABLE_TO_LOCK_ROW")
                )
                continue
            self.db.fields[u.external_id] = dict(u.fields)
            self.db.writes.append((object_type, u.external_id, dict(u.fields)))
            results.append(WriteResult(u.external_id, True))
        return results

    def create_tasks(self, tasks: Sequence[FollowUpTask]):
        out = []
        for t in tasks:
            existed = t.key in self.db.tasks
            self.db.tasks.setdefault(t.key, t)
            out.append(TaskResult(t.key, True, task_id=f"00T{t.key}", existed=existed))
        return out

    def usage(self) -> ApiUsage:
        return self.api

    def close(self) -> None:
        self.closed = True
