"""Salesforce pull against the fake: SOQL by SystemModstamp with a look-back, 2,000-record pages,
laziness, mapping checks, and recovery from expired sessions, 5xx and dropped query cursors."""

from __future__ import annotations

import inspect
import logging
import math
from datetime import UTC, date, datetime, timedelta

import pytest

from connectors.base import CrmRecord
from connectors.errors import ConfigError, MissingFieldsError
from connectors.salesforce.mapping import build_mapping, missing_fields, to_crm_record
from connectors.salesforce.pull import build_pull_query
from testing.salesforce import FakeSalesforce

START = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def fake():
    with FakeSalesforce() as f:
        f.add_field("Account", "Tech_Stack__c", "multipicklist", 4099)
        yield f


def seed_accounts(fake, n: int) -> list[str]:
    """``n`` accounts, one minute apart from START."""
    return fake.insert(
        "Account",
        (
            {
                "Name": f"Acme {i}",
                "Industry": "Software",
                "NumberOfEmployees": 100 + i,
                "BillingCountry": "USA",
                "Tech_Stack__c": "Okta;Slack",
                "SystemModstamp": START + timedelta(minutes=i),
            }
            for i in range(n)
        ),
    )


def reads(fake) -> int:
    return fake.calls["read"]


def test_full_pull_pages_of_2000_in_modstamp_order(fake):
    seed_accounts(fake, 4500)
    connector = fake.connector(fields={"account": {"Tech_Stack__c": "tech_stack"}})
    pages = list(connector.pull("account", None))
    assert [len(p.records) for p in pages] == [2000, 2000, 500]
    assert reads(fake) == math.ceil(4500 / 2000)
    assert fake.calls["describe"] == 1
    stamps = [r.modstamp for p in pages for r in p.records]
    assert stamps == sorted(stamps)
    assert pages[0].cursor == pages[0].records[-1].modstamp == "2025-01-02T09:19:00.000Z"
    first = pages[0].records[0]
    assert first.raw == {
        "industry": "Software",
        "employees": 100,
        "annual_revenue": None,
        "country": "USA",
        "state": None,
        "tech_stack": "Okta;Slack",
    }
    soql = fake.calls_of("read")[0].soql
    assert soql is not None
    assert soql.endswith("FROM Account ORDER BY SystemModstamp ASC, Id ASC")
    assert "Tech_Stack__c" in soql


def test_incremental_pull_uses_the_look_back_and_returns_changes(fake):
    ids = seed_accounts(fake, 30)
    connector = fake.connector()
    cursor = list(connector.pull("account", None))[-1].cursor
    assert cursor == "2025-01-01T00:29:00.000Z"
    fake.modify("Account", {ids[0]: {"NumberOfEmployees": 5000}, ids[1]: {"Industry": "SaaS"}})
    pages = list(connector.pull("account", cursor))
    pulled = [r.external_id for p in pages for r in p.records]
    # Five minutes of look-back: the records stamped 00:24 .. 00:29, then the two just changed.
    assert pulled == ids[24:30] + ids[:2]
    assert pages[-1].records[-1].raw["employees"] == 5000 or pages[-1].records[-1].raw["industry"] == "SaaS"
    soql = fake.calls_of("read")[-1].soql
    assert soql is not None and "WHERE SystemModstamp >= 2025-01-01T00:24:00+00:00" in soql
    tight = fake.connector(lookback_seconds=0)
    assert [r.external_id for p in tight.pull("account", cursor) for r in p.records] == [ids[29], *ids[:2]]


def test_incremental_read_calls_are_bounded_by_pages(fake):
    ids = seed_accounts(fake, 5000)
    connector = fake.connector()
    cursor = list(connector.pull("account", None))[-1].cursor
    fake.reset_counts()
    fake.modify("Account", {i: {"Name": "x"} for i in ids[:4100]})
    pulled = sum(len(p.records) for p in connector.pull("account", cursor))
    assert pulled == 4100 + 6
    assert reads(fake) == math.ceil(pulled / 2000)


def test_pull_is_lazy(fake):
    seed_accounts(fake, 4500)
    connector = fake.connector()
    pages = connector.pull("account", None)
    assert inspect.isgenerator(pages)
    assert reads(fake) == 0
    first = next(pages)
    assert len(first.records) == 2000 and reads(fake) == 1
    next(pages)
    assert reads(fake) == 2
    pages.close()
    assert reads(fake) == 2


def test_page_size_option_sets_the_batch(fake):
    seed_accounts(fake, 900)
    connector = fake.connector(page_size=400)
    assert [len(p.records) for p in connector.pull("account", None)] == [400, 400, 100]


def test_mapping_check_lists_every_missing_field_at_once(fake):
    fake.add_field("Account", "Secret__c", hidden=True)  # exists, hidden by field-level security
    connector = fake.connector(
        fields={
            "account": {"Tech_Stack__c": "tech_stack", "Secret__c": "secret", "Funding__c": "funding_stage"},
            "lead": {"Founded__c": "founded_year"},
        }
    )
    connector.check_fields(["account", "lead", "opportunity"])
    with pytest.raises(MissingFieldsError) as info:
        next(connector.pull("account", None))
    assert info.value.missing == ["Account.Secret__c", "Account.Funding__c", "Lead.Founded__c"]
    assert "Lead.Founded__c" in str(info.value)
    assert reads(fake) == 0
    assert fake.calls["describe"] == 3  # one per object, shared with check_fields


