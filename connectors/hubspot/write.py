"""Batched write-back of owned properties: ``POST /crm/v3/objects/{object}/batch/update``, 100 inputs.

The batches of one ``write`` call go out in parallel (``HubSpotClient.concurrency()`` at a time, each
admitted by the client's limiter), and their answers are put back in input order. HubSpot answers a
batch in three ways, each turned into one ``WriteResult`` per update:

* 200: every input landed.
* 207 multi-status: ``results`` for the inputs that landed, ``errors`` for the rest, each naming its
  record ids in ``context.ids`` (e.g. ``OBJECT_NOT_FOUND`` for a deleted record).
* 400 for the whole batch when one input carries an invalid value (``VALIDATION_ERROR``): nothing
  landed. When the error names the value (``INVALID_OPTION``: ``platinum was not one of the allowed
  options`` on ``icp_fit_tier``), every input carrying that value is set aside with HubSpot's message
  and the rest is sent again: one more request, not a bisection down to single records. Only an error
  that names no value is bisected until the good inputs land.

A value refused on an owned property means the portal's options do not match the ICP's tiers: the
inputs that carry it keep the error (retried next run), and the next ``write`` that would send such a
value raises ``ConfigError`` instead of spending requests on 400s (``icp-worker fields install`` adds
the missing options).

A batch that still fails transiently after the client's in-run retries is reported as retryable, and
the other batches go on. Auth and daily-quota errors end the run: they are raised with
``partial_results`` holding the results of the batches before the failed one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NoReturn

from connectors.base import FitUpdate, WriteResult
from connectors.errors import ConfigError, ConnectorError, PermanentError, TransientError
from connectors.hubspot.client import HubSpotClient, InvalidValuesError
from connectors.hubspot.mapping import owned_properties

log = logging.getLogger(__name__)

#: Categories of a per-input error that may pass by the next run.
RETRYABLE_CATEGORIES = frozenset({"RATE_LIMITS", "LOCKED", "CONFLICT", "TIMEOUT", "INTERNAL_ERROR"})

Batch = list[tuple[int, dict[str, Any]]]
Answers = list[tuple[int, WriteResult]]


def _carries(item: dict[str, Any], name: str, value: str) -> bool:
    """Whether an input sets ``name`` to ``value`` (or, for a multi-select, includes it)."""
    current = (item.get("properties") or {}).get(name)
    return current is not None and (current == value or value in str(current).split(";"))


class BatchWriter:
    """Writes owned-property updates for one HubSpot object type."""

    def __init__(self, client: HubSpotClient, batch_size: int = 100) -> None:
        self.client = client
        self.batch_size = batch_size
        #: Requests spent bisecting whole-batch 400s that named no value (figures for the benchmark).
        self.split_requests = 0
        #: ``(object, property) -> values`` the portal refused as ``INVALID_OPTION`` in this run.
        self.refused: dict[tuple[str, str], set[str]] = {}
        self._lock = threading.Lock()  # write calls may overlap (``HubSpotConnector.overlap_write_calls``)

    def write(
        self,
        hs_object: str,
        updates: Sequence[FitUpdate],
        owned_map: Mapping[str, str],
        extra: Callable[[FitUpdate], Mapping[str, str]] | None = None,
        *,
        managed: Collection[str] = (),
    ) -> list[WriteResult]:
        """One result per update, in order. ``extra`` adds non-owned mirror properties per record;
        ``managed`` names the properties whose options this program installs (owned and mirrored)."""
        results: dict[int, WriteResult] = {}
        inputs: Batch = []
        for position, update in enumerate(updates):
            try:
                props = owned_properties(update.fields, owned_map)
            except ValueError as exc:
                results[position] = WriteResult(update.external_id, False, "NOT_OWNED", str(exc))
                continue
            if extra:
                props.update(extra(update))
            inputs.append((position, {"id": str(update.external_id), "properties": props}))
        self._refuse_known(hs_object, inputs, set(managed) | set(owned_map.values()))
        batches = [inputs[i : i + self.batch_size] for i in range(0, len(inputs), self.batch_size)]
        for answers in self._send_all(hs_object, batches, results):
            results.update(answers)
        return [results[p] for p in range(len(updates))]

    def _refuse_known(self, hs_object: str, inputs: Batch, managed: set[str]) -> None:
        """Stop before sending a value the portal already refused on a property we manage."""
        with self._lock:
            refused = [(key, set(values)) for key, values in self.refused.items()]
        for (obj, name), values in refused:
            if obj != hs_object or name not in managed:
                continue
            if any(_carries(item, name, v) for _, item in inputs for v in values):
                raise ConfigError(
                    f"HubSpot {hs_object}.{name} has no option {', '.join(sorted(values))}: the portal's "
                    "options do not match the ICP's tiers; run `icp-worker fields install` to add them",
                    code="INVALID_OPTION",
                )

    def _send_all(
        self, hs_object: str, batches: list[Batch], results: dict[int, WriteResult]
    ) -> list[Answers]:
        """Every batch's answers in batch order; the batches go out ``client.concurrency()`` at a time."""
        answered: list[Answers] = []
        workers = min(len(batches), self.client.concurrency())
        if workers <= 1:
            for batch in batches:
                try:
                    answered.append(self._send_or_retryable(hs_object, batch))
                except ConnectorError as exc:
                    self._fail(exc, results, answered)
            return answered
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hubspot-write") as pool:
            futures: list[Future[Answers]] = [
                pool.submit(self._send_or_retryable, hs_object, b) for b in batches
            ]
            for future in futures:
                try:
                    answered.append(future.result())
                except ConnectorError as exc:
                    for other in futures:
                        other.cancel()  # those not started yet; the ones in flight finish
                    self._fail(exc, results, answered)
        return answered

    @staticmethod
    def _fail(exc: ConnectorError, results: dict[int, WriteResult], answered: list[Answers]) -> NoReturn:
        """Raise ``exc`` with the results of the batches before the failed one."""
        done = dict(results)
        for answers in answered:
            done.update(answers)
        exc.partial_results = [done[p] for p in sorted(done)]  # type: ignore[attr-defined]
        raise exc

    def _send_or_retryable(self, hs_object: str, batch: Batch) -> Answers:
        try:
            return self._send(hs_object, batch)
        except TransientError as exc:
            return [
                (
                    position,
                    WriteResult(item["id"], False, exc.code or "TRANSIENT", exc.message, retryable=True),
                )
                for position, item in batch
            ]

    def _send(self, hs_object: str, batch: Batch) -> Answers:
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
            return self._refused(hs_object, batch, exc)
        return self._per_input(batch, answer.body or {})

    def _refused(self, hs_object: str, batch: Batch, exc: PermanentError) -> Answers:
        """A whole-batch 400: set aside the inputs with the named values, or bisect when none is named."""
        code = exc.code or "VALIDATION_ERROR"
        if len(batch) == 1 or "PROPERTY_DOESNT_EXIST" in exc.message:
            # A missing property fails every input alike: splitting would only cost requests.
            return [(position, WriteResult(item["id"], False, code, exc.message)) for position, item in batch]
        pairs = exc.invalid_options() if isinstance(exc, InvalidValuesError) else set()
        aside: Answers = []
        rest: Batch = []
        for position, item in batch:
            bad = sorted((name, value) for name, value in pairs if _carries(item, name, value))
            if bad:
                text = "; ".join(f"{name}: {value} is not one of the portal's options" for name, value in bad)
                aside.append((position, WriteResult(item["id"], False, code, f"{text} ({exc.message})")))
            else:
                rest.append((position, item))
        if aside:
            with self._lock:
                for name, value in pairs:
                    self.refused.setdefault((hs_object, name), set()).add(value)
            log.warning(
                "hubspot: %s refused %d of %d inputs for invalid options %s; sending the rest",
                hs_object,
                len(aside),
                len(batch),
                sorted(pairs),
            )
            return aside + (self._send(hs_object, rest) if rest else [])
        middle = len(batch) // 2
        with self._lock:
            self.split_requests += 2
        log.info("hubspot: batch of %d %s refused (%s); splitting", len(batch), hs_object, exc.code)
        return self._send(hs_object, batch[:middle]) + self._send(hs_object, batch[middle:])

    @staticmethod
    def _per_input(batch: Batch, body: dict[str, Any]) -> Answers:
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
