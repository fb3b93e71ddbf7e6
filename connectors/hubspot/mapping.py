"""Pure translation between HubSpot objects and the connector contract (no I/O, tested alone).

Pull side: a HubSpot object (``{"id", "properties": {...}}`` as the v3 API returns it) becomes a
``CrmRecord`` with canonical attribute names and raw values. Write side: canonical owned-field values
become HubSpot property strings.

Status rules (documented choices):

* account ``is_customer``: ``lifecyclestage`` is ``customer`` or ``evangelist`` (HubSpot's stage after
  customer); absent when the stage is empty, so the sync service derives it from won deals.
* lead (contact) ``lead_status`` is ``hs_lead_status``; ``is_converted`` is true when ``lifecyclestage``
  reached ``opportunity``, ``customer`` or ``evangelist`` (a deal exists or was won: HubSpot's
  counterpart of a converted Salesforce lead); absent when the stage is empty.
  With the Leads object, ``lead_status`` is the lead's pipeline stage (``hs_pipeline_stage``).
* enumeration properties read as attributes (``industry``, ``web_technologies``...) arrive as option
  values (``COMPUTER_SOFTWARE``) and are handed on as the portal's labels (``Computer Software``), each
  item of a multi-select (``a;b``) alike, so an ICP written with the labels HubSpot shows matches; a
  value that is not an option stays as it is.
* opportunity (deal): ``stage`` is the stage label, ``is_closed`` is the stage's ``isClosed`` metadata
  and ``is_won`` is closed with ``probability`` 1.0 (both from the pipelines API, read at run time).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from connectors.base import OWNED_FIELDS, CrmRecord, ObjectType
from connectors.errors import ConfigError
from connectors.hubspot.options import HubSpotOptions
from connectors.values import word_to_bool

MODSTAMP = "hs_lastmodifieddate"
#: HubSpot string properties hold at most 65,536 characters.
MAX_STRING = 65_536

#: Canonical object type -> HubSpot object type (``lead`` depends on ``lead_object``).
HUBSPOT_OBJECTS: dict[str, str] = {
    "account": "companies",
    "opportunity": "deals",
    "contact": "contacts",
    "lead": "leads",
}

#: HubSpot property -> canonical attribute, per HubSpot object (the issue's standard defaults).
DEFAULT_ATTRIBUTES: dict[str, dict[str, str]] = {
    "companies": {
        "industry": "industry",
        "numberofemployees": "employees",
        "annualrevenue": "annual_revenue",
        "country": "country",
        "state": "state",
        "founded_year": "founded_year",
        "web_technologies": "tech_stack",
        "domain": "domain",
        "city": "city",
    },
    "contacts": {
        "industry": "industry",
        "numemployees": "employees",
        "annualrevenue": "annual_revenue",
        "country": "country",
        "state": "state",
        "jobtitle": "job_title",
        "company": "company_name",
    },
    "deals": {"amount": "amount", "dealtype": "deal_type", "pipeline": "pipeline"},
    "leads": {},
}

#: Properties read for status, name, owner, activity and ordering (not attributes).
META_PROPERTIES: dict[str, tuple[str, ...]] = {
    "companies": (
        "name",
        "lifecyclestage",
        "hubspot_owner_id",
        "notes_last_updated",
        "hs_last_sales_activity_timestamp",
        MODSTAMP,
    ),
    "contacts": (
        "firstname",
        "lastname",
        "email",
        "hs_lead_status",
        "lifecyclestage",
        "hubspot_owner_id",
        "notes_last_updated",
        "hs_last_sales_activity_timestamp",
        MODSTAMP,
    ),
    "deals": (
        "dealname",
        "dealstage",
        "pipeline",
        "amount",
        "closedate",
        "hubspot_owner_id",
        "notes_last_updated",
        MODSTAMP,
    ),
    "leads": ("hs_lead_name", "hs_pipeline_stage", "hs_pipeline", "hubspot_owner_id", MODSTAMP),
}

ACTIVITY_PROPERTIES = ("notes_last_updated", "hs_last_sales_activity_timestamp")
CONVERTED_STAGES = frozenset({"opportunity", "customer", "evangelist"})
CUSTOMER_STAGES = frozenset({"customer", "evangelist"})


@dataclass(frozen=True, slots=True)
class ObjectMapping:
    """What to read for one canonical object type and how to name it."""

    object_type: ObjectType
    hubspot_object: str
    #: HubSpot property -> canonical attribute.
    attributes: Mapping[str, str]
    meta: tuple[str, ...]
    #: Enumeration attribute property -> {option value: label} (see ``with_labels``).
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def properties(self) -> list[str]:
        """Every property to request, sorted (stable URLs, easy to test)."""
        return sorted({*self.attributes, *self.meta})

    def with_labels(self, definitions: Mapping[str, Mapping[str, Any]]) -> ObjectMapping:
        """This mapping reading its enumeration attributes through their options, from the portal's
        property definitions (``GET /crm/v3/properties/{object}`` results by name)."""
        labels: dict[str, dict[str, str]] = {}
        for prop in self.attributes:
            definition = definitions.get(prop) or {}
            if definition.get("type") != "enumeration":
                continue
            options = {
                str(o["value"]): str(o.get("label") or o["value"])
                for o in definition.get("options") or ()
                if o.get("value") not in (None, "")
            }
            if options:
                labels[prop] = options
        return replace(self, labels=labels)


def option_labels(value: Any, options: Mapping[str, str]) -> Any:
    """An enumeration value as its label(s): ``COMPUTER_SOFTWARE`` -> ``Computer Software``, and each
    item of ``a;b``; values that are not options are left as they are."""
    if not isinstance(value, str) or not value:
        return value
    if value in options:
        return options[value]
    if ";" in value:
        return ";".join(options.get(part, part) for part in value.split(";"))
    return value


def hubspot_object(object_type: ObjectType, options: HubSpotOptions) -> str:
    if object_type == "lead":
        return HUBSPOT_OBJECTS["lead" if options.lead_object == "lead" else "contact"]
    return HUBSPOT_OBJECTS[object_type]


def build_mapping(object_type: ObjectType, options: HubSpotOptions) -> ObjectMapping:
    """Defaults plus the connection's ``properties`` extras (a ``null`` value drops a default)."""
    hs_object = hubspot_object(object_type, options)
    attributes: dict[str, str] = dict(DEFAULT_ATTRIBUTES[hs_object])
    meta = list(META_PROPERTIES[hs_object])
    for prop, canonical in options.properties.get(object_type, {}).items():
        if canonical is None:
            attributes.pop(prop, None)
            if prop == MODSTAMP:
                raise ConfigError(f"{hs_object}.{MODSTAMP} orders every pull and cannot be dropped")
            if prop in meta:
                meta.remove(prop)
        else:
            attributes[prop] = canonical
    return ObjectMapping(object_type, hs_object, attributes, tuple(meta))


