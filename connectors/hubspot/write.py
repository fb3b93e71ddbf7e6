"""Batched write-back of owned properties: ``POST /crm/v3/objects/{object}/batch/update``, 100 inputs.

HubSpot answers a batch in three ways, each turned into one ``WriteResult`` per update, in order:

* 200: every input landed.
* 207 multi-status: ``results`` for the inputs that landed, ``errors`` for the rest, each naming its
  record ids in ``context.ids`` (e.g. ``OBJECT_NOT_FOUND`` for a deleted record).
* 400 for the whole batch when one input carries an invalid value (``VALIDATION_ERROR``, e.g. an option
  the enumeration does not have): nothing landed, and the answer does not say which input was bad. The
  batch is bisected until the good inputs land and the bad one keeps HubSpot's message.

A batch that still fails transiently after the client's in-run retries is reported as retryable, and
the next batch is tried. Auth and daily-quota errors end the run (they are raised with
``partial_results`` holding the results of the batches before).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from connectors.base import FitUpdate, WriteResult
from connectors.errors import ConnectorError, PermanentError, TransientError
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.mapping import owned_properties

log = logging.getLogger(__name__)

#: Categories of a per-input error that may pass by the next run.
RETRYABLE_CATEGORIES = frozenset({"RATE_LIMITS", "LOCKED", "CONFLICT", "TIMEOUT", "INTERNAL_ERROR"})


class BatchWriter:
    """Writes owned-property updates for one HubSpot object type."""

    def __init__(self, client: HubSpotClient, batch_size: int = 100) -> None:
        self.client = client
        self.batch_size = batch_size
        #: Requests spent bisecting whole-batch 400s (figures for the benchmark).
        self.split_requests = 0

    def write(
        self,
        hs_object: str,
        updates: Sequence[FitUpdate],
        owned_map: Mapping[str, str],
        extra: Callable[[FitUpdate], Mapping[str, str]] | None = None,
    ) -> list[WriteResult]:
        """One result per update, in order. ``extra`` adds non-owned mirror properties per record."""
        results: dict[int, WriteResult] = {}
        inputs: list[tuple[int, dict[str, Any]]] = []
        for position, update in enumerate(updates):
            try:
                props = owned_properties(update.fields, owned_map)
            except ValueError as exc:
                results[position] = WriteResult(update.external_id, False, "NOT_OWNED", str(exc))
                continue
            if extra:
                props.update(extra(update))
            inputs.append((position, {"id": str(update.external_id), "properties": props}))
        done: list[WriteResult] = []
        for start in range(0, len(inputs), self.batch_size):
            batch = inputs[start : start + self.batch_size]
            try:
                for position, result in self._send(hs_object, batch):
                    results[position] = result
            except TransientError as exc:
                for position, item in batch:
                    results[position] = WriteResult(
                        item["id"], False, exc.code or "TRANSIENT", exc.message, retryable=True
                    )
            except ConnectorError as exc:
                done = [results[p] for p in sorted(results)]
                exc.partial_results = done  # type: ignore[attr-defined]
                raise
        return [results[p] for p in range(len(updates))]

    def _send(self, hs_object: str, batch: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, WriteResult]]:
        api = self.client.api("objects.batch")
        try:
            answer = self.client.call(
                "write",
                f"update {hs_object}",
                api.update_with_http_info,
                hs_object,
                {"inputs": [item for _, item in batch]},
            )
        except PermanentError as exc:
            if exc.status != 400:
                raise
            if len(batch) == 1 or "PROPERTY_DOESNT_EXIST" in exc.message:
                # A missing property fails every input alike: splitting would only cost requests.
                return [
                    (position, WriteResult(item["id"], False, exc.code or "VALIDATION_ERROR", exc.message))
                    for position, item in batch
                ]
            middle = len(batch) // 2
            self.split_requests += 2
            log.info("hubspot: batch of %d %s refused (%s); splitting", len(batch), hs_object, exc.code)
            return self._send(hs_object, batch[:middle]) + self._send(hs_object, batch[middle:])
        return self._per_input(batch, answer.body or {})

    @staticmethod
    def _per_input(
        batch: list[tuple[int, dict[str, Any]]], body: dict[str, Any]
    ) -> list[tuple[int, WriteResult]]:
        landed = {str(r.get("id")) for r in body.get("results") or ()}
        failed: dict[str, WriteResult] = {}
        for error in body.get("errors") or ():
            context = error.get("context") or {}
            ids = context.get("ids") or context.get("id") or []
            category = str(error.get("category") or "ERROR")
            message = str(error.get("message") or "")[:500]
            for record_id in ids:
                failed[str(record_id)] = WriteResult(
                    str(record_id), False, category, message, retryable=category in RETRYABLE_CATEGORIES
                )
        out = []
        for position, item in batch:
            record_id = item["id"]
            if record_id in failed:
                out.append((position, failed[record_id]))
            elif record_id in landed:
                out.append((position, WriteResult(record_id, True)))
            else:
                out.append(
                    (
                        position,
                        WriteResult(
                            record_id, False, "NO_ANSWER", "HubSpot did not report this input", retryable=True
                        ),
                    )
                )
        return out
