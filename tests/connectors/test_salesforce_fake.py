"""The fake Salesforce itself: the limits and bodies the connector tests rely on, over raw HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from testing.salesforce import FakeSalesforce, parse_soql

BASE = "https://acme.my.salesforce.com/services/data/v59.0"


@pytest.fixture
def fake():
    with FakeSalesforce() as f:
        yield f


@pytest.fixture
def http(fake):
    s = fake.session()
    s.headers["Authorization"] = "Bearer " + fake.new_session()
    return s


def seed(fake, n, start=datetime(2025, 1, 1, tzinfo=UTC)):
    return fake.insert(
        "Account", ({"Name": f"A{i}", "SystemModstamp": start + timedelta(minutes=i)} for i in range(n))
    )


def test_query_pages_of_2000_through_next_records_url(fake, http):
    seed(fake, 4500)
    first = http.get(f"{BASE}/query", params={"q": "SELECT Id, Name FROM Account"}).json()
    assert (first["totalSize"], first["done"], len(first["records"])) == (4500, False, 2000)
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert first["records"][0]["attributes"] == {
        "type": "Account",
        "url": f"/services/data/v59.0/sobjects/Account/{first['records'][0]['Id']}",
    }
    second = http.get("https://acme.my.salesforce.com" + first["nextRecordsUrl"]).json()
    third = http.get("https://acme.my.salesforce.com" + second["nextRecordsUrl"]).json()
    assert (len(second["records"]), len(third["records"]), third["done"]) == (2000, 500, True)
    assert "nextRecordsUrl" not in third
    ids = [r["Id"] for page in (first, second, third) for r in page["records"]]
    assert len(set(ids)) == 4500


def test_batch_size_header_is_clamped_to_200_2000(fake, http):
    seed(fake, 450)
    small = http.get(
        f"{BASE}/query",
        params={"q": "SELECT Id FROM Account"},
        headers={"Sforce-Query-Options": "batchSize=50"},
    ).json()
    assert len(small["records"]) == 200


def test_errors_have_salesforce_bodies_and_limit_header_everywhere(fake, http):
    r = http.get(f"{BASE}/query", params={"q": "SELECT Id, Nope__c FROM Account"})
    assert r.status_code == 400
    assert r.json()[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Nope__c' on entity 'Account'" in r.json()[0]["message"]
    assert r.headers["Sforce-Limit-Info"].startswith("api-usage=")
    r = http.get(f"{BASE}/query", params={"q": "SELECT Id FROM Task WHERE Description LIKE '%x%'"})
    assert r.json()[0] == {
        "message": "field 'Description' can not be filtered in a query call",
        "errorCode": "INVALID_FIELD",
    }
    r = http.get(f"{BASE}/query", params={"q": "SELECT Id FROM Account WHERE SystemModstamp >= '2025-01-01'"})
    assert "must be of type dateTime and should not be enclosed in quotes" in r.json()[0]["message"]
    r = http.get(f"{BASE}/query", params={"q": "SELECT Id FROM Nothing__c"})
    assert r.json()[0]["errorCode"] == "INVALID_TYPE"
    r = http.get(f"{BASE}/query", params={"q": "SELECT FROM Account"})
    assert r.json()[0]["errorCode"] == "MALFORMED_QUERY"


def test_expired_session_is_a_401_invalid_session_id(fake, http):
    fake.expire_sessions()
    r = http.get(f"{BASE}/sobjects/Account/describe")
    assert r.status_code == 401
    assert r.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_daily_limit_gives_403_request_limit_exceeded(fake, http):
    fake.set_daily_usage(99, limit=100)
    assert http.get(f"{BASE}/limits").headers["Sforce-Limit-Info"] == "api-usage=100/100"
    r = http.get(f"{BASE}/limits")
    assert r.status_code == 403
    assert r.json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


def test_collections_cap_and_per_record_results(fake, http):
    fake.add_owned_fields(["Account"])
    ids = seed(fake, 3)
    fake.delete("Account", [ids[2]])
    fake.reject_records(
        {ids[1]: ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Score needs a tier", ["ICP_Fit_Tier__c"])}
    )
    too_many = [{"attributes": {"type": "Account"}, "id": ids[0], "ICP_Fit_Score__c": 1}] * 201
    r = http.patch(f"{BASE}/composite/sobjects", json={"allOrNone": False, "records": too_many})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    records = [{"attributes": {"type": "Account"}, "id": i, "ICP_Fit_Score__c": 70} for i in ids]
    records.append({"attributes": {"type": "Account"}, "id": ids[0], "Nope__c": 1})
    answer = http.patch(f"{BASE}/composite/sobjects", json={"allOrNone": False, "records": records}).json()
    assert answer[0] == {"id": ids[0], "success": True, "errors": []}
    assert answer[1]["errors"][0]["statusCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert answer[1]["errors"][0]["fields"] == ["ICP_Fit_Tier__c"]
    assert answer[2]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    assert answer[3]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
    assert fake.record("Account", ids[0])["ICP_Fit_Score__c"] == 70
    assert fake.record("Account", ids[1])["ICP_Fit_Score__c"] is None


def test_a_write_bumps_systemmodstamp_once_for_the_request(fake, http):
    fake.add_owned_fields(["Account"])
    ids = seed(fake, 2)
    records = [{"attributes": {"type": "Account"}, "id": i, "ICP_Fit_Tier__c": "best"} for i in ids]
    http.patch(f"{BASE}/composite/sobjects", json={"allOrNone": False, "records": records})
    stamps = {fake.record("Account", i)["SystemModstamp"] for i in ids}
    assert len(stamps) == 1 and stamps.pop() > "2025-02"


def test_only_ten_query_cursors_stay_open(fake, http):
    seed(fake, 2500)
    firsts = [http.get(f"{BASE}/query", params={"q": "SELECT Id FROM Account"}).json() for _ in range(11)]
    r = http.get("https://acme.my.salesforce.com" + firsts[0]["nextRecordsUrl"])
    assert r.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
    assert http.get("https://acme.my.salesforce.com" + firsts[10]["nextRecordsUrl"]).status_code == 200


def test_routing_session_refuses_other_hosts(fake):
    with pytest.raises(requests.ConnectionError):
        fake.session().get("https://example.com/")


def test_soql_parser_covers_the_connector_queries():
    q = parse_soql(
        "SELECT Id, Name FROM Account WHERE SystemModstamp >= 2025-01-01T00:00:00+00:00 "
        "ORDER BY SystemModstamp ASC, Id ASC LIMIT 10"
    )
    assert q.fields == ["Id", "Name"] and q.limit == 10
    assert q.where == ("cmp", "SystemModstamp", ">=", ("dt", "2025-01-01T00:00:00.000+0000"))
    assert [o[0] for o in q.order] == ["SystemModstamp", "Id"]
    q = parse_soql(
        r"SELECT Id FROM Task WHERE (Subject LIKE '%[icp:ab]%' OR Subject LIKE 'it\'s%') AND NOT "
        "WhoId IN ('00Q1', '00Q2')"
    )
    assert q.where[0] == "and"


def test_large_org_queries_stay_cheap(fake, http):
    """100,000 accounts: an incremental query near the end is a bisection, not a scan or a sort."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    fake.insert(
        "Account", ({"Name": f"A{i}", "SystemModstamp": start + timedelta(seconds=i)} for i in range(100_000))
    )
    ids = fake.ids("Account")
    for record_id in ids[:2000]:  # 2,000 single edits: each appends to the index
        fake.modify("Account", {record_id: {"Name": "changed"}})
    since = (start + timedelta(seconds=99_990)).strftime("%Y-%m-%dT%H:%M:%SZ")
    t = time.perf_counter()
    for _ in range(20):
        r = http.get(
            f"{BASE}/query",
            params={
                "q": f"SELECT Id FROM Account WHERE SystemModstamp >= {since} "
                "ORDER BY SystemModstamp ASC, Id ASC"
            },
        )
        assert r.json()["totalSize"] == 2010
    assert time.perf_counter() - t < 5.0