# -- time --------------------------------------------------------------------------------------------


def parse_timestamp(value: Any) -> datetime | None:
    """HubSpot datetimes: ISO 8601 (``2024-01-02T03:04:05.678Z``), epoch milliseconds, or a date."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000.0, tz=UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_modstamp(moment: datetime) -> str:
    """``2026-11-23T02:00:00.000Z``: fixed width, so string order is time order."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def modstamp_to_ms(stamp: str) -> int:
    moment = parse_timestamp(stamp)
    if moment is None:
        raise ValueError(f"not a timestamp: {stamp!r}")
    return round(moment.timestamp() * 1000)


def ms_to_modstamp(ms: int) -> str:
    return format_modstamp(datetime.fromtimestamp(ms / 1000.0, tz=UTC))


# -- pull --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StageInfo:
    pipeline_id: str
    label: str
    is_closed: bool
    is_won: bool


def _truthy(value: Any) -> bool:
    return word_to_bool(str(value)) is True


def build_stage_index(pipelines: Iterable[Mapping[str, Any]]) -> dict[str, StageInfo]:
    """Stage id -> metadata, from ``GET /crm/v3/pipelines/deals`` results.

    A stage is closed when its ``metadata.isClosed`` is ``"true"``; a closed stage is won when its
    ``metadata.probability`` is 1.0 (HubSpot's "Closed won"), lost otherwise."""
    index: dict[str, StageInfo] = {}
    for pipeline in pipelines:
        for stage in pipeline.get("stages") or ():
            meta = stage.get("metadata") or {}
            closed = _truthy(meta.get("isClosed"))
            try:
                probability = float(meta.get("probability", "nan"))
            except (TypeError, ValueError):
                probability = math.nan
            index[str(stage["id"])] = StageInfo(
                str(pipeline.get("id")),
                str(stage.get("label") or stage["id"]),
                closed,
                closed and probability >= 1.0,
            )
    return index


def pick_account_id(associations: Iterable[Mapping[str, Any]]) -> str | None:
    """The deal's company from a v4 batch-read ``to`` list: the primary one (type 5) if any, else the
    lowest id (stable across runs)."""
    primary: list[int] = []
    others: list[int] = []
    for item in associations:
        target = int(item["toObjectId"])
        types = item.get("associationTypes") or ()
        if any(int(t.get("typeId", -1)) == 5 for t in types):
            primary.append(target)
        else:
            others.append(target)
    chosen = min(primary) if primary else (min(others) if others else None)
    return None if chosen is None else str(chosen)


def _blank(value: Any) -> bool:
    return value is None or value == ""


