"""HubSpot connector pulls: full (list and search meeting in the middle), incremental (search, 10,000
cap), deals, contacts, mapping."""

from __future__ import annotations

import math
import time
from datetime import date

import pytest

from connectors.errors import MissingFieldsError
from connectors.hubspot.chains import PAGES_AHEAD
from connectors.hubspot.mapping import (
    build_stage_index,
    format_modstamp,
    format_value,
    parse_timestamp,
    pick_account_id,
    tier_option_map,
)
from testing.hubspot import FakeClock, FakeHubSpot, connector_for, iso_ms


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def fake(clock):
    # Rate limits are exercised in test_hubspot_client; here the pace is generous so tests stay quick.
    with FakeHubSpot(clock=clock, requests_per_10s=1000, search_per_second=100) as server:
        yield server


def fast(fake, clock, **options):
    return connector_for(fake, clock, requests_per_10s=1000, search_requests_per_second=100, **options)


def seed(fake, n, *, start_ms, step=1000, obj="companies"):
    return fake.seed(
        obj,
        ({"name": f"Company {i}", "industry": "Software", "numberofemployees": str(i)} for i in range(n)),
        stamps=[start_ms + i * step for i in range(n)],
    )


def test_full_pull_lists_up_and_searches_down_until_the_chains_meet(fake, clock):
    start = fake.now_ms() - 86_400_000
    ids = seed(fake, 1234, start_ms=start, step=10)
    connector = fast(fake, clock)
    pages = list(connector.pull("account", None))
    records = [r for p in pages for r in p.records]
    assert sorted(r.external_id for r in records) == ids  # every record, each once
    listed, searched = fake.calls["list:companies"], fake.calls["search:companies"]
    assert listed >= 1 and searched >= 1
    # 100 a list page, 200 a search page: about as many requests as listing alone, or fewer (the pages
    # where the chains meet overlap, and each chain may have one more request in flight by then)
    assert listed + searched <= math.ceil(1234 / 100) + 3
    assert all(p.cursor is None for p in pages[:-1])
    assert pages[-1].cursor == iso_ms(start + 1233 * 10)  # the newest stamp seen
    first = records[0]
    assert first.raw["industry"] == "Software" and first.raw["employees"] == "0" and first.name == "Company 0"
    assert first.modstamp == iso_ms(start)


def test_full_pull_cursor_never_after_the_start_of_the_sync(fake, clock):
    seed(fake, 5, start_ms=fake.now_ms() + 3_600_000)  # stamps in the future (clock skew)
    before = format_modstamp(clock.utcnow())
    pages = list(fast(fake, clock).pull("account", None))
    # the moment the listing started (the pacer's spacing moves the fake clock a little meanwhile)
    assert before <= pages[-1].cursor <= format_modstamp(clock.utcnow()) < iso_ms(fake.now_ms() + 3_600_000)


def test_full_pull_of_an_empty_portal_yields_a_cursor(fake, clock):
    pages = list(fast(fake, clock).pull("account", None))
    assert len(pages) == 1 and pages[0].records == [] and pages[0].cursor


def test_pages_are_lazy(fake, clock):
    seed(fake, 5000, start_ms=fake.now_ms() - 10_000_000)
    pages = fast(fake, clock).pull("account", None)
    next(pages)
    time.sleep(0.3)  # the chains run ahead of the consumer, by a few pages only: those queued, one in
    # each chain's hands, the page handed out and the one held back (the last page carries the cursor)
    assert fake.calls["list:companies"] + fake.calls["search:companies"] <= PAGES_AHEAD + 4 < 5000 / 200
    pages.close()


