"""Salesforce fields <-> canonical names, and one pulled row -> ``CrmRecord`` (pure: no I/O).

Each object has three kinds of mapped fields:

* system fields every pull needs (``Id``, ``SystemModstamp``, the name, owner and last activity);
* status fields with fixed meanings (``connectors.base.STATUS_KEYS``);
* attribute fields, renamed to canonical attribute names with raw values (``worker.normalize``
  cleans the values). The standard defaults below plus the connection's ``fields`` option.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from connectors.base import CrmRecord, ObjectType

SOBJECT: dict[ObjectType, str] = {"account": "Account", "opportunity": "Opportunity", "lead": "Lead"}

#: Standard attribute fields by object: API name -> canonical attribute.
DEFAULT_ATTRIBUTES: dict[ObjectType, dict[str, str]] = {
    "account": {
        "Industry": "industry",
        "NumberOfEmployees": "employees",
        "AnnualRevenue": "annual_revenue",
        "BillingCountry": "country",
        "BillingState": "state",
    },
    "lead": {
        "Company": "company",
        "Industry": "industry",
        "NumberOfEmployees": "employees",
        "AnnualRevenue": "annual_revenue",
        "Country": "country",
        "State": "state",
    },
    "opportunity": {},
}

#: Status fields by object: API name -> status key.
STATUS_FIELDS: dict[ObjectType, dict[str, str]] = {
    "account": {},
    "lead": {"Status": "lead_status", "IsConverted": "is_converted"},
    "opportunity": {
        "AccountId": "account_id",
        "StageName": "stage",
        "IsClosed": "is_closed",
        "IsWon": "is_won",
        "Amount": "amount",
        "CloseDate": "close_date",
    },
}

SYSTEM_FIELDS: tuple[str, ...] = ("Id", "SystemModstamp", "Name", "OwnerId", "LastActivityDate")


@dataclass(frozen=True, slots=True)
class ObjectMapping:
    """What to select from one object and how to rename it."""

    object_type: ObjectType
    sobject: str
    attributes: Mapping[str, str]
    status: Mapping[str, str]
    customer_field: str | None = None
    customer_values: frozenset[str] = frozenset()

    @property
    def fields(self) -> list[str]:
        """Every field the pull selects, system fields first, without duplicates."""
        out: list[str] = []
        seen: set[str] = set()
        extra = [self.customer_field] if self.customer_field else []
        for name in (*SYSTEM_FIELDS, *self.status, *extra, *self.attributes):
            if name.lower() not in seen:
                seen.add(name.lower())
                out.append(name)
        return out

    def with_names(self, canonical_case: Mapping[str, str]) -> ObjectMapping:
        """The same mapping with API names spelled as ``describe`` spells them (SOQL is case-blind,
        the JSON keys of a query result are not)."""

        def fix(name: str) -> str:
            return canonical_case.get(name.lower(), name)

        return ObjectMapping(
            self.object_type,
            self.sobject,
            {fix(k): v for k, v in self.attributes.items()},
            {fix(k): v for k, v in self.status.items()},
            fix(self.customer_field) if self.customer_field else None,
            self.customer_values,
        )


def build_mapping(
    object_type: ObjectType,
    extra: Mapping[str, str | None] | None = None,
    *,
    customer_field: str | None = None,
    customer_values: Iterable[str] = (),
) -> ObjectMapping:
    """The defaults for ``object_type`` plus ``extra`` (``None`` drops a default field)."""
    attributes = dict(DEFAULT_ATTRIBUTES[object_type])
    for api_name, canonical in (extra or {}).items():
        for existing in [k for k in attributes if k.lower() == api_name.lower()]:
            del attributes[existing]
        if canonical is not None:
            attributes[api_name] = canonical
    return ObjectMapping(
        object_type,
        SOBJECT[object_type],
        attributes,
        dict(STATUS_FIELDS[object_type]),
        customer_field if object_type == "account" else None,
        frozenset(v.casefold() for v in customer_values),
    )


def missing_fields(mapping: ObjectMapping, describe_fields: Iterable[Mapping[str, Any]]) -> list[str]:
    """``Object.Field`` names the mapping needs that ``describe`` does not show (absent, or hidden from
    the integration user by field-level security, which ``describe`` reports the same way)."""
    readable = {f["name"].lower() for f in describe_fields if not f.get("deprecatedAndHidden")}
    return [f"{mapping.sobject}.{name}" for name in mapping.fields if name.lower() not in readable]


# ----------------------------------------------------------------------------------------- values


def modstamp_to_iso(value: str) -> str:
    """``2026-11-23T02:00:00.000+0000`` (the REST API's form) -> ``2026-11-23T02:00:00.000Z``."""
    return parse_datetime(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_datetime(value: str) -> datetime:
    """A Salesforce or ISO 8601 date-time with any UTC offset, as an aware UTC ``datetime``."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = text[:-2] + ":" + text[-2:]  # +0000 -> +00:00 (3.11 accepts both, be explicit)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _as_date(value: Any) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def to_crm_record(mapping: ObjectMapping, row: Mapping[str, Any]) -> CrmRecord:
    """One query-result row -> ``CrmRecord`` (raw attribute values, typed status values)."""
    raw = {canonical: row.get(api_name) for api_name, canonical in mapping.attributes.items()}
    status: dict[str, Any] = {}
    for api_name, key in mapping.status.items():
        value = row.get(api_name)
        if key == "close_date":
            value = _as_date(value)
        if value is not None:
            status[key] = value
    if mapping.customer_field:
        value = row.get(mapping.customer_field)
        if value is not None and str(value).strip():
            status["is_customer"] = str(value).strip().casefold() in mapping.customer_values
    return CrmRecord(
        object_type=mapping.object_type,
        external_id=row["Id"],
        raw=raw,
        status=status,
        name=row.get("Name"),
        owner_id=row.get("OwnerId"),
        last_activity=_as_date(row.get("LastActivityDate")),
        modstamp=modstamp_to_iso(row["SystemModstamp"]),
    )
