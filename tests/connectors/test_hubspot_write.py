"""HubSpot connector: write-back (batches, 207, 400 bisection, mirror), property install, tasks."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import pytest

from connectors.base import Connector, FitUpdate, FollowUpTask
from connectors.errors import QuotaExceededError
from testing.hubspot import FakeClock, FakeHubSpot, connector_for

ALL = ["account", "opportunity", "lead"]


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def fake(clock):
    with FakeHubSpot(clock=clock, requests_per_10s=1000, search_per_second=100) as server:
        yield server


def installed(fake, clock, **options):
    connector = connector_for(fake, clock, requests_per_10s=1000, search_requests_per_second=100, **options)
    connector.install_fields(ALL)
    fake.calls.clear()
    return connector


def fit(record_id, tier="best", score=85, **more):
    return FitUpdate(str(record_id), {"fit_score": score, "fit_tier": tier, "icp_version": "3", **more})


def test_connector_satisfies_the_protocol(fake, clock):
    connector = installed(fake, clock)
    assert (
        isinstance(connector, Connector) and connector.crm == "hubspot" and connector.write_batch_size == 100
    )


def test_write_in_batches_of_100(fake, clock):
    ids = fake.seed("companies", [{"name": f"c{i}"} for i in range(250)])
    connector = installed(fake, clock)
    writes_before = connector.usage().calls["write"]
    scored_at = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    results = connector.write(
        "account",
        [fit(i, scored_at=scored_at, fit_reasons=["a: +30", "b: +25"], reengage_flag=False) for i in ids],
    )
    assert [r.external_id for r in results] == ids and all(r.ok for r in results)
    assert fake.calls["batch_update:companies"] == math.ceil(250 / 100)
    stored = fake.get("companies", ids[0])
    assert stored["icp_fit_score"] == "85" and stored["icp_fit_tier"] == "best"
    assert (
        stored["icp_scored_at"] == "2026-11-23T02:00:00.000Z"
        and stored["icp_fit_reasons"] == "a: +30\nb: +25"
    )
    assert stored["icp_reengage"] == "false"
    assert connector.usage().calls["write"] - writes_before == 3


def test_multi_status_gives_per_record_results(fake, clock):
    ids = fake.seed("deals", [{"dealname": f"d{i}"} for i in range(5)])
    connector = installed(fake, clock)
    updates = [fit(ids[0]), fit("999999"), fit(ids[1]), fit("888888")]
    results = connector.write("opportunity", updates)
    assert [r.ok for r in results] == [True, False, True, False]
    assert results[1].error_code == "OBJECT_NOT_FOUND" and not results[1].retryable
    assert fake.calls["batch_update:deals"] == 1
    assert fake.get("deals", ids[1])["icp_fit_tier"] == "best"


def test_whole_batch_400_is_split_until_the_bad_record_is_found(fake, clock):
    ids = fake.seed("companies", [{"name": f"c{i}"} for i in range(100)])
    connector = installed(fake, clock)
    updates = [fit(i) for i in ids]
    updates[37] = fit(ids[37], tier="platinum")  # not an option of the tier property
    results = connector.write("account", updates)
    assert [r.ok for r in results].count(False) == 1 and not results[37].ok
    assert results[37].error_code == "VALIDATION_ERROR" and "platinum" in results[37].error_message
    assert all(fake.get("companies", i).get("icp_fit_tier") == "best" for n, i in enumerate(ids) if n != 37)
    assert fake.get("companies", ids[37]).get("icp_fit_tier") in (None, "")
    assert fake.calls["batch_update:companies"] <= 1 + 2 * math.ceil(math.log2(100))


def test_per_input_validation_errors_as_multi_status(clock):
    with FakeHubSpot(clock=clock, enum_errors="multi_status") as fake:
        ids = fake.seed("companies", [{"name": f"c{i}"} for i in range(10)])
        connector = installed(fake, clock)
        updates = [fit(i) for i in ids]
        updates[4] = fit(ids[4], tier="platinum")
        results = connector.write("account", updates)
        assert [r.ok for r in results].count(False) == 1 and results[4].error_code == "VALIDATION_ERROR"
        assert fake.calls["batch_update:companies"] == 1


def test_fields_that_are_not_owned_are_refused(fake, clock):
    ids = fake.seed("companies", [{"name": "c"}, {"name": "d"}])
    connector = installed(fake, clock)
    results = connector.write("account", [FitUpdate(ids[0], {"name": "Hacked"}), fit(ids[1])])
    assert results[0].error_code == "NOT_OWNED" and results[1].ok
    assert fake.get("companies", ids[0])["name"] == "c"


def test_daily_quota_mid_write_keeps_partial_results(fake, clock):
    ids = fake.seed("companies", [{"name": f"c{i}"} for i in range(300)])
    # One request at a time, so that the second request is the second batch (in parallel see below).
    connector = installed(fake, clock, max_concurrency=1)
    connector.write("account", [fit(ids[0])])  # warm up (no property reads in the middle)

    class Second:
        n = 0

    original = fake.handle

    def handle(method, path, headers, body):
        if "/batch/update" in path:
            Second.n += 1
            if Second.n == 2:
                fake.inject("daily_429", path="/batch/update")
        return original(method, path, headers, body)

    fake.handle = handle
    with pytest.raises(QuotaExceededError) as err:
        connector.write("account", [fit(i) for i in ids])
    assert [r.ok for r in err.value.partial_results] == [True] * 100


def test_transient_batch_failure_is_reported_retryable(fake, clock):
    ids = fake.seed("companies", [{"name": f"c{i}"} for i in range(150)])
    # One request at a time: both injected 503s hit the first batch (its try and its one retry).
    connector = installed(fake, clock, max_attempts=2, max_concurrency=1)
    fake.inject("status", path="/batch/update", status=503, times=2)
    results = connector.write("account", [fit(i) for i in ids])
    assert all(r.retryable and not r.ok for r in results[:100]) and all(r.ok for r in results[100:])


def test_dropped_batch_update_is_retried(fake, clock):
    ids = fake.seed("companies", [{"name": f"c{i}"} for i in range(20)])
    connector = installed(fake, clock)
    fake.inject("drop", path="/batch/update")
    assert all(r.ok for r in connector.write("account", [fit(i) for i in ids]))


# -- mirror of the tier into hs_ideal_customer_profile ----------------------------------------------


def test_tier_mirrored_to_ideal_customer_profile(fake, clock):
    ids = fake.seed("companies", [{"name": f"c{i}"} for i in range(5)])
    connector = installed(fake, clock, mirror_ideal_customer_profile=True)
    tiers = ["best", "good", "poor", "disqualified", "insufficient_data"]
    results = connector.write("account", [fit(i, tier=t) for i, t in zip(ids, tiers, strict=True)])
    assert all(r.ok for r in results)
    mirrored = [fake.get("companies", i).get("hs_ideal_customer_profile") for i in ids]
    assert mirrored == ["tier_1", "tier_2", "tier_3", "", ""]


def test_mirror_uses_only_the_options_the_portal_has(fake, clock):
    prop = fake.schema["companies"]["hs_ideal_customer_profile"]
    prop["options"] = [
        {"label": "Ideal", "value": "ideal", "displayOrder": 0},
        {"label": "Close", "value": "close", "displayOrder": 1},
    ]
    ids = fake.seed("companies", [{"name": f"c{i}"} for i in range(3)])
    connector = installed(fake, clock, mirror_ideal_customer_profile=True)
    results = connector.write("account", [fit(ids[0], "best"), fit(ids[1], "good"), fit(ids[2], "poor")])
    assert all(r.ok for r in results)
    assert [fake.get("companies", i).get("hs_ideal_customer_profile") for i in ids] == ["ideal", "close", ""]


def test_no_mirror_on_deals_or_when_disabled(fake, clock):
    deal = fake.seed("deals", [{"dealname": "d"}])[0]
    company = fake.seed("companies", [{"name": "c"}])[0]
    connector = installed(fake, clock, mirror_ideal_customer_profile=True)
    assert connector.write("opportunity", [fit(deal)])[0].ok
    plain = installed(fake, clock)
    assert plain.write("account", [fit(company)])[0].ok
    assert not fake.get("companies", company).get("hs_ideal_customer_profile")


# -- property install -------------------------------------------------------------------------------


def test_check_then_install_then_nothing_more(fake, clock):
    connector = connector_for(fake, clock)
    missing = connector.check_fields(ALL)
    assert "companies.icp_fit_score" in missing and "deals.icp_reengage" in missing
    assert "contacts.icp_fit_tier" in missing and "tasks.icp_task_key" in missing
    assert len(missing) == 3 * 7 + 1
    created = connector.install_fields(ALL)
    assert sorted(created) == sorted(missing)
    assert connector.check_fields(ALL) == []
    writes = fake.calls["properties_write"] + fake.calls["groups_write"]
    assert connector.install_fields(ALL) == []
    assert fake.calls["properties_write"] + fake.calls["groups_write"] == writes
    tier = fake.schema["companies"]["icp_fit_tier"]
    assert tier["type"] == "enumeration" and [o["value"] for o in tier["options"]] == [
        "best",
        "good",
        "poor",
        "disqualified",
        "insufficient_data",
    ]
    assert fake.schema["companies"]["icp_fit_score"]["type"] == "number"
    assert fake.schema["companies"]["icp_fit_reasons"]["fieldType"] == "textarea"
    assert fake.schema["companies"]["icp_fit_score"]["groupName"] == "icp_fit"
    assert "icp_fit" in fake.groups["companies"]


def test_install_adds_new_icp_tiers_to_the_enumeration(fake, clock):
    connector = connector_for(fake, clock)
    connector.install_fields(["account"])
    tiers = ("platinum", "best", "good", "poor", "disqualified", "insufficient_data")
    assert connector.install_fields(["account"], tiers=tiers) == ["companies.icp_fit_tier:platinum"]
    assert connector.check_fields(["account"]) == []
    values = [o["value"] for o in fake.schema["companies"]["icp_fit_tier"]["options"]]
    assert values[-1] == "platinum" and len(values) == 6


def test_check_reports_missing_tier_options(fake, clock):
    connector = connector_for(fake, clock)
    connector.install_fields(["account"])
    other = connector_for(fake, clock, tiers=["gold", "best"], follow_up_tasks=False)
    assert other.check_fields(["account"]) == ["companies.icp_fit_tier:gold"]


def test_renamed_owned_properties(fake, clock):
    connector = connector_for(
        fake, clock, owned_properties={"fit_score": "acme_fit"}, property_group="acme", follow_up_tasks=False
    )
    created = connector.install_fields(["account"])
    assert "companies.acme_fit" in created and "companies.icp_fit_score" not in created
    assert fake.schema["companies"]["acme_fit"]["groupName"] == "acme"


# -- follow-up tasks --------------------------------------------------------------------------------


def task(key, record_id, object_type="account", owner="42"):
    return FollowUpTask(
        key=key,
        object_type=object_type,
        external_id=str(record_id),
        owner_id=owner,
        subject="Re-engage: now fits the ICP",
        description="poor -> best under ICP v3",
        due_date=date(2026, 12, 1),
    )


def test_tasks_created_once_with_associations(fake, clock):
    company = fake.seed("companies", [{"name": "c"}])[0]
    deal = fake.seed("deals", [{"dealname": "d"}])[0]
    contact = fake.seed("contacts", [{"email": "a@b.c"}])[0]
    connector = installed(fake, clock)
    tasks = [
        task("flag-1", company),
        task("flag-2", deal, "opportunity"),
        task("flag-3", contact, "lead", None),
    ]
    results = connector.create_tasks(tasks)
    assert all(r.ok and not r.existed and r.task_id for r in results)
    stored = {t["icp_task_key"]: t for t in fake.records("tasks")}
    assert (
        stored["flag-1"]["hubspot_owner_id"] == "42" and stored["flag-1"]["hs_task_status"] == "NOT_STARTED"
    )
    assert stored["flag-1"]["hs_timestamp"] == "2026-12-01T00:00:00.000Z"
    assert "hubspot_owner_id" not in stored["flag-3"]
    links = {key: fake.associations[("tasks", int(t["hs_object_id"]))] for key, t in stored.items()}
    assert links["flag-1"] == {("companies", int(company)): {192}}
    assert links["flag-2"] == {("deals", int(deal)): {216}}
    assert links["flag-3"] == {("contacts", int(contact)): {204}}
    again = connector.create_tasks(tasks + [task("flag-1", company)])
    assert all(r.ok and r.existed for r in again) and len(again) == 4
    assert fake.count("tasks") == 3


def test_task_creation_survives_a_crash_after_creating(fake, clock):
    company = fake.seed("companies", [{"name": "c"}])[0]
    connector = installed(fake, clock)
    fake.inject("drop_after", path="/crm/v3/objects/tasks/batch/create")
    first = connector.create_tasks([task("flag-9", company)])
    assert not first[0].ok and "retried next run" in first[0].error  # created, but the answer was lost
    assert fake.count("tasks") == 1 and fake.calls["batch_create:tasks"] == 1
    rerun = installed(fake, clock).create_tasks([task("flag-9", company)])  # a new process, next run
    assert rerun[0].ok and rerun[0].existed and fake.count("tasks") == 1


def test_task_on_leads_object_needs_an_association_type(fake, clock):
    connector = installed(fake, clock, lead_object="lead")
    result = connector.create_tasks([task("k", "1", "lead")])[0]
    assert not result.ok and "task_association_type_ids" in result.error
