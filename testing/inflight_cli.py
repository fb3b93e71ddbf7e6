"""``python -m testing.inflight_cli <icp-worker arguments>``: the ``icp-worker`` command, unchanged but for
one thing: with ``INFLIGHT_SF_PORT`` set, every Salesforce connection talks to the fake Salesforce on
``127.0.0.1:$INFLIGHT_SF_PORT`` (``testing.inflight.routed_session``) instead of Salesforce's hosts.

A test can then run a real sync in its own process against a fake it holds in the test process, and
kill that process mid-write (``tests/integration/test_inflight_faults.py``). HubSpot needs no such
help: its ``host`` option points at the fake.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from connectors.registry import build_connector as real_build_connector
from worker import jobs

__all__ = ["build_connector"]


def build_connector(crm: str, options: Mapping[str, Any], *, env_prefix: str,
                    env: Mapping[str, str] | None = None, limiter: Any = None) -> Any:  # fmt: skip
    port = os.environ.get("INFLIGHT_SF_PORT")
    if crm != "salesforce" or not port:
        return real_build_connector(crm, options, env_prefix=env_prefix, env=env, limiter=limiter)
    from connectors.salesforce import SalesforceConnector
    from testing.inflight import routed_session

    return SalesforceConnector.from_config(
        dict(options), env_prefix=env_prefix, env=os.environ if env is None else env,
        session=routed_session(int(port)),
    )  # fmt: skip


jobs.build_connector = build_connector  # type: ignore[assignment]

if __name__ == "__main__":
    from worker.cli.app import main

    main()
