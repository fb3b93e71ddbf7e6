"""The CRMs ``benchmarks.sync`` runs against: the files connector on a generated folder, and the fake
Salesforce and HubSpot servers of ``testing`` seeded with a messy org (``testing.*_seed``).

Each backend is built by ``BACKENDS[crm](workdir, accounts, latency_ms)``. ``latency_ms`` holds back every
answer of a fake CRM by that many milliseconds of real time (a round trip to a real CRM is 100-300 ms).

HubSpot paces itself at the portal's rate (100 requests per 10 s here). Without latency the fake and the
connector share one ``FakeClock``, so pacing costs no wall time (figures are about our own work); with
latency both run on the real clock, so the wall time includes every wait the rate limit imposes and can
be compared with the rate-limit bound (calls / allowed rate).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from connectors.base import OBJECT_TYPES, Connector
from worker.config import ConnectionConfig
from worker.demo.sample_crm import DEMO_SYNONYMS

#: The fake HubSpot portal's rolling limit (requests per 10 seconds): the Free/Starter tier.
HUBSPOT_REQUESTS_PER_10S = 100


@dataclass
class Backend:
    """A CRM for the harness: how to connect to it, change 1% of it, and stop it."""

    connection: ConnectionConfig
    make_connector: Callable[[], Connector]
    change_one_percent: Callable[[], int]
    close: Callable[[], None]
    #: Requests per second the CRM allows (HubSpot's rolling window), for the rate-limit bound.
    allowed_rate: float | None = None


def files_backend(workdir: Path, accounts: int, latency_ms: float = 0.0) -> Backend:
    """The files connector (``latency_ms`` does not apply: it reads and writes local files)."""
    from connectors.files import FilesConnector
    from worker.demo.sample_crm import touch_sample_crm, write_sample_crm

    today = date(2026, 11, 23)
    write_sample_crm(workdir / "crm", accounts=accounts, today=today)
    options = {"path": str(workdir / "crm"), "out": str(workdir / "reimport")}
    cfg = ConnectionConfig(name="bench", crm="files", options=options, industry_synonyms=DEMO_SYNONYMS)
    return Backend(
        connection=cfg,
        make_connector=lambda: FilesConnector.from_config(options),
        change_one_percent=lambda: touch_sample_crm(
            workdir / "crm", share=0.01, modified_at=datetime(2026, 11, 23, 1, 0)
        ),
        close=lambda: None,
    )


def salesforce_backend(workdir: Path, accounts: int, latency_ms: float = 0.0) -> Backend:
    """The fake Salesforce, seeded, with the owned fields installed through the connector."""
    from connectors.salesforce import SalesforceConnector
    from testing.salesforce import FakeSalesforce
    from testing.salesforce_seed import mutate_salesforce, seed_salesforce

    fake = FakeSalesforce().start()
    seed_salesforce(fake, accounts, rng_seed=7)
    options: dict[str, Any] = {
        "auth": "password",
        "fields": {"account": {"Tech_Stack__c": "tech_stack"}, "lead": {"Tech_Stack__c": "tech_stack"}},
        "customer_field": "Type",
    }
    cfg = ConnectionConfig(
        name="bench-sf", crm="salesforce", options=options, industry_synonyms=DEMO_SYNONYMS
    )
    env = fake.env(cfg.env_prefix or "", "password")

    def make_connector() -> SalesforceConnector:
        return SalesforceConnector.from_config(
            options, env_prefix=cfg.env_prefix or "", env=env, session=fake.session()
        )

    installer = make_connector()
    installer.install_fields(list(OBJECT_TYPES))
    installer.close()
    fake.reset_counts()
    fake.latency = latency_ms / 1000.0
    return Backend(
        connection=cfg,
        make_connector=make_connector,
        change_one_percent=lambda: mutate_salesforce(fake, share=0.01, rng_seed=11),
        close=fake.stop,
    )


def hubspot_backend(workdir: Path, accounts: int, latency_ms: float = 0.0) -> Backend:
    """The fake HubSpot portal, seeded; one pacer for every connector of the run (they stand for the
    workers of one portal, as the shared Redis limiter makes them)."""
    from connectors.hubspot.ratelimit import RequestPacer
    from testing.hubspot import FakeClock, FakeHubSpot, connector_for
    from testing.hubspot_seed import change_share, seed_hubspot

    clock = FakeClock()
    real_time = latency_ms > 0
    fake = FakeHubSpot(clock=None if real_time else clock, requests_per_10s=HUBSPOT_REQUESTS_PER_10S).start()
    seed_hubspot(fake, accounts, rng_seed=7)
    options = {
        "host": fake.url,
        "mirror_ideal_customer_profile": True,
        "requests_per_10s": HUBSPOT_REQUESTS_PER_10S,
    }
    if real_time:
        pacer = RequestPacer(HUBSPOT_REQUESTS_PER_10S, 5)
    else:
        pacer = RequestPacer(HUBSPOT_REQUESTS_PER_10S, 5, clock=clock.monotonic, sleep=clock.sleep)

    def make() -> Any:
        return connector_for(
            fake, None if real_time else clock, env_prefix="BENCH_", limiter=pacer, **options
        )

    make().install_fields(list(OBJECT_TYPES))
    fake.latency = latency_ms / 1000.0
    cfg = ConnectionConfig(name="bench", crm="hubspot", options=options, industry_synonyms=DEMO_SYNONYMS)
    return Backend(
        connection=cfg,
        make_connector=make,
        change_one_percent=lambda: change_share(fake, clock, 0.01),
        close=fake.stop,
        allowed_rate=HUBSPOT_REQUESTS_PER_10S / 10.0,
    )


BACKENDS: dict[str, Callable[[Path, int, float], Backend]] = {
    "files": files_backend,
    "salesforce": salesforce_backend,
    "hubspot": hubspot_backend,
}
