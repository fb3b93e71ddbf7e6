"""``HubSpotConnector``: the ``connectors.base.Connector`` protocol for one HubSpot portal.

Canonical object types map to HubSpot objects: ``account`` -> companies, ``opportunity`` -> deals,
``lead`` -> contacts (or the Leads object with ``lead_object: lead``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from connectors.base import ApiUsage, FitUpdate, FollowUpTask, ObjectType, Page, TaskResult, WriteResult
from connectors.errors import ConfigError
from connectors.hubspot.client import Credentials, HubSpotClient
from connectors.hubspot.mapping import build_mapping, format_value, hubspot_object, tier_option_map
from connectors.hubspot.options import HubSpotOptions
from connectors.hubspot.properties import IDEAL_CUSTOMER_PROFILE, PropertyManager
from connectors.hubspot.pull import Puller
from connectors.hubspot.ratelimit import RateLimiter
from connectors.hubspot.tasks import TaskCreator
from connectors.hubspot.write import BatchWriter
from connectors.registry import CRMS

log = logging.getLogger(__name__)

RESERVED_TIERS = ("disqualified", "insufficient_data")


def _options_error(exc: ValidationError) -> ConfigError:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "options"
        text = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            text = "unknown option"
        problems.append(f"{where}: {text}")
    return ConfigError("invalid HubSpot connection options: " + "; ".join(problems), code="OPTIONS")


class HubSpotConnector:
    """Pull, write, tasks and property install against one HubSpot portal."""

    crm = "hubspot"
    write_batch_size = CRMS["hubspot"].write_batch_size
    #: Object types pull at once (page chains in flight together, all under the limiter).
    parallel_pulls = True
    #: Batches per ``write`` call, sent in parallel (see ``connectors.hubspot.write``).
    WRITE_BATCHES_PER_CALL = 20
    #: ``write`` is thread-safe: the sync starts the next call while the one before is finishing.
    overlap_write_calls = True

    def __init__(
        self,
        options: HubSpotOptions,
        credentials: Credentials,
        *,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        utcnow: Callable[[], datetime] | None = None,
    ) -> None:
        self.options = options
        self.write_batch_size = options.write_batch_size
        self.records_per_write_call = options.write_batch_size * self.WRITE_BATCHES_PER_CALL
        self.client = HubSpotClient(options, credentials, limiter=limiter, clock=clock, sleep=sleep)
        self.properties = PropertyManager(self.client, options)
        self.puller = Puller(self.client, options, utcnow or (lambda: datetime.now(UTC)))
        self.writer = BatchWriter(self.client, options.write_batch_size)
        self.tasks = TaskCreator(self.client, options)
        self._mapping_checked: set[str] = set()
        self._icp_options: dict[str, str] | None = None
        self._icp_lock = threading.Lock()

    @classmethod
    def from_config(
        cls,
        options: Mapping[str, Any] | None,
        *,
        env_prefix: str,
        env: Mapping[str, str] | None = None,
        **seams: Any,
    ) -> HubSpotConnector:
        """Build from a connection's ``options`` and the environment.

        Secrets come only from ``env`` (default ``os.environ``): ``{env_prefix}HUBSPOT_ACCESS_TOKEN`` for
        a private app; ``{env_prefix}HUBSPOT_CLIENT_ID``, ``..._CLIENT_SECRET`` and ``..._REFRESH_TOKEN``
        for OAuth. ``seams`` (``limiter``, ``clock``, ``sleep``, ``utcnow``) are for tests."""
        try:
            parsed = HubSpotOptions.model_validate(dict(options or {}))
        except ValidationError as exc:
            raise _options_error(exc) from None
        credentials = Credentials.from_env(parsed.auth, env_prefix, os.environ if env is None else env)
        return cls(parsed, credentials, **seams)

    # -- fields -------------------------------------------------------------------------------------

    def check_fields(self, object_types: Sequence[ObjectType]) -> list[str]:
        return self.properties.check(object_types)

    def install_fields(
        self, object_types: Sequence[ObjectType], tiers: Sequence[str] | None = None
    ) -> list[str]:
        """Create what is missing; ``tiers`` overrides the ``tiers`` option (e.g. ``IcpSpec.tier_names``)."""
        if tiers:
            self.options = self.options.model_copy(update={"tiers": tuple(tiers)})
            self.properties.options = self.options
        return self.properties.install(object_types)

    def check_mapping(self, object_types: Sequence[ObjectType]) -> None:
        """Raise ``MissingFieldsError`` listing every mapped HubSpot property that does not exist."""
        self.properties.check_mapping(object_types)
        self._mapping_checked.update(object_types)

    # -- pull ---------------------------------------------------------------------------------------

    def pull(self, object_type: ObjectType, since: str | None) -> Iterator[Page]:
        if object_type not in self._mapping_checked:
            self.check_mapping([object_type])
        mapping = build_mapping(object_type, self.options)
        definitions = self.properties.properties_of(mapping.hubspot_object)
        return self.puller.pull(mapping.with_labels(definitions), since)

    # -- write --------------------------------------------------------------------------------------

    def _icp_option_map(self) -> dict[str, str]:
        with self._icp_lock:  # two write calls may start at once
            return self._read_icp_options()

    def _read_icp_options(self) -> dict[str, str]:
        if self._icp_options is None:
            prop = self.properties.property("companies", IDEAL_CUSTOMER_PROFILE)
            if prop is None:
                log.warning("hubspot: companies.%s does not exist; tier not mirrored", IDEAL_CUSTOMER_PROFILE)
                self._icp_options = {}
            else:
                ranked = [t for t in self.options.tiers if t not in RESERVED_TIERS]
                self._icp_options = tier_option_map(
                    self.options.tiers,
                    ranked,
                    prop.get("options") or (),
                    self.options.ideal_customer_profile_options,
                )
        return self._icp_options

    def _mirror(self, update: FitUpdate) -> dict[str, str]:
        if "fit_tier" not in update.fields:
            return {}
        options = self._icp_option_map()
        if not options:
            return {}
        tier = format_value(update.fields["fit_tier"])
        return {IDEAL_CUSTOMER_PROFILE: options.get(tier, "")}

    def write(self, object_type: ObjectType, updates: Sequence[FitUpdate]) -> list[WriteResult]:
        extra = (
            self._mirror if object_type == "account" and self.options.mirror_ideal_customer_profile else None
        )
        return self.writer.write(
            hubspot_object(object_type, self.options),
            updates,
            self.options.owned_map(),
            extra,
            managed=(IDEAL_CUSTOMER_PROFILE,) if extra else (),
        )

    # -- tasks, usage -------------------------------------------------------------------------------

    def create_tasks(self, tasks: Sequence[FollowUpTask]) -> list[TaskResult]:
        return self.tasks.create(tasks)

    def usage(self) -> ApiUsage:
        return self.client.usage

    def close(self) -> None:
        self.client.close()