def test_incremental_pull_searches_ascending_from_since_minus_lookback(fake, clock):
    start = fake.now_ms() - 86_400_000
    ids = seed(fake, 1000, start_ms=start)
    connector = fast(fake, clock, lookback_seconds=60)
    since = iso_ms(start + 400 * 1000)  # record 400's stamp; the look-back brings back 60 more
    pages = list(connector.pull("account", since))
    records = [r for p in pages for r in p.records]
    assert [r.external_id for r in records] == ids[340:]
    stamps = [r.modstamp for r in records]
    assert stamps == sorted(stamps)
    assert all(p.cursor == p.records[-1].modstamp for p in pages)
    assert fake.calls["search:companies"] == math.ceil(660 / 200)
    assert fake.calls["list:companies"] == 0


def test_incremental_pull_restarts_before_the_10000_cap(fake, clock):
    start = fake.now_ms() - 86_400_000
    n = 10_450
    # pairs of records share a stamp, so the restart has a boundary to de-duplicate
    ids = fake.seed(
        "companies", ({"name": f"c{i}"} for i in range(n)), stamps=[start + (i // 2) for i in range(n)]
    )
    connector = fast(fake, clock, lookback_seconds=0)
    records = [r for p in connector.pull("account", iso_ms(start)) for r in p.records]
    assert len(records) == n and sorted(r.external_id for r in records) == sorted(ids)
    assert connector.puller.search_restarts == 1
    assert fake.calls["search:companies"] <= math.ceil(n / 200) + 1
    assert fake.statuses[400] == 0


def test_incremental_pull_of_10000_records_with_one_stamp_walks_by_id(fake, clock):
    stamp = fake.now_ms() - 86_400_000
    n = 10_100
    ids = fake.seed("companies", ({"name": f"c{i}"} for i in range(n)), stamps=[stamp] * n)
    later = fake.seed("companies", [{"name": "later"}], stamps=[stamp + 5])
    connector = fast(fake, clock, lookback_seconds=0)
    pages = list(connector.pull("account", iso_ms(stamp)))
    got = [r.external_id for p in pages for r in p.records]
    assert sorted(got) == sorted(ids + later) and len(got) == len(set(got))
    assert got[-1] == later[0]
    # the stamp is walked again by id (HubSpot does not promise an order among equal stamps)
    assert fake.calls["search:companies"] <= math.ceil((n + 1) / 200) + 10_000 // 200 + 2
    assert fake.statuses[400] == 0


def test_modified_record_comes_back_in_the_next_incremental_pull(fake, clock):
    ids = seed(fake, 50, start_ms=fake.now_ms() - 86_400_000)
    connector = fast(fake, clock, lookback_seconds=0)
    cursor = list(connector.pull("account", None))[-1].cursor
    clock.advance(60)
    fake.modify("companies", ids[7], {"numberofemployees": "620"})
    records = [r for p in connector.pull("account", cursor) for r in p.records]
    # the cursor's own record comes again (>=): the sync service drops it by its unchanged stamp
    assert [r.external_id for r in records] == [ids[49], ids[7]] and records[1].raw["employees"] == "620"


def test_deals_carry_company_and_closed_won_from_pipeline_metadata(fake, clock):
    fake.pipelines["deals"].append(
        {
            "id": "renewals",
            "label": "Renewals",
            "displayOrder": 1,
            "stages": [
                {
                    "id": "r_open",
                    "label": "Renewal due",
                    "metadata": {"isClosed": "false", "probability": "0.5"},
                },
                {"id": "r_won", "label": "Renewed", "metadata": {"isClosed": "true", "probability": "1.0"}},
                {"id": "r_lost", "label": "Churned", "metadata": {"isClosed": "true", "probability": "0.0"}},
            ],
        }
    )
    companies = seed(fake, 3, start_ms=fake.now_ms() - 10_000)
    deals = fake.seed(
        "deals",
        [
            {
                "dealname": "won",
                "dealstage": "closedwon",
                "amount": "1000",
                "closedate": "2026-03-01T00:00:00Z",
            },
            {"dealname": "lost", "dealstage": "closedlost"},
            {"dealname": "open", "dealstage": "qualifiedtobuy", "hubspot_owner_id": "77"},
            {"dealname": "renewed", "dealstage": "r_won"},
            {"dealname": "orphan", "dealstage": "r_open"},
        ],
    )
    fake.associate("deals", deals[0], "companies", companies[0], [5, 341], [6, 342])
    fake.associate("deals", deals[1], "companies", companies[2], [341], [342])
    fake.associate("deals", deals[1], "companies", companies[1], [5, 341], [6, 342])  # primary wins
    fake.associate("deals", deals[2], "companies", companies[2], [341], [342])
    fake.associate("deals", deals[3], "companies", companies[1], [341], [342])
    connector = fast(fake, clock)
    by_name = {r.name: r for p in connector.pull("opportunity", None) for r in p.records}
    assert by_name["won"].status == {
        "account_id": companies[0],
        "stage": "Closed Won",
        "is_closed": True,
        "is_won": True,
        "amount": "1000",
        "close_date": date(2026, 3, 1),
    }
    assert by_name["lost"].status["account_id"] == companies[1]
    assert (by_name["lost"].status["is_closed"], by_name["lost"].status["is_won"]) == (True, False)
    assert by_name["open"].status["is_closed"] is False and by_name["open"].owner_id == "77"
    assert by_name["renewed"].status["is_won"] is True and by_name["renewed"].status["stage"] == "Renewed"
    assert "account_id" not in by_name["orphan"].status and by_name["orphan"].status["is_closed"] is False
    assert fake.calls["associations:deals"] == 1 and fake.calls["pipelines"] == 1


def test_contacts_lead_status_and_conversion(fake, clock):
    fake.seed(
        "contacts",
        [
            {
                "firstname": "Ada",
                "lastname": "L",
                "hs_lead_status": "UNQUALIFIED",
                "lifecyclestage": "lead",
                "notes_last_updated": "2026-01-05T10:00:00Z",
                "hs_last_sales_activity_timestamp": "2026-02-01T10:00:00Z",
            },
            {"email": "x@example.com", "lifecyclestage": "customer", "numemployees": "201-500"},
            {"firstname": "No", "lastname": "Stage"},
        ],
    )
    records = [r for p in fast(fake, clock).pull("lead", None) for r in p.records]
    assert records[0].status == {"lead_status": "UNQUALIFIED", "is_converted": False}
    assert records[0].last_activity == date(2026, 2, 1) and records[0].name == "Ada L"
    assert records[1].status == {"is_converted": True} and records[1].name == "x@example.com"
    assert records[1].raw["employees"] == "201-500"
    assert records[2].status == {}


def test_account_is_customer_from_lifecycle_stage(fake, clock):
    fake.seed("companies", [{"lifecyclestage": "customer"}, {"lifecyclestage": "opportunity"}, {}])
    records = [r for p in fast(fake, clock).pull("account", None) for r in p.records]
    assert [r.status.get("is_customer") for r in records] == [True, False, None]


def test_leads_object(fake, clock):
    fake.seed(
        "leads", [{"hs_lead_name": "Big lead", "hs_pipeline_stage": "unqualified", "hubspot_owner_id": "5"}]
    )
    records = [r for p in fast(fake, clock, lead_object="lead").pull("lead", None) for r in p.records]
    assert records[0].name == "Big lead" and records[0].status == {"lead_status": "unqualified"}
    assert fake.calls["list:leads"] == 1 and fake.calls["list:contacts"] == 0


def test_custom_property_mapping(fake, clock):
    fake.add_property(
        "companies",
        {"name": "funding_round", "type": "string", "fieldType": "text", "groupName": "companyinformation"},
    )
    fake.seed("companies", [{"funding_round": "Series B", "city": "Lyon"}])
    connector = fast(fake, clock, properties={"companies": {"funding_round": "funding_stage", "city": None}})
    record = next(iter(connector.pull("account", None))).records[0]
    assert record.raw["funding_stage"] == "Series B" and "city" not in record.raw


def test_mapping_check_lists_every_missing_property_before_pulling(fake, clock):
    fake.remove_property("companies", "founded_year")
    fake.remove_property("companies", "web_technologies")
    connector = fast(fake, clock, properties={"account": {"x_custom_tier": "custom"}})
    with pytest.raises(MissingFieldsError) as err:
        list(connector.pull("account", None))
    assert sorted(err.value.missing) == [
        "companies.founded_year",
        "companies.web_technologies",
        "companies.x_custom_tier",
    ]
    assert fake.calls["list:companies"] == 0


def test_mapping_check_covers_the_mirror_property(fake, clock):
    fake.remove_property("companies", "hs_ideal_customer_profile")
    connector = fast(fake, clock, mirror_ideal_customer_profile=True)
    with pytest.raises(MissingFieldsError) as err:
        connector.check_mapping(["account", "opportunity", "lead"])
    assert err.value.missing == ["companies.hs_ideal_customer_profile"]


# -- pure mapping -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-02T03:04:05.678Z", "2026-01-02T03:04:05.678Z"),
        ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05.000Z"),
        ("1767225600000", "2026-01-01T00:00:00.000Z"),
        ("2026-01-02", "2026-01-02T00:00:00.000Z"),
    ],
)
def test_timestamps(value, expected):
    assert format_modstamp(parse_timestamp(value)) == expected