def _name(hs_object: str, props: Mapping[str, Any]) -> str | None:
    if hs_object == "contacts":
        full = " ".join(p for p in (props.get("firstname"), props.get("lastname")) if p)
        return full or props.get("email") or None
    key = {"companies": "name", "deals": "dealname", "leads": "hs_lead_name"}[hs_object]
    return props.get(key) or None


def to_record(
    obj: Mapping[str, Any],
    mapping: ObjectMapping,
    *,
    stages: Mapping[str, StageInfo] | None = None,
    account_id: str | None = None,
) -> CrmRecord:
    """One HubSpot object -> ``CrmRecord`` (raw values; ``worker.normalize`` cleans them)."""
    props: Mapping[str, Any] = obj.get("properties") or {}
    labels = mapping.labels
    raw = {
        canonical: option_labels(props.get(prop), labels[prop]) if prop in labels else props.get(prop)
        for prop, canonical in mapping.attributes.items()
    }
    status: dict[str, Any] = {}
    lifecycle = (props.get("lifecyclestage") or "").strip().lower()
    hs = mapping.hubspot_object
    if hs == "companies":
        if lifecycle:
            status["is_customer"] = lifecycle in CUSTOMER_STAGES
    elif hs == "contacts":
        if not _blank(props.get("hs_lead_status")):
            status["lead_status"] = props["hs_lead_status"]
        if lifecycle:
            status["is_converted"] = lifecycle in CONVERTED_STAGES
    elif hs == "leads":
        if not _blank(props.get("hs_pipeline_stage")):
            status["lead_status"] = props["hs_pipeline_stage"]
    elif hs == "deals":
        if account_id:
            status["account_id"] = account_id
        stage_id = props.get("dealstage")
        if not _blank(stage_id):
            info = (stages or {}).get(str(stage_id))
            status["stage"] = info.label if info else stage_id
            if info:
                status["is_closed"] = info.is_closed
                status["is_won"] = info.is_won
        if not _blank(props.get("amount")):
            status["amount"] = props["amount"]
        close = parse_timestamp(props.get("closedate"))
        if close:
            status["close_date"] = close.date()
    activity = [t for t in (parse_timestamp(props.get(p)) for p in ACTIVITY_PROPERTIES) if t]
    stamp = parse_timestamp(props.get(MODSTAMP) or obj.get("updatedAt"))
    return CrmRecord(
        object_type=mapping.object_type,
        external_id=str(obj["id"]),
        raw=raw,
        status=status,
        name=_name(hs, props),
        owner_id=None if _blank(props.get("hubspot_owner_id")) else str(props["hubspot_owner_id"]),
        last_activity=max(activity).date() if activity else None,
        modstamp=format_modstamp(stamp) if stamp else "",
    )


# -- write -------------------------------------------------------------------------------------------


def format_value(value: Any) -> str:
    """A canonical value as the string HubSpot stores (``""`` clears a property)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return format_modstamp(value if value.tzinfo else value.replace(tzinfo=UTC))
    if isinstance(value, date):
        return format_modstamp(datetime.combine(value, time(), tzinfo=UTC))
    if isinstance(value, list | tuple | set | frozenset):
        text = "\n".join(
            v if isinstance(v, str) else json.dumps(v, default=str, sort_keys=True) for v in value
        )
    elif isinstance(value, dict):
        text = json.dumps(value, default=str, sort_keys=True)
    else:
        text = str(value)
    return text[:MAX_STRING]


def owned_properties(fields: Mapping[str, Any], owned_map: Mapping[str, str]) -> dict[str, str]:
    """Owned canonical fields -> HubSpot properties. ``ValueError`` names any field that is not owned."""
    unknown = sorted(set(fields) - set(OWNED_FIELDS))
    if unknown:
        raise ValueError(f"not owned by this program: {', '.join(unknown)}")
    return {owned_map[name]: format_value(value) for name, value in fields.items()}


def tier_option_map(
    tiers: Iterable[str],
    ranked_tiers: Iterable[str],
    portal_options: Iterable[Mapping[str, Any]],
    explicit: Mapping[str, str],
) -> dict[str, str]:
    """Tier -> ``hs_ideal_customer_profile`` option value, using only options the portal has.

    ``ranked_tiers`` (best first, e.g. best, good, poor) take the portal's options in display order
    (tier_1, tier_2, tier_3); ``explicit`` wins; every other tier maps to ``""`` (clears the property)."""
    options = sorted(
        (o for o in portal_options if not o.get("hidden")),
        key=lambda o: (o.get("displayOrder", 0), str(o.get("value"))),
    )
    values = [str(o["value"]) for o in options]
    result = {tier: "" for tier in tiers}
    for tier, value in zip(ranked_tiers, values, strict=False):
        result[tier] = value
    for tier, value in explicit.items():
        if value in values or value == "":
            result[tier] = value
    return result
