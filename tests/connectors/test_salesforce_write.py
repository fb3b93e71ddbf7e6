"""Salesforce write-back against the fake: sObject Collections in 200s, per-record results, lock
retries, renewed sessions, owned fields only."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from connectors.base import FitUpdate
from connectors.errors import ConfigError, MissingFieldsError, TransientError
from connectors.salesforce.write import to_field_value
from testing.salesforce import FakeSalesforce


@pytest.fixture
def fake():
    with FakeSalesforce() as f:
        f.add_owned_fields()
        yield f


def fit(record_id: str, score: int = 72, **extra) -> FitUpdate:
    return FitUpdate(
        record_id,
        {
            "fit_score": score,
            "fit_tier": "good",
            "fit_reasons": "industry +30",
            "icp_version": 3,
            "scored_at": "2026-11-23T02:00:00+00:00",
            "reengage_flag": False,
            "reengage_reason": "",
            **extra,
        },
    )


def accounts(fake, n: int) -> list[str]:
    return fake.insert("Account", ({"Name": f"A{i}"} for i in range(n)))


def write_requests(fake):
    return [r for r in fake.log if r.kind == "write"]


def test_writes_go_in_collections_of_at_most_200(fake):
    ids = accounts(fake, 450)
    connector = fake.connector()
    results = connector.write("account", [fit(i) for i in ids])
    assert [r.ok for r in results] == [True] * 450
    assert [r.external_id for r in results] == ids
    calls = write_requests(fake)
    # The requests of one call go out in parallel: they arrive in any order.
    assert sorted((c.method, c.records) for c in calls) == [("PATCH", 50), ("PATCH", 200), ("PATCH", 200)]
    assert len(calls) == math.ceil(450 / 200)
    assert connector.write_batch_size == 200
    row = fake.record("Account", ids[0])
    assert (row["ICP_Fit_Score__c"], row["ICP_Fit_Tier__c"], row["ICP_Version__c"]) == (72, "good", 3)
    assert row["ICP_Scored_At__c"] == "2026-11-23T02:00:00.000Z"
    assert row["ICP_Reengage__c"] is False
    assert connector.usage().calls["write"] == 3


def test_per_record_errors_come_back_in_order_and_others_are_written(fake):
    ids = accounts(fake, 5)
    fake.reject_records(
        {ids[1]: ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Tier must be set", ["ICP_Fit_Tier__c"])}
    )
    fake.delete("Account", [ids[3]])
    results = fake.connector().write("account", [fit(i) for i in ids])
    assert [r.ok for r in results] == [True, False, True, False, True]
    assert results[1].error_code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert results[1].error_message == "Tier must be set (fields: ICP_Fit_Tier__c)"
    assert (results[3].error_code, results[3].retryable) == ("ENTITY_IS_DELETED", False)
    assert fake.record("Account", ids[1])["ICP_Fit_Score__c"] is None
    assert fake.record("Account", ids[4])["ICP_Fit_Score__c"] == 72


def test_locked_rows_are_retried_within_the_run(fake):
    ids = accounts(fake, 300)
    fake.lock_records(ids[10:13], times=1)
    connector = fake.connector(lock_retry_wait=1.5)
    sleeps: list[float] = []
    connector.client.sleep = sleeps.append
    results = connector.write("account", [fit(i) for i in ids])
    assert all(r.ok for r in results)
    sent = [c.records for c in write_requests(fake)]
    assert sorted(sent[:2]) == [100, 200] and sent[2:] == [3]  # the retry round comes after the first
    assert sleeps == [1.5]


def test_rows_still_locked_come_back_retryable(fake):
    ids = accounts(fake, 4)
    fake.lock_records([ids[2]], times=10)
    results = fake.connector(lock_retries=2).write("account", [fit(i) for i in ids])
    assert [r.ok for r in results] == [True, True, False, True]
    assert (results[2].error_code, results[2].retryable) == ("UNABLE_TO_LOCK_ROW", True)
    assert [c.records for c in write_requests(fake)] == [4, 1, 1]


def test_session_expiry_mid_write_is_renewed(fake):
    ids = accounts(fake, 1000)
    connector = fake.connector()
    connector.check_fields(["account"])  # logs in and describes
    fake.expire_sessions(after=2)
    results = connector.write("account", [fit(i) for i in ids])
    assert all(r.ok for r in results)
    assert fake.calls["auth"] == 2
    assert sum(c.records for c in write_requests(fake) if c.status == 200) == 1000


def test_5xx_on_a_write_is_retried_and_nothing_is_lost(fake):
    ids = accounts(fake, 400)
    connector = fake.connector()
    fake.fail_next(2, status=500, path="/composite/sobjects")
    results = connector.write("account", [fit(i, score=90) for i in ids])
    assert all(r.ok for r in results)
    assert all(fake.record("Account", i)["ICP_Fit_Score__c"] == 90 for i in ids)


def test_retries_give_up_as_a_transient_error_with_partial_results(fake):
    ids = accounts(fake, 300)
    connector = fake.connector(max_attempts=2, max_concurrency=1)  # in flight: test_salesforce_concurrency
    fake.fail_next(5, status=503, path="/composite/sobjects", after=1)
    with pytest.raises(TransientError) as info:
        connector.write("account", [fit(i) for i in ids])
    assert [r.ok for r in info.value.partial_results] == [True] * 200  # type: ignore[attr-defined]


def test_missing_owned_fields_refuse_to_write():
    with FakeSalesforce() as fake:
        ids = accounts(fake, 2)
        connector = fake.connector()
        with pytest.raises(MissingFieldsError) as info:
            connector.write("account", [fit(i) for i in ids])
        assert "Account.ICP_Fit_Score__c" in info.value.missing
        assert "fields install" in str(info.value)
        assert write_requests(fake) == []


def test_only_owned_fields_are_written(fake):
    ids = accounts(fake, 1)
    with pytest.raises(ConfigError, match="Name"):
        fake.connector().write("account", [FitUpdate(ids[0], {"Name": "hijack"})])


def test_custom_owned_names_and_long_text_is_cut(fake):
    fake.add_owned_fields(
        ["Lead"],
        names={
            "fit_score": "Fit__c",
            "fit_tier": "Tier__c",
            "fit_reasons": "Why__c",
            "icp_version": "V__c",
            "scored_at": "At__c",
            "reengage_flag": "Re__c",
            "reengage_reason": "ReWhy__c",
        },
    )
    lead = fake.insert("Lead", [{"LastName": "Silva", "Company": "Globex"}])[0]
    connector = fake.connector(owned_fields={"fit_score": "Fit__c", "fit_reasons": "Why__c"})
    result = connector.write("lead", [FitUpdate(lead, {"fit_score": "88", "fit_reasons": "x" * 300})])[0]
    assert result.ok, result
    row = fake.record("Lead", lead)
    assert row["Fit__c"] == 88 and len(row["Why__c"]) == 255 and row["Why__c"].endswith("…")


def test_value_conversion_follows_describe():
    assert (
        to_field_value(datetime(2026, 11, 23, 2, tzinfo=UTC), {"type": "datetime"})
        == "2026-11-23T02:00:00.000Z"
    )
    assert to_field_value("2026-11-23T03:00:00+01:00", {"type": "datetime"}) == "2026-11-23T02:00:00.000Z"
    assert to_field_value("7", {"type": "double"}) == 7
    assert to_field_value(True, {"type": "double"}) == 1
    assert to_field_value("yes", {"type": "boolean"}) is True
    assert to_field_value(["a", "b"], {"type": "textarea", "length": 255}) == "a\nb"
    assert to_field_value(None, {"type": "string"}) is None