def test_unparseable_timestamp_is_none():
    assert parse_timestamp("soon") is None and parse_timestamp("") is None


def test_format_value():
    assert format_value(None) == "" and format_value(True) == "true" and format_value(67.0) == "67"
    assert format_value(["a", "b"]) == "a\nb" and format_value(date(2026, 1, 2)) == "2026-01-02T00:00:00.000Z"
    assert len(format_value("x" * 70_000)) == 65_536


def test_stage_index_and_primary_company():
    index = build_stage_index(
        [
            {
                "id": "p",
                "stages": [
                    {"id": "a", "label": "A", "metadata": {"isClosed": "true", "probability": "1.0"}},
                    {"id": "b", "label": "B", "metadata": {"isClosed": "true", "probability": "0.0"}},
                    {"id": "c", "label": "C", "metadata": {"isClosed": "false", "probability": "1.0"}},
                ],
            }
        ]
    )
    assert (index["a"].is_closed, index["a"].is_won) == (True, True)
    assert (index["b"].is_closed, index["b"].is_won) == (True, False)
    assert (index["c"].is_closed, index["c"].is_won) == (False, False)
    assert (
        pick_account_id(
            [
                {"toObjectId": 9, "associationTypes": [{"typeId": 341}]},
                {"toObjectId": 12, "associationTypes": [{"typeId": 5}]},
            ]
        )
        == "12"
    )
    assert pick_account_id([{"toObjectId": 9, "associationTypes": []}, {"toObjectId": 3}]) == "3"
    assert pick_account_id([]) is None


def test_tier_option_map_uses_the_portals_options():
    tiers = ("best", "good", "poor", "disqualified", "insufficient_data")
    ranked = ("best", "good", "poor")
    three = [
        {"value": "tier_1", "displayOrder": 0},
        {"value": "tier_2", "displayOrder": 1},
        {"value": "tier_3", "displayOrder": 2},
    ]
    assert tier_option_map(tiers, ranked, three, {}) == {
        "best": "tier_1",
        "good": "tier_2",
        "poor": "tier_3",
        "disqualified": "",
        "insufficient_data": "",
    }
    two = three[:2]
    assert tier_option_map(tiers, ranked, two, {})["poor"] == ""
    assert tier_option_map(tiers, ranked, three, {"good": "tier_1", "poor": "nope"})["good"] == "tier_1"
    assert tier_option_map(tiers, ranked, three, {"good": "tier_1", "poor": "nope"})["poor"] == "tier_3"
