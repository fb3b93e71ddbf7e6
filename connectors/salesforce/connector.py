"""``SalesforceConnector``: the ``connectors.base.Connector`` for a Salesforce org."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import requests

from connectors.base import (
    OBJECT_TYPES,
    ApiUsage,
    FitUpdate,
    FollowUpTask,
    ObjectType,
    Page,
    TaskResult,
    WriteResult,
)
from connectors.errors import ConfigError, MissingFieldsError
from connectors.registry import CRMS
from connectors.salesforce.bulk import BulkJobs
from connectors.salesforce.client import Credentials, SalesforceClient
from connectors.salesforce.fields import install_owned_fields, missing_owned
from connectors.salesforce.mapping import SOBJECT, ObjectMapping, build_mapping, missing_fields
from connectors.salesforce.options import SalesforceOptions, parse_options
from connectors.salesforce.pull import pull_pages
from connectors.salesforce.tasks import create_tasks
from connectors.salesforce.write import write_updates

log = logging.getLogger("connectors.salesforce")

#: Records per write call when bulk is on: one ingest job per call, so few calls for a full write-back.
BULK_WRITE_CALL = 100_000


class SalesforceConnector:
    """Pulls Account, Opportunity and Lead; writes the owned fields back; creates follow-up Tasks.

    Build it with ``from_config``. ``describe`` results are cached for the connector's life (one
    call per object), so a sync costs one describe per object plus its queries and writes.
    """

    crm = "salesforce"
    write_batch_size = CRMS["salesforce"].write_batch_size
    #: Object types pull at once, each query chain in its own thread (its pages stay in order).
    parallel_pulls = True
    #: sObject Collections requests per ``write`` call on REST: twice the requests kept in flight, so
    #: the pool stays busy while the sync stores the answers of the call before.
    COLLECTIONS_PER_CALL_PER_SLOT = 2

    def __init__(self, options: SalesforceOptions, client: SalesforceClient) -> None:
        self.options = options
        self.client = client
        self._owned = options.owned_api_names
        self._mappings: dict[ObjectType, ObjectMapping] = {
            obj: build_mapping(
                obj,
                options.fields.get(obj),
                customer_field=options.customer_field,
                customer_values=options.customer_values,
            )
            for obj in OBJECT_TYPES
        }
        self._describes: dict[str, dict[str, Any]] = {}
        #: Parallel pulls share the describe cache and the one mapping check.
        self._describe_lock = threading.RLock()
        #: Bulk API 2.0 jobs for large pulls and write-backs (None with ``bulk: false``).
        self.bulk = BulkJobs(client, options) if options.bulk else None
        # The sync hands over this many records per write call: one ingest job each with bulk, else
        # enough sObject Collections requests to keep ``max_concurrency`` of them in flight.
        self.records_per_write_call = (
            BULK_WRITE_CALL
            if self.bulk is not None
            else self.write_batch_size * options.max_concurrency * self.COLLECTIONS_PER_CALL_PER_SLOT
        )
        self._enabled: tuple[ObjectType, ...] | None = None
        self._mapping_checked = False

    @classmethod
    def from_config(
        cls,
        options: dict[str, Any],
        *,
        env_prefix: str,
        env: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
    ) -> SalesforceConnector:
        """Validate ``options`` (``ConfigError``) and read the secrets from ``env`` (default
        ``os.environ``) under ``env_prefix`` (``AuthError`` naming a missing variable). No request is
        made until the first call that needs one."""
        opts = parse_options(options)
        credentials = Credentials.from_env(opts.auth, env_prefix, os.environ if env is None else env)
        return cls(opts, SalesforceClient(opts, credentials, session=session))

    # ------------------------------------------------------------------------------- describe

    def _sobject(self, object_type: str) -> str:
        if object_type not in SOBJECT:
            raise ConfigError(f"unknown object type {object_type!r} (expected one of {', '.join(SOBJECT)})")
        return SOBJECT[object_type]

    def describe(self, object_type: ObjectType) -> dict[str, Any]:
        """The object's ``describe`` (cached)."""
        sobject = self._sobject(object_type)
        with self._describe_lock:
            if sobject not in self._describes:
                self._describes[sobject] = self.client.rest("other", f"sobjects/{sobject}/describe") or {}
            return self._describes[sobject]

    def _field_meta(self, object_type: ObjectType) -> dict[str, dict[str, Any]]:
        return {f["name"].lower(): f for f in self.describe(object_type).get("fields", [])}

    def check_mapping(self, object_types: Sequence[ObjectType] | None = None) -> None:
        """Describe the objects and raise ``MissingFieldsError`` listing every mapped field that is absent
        or hidden from the integration user, across all objects at once."""
        missing: list[str] = []
        for obj in object_types or self._enabled or OBJECT_TYPES:
            self._sobject(obj)
            missing += missing_fields(self._mappings[obj], self.describe(obj).get("fields", []))
        if missing:
            raise MissingFieldsError(
                "mapped Salesforce fields are missing or not readable by the integration user: "
                + ", ".join(missing)
                + ". Fix the connection's `fields` option or the user's field access.",
                missing=missing,
            )
        self._mapping_checked = True

    # ------------------------------------------------------------------------------- protocol

    def check_fields(self, object_types: Sequence[ObjectType]) -> list[str]:
        """Owned fields missing (or not editable) as ``Account.ICP_Fit_Score__c`` strings."""
        self._enabled = tuple(object_types)
        missing: list[str] = []
        for obj in object_types:
            missing += missing_owned(self._sobject(obj), self.describe(obj).get("fields", []), self._owned)
        return missing

    def install_fields(self, object_types: Sequence[ObjectType]) -> list[str]:
        """Create the missing owned fields and grant the integration user edit access; idempotent."""
        sobjects = [self._sobject(obj) for obj in object_types]
        try:
            return install_owned_fields(
                self.client,
                sobjects,
                self._owned,
                permission_set=self.options.permission_set,
                sleep=self.client.sleep,
            )
        finally:
            for sobject in sobjects:
                self._describes.pop(sobject, None)

    def pull(self, object_type: ObjectType, since: str | None) -> Iterator[Page]:
        """Pages of records with ``SystemModstamp >= since - lookback``, ascending; lazy."""
        self._sobject(object_type)  # an unknown object type fails here, not in a KeyError
        with self._describe_lock:  # parallel pulls: one check for all of them
            if not self._mapping_checked:
                enabled = self._enabled or (object_type,)
                self.check_mapping(enabled if object_type in enabled else (*enabled, object_type))
        names = {f["name"].lower(): f["name"] for f in self.describe(object_type).get("fields", [])}
        mapping = self._mappings[object_type].with_names(names)
        types = {
            f["name"].lower(): str(f.get("type") or "string") for f in self.describe(object_type)["fields"]
        }
        yield from pull_pages(
            self.client,
            mapping,
            since,
            lookback_seconds=self.options.lookback_seconds,
            bulk=self.bulk,
            bulk_threshold=self.options.bulk_read_threshold,
            types=types,
        )

    def write(self, object_type: ObjectType, updates: Sequence[FitUpdate]) -> list[WriteResult]:
        """Write owned fields through ``composite/sobjects``; one result per update, in order."""
        if not updates:
            return []
        sobject = self._sobject(object_type)
        meta = self._field_meta(object_type)
        used = {name for update in updates for name in update.fields}
        unknown = sorted(used - set(self._owned))
        if unknown:
            raise ConfigError(f"not owned fields, never written: {', '.join(unknown)}")
        absent = [
            f"{sobject}.{self._owned[name]}"
            for name in sorted(used)
            if not meta.get(self._owned[name].lower(), {}).get("updateable")
        ]
        if absent:
            raise MissingFieldsError(
                "owned fields are missing or not editable, so nothing is written: "
                + ", ".join(absent)
                + ". Run `icp-worker fields install`.",
                missing=absent,
            )
        return write_updates(
            self.client,
            sobject,
            updates,
            owned=self._owned,
            field_meta=meta,
            lock_retries=self.options.lock_retries,
            lock_wait=self.options.lock_retry_wait,
            sleep=self.client.sleep,
            bulk=self.bulk,
            bulk_threshold=self.options.bulk_write_threshold,
        )

    def create_tasks(self, tasks: Sequence[FollowUpTask]) -> list[TaskResult]:
        """Create follow-up Tasks, never two for one ``key``."""
        if not tasks:
            return []
        opts = self.options

        def backoff(attempt: int) -> float:
            return float(min(opts.retry_wait_initial * 2.0 ** (attempt - 1), opts.retry_wait_max))

        return create_tasks(
            self.client,
            tasks,
            options=opts.tasks,
            max_attempts=opts.max_attempts,
            backoff=backoff,
            sleep=self.client.sleep,
        )

    def usage(self) -> ApiUsage:
        return self.client.usage_snapshot()

    def close(self) -> None:
        self.client.close()