def test_mapping_can_drop_a_default_and_field_names_are_case_blind(fake):
    seed_accounts(fake, 1)
    connector = fake.connector(fields={"account": {"billingstate": None, "tech_stack__C": "tech_stack"}})
    record = next(connector.pull("account", None)).records[0]
    assert "state" not in record.raw and record.raw["tech_stack"] == "Okta;Slack"


def test_records_carry_status_keys_and_canonical_names(fake):
    account_id = fake.insert(
        "Account", [{"Name": "Acme", "Type": "Customer - Direct", "LastActivityDate": "2026-10-01"}]
    )[0]
    fake.insert(
        "Opportunity",
        [
            {
                "Name": "Acme - New",
                "AccountId": account_id,
                "StageName": "Closed Won",
                "IsClosed": True,
                "IsWon": True,
                "Amount": 12000.0,
                "CloseDate": "2026-03-31",
            }
        ],
    )
    fake.insert(
        "Lead",
        [
            {
                "FirstName": "Ana",
                "LastName": "Silva",
                "Company": "Globex",
                "Status": "Unqualified",
                "IsConverted": False,
                "Country": "Deutschland",
                "NumberOfEmployees": 1200,
            }
        ],
    )
    connector = fake.connector(customer_field="Type")
    account = next(connector.pull("account", None)).records[0]
    assert account.status == {"is_customer": True}
    assert (account.name, account.last_activity) == ("Acme", date(2026, 10, 1))
    assert account.owner_id == fake.user_id
    opp = next(connector.pull("opportunity", None)).records[0]
    assert opp.status == {
        "account_id": account_id,
        "stage": "Closed Won",
        "is_closed": True,
        "is_won": True,
        "amount": 12000.0,
        "close_date": date(2026, 3, 31),
    }
    lead = next(connector.pull("lead", None)).records[0]
    assert lead.status == {"lead_status": "Unqualified", "is_converted": False}
    assert (
        lead.raw["company"] == "Globex" and lead.raw["country"] == "Deutschland" and lead.name == "Ana Silva"
    )
    assert lead.modstamp.endswith("Z")


def test_session_expiry_mid_pull_is_renewed(fake):
    seed_accounts(fake, 4500)
    connector = fake.connector()
    pages = connector.pull("account", None)
    first = next(pages)
    fake.expire_sessions()
    rest = list(pages)
    ids = [r.external_id for p in (first, *rest) for r in p.records]
    assert len(ids) == len(set(ids)) == 4500
    assert fake.calls["auth"] == 2


def test_5xx_and_dropped_connections_mid_pull_are_retried(fake):
    seed_accounts(fake, 4500)
    connector = fake.connector()
    sleeps: list[float] = []
    connector.client.sleep = sleeps.append
    pages = connector.pull("account", None)
    next(pages)
    fake.fail_next(2, status=503)
    fake.drop_next(1, after=2)
    assert sum(len(p.records) for p in pages) == 2500
    assert len(sleeps) == 3


def test_an_expired_query_cursor_resumes_without_duplicates_or_gaps(fake, caplog):
    ids = fake.insert(
        "Account",
        ({"Name": f"A{i}", "SystemModstamp": START + timedelta(seconds=i // 3)} for i in range(4500)),
    )  # three records share each stamp
    connector = fake.connector(page_size=1000)
    pages = connector.pull("account", None)
    seen = [r.external_id for r in next(pages).records]
    fake.invalidate_query_locators()
    with caplog.at_level(logging.WARNING):
        for page in pages:
            seen += [r.external_id for r in page.records]
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    assert "expired; re-querying" in caplog.text


def test_unknown_object_type_is_a_config_error(fake):
    with pytest.raises(ConfigError, match="unknown object type"):
        next(fake.connector().pull("contact", None))  # type: ignore[arg-type]


def test_pull_query_quotes_through_format_soql():
    mapping = build_mapping("lead", {"Tech_Stack__c": "tech_stack"})
    soql = build_pull_query(mapping, datetime(2026, 11, 23, 1, 55, 0, 123456, tzinfo=UTC))
    assert soql == (
        "SELECT Id, SystemModstamp, Name, OwnerId, LastActivityDate, Status, IsConverted, Company, Industry, "
        "NumberOfEmployees, AnnualRevenue, Country, State, Tech_Stack__c FROM Lead WHERE SystemModstamp >= "
        "2026-11-23T01:55:00+00:00 ORDER BY SystemModstamp ASC, Id ASC"
    )


def test_row_mapping_is_pure():
    mapping = build_mapping("account", customer_field="Type", customer_values=["Customer - Direct"])
    row = {
        "Id": "001x",
        "SystemModstamp": "2026-11-23T02:00:00.000+0000",
        "Name": "Acme",
        "OwnerId": "005x",
        "LastActivityDate": None,
        "Type": "Prospect",
        "Industry": "n/a",
        "NumberOfEmployees": None,
    }
    assert to_crm_record(mapping, row) == CrmRecord(
        "account",
        "001x",
        {"industry": "n/a", "employees": None, "annual_revenue": None, "country": None, "state": None},
        {"is_customer": False},
        "Acme",
        "005x",
        None,
        "2026-11-23T02:00:00.000Z",
    )
    assert missing_fields(mapping, [{"name": "Id"}, {"name": "Name"}])[:2] == [
        "Account.SystemModstamp",
        "Account.OwnerId",
    ]
